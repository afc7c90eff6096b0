//! The reconciler's view of Temporal: each request's workflow status and stage.

use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_proto::{RequestState, RequestStatesInput, RequestStatesResult};
use tollgate_workflows::failure::FailureType;

use crate::{TollgateActivities, classified};

impl TollgateActivities {
    pub(crate) async fn request_states_work(
        &self,
        _ctx: &ActivityContext,
        input: RequestStatesInput,
    ) -> Result<RequestStatesResult, ActivityError> {
        use temporalio_client::WorkflowExecutionStatus as S;
        use temporalio_client::errors::WorkflowInteractionError;
        use tollgate_workflows::search_attributes as sa;
        let Some(client) = &self.temporal else {
            return Err(classified(
                FailureType::Internal,
                false,
                "this worker has no Temporal client for the reconciler",
            ));
        };
        let mut states = Vec::new();
        for request_id in input.request_ids {
            let handle = client.get_workflow_handle::<tollgate_workflows::ProvisionWorkflow>(&request_id);
            let state = match handle.describe(temporalio_client::WorkflowDescribeOptions::default()).await {
                Ok(d) => {
                    let status = match d.status() {
                        S::Running => "RUNNING",
                        S::Completed => "COMPLETED",
                        S::Failed => "FAILED",
                        S::Canceled => "CANCELED",
                        S::Terminated => "TERMINATED",
                        S::ContinuedAsNew => "CONTINUED_AS_NEW",
                        S::TimedOut => "TIMED_OUT",
                        S::Paused => "PAUSED",
                        _ => "UNKNOWN",
                    };
                    let attrs = d.search_attributes();
                    RequestState {
                        request_id: request_id.clone(),
                        status: status.into(),
                        stage: attrs.get(&sa::STAGE).unwrap_or_default(),
                        requester: attrs.get(&sa::REQUESTER).unwrap_or_default(),
                    }
                }
                Err(WorkflowInteractionError::NotFound(_)) => {
                    RequestState { request_id: request_id.clone(), status: "NOT_FOUND".into(), ..Default::default() }
                }
                Err(e) => {
                    return Err(classified(
                        FailureType::TemporalUnavailable,
                        true,
                        format!("describing {request_id}: {e}"),
                    ));
                }
            };
            states.push(state);
        }
        Ok(RequestStatesResult { states })
    }
}
