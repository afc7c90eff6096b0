//! How long the shipped policy pack takes over a 10,000-resource plan (the goal: well under a
//! second). Run with `make bench` (`cargo bench -p tollgate-policy --bench pack`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_policy::{BUILTIN_PACK, PolicyConfig, PolicySet};

const RESOURCES: usize = 10_000;
const RUNS: usize = 5;

fn main() {
    // TOLLGATE_BENCH_RESOURCES overrides the size (a quick look in a debug build).
    let resources = std::env::var("TOLLGATE_BENCH_RESOURCES").ok().and_then(|v| v.parse().ok()).unwrap_or(RESOURCES);
    let plan = plan(resources);
    let started = Instant::now();
    let set = PolicySet::load(&PolicyConfig::default()).expect("the shipped pack compiles");
    let load = started.elapsed();

    let mut times: Vec<Duration> = Vec::new();
    let mut findings = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        findings = set.evaluate(&plan).expect("evaluates").len();
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "policy pack ({} rules) over a {resources}-resource plan: median {:.0} ms, best {:.0} ms, worst {:.0} ms over {RUNS} runs; {findings} findings; pack compiled in {:.0} ms",
        set.rules().len(),
        ms(times[RUNS / 2]),
        ms(times[0]),
        ms(times[RUNS - 1]),
        ms(load),
    );
    let started = Instant::now();
    let _ = regorus::Value::from_json_str(&plan.to_string());
    println!("  of which turning the plan into Rego input: {:.0} ms", ms(started.elapsed()));
    per_rule(&plan);
}

/// Each shipped rule alone (with the helpers), to see where the time goes.
fn per_rule(plan: &Value) {
    let (lib, rules): (Vec<_>, Vec<_>) = BUILTIN_PACK.iter().partition(|(path, _)| path.contains("/lib/"));
    for &(path, text) in rules {
        let dir = tempfile::tempdir().expect("temp dir");
        for &(p, t) in lib.iter().copied().chain([&(path, text)]) {
            std::fs::write(dir.path().join(p.replace('/', "_")), t).expect("write");
        }
        let config = PolicyConfig { builtin: false, dirs: vec![dir.path().to_path_buf()], ..Default::default() };
        let set = PolicySet::load(&config).expect("compiles");
        let started = Instant::now();
        let findings = set.evaluate(plan).expect("evaluates").len();
        println!("  {:<40} {:>6.0} ms, {findings} findings", path, ms(started.elapsed()));
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A plan of `n` resources in groups of five (bucket with its access block and encryption,
/// instance, security group), with configuration references like Terraform writes; one
/// group in a hundred breaks a rule.
fn plan(n: usize) -> Value {
    let tags = json!({"Owner": "alice", "Environment": "dev", "RequestId": "req-1", "ExpiresAt": "2026-12-01T00:00:00Z", "IacVersion": "bench"});
    let change = |address: String, ty: &str, after: Value| {
        let name = address.rsplit('.').next().unwrap_or_default().to_string();
        json!({"address": address, "mode": "managed", "type": ty, "name": name,
               "change": {"actions": ["create"], "before": null, "after": after, "after_unknown": {"bucket": true}}})
    };
    let mut changes = Vec::new();
    let mut config = Vec::new();
    for g in 0..n / 5 {
        let bad = g % 100 == 0;
        let bucket = format!("aws_s3_bucket.b{g}");
        changes.push(change(
            bucket.clone(),
            "aws_s3_bucket",
            json!({"bucket": format!("bucket-{g}"), "tags": null, "tags_all": tags}),
        ));
        for (ty, after) in [
            (
                "aws_s3_bucket_public_access_block",
                json!({"block_public_acls": true, "block_public_policy": true, "ignore_public_acls": true, "restrict_public_buckets": !bad}),
            ),
            (
                "aws_s3_bucket_server_side_encryption_configuration",
                json!({"rule": [{"apply_server_side_encryption_by_default": [{"sse_algorithm": "AES256"}]}]}),
            ),
        ] {
            let address = format!("{ty}.b{g}");
            changes.push(change(address.clone(), ty, after));
            config.push(json!({"address": address, "mode": "managed", "type": ty, "name": format!("b{g}"),
                "expressions": {"bucket": {"references": [format!("{bucket}.id"), bucket]}}}));
        }
        changes.push(change(
            format!("aws_instance.i{g}"),
            "aws_instance",
            json!({
            "instance_type": "t3.micro", "tags": tags, "tags_all": tags,
            "root_block_device": [{"encrypted": !bad, "volume_size": 8}], "ebs_block_device": []}),
        ));
        changes.push(change(format!("aws_security_group.s{g}"), "aws_security_group", json!({
            "name": format!("sg-{g}"), "tags": tags, "tags_all": tags,
            "ingress": [{"from_port": if bad { 22 } else { 443 }, "to_port": if bad { 22 } else { 443 }, "protocol": "tcp", "cidr_blocks": ["0.0.0.0/0"]}],
            "egress": [{"from_port": 0, "to_port": 0, "protocol": "-1", "cidr_blocks": ["0.0.0.0/0"]}]})));
    }
    json!({"format_version": "1.0", "resource_changes": changes, "configuration": {"root_module": {"resources": config}}})
}
