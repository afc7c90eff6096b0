//! The activities the workflow calls, declared here (input and output only) and implemented
//! by the `tollgate-activities` crate, so this crate needs no I/O dependency. Names are the
//! Temporal activity type names another language's worker would register. The SDK's
//! `#[activity_definitions]` requires each body to be exactly `unimplemented!()`: these are
//! declarations, never called; the bodies live in `tollgate-activities`.

use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;
use tollgate_proto::{
    ApplyInput, ApplyResult, CostContext, CostContextInput, DestroyInput, DestroyResult, EstimateInput, EstimateResult,
    GenerateModuleInput, GeneratedModule, HoldingsResult, NotifyInput, PlanInput, PlanResult, PolicyInput,
    PolicyResult, RequestStatesInput, RequestStatesResult, Settings,
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
    pub fn notify(input: NotifyInput) -> Result<(), ActivityError> {
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
}

/// The activity marker types, public so the implementing crate can name them in
/// `#[activity(definition = ...)]` and the compiler checks inputs and outputs match.
pub mod defs {
    pub use super::provision_activities::*;
}
