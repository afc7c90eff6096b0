//! The workflow kit: what every Tollgate workflow uses to run activities and keep people
//! informed, so a new workflow (an audit, an AI review) starts from it instead of copying
//! `provision`. A workflow's state opts in through [`Tracked`] (its timeline) and, when it
//! creates things, [`undo::Compensating`] (its undo list and settings).
//!
//! - [`step`]: one activity, recorded on the timeline (start, end, attempts, outcome), its
//!   failure typed; [`record`] for steps that are not activities (a gate, a wait).
//! - [`options`]: activity options and retry policies by kind of step (engine steps
//!   heartbeat and may be shielded from cancellation; quick steps do not heartbeat).
//! - [`notify`]: one notification through each channel, a stable delivery id per channel.
//! - [`undo`]: compensation as data, run newest first.
//! - [`clock`] and [`markdown`]: workflow time in Unix milliseconds; Web UI text.
//! - [`alarm`]: waiting loops that act on the timer that fired, never on the clock.
//! - [`metrics`]: Tollgate's own metrics, recorded outside replay.

pub mod alarm;
pub mod approval;
pub mod clock;
pub mod markdown;
pub mod messages;
pub use tollgate_proto::metrics;
pub mod notify;
pub mod options;
pub mod pass;
pub mod step;
pub mod undo;

pub use step::{StepError, record, step};

use tollgate_proto::TimelineEntry;

/// A workflow whose steps are recorded on a timeline (the `progress` query shows it).
pub trait Tracked {
    fn timeline_mut(&mut self) -> &mut Vec<TimelineEntry>;
}
