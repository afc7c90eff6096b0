//! The POLICY_CHECK stage end to end: a `deny` finding refuses a request before anything is
//! priced or applied, an `approval` finding makes the gate ask a human, a `warn` finding is
//! only shown; a team's rule directory and level overrides join the shipped pack; a broken
//! rule stops the worker at start naming its file and line; `tollgate policy check` runs the
//! same evaluation on any plan JSON.

use tollgate_client::requests;
use tollgate_proto::{DecisionKind, FindingLevel, ProvisionRequest, Stage};

use crate::common::{LONG, TestEnv, binary, fixtures, git_repo, workspace};

/// The risky module (SSH open to the world) as a module source.
fn risky_source(root: &std::path::Path) -> String {
    let repo = git_repo(root, "modules-risky");
    format!("[[module_sources]]\nname = \"team\"\ngit = \"{repo}\"\npath = \"modules\"\n")
}

fn open_ssh(dry_run: bool) -> ProvisionRequest {
    ProvisionRequest {
        kind: "open-ssh".into(),
        requester: "alice".into(),
        name: "jump".into(),
        dry_run,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_finding_refuses_the_request_before_anything_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let env = TestEnv::start(&format!("{LONG}\n{}", risky_source(dir.path()))).await;

    let id = env.try_request(open_ssh(false)).await.unwrap();
    let done = env.wait_for(&id, Stage::Rejected, 60).await;
    assert_eq!(
        done.final_reason,
        "refused by policy: [SC-7 open-ingress] aws_security_group.ssh: ingress from 0.0.0.0/0 on tcp ports 22-22: \
         only TCP 443 may be open to the internet; narrow the CIDR; nothing was applied"
    );
    assert_eq!(done.findings.len(), 1, "{:?}", done.findings);
    let finding = &done.findings[0];
    assert_eq!((finding.rule_id.as_str(), finding.control.as_str()), ("open-ingress", "SC-7"));
    assert_eq!(finding.level(), FindingLevel::Deny);
    assert!(done.policy_pack.starts_with("builtin@"), "{}", done.policy_pack);
    let steps: Vec<(&str, &str)> = done.timeline.iter().map(|t| (t.step.as_str(), t.outcome.as_str())).collect();
    assert!(steps.contains(&("check policy", "1 deny (9 rules)")), "{steps:?}");
    assert!(!steps.iter().any(|(s, _)| *s == "estimate cost" || *s == "apply"), "{steps:?}");
    assert!(done.cost.is_none() && done.gate.is_none());
    assert!(env.events(&id).is_empty(), "nothing was created");
    let ended = env.wait_notification(&id, "ended", 20).await;
    assert!(ended["body"].as_str().unwrap().starts_with("refused by policy: [SC-7 open-ingress]"), "{ended}");

    // A dry run says what would happen.
    let dry = env.try_request(open_ssh(true)).await.unwrap();
    let done = env.wait_for(&dry, Stage::DryRunDone, 60).await;
    assert!(
        done.final_reason.starts_with("dry run: nothing applied; would be refused by policy: [SC-7 open-ingress]"),
        "{}",
        done.final_reason
    );

    // The catalog passes the shipped pack: a plain request goes on as before.
    let ok = env.request("s3", "alice", &[]).await;
    let active = env.wait_for(&ok, Stage::Active, 60).await;
    assert!(active.findings.is_empty(), "{:?}", active.findings);
    let policy = active.timeline.iter().find(|t| t.step == "check policy").unwrap();
    assert_eq!(policy.outcome, "no findings (9 rules)");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_findings_ask_a_human_and_warnings_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{LONG}\n{}\n[policy]\ndirs = [\"{}\"]\nlevels = {{ \"open-ingress\" = \"approval\" }}\n",
        risky_source(dir.path()),
        fixtures("policies-team").display()
    );
    let env = TestEnv::start(&text).await;

    // ec2 opens SSH to the private network: the team's warning only.
    let ec2 = env.request("ec2", "alice", &[]).await;
    let active = env.wait_for(&ec2, Stage::Active, 60).await;
    assert!(!active.gate.as_ref().unwrap().approval_required, "{:?}", active.gate);
    assert_eq!(active.findings.len(), 1, "{:?}", active.findings);
    assert_eq!(active.findings[0].rule_id, "ssh-bastion");
    assert_eq!(active.findings[0].level(), FindingLevel::Warn);
    assert_eq!(active.findings[0].address, "aws_security_group.this");
    let policy = active.timeline.iter().find(|t| t.step == "check policy").unwrap();
    assert_eq!(policy.outcome, "1 warn (10 rules)");
    assert!(active.policy_pack.contains("+"), "builtin and the team's directory: {}", active.policy_pack);

    // SSH from anywhere, turned from deny into approval: a person decides.
    let id = env.try_request(open_ssh(false)).await.unwrap();
    let waiting = env.wait_for(&id, Stage::AwaitingApproval, 60).await;
    let gate = waiting.gate.clone().unwrap();
    assert!(gate.approval_required);
    assert!(
        gate.reason
            .ends_with("approval required (policy asks for approval: open-ingress (SC-7) on aws_security_group.ssh)"),
        "{}",
        gate.reason
    );
    let levels: Vec<_> = waiting.findings.iter().map(|f| (f.rule_id.as_str(), f.level())).collect();
    assert_eq!(levels, vec![("open-ingress", FindingLevel::Approval), ("ssh-bastion", FindingLevel::Warn)]);
    let asked = env.wait_notification(&id, "approval_needed", 20).await;
    let body = asked["body"].as_str().unwrap();
    assert!(
        body.contains("policy approval: [SC-7 open-ingress] aws_security_group.ssh: ingress from 0.0.0.0/0"),
        "{body}"
    );
    assert!(body.contains("policy warn: [AC-17 ssh-bastion] aws_security_group.ssh: opens SSH (22)"), "{body}");

    // The status a person reads shows the findings.
    let (code, out, _) = env.cli(&["status", &id]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("Policy     approval [SC-7 open-ingress] aws_security_group.ssh: ingress from 0.0.0.0/0"),
        "{out}"
    );
    assert!(out.contains("Policy     warn     [AC-17 ssh-bastion] aws_security_group.ssh: opens SSH (22)"), "{out}");

    requests::decide(&env.client, &id, DecisionKind::Approve, "carol", "jump host for the drill", "").await.unwrap();
    env.wait_for(&id, Stage::Active, 60).await;
    assert_eq!(env.count(&id, "create"), 1);
    env.shutdown().await;
}

#[test]
fn a_broken_team_rule_stops_the_worker_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("team.rego"), "package tollgate.rules.team\nimport rego.v1\n\nrule := {\"id\": \"x\",\n")
        .unwrap();
    let text = format!("data_dir = \"{}\"\n[policy]\ndirs = [\"{}\"]\n", dir.path().display(), rules.display());
    let config = tollgate_config::Config::from_sources(&text, "test", &[]).unwrap();
    let err = tollgate_worker::build_activities(&config, None).err().expect("the worker refuses to start").to_string();
    assert!(err.starts_with(&format!("policy {} does not compile:", rules.join("team.rego").display())), "{err}");
    assert!(err.contains("team.rego:5:1"), "names the line: {err}");

    // An unknown rule id in the level overrides, or an unknown level, is a configuration error.
    let text = "[policy]\nlevels = { \"open-ingres\" = \"warn\" }\n";
    let config = tollgate_config::Config::from_sources(text, "test", &[]).unwrap();
    let err = tollgate_worker::build_activities(&config, None).err().unwrap().to_string();
    assert!(
        err.starts_with("policy.levels.open-ingres: no rule has this id; the rules are encryption-at-rest"),
        "{err}"
    );
    let err =
        tollgate_config::Config::from_sources("[policy]\nlevels = { \"open-ingress\" = \"maybe\" }\n", "test", &[])
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("policy.levels.open-ingress: 'maybe' is not a level; use deny, approval, warn or off"),
        "{err}"
    );
}

