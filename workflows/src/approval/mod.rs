//! `ApprovalWorkflow`: one generic approval ("may the agent do X?") from `POST /workflows` to
//! APPROVED, REJECTED or TIMED_OUT. The timeout is a durable timer, so an approval times out on
//! time even when nobody reads it, and every state lives in Temporal: the gateway keeps none.

pub mod rules;

use temporalio_macros::workflow;
use temporalio_sdk::{WorkflowContext, WorkflowContextView, WorkflowResult};
use tollgate_proto::{
    AiOutcome, AiReview, ApprovalDecision, ApprovalInput, ApprovalRecord, ApprovalStatus, Notification,
    NotificationKind, ReviewInput, TimelineEntry,
};

use crate::activities::defs as act;
use crate::ai::{self, Mode};
use crate::incoming::Incoming;
use crate::kit::approval::{ApprovalWait, Ask, Standing};
use crate::kit::clock::epoch_ms;
use crate::kit::messages::workflow_messages;
use crate::kit::notify::{self, ALL_CHANNELS};
use crate::kit::{StepError, Tracked, options, step};
use crate::patches;
use crate::quorum::Verdict;
use crate::refusal::Refusal;

/// The workflow type name.
pub const WORKFLOW_TYPE: &str = "ApprovalWorkflow";
/// Refused `decide` signals kept in the record.
const MAX_REFUSALS: usize = 20;
/// How much of the context a notification shows.
const MAX_CONTEXT_SHOWN: usize = 1_000;
/// Marks a notification as a generic approval's (`fields["approval"]`), so channels offer no
/// links (they are bound to a request's plan).
pub const GENERIC_FIELD: &str = "approval";

#[workflow]
pub struct ApprovalWorkflow {
    record: ApprovalRecord,
}

