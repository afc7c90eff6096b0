//! `tollgate audit`: start an audit, follow it, decide its fixes, retry a paused one, cancel
//! one.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use serde_json::json;
use tollgate_client::{ClientError, audits};
use tollgate_proto::{AuditReport, AuditStep, AuditTargetKind, DecisionKind};
use tollgate_workflows::audit::{describe, label, target_label};

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// An audit's report (--watch: until it is done, paused or cancelled).
    Status {
        /// The audit id.
        id: String,
        /// Follow it until it is done, paused or cancelled.
        #[arg(long)]
        watch: bool,
    },
    /// Resume a PAUSED audit at the step that failed (finished steps are not redone).
    Retry {
        /// The audit id.
        id: String,
        /// Who resumes it.
        #[arg(long = "as")]
        user: String,
    },
    /// Approve an audit's proposed fixes (as an approver).
    Approve {
        /// The audit id.
        id: String,
        /// Who approves.
        #[arg(long = "as")]
        user: String,
        /// Why.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Reject an audit's proposed fixes: nothing is applied.
    Reject {
        /// The audit id.
        id: String,
        /// Who rejects.
        #[arg(long = "as")]
        user: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
    /// End an audit; nothing is applied.
    Cancel {
        /// The audit id.
        id: String,
        /// Who cancels it.
        #[arg(long = "as")]
        user: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// What `tollgate audit <target>` names when no subcommand is given.
pub(crate) struct Target {
    pub target: Option<String>,
    pub request: bool,
    pub all_active: bool,
    pub user: String,
    pub watch: bool,
    pub no_wait: bool,
}

/// Runs `tollgate audit ...`.
pub(crate) async fn run(
    config: &Option<PathBuf>,
    action: Option<AuditCommand>,
    start: Target,
    json_out: bool,
) -> Result<(), ClientError> {
    let client = crate::client().await?;
    let show = |report: &AuditReport| {
        if json_out {
            println!("{}", tollgate_client::render::audit_json(report));
        } else {
            println!("{}", report_text(report));
        }
    };
    let said = |id: &str, message: &str| {
        if json_out { println!("{}", json!({"audit_id": id, "message": message})) } else { println!("{message}") }
    };
    match action {
        Some(AuditCommand::Status { id, watch: true }) => show(&self::watch(&client, &id, json_out).await?),
        Some(AuditCommand::Status { id, watch: false }) => show(&audits::report(&client, &id).await?),
        Some(AuditCommand::Retry { id, user }) => said(&id, &audits::retry(&client, &id, &user).await?),
        Some(AuditCommand::Approve { id, user, comment }) => {
            said(&id, &audits::decide(&client, &id, DecisionKind::Approve, &user, &comment).await?.message)
        }
        Some(AuditCommand::Reject { id, user, reason }) => {
            said(&id, &audits::decide(&client, &id, DecisionKind::Reject, &user, &reason).await?.message)
        }
        Some(AuditCommand::Cancel { id, user, reason }) => {
            said(&id, &audits::cancel(&client, &id, &user, &reason).await?)
        }
        None => {
            let kind = target_kind(start.request, start.all_active);
            if kind == AuditTargetKind::AllActive && start.target.is_some() {
                return Err(ClientError::Refused("--all-active audits every ACTIVE request: name no target".into()));
            }
            let target = start.target.unwrap_or_default();
            let config = crate::load_config(config)?;
            let wait = if start.no_wait { audits::Discovery::DoNotWait } else { audits::Discovery::Wait };
            let id = audits::start(&client, &config.task_queue, kind, &target, &start.user, wait).await?;
            if start.watch {
                show(&self::watch(&client, &id, json_out).await?);
            } else if json_out {
                println!("{}", json!({"audit_id": id}));
            } else {
                println!("{id}");
            }
        }
    }
    Ok(())
}

/// The report for people.
pub fn report_text(r: &AuditReport) -> String {
    let mut out = vec![
        format!("Audit      {} of {} (asked by {})", r.audit_id, target_label(r), r.requested_by),
        format!("Step       {}", label(r.step())),
    ];
    if r.step() == AuditStep::Paused {
        out.push(format!("Paused     {}", describe(r)));
    }
    if !r.approving_users.is_empty() {
        out.push(format!("Approvers  {} ({} needed)", r.approving_users.join(", "), r.required_approvals.max(1)));
    }
    if r.step() == AuditStep::AwaitingApproval {
        out.push(format!(
            "Decide     tollgate audit approve {id} --as <you>   or   tollgate audit reject {id} --as <you> --reason <why>",
            id = r.audit_id
        ));
    }
    for d in &r.resources {
        let owner = if d.request_id.is_empty() {
            "not managed by Tollgate".to_string()
        } else {
            format!("request {}", d.request_id)
        };
        out.push(format!("Resource   {} {} ({owner})", d.address, d.resource_id));
    }
    for f in &r.findings {
        out.push(format!(
            "Finding    {:<8} {}",
            tollgate_workflows::policy::level_label(f),
            tollgate_workflows::policy::label(f)
        ));
    }
    if let Some(o) = &r.opinion {
        if o.missing.is_empty() {
            out.push(format!("Opinion    {} ({})", o.summary, o.by));
            for c in &o.concerns {
                out.push(format!("Concern    {c}"));
            }
        } else {
            out.push(format!("Opinion    none: {}", o.missing));
        }
    }
    for line in tollgate_workflows::audit::fixes_text(r).lines() {
        out.push(format!("Fix        {}", line.trim_start_matches("- ")));
    }
    for d in &r.decisions {
        let said = if d.comment.is_empty() { String::new() } else { format!(": {}", d.comment) };
        let verb = if d.kind == tollgate_proto::DecisionKind::Reject as i32 { "rejected" } else { "approved" };
        out.push(format!("Decided    {} {verb} the fixes{said}", d.user));
    }
    for refusal in &r.refusals {
        out.push(format!("Refused    {} [{}] {}", refusal.source, refusal.code, refusal.message));
    }
    for x in &r.repairs {
        out.push(format!("Repaired   {}: {}", x.request_id, x.outcome));
    }
    if !r.summary.is_empty() {
        out.push(format!("Summary    {}", r.summary));
    }
    out.push("Timeline".into());
    out.extend(crate::render::timeline(&r.timeline));
    out.join("\n")
}

/// Polls until the audit is DONE, CANCELLED, PAUSED or waits for approval, printing each
/// step it enters.
pub async fn watch(client: &temporalio_client::Client, id: &str, json_out: bool) -> Result<AuditReport, ClientError> {
    let mut last = None;
    loop {
        let report = audits::report(client, id).await?;
        let step = report.step();
        if !json_out && last != Some(step) {
            eprintln!("{id}: {}", label(step));
        }
        last = Some(step);
        if matches!(step, AuditStep::Done | AuditStep::Cancelled | AuditStep::Paused | AuditStep::AwaitingApproval) {
            return Ok(report);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The target kind from the flags.
pub fn target_kind(request: bool, all_active: bool) -> AuditTargetKind {
    match (request, all_active) {
        (_, true) => AuditTargetKind::AllActive,
        (true, false) => AuditTargetKind::Request,
        (false, false) => AuditTargetKind::Resource,
    }
}
