//! A keep priced by the team's budget: a request that holds a reservation in its team's
//! ledger is kept only once the ledger has the longer life. Within the headroom (or when one of
//! the team's approvers keeps it) it is kept at once; past it the team's approvers are asked,
//! with the price of the added time, and their keep grants it. Without a budget a keep only
//! moves the expiry, as it always did.

use temporalio_sdk::WorkflowContext;
use tollgate_proto::{Ack, ExtensionAsk, LifecycleCommand, NotificationKind, ReserveInput};

use super::{ProvisionWorkflow, display, notifications};
use crate::activities::defs as act;
use crate::incoming::Incoming;
use crate::kit::options::{self, ActivityName, Scope};
use crate::kit::{StepError, clock, step};
use crate::refusal::{Code, Refusal};
use crate::{fmt_time_ms, headroom, patches};

/// What the ledger needs to price a keep of this request.
struct Budgeted {
    team: String,
    budget_monthly: f64,
    monthly_cost: f64,
    /// The team's approvers, the requester left out: they may keep past the headroom.
    approvers: Vec<String>,
}

impl ProvisionWorkflow {
    /// Still ACTIVE and not ending (a destroy or cancel may arrive while the ledger is asked).
    fn still_keepable(&self) -> Result<(), Refusal> {
        if self.progress.stage_enum() != tollgate_proto::Stage::Active
            || self.destroy_requested.is_some()
            || self.cancelling()
        {
            return Err(Refusal::new(Code::AlreadyEnding, "request is being destroyed or cancelled; it is not kept"));
        }
        Ok(())
    }

    /// The request's team budget, when its gate judged it against one.
    fn budgeted(&self) -> Option<Budgeted> {
        let judged = self.progress.gate.as_ref()?.headroom.as_ref()?;
        let settings = self.settings();
        let team = settings.teams.iter().find(|t| t.name == judged.team)?;
        let requester = self.requester();
        Some(Budgeted {
            team: team.name.clone(),
            budget_monthly: team.budget_monthly?,
            monthly_cost: self.progress.cost.as_ref().map(|c| c.monthly_total).unwrap_or_default(),
            approvers: team.approver_people.iter().filter(|p| *p != requester).cloned().collect(),
        })
    }
}

/// The `keep` update and signal: checked, priced when the team has a budget, then kept or
/// asked of the team's approvers.
pub(super) async fn keep(
    ctx: &mut WorkflowContext<ProvisionWorkflow>,
    m: Incoming<LifecycleCommand>,
) -> Result<Ack, Refusal> {
    let now = clock::now_ms(ctx);
    let (command, until) = ctx.state(|s| s.check_keep(&m))?;
    let Some(budget) = ctx.state(|s| s.budgeted()).filter(|_| ctx.patched(patches::EXTENSION_PRICED)) else {
        return ctx.state_mut(|s| s.record_keep(now, m));
    };
    // The link is spent before the ledger is asked, so a second click cannot ask twice.
    ctx.state_mut(|s| s.use_link(&command.link_id));
    let (request_id, expires) =
        ctx.state(|s| (s.progress.request_id.clone(), tollgate_proto::ms(&s.progress.expires_at)));
    let grants = budget.approvers.contains(&command.user);
    let input = ReserveInput {
        team: budget.team.clone(),
        request_id,
        monthly_cost: budget.monthly_cost,
        ttl: tollgate_proto::span((until - now).max(0) as u64),
        budget_monthly: budget.budget_monthly,
        force: grants,
    };
    let settings = ctx.state(|s| s.settings());
    let options = options::of(ActivityName::ReserveHeadroom, &settings, Scope::Cancellable);
    let decision = match step(ctx, "extension headroom", act::ReserveHeadroom, input, options, |_| 1).await {
        Ok(decision) => decision,
        Err(StepError::Failed(f)) => {
            return Err(Refusal::new(
                Code::LedgerUnavailable,
                format!(
                    "team {}'s budget ledger did not answer ({}); nothing changed, keep again",
                    budget.team, f.message
                ),
            ));
        }
        Err(StepError::Cancelled) => return Err(Refusal::new(Code::AlreadyEnding, "request is being cancelled")),
    };
    // A destroy or cancel may have come in while the ledger was asked: the keep does not undo it
    // (the ending releases the reservation).
    ctx.state(|s| s.still_keepable())?;
    let added = (until - expires).max(0);
    let price = headroom::price(budget.monthly_cost, added);
    let for_time = format!("${price:.2} for {}", crate::fmt_duration_ms(added as u64));
    let now = clock::now_ms(ctx);
    if decision.reserved {
        let how = if decision.admitted { "within" } else { "granted past" };
        let priced = format!("{for_time}, {how} the team's headroom: {}", decision.text);
        let ack = ctx.state_mut(|s| s.kept(now, &command.user, until, priced));
        let (id, requester) = ctx.state(|s| (s.progress.request_id.clone(), s.requester().to_string()));
        if grants {
            let body = format!("{} kept {id} for you: {}", command.user, ack.message);
            notifications::notify(ctx, NotificationKind::ExtensionGranted, &[requester], "extension granted", body)
                .await;
        }
        return Ok(ack);
    }
    if budget.approvers.is_empty() {
        return Err(Refusal::new(
            Code::OverBudget,
            format!(
                "keeping it until {} costs {for_time}, past the team's headroom ({}), and team {} has no approvers to grant it",
                fmt_time_ms(until),
                decision.text,
                budget.team
            ),
        ));
    }
    let asked = ExtensionAsk {
        by: command.user.clone(),
        until: tollgate_proto::at(until),
        price,
        reason: decision.text.clone(),
        team: budget.team.clone(),
        approvers: budget.approvers.clone(),
        asked_at: tollgate_proto::at(now),
    };
    let (ack, body) = ctx.state_mut(|s| {
        s.progress.extension_ask = Some(asked.clone());
        s.version += 1;
        let message = display::extension_asked(&s.progress, &asked, &for_time);
        let ack = Ack { extension_asked: true, ..s.ack(message) };
        (ack, display::extension_body(&s.progress.request_id, &asked, &for_time))
    });
    let subject = format!("keep until {}? ({for_time}, past the team's headroom)", fmt_time_ms(until));
    let label = format!("Keep until {} (${price:.2})", fmt_time_ms(until));
    let kind = NotificationKind::ExtensionNeeded;
    notifications::notify_with(ctx, kind, &budget.approvers, &subject, body, 0, [("keep_label", label)]).await;
    Ok(ack)
}
