//! The activities the workflow calls, declared here (input and output only) and implemented
//! by the `tollgate-activities` crate, so this crate needs no I/O dependency. Names are the
//! Temporal activity type names another language's worker would register. The SDK's
//! `#[activity_definitions]` requires each body to be exactly `unimplemented!()`: these are
//! declarations, never called; the bodies live in `tollgate-activities`. Each declaration
//! also names its [`Shape`], from which `kit::options` builds its options.

use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;
pub use tollgate_proto::words::ActivityName;
use tollgate_proto::{
    AiReview, AnalyseInput, ApplyInput, ApplyResult, AuditAnalysis, CostContext, CostContextInput, DestroyInput,
    DestroyResult, DiscoverInput, Discovery, EstimateInput, EstimateResult, FileReportInput, FileReportResult,
    GenerateModuleInput, GeneratedModule, HeadroomDecision, HoldingsResult, LedgerHoldingsInput, LedgerHoldingsResult,
    MarkCostsInput, MarkCostsResult, MeasureCostsInput, MeasureCostsResult, NewFindingsInput, NewFindingsResult,
    NotifyInput, NotifyResult, PlanInput, PlanResult, PolicyInput, PolicyResult, ReleaseInput, RemediateInput,
    Remediation, RepairInput, RepairResult, RequestStatesInput, RequestStatesResult, ReserveInput, ReviewInput,
    Settings,
};

/// How an activity runs, chosen once beside its declaration (`declare_activities!`): its
/// timeouts and heartbeat. The caller gives the rest: the settings its retry policy comes from
/// and whether the workflow's cancellation reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Short and cheap: 30 s per attempt (settings, generation, notifications,
    /// Temporal reads).
    Quick,
    /// Quick, and it only reads: may run as a local activity (`options::local`).
    Reading,
    /// Terraform: long, heartbeating, with the configured timeout of its kind.
    Engine(EngineTimeout),
    /// The AI approver's review: its configured timeout, at most `options::REVIEW_ATTEMPTS` (a review
    /// that keeps failing is left to the humans, never waited on for long).
    Review,
    /// An audit's read-and-judge step (policy engines and models are slow): a minute per
    /// attempt; then the audit pauses for a person to retry it.
    AuditStep,
    /// An audit's fix applied through its owning request: long enough for a re-plan and an
    /// apply, heartbeating while it waits.
    AuditRepair,
}

/// Which configured engine timeout an engine step runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineTimeout {
    /// `timeouts.plan` (plans, and listing what the engine holds).
    Plan,
    /// `timeouts.apply`.
    Apply,
    /// `timeouts.destroy`.
    Destroy,
}

