//! The commands that need no server: `policy check`, `policy rules`, `prices import`.

use std::path::PathBuf;

use serde_json::json;
use tollgate_client::ClientError;
use tollgate_config::Config;

use super::{FailOn, PolicyFlags};
use tollgate_starter::render;

/// `tollgate prices import`: reads the book and the offers, writes the refreshed book, and
/// says what changed.
pub(crate) fn import_prices(
    config: &Config,
    files: &[PathBuf],
    book: Option<PathBuf>,
    out: Option<PathBuf>,
    version: Option<String>,
) -> Result<serde_json::Value, ClientError> {
    use tollgate_cost::PriceBook;
    let read =
        |p: &PathBuf| std::fs::read_to_string(p).map_err(|e| ClientError::Refused(format!("{}: {e}", p.display())));
    let source = book.or_else(|| config.price_book.clone());
    let mut prices = match &source {
        Some(path) => PriceBook::parse(&read(path)?, &path.display().to_string())
            .map_err(|e| ClientError::Refused(e.to_string()))?,
        None => PriceBook::builtin(),
    };
    let offers =
        files.iter().map(|f| Ok((f.display().to_string(), read(f)?))).collect::<Result<Vec<_>, ClientError>>()?;
    let report =
        tollgate_cost::prices_import::import(&mut prices, &offers).map_err(|e| ClientError::Refused(e.to_string()))?;
    let date =
        report.offers.iter().filter_map(|o| o.split(' ').nth(1)).max().map(|v| v.chars().take(8).collect::<String>());
    prices.version = version.unwrap_or_else(|| format!("aws-price-list-{}", date.unwrap_or_default()));
    let out = out.or(source).unwrap_or_else(|| PathBuf::from("price_book.toml"));
    std::fs::write(&out, prices.to_toml()).map_err(|e| ClientError::Failed(format!("{}: {e}", out.display())))?;
    let mut text = vec![format!("read {}", report.offers.join(", "))];
    for (region, item, old, new) in &report.changes {
        let was = old.map(|o| format!("{o}")).unwrap_or_else(|| "new".into());
        text.push(format!("  {region:<12} {item:<32} {was} -> {new}"));
    }
    if report.changes.is_empty() {
        text.push("  no price changed".into());
    }
    text.push(format!("wrote {} (version {}); point price_book at it to use it", out.display(), prices.version));
    Ok(json!({
        "offers": report.offers,
        "version": prices.version,
        "written": out.display().to_string(),
        "changes": report.changes.iter().map(|(r, i, o, n)| json!({"region": r, "item": i, "old": o, "new": n})).collect::<Vec<_>>(),
        "text": text.join("\n"),
    }))
}

/// The policy pack as the configuration and the flags describe it.
pub(crate) fn load_policies(config: &Config, flags: PolicyFlags) -> Result<tollgate_policy::PolicySet, ClientError> {
    let mut policy = config.policy.clone();
    policy.dirs.extend(flags.dirs);
    if flags.no_builtin {
        policy.builtin = false;
    }
    for pair in flags.levels {
        let Some((rule, level)) = pair.split_once('=') else {
            return Err(ClientError::Refused(format!("--level {pair}: write RULE=LEVEL, e.g. open-ingress=warn")));
        };
        policy.levels.insert(rule.to_string(), level.to_string());
    }
    tollgate_policy::PolicySet::load(&policy).map_err(|e| ClientError::Refused(e.to_string()))
}

/// Exit code of a `policy check` whose findings reach the --fail-on level.
pub(crate) const POLICY_FAILED_EXIT: i32 = 4;

/// `tollgate policy check`: prints the findings; true when they reach `fail_on`.
pub(crate) fn check_policy(
    config: &Config,
    plan: &PathBuf,
    flags: PolicyFlags,
    fail_on: FailOn,
    json_out: bool,
) -> Result<bool, ClientError> {
    use tollgate_proto::FindingLevel;
    let set = load_policies(config, flags)?;
    let text = if plan.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| ClientError::Refused(format!("stdin: {e}")))?
    } else {
        std::fs::read_to_string(plan).map_err(|e| ClientError::Refused(format!("{}: {e}", plan.display())))?
    };
    let plan_json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        ClientError::Refused(format!(
            "{}: not JSON ({e}); give the output of `terraform show -json <planfile>`",
            plan.display()
        ))
    })?;
    // A state (file format 4, or `terraform show -json` of a state) is audited as if created.
    let plan_json = match plan_json.get("resource_changes") {
        Some(_) => plan_json,
        None => tollgate_policy::plan_from_state(&plan_json).unwrap_or(plan_json),
    };
    let findings = set.evaluate(&plan_json).map_err(|e| ClientError::Refused(format!("{}: {e}", plan.display())))?;
    let threshold = match fail_on {
        FailOn::Deny => FindingLevel::Deny,
        FailOn::Approval => FindingLevel::Approval,
        FailOn::Warn => FindingLevel::Warn,
    };
    let failed = findings.iter().any(|f| f.level() >= threshold);
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "plan": plan.display().to_string(),
                "pack": set.pack(),
                "rules": set.rules().iter().filter(|r| r.level.is_some()).count(),
                "findings": tollgate_client::render::findings_json(&findings),
                "failed": failed,
            }))
            .unwrap_or_default()
        );
    } else {
        println!(
            "{}",
            render::findings_text(&findings, set.rules().iter().filter(|r| r.level.is_some()).count(), set.pack())
        );
    }
    Ok(failed)
}

/// `tollgate policy rules`: the pack's rules with their levels.
pub(crate) fn print_rules(config: &Config, flags: PolicyFlags, json_out: bool) -> Result<(), ClientError> {
    let set = load_policies(config, flags)?;
    let level = |r: &tollgate_policy::Rule| r.level.map(tollgate_workflows::policy::level_name).unwrap_or("off");
    if json_out {
        let rules: Vec<_> = set
            .rules()
            .iter()
            .map(|r| json!({"id": r.id, "control": r.control, "level": level(r), "title": r.title, "file": r.file}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&json!({"pack": set.pack(), "rules": rules})).unwrap_or_default());
    } else {
        for r in set.rules() {
            println!("{:<20} {:<6} {:<8} {}  ({})", r.id, r.control, level(r), r.title, r.file);
        }
        println!("pack {}", set.pack());
    }
    Ok(())
}
