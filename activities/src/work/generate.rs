//! Step 2: the Terraform module for a request, from the vetted catalog, a team's module source or an LLM (with its transcript stored).

use temporalio_common::error::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_proto::{GenerateModuleInput, GeneratedModule};
use tollgate_workflows::failure::FailureType;

use crate::{TollgateActivities, classified, failed};
use tollgate_ai::module_writer;
use tollgate_artifacts::ArtifactKind;
use tollgate_engine::catalog;
use tollgate_engine::catalog::ModuleBundle;
use tollgate_proto::failure::Classified;

impl TollgateActivities {
    pub(crate) async fn generate_module_work(
        &self,
        ctx: &ActivityContext,
        input: GenerateModuleInput,
    ) -> Result<GeneratedModule, ActivityError> {
        let request = input.request.unwrap_or_default();
        let expires = tollgate_workflows::fmt_time_ms(tollgate_proto::ms(&input.expires_at));
        let mut transcript_digest = String::new();
        let mut written = None;
        let mut fallback = String::new();
        if self.settings.generate.starts_with("llm") {
            match self.llm_module(&request, &expires, input.repair.as_ref()).await {
                Ok((bundle, digest)) => {
                    transcript_digest = digest;
                    written = bundle;
                }
                // The endpoint failed on the last attempt the retry policy allows: a vetted
                // module, when there is one and the settings allow it, beats failing.
                Err(e)
                    if self.settings.generate == "llm-then-catalog"
                        && self.has_vetted_module(&request.kind)
                        && ctx.info().attempt >= self.settings.retry_max_attempts.max(1) =>
                {
                    tracing::warn!(error = ?e, kind = %request.kind, "the LLM endpoint failed on every attempt; using the vetted module");
                    let why = match &e {
                        ActivityError::Application(failure) => failure.source_error().to_string(),
                        other => format!("{other:?}"),
                    };
                    fallback = format!("the LLM endpoint failed on every attempt ({why}); the vetted module was used");
                }
                Err(e) => return Err(e),
            }
        }
        let bundle = match written {
            Some(bundle) => bundle,
            None if self.settings.generate == "llm" || !self.has_vetted_module(&request.kind) => {
                let asked = self.llm.as_ref().map(|c| c.config.max_attempts).unwrap_or_default();
                return Err(classified(
                    FailureType::InvalidModule,
                    false,
                    format!(
                        "the LLM did not write an acceptable module for '{}' in {asked} answers (transcript {transcript_digest}){}",
                        request.kind,
                        if self.has_vetted_module(&request.kind) { "" } else { ", and no vetted module has this kind" }
                    ),
                ));
            }
            None => {
                if self.settings.generate.starts_with("llm") && fallback.is_empty() {
                    let asked = self.llm.as_ref().map(|c| c.config.max_attempts).unwrap_or_default();
                    fallback = format!(
                        "the LLM wrote no acceptable module in {asked} answers (transcript {transcript_digest}); the vetted module was used"
                    );
                }
                self.vetted_module(&request, &expires)?
            }
        };
        let bytes = serde_json::to_vec(&bundle).map_err(|e| classified(FailureType::Internal, false, e.to_string()))?;
        let module_digest = self.artifacts.put(ArtifactKind::Module, &bytes).await.map_err(failed)?;
        Ok(GeneratedModule {
            module_digest,
            source: bundle.source,
            attempt: ctx.info().attempt,
            transcript_digest,
            fallback,
        })
    }

