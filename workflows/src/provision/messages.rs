//! Updates and signals: one `check_*` rule backs an update's validator and its handler, and
//! the signals reuse the handlers. A refused signal is recorded (signals cannot answer).

use tollgate_proto::{
    Ack, AiOutcome, CancelCommand, Cancellation, Decision, DecisionKind, LifecycleCommand, Settings, TimelineEntry,
};

use super::ProvisionWorkflow;
use crate::incoming::Incoming;
use crate::refusal::Refusal;
use crate::{defaults, fmt_time_ms, lifecycle, quorum};

/// Refusals kept in the progress; older ones are counted, not kept, so a flood of bad
/// signals cannot grow the state without bound.
const MAX_REFUSALS: usize = 50;

impl ProvisionWorkflow {
    /// The worker's settings once loaded, the built-in defaults before.
    pub(super) fn settings(&self) -> Settings {
        self.progress.settings.clone().unwrap_or_else(defaults::settings)
    }

    pub(super) fn requester(&self) -> &str {
        self.progress.request.as_ref().map(|r| r.requester.as_str()).unwrap_or_default()
    }

    /// The requester and everyone who decided: who hears how a request ended.
    pub(super) fn everyone(&self) -> Vec<String> {
        let mut to = vec![self.requester().to_string()];
        to.extend(self.progress.decisions.iter().map(|d| d.user.clone()));
        to
    }

    /// A cancellation (update, signal or Temporal) has been recorded.
    pub(super) fn cancelling(&self) -> bool {
        self.progress.cancellation.is_some()
    }

    pub(super) fn check_decision(&self, m: &Incoming<Decision>, kind: DecisionKind) -> Result<Decision, Refusal> {
        let mut decision = m.get()?.clone();
        decision.kind = kind as i32;
        self.check_link(&decision.link_id)?;
        let settings = self.settings();
        if let Some(ai) = settings.ai_approver.as_ref().filter(|ai| ai.name == decision.user) {
            return Err(Refusal::new(
                crate::refusal::Code::NotAnApprover,
                format!(
                    "{} is the AI approver's name: only it decides as {}; decide under your own name",
                    ai.name, ai.name
                ),
            ));
        }
        quorum::check_decision(
            &quorum::DecisionContext {
                stage: self.progress.stage_enum(),
                requester: self.requester(),
                approving_users: &settings.approving_users,
                groups: &self.progress.approval_groups,
                decisions: &quorum::for_plan(&self.progress.decisions, &self.progress.plan_digest),
                current_plan_digest: &self.progress.plan_digest,
            },
            &decision,
        )?;
        Ok(decision)
    }

    pub(super) fn record_decision(
        &mut self,
        now: i64,
        m: Incoming<Decision>,
        kind: DecisionKind,
    ) -> Result<Ack, Refusal> {
        let mut decision = self.check_decision(&m, kind)?;
        decision.at = tollgate_proto::at(now);
        if decision.plan_digest.is_empty() {
            decision.plan_digest = self.progress.plan_digest.clone();
        }
        self.use_link(&decision.link_id);
        let verb = if kind == DecisionKind::Approve { "approved" } else { "rejected" };
        let mut message = format!("{} {verb} {}", decision.user, self.progress.request_id);
        // An approval while the AI's rejection awaits its overturn window overturns it.
        if let Some(review) = self.progress.ai_review.as_mut()
            && review.outcome() == AiOutcome::RejectedAlone
            && kind == DecisionKind::Approve
        {
            review.outcome = AiOutcome::Overturned as i32;
            review.overturned_by = decision.user.clone();
            review.outcome_reason = format!("{} overturned its rejection", decision.user);
            message.push_str(" (the AI approver's rejection is overturned)");
        }
        self.progress.decisions.push(decision);
        self.version += 1;
        Ok(self.ack(message))
    }

