//! The `tollgate` binary: output, refusals and exit codes (0 ok, 2 refused, 3 unknown id).

use crate::common::{BASE, TestEnv};
use serde_json::Value;
use tollgate_proto::Stage;
use tollgate_workflows::quorum::FIXED_AT_START;

fn json(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_commands_their_output_and_their_refusals() {
    let env = TestEnv::start(BASE).await;

    // request: prints the id (text) or one JSON object.
    let (code, out, err) =
        env.cli(&["request", "s3", "--requester", "alice", "--name", "cli-logs", "--ttl", "50s"]).await;
    assert_eq!(code, 0, "{err}");
    let small = out.trim().to_string();
    assert!(small.starts_with("req-s3-"), "{out}");
    let (code, out, err) = env
        .cli(&[
            "request",
            "rds",
            "--requester",
            "alice",
            "--param",
            "instance_class=db.r5.2xlarge",
            "--ttl",
            "30s",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    let big = json(&out)["request_id"].as_str().unwrap().to_string();

    // status --watch returns once the request settles; JSON has the documented fields.
    let (code, out, err) = env.cli(&["status", &small, "--watch", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let s = json(&out);
    assert_eq!(s["stage"], "ACTIVE");
    assert_eq!(s["request_id"], small.as_str());
    assert_eq!(s["monthly_cost"], 1.15);
    assert_eq!(s["approval_required"], false);
    assert!(s["approvals"].as_array().unwrap().is_empty());
    assert!(s["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(s["outputs"]["bucket"], "cli-logs");
    assert!(s["timeline"].as_array().unwrap().len() >= 6);

    let (_, out, _) = env.cli(&["status", &big, "--watch", "-o", "json"]).await;
    assert_eq!(json(&out)["stage"], "AWAITING_APPROVAL");
    assert_eq!(s["module"]["source"], "catalog:s3@2", "where the module came from");

    show_reads_the_artifacts_by_name(&env, &small, &big).await;

    // Refusals: one line on stderr, exit 2, nothing changed.
    let (code, out, err) = env.cli(&["approve", &big, "--as", "alice"]).await;
    assert_eq!((code, out.as_str(), err.trim()), (2, "", "tollgate: alice cannot approve their own request"));
    let (code, _, err) = env.cli(&["approve", &big, "--as", "bob"]).await;
    assert_eq!(
        (code, err.trim()),
        (2, format!("tollgate: bob is not an approver (approving_users: carol, dave; {FIXED_AT_START})").as_str())
    );
    let (code, out, _) = env.cli(&["approve", &big, "--as", "bob", "-o", "json"]).await;
    assert_eq!(code, 2);
    assert_eq!(json(&out)["error"], format!("bob is not an approver (approving_users: carol, dave; {FIXED_AT_START})"));
    assert_eq!(env.progress(&big).await.decisions.len(), 0);

    // An id the requester chose is refused when taken, never swapped for another
    // (only generated ids are drawn again).
    let (code, out, err) = env.cli(&["request", "s3", "--requester", "alice", "--id", &small, "--ttl", "50s"]).await;
    assert_eq!(
        (code, out.as_str(), err.trim()),
        (2, "", format!("tollgate: a request with id '{small}' already exists").as_str())
    );

    unknown_ids_no_server_and_bad_requests(&env).await;

    // approve, keep, list, destroy.
    let (code, out, err) = env.cli(&["approve", &big, "--as", "carol", "--comment", "ok", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["approvals"], 1);
    env.wait_for(&big, Stage::Active, 60).await;
    let (code, out, err) = env.cli(&["keep", &big, "--as", "alice"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("kept until "), "{out}");

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // Visibility is eventually consistent: wait for both to show as ACTIVE.
        let (code, out, _) = env.cli(&["list", "--stage", "active", "-o", "json"]).await;
        assert_eq!(code, 0);
        let ids: Vec<String> = json(&out)["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["request_id"].as_str().unwrap().to_string())
            .collect();
        if ids.contains(&small) && ids.contains(&big) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "list --stage active shows {ids:?}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let (code, out, _) = env.cli(&["list"]).await;
    assert_eq!(code, 0);
    assert!(out.contains(&big) && out.contains("required"), "{out}");
    let (code, _, err) = env.cli(&["list", "--stage", "sleeping"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("--stage 'sleeping' is unknown"), "{err}");

    let (code, out, err) = env.cli(&["destroy", &big, "--as", "alice"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("alice asked to destroy {big}"));
    let (code, out, err) = env.cli(&["status", &big, "--follow"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Stage      DESTROYED"), "{out}");
    // Refused either by the ended workflow or, while its last notifications go out, by the
    // stage check: the same exit code either way.
    let (code, _, err) = env.cli(&["destroy", &big, "--as", "alice"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.trim() == format!("tollgate: request {big} has already ended")
            || err.trim() == "tollgate: request is DESTROYED; destroy applies only to ACTIVE requests",
        "{err}"
    );

    let (code, _, err) = env.cli(&["reject", &small, "--as", "carol", "--reason", "no"]).await;
    assert_eq!(
        (code, err.trim()),
        (2, "tollgate: request is ACTIVE; decisions are taken only while it is AWAITING_APPROVAL")
    );

    // cancel: refused with its code for someone else, accepted for the requester.
    let (code, out, _) = env.cli(&["cancel", &small, "--as", "mallory", "-o", "json"]).await;
    assert_eq!(code, 2);
    assert_eq!(json(&out)["code"], "not_allowed");
    let (code, out, err) = env.cli(&["cancel", &small, "--as", "alice", "--reason", "done"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("alice cancelled {small}")), "{out}");
    let (code, out, err) = env.cli(&["status", &small, "--follow"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Stage      CANCELLED") && out.contains("Cancelled  by alice at ACTIVE: done"), "{out}");
    env.shutdown().await;
}

/// `show`: the stored artifacts by name, no store layout needed; what a request does not have
/// is said as such.
async fn show_reads_the_artifacts_by_name(env: &TestEnv, small: &str, big: &str) {
    let (code, out, err) = env.cli(&["show", small, "plan"]).await;
    assert_eq!(code, 0, "{err}");
    let plan = json(&out);
    assert!(plan["resource_changes"].as_array().is_some_and(|c| c.len() == 4), "{out}");
    assert!(plan.get("tollgate_plan_file").is_none(), "no binary plan on screen");
    let (code, out, err) = env.cli(&["show", small, "state", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let state = json(&out);
    assert_eq!(state["artifact"], "state");
    assert!(state["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(state["content"]["resources"].as_array().is_some_and(|r| !r.is_empty()), "{out}");
    let (code, _, err) = env.cli(&["show", big, "state"]).await;
    assert_eq!((code, err.trim()), (2, format!("tollgate: request {big} has no state: nothing was applied").as_str()));
    let (code, _, err) = env.cli(&["show", small, "transcript"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no LLM wrote its module (module source: catalog:s3@2)"), "{err}");
    let (code, _, err) = env.cli(&["show", small, "secrets"]).await;
    assert_eq!(code, 2, "clap refuses an unknown artifact: {err}");
}

/// An unknown id exits 3, no server exits 1 naming the address, and a bad request is refused
/// before anything starts.
async fn unknown_ids_no_server_and_bad_requests(env: &TestEnv) {
    let (code, _, err) = env.cli(&["status", "req-nope-1"]).await;
    assert_eq!((code, err.trim()), (3, "tollgate: no request with id 'req-nope-1'"));
    let (code, _, _) = env.cli(&["approve", "req-nope-1", "--as", "carol"]).await;
    assert_eq!(code, 3);
    let (code, out, _) = env.cli(&["status", "req-nope-1", "-o", "json"]).await;
    assert_eq!((code, json(&out)["code"].clone()), (3, Value::from("unknown_request")), "{out}");

    // No server at the address: one line naming it and what to do, code `unavailable`.
    let out = tokio::process::Command::new(crate::common::binary("tollgate"))
        .args(["list", "-o", "json"])
        .env("TEMPORAL_ADDRESS", format!("127.0.0.1:{}", crate::common::free_port()))
        .env("TOLLGATE_CONFIG", env.config_file())
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!((out.status.code(), json(&stdout)["code"].clone()), (Some(1), Value::from("unavailable")), "{stdout}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("tollgate: cannot reach Temporal at http://127.0.0.1:")
            && stderr.trim_end().ends_with("start a server (tollgate dev) or point TEMPORAL_ADDRESS at one"),
        "{stderr}"
    );

    // Bad requests are refused before anything starts.
    let before = tollgate_client::requests::list(&env.client, None, 100).await.unwrap().len();
    for (args, reason) in [
        (vec!["request", "redis", "--requester", "alice"], "unknown kind 'redis': choose one of ec2, s3, rds"),
        (vec!["request", "ec2", "--requester", "alice", "--ttl", "2m"], "ttl 2m is above max_ttl 1m"),
        (
            vec!["request", "ec2", "--requester", "alice", "--vendor", "gcp"],
            "vendor 'gcp' is not allowed: allowed_vendors is [aws]",
        ),
        (
            vec!["request", "ec2", "--requester", "alice", "--param", "instance_type=x9.huge"],
            "instance_type='x9.huge' must be one of",
        ),
        (vec!["request", "ec2", "--requester", "alice", "--ttl", "soon"], "--ttl 'soon' is not a duration"),
    ] {
        let (code, _, err) = env.cli(&args).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(reason), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    assert_eq!(tollgate_client::requests::list(&env.client, None, 100).await.unwrap().len(), before, "nothing started");
}

/// `tollgate prices import` refreshes a price book from AWS Price List offer files (fixtures in
/// the bulk JSON format) and says what changed; the book it writes is one the worker reads.
#[test]
fn prices_import_writes_a_book_the_worker_reads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("book.toml");
    let offers = crate::common::workspace().join("tests/fixtures/offers");
    let run = |args: &[&str]| {
        std::process::Command::new(crate::common::binary("tollgate"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("TOLLGATE_CONFIG")
            .output()
            .unwrap()
    };
    let files: Vec<String> = ["AmazonEC2", "AmazonRDS", "AmazonS3"]
        .iter()
        .map(|o| offers.join(format!("{o}.json")).display().to_string())
        .collect();
    let mut args = vec!["-o", "json", "prices", "import", "--out", out.to_str().unwrap()];
    args.extend(files.iter().map(String::as_str));
    let done = run(&args);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(summary["version"], "aws-price-list-20261101");
    assert_eq!(
        summary["changes"][1],
        serde_json::json!({"region": "us-east-1", "item": "ec2 t3.micro $/h", "old": 0.0104, "new": 0.0105})
    );
    let book = tollgate_cost::PriceBook::parse(&std::fs::read_to_string(&out).unwrap(), "book").unwrap();
    assert_eq!(book.regions["us-east-1"].ec2_hourly["t3.micro"], 0.0105);
    // A file that is not an offer: refused (exit 2), nothing written.
    let bad = run(&["prices", "import", "--out", "other.toml", out.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not JSON"), "{}", String::from_utf8_lossy(&bad.stderr));
    assert!(!dir.path().join("other.toml").exists());
}

/// `tollgate-worker --check-config` runs the worker's start-up checks without a server:
/// a module source that cannot be fetched fails it (exit 2, the reason), a good file prints
/// a short summary.
#[test]
fn check_config_checks_what_the_worker_checks_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let run = |text: &str| crate::common::check_config(dir.path(), text);
    let (code, out, err) = run("approving_users = [\"carol\"]\n");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("configuration OK ("), "{out}");
    assert!(out.contains("approvers     carol (1 needed)"), "{out}");
    assert!(out.contains("engine        sandbox"), "{out}");
    assert!(out.contains("caches 500 workflows;") && out.contains("gRPC compression gzip"), "{out}");
    assert!(out.contains("Not checked here: the Temporal server"), "{out}");
    assert!(out.lines().count() < 20, "a short summary, not a dump: {out}");

    let missing = dir.path().join("no-such-repo");
    let (code, out, err) =
        run(&format!("[[module_sources]]\nname = \"team\"\ngit = \"file://{}\"\n", missing.display()));
    assert_eq!(code, Some(2), "{out}");
    assert!(err.contains("configuration error") && err.contains("team"), "{err}");
}
