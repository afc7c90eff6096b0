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

/// platform (alice, carol) and dba (dave); a prod RDS needs one of each.
const TWO_GROUPS: &str = r#"
approving_users = ["carol", "dave"]
grace_period = "1m"
extension_period = "3m"
default_ttl = "3m"
max_ttl = "10m"
approval_timeout = "5m"

[[teams]]
name = "platform"
members = ["alice", "carol"]

[[teams]]
name = "dba"
members = ["dave"]

[[approval_rules]]
name = "prod-rds"
when = { environments = ["prod"], kinds = ["rds"] }
need = [{ team = "dba", count = 1 }, { team = "platform", count = 1 }]
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

/// The same rule through the gateway and Slack: the gateway's JSON and the Slack message say
/// the groups; a click by someone in no group is not recorded and says why; dave's click fills
/// dba, carol's REST approval fills platform.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_decide_through_the_gateway_and_slack() {
    use crate::common::gateway::GatewayProcess;
    use crate::notifications::{SlackCall, click, env_with_slack, start_fake_slack};
    let (slack, calls) = start_fake_slack().await;
    let mut env = env_with_slack(&slack, TWO_GROUPS).await;
    let gateway = GatewayProcess::start(
        &env,
        "[slack]\nsigning_secret_env = \"SLACK_SIGNING_SECRET\"\n",
        &[("SLACK_SIGNING_SECRET", "slack-secret")],
    )
    .await;
    env.start_worker();
    let request = tollgate_proto::ProvisionRequest {
        kind: "rds".into(),
        requester: "alice".into(),
        environment: "prod".into(),
        ..Default::default()
    };
    let id = env.try_request(request).await.unwrap();
    env.wait_for(&id, Stage::AwaitingApproval, 60).await;

    let http = gateway.client();
    let (status, shown) = http.get(&format!("/requests/{id}"), "tg_dave").await;
    assert_eq!(status, 200, "{shown}");
    let teams: Vec<&str> =
        shown["approval_groups"].as_array().unwrap().iter().map(|g| g["team"].as_str().unwrap()).collect();
    assert_eq!(teams, ["dba", "platform"], "{shown}");
    assert_eq!(shown["approval_groups"][1]["eligible"], serde_json::json!(["carol"]), "alice asked");

    let posted = |c: &[SlackCall]| c.iter().any(|c| c.0 == "chat.postMessage" && c.3["ok"] == true);
    calls.wait_for("the approval message", posted).await;
    let (message, _) = calls
        .of("chat.postMessage")
        .into_iter()
        .find(|(m, a)| a["ok"] == true && m["text"].as_str().is_some_and(|t| t.contains(&id)))
        .unwrap();
    let context = message["blocks"][1]["elements"][0]["text"].as_str().unwrap_or_default().to_string();
    assert!(context.contains("needs dba (prod-rds): 1 of dave; platform (prod-rds): 1 of carol"), "{message}");
    let approve = message["blocks"][2]["elements"][0].clone();

    // mallory is in no group: not recorded, and told why.
    assert_eq!(click(&gateway, &slack, "U_MALLORY", &approve).await, 200);
    let told = |c: &[SlackCall]| {
        c.iter().any(|c| {
            c.0 == "response_url"
                && c.2["text"].as_str().is_some_and(|t| t.contains("mallory is in none of the groups"))
        })
    };
    calls.wait_for("mallory's refusal", told).await;
    // dave's click fills dba; the request still waits on platform.
    assert_eq!(click(&gateway, &slack, "U_DAVE", &approve).await, 200);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while env.progress(&id).await.decisions.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "dave's click was not recorded");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let p = env.progress(&id).await;
    assert_eq!((p.stage_enum(), p.approvals(), p.required_approvals), (Stage::AwaitingApproval, 1, 2));
    let (status, answer) = http.post(&format!("/requests/{id}/approve"), "tg_carol", "{}").await;
    assert_eq!(status, 200, "{answer}");
    let p = env.wait_for(&id, Stage::Active, 60).await;
    let users: Vec<&str> = p.decisions.iter().map(|d| d.user.as_str()).collect();
    assert_eq!(users, ["dave", "carol"]);
    drop(gateway);
    env.shutdown().await;
}

