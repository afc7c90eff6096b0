//! Where the estimate comes from: Infracost (a stand-in executable printing a recorded
//! breakdown, since its pricing API is not reachable here) when configured, the price book
//! when Infracost fails or is not configured.

use tollgate_proto::Stage;

use crate::common::{LONG, TestEnv, fixtures};

fn infracost_config(key_env: &str) -> String {
    format!(
        "{LONG}\n[infracost]\nbinary = \"{}\"\napi_key_env = \"{key_env}\"\n",
        fixtures("infracost").join("fake-infracost").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infracost_prices_the_plan_and_the_price_book_takes_over_when_it_fails() {
    // The keys are set for tests in .cargo/config.toml: one the stand-in accepts, and one it
    // refuses as the real CLI refuses a bad key.
    let env = TestEnv::start(&infracost_config("INFRACOST_TEST_KEY")).await;
    let id = env.request("ec2", "alice", &[]).await;
    let active = env.wait_for(&id, Stage::Active, 60).await;
    let cost = active.cost.unwrap();
    assert_eq!(cost.price_book_version, "infracost (JSON 0.2)");
    assert_eq!(cost.monthly_total, 9.192);
    assert_eq!(cost.lines.len(), 1);
    assert_eq!(cost.lines[0].address, "aws_instance.this");
    assert_eq!(cost.lines[0].resource_type, "aws_instance");
    assert!(
        cost.lines[0].description.starts_with("Instance usage (Linux/UNIX, on-demand, t3.micro): 730 hours x $0.0104")
    );
    env.shutdown().await;

    let env = TestEnv::start(&infracost_config("INFRACOST_TEST_INVALID_KEY")).await;
    let id = env.request("ec2", "alice", &[]).await;
    let active = env.wait_for(&id, Stage::Active, 60).await;
    let cost = active.cost.unwrap();
    assert_eq!(cost.price_book_version, "aws-on-demand-2026-11");
    assert_eq!(
        cost.assumptions[0],
        "Infracost could not price this plan (infracost breakdown failed (exit status: 1): Error: Invalid API key, \
         please check your INFRACOST_API_KEY environment variable); the price book did"
    );
    env.shutdown().await;
}

#[test]
fn infracost_without_its_key_stops_the_worker_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "data_dir = \"{}\"\n[infracost]\nbinary = \"infracost\"\napi_key_env = \"INFRACOST_TEST_NO_SUCH_KEY\"\n",
        dir.path().display()
    );
    let config = tollgate_config::Config::from_sources(&text, "test", &[]).unwrap();
    let err = tollgate_worker::build_activities(&config, None).err().expect("refuses to start").to_string();
    assert_eq!(
        err,
        "infracost.binary is set but INFRACOST_TEST_NO_SUCH_KEY (infracost.api_key_env) is not; set it to an Infracost API key, \
         or remove infracost.binary to price with the price book"
    );
}

/// Estimates (us-east-1, 20 GB gp3 root): t3.micro $9.19, t3.small $16.78, m5.large $71.68 a month.
const BUDGETED: &str = r#"
baseline_source = "ledger"
cost_threshold_percent = 1000
[[budgets]]
name = "data-team"
members = ["alice", "bob"]
monthly = 20
hard_cap = 30
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_is_the_baseline_and_budgets_ask_then_refuse() {
    use tollgate_proto::DecisionKind;
    let env = TestEnv::start(&format!("{LONG}\n{BUDGETED}")).await;

    // Nothing alive yet: no baseline, so a person decides.
    let first = env.request("ec2", "erin", &[]).await;
    let waiting = env.wait_for(&first, Stage::AwaitingApproval, 60).await;
    let gate = waiting.gate.unwrap();
    assert_eq!(gate.baseline_source, "ledger: 0 active requests");
    assert!(
        gate.reason.starts_with("+$9.19/month against no baseline (ledger: 0 active requests; threshold 1000%)"),
        "{}",
        gate.reason
    );
    assert!(gate.budget.is_none(), "erin has no budget");
    tollgate_client::requests::decide(&env.client, &first, DecisionKind::Approve, "carol", "", "").await.unwrap();
    env.wait_for(&first, Stage::Active, 60).await;

    // erin's box is the ledger now; alice's budget has room.
    let alice = env.request("ec2", "alice", &[]).await;
    let active = env.wait_for(&alice, Stage::Active, 60).await;
    let gate = active.gate.unwrap();
    assert_eq!(
        gate.reason,
        "+$9.19/month is 100.0% of the $9.19/month baseline (ledger: 1 active request; threshold 1000%); \
         budget data-team: $0.00 spent + $9.19 = $9.19 of $20.00/month, hard cap $30.00: created directly"
    );
    assert_eq!(gate.budget.as_ref().unwrap().members, vec!["alice", "bob"]);

    // bob shares the team's budget: past the limit, a person decides.
    let over = env.request("ec2", "bob", &[("instance_type", "t3.small")]).await;
    let waiting = env.wait_for(&over, Stage::AwaitingApproval, 60).await;
    let gate = waiting.gate.unwrap();
    assert_eq!(gate.deciding, vec!["budget"]);
    assert!(
        gate.reason.contains("budget data-team: $9.19 spent + $16.78 = $25.97 of $20.00/month, hard cap $30.00"),
        "{}",
        gate.reason
    );
    assert!(
        gate.reason.ends_with("approval required (over budget data-team ($25.97 > $20.00/month))"),
        "{}",
        gate.reason
    );

    // Past the hard cap: refused with the arithmetic, nothing created.
    let capped = env.request("ec2", "bob", &[("instance_type", "m5.large")]).await;
    let done = env.wait_for(&capped, Stage::Rejected, 60).await;
    assert!(done.gate.as_ref().unwrap().refused);
    assert_eq!(
        done.final_reason,
        "refused at the gate: +$71.68/month is 390.0% of the $18.38/month baseline (ledger: 2 active requests; threshold 1000%); \
         budget data-team: $9.19 spent + $71.68 = $80.87 of $20.00/month, hard cap $30.00: refused (over the hard cap of budget \
         data-team ($80.87 > $30.00/month)); nothing was applied"
    );
    assert!(env.events(&capped).is_empty());
    let (code, out, _) = env.cli(&["status", &capped, "-o", "json"]).await;
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["gate"]["deciding"], serde_json::json!(["hard cap"]));
    assert_eq!(v["gate"]["budget"]["spent"], 9.19);
    env.shutdown().await;
}

