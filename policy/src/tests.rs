//! The policy pack and team rules, evaluated over plan JSON.

use super::*;

#[test]
fn the_builtin_pack_compiles_and_lists_every_file_in_policies() {
    let set = PolicySet::load(&PolicyConfig::default()).unwrap();
    let ids: Vec<_> = set.rules().iter().map(|r| (r.id.as_str(), r.control.as_str())).collect();
    assert_eq!(
        ids,
        vec![
            ("encryption-at-rest", "SC-28"),
            ("iac-version-tag", "CM-3"),
            ("iam-wildcards", "AC-6"),
            ("mandatory-tags", "CM-8"),
            ("open-ingress", "SC-7"),
            ("pinned-images", "CM-2"),
            ("s3-public-access", "AC-3"),
            ("tls-listeners", "SC-8"),
            ("vpc-flow-logs", "AU-2"),
        ]
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let on_disk: Vec<String> = rego_files(&root)
        .unwrap()
        .into_iter()
        .map(|(p, _)| format!("policies/{}", Path::new(&p).strip_prefix(&root).unwrap().display()))
        .collect();
    let mut embedded: Vec<String> = BUILTIN_PACK.iter().map(|(p, _)| p.to_string()).collect();
    embedded.sort();
    let mut on_disk = on_disk;
    on_disk.sort();
    assert_eq!(embedded, on_disk, "BUILTIN_PACK must list every file in policies/");
    assert!(set.pack().starts_with("builtin@"));
}

fn team_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

const TEAM_RULE: &str = r#"package tollgate.rules.no_big_instances
import rego.v1
rule := {"id": "no-big-instances", "control": "CM-7", "level": "approval", "title": "Small instances only"}
findings contains {"address": rc.address, "message": "too big"} if {
some rc in input.resource_changes
rc.type == "aws_instance"
endswith(rc.change.after.instance_type, "xlarge")
}
"#;

fn plan_with_instance(instance_type: &str) -> Value {
    serde_json::json!({
        "format_version": "1.0",
        "resource_changes": [{
            "address": "aws_instance.big", "mode": "managed", "type": "aws_instance", "name": "big",
            "change": {"actions": ["create"], "after": {"instance_type": instance_type,
                "tags": {"Owner": "a", "Environment": "dev", "RequestId": "r", "ExpiresAt": "t", "IacVersion": "v"},
                "root_block_device": [{"encrypted": true}]}}
        }]
    })
}

#[test]
fn team_rules_join_the_pack_and_levels_can_be_overridden() {
    let dir = team_dir(&[("big.rego", TEAM_RULE), ("big_test.rego", "this is not rego")]);
    let config = PolicyConfig { dirs: vec![dir.path().to_path_buf()], ..Default::default() };
    let set = PolicySet::load(&config).unwrap();
    let findings = set.evaluate(&plan_with_instance("m5.2xlarge")).unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].rule_id, "no-big-instances");
    assert_eq!(findings[0].level(), FindingLevel::Approval);
    assert!(set.evaluate(&plan_with_instance("t3.micro")).unwrap().is_empty());

    let levels = BTreeMap::from([("no-big-instances".to_string(), "deny".to_string())]);
    let set = PolicySet::load(&PolicyConfig { levels, ..config.clone() }).unwrap();
    assert_eq!(set.evaluate(&plan_with_instance("m5.2xlarge")).unwrap()[0].level(), FindingLevel::Deny);
    let levels = BTreeMap::from([("no-big-instances".to_string(), "off".to_string())]);
    let set = PolicySet::load(&PolicyConfig { levels, ..config }).unwrap();
    assert!(set.evaluate(&plan_with_instance("m5.2xlarge")).unwrap().is_empty());
}

