//! The server + Rust SDK ceiling: Tollgate's direct-path shape (the same activities in the
//! same order, local where Tollgate's are, the same payload sizes, retries, upserts and patch
//! markers) in Rust with activity bodies that do nothing. What Tollgate's own work costs is the distance to it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, LocalActivityOptions, TimerOptions, WorkflowContext, WorkflowResult};
use tollgate_workflows::search_attributes as sa;

pub const TASK_QUEUE: &str = "bench-ceiling";

/// Each activity's input and result size, as measured in Tollgate's history.
pub type Sizes = BTreeMap<String, (usize, usize)>;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CeilingInput {
    pub requester: String,
    /// Input sizes (the results' sizes are the activities' to know).
    pub sizes: Sizes,
}

#[workflow]
#[derive(Default)]
pub struct CeilingWorkflow;

fn retry() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .maximum_attempts(5)
        .build()
}

fn options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(300)).retry_policy(retry()).build()
}

fn local_options() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .schedule_to_close_timeout(Duration::from_secs(600))
        .retry_policy(retry())
        .build()
}

fn payload(sizes: &Sizes, name: &str) -> String {
    "x".repeat(sizes.get(name).map(|s| s.0).unwrap_or(16))
}

#[workflow_methods]
impl CeilingWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: CeilingInput) -> WorkflowResult<()> {
        let s = &input.sizes;
        let _ = ctx.patched("fewer-round-trips");
        ctx.execute_local_activity(Empty::load_settings, payload(s, "load_settings"), local_options()).await?;
        ctx.upsert_search_attributes([
            sa::REQUESTER.value_set(input.requester.clone()),
            sa::KIND.value_set("s3".to_string()),
            sa::STAGE.value_set("GENERATING".to_string()),
        ]);
        ctx.execute_activity(Empty::generate_module, payload(s, "generate_module"), options()).await?;
        ctx.upsert_search_attributes([sa::STAGE.value_set("PLANNING".to_string())]);
        ctx.execute_activity(Empty::plan, payload(s, "plan"), options()).await?;
        ctx.execute_local_activity(Empty::check_policy, payload(s, "check_policy"), local_options()).await?;
        ctx.execute_local_activity(Empty::estimate_cost, payload(s, "estimate_cost"), local_options()).await?;
        ctx.execute_local_activity(Empty::cost_context, payload(s, "cost_context"), local_options()).await?;
        ctx.upsert_search_attributes([
            sa::MONTHLY_COST.value_set(1.5),
            sa::APPROVAL_REQUIRED.value_set(false),
            sa::STAGE.value_set("APPLYING".to_string()),
        ]);
        ctx.execute_activity(Empty::apply, payload(s, "apply"), options()).await?;
        let now = tollgate_workflows::kit::clock::now_ms(ctx);
        ctx.upsert_search_attributes([
            sa::STAGE.value_set("ACTIVE".to_string()),
            sa::EXPIRES_AT.value_set(sa::timestamp(now + 86_400_000)),
        ]);
        ctx.execute_activity(Empty::notify, payload(s, "notify"), options()).await?;
        ctx.timer(TimerOptions::builder(Duration::from_secs(86_400)).build()).await;
        Ok(())
    }
}

/// Activities that return a payload of the measured size and do nothing else.
pub struct Empty {
    pub sizes: Sizes,
}

impl Empty {
    fn result(&self, name: &str) -> Result<String, ActivityError> {
        Ok("x".repeat(self.sizes.get(name).map(|s| s.1).unwrap_or(16)))
    }
}

#[activities]
impl Empty {
    #[activity(name = "load_settings")]
    pub async fn load_settings(self: Arc<Self>, _ctx: ActivityContext, _in: String) -> Result<String, ActivityError> {
        self.result("load_settings")
    }
    #[activity(name = "generate_module")]
    pub async fn generate_module(self: Arc<Self>, _ctx: ActivityContext, _in: String) -> Result<String, ActivityError> {
        self.result("generate_module")
    }
    #[activity(name = "plan")]
    pub async fn plan(self: Arc<Self>, _ctx: ActivityContext, _in: String) -> Result<String, ActivityError> {
        self.result("plan")
    }
    #[activity(name = "check_policy")]
    pub async fn check_policy(self: Arc<Self>, _ctx: ActivityContext, _in: String) -> Result<String, ActivityError> {
        self.result("check_policy")
    }
    #[activity(name = "estimate_cost")]
    pub async fn estimate_cost(self: Arc<Self>, _ctx: ActivityContext, _in: String) -> Result<String, ActivityError> {
        self.result("estimate_cost")
    }
    #[activity(name = "cost_context")]
    pub async fn cost_context(self: Arc<Self>, _ctx: ActivityContext, _in: String) -> Result<String, ActivityError> {
        self.result("cost_context")
    }
    #[activity(name = "apply")]
    pub async fn apply(self: Arc<Self>, _ctx: ActivityContext, _in: String) -> Result<String, ActivityError> {
        self.result("apply")
    }
    #[activity(name = "notify")]
    pub async fn notify(self: Arc<Self>, _ctx: ActivityContext, _in: String) -> Result<String, ActivityError> {
        self.result("notify")
    }
}

/// Runs the ceiling worker until killed.
pub async fn run_worker(port: u16, sizes: Sizes) -> anyhow::Result<()> {
    let client = tollgate_starter::dev::connect_local(port, Duration::from_secs(60)).await?;
    let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())?;
    let options = temporalio_sdk::WorkerOptions::new(TASK_QUEUE)
        .register_workflow::<CeilingWorkflow>()?
        .register_activities(Empty { sizes })
        .build();
    let mut worker = temporalio_sdk::Worker::new(&runtime, client, options)?;
    worker.run().await?;
    Ok(())
}