#[test]
fn budgets_that_cannot_work_are_refused_at_start() {
    let refuse = |text: &str| tollgate_config::Config::from_sources(text, "test", &[]).unwrap_err().to_string();
    let err = refuse("[[budgets]]\nname = \"t\"\nmembers = [\"a\"]\nmonthly = 100\nhard_cap = 50\n");
    assert!(err.contains("budgets[0]: 't': hard_cap 50 is below monthly 100"), "{err}");
    let err = refuse(
        "[[budgets]]\nname = \"t\"\nmembers = [\"a\"]\nmonthly = 1\n[[budgets]]\nname = \"u\"\nmembers = [\"a\"]\nmonthly = 1\n",
    );
    assert!(err.contains("budgets[1]: 'u': a is already in budget 't'"), "{err}");
    let err = refuse("baseline_source = \"guess\"\n");
    assert!(err.contains("baseline_source: 'guess' is not a source"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_baseline_can_come_from_aws_cost_explorer() {
    // moto answers GetCostAndUsage with results queued through its own API.
    let (_moto, options) = crate::common::start_moto("unused").await;
    let endpoint = options["endpoint"].clone();
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let months = serde_json::json!({"results": [{"ResultsByTime": [
        {"TimePeriod": {"Start": "2026-08-01", "End": "2026-09-01"}, "Total": {"UnblendedCost": {"Amount": "181.10", "Unit": "USD"}}, "Groups": [], "Estimated": false},
        {"TimePeriod": {"Start": "2026-09-01", "End": "2026-10-01"}, "Total": {"UnblendedCost": {"Amount": "192.20", "Unit": "USD"}}, "Groups": [], "Estimated": false},
        {"TimePeriod": {"Start": "2026-10-01", "End": "2026-11-01"}, "Total": {"UnblendedCost": {"Amount": "203.30", "Unit": "USD"}}, "Groups": [], "Estimated": false}
    ]}]});
    assert!(
        crate::common::http_ok(port, "POST", "/moto-api/static/ce/cost-and-usage-results", &months.to_string()).await
    );

    let text = format!(
        "{LONG}\nbaseline_source = \"aws-cost-explorer\"\n[cost_explorer]\nendpoint = \"{endpoint}\"\ntag_key = \"team\"\ntag_value = \"data\"\n"
    );
    let env = TestEnv::start(&text).await;
    let id = env.request("ec2", "alice", &[]).await;
    let active = env.wait_for(&id, Stage::Active, 60).await;
    let gate = active.gate.unwrap();
    assert_eq!(gate.baseline_monthly_cost, 192.2, "(181.10 + 192.20 + 203.30) / 3");
    assert!(
        gate.baseline_source.starts_with("aws-cost-explorer: average unblended cost of 3 months from "),
        "{}",
        gate.baseline_source
    );
    assert!(gate.baseline_source.ends_with("(exclusive), tag team=data"), "{}", gate.baseline_source);
    assert!(
        gate.reason.starts_with("+$9.19/month is 4.8% of the $192.20/month baseline (aws-cost-explorer:"),
        "{}",
        gate.reason
    );
    env.shutdown().await;
}