    /// Access instructions written by the LLM from the outputs alone (sensitive ones are not
    /// sent); None when no LLM is configured or it fails (the template is used then).
    pub(super) async fn access_from_llm(
        &self,
        kind: &str,
        outputs: &std::collections::BTreeMap<String, String>,
    ) -> Option<String> {
        let client = self.llm.as_ref()?;
        let listed: Vec<String> =
            outputs.iter().filter(|(_, v)| v.as_str() != "(sensitive)").map(|(k, v)| format!("- {k} = {v}")).collect();
        let messages = [
            tollgate_ai::Message::new(
                "system",
                "You tell a developer, in one to three plain sentences, how to reach cloud resources that were just created for them. \
                 Use only the outputs given; do not invent hosts, passwords or commands that need values you were not given.",
            ),
            tollgate_ai::Message::new("user", format!("Kind: {kind}\nOutputs:\n{}", listed.join("\n"))),
        ];
        match client.complete(&messages).await {
            Ok(text) if !text.trim().is_empty() => Some(text.trim().chars().take(1000).collect()),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "access instructions from the LLM failed; using the template");
                None
            }
        }
    }

    fn has_vetted_module(&self, kind: &str) -> bool {
        catalog::module_source(kind).is_some() || self.sources.get(kind).is_some()
    }

    /// The catalog's module for the request, or a module source's.
    fn vetted_module(
        &self,
        request: &tollgate_proto::ProvisionRequest,
        expires: &str,
    ) -> Result<ModuleBundle, ActivityError> {
        let invalid = |e: String| classified(FailureType::InvalidRequest, false, e);
        match self.sources.get(&request.kind) {
            Some(module) if catalog::module_source(&request.kind).is_none() => {
                module.render(request, expires).map_err(invalid)
            }
            _ => catalog::render(request, expires).map_err(|e| invalid(e.to_string())),
        }
    }

    /// Asks the LLM for a module until one passes Tollgate's checks and the engine's
    /// validation. Returns it (None when every answer was refused) and the transcript's digest.
    async fn llm_module(
        &self,
        request: &tollgate_proto::ProvisionRequest,
        expires: &str,
        repair: Option<&tollgate_proto::PolicyRepair>,
    ) -> Result<(Option<ModuleBundle>, String), ActivityError> {
        let Some(client) = &self.llm else {
            return Err(classified(
                FailureType::InvalidModule,
                false,
                "generate asks for an LLM but [llm] is not configured",
            ));
        };
        // The allow-list, narrowed to the vendors requests may use.
        let vendors = &self.settings.allowed_vendors;
        let allowed: Vec<String> = client
            .config
            .allowed_resource_types
            .iter()
            .filter(|t| vendors.iter().any(|v| t.starts_with(&format!("{v}_"))))
            .cloned()
            .collect();
        let allowed = &allowed;
        let system = module_writer::system_prompt(allowed, &self.settings.allowed_vendors);
        let example = catalog::module_source(&request.kind).or(catalog::module_source("s3"));
        let ask = module_writer::request_prompt(request, example);
        let model = client.config.model.clone();
        // A repair goes on with the conversation that wrote the denied module, told why.
        let mut conversation = match repair {
            Some(r) => {
                let bytes = self.artifacts.get(&r.transcript_digest).await.map_err(failed)?;
                let transcript: module_writer::Transcript = serde_json::from_slice(&bytes)
                    .map_err(|e| classified(FailureType::DigestMismatch, false, format!("transcript: {e}")))?;
                let mut resumed = module_writer::Conversation::resume(transcript);
                resumed.refuse(&module_writer::policy_feedback(&r.findings));
                resumed
            }
            None => module_writer::Conversation::new(&model, &system, &ask),
        };
        let mut accepted = None;
        let mut outcome = Ok(());
        for _ in 0..client.config.max_attempts.max(1) {
            let code = match conversation.next_code(client).await {
                Ok(code) => code,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            let bundle = catalog::written(&code, request, expires, &model);
            let checked = match module_writer::check_code(&code, allowed) {
                Ok(()) => self.engine.validate(&request.kind, &bundle).await,
                Err(why) => Err(why),
            };
            match checked {
                Ok(()) => {
                    conversation.accept();
                    accepted = Some(bundle);
                    break;
                }
                Err(why) => conversation.refuse(&why),
            }
        }
        let transcript = conversation.transcript;
        let bytes = serde_json::to_vec_pretty(&transcript)
            .map_err(|e| classified(FailureType::Internal, false, e.to_string()))?;
        let digest = self.artifacts.put(ArtifactKind::Transcript, &bytes).await.map_err(failed)?;
        match outcome {
            Ok(_) => Ok((accepted, digest)),
            Err(e) => {
                let failure = ApplicationFailure::builder(format!("{e} (transcript {digest})"))
                    .type_name(e.type_name().as_str().to_string())
                    .non_retryable(!e.retryable());
                let failure = match e.retry_after() {
                    Some(delay) => failure.next_retry_delay(delay).build(),
                    None => failure.build(),
                };
                Err(ActivityError::application(failure))
            }
        }
    }
}
