//! A workflow's messages declared once. Each message is an update whose validator refuses at
//! once (the caller hears the refusal's code) and, for tools that can only signal (the Web UI),
//! a signal of the same name whose refusals the workflow records with `refused`. One rule backs
//! all three: `check` (reads the state) for the validator, `record` (checks again, then
//! changes the state) for the update and the signal.
//!
//! ```ignore
//! workflow_messages! {
//!     impl ProvisionWorkflow {
//!         #[init] ...  #[run] ...  #[query] ...   // written as usual
//!     }
//!     messages {
//!         /// Keep the resources for another `extension_period`.
//!         keep(LifecycleCommand) -> Ack: check_keep, record_keep(), signal;
//!         approve(Decision) -> Ack: check_decision, record_decision(DecisionKind::Approve), signal;
//!     }
//! }
//! ```
//!
//! makes, for `keep`: `validate_keep(&self, ctx, m)` calling `self.check_keep(m)`; the update
//! `keep(&mut self, ctx, m)` calling `self.record_keep(now, m)`; and (with `signal`) the signal
//! `keep_signal`, named "keep", calling the same `record_keep` and `self.refused(now, "signal
//! keep", refusal)` when it refuses. Arguments in the parentheses follow `m` in both calls.
//! Inputs and outputs are type names; `now` is the workflow time in Unix milliseconds.

/// See the module's documentation.
macro_rules! workflow_messages {
    // Everything made: one `#[workflow_methods]` impl, so the SDK registers every handler.
    (@made $ty:ident { $($body:tt)* } { $($made:tt)* }) => {
        ::pastey::paste! {
            #[::temporalio_macros::workflow_methods]
            impl $ty {
                $($body)*
                $($made)*
            }
        }
    };
    // A message with a signal form: the signal, then the message as one without.
    (@made $ty:ident { $($body:tt)* } { $($made:tt)* }
        $(#[doc = $doc:tt])*
        $name:ident($input:ident) -> $output:ident: $check:ident, $record:ident($($arg:tt)*), signal;
        $($rest:tt)*
    ) => {
        $crate::kit::messages::workflow_messages!(@made $ty { $($body)* } { $($made)*
            #[doc = "Signal form of `" $name "`: the same rule; a refusal is recorded."]
            #[signal(name = stringify!($name))]
            pub fn [<$name _signal>](
                &mut self,
                ctx: &mut ::temporalio_sdk::SyncWorkflowContext<Self>,
                m: $crate::incoming::Incoming<$input>,
            ) {
                let now = $crate::kit::clock::epoch_ms(ctx.workflow_time());
                if let Err(refusal) = self.$record(now, m, $($arg)*) {
                    self.refused(now, concat!("signal ", stringify!($name)), refusal);
                }
            }
        }
        $(#[doc = $doc])*
        $name($input) -> $output: $check, $record($($arg)*);
        $($rest)*);
    };
    // A message: its validator and its update.
    (@made $ty:ident { $($body:tt)* } { $($made:tt)* }
        $(#[doc = $doc:tt])*
        $name:ident($input:ident) -> $output:ident: $check:ident, $record:ident($($arg:tt)*);
        $($rest:tt)*
    ) => {
        $crate::kit::messages::workflow_messages!(@made $ty { $($body)* } { $($made)*
            #[update_validator($name)]
            fn [<validate_ $name>](
                &self,
                _ctx: &::temporalio_sdk::WorkflowContextView,
                m: &$crate::incoming::Incoming<$input>,
            ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                self.$check(m, $($arg)*).map(drop).map_err(|r| r.into_failure())
            }

            $(#[doc = $doc])*
            #[update]
            pub fn $name(
                &mut self,
                ctx: &mut ::temporalio_sdk::SyncWorkflowContext<Self>,
                m: $crate::incoming::Incoming<$input>,
            ) -> Result<$output, Box<dyn std::error::Error + Send + Sync>> {
                let now = $crate::kit::clock::epoch_ms(ctx.workflow_time());
                self.$record(now, m, $($arg)*).map_err(|r| r.into_failure())
            }
        } $($rest)*);
    };
    // Entry: the impl's own items, then the messages.
    (impl $ty:ident { $($body:tt)* } messages { $($messages:tt)* }) => {
        $crate::kit::messages::workflow_messages!(@made $ty { $($body)* } { } $($messages)*);
    };
}

pub(crate) use workflow_messages;

#[cfg(test)]
mod tests {
    use temporalio_common::{SignalDefinition, UpdateDefinition};

    use crate::{ApprovalWorkflow, AuditWorkflow, ProvisionWorkflow};

    /// The wire names the CLI, the gateway and the Web UI send: each signal is named as its
    /// update (the refusals at once are held by the `messages` integration tests).
    #[test]
    fn every_message_keeps_its_wire_name() {
        let provision = [
            (ProvisionWorkflow::approve.name(), ProvisionWorkflow::approve_signal.name()),
            (ProvisionWorkflow::reject.name(), ProvisionWorkflow::reject_signal.name()),
            (ProvisionWorkflow::keep.name(), ProvisionWorkflow::keep_signal.name()),
            (ProvisionWorkflow::destroy.name(), ProvisionWorkflow::destroy_signal.name()),
            (ProvisionWorkflow::cancel.name(), ProvisionWorkflow::cancel_signal.name()),
        ];
        let audit = [
            (AuditWorkflow::retry.name(), AuditWorkflow::retry_signal.name()),
            (AuditWorkflow::cancel.name(), AuditWorkflow::cancel_signal.name()),
            (AuditWorkflow::approve.name(), AuditWorkflow::approve_signal.name()),
            (AuditWorkflow::reject.name(), AuditWorkflow::reject_signal.name()),
        ];
        let approval = [(ApprovalWorkflow::decide.name(), ApprovalWorkflow::decide_signal.name())];
        let names = |pairs: &[(&str, &str)]| pairs.iter().map(|(u, s)| format!("{u}/{s}")).collect::<Vec<_>>();
        assert_eq!(
            names(&provision),
            ["approve/approve", "reject/reject", "keep/keep", "destroy/destroy", "cancel/cancel"]
        );
        assert_eq!(names(&audit), ["retry/retry", "cancel/cancel", "approve/approve", "reject/reject"]);
        assert_eq!(names(&approval), ["decide/decide"]);
        assert_eq!(ProvisionWorkflow::repair.name(), "repair");
    }
}