/// The inbox in a real browser: mallory (in no group) reads the groups and is told why she
/// cannot decide; dave's approval fills dba and the page says platform still waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_shows_and_decides_by_group_in_a_real_browser() {
    use crate::common::gateway::GatewayProcess;
    let env = TestEnv::start(TWO_GROUPS).await;
    let gateway = GatewayProcess::start(&env, "", &[]).await;
    let request = tollgate_proto::ProvisionRequest {
        kind: "rds".into(),
        requester: "alice".into(),
        environment: "prod".into(),
        ..Default::default()
    };
    let id = env.try_request(request).await.unwrap();
    env.wait_for(&id, Stage::AwaitingApproval, 60).await;
    let shots = env.dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let args = [gateway.url.as_str(), id.as_str(), "tg_mallory", "tg_dave"].map(std::ffi::OsStr::new);
    let run = crate::common::BrowserRun::of("inbox_groups.mjs", &[&args[..], &[shots.as_os_str()]].concat()).await;
    let read_only = run.step("read only");
    assert_eq!(
        read_only["approvers"],
        "dba (prod-rds): 1 of dave; approved by nobody · platform (prod-rds): 1 of carol; approved by nobody",
        "{read_only}"
    );
    assert_eq!(read_only["why"], "mallory is in none of the groups this request waits on.");
    assert_eq!(read_only["buttons"], false);
    assert!(run.text("approved").contains("dave approved"), "{}", run.text("approved"));
    let filled = run.step("one group filled");
    assert_eq!((filled["stage"].as_str(), filled["approvals"].as_str()), (Some("AWAITING_APPROVAL"), Some("1 of 2")));
    assert_eq!(
        filled["approvers"],
        "dba (prod-rds): 1 of dave; approved by dave · platform (prod-rds): 1 of carol; approved by nobody"
    );
    assert_eq!(filled["buttons"], false, "dave has decided");
    let p = env.progress(&id).await;
    assert_eq!((p.decisions.len(), p.decisions[0].user.as_str()), (1, "dave"));
    drop(gateway);
    env.shutdown().await;
}

/// A team's budget ledger under load: 20 requests of one team ask for headroom at once, with
/// two workers (one in-process, one a separate process) serving the ledger. Each costs $100
/// over its lifetime against a $1,000 budget: exactly 10 are admitted, the other 10 are told
/// the arithmetic, and the ledger holds 10 reservations, never more than the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_requests_at_once_never_overspend_the_teams_headroom() {
    let mut env = TestEnv::start_without_worker(TWO_GROUPS).await;
    env.start_worker();
    let _second = env.spawn_worker_process();
    let ask = |i: usize| {
        let (client, queue) = (env.client.clone(), env.config.task_queue.clone());
        async move {
            let input = tollgate_proto::ReserveInput {
                team: "platform".into(),
                request_id: format!("req-{i}"),
                monthly_cost: 300.0,
                ttl: tollgate_proto::span(10 * 86_400_000),
                budget_monthly: 1000.0,
                force: false,
            };
            tollgate_client::ledger::reserve(&client, &queue, input).await.unwrap()
        }
    };
    let decisions = futures::future::join_all((0..20).map(ask)).await;
    let admitted: Vec<_> = decisions.iter().filter(|d| d.admitted).collect();
    assert_eq!(admitted.len(), 10, "{decisions:#?}");
    assert!(decisions.iter().all(|d| d.reserved == d.admitted));
    let refused = decisions.iter().find(|d| !d.admitted).unwrap();
    assert_eq!(
        refused.text,
        "team platform: live $1000.00 (10 requests) + this $100.00 = $1100.00 of $1000.00/month: $100.00 over"
    );
    let lefts: std::collections::BTreeSet<String> = admitted.iter().map(|d| format!("{:.2}", d.left)).collect();
    assert_eq!(lefts.len(), 10, "each admission saw the ones before it: {lefts:?}");
    let id = tollgate_workflows::ledger::workflow_id(&env.config.task_queue, "platform");
    let handle = env.client.get_workflow_handle::<tollgate_workflows::TeamLedgerWorkflow>(&id);
    let ledger = handle
        .query(tollgate_workflows::TeamLedgerWorkflow::ledger, (), temporalio_client::WorkflowQueryOptions::default())
        .await
        .unwrap();
    assert_eq!(ledger.reservations.len(), 10);
    // Whatever the Web UI or the CLI sends the ledger is refused, and it carries on.
    for input in ["\"x\"", r#"{"team": 5, "request_id": []}"#, r#"{"team": "platform"}"#] {
        let out = std::process::Command::new(crate::common::temporal_bin())
            .args(["workflow", "update", "execute", "-w", &id, "--name", "reserve", "--input", input])
            .args(["--address", &format!("127.0.0.1:{}", env.port)])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{input} was accepted: {}", String::from_utf8_lossy(&out.stdout));
    }
    // A release frees its share: the next request fits.
    let freed = decisions.iter().position(|d| d.admitted).unwrap();
    let release = tollgate_proto::ReleaseInput { team: "platform".into(), request_id: format!("req-{freed}") };
    tollgate_client::ledger::release(&env.client, &env.config.task_queue, release).await.unwrap();
    assert!(ask(99).await.admitted, "the released share is headroom again");
    env.shutdown().await;
}

/// The budget gate end to end: platform's budget is $12.00/month and each bucket costs $1.15
/// over its 30 days. Twenty requests at once, two workers: ten are created directly, ten wait
/// for platform's approver with the arithmetic in their gate; an approval past the headroom
/// reserves it anyway, and a destroyed request frees its share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_team_budget_gate_holds_under_twenty_requests_at_once() {
    const BUDGET: &str = r#"