#[test]
fn bad_policies_are_refused_at_load_naming_the_file() {
    let load = |files: &[(&str, &str)]| {
        let dir = team_dir(files);
        let config = PolicyConfig { builtin: false, dirs: vec![dir.path().to_path_buf()], ..Default::default() };
        PolicySet::load(&config).unwrap_err().to_string()
    };
    let err = load(&[("broken.rego", "package tollgate.rules.broken\nimport rego.v1\nrule := {\n")]);
    assert!(err.contains("broken.rego does not compile"), "{err}");
    assert!(err.contains("broken.rego:4:1"), "names the line: {err}");
    let err = load(&[("nometa.rego", "package tollgate.rules.nometa\nimport rego.v1\nfindings := set()\n")]);
    assert!(err.contains("nometa.rego") && err.contains("needs `rule :="), "{err}");
    let err = load(&[("level.rego", &TEAM_RULE.replace("\"approval\"", "\"block\""))]);
    assert!(err.contains("rule.level is 'block'"), "{err}");
    let err = load(&[("helpers.rego", "package team.helpers\nimport rego.v1\nx := 1\n")]);
    assert!(err.contains("no rules"), "{err}");
    // regorus resolves functions when a rule body first calls one: an unknown function in a
    // loop body surfaces when a plan reaches it, as a clear evaluation error.
    let dir = team_dir(&[("undefined.rego", &TEAM_RULE.replace("endswith(", "ends_with("))]);
    let config = PolicyConfig { builtin: false, dirs: vec![dir.path().to_path_buf()], ..Default::default() };
    let err = PolicySet::load(&config).unwrap().evaluate(&plan_with_instance("m5.xlarge")).unwrap_err();
    assert_eq!(err.type_name(), FailureType::PolicyEval);
    assert!(err.to_string().contains("undefined.rego:7") && err.to_string().contains("ends_with"), "{err}");

    let levels = BTreeMap::from([("open-ingres".to_string(), "warn".to_string())]);
    let err = PolicySet::load(&PolicyConfig { levels, ..Default::default() }).unwrap_err().to_string();
    assert!(
        err.starts_with("policy.levels.open-ingres: no rule has this id; the rules are encryption-at-rest"),
        "{err}"
    );
    let levels = BTreeMap::from([("open-ingress".to_string(), "never".to_string())]);
    let err = PolicySet::load(&PolicyConfig { levels, ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("'never' is not a level"), "{err}");
}

/// Every shipped rule against its fixtures (`tests/fixtures/policies/<rule id>/`): the
/// passing plan draws no finding from the whole pack, the failing plan draws findings from
/// that rule only, at these addresses.
#[test]
fn every_shipped_rule_passes_and_fails_its_fixtures() {
    let expected: &[(&str, &[&str])] = &[
        ("encryption-at-rest", &["aws_db_instance.db", "aws_ebs_volume.data", "aws_instance.vm", "aws_s3_bucket.data"]),
        ("iac-version-tag", &["aws_cloudwatch_log_group.app"]),
        (
            "iam-wildcards",
            &[
                "aws_iam_policy.everything",
                "aws_iam_role.app",
                "aws_iam_role_policy.admin",
                "aws_iam_role_policy.admin",
            ],
        ),
        ("mandatory-tags", &["aws_cloudwatch_log_group.app", "aws_cloudwatch_log_group.blank"]),
        (
            "open-ingress",
            &["aws_security_group.ssh", "aws_security_group_rule.all", "aws_vpc_security_group_ingress_rule.db"],
        ),
        ("pinned-images", &["aws_ecs_task_definition.api", "aws_ecs_task_definition.web", "kubernetes_deployment.app"]),
        ("s3-public-access", &["aws_s3_bucket.logs", "aws_s3_bucket.site"]),
        ("tls-listeners", &["aws_elb.classic", "aws_lb_listener.http"]),
        ("vpc-flow-logs", &["aws_vpc.main"]),
    ];
    let set = PolicySet::load(&PolicyConfig::default()).unwrap();
    let ids: Vec<_> = expected.iter().map(|(id, _)| *id).collect();
    let rules: Vec<_> = set.rules().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, rules, "every shipped rule has fixtures");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/policies");
    let read = |rule: &str, name: &str| -> Value {
        let path = root.join(rule).join(name);
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
            .unwrap()
    };
    for (rule, addresses) in expected {
        let passing = set.evaluate(&read(rule, "pass.json")).unwrap();
        assert!(passing.is_empty(), "{rule}/pass.json: {passing:#?}");
        let failing = set.evaluate(&read(rule, "fail.json")).unwrap();
        assert!(failing.iter().all(|f| f.rule_id == *rule), "{rule}/fail.json: {failing:#?}");
        let found: Vec<_> = failing.iter().map(|f| f.address.as_str()).collect();
        assert_eq!(&found, addresses, "{rule}/fail.json: {failing:#?}");
        assert!(failing.iter().all(|f| !f.message.is_empty() && !f.control.is_empty()));
    }
}

