//! The worker's metrics as Prometheus scrapes them: a real `tollgate-worker` process with
//! `[metrics] listen`, requests taking each path, and `GET /metrics` read and parsed. Exact
//! counts for Tollgate's own metrics, the SDK's worker metrics present, no label carrying a
//! request id or a person's name, and a restarted worker replaying a request's history
//! without counting any of it again.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::{LONG, TestEnv, fixtures, free_port};
use tollgate_client::requests;
use tollgate_proto::Stage;

/// `name{labels}` -> value, for every sample line of a Prometheus text exposition.
pub(crate) type Samples = BTreeMap<String, f64>;

pub(crate) fn parse(text: &str) -> Samples {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The metric names in `samples` (histogram series folded into their base name).
pub(crate) fn names(samples: &Samples) -> std::collections::BTreeSet<String> {
    samples
        .keys()
        .map(|s| {
            let name = s.split('{').next().unwrap_or(s);
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name)
                .to_string()
        })
        .collect()
}

pub(crate) async fn scrape(port: u16) -> Samples {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let http = crate::common::gateway::http_client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => return parse(&r.text().await.unwrap()),
            other => {
                assert!(tokio::time::Instant::now() < deadline, "{url} never answered: {other:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Every metric the provisioned Grafana dashboard queries (histogram series by base name).
fn dashboard_metrics() -> std::collections::BTreeSet<String> {
    let path = crate::common::workspace().join("deploy/grafana/dashboards/tollgate.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut found = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (at, _) in expr.match_indices('t') {
                let rest = &expr[at..];
                if !(rest.starts_with("tollgate_") || rest.starts_with("temporal_"))
                    || expr[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                {
                    continue;
                }
                let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
                found.insert(base.to_string());
            }
        }
    }
    assert!(found.len() > 10, "{found:?}");
    found
}

fn value(samples: &Samples, series: &str) -> f64 {
    *samples.get(series).unwrap_or_else(|| {
        let near: Vec<&String> = samples.keys().filter(|k| k.starts_with(series.split('{').next().unwrap())).collect();
        panic!("no {series}; have {near:#?}")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_exports_its_metrics_with_exact_counts_and_few_labels() {
    let port = free_port();
    let text = format!(
        "{LONG}\n[metrics]\nlisten = \"127.0.0.1:{port}\"\nrefresh = \"1s\"\n[policy]\ndirs = [\"{}\"]\n\
         [faults]\nactivities = [\"notify\"]\nfail_first_attempts = 1\n",
        fixtures("policies-team").display()
    );
    let env = TestEnv::start_without_worker(&text).await;
    let mut worker = env.spawn_worker_process();

    // A direct bucket, destroyed; an EC2 box with the team's warning; a Postgres approved
    // by carol; one left waiting.
    let bucket = env.request("s3", "alice", &[]).await;
    let ec2 = env.request("ec2", "alice", &[]).await;
    let big = [("instance_class", "db.r5.2xlarge")];
    let approved = env.request("rds", "bob", &big).await;
    let waiting = env.request("rds", "bob", &big).await;
    env.wait_for(&bucket, Stage::Active, 60).await;
    requests::destroy(&env.client, &bucket, "alice").await.unwrap();
    env.wait_for(&bucket, Stage::Destroyed, 60).await;
    env.wait_for(&ec2, Stage::Active, 60).await;
    env.wait_for(&approved, Stage::AwaitingApproval, 60).await;
    env.wait_for(&waiting, Stage::AwaitingApproval, 60).await;
    requests::decide(&env.client, &approved, tollgate_proto::DecisionKind::Approve, "carol", "ok", "").await.unwrap();
    env.wait_for(&approved, Stage::Active, 60).await;
    // Let the notifications after ACTIVE finish and the gauges refresh (every second here).
    tokio::time::sleep(Duration::from_secs(3)).await;

    let m = scrape(port).await;
    assert_eq!(value(&m, r#"tollgate_requests_started_total{kind="s3"}"#), 1.0);
    assert_eq!(value(&m, r#"tollgate_requests_started_total{kind="rds"}"#), 2.0);
    assert_eq!(value(&m, r#"tollgate_requests_ended_total{kind="s3",stage="DESTROYED"}"#), 1.0);
    assert_eq!(value(&m, r#"tollgate_stage_entered_total{kind="rds",stage="AWAITING_APPROVAL"}"#), 2.0);
    assert_eq!(value(&m, r#"tollgate_stage_entered_total{kind="rds",stage="ACTIVE"}"#), 1.0);
    assert_eq!(value(&m, r#"tollgate_gate_decisions_total{decision="approval",kind="rds"}"#), 2.0);
    assert_eq!(value(&m, r#"tollgate_gate_decisions_total{decision="direct",kind="ec2"}"#), 1.0);
    assert_eq!(value(&m, r#"tollgate_approval_wait_seconds_count{kind="rds",outcome="approved"}"#), 1.0);
    assert_eq!(value(&m, r#"tollgate_cost_created_monthly_usd_sum{kind="rds"}"#), 732.3);
    assert_eq!(value(&m, r#"tollgate_cost_created_monthly_usd_sum{kind="s3"}"#), 1.15);
    assert_eq!(value(&m, r#"tollgate_cost_destroyed_monthly_usd_sum{kind="s3"}"#), 1.15);
    assert_eq!(value(&m, r#"tollgate_policy_findings_total{level="warn",rule="ssh-bastion"}"#), 1.0);
    // The first attempt of every notify fails (injected), the retry delivers.
    let notify_failures =
        value(&m, r#"tollgate_activity_failures_total{activity="notify",retryable="true",type="InjectedFault"}"#);
    assert!(notify_failures >= 6.0, "{notify_failures}");
    // Gauges from visibility: two requests alive (ec2, the approved rds), one waiting.
    assert_eq!(value(&m, "tollgate_requests_active"), 2.0);
    assert_eq!(value(&m, "tollgate_approvals_waiting"), 1.0);
    assert!((value(&m, "tollgate_active_monthly_cost_usd") - (732.3 + 9.19)).abs() < 0.01, "{m:?}");
    assert!(value(&m, "tollgate_oldest_approval_wait_seconds") > 0.0);

    // The SDK's own worker metrics are on the same endpoint.
    let all = names(&m);
    for sdk in [
        "temporal_worker_task_slots_available",
        "temporal_workflow_task_schedule_to_start_latency",
        "temporal_activity_execution_latency",
        "temporal_worker_task_slots_used",
        "temporal_num_pollers",
        "temporal_sticky_cache_size",
    ] {
        assert!(all.contains(sdk), "{sdk} missing from {all:#?}");
    }
    // Every worker metric the Grafana dashboard queries is one this worker exports.
    for wanted in dashboard_metrics().iter().filter(|m| !m.starts_with("tollgate_gateway_")) {
        assert!(all.contains(wanted), "the dashboard queries {wanted}, which the worker does not export");
    }
    // Cardinality: no series names a request or a person.
    let people = ["alice", "bob", "carol", "dave"];
    for series in m.keys() {
        assert!(!series.contains("req-"), "a request id in {series}");
        assert!(!people.iter().any(|p| series.contains(&format!("\"{p}\""))), "a person in {series}");
    }

    // A new worker process replays the histories (a query makes it) and counts none of it.
    worker.kill();
    let port = free_port();
    let mut second = env.spawn_worker_process_with(&[("TOLLGATE_METRICS_LISTEN", &format!("127.0.0.1:{port}"))]);
    scrape(port).await; // answers once the new worker is up
    for id in [&ec2, &approved, &waiting] {
        // The first query may go to the dead worker's sticky queue and time out: ask again.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        while requests::progress(&env.client, id).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "the new worker never answered for {id}");
        }
    }
    let after = scrape(port).await;
    let replayed: Vec<&String> = after
        .keys()
        .filter(|k| k.starts_with("tollgate_") && !k.starts_with("tollgate_activity_failures"))
        .filter(|k| {
            ![
                "tollgate_requests_active",
                "tollgate_approvals_waiting",
                "tollgate_active_monthly_cost_usd",
                "tollgate_oldest_approval_wait_seconds",
            ]
            .contains(&k.as_str())
        })
        .collect();
    assert!(replayed.is_empty(), "a replay counted again: {replayed:#?}");
    second.kill();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_counts_calls_decisions_and_refused_credentials() {
    use crate::common::gateway::GatewayProcess;
    let env = TestEnv::start(LONG).await;
    let port = free_port();
    let gateway = GatewayProcess::start(
        &env,
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\""),
        &[("TOLLGATE_LINK_SECRET", "link-secret")],
    )
    .await;
    let http = gateway.client();
    let id = env.request("rds", "alice", &[("instance_class", "db.r5.2xlarge")]).await;
    env.wait_for(&id, Stage::AwaitingApproval, 60).await;
    let (status, _) = http.post(&format!("/requests/{id}/approve"), "tg_mallory", "{}").await;
    assert_eq!(status, 403);
    let (status, _) = http.post(&format!("/requests/{id}/approve"), "tg_carol", r#"{"comment": "ok"}"#).await;
    assert_eq!(status, 200);
    let (status, _) = http.get("/requests", "tg_nobody").await;
    assert_eq!(status, 401);
    let (status, _) = http.call("GET", "/links/not-a-link", None, None).await;
    assert_eq!(status, 403);
    let (status, _) = http.call("POST", "/slack/interactions", None, Some("payload=x")).await;
    assert!(status == 401 || status == 404, "{status}");

    let m = scrape(port).await;
    let route = "/requests/{id}/{action}";
    assert_eq!(
        value(&m, &format!(r#"tollgate_gateway_requests_total{{method="POST",route="{route}",status="200"}}"#)),
        1.0
    );
    assert_eq!(
        value(&m, &format!(r#"tollgate_gateway_requests_total{{method="POST",route="{route}",status="403"}}"#)),
        1.0
    );
    assert_eq!(
        value(&m, r#"tollgate_gateway_decisions_total{decision="approve",on="request",outcome="accepted"}"#),
        1.0
    );
    assert_eq!(
        value(&m, r#"tollgate_gateway_decisions_total{decision="approve",on="request",outcome="refused"}"#),
        1.0
    );
    assert_eq!(value(&m, r#"tollgate_gateway_verifications_refused_total{what="token"}"#), 1.0);
    assert_eq!(value(&m, r#"tollgate_gateway_verifications_refused_total{what="link"}"#), 1.0);
    let exported = names(&m);
    for wanted in dashboard_metrics().iter().filter(|m| m.starts_with("tollgate_gateway_")) {
        assert!(exported.contains(wanted), "the dashboard queries {wanted}, which the gateway does not export");
    }
    for series in m.keys() {
        assert!(!series.contains("req-") && !series.contains("not-a-link"), "an id in {series}");
        assert!(!series.contains("carol") && !series.contains("mallory"), "a person in {series}");
    }
    drop(gateway);
    env.shutdown().await;
}
