//! Estimate vs actual over a scripted month: the sandbox's meter (`meter.toml`) says what each
//! bucket stores; `tollgate cost-report --check` runs the cost check now (as its schedule does),
//! marks each request, tells the owner and approvers of a bill that newly diverges (once), and
//! the report shows per team the bills against the estimates, the largest misses and the
//! usage declaration to fix.

use serde_json::Value;
use tollgate_proto::Stage;

use crate::common::TestEnv;

const CONFIG: &str = r#"
approving_users = ["carol", "dave"]
grace_period = "1d"
extension_period = "30d"
default_ttl = "30d"
max_ttl = "60d"

[cost_check]
interval = "0s"
max_ratio = 1.5

[[teams]]
name = "platform"
members = ["alice"]
approvers = ["carol"]

[[teams]]
name = "data"
members = ["bob"]
approvers = ["dave"]
"#;

fn meter(env: &TestEnv, usage: &[(&str, f64)]) {
    let text: String = usage
        .iter()
        .map(|(id, gb)| {
            format!("[[usage]]\nrequest_id = \"{id}\"\naddress = \"aws_s3_bucket.this\"\nstorage_gb = {gb}\n\n")
        })
        .collect();
    std::fs::create_dir_all(env.sandbox_root()).unwrap();
    std::fs::write(env.sandbox_root().join("meter.toml"), text).unwrap();
}