/// Runs `tollgate` with `args` in the workspace (no configuration file): exit code, stdout.
fn tollgate(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(binary("tollgate"))
        .args(args)
        .current_dir(workspace())
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .expect("tollgate runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tollgate_policy_check_judges_any_plan_json() {
    let plan = |rule: &str, name: &str| fixtures("policies").join(rule).join(name).display().to_string();
    let failing = plan("open-ingress", "fail.json");

    let (code, out, _) = tollgate(&["policy", "check", &failing]);
    assert_eq!(code, 4, "{out}");
    assert_eq!(
        out.lines().next().unwrap(),
        "deny     [SC-7 open-ingress] aws_security_group.ssh: ingress from 0.0.0.0/0 on tcp ports 22-22: only TCP 443 may be open to the internet; narrow the CIDR"
    );
    assert!(out.trim_end().lines().last().unwrap().starts_with("denied: 3 deny (9 rules), pack builtin@"), "{out}");

    let (code, out, _) = tollgate(&["policy", "check", &plan("open-ingress", "pass.json")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("passed: no findings (9 rules)"), "{out}");

    // Levels and team rules as flags; --fail-on makes warnings count.
    let (code, out, _) = tollgate(&["policy", "check", &failing, "--level", "open-ingress=warn"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warnings only: 3 warn (9 rules)"), "{out}");
    let team = fixtures("policies-team").display().to_string();
    let (code, out, _) = tollgate(&[
        "policy",
        "check",
        &failing,
        "--level",
        "open-ingress=off",
        "--policies",
        &team,
        "--fail-on",
        "warn",
    ]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("warn     [AC-17 ssh-bastion] aws_security_group.ssh: opens SSH (22)"), "{out}");
    assert!(out.contains("warnings only: 1 warn (9 rules)"), "open-ingress is off, ssh-bastion joined: {out}");

    let (code, out, _) = tollgate(&["policy", "check", &failing, "-o", "json"]);
    assert_eq!(code, 4);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["failed"], true);
    assert_eq!(v["findings"][0]["control"], "SC-7");
    assert_eq!(v["findings"][0]["level"], "deny");

    // Input that is not a plan, and a bad flag, are refused (exit 2) with the fix.
    let (code, _, err) = tollgate(&["policy", "check", "Cargo.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("Cargo.toml: not JSON") && err.contains("terraform show -json"), "{err}");
    let (code, _, err) = tollgate(&["policy", "check", &failing, "--level", "open-ingress"]);
    assert_eq!(code, 2);
    assert!(err.contains("write RULE=LEVEL"), "{err}");

    // A state is audited with the same rules (here: a database someone left unencrypted).
    let state = fixtures("policies").join("audit/state.json").display().to_string();
    let (code, out, _) = tollgate(&["policy", "check", &state]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.starts_with("deny     [SC-28 encryption-at-rest] aws_db_instance.this: storage is not encrypted"),
        "{out}"
    );

    let (code, out, _) = tollgate(&["policy", "rules"]);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l.starts_with("open-ingress         SC-7   deny")), "{out}");
}
