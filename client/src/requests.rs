//! Provisioning requests: start one (after the same validation the workflow runs), read its
//! progress, send its updates (approve, reject, keep, destroy, cancel), list them, and run
//! the reconciler. The CLI, the gateway and the tests call these.

use std::time::Duration;

use futures::StreamExt;
use temporalio_client::{
    Client, NamespacedClient, WorkflowDescribeOptions, WorkflowGetResultOptions, WorkflowListOptions,
    WorkflowQueryOptions, WorkflowStartOptions,
};
use temporalio_common::search_attributes::SearchAttributes;
use temporalio_common::{HasWorkflowDefinition, UpdateDefinition};
use tollgate_proto::{
    Ack, CancelCommand, Decision, DecisionKind, LifecycleCommand, Progress, ProvisionInput, ProvisionRequest,
    ReconcileInput, ReconcileReport, Settings, Stage,
};
use tollgate_workflows::{Incoming, ProvisionWorkflow, ReconcileWorkflow, search_attributes as sa, validate};

use crate::{ClientError, updates};

/// How long an update waits for a worker to take it before the caller hears that none runs.
pub const WORKER_WAIT: Duration = Duration::from_secs(30);

/// A new request id such as `req-ec2-3f9a1c2b`.
pub fn new_request_id(kind: &str) -> String {
    let kind: String = kind.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect::<String>().to_lowercase();
    format!("req-{kind}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// The one-line summary the Web UI shows for a request.
pub fn static_summary(r: &ProvisionRequest) -> String {
    let ttl = if tollgate_proto::span_ms(&r.ttl) > 0 {
        tollgate_workflows::fmt_duration_ms(tollgate_proto::span_ms(&r.ttl))
    } else {
        "default ttl".into()
    };
    format!("{} '{}' for {} in {} ({}), {ttl}", r.kind, r.name, r.requester, r.environment, r.region)
}

/// Gives a request its id and defaults and checks it; needs no server, so the CLI refuses
/// bad input before it connects.
pub fn prepare_request(mut request: ProvisionRequest, settings: &Settings) -> Result<ProvisionRequest, ClientError> {
    if request.request_id.is_empty() {
        request.request_id = new_request_id(&request.kind);
    }
    let request = validate::with_defaults(request);
    validate::validate_request(&request, settings)?;
    Ok(request)
}

/// Validates and starts a request; returns its id. Nothing starts if validation fails.
/// An id the caller left empty is generated; should it name a request that already exists
/// (its random part is 32 bits: likely once a namespace holds tens of thousands), a fresh one
/// is drawn. An id the caller chose is never replaced: it is refused as taken.
pub async fn start_request(
    client: &Client,
    task_queue: &str,
    settings: &Settings,
    request: ProvisionRequest,
) -> Result<String, ClientError> {
    let generated = request.request_id.is_empty();
    let mut draws = 0;
    loop {
        let prepared = prepare_request(request.clone(), settings)?;
        let id = prepared.request_id.clone();
        match start_prepared(client, task_queue, settings, prepared).await {
            Err(StartFailure::Taken) if generated && draws < 3 => {
                draws += 1;
                tracing::info!(request_id = %id, "a generated request id was taken; drawing another");
            }
            Err(StartFailure::Taken) => {
                return Err(ClientError::Refused(format!("a request with id '{id}' already exists")));
            }
            Err(StartFailure::Other(e)) => return Err(e),
            Ok(()) => return Ok(id),
        }
    }
}

/// Why [`start_prepared`] did not start a request.
enum StartFailure {
    /// A workflow with the request's id exists.
    Taken,
    Other(ClientError),
}

async fn start_prepared(
    client: &Client,
    task_queue: &str,
    settings: &Settings,
    request: ProvisionRequest,
) -> Result<(), StartFailure> {
    let id = request.request_id.clone();
    // A kind only the worker knows (module sources it fetched) is validated by the worker.
    let deferred = !tollgate_workflows::catalog::kind_names().contains(&request.kind.as_str())
        && settings.source_kinds.iter().any(|k| k.kind == validate::SOURCE_KINDS_UNFETCHED);
    let params: Vec<String> = request.params.iter().map(|(k, v)| format!("- {k} = {v}")).collect();
    let details = format!("**Requested by** {}\n\n**Parameters**\n{}", request.requester, params.join("\n"));
    let attributes = SearchAttributes::new([
        sa::STAGE.value_set(Stage::Requested.label().to_string()),
        sa::REQUESTER.value_set(request.requester.clone()),
        sa::KIND.value_set(request.kind.clone()),
    ]);
    let options = WorkflowStartOptions::new(task_queue.to_string(), id.clone())
        .static_summary(static_summary(&request))
        .static_details(details)
        .search_attributes(attributes)
        .build();
    client
        .start_workflow(ProvisionWorkflow::run, ProvisionInput { request: Some(request), resume: None }, options)
        .await
        .map_err(|e| match e {
            temporalio_client::errors::WorkflowStartError::AlreadyStarted { .. } => StartFailure::Taken,
            temporalio_client::errors::WorkflowStartError::Rpc(status)
                if status.message().contains("no mapping defined for search attribute") =>
            {
                let missing: Vec<String> = sa::REGISTRATION.iter().map(|(n, _)| n.to_string()).collect();
                StartFailure::Other(ClientError::Failed(format!(
                    "the namespace lacks Tollgate's search attributes ({}). Start a tollgate worker (it registers them) or ask an operator to run:\n  {}",
                    status.message(),
                    crate::namespace::create_command(&client.namespace(), &missing)
                )))
            }
            other => StartFailure::Other(ClientError::Failed(format!("could not start the request: {other}"))),
        })?;
    if deferred {
        wait_validated(client, &id).await.map_err(StartFailure::Other)?;
    }
    Ok(())
}

/// How long `start_request` waits for the worker to validate a request whose kind only the
/// worker knows (a module source's), before it answers with the id anyway.
pub const VALIDATION_WAIT: Duration = Duration::from_secs(15);

/// Waits until the worker has validated the request: a refusal comes back as `Refused`
/// (exit 2, 422), the same as a catalog kind's, naming the parameter. With no worker
/// answering within `VALIDATION_WAIT` the request stands and `status` shows the outcome.
async fn wait_validated(client: &Client, id: &str) -> Result<(), ClientError> {
    let deadline = tokio::time::Instant::now() + VALIDATION_WAIT;
    loop {
        match progress(client, id).await {
            Ok(p) if p.stage_enum() == Stage::Rejected && p.module_digest.is_empty() => {
                return Err(ClientError::Refused(format!(
                    "{} (request {id} is recorded as REJECTED; nothing was created)",
                    p.final_reason
                )));
            }
            // Past validation: generating, or any later stage.
            Ok(p) if p.stage_enum() != Stage::Requested => return Ok(()),
            Ok(_) | Err(ClientError::Failed(_)) => {}
            Err(other) => return Err(other),
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The request's progress: from the live workflow, or its final report once it has ended.
pub async fn progress(client: &Client, id: &str) -> Result<Progress, ClientError> {
    let handle = client.get_workflow_handle::<ProvisionWorkflow>(id);
    // A running workflow is queried through a worker; do not hang when none is running.
    let query = handle.query(ProvisionWorkflow::progress, (), WorkflowQueryOptions::default());
    let answered = match tokio::time::timeout(std::time::Duration::from_secs(10), query).await {
        Ok(answer) => answer,
        Err(_) => {
            let running = match handle.describe(WorkflowDescribeOptions::default()).await {
                Ok(d) => d.status() == temporalio_client::WorkflowExecutionStatus::Running,
                Err(_) => true,
            };
            let result = if running { None } else { handle.get_result(WorkflowGetResultOptions::default()).await.ok() };
            return match result {
                Some(p) => Ok(p),
                None => Err(ClientError::Failed(format!(
                    "no worker answered for {id} within 10s; is a tollgate worker running (tollgate dev or tollgate-worker)?"
                ))),
            };
        }
    };
    match answered {
        Ok(p) => Ok(p),
        Err(temporalio_client::errors::WorkflowQueryError::NotFound(_)) => Err(ClientError::NotFound(id.to_string())),
        Err(query_error) => {
            // A closed workflow with no worker to answer queries still has its result.
            let running = match handle.describe(WorkflowDescribeOptions::default()).await {
                Err(temporalio_client::errors::WorkflowInteractionError::NotFound(_)) => {
                    return Err(ClientError::NotFound(id.to_string()));
                }
                Ok(d) => d.status() == temporalio_client::WorkflowExecutionStatus::Running,
                Err(_) => true,
            };
            // A running workflow's result would wait for the request to end: say why instead.
            if running {
                return Err(ClientError::Failed(format!("cannot read progress of {id}: {query_error}")));
            }
            match handle.get_result(WorkflowGetResultOptions::default()).await {
                Ok(p) => Ok(p),
                Err(_) => Err(ClientError::Failed(format!("cannot read progress of {id}: {query_error}"))),
            }
        }
    }
}

/// For a request whose workflow stopped without reaching a final stage (terminated or timed
/// out: no workflow code ran after that), Temporal's status, e.g. `TERMINATED`.
pub async fn stopped_without_ending(client: &Client, id: &str, progress: &Progress) -> Option<&'static str> {
    if progress.stage_enum().is_terminal() {
        return None;
    }
    let handle = client.get_workflow_handle::<ProvisionWorkflow>(id);
    updates::stopped_from_outside(handle.describe(WorkflowDescribeOptions::default()).await.ok()?.status())
}

/// Approve or reject (`kind`) as `user`.
pub async fn decide(
    client: &Client,
    id: &str,
    kind: DecisionKind,
    user: &str,
    comment: &str,
    plan_digest: &str,
) -> Result<Ack, ClientError> {
    decide_vouched(client, id, kind, user, comment, plan_digest, &[]).await
}

/// [`decide`] with the teams an identity provider vouches `user` is in (the gateway's sign-in).
pub async fn decide_vouched(
    client: &Client,
    id: &str,
    kind: DecisionKind,
    user: &str,
    comment: &str,
    plan_digest: &str,
    teams: &[String],
) -> Result<Ack, ClientError> {
    let decision = Incoming::new(Decision {
        user: user.to_string(),
        comment: comment.to_string(),
        plan_digest: plan_digest.to_string(),
        teams: teams.to_vec(),
        ..Default::default()
    });
    if kind == DecisionKind::Reject {
        send_update(client, id, ProvisionWorkflow::reject, decision).await
    } else {
        send_update(client, id, ProvisionWorkflow::approve, decision).await
    }
}

/// Keep (extend) as `user` for another `extension_period`.
pub async fn keep(client: &Client, id: &str, user: &str) -> Result<Ack, ClientError> {
    keep_for(client, id, user, "").await
}

/// Keep as `user` for `extension` ("3d"; empty: the `extension_period`).
pub async fn keep_for(client: &Client, id: &str, user: &str, extension: &str) -> Result<Ack, ClientError> {
    let command = LifecycleCommand { user: user.to_string(), extension: extension.to_string(), ..Default::default() };
    send_update(client, id, ProvisionWorkflow::keep, Incoming::new(command)).await
}

/// Destroy now as `user`.
pub async fn destroy(client: &Client, id: &str, user: &str) -> Result<Ack, ClientError> {
    let command = Incoming::new(LifecycleCommand { user: user.to_string(), ..Default::default() });
    send_update(client, id, ProvisionWorkflow::destroy, command).await
}

/// Withdraw the request as `user`: nothing more is created, whatever exists is destroyed.
pub async fn cancel(client: &Client, id: &str, user: &str, reason: &str) -> Result<Ack, ClientError> {
    let command = Incoming::new(CancelCommand { user: user.to_string(), reason: reason.to_string() });
    send_update(client, id, ProvisionWorkflow::cancel, command).await
}

/// Runs `CostCheckWorkflow` now (as the schedule does) and waits for its report.
pub async fn cost_check(client: &Client, task_queue: &str) -> Result<tollgate_proto::CostCheckReport, ClientError> {
    use tollgate_workflows::CostCheckWorkflow;
    let id = format!(
        "{}-manual-{}",
        tollgate_workflows::cost_check::SCHEDULE_ID,
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let options = WorkflowStartOptions::new(task_queue.to_string(), id.clone())
        .static_summary("tollgate cost-report --check".to_string())
        .build();
    let handle = client
        .start_workflow(CostCheckWorkflow::run, tollgate_proto::CostCheckInput {}, options)
        .await
        .map_err(|e| ClientError::Failed(format!("could not start the cost check: {e}")))?;
    let waited = tokio::time::timeout(
        std::time::Duration::from_secs(600),
        handle.get_result(WorkflowGetResultOptions::default()),
    );
    match waited.await {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => Err(ClientError::Failed(format!("the cost check ({id}) failed: {e}"))),
        Err(_) => Err(ClientError::Failed(format!(
            "the cost check ({id}) did not finish within 10 minutes; is a tollgate worker running on task queue '{task_queue}'?"
        ))),
    }
}

/// Marks `id` with its cost check (the `cost_checked` update); answers whether it is a new
/// divergence.
pub async fn mark_cost(client: &Client, id: &str, check: tollgate_proto::CostCheck) -> Result<bool, ClientError> {
    let handle = client.get_workflow_handle::<ProvisionWorkflow>(id);
    handle
        .execute_update(
            ProvisionWorkflow::cost_checked,
            check,
            temporalio_client::WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .map_err(|e| ClientError::Failed(format!("{id}: marking its cost check: {e}")))
}

/// Sends one of `ProvisionWorkflow`'s updates; a refusal keeps its code.
pub async fn send_update<U>(client: &Client, id: &str, update: U, input: U::Input) -> Result<Ack, ClientError>
where
    U: UpdateDefinition<Workflow = <ProvisionWorkflow as HasWorkflowDefinition>::Run, Output = Ack>,
    U::Input: Send,
{
    updates::send::<ProvisionWorkflow, U>(client, id, update, input, WORKER_WAIT).await
}

/// Runs the reconciler now (a `ReconcileWorkflow` on the worker's task queue) and waits for
/// its report. `dry_run` only reports.
pub async fn reconcile(client: &Client, task_queue: &str, dry_run: bool) -> Result<ReconcileReport, ClientError> {
    let id = format!(
        "{}-manual-{}",
        tollgate_workflows::reconcile::SCHEDULE_ID,
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let summary = if dry_run { "tollgate reconcile --dry-run" } else { "tollgate reconcile" };
    let options =
        WorkflowStartOptions::new(task_queue.to_string(), id.clone()).static_summary(summary.to_string()).build();
    let handle = client
        .start_workflow(ReconcileWorkflow::run, ReconcileInput { dry_run }, options)
        .await
        .map_err(|e| ClientError::Failed(format!("could not start the reconciler: {e}")))?;
    match tokio::time::timeout(
        std::time::Duration::from_secs(600),
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => Err(ClientError::Failed(format!("the reconciler ({id}) failed: {e}"))),
        Err(_) => Err(ClientError::Failed(format!(
            "the reconciler ({id}) did not finish within 10 minutes; is a tollgate worker running on task queue '{task_queue}'?"
        ))),
    }
}

/// One row of `tollgate list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListedRequest {
    pub request_id: String,
    pub stage: String,
    pub kind: String,
    pub requester: String,
    pub monthly_cost: Option<f64>,
    pub approval_required: Option<bool>,
    pub expires_at: Option<String>,
    pub status: String,
}

/// What waits and what is alive right now, for the worker's gauges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveFigures {
    pub awaiting_approval: usize,
    /// Since the start of the longest-waiting request (0 when none waits).
    pub oldest_wait_secs: f64,
    pub active: usize,
    pub active_monthly_cost: f64,
}

/// Reads [`LiveFigures`] from visibility: running requests awaiting approval, and ACTIVE ones
/// with their monthly cost.
pub async fn live_figures(client: &Client) -> Result<LiveFigures, ClientError> {
    let running = format!("WorkflowType = '{}' AND ExecutionStatus = 'Running'", tollgate_workflows::WORKFLOW_TYPE);
    let mut figures = LiveFigures::default();
    let now = std::time::SystemTime::now();
    for stage in [Stage::AwaitingApproval, Stage::Active] {
        let query = format!("{running} AND TollgateStage = '{}'", stage.label());
        let mut stream = client.list_workflows(query, WorkflowListOptions::builder().build());
        while let Some(item) = stream.next().await {
            let exec = item.map_err(|e| ClientError::Failed(format!("listing requests: {e}")))?;
            if stage == Stage::Active {
                figures.active += 1;
                figures.active_monthly_cost += exec.search_attributes().get(&sa::MONTHLY_COST).unwrap_or_default();
            } else {
                figures.awaiting_approval += 1;
                let waited = exec.start_time().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
                figures.oldest_wait_secs = figures.oldest_wait_secs.max(waited.as_secs_f64());
            }
        }
    }
    Ok(figures)
}

/// Requests, newest first, optionally only those in `stage`.
pub async fn list(client: &Client, stage: Option<Stage>, limit: usize) -> Result<Vec<ListedRequest>, ClientError> {
    let filter = stage.map(|s| format!("TollgateStage = '{}'", s.label()));
    list_matching(client, filter.as_deref(), limit).await
}

/// Requests, newest first, that match a visibility `filter` too (e.g. `TollgateKind = 'ec2'`).
pub async fn list_matching(
    client: &Client,
    filter: Option<&str>,
    limit: usize,
) -> Result<Vec<ListedRequest>, ClientError> {
    let mut query = format!("WorkflowType = '{}'", tollgate_workflows::WORKFLOW_TYPE);
    if let Some(f) = filter {
        query.push_str(&format!(" AND {f}"));
    }
    let options = WorkflowListOptions::builder().limit(limit).build();
    let mut stream = client.list_workflows(query, options);
    let mut rows = Vec::new();
    while let Some(item) = stream.next().await {
        let exec = item.map_err(|e| ClientError::Failed(format!("listing requests: {e}")))?;
        let attrs = exec.search_attributes();
        let stage: String = attrs.get(&sa::STAGE).unwrap_or_default();
        let status = format!("{:?}", exec.status());
        // An ended request (or a stopped workflow) will not expire: show no expiry for it.
        let ended = Stage::from_label(&stage).is_some_and(Stage::is_terminal) || status != "Running";
        rows.push(ListedRequest {
            request_id: exec.id().to_string(),
            stage,
            kind: attrs.get(&sa::KIND).unwrap_or_default(),
            requester: attrs.get(&sa::REQUESTER).unwrap_or_default(),
            monthly_cost: attrs.get(&sa::MONTHLY_COST).map(crate::render::dollars),
            approval_required: attrs.get(&sa::APPROVAL_REQUIRED),
            expires_at: attrs
                .get(&sa::EXPIRES_AT)
                .filter(|_| !ended)
                .map(|t| tollgate_workflows::fmt_time_ms(t.seconds() * 1000)),
            status,
        });
    }
    Ok(rows)
}
