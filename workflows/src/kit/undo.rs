//! Compensation as data: a step that creates something registers its undo when it succeeds;
//! failure, cancellation and the end of a resource's life run the registered undos newest
//! first. An undo that fails stays registered and shows: a visible "stuck" state for a human.

use temporalio_sdk::WorkflowContext;
use tollgate_proto::{DestroyInput, ReleaseInput, Settings, StepFailure, Undo};

use super::options::{self, Scope};
use super::{StepError, Tracked, step};
use crate::activities::defs as act;
use crate::failure::FailureType;

/// What an undo does. The wire name is kept in the progress (and so in histories).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoAction {
    /// Destroy what the request created, from its stored state.
    Destroy,
    /// Free the request's reservation in its team's budget ledger.
    ReleaseHeadroom,
}

impl UndoAction {
    pub fn as_str(self) -> &'static str {
        match self {
            UndoAction::Destroy => "destroy",
            UndoAction::ReleaseHeadroom => "release_headroom",
        }
    }

    pub fn parse(action: &str) -> Option<UndoAction> {
        match action {
            "destroy" => Some(UndoAction::Destroy),
            "release_headroom" => Some(UndoAction::ReleaseHeadroom),
            _ => None,
        }
    }
}

/// The name a destroy has on the timeline (and in a failure's `step`).
pub const DESTROY_STEP: &str = "destroy";

/// A workflow that creates things and so keeps undos.
pub trait Compensating: Tracked {
    fn undos_mut(&mut self) -> &mut Vec<Undo>;
    fn undos(&self) -> &[Undo];
    /// The settings its steps run with.
    fn settings(&self) -> Settings;
    /// What a destroy undo destroys.
    fn destroy_input(&self) -> DestroyInput;
    /// What a release undo frees (none: the workflow reserves nothing).
    fn release_input(&self) -> Option<ReleaseInput> {
        None
    }
}

/// Registers an undo to run if the workflow fails or is cancelled from here on; once per
/// step (a step repeated, as in a re-plan after a stale plan, keeps one undo).
pub fn register<W: Compensating>(ctx: &mut WorkflowContext<W>, step: &str, action: UndoAction, description: String) {
    ctx.state_mut(|s| {
        if !s.undos().iter().any(|u| u.step == step) {
            s.undos_mut().push(Undo { step: step.to_string(), action: action.as_str().to_string(), description })
        }
    });
}

/// Runs the registered undos, newest first. Returns what was destroyed, or the failure of the
/// undo that could not run (it stays registered). Undos are shielded from cancellation.
pub async fn run_all<W: Compensating>(ctx: &mut WorkflowContext<W>) -> Result<Vec<String>, StepFailure> {
    let settings = ctx.state(|s| s.settings());
    let mut destroyed = Vec::new();
    while let Some(undo) = ctx.state(|s| s.undos().last().cloned()) {
        match UndoAction::parse(&undo.action) {
            Some(UndoAction::Destroy) => {
                let input = ctx.state(|s| s.destroy_input());
                let options = options::of(options::ActivityName::Destroy, &settings, Scope::Shielded);
                match step(ctx, DESTROY_STEP, act::Destroy, input, options, |d| d.attempt).await {
                    Ok(result) => destroyed.extend(result.destroyed),
                    Err(StepError::Failed(failure)) => return Err(failure),
                    Err(StepError::Cancelled) => unreachable!("a shielded step is never cancelled"),
                }
            }
            Some(UndoAction::ReleaseHeadroom) => {
                if let Some(input) = ctx.state(|s| s.release_input()) {
                    let options = options::of(options::ActivityName::ReleaseHeadroom, &settings, Scope::Shielded);
                    if let Err(StepError::Failed(failure)) =
                        step(ctx, "release headroom", act::ReleaseHeadroom, input, options, |_| 1).await
                    {
                        return Err(failure);
                    }
                }
            }
            None => {
                return Err(StepFailure {
                    step: undo.step.clone(),
                    type_name: FailureType::UnknownUndo.as_str().into(),
                    non_retryable: true,
                    message: format!("no way to run undo action '{}'", undo.action),
                    ..Default::default()
                });
            }
        }
        ctx.state_mut(|s| s.undos_mut().pop());
    }
    Ok(destroyed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_actions_keep_their_wire_names() {
        assert_eq!(UndoAction::parse(UndoAction::Destroy.as_str()), Some(UndoAction::Destroy));
        assert_eq!(UndoAction::Destroy.as_str(), "destroy");
        assert_eq!(UndoAction::parse("explode"), None);
    }
}