#[test]
fn findings_name_the_problem_and_the_fix() {
    let set = PolicySet::load(&PolicyConfig::default()).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/policies");
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("open-ingress/fail.json")).unwrap()).unwrap();
    let findings = set.evaluate(&plan).unwrap();
    assert_eq!(
        findings[0],
        PolicyFinding {
            rule_id: "open-ingress".into(),
            control: "SC-7".into(),
            level: FindingLevel::Deny as i32,
            message:
                "ingress from 0.0.0.0/0 on tcp ports 22-22: only TCP 443 may be open to the internet; narrow the CIDR"
                    .into(),
            address: "aws_security_group.ssh".into(),
        }
    );
}

#[test]
fn states_are_audited_with_the_same_rules() {
    let set = PolicySet::load(&PolicyConfig::default()).unwrap();
    let tags =
        serde_json::json!({"Owner": "a", "Environment": "dev", "RequestId": "r", "ExpiresAt": "t", "IacVersion": "v"});
    let state = |encrypted: bool| {
        serde_json::json!({"version": 4, "resources": [
            {"mode": "managed", "type": "aws_db_instance", "name": "this", "instances": [{"attributes":
                {"storage_encrypted": encrypted, "tags": tags, "tags_all": tags}}]},
            {"mode": "managed", "type": "aws_s3_bucket", "name": "logs", "instances": [{"index_key": 0, "attributes":
                {"bucket": "logs-1", "tags": tags, "tags_all": tags}}]},
            {"mode": "managed", "type": "aws_s3_bucket_public_access_block", "name": "logs", "instances": [{"index_key": 0, "attributes":
                {"bucket": "logs-1", "block_public_acls": true, "block_public_policy": true, "ignore_public_acls": true, "restrict_public_buckets": true}}]},
            {"mode": "managed", "type": "aws_s3_bucket_server_side_encryption_configuration", "name": "logs", "instances": [{"index_key": 0, "attributes":
                {"bucket": "logs-1", "rule": []}}]},
        ]})
    };
    assert_eq!(set.evaluate(&plan_from_state(&state(true)).unwrap()).unwrap(), vec![]);
    let findings = set.evaluate(&plan_from_state(&state(false)).unwrap()).unwrap();
    let found: Vec<_> = findings.iter().map(|f| (f.rule_id.as_str(), f.address.as_str())).collect();
    assert_eq!(found, vec![("encryption-at-rest", "aws_db_instance.this")]);
    // `terraform show -json` of a state, with a child module.
    let shown = serde_json::json!({"format_version": "1.0", "values": {"root_module": {"resources": [], "child_modules": [
        {"address": "module.db", "resources": [{"address": "module.db.aws_db_instance.this", "mode": "managed",
            "type": "aws_db_instance", "name": "this", "values": {"storage_encrypted": false, "tags_all": tags}}]}]}}});
    let findings = set.evaluate(&plan_from_state(&shown).unwrap()).unwrap();
    assert_eq!(findings[0].address, "module.db.aws_db_instance.this");
    assert_eq!(plan_from_state(&serde_json::json!({"resource_changes": []})), None);
}

#[test]
fn a_document_that_is_not_a_plan_is_refused() {
    let set = PolicySet::load(&PolicyConfig::default()).unwrap();
    let err = set.evaluate(&serde_json::json!({"values": {}})).unwrap_err();
    assert_eq!(err.type_name(), FailureType::InvalidPlan);
}