approving_users = ["dave"]
grace_period = "1d"
extension_period = "30d"
default_ttl = "30d"
max_ttl = "30d"
approval_timeout = "5m"

[[teams]]
name = "platform"
members = ["alice", "carol"]
approvers = ["carol"]
budget_monthly = 12
"#;
    let mut env = TestEnv::start_without_worker(BUDGET).await;
    env.start_worker();
    let _second = env.spawn_worker_process();
    let ids: Vec<String> = futures::future::join_all((0..20).map(|i| {
        let env = &env;
        async move {
            let request = tollgate_proto::ProvisionRequest {
                kind: "s3".into(),
                name: format!("budget-{i}"),
                requester: "alice".into(),
                ..Default::default()
            };
            env.try_request(request).await.unwrap()
        }
    }))
    .await;
    let mut active = Vec::new();
    let mut waiting = Vec::new();
    for id in &ids {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let p = env.progress(id).await;
            match p.stage_enum() {
                Stage::Active => break active.push(p),
                Stage::AwaitingApproval => break waiting.push(p),
                _ => {}
            }
            assert!(tokio::time::Instant::now() < deadline, "{id} is still {:?}", p.stage_enum());
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }
    assert_eq!((active.len(), waiting.len()), (10, 10), "no overspend: ten fit in $12.00");
    let gate = waiting[0].gate.clone().unwrap();
    assert_eq!(gate.deciding, ["headroom"], "{}", gate.reason);
    assert!(
        gate.reason.ends_with(
            "team platform: live $11.50 (10 requests) + this $1.15 = $12.65 of $12.00/month: $0.65 over: approval required (over team platform's budget headroom)"
        ),
        "{}",
        gate.reason
    );
    assert_eq!(waiting[0].approval_groups[0].eligible, ["carol"], "the team's approver decides");
    let (_, out, _) = env.cli(&["status", &waiting[0].request_id]).await;
    assert!(out.contains("$0.65 over"), "the arithmetic in status: {out}");

    // carol approves past the headroom: reserved anyway; a destroy frees a share.
    let ledger = || async {
        let id = tollgate_workflows::ledger::workflow_id(&env.config.task_queue, "platform");
        let handle = env.client.get_workflow_handle::<tollgate_workflows::TeamLedgerWorkflow>(&id);
        let q = temporalio_client::WorkflowQueryOptions::default();
        handle.query(tollgate_workflows::TeamLedgerWorkflow::ledger, (), q).await.unwrap().reservations.len()
    };
    assert_eq!(ledger().await, 10);
    // A dry run shows the arithmetic and reserves nothing.
    let dry = env.dry_run_request("s3", "alice").await;
    let shown = env.wait_for(&dry, Stage::DryRunDone, 60).await;
    assert!(
        shown.final_reason.contains("would wait for approval") && shown.final_reason.contains("$0.65 over"),
        "{}",
        shown.final_reason
    );
    assert!(!shown.gate.unwrap().headroom.unwrap().reserved);
    assert_eq!(ledger().await, 10, "a dry run reserves nothing");
    let (code, _, err) = env.cli(&["approve", &waiting[0].request_id, "--as", "carol"]).await;
    assert_eq!(code, 0, "{err}");
    env.wait_for(&waiting[0].request_id, Stage::Active, 60).await;
    assert_eq!(ledger().await, 11, "an approved request holds its share");
    let (code, _, err) = env.cli(&["destroy", &active[0].request_id, "--as", "alice"]).await;
    assert_eq!(code, 0, "{err}");
    env.wait_for(&active[0].request_id, Stage::Destroyed, 60).await;
    assert_eq!(ledger().await, 10, "a destroyed request frees its share");

    // A terminate runs no Tollgate code: the reconciler frees what the request held.
    let orphan = &active[1].request_id;
    let handle = env.client.get_workflow_handle::<tollgate_workflows::ProvisionWorkflow>(orphan);
    let terminate = temporalio_client::WorkflowTerminateOptions::builder().reason("operator slip".to_string()).build();
    handle.terminate(terminate).await.unwrap();
    assert_eq!(ledger().await, 10, "terminated, it still holds its share");
    let (code, out, err) = env.cli(&["reconcile", "--dry-run"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 budget reservation of ended requests would be released"), "{out}");
    assert!(
        out.contains(&format!("{orphan} (TERMINATED at ACTIVE, owner alice): would release reservation: team platform's budget ledger held $1.15/month")),
        "{out}"
    );
    assert_eq!(ledger().await, 10, "a dry run releases nothing");
    let (code, out, err) = env.cli(&["reconcile", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let report = json(&out);
    let freed: Vec<&Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["action"] == "released reservation").collect();
    assert_eq!(freed.len(), 1, "{report}");
    assert_eq!(freed[0]["request_id"], orphan.as_str());
    assert_eq!(ledger().await, 9, "the reconciler released the terminated request's share");
    env.shutdown().await;
}
