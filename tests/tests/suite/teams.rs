//! Teams and role-based approval rules through the CLI, a real worker and dev server: a prod
//! RDS needs one approval from dba and one from platform, a person counts in one group only,
//! nobody approves their own request or for a group they are not in, and a request that no one
//! could approve is refused at the gate.

use serde_json::Value;
use tollgate_proto::Stage;

use crate::common::TestEnv;

const TEAMS: &str = r#"
approving_users = ["carol"]
grace_period = "1m"
extension_period = "3m"
default_ttl = "3m"
max_ttl = "10m"
approval_timeout = "5m"

[[teams]]
name = "platform"
members = ["alice", "dave", "erin"]
approvers = ["carol"]

[[teams]]
name = "dba"
members = ["dave", "frank"]

[[teams]]
name = "finance"
members = ["gina"]

[[approval_rules]]
name = "prod-rds"
when = { environments = ["prod"], kinds = ["rds"] }
need = [{ team = "dba", count = 1 }, { team = "platform", count = 1 }]

[[approval_rules]]
name = "big-spend"
when = { min_monthly_cost = 500 }
need = [{ team = "finance", count = 1 }]
"#;

fn json(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prod_rds_needs_one_from_dba_and_one_from_platform() {
    let env = TestEnv::start(TEAMS).await;
    // frank (dba) asks for a small prod database: below the cost threshold, but the rule asks.
    let (code, out, err) = env.cli(&["request", "rds", "--requester", "frank", "--env", "prod", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let id = json(&out)["request_id"].as_str().unwrap().to_string();
    let (_, out, _) = env.cli(&["status", &id, "--watch", "-o", "json"]).await;
    let s = json(&out);
    assert_eq!(s["stage"], "AWAITING_APPROVAL", "{s}");
    assert!(s["gate"]["reason"].as_str().unwrap().contains("approval rule prod-rds"), "{s}");
    assert_eq!(s["required_approvals"], 2);
    let groups = &s["approval_groups"];
    assert_eq!(groups[0]["team"], "dba");
    assert_eq!(groups[0]["eligible"], serde_json::json!(["dave"]), "frank asked: he is left out");
    assert_eq!(groups[1]["team"], "platform");
    assert_eq!(groups[1]["eligible"], serde_json::json!(["alice", "dave", "erin"]));
    assert_eq!(s["waiting"]["approval_groups"], *groups, "what an approver is shown");

    // Not in a group (carol approves only platform's own requests), or the requester: refused.
    let (code, _, err) = env.cli(&["approve", &id, "--as", "carol"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("carol is in none of the groups this request waits on (dba (prod-rds): 1 of dave; platform (prod-rds): 1 of alice, dave, erin;"), "{err}");
    let (code, _, err) = env.cli(&["approve", &id, "--as", "frank"]).await;
    assert_eq!((code, err.trim()), (2, "tollgate: frank cannot approve their own request"));

    // dave is in both groups and counts in one: 1 of 2; erin fills platform.
    let (code, out, err) = env.cli(&["approve", &id, "--as", "dave", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!((json(&out)["approvals"].clone(), json(&out)["required_approvals"].clone()), (1.into(), 2.into()));
    let (_, text, _) = env.cli(&["status", &id]).await;
    assert!(text.contains("Group      dba (prod-rds): 1 of dave: dave"), "{text}");
    assert!(text.contains("Group      platform (prod-rds): 1 of alice, dave, erin: waiting"), "{text}");
    let (code, _, err) = env.cli(&["approve", &id, "--as", "erin"]).await;
    assert_eq!(code, 0, "{err}");
    env.wait_for(&id, Stage::Active, 60).await;
    let (_, out, _) = env.cli(&["status", &id, "-o", "json"]).await;
    let by: Vec<Value> =
        json(&out)["approval_groups"].as_array().unwrap().iter().map(|g| g["approved_by"].clone()).collect();
    assert_eq!(by, [serde_json::json!(["dave"]), serde_json::json!(["erin"])]);

    // alice (platform) asks for something small in dev: her team's approvers are asked only
    // when the gate asks; it does not, so it is created directly.
    let (code, out, err) = env.cli(&["request", "s3", "--requester", "alice", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let small = json(&out)["request_id"].as_str().unwrap().to_string();
    let p = env.wait_for(&small, Stage::Active, 60).await;
    assert!(p.approval_groups.is_empty());

    // gina is finance's only member: her big request could be approved by no one.
    let (code, out, err) = env
        .cli(&["request", "rds", "--requester", "gina", "--param", "instance_class=db.r5.2xlarge", "-o", "json"])
        .await;
    assert_eq!(code, 0, "{err}");
    let big = json(&out)["request_id"].as_str().unwrap().to_string();
    let p = env.wait_for(&big, Stage::Rejected, 60).await;
    assert_eq!(
        p.final_reason,
        "refused at the gate: it needs approval and no one could approve it: finance (big-spend) needs 1 of nobody; nothing was applied"
    );
    env.shutdown().await;
}

/// `--check-config` shows the teams and the rules, and refuses a cycle naming the key.
#[test]
fn check_config_says_the_teams_and_refuses_a_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let run = |text: &str| crate::common::check_config(dir.path(), text);
    let (code, out, err) = run(TEAMS);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("teams         platform (3 members; approvers carol); dba (2 members; approvers none); finance (1 member; approvers none)"), "{out}");
    assert!(out.contains("approve by    prod-rds: 1 from dba and 1 from platform; big-spend: 1 from finance"), "{out}");
    let (code, _, err) =
        run("[[teams]]\nname = \"a\"\nmember_teams = [\"b\"]\n[[teams]]\nname = \"b\"\nmember_teams = [\"a\"]\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.trim().ends_with("tollgate.toml: teams[0].member_teams: is a cycle: a -> b -> a"), "{err}");
}