/// Declares each activity once: its name (an [`ActivityName`]), input, output and shape (its
/// timeouts and heartbeat, see [`Shape`]). Makes the SDK's declaration (whose body must be
/// exactly `unimplemented!()`: these are never called), [`shape`] (the options' source:
/// `options::of`), and [`DECLARED`], which a test holds equal to every [`ActivityName`].
macro_rules! declare_activities {
    ($($(#[doc = $doc:tt])* $variant:ident: $name:ident($arg:ident: $input:ident) -> $output:ty => $shape:expr;)*) => {
        pub struct ProvisionActivities;

        #[activity_definitions]
        impl ProvisionActivities {
            $(
                $(#[doc = $doc])*
                #[activity(name = ActivityName::$variant.as_str())]
                pub fn $name($arg: $input) -> Result<$output, ActivityError> {
                    unimplemented!()
                }
            )*
        }

        /// Every activity declared here, in order.
        pub const DECLARED: &[ActivityName] = &[$(ActivityName::$variant),*];

        /// How `activity` runs, as its declaration says (an undeclared name does not compile).
        pub const fn shape(activity: ActivityName) -> Shape {
            match activity {
                $(ActivityName::$variant => $shape,)*
            }
        }
    };
}

use Shape::*;

declare_activities! {
    /// The worker's rules (approvers, thresholds, durations) for this run.
    LoadSettings: load_settings(request_id: String) -> Settings => Quick;
    /// Writes the Terraform root module for the request and stores it as an artifact.
    GenerateModule: generate_module(input: GenerateModuleInput) -> GeneratedModule => Quick;
    /// Plans the module with the configured engine; stores Terraform's plan JSON.
    Plan: plan(input: PlanInput) -> PlanResult => Engine(EngineTimeout::Plan);
    /// Evaluates the worker's policy pack over the stored plan JSON.
    CheckPolicy: check_policy(input: PolicyInput) -> PolicyResult => Reading;
    /// Prices the plan's resources with the price book.
    EstimateCost: estimate_cost(input: EstimateInput) -> EstimateResult => Reading;
    /// The gate's baseline (and where it came from) and the requester's budget with what its
    /// members already spend.
    CostContext: cost_context(input: CostContextInput) -> CostContext => Reading;
    /// Applies exactly the stored plan; idempotent per request id.
    Apply: apply(input: ApplyInput) -> ApplyResult => Engine(EngineTimeout::Apply);
    /// Destroys everything the request created; idempotent.
    Destroy: destroy(input: DestroyInput) -> DestroyResult => Engine(EngineTimeout::Destroy);
    /// Sends one notification through one channel (one activity per channel, so a retry
    /// never re-sends through a channel that already succeeded).
    Notify: notify(input: NotifyInput) -> Option<NotifyResult> => Quick;
    /// What the engine holds, per request id (for the reconciler). `why` is for the log.
    ListHoldings: list_holdings(why: String) -> HoldingsResult => Engine(EngineTimeout::Plan);
    /// The requests' workflow status and stage as Temporal knows them (for the reconciler).
    RequestStates: request_states(input: RequestStatesInput) -> RequestStatesResult => Quick;
    /// The AI approver's review of a request at its gate, or of a generic approval: its rules,
    /// and the LLM when configured. Answers `mode = "off"` settings when the AI is off.
    Review: review(input: ReviewInput) -> AiReview => Review;
    /// An audit's first step: the resources of the target as the engine holds them now, and
    /// which request manages each.
    Discover: discover(input: DiscoverInput) -> Discovery => AuditStep;
    /// An audit's second step: the policy pack over what exists.
    Analyse: analyse(input: AnalyseInput) -> AuditAnalysis => AuditStep;
    /// An audit's third step: a concrete fix for each finding (a re-apply through the owning
    /// request, an operator's command, or a module change).
    Remediate: remediate(input: RemediateInput) -> Remediation => AuditStep;
    /// An audit's approved fix applied through the owning request: asks it to re-apply its
    /// approved configuration (the `repair` update) and waits for what it did.
    Repair: repair(input: RepairInput) -> RepairResult => AuditRepair;
    /// A scheduled audit's findings not reported before, by owner (and now recorded as
    /// reported, so the next audit does not tell them again).
    NewFindings: new_findings(input: NewFindingsInput) -> NewFindingsResult => AuditStep;
    /// An audit's finished report stored as an artifact; the owners of the requests it
    /// looked at, who are told the outcome.
    FileReport: file_report(input: FileReportInput) -> FileReportResult => AuditStep;
    /// Asks the requester's team's budget ledger for headroom (reserving it when it fits, or
    /// when forced after an approval).
    ReserveHeadroom: reserve_headroom(input: ReserveInput) -> HeadroomDecision => Quick;
    /// Frees what an ended request held in its team's ledger; answers what remains reserved.
    ReleaseHeadroom: release_headroom(input: ReleaseInput) -> u32 => Quick;
    /// What the named teams' budget ledgers hold (for the reconciler).
    LedgerHoldings: ledger_holdings(input: LedgerHoldingsInput) -> LedgerHoldingsResult => Quick;
    /// Each ACTIVE request's bill (the engine's meter) against its approved estimate.
    MeasureCosts: measure_costs(input: MeasureCostsInput) -> MeasureCostsResult => Engine(EngineTimeout::Plan);
    /// Marks each request with its check (the `cost_checked` update); answers which newly diverge.
    MarkCosts: mark_costs(input: MarkCostsInput) -> MarkCostsResult => Quick;
    /// A dry run's headroom: the team ledger's arithmetic for the request, reserving nothing.
    PreviewHeadroom: preview_headroom(input: ReserveInput) -> HeadroomDecision => Quick;
}

/// The activity marker types, public so the implementing crate can name them in
/// `#[activity(definition = ...)]` and the compiler checks inputs and outputs match.
pub mod defs {
    pub use super::provision_activities::*;
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_common::ActivityDefinition;

    /// Every activity name has a declaration (in the same order), and a declaration's
    /// Temporal type is its name's.
    #[test]
    fn every_activity_name_is_declared() {
        assert_eq!(DECLARED, ActivityName::ALL);
        assert_eq!(defs::Notify.name(), "notify");
        assert_eq!(defs::LoadSettings.name(), ActivityName::LoadSettings.as_str());
    }
}