workflow_messages! {
impl ApprovalWorkflow {
    #[init]
    pub fn new(ctx: &WorkflowContextView, input: ApprovalInput) -> Self {
        let record = ApprovalRecord {
            workflow_id: ctx.workflow_id().to_string(),
            action: input.action,
            requested_by: input.requested_by,
            context_json: input.context_json,
            status: ApprovalStatus::Pending as i32,
            created_at: input.created_at,
            expires_at: input.expires_at,
            approvers: input.approvers,
            ..Default::default()
        };
        Self { record }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<ApprovalRecord> {
        let (action, by, expires) = ctx.state(|s| {
            (s.record.action.clone(), s.record.requested_by.clone(), tollgate_proto::ms(&s.record.expires_at))
        });
        ctx.set_current_details(format!("**Waiting for a decision** on: {action} (requested by {by})"));
        let notify = ctx.patched(patches::NOTIFY_APPROVERS);
        if ctx.patched(patches::AI_REVIEW_APPROVALS) {
            Self::review(ctx).await;
        }
        let pending = ctx.state(|s| s.record.status() == ApprovalStatus::Pending);
        if notify && pending {
            let n = ctx.state(|s| asking(&s.record));
            Self::tell(ctx, 1, n).await;
        }
        // Until the timeout, or sooner when the AI rejected alone and nobody overturns it: one
        // timer for both. What ended the wait is read from the record below.
        let started = epoch_ms(ctx.workflow_time());
        let ask = Ask { started, deadline: expires, remind_every: None, summary: "approval timeout", one_timer: true };
        let mut wait = ApprovalWait::new(ctx, ask);
        let standing = |ctx: &mut WorkflowContext<Self>| Standing {
            cancelled: ctx.cancellation_token().is_cancelled(),
            verdict: match ctx.state(|s| s.record.status()) {
                ApprovalStatus::Pending => Verdict::Pending { approvals: 0, required: 1 },
                ApprovalStatus::Approved => Verdict::Approved,
                _ => Verdict::Rejected,
            },
            overturn: ctx.state(|s| s.rejected_alone_until()),
        };
        let decided = |_: &WorkflowContext<Self>| |s: &ApprovalWorkflow| s.record.status() != ApprovalStatus::Pending;
        wait.next(ctx, standing, decided).await;
        let until = ctx.state(|s| s.rejected_alone_until()).map_or(expires, |o| o.min(expires));
        let cancelled = ctx.cancellation_token().is_cancelled();
        ctx.state_mut(|s| {
            if s.record.status() == ApprovalStatus::Pending
                && !cancelled
                && let Some(review) = s.record.ai_review.clone().filter(|r| r.outcome() == AiOutcome::RejectedAlone)
            {
                s.record.status = ApprovalStatus::Rejected as i32;
                s.record.resolved_at = tollgate_proto::at(until);
                s.record.resolved_by = review.settings.unwrap_or_default().name;
                s.record.comment = format!("{}; no approver overturned it", review.reasons.join("; "));
            }
        });
        let now = epoch_ms(ctx.workflow_time());
        // A Temporal cancellation wakes the wait too: it is a "no", never a timeout.
        let cancelled = ctx.cancellation_token().is_cancelled();
        ctx.state_mut(|s| {
            if s.record.status() == ApprovalStatus::Pending {
                s.record.resolved_at = tollgate_proto::at(now);
                if cancelled {
                    s.record.status = ApprovalStatus::Rejected as i32;
                    s.record.comment = "cancelled in Temporal before anyone decided".into();
                } else {
                    s.record.status = ApprovalStatus::TimedOut as i32;
                }
            }
        });
        let record = ctx.state(|s| s.record.clone());
        let by = if record.resolved_by.is_empty() { String::new() } else { format!(" by {}", record.resolved_by) };
        ctx.set_current_details(format!("**{}**{by}: {action}", rules::status_label(record.status())));
        if notify {
            Self::tell(ctx, 2, outcome(&record)).await;
        }
        Ok(record)
    }

    /// The approval as it stands.
    #[query]
    pub fn approval(&self, _ctx: &WorkflowContextView) -> ApprovalRecord {
        self.record.clone()
    }
}

messages {
    /// Approve or reject; answers with the record. Repeating the decision that was taken
    /// changes nothing and answers the same record. Its signal form is for tools that can
    /// only signal (the Web UI); refusals are kept in the record.
    decide(ApprovalDecision) -> ApprovalRecord: check, record(), signal;
}
}

impl Tracked for ApprovalWorkflow {
    fn timeline_mut(&mut self) -> &mut Vec<TimelineEntry> {
        &mut self.record.timeline
    }
}

impl ApprovalWorkflow {
    /// When the AI's rejection stands unless a human approves first.
    fn rejected_alone_until(&self) -> Option<i64> {
        let review = self.record.ai_review.as_ref().filter(|r| r.outcome() == AiOutcome::RejectedAlone)?;
        Some(tollgate_proto::ms(&review.overturn_deadline))
    }

    /// The AI approver's review, when the worker's settings turn it on: recorded, and in `full`
    /// mode within its limits it decides alone. A failed step leaves the approval to the humans.
    async fn review(ctx: &mut WorkflowContext<Self>) {
        let id = ctx.state(|s| s.record.workflow_id.clone());
        let Ok(settings) =
            step(ctx, "load settings", act::LoadSettings, id, options::load_settings(false), |_| 1).await
        else {
            return;
        };
        let Some(ai) = settings.ai_approver.clone().filter(|a| Mode::of(Some(a)) != Mode::Off) else { return };
        let input = ctx.state(|s| ReviewInput {
            workflow_id: s.record.workflow_id.clone(),
            action: s.record.action.clone(),
            context_json: s.record.context_json.clone(),
            requested_by: s.record.requested_by.clone(),
            ..Default::default()
        });
        let result = step(
            ctx,
            "ai review",
            act::Review,
            input,
            options::of(options::ActivityName::Review, &settings, options::Scope::Cancellable),
            |r| r.attempt,
        )
        .await;
        let now = epoch_ms(ctx.workflow_time());
        let mut review = match result {
            Ok(review) => review,
            Err(e) => AiReview {
                outcome: AiOutcome::Failed as i32,
                outcome_reason: match e {
                    StepError::Failed(f) => format!("the review failed ({}): the humans decide", f.message),
                    StepError::Cancelled => "cancelled".into(),
                },
                ..Default::default()
            },
        };
        review.at = tollgate_proto::at(now);
        if review.outcome() != AiOutcome::Failed {
            let pending = ctx.state(|s| s.record.status() == ApprovalStatus::Pending);
            let (outcome, why) = if !pending {
                (AiOutcome::TooLate, "a human decided before the review was done".to_string())
            } else if Mode::of(review.settings.as_ref()) == Mode::Off {
                (AiOutcome::Escalated, "the AI approver is off on the worker that reviewed it".to_string())
            } else {
                let action = ctx.state(|s| s.record.action.clone());
                ai::outcome(&ai, &ai::Subject::Approval { action: &action }, &review, 0, 1)
            };
            review.outcome = outcome as i32;
            review.outcome_reason = why;
        }
        review.settings = Some(ai.clone());
        if review.outcome() == AiOutcome::RejectedAlone {
            review.overturn_deadline = tollgate_proto::at(now + tollgate_proto::span_ms(&ai.overturn_window) as i64);
        }
        let line = ai::summary(&review);
        ctx.state_mut(|s| {
            if review.outcome() == AiOutcome::ApprovedAlone {
                s.record.status = ApprovalStatus::Approved as i32;
                s.record.resolved_at = tollgate_proto::at(now);
                s.record.resolved_by = ai.name.clone();
                s.record.comment = review.reasons.join("; ");
            }
            if review.outcome() != AiOutcome::Failed
                && let Some(entry) = s.record.timeline.iter_mut().rev().find(|t| t.step == "ai review")
            {
                entry.outcome = line;
            }
            s.record.ai_review = Some(review);
        });
    }

    /// One notification through every channel of the worker; a failure is logged by the
    /// activity and never changes the approval.
    async fn tell(ctx: &mut WorkflowContext<Self>, sequence: u32, notification: Notification) {
        let delivery_id = format!("{}/{sequence}", notification.request_id);
        let channels = [ALL_CHANNELS.to_string()];
        notify::send(ctx, notification, &channels, |_| delivery_id.clone(), options::standalone_notify(), 0).await;
    }

    fn check(&self, m: &Incoming<ApprovalDecision>) -> Result<(rules::Verdict, ApprovalDecision), Refusal> {
        let decision = m.get()?.clone();
        Ok((rules::check(&self.record, &decision)?, decision))
    }

    fn refused(&mut self, now: i64, source: &str, refusal: Refusal) {
        self.record.refusals.push(refusal.record(source, now));
        let excess = self.record.refusals.len().saturating_sub(MAX_REFUSALS);
        self.record.refusals.drain(..excess);
    }

    fn record(&mut self, now: i64, m: Incoming<ApprovalDecision>) -> Result<ApprovalRecord, Refusal> {
        let (verdict, decision) = self.check(&m)?;
        if let rules::Verdict::Resolve(status) = verdict {
            if let Some(review) = self.record.ai_review.as_mut()
                && review.outcome() == AiOutcome::RejectedAlone
                && status == ApprovalStatus::Approved
            {
                review.outcome = AiOutcome::Overturned as i32;
                review.overturned_by = decision.reviewed_by.clone();
                review.outcome_reason = format!("{} overturned its rejection", decision.reviewed_by);
            }
            self.record.status = status as i32;
            self.record.resolved_at = tollgate_proto::at(now);
            self.record.resolved_by = decision.reviewed_by;
            self.record.comment = decision.comment;
        }
        Ok(self.record.clone())
    }
}

fn fields(r: &ApprovalRecord) -> std::collections::BTreeMap<String, String> {
    let mut fields = std::collections::BTreeMap::new();
    fields.insert(GENERIC_FIELD.to_string(), "generic".to_string());
    fields.insert("requester".to_string(), r.requested_by.clone());
    fields.insert("status".to_string(), rules::status_label(r.status()).to_string());
    fields.insert("expires_at".to_string(), crate::fmt_time_ms(tollgate_proto::ms(&r.expires_at)));
    fields
}

/// "agent asks: deploy api" to the approvers.
fn asking(r: &ApprovalRecord) -> Notification {
    let mut context: String = r.context_json.chars().take(MAX_CONTEXT_SHOWN).collect();
    if context.len() < r.context_json.len() {
        context.push('…');
    }
    let ai = match r.ai_review.as_ref().filter(|review| review.outcome != 0) {
        Some(review) => format!("\nAI approver: {}", ai::summary(review)),
        None => String::new(),
    };
    Notification {
        kind: NotificationKind::ApprovalNeeded as i32,
        request_id: r.workflow_id.clone(),
        recipients: r.approvers.clone(),
        subject: format!("[tollgate] {}: approval needed", r.workflow_id),
        body: format!(
            "{} asks: {}\nContext: {context}{ai}\nDecide by {}.",
            r.requested_by,
            r.action,
            crate::fmt_time_ms(tollgate_proto::ms(&r.expires_at))
        ),
        fields: fields(r),
    }
}

/// The outcome, to the approvers and the agent's owner.
fn outcome(r: &ApprovalRecord) -> Notification {
    let status = rules::status_label(r.status());
    let by = if r.resolved_by.is_empty() { String::new() } else { format!(" by {}", r.resolved_by) };
    let comment = if r.comment.is_empty() { String::new() } else { format!(" ({})", r.comment) };
    let mut recipients = r.approvers.clone();
    recipients.push(r.requested_by.clone());
    recipients.sort();
    recipients.dedup();
    Notification {
        kind: if r.status() == ApprovalStatus::TimedOut { NotificationKind::Ended } else { NotificationKind::Decision }
            as i32,
        request_id: r.workflow_id.clone(),
        recipients,
        subject: format!("[tollgate] {}: {}", r.workflow_id, status.to_lowercase()),
        body: format!("{}: {status}{by}{comment}", r.action),
        fields: fields(r),
    }
}
