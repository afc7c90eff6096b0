//! The activities the workflow calls, declared here (input and output only) and implemented
//! by the `tollgate-activities` crate, so this crate needs no I/O dependency. Names are the
//! Temporal activity type names another language's worker would register. The SDK's
//! `#[activity_definitions]` requires each body to be exactly `unimplemented!()`: these are
//! declarations, never called; the bodies live in `tollgate-activities`.

use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;
use tollgate_proto::{
    AiReview, AnalyseInput, ApplyInput, ApplyResult, AuditAnalysis, CostContext, CostContextInput, DestroyInput,
    DestroyResult, DiscoverInput, Discovery, EstimateInput, EstimateResult, FileReportInput, FileReportResult,
    GenerateModuleInput, GeneratedModule, HoldingsResult, NewFindingsInput, NewFindingsResult, NotifyInput,
    NotifyResult, PlanInput, PlanResult, PolicyInput, PolicyResult, RemediateInput, Remediation, RepairInput,
    RepairResult, RequestStatesInput, RequestStatesResult, ReviewInput, Settings,
};

pub struct ProvisionActivities;

#[activity_definitions]
impl ProvisionActivities {
    /// The worker's rules (approvers, thresholds, durations) for this run.
    #[activity(name = "load_settings")]
    pub fn load_settings(request_id: String) -> Result<Settings, ActivityError> {
        unimplemented!()
    }

    /// Writes the Terraform root module for the request and stores it as an artifact.
    #[activity(name = "generate_module")]
    pub fn generate_module(input: GenerateModuleInput) -> Result<GeneratedModule, ActivityError> {
        unimplemented!()
    }

    /// Plans the module with the configured engine; stores Terraform's plan JSON.
    #[activity(name = "plan")]
    pub fn plan(input: PlanInput) -> Result<PlanResult, ActivityError> {
        unimplemented!()
    }

    /// Evaluates the worker's policy pack over the stored plan JSON.
    #[activity(name = "check_policy")]
    pub fn check_policy(input: PolicyInput) -> Result<PolicyResult, ActivityError> {
        unimplemented!()
    }

    /// Prices the plan's resources with the price book.
    #[activity(name = "estimate_cost")]
    pub fn estimate_cost(input: EstimateInput) -> Result<EstimateResult, ActivityError> {
        unimplemented!()
    }

    /// The gate's baseline (and where it came from) and the requester's budget with what its
    /// members already spend.
    #[activity(name = "cost_context")]
    pub fn cost_context(input: CostContextInput) -> Result<CostContext, ActivityError> {
        unimplemented!()
    }

    /// Applies exactly the stored plan; idempotent per request id.
    #[activity(name = "apply")]
    pub fn apply(input: ApplyInput) -> Result<ApplyResult, ActivityError> {
        unimplemented!()
    }

    /// Destroys everything the request created; idempotent.
    #[activity(name = "destroy")]
    pub fn destroy(input: DestroyInput) -> Result<DestroyResult, ActivityError> {
        unimplemented!()
    }

    /// Sends one notification through one channel (one activity per channel, so a retry
    /// never re-sends through a channel that already succeeded).
    #[activity(name = "notify")]
    pub fn notify(input: NotifyInput) -> Result<Option<NotifyResult>, ActivityError> {
        unimplemented!()
    }

    /// What the engine holds, per request id (for the reconciler). `why` is for the log.
    #[activity(name = "list_holdings")]
    pub fn list_holdings(why: String) -> Result<HoldingsResult, ActivityError> {
        unimplemented!()
    }

    /// The requests' workflow status and stage as Temporal knows them (for the reconciler).
    #[activity(name = "request_states")]
    pub fn request_states(input: RequestStatesInput) -> Result<RequestStatesResult, ActivityError> {
        unimplemented!()
    }

    /// The AI approver's review of a request at its gate, or of a generic approval: its rules,
    /// and the LLM when configured. Answers `mode = "off"` settings when the AI is off.
    #[activity(name = "review")]
    pub fn review(input: ReviewInput) -> Result<AiReview, ActivityError> {
        unimplemented!()
    }

    /// An audit's first step: the resources of the target as the engine holds them now, and
    /// which request manages each.
    #[activity(name = "discover")]
    pub fn discover(input: DiscoverInput) -> Result<Discovery, ActivityError> {
        unimplemented!()
    }

    /// An audit's second step: the policy pack over what exists.
    #[activity(name = "analyse")]
    pub fn analyse(input: AnalyseInput) -> Result<AuditAnalysis, ActivityError> {
        unimplemented!()
    }

    /// An audit's third step: a concrete fix for each finding (a re-apply through the owning
    /// request, an operator's command, or a module change).
    #[activity(name = "remediate")]
    pub fn remediate(input: RemediateInput) -> Result<Remediation, ActivityError> {
        unimplemented!()
    }

    /// An audit's approved fix applied through the owning request: asks it to re-apply its
    /// approved configuration (the `repair` update) and waits for what it did.
    #[activity(name = "repair")]
    pub fn repair(input: RepairInput) -> Result<RepairResult, ActivityError> {
        unimplemented!()
    }

    /// A scheduled audit's findings not reported before, by owner (and now recorded as
    /// reported, so the next audit does not tell them again).
    #[activity(name = "new_findings")]
    pub fn new_findings(input: NewFindingsInput) -> Result<NewFindingsResult, ActivityError> {
        unimplemented!()
    }

    /// An audit's finished report stored as an artifact; the owners of the requests it
    /// looked at, who are told the outcome.
    #[activity(name = "file_report")]
    pub fn file_report(input: FileReportInput) -> Result<FileReportResult, ActivityError> {
        unimplemented!()
    }
}

/// The activity marker types, public so the implementing crate can name them in
/// `#[activity(definition = ...)]` and the compiler checks inputs and outputs match.
pub mod defs {
    pub use super::provision_activities::*;
}

pub use tollgate_proto::words::ActivityName;

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_common::ActivityDefinition;

    /// The macro takes a literal; this holds every literal equal to the enum's name.
    #[test]
    fn declared_names_are_the_enum_names() {
        let declared: [(&str, ActivityName); 18] = [
            (defs::LoadSettings.name(), ActivityName::LoadSettings),
            (defs::GenerateModule.name(), ActivityName::GenerateModule),
            (defs::Plan.name(), ActivityName::Plan),
            (defs::CheckPolicy.name(), ActivityName::CheckPolicy),
            (defs::EstimateCost.name(), ActivityName::EstimateCost),
            (defs::CostContext.name(), ActivityName::CostContext),
            (defs::Apply.name(), ActivityName::Apply),
            (defs::Destroy.name(), ActivityName::Destroy),
            (defs::Notify.name(), ActivityName::Notify),
            (defs::ListHoldings.name(), ActivityName::ListHoldings),
            (defs::RequestStates.name(), ActivityName::RequestStates),
            (defs::Review.name(), ActivityName::Review),
            (defs::Discover.name(), ActivityName::Discover),
            (defs::Analyse.name(), ActivityName::Analyse),
            (defs::Remediate.name(), ActivityName::Remediate),
            (defs::Repair.name(), ActivityName::Repair),
            (defs::NewFindings.name(), ActivityName::NewFindings),
            (defs::FileReport.name(), ActivityName::FileReport),
        ];
        for (name, activity) in declared {
            assert_eq!(name, activity.as_str());
            assert_eq!(ActivityName::parse(name), Some(activity));
        }
    }
}