    pub(super) fn check_repair(&self, m: &Incoming<LifecycleCommand>) -> Result<LifecycleCommand, Refusal> {
        let command = m.get()?.clone();
        let settings = self.settings();
        lifecycle::check_lifecycle_user(
            self.progress.stage_enum(),
            &command.user,
            self.requester(),
            &settings.approving_users,
            "repair",
        )?;
        self.check_not_ending()?;
        if command.comment.trim().is_empty() {
            return Err(Refusal::new(
                crate::refusal::Code::Malformed,
                "a repair names the audit that asks for it (comment)",
            ));
        }
        Ok(command)
    }

    pub(super) fn record_repair(&mut self, _now: i64, m: Incoming<LifecycleCommand>) -> Result<Ack, Refusal> {
        let command = self.check_repair(&m)?;
        // The same audit asking again (its activity retried): one repair per audit.
        let audit = command.comment.as_str();
        let queued = self.repair_requested.as_ref().is_some_and(|r| r.comment == audit);
        let done = self.progress.drift.iter().any(|d| d.audit_id == audit);
        if queued || done || self.repairing.as_deref() == Some(audit) {
            return Ok(
                self.ack(format!("{} is already repaired (or being repaired) for {audit}", self.progress.request_id))
            );
        }
        let message =
            format!("{} re-applies its approved configuration for {}", self.progress.request_id, command.comment);
        self.repair_requested = Some(command);
        self.version += 1;
        Ok(self.ack(message))
    }

    /// A keep's rule: who may (the requester, an approver, and while an extension is asked,
    /// the approvers asked), when, and the new expiry. An asked approver's keep without its own
    /// `extension` grants what was asked.
    pub(super) fn check_keep(&self, m: &Incoming<LifecycleCommand>) -> Result<(LifecycleCommand, i64), Refusal> {
        let command = m.get()?.clone();
        self.check_link(&command.link_id)?;
        let settings = self.settings();
        let mut keepers = settings.approving_users.clone();
        let ask = self.progress.extension_ask.as_ref();
        keepers.extend(ask.into_iter().flat_map(|a| a.approvers.iter().cloned()));
        lifecycle::check_lifecycle_user(self.progress.stage_enum(), &command.user, self.requester(), &keepers, "keep")?;
        self.check_not_ending()?;
        let expires = tollgate_proto::ms(&self.progress.expires_at);
        if let Some(ask) = ask.filter(|a| command.extension.is_empty() && a.approvers.contains(&command.user)) {
            return Ok((command, tollgate_proto::ms(&ask.until).max(expires)));
        }
        let extension = match command.extension.trim() {
            "" => tollgate_proto::span_ms(&settings.extension_period),
            text => lifecycle::parse_extension(text)?,
        };
        let expiry = lifecycle::extend(expires, extension, tollgate_proto::ms(&self.progress.max_expires_at))?;
        Ok((command, expiry))
    }

    pub(super) fn record_keep(&mut self, now: i64, m: Incoming<LifecycleCommand>) -> Result<Ack, Refusal> {
        let (command, new_expiry) = self.check_keep(&m)?;
        self.use_link(&command.link_id);
        Ok(self.kept(now, &command.user, new_expiry, String::new()))
    }

    /// Moves the expiry; `priced` says what the team's ledger said (empty without a budget).
    pub(super) fn kept(&mut self, now: i64, user: &str, new_expiry: i64, priced: String) -> Ack {
        self.progress.expires_at = tollgate_proto::at(new_expiry);
        self.progress.extensions += 1;
        self.progress.last_expiry_warning = tollgate_proto::at(0);
        self.progress.extension_ask = None;
        let outcome = format!("expires at {}", fmt_time_ms(new_expiry));
        self.progress.timeline.push(TimelineEntry {
            step: format!("keep by {user}"),
            started_at: tollgate_proto::at(now),
            ended_at: tollgate_proto::at(now),
            attempts: 0,
            outcome: if priced.is_empty() { outcome } else { format!("{outcome}; {priced}") },
        });
        self.version += 1;
        let capped =
            if new_expiry >= tollgate_proto::ms(&self.progress.max_expires_at) { " (the max_ttl cap)" } else { "" };
        let priced = if priced.is_empty() { String::new() } else { format!("; {priced}") };
        self.ack(format!("kept until {}{capped}{priced}", fmt_time_ms(new_expiry)))
    }