async fn report(env: &TestEnv, args: &[&str]) -> Value {
    let (code, out, err) = env.cli(&[&["cost-report"], args, &["-o", "json"]].concat()).await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn team<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["teams"].as_array().unwrap().iter().find(|t| t["team"] == name).unwrap_or_else(|| panic!("{report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bills_are_checked_against_their_estimates_and_misses_reported_by_team() {
    let env = TestEnv::start(CONFIG).await;
    let logs = env.request("s3", "alice", &[("storage_gb", "50")]).await; // $1.15 estimated
    let lake = env.request("s3", "bob", &[("storage_gb", "100")]).await; // $2.30 estimated
    env.wait_for(&logs, Stage::Active, 60).await;
    env.wait_for(&lake, Stage::Active, 60).await;
    let (code, out, _) = env.cli(&["cost-report"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("No request has been checked yet"), "{out}");

    // Day 1: a little over the estimate, within the ratio.
    meter(&env, &[(&logs, 60.0)]);
    let day1 = report(&env, &["--check"]).await;
    assert_eq!(team(&day1, "platform")["actual_monthly"], 1.38, "{day1}");
    assert_eq!(team(&day1, "platform")["diverged"], serde_json::json!([]));
    assert_eq!(team(&day1, "data")["actual_monthly"], 2.30, "not metered: billed as declared");
    assert!(env.inbox.all(&logs, "cost_diverged").is_empty());

    // Day 15: the logs bucket holds ten times what was declared; the lake far less.
    meter(&env, &[(&logs, 500.0), (&lake, 40.0)]);
    let day15 = report(&env, &["--check"]).await;
    let platform = team(&day15, "platform");
    assert_eq!(
        (platform["actual_monthly"].clone(), platform["diverged"][0].clone()),
        (11.5.into(), logs.clone().into())
    );
    let miss = &platform["largest_misses"][0];
    assert_eq!(
        (miss["ratio"].clone(), miss["lines"][0]["usage"].clone()),
        (10.0.into(), "500 GB stored; 50 GB declared".into())
    );
    assert_eq!(
        platform["fixes"][0]["fix"],
        "declare storage_gb = 500 for aws_s3_bucket.this (the request's storage_gb parameter, or usage.toml beside catalog:s3@2)"
    );
    assert_eq!(team(&day15, "data")["diverged"][0], lake.as_str(), "a bill far under its estimate is a miss too");
    let told = env.wait_notification(&logs, "cost_diverged", 30).await;
    assert_eq!(told["recipients"], serde_json::json!(["alice", "carol"]), "the owner and the team's approvers");
    assert!(
        told["body"].as_str().unwrap().contains("is billed $11.50/month (sandbox meter) against the $1.15/month"),
        "{told}"
    );
    env.wait_notification(&lake, "cost_diverged", 30).await;

    // Day 30: the same bills: marked again, nobody told twice.
    let day30 = report(&env, &["--check"]).await;
    assert_eq!(team(&day30, "platform")["diverged"][0], logs.as_str());
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(env.inbox.all(&logs, "cost_diverged").len(), 1, "told once per divergence");

    // People read it per team, and on the request.
    let (_, text, _) = env.cli(&["cost-report", "--team", "platform"]).await;
    assert!(
        text.contains("team platform: 1 request billed $11.50/month against $1.15 estimated (10.00x); 1 diverged"),
        "{text}"
    );
    assert!(text.contains("usage declarations to fix:") && text.contains("declare storage_gb = 500"), "{text}");
    assert!(!text.contains("team data"), "{text}");
    let (_, status, _) = env.cli(&["status", &logs]).await;
    assert!(
        status.contains("Billed     $11.50/month against $1.15 estimated (10.00x, diverged; sandbox meter"),
        "{status}"
    );

    // A meter that does not parse measures nothing, says why, and keeps the last marks.
    std::fs::write(env.sandbox_root().join("meter.toml"), "usage = [").unwrap();
    let (code, text, err) = env.cli(&["cost-report", "--check"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains(
            "0 requests checked: $0.00/month billed against $0.00 estimated; 0 diverged; 2 could not be measured"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("not measured: {logs}: engine I/O: reading ")) && text.contains("meter.toml"),
        "{text}"
    );
    assert!(text.contains("team platform: 1 request billed $11.50/month"), "the last marks stand: {text}");
    env.shutdown().await;
}

/// The same check with the bills from AWS Cost Explorer (moto's server speaking its protocol,
/// answering what is queued through moto's own API): one GetCostAndUsage call for every live
/// request, daily over the last 7 full days, grouped by the `RequestId` tag and the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bills_can_come_from_cost_explorer_by_the_request_tag() {
    let (moto, options) = crate::common::start_moto("unused").await;
    let endpoint = options["endpoint"].clone();
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let config = CONFIG.replace(
        "max_ratio = 1.5\n",
        &format!("max_ratio = 1.5\nactuals = \"aws-cost-explorer\"\n\n[cost_explorer]\nendpoint = \"{endpoint}\"\n"),
    );
    let env = TestEnv::start(&config).await;
    let logs = env.request("s3", "alice", &[("storage_gb", "50")]).await; // $1.15 estimated
    let fresh = env.request("s3", "alice", &[("storage_gb", "10")]).await;
    let web = env.request("ec2", "bob", &[]).await; // $9.19: t3.micro $7.59 + its 20 GB root volume $1.60
    let ghost = env.request("s3", "bob", &[("storage_gb", "10")]).await;
    for id in [&logs, &fresh, &web, &ghost] {
        env.wait_for(id, Stage::Active, 60).await;
    }

    // The last 7 full UTC days, as Cost Explorer names them.
    let today =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 / 86_400_000;
    let day = |back: i64| tollgate_proto::fmt_time_ms((today - back) * 86_400_000)[..10].to_string();
    let group = |id: &str, service: &str, amount: &str| serde_json::json!({"Keys": [format!("RequestId${id}"), service], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}});
    let days: Vec<Value> = (1..=7)
        .rev()
        .map(|back| {
            // logs all week at $11.50 a month: 500 GB where 50 were declared; and a key it
            // was not priced for ($0.91 a month).
            let mut groups = vec![
                group(&logs, "Amazon Simple Storage Service", "0.3780821918"),
                group(&logs, "AWS Key Management Service", "0.03"),
            ];
            // web came up 5 days ago (a partial day), then bills its type's price and its volume.
            match back {
                5 => groups.push(group(&web, "Amazon Elastic Compute Cloud - Compute", "0.05")),
                1..=4 => {
                    groups.push(group(&web, "Amazon Elastic Compute Cloud - Compute", "0.2496"));
                    groups.push(group(&web, "EC2 - Other", "0.0526027397"));
                }
                _ => {}
            }
            if back == 1 {
                groups.push(group(&fresh, "Amazon Simple Storage Service", "0.01"));
            }
            serde_json::json!({"TimePeriod": {"Start": day(back), "End": day(back - 1)}, "Total": {}, "Groups": groups, "Estimated": back == 1})
        })
        .collect();
    let queued = serde_json::json!({"results": [{"ResultsByTime": days, "DimensionValueAttributes": []}]});
    assert!(
        crate::common::http_ok(port, "POST", "/moto-api/static/ce/cost-and-usage-results", &queued.to_string()).await
    );

    let first = report(&env, &["--check"]).await;
    let platform = team(&first, "platform");
    assert_eq!(
        (platform["actual_monthly"].clone(), platform["diverged"][0].clone()),
        (12.41.into(), logs.clone().into()),
        "{first}"
    );
    let fixes: Vec<&str> = platform["fixes"].as_array().unwrap().iter().map(|f| f["fix"].as_str().unwrap()).collect();
    assert_eq!(
        fixes,
        [
            "the estimate has no line for AWS Key Management Service: price what the module makes there (a resource the price book does not know, or usage it does not declare)",
            "declare storage_gb = 500 for aws_s3_bucket.this (the request's storage_gb parameter, or usage.toml beside catalog:s3@2)",
        ],
        "{first}"
    );
    let data = team(&first, "data");
    assert_eq!(
        (data["actual_monthly"].clone(), data["diverged"].clone()),
        (9.19.into(), serde_json::json!([])),
        "the partial first day left out, compute and volume one EC2 line: {first}"
    );
    let (_, checked, _) = env.cli(&["cost-report", "--check"]).await;
    assert!(
        checked.contains(&format!(
            "not measured: {fresh}: first billed on {}, not a full day yet (Cost Explorer bills by the day, about a day late)",
            day(1)
        )),
        "{checked}"
    );
    assert!(
        checked.contains(&format!("not measured: {ghost}: Cost Explorer has no cost tagged RequestId={ghost} on the 7 days from {} to {} (activate RequestId as a cost allocation tag", day(7), day(1))),
        "{checked}"
    );
    let told = env.wait_notification(&logs, "cost_diverged", 30).await;
    assert_eq!(told["recipients"], serde_json::json!(["alice", "carol"]));
    let (_, status, _) = env.cli(&["status", &web]).await;
    assert!(
        status.contains(&format!(
            "Billed     $9.19/month against $9.19 estimated (1.00x; Cost Explorer, 4 full days from {} by tag RequestId",
            day(4)
        )),
        "{status}"
    );
    let (_, json, _) = env.cli(&["status", &web, "-o", "json"]).await;
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        json["cost_check"]["lines"],
        serde_json::json!([{
            "address": "aws_instance.this", "resource_type": "Amazon EC2", "estimate_monthly": 9.19,
            "actual_monthly": 9.19, "usage": "billed as Amazon Elastic Compute Cloud - Compute + EC2 - Other", "fix": "",
        }]),
        "one EC2 line, the security group (free) left out: {json}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(env.inbox.all(&logs, "cost_diverged").len(), 1, "the second check told nobody again");

    // Cost Explorer gone: nothing measured, each request says why, the marks stand.
    drop(moto);
    let (code, text, err) = env.cli(&["cost-report", "--check"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("0 requests checked") && text.contains("4 could not be measured"), "{text}");
    assert!(text.contains(&format!("not measured: {logs}: Cost Explorer could not be reached")), "{text}");
    assert!(text.contains("team platform: 1 request billed $12.41/month"), "the last marks stand: {text}");
    env.shutdown().await;
}
