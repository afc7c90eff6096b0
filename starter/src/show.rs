//! `tollgate show <request> module|plan|state|transcript|review` (and `<audit> report`):
//! stored artifacts, found by the digests the workflow names, without knowing the store's
//! layout.

use serde_json::{Value, json};
use tollgate_artifacts::ArtifactStore;
use tollgate_client::{Client, ClientError, requests};
use tollgate_config::Config;
use tollgate_engine::terraform::{LOCK_FILE_KEY, PLAN_FILE_KEY};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Artifact {
    /// The Terraform root module (files and variables) that was planned.
    Module,
    /// Terraform's plan JSON (`terraform show -json`) that was gated and approved.
    Plan,
    /// The Terraform state after the last apply.
    State,
    /// The LLM conversation that wrote the module (every prompt and answer).
    Transcript,
    /// The AI approver's review: what it judged, the rules that matched, its prompt, tool
    /// calls and answers.
    Review,
    /// An audit's finished report (give the audit id).
    Report,
}

impl Artifact {
    fn name(self) -> &'static str {
        match self {
            Artifact::Module => "module",
            Artifact::Plan => "plan",
            Artifact::State => "state",
            Artifact::Transcript => "transcript",
            Artifact::Review => "review",
            Artifact::Report => "report",
        }
    }
}

pub(crate) async fn show(
    config: &Config,
    client: &Client,
    id: &str,
    what: Artifact,
    json_out: bool,
) -> Result<(), ClientError> {
    if what == Artifact::Report {
        let report = tollgate_client::audits::report(client, id).await.map_err(|e| match e {
            ClientError::NotFound(_) => ClientError::Refused(format!(
                "no audit with id '{id}': a report is an audit's (give its id, audit-…); a request shows module, plan, state, transcript or review"
            )),
            e => e,
        })?;
        if report.report_digest.is_empty() {
            let why = "its report is stored once it has finished (scheduled audits report to owners instead)";
            return Err(ClientError::Refused(format!("audit {id} has no stored report: {why}")));
        }
        return print(config, id, what, &report.report_digest, json_out).await;
    }
    let p = requests::progress(client, id).await?;
    let review_digest = p.ai_review.as_ref().map(|r| r.record_digest.clone()).unwrap_or_default();
    let (digest, missing) = match what {
        Artifact::Module => (&p.module_digest, "no module was generated (it ended before)".to_string()),
        Artifact::Plan => (&p.plan_digest, "nothing was planned (it ended before)".to_string()),
        Artifact::State => (&p.state_digest, "nothing was applied".to_string()),
        Artifact::Transcript => (
            &p.transcript_digest,
            format!(
                "no LLM wrote its module (module source: {})",
                if p.module_source.is_empty() { "none" } else { &p.module_source }
            ),
        ),
        Artifact::Review => (&review_digest, "the AI approver did not review it ([ai_approver] mode)".to_string()),
        Artifact::Report => unreachable!("an audit's, read above"),
    };
    if digest.is_empty() {
        return Err(ClientError::Refused(format!("request {id} has no {}: {missing}", what.name())));
    }
    print(config, id, what, digest, json_out).await
}

/// Reads `digest` from the configured store and prints it.
async fn print(config: &Config, id: &str, what: Artifact, digest: &str, json_out: bool) -> Result<(), ClientError> {
    let store = ArtifactStore::from_config(&config.artifacts, &config.data_dir)
        .map_err(|e| ClientError::Refused(format!("{e}")))?;
    let bytes = store.get(digest).await.map_err(|e| ClientError::Failed(format!("reading {digest}: {e}")))?;
    let mut content: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ClientError::Failed(format!("{digest} is not JSON ({e}); the store may be shared with something else"))
    })?;
    if let Some(plan) = content.as_object_mut() {
        // The binary plan file and the provider lock travel with the plan for apply; a person
        // reads the plan JSON.
        for key in [PLAN_FILE_KEY, LOCK_FILE_KEY] {
            plan.remove(key);
        }
    }
    if json_out {
        println!("{}", json!({ "request_id": id, "artifact": what.name(), "digest": digest, "content": content }));
    } else if let (Artifact::Module, Some(files)) = (what, content["files"].as_object()) {
        // A module is files: show them as files, each under its name.
        for (name, text) in files {
            println!("# ---- {name} ----\n{}", text.as_str().unwrap_or_default().trim_end());
        }
    } else {
        println!("{}", serde_json::to_string_pretty(&content).unwrap_or_default());
    }
    Ok(())
}