    pub(super) fn check_destroy(&self, m: &Incoming<LifecycleCommand>) -> Result<LifecycleCommand, Refusal> {
        let command = m.get()?.clone();
        self.check_link(&command.link_id)?;
        lifecycle::check_lifecycle_user(
            self.progress.stage_enum(),
            &command.user,
            self.requester(),
            &self.settings().approving_users,
            "destroy",
        )?;
        self.check_not_ending()?;
        Ok(command)
    }

    pub(super) fn record_destroy(&mut self, now: i64, m: Incoming<LifecycleCommand>) -> Result<Ack, Refusal> {
        let mut command = self.check_destroy(&m)?;
        self.use_link(&command.link_id);
        command.at = tollgate_proto::at(now);
        let message = format!("{} asked to destroy {}", command.user, self.progress.request_id);
        self.destroy_requested = Some(command);
        self.version += 1;
        Ok(self.ack(message))
    }

    pub(super) fn check_cancel(&self, m: &Incoming<CancelCommand>) -> Result<CancelCommand, Refusal> {
        let command = m.get()?.clone();
        lifecycle::check_cancel(
            self.progress.stage_enum(),
            &command.user,
            self.requester(),
            &self.settings().approving_users,
            self.cancelling() || self.destroy_requested.is_some(),
        )?;
        Ok(command)
    }

    pub(super) fn record_cancel(&mut self, now: i64, m: Incoming<CancelCommand>) -> Result<Ack, Refusal> {
        let command = self.check_cancel(&m)?;
        self.progress.cancellation = Some(Cancellation {
            by: command.user.clone(),
            reason: command.reason,
            at: tollgate_proto::at(now),
            stage: self.progress.stage,
        });
        self.version += 1;
        Ok(self.ack(format!(
            "{} cancelled {}: nothing more will be created and whatever exists will be destroyed",
            command.user, self.progress.request_id
        )))
    }

    /// A signed one-click link works once. (Messages without a link, which is every message
    /// recorded before links existed, are unaffected, so replay does not change.)
    pub(super) fn check_link(&self, link_id: &str) -> Result<(), Refusal> {
        if !link_id.is_empty() && self.progress.used_links.iter().any(|l| l == link_id) {
            return Err(Refusal::new(crate::refusal::Code::LinkUsed, "this link has already been used"));
        }
        Ok(())
    }

    pub(super) fn use_link(&mut self, link_id: &str) {
        if !link_id.is_empty() {
            self.progress.used_links.push(link_id.to_string());
        }
    }

    fn check_not_ending(&self) -> Result<(), Refusal> {
        if self.destroy_requested.is_some() || self.cancelling() {
            return Err(Refusal::new(
                crate::refusal::Code::AlreadyEnding,
                "request is already being destroyed or cancelled",
            ));
        }
        Ok(())
    }

    /// Records a refused signal, keeping the newest `MAX_REFUSALS`.
    pub(super) fn refused(&mut self, now: i64, source: &str, refusal: Refusal) {
        self.progress.refusals.push(refusal.record(source, now));
        if self.progress.refusals.len() > MAX_REFUSALS {
            let excess = self.progress.refusals.len() - MAX_REFUSALS;
            self.progress.refusals.drain(..excess);
            self.progress.refusals_dropped += excess as u32;
        }
    }

    pub(super) fn ack(&self, message: String) -> Ack {
        Ack {
            message,
            stage: self.progress.stage,
            expires_at: self.progress.expires_at,
            approvals: self.progress.approvals() as u32,
            required_approvals: self.progress.required_approvals,
            extension_asked: false,
        }
    }
}
