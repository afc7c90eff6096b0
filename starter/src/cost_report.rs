//! `tollgate cost-report`: estimate vs actual per team, from the marks `CostCheckWorkflow`
//! leaves on each request (`progress.cost_check`): what the teams' requests are billed against
//! what they were approved on, the largest misses, and the usage declarations to fix.

use serde_json::{Value, json};
use tollgate_client::{ClientError, requests};
use tollgate_config::Config;
use tollgate_proto::CostCheck;

/// Requests read at most (newest first).
const LIMIT: usize = 500;
/// Misses shown per team.
const MISSES: usize = 5;

/// One team's figures.
struct TeamCosts {
    team: String,
    checks: Vec<CostCheck>,
}

impl TeamCosts {
    fn estimate(&self) -> f64 {
        self.checks.iter().map(|c| c.estimate_monthly).sum::<f64>() + 0.0
    }

    fn actual(&self) -> f64 {
        self.checks.iter().map(|c| c.actual_monthly).sum::<f64>() + 0.0
    }

    /// The checks furthest from their estimate, largest first.
    fn misses(&self) -> Vec<&CostCheck> {
        let mut misses: Vec<&CostCheck> =
            self.checks.iter().filter(|c| (c.actual_monthly - c.estimate_monthly).abs() >= 0.01).collect();
        let gap = |c: &CostCheck| (c.actual_monthly - c.estimate_monthly).abs();
        misses.sort_by(|a, b| gap(b).total_cmp(&gap(a)).then_with(|| a.request_id.cmp(&b.request_id)));
        misses.truncate(MISSES);
        misses
    }

    /// `(request, address, fix)` for every line whose declared usage was wrong.
    fn fixes(&self) -> Vec<(&str, &str, &str)> {
        self.checks
            .iter()
            .flat_map(|c| {
                c.lines
                    .iter()
                    .filter(|l| !l.fix.is_empty())
                    .map(move |l| (c.request_id.as_str(), l.address.as_str(), l.fix.as_str()))
            })
            .collect()
    }
}

/// Groups the checks by the requester's team (the first that lists them), in name order.
fn by_team(config: &Config, checks: Vec<CostCheck>) -> Vec<TeamCosts> {
    let mut teams: Vec<TeamCosts> = Vec::new();
    for check in checks {
        let team = tollgate_workflows::groups::team_of(&config.settings, &check.requester)
            .map(|t| t.name.clone())
            .unwrap_or_else(|| "(no team)".into());
        match teams.iter_mut().find(|t| t.team == team) {
            Some(t) => t.checks.push(check),
            None => teams.push(TeamCosts { team, checks: vec![check] }),
        }
    }
    teams.sort_by(|a, b| a.team.cmp(&b.team));
    teams
}

fn ratio(estimate: f64, actual: f64) -> String {
    if estimate > 0.0 { format!("{:.2}x", actual / estimate) } else { "nothing estimated".into() }
}

fn text(teams: &[TeamCosts], checked: Option<&tollgate_proto::CostCheckReport>) -> String {
    let mut out = Vec::new();
    if let Some(report) = checked {
        out.push(format!("Checked now: {}", report.summary));
        out.extend(report.unmeasured.iter().map(|why| format!("  not measured: {why}")));
    }
    if teams.is_empty() {
        out.push(
            "No request has been checked yet: the cost check runs every cost_check.interval, or now with --check."
                .into(),
        );
    }
    for t in teams {
        let n = t.checks.len();
        out.push(format!(
            "team {}: {n} request{} billed ${:.2}/month against ${:.2} estimated ({}); {} diverged",
            t.team,
            if n == 1 { "" } else { "s" },
            t.actual(),
            t.estimate(),
            ratio(t.estimate(), t.actual()),
            t.checks.iter().filter(|c| c.diverged).count()
        ));
        let misses = t.misses();
        if !misses.is_empty() {
            out.push("  largest misses:".into());
        }
        for c in misses {
            out.push(format!(
                "    {}  billed ${:.2}, estimated ${:.2} ({}{})  {}",
                c.request_id,
                c.actual_monthly,
                c.estimate_monthly,
                ratio(c.estimate_monthly, c.actual_monthly),
                if c.diverged { ", diverged" } else { "" },
                c.requester
            ));
        }
        let fixes = t.fixes();
        if !fixes.is_empty() {
            out.push("  usage declarations to fix:".into());
        }
        for (id, _, fix) in fixes {
            out.push(format!("    {id}: {fix}"));
        }
    }
    out.join("\n")
}

fn check_json(c: &CostCheck) -> Value {
    json!({
        "request_id": c.request_id,
        "requester": c.requester,
        "at": tollgate_client::render::time_or_null(&c.at),
        "estimate_monthly": c.estimate_monthly,
        "actual_monthly": c.actual_monthly,
        "ratio": c.ratio,
        "diverged": c.diverged,
        "source": c.source,
        "module_source": c.module_source,
        "lines": c.lines.iter().map(tollgate_client::render::actual_line_json).collect::<Vec<_>>(),
    })
}

fn to_json(teams: &[TeamCosts], checked: Option<&tollgate_proto::CostCheckReport>) -> Value {
    json!({
        "checked_now": checked.map(|r| json!({"summary": r.summary, "unmeasured": r.unmeasured})),
        "teams": teams.iter().map(|t| json!({
            "team": t.team,
            "requests": t.checks.len(),
            "estimate_monthly": (t.estimate() * 100.0).round() / 100.0,
            "actual_monthly": (t.actual() * 100.0).round() / 100.0,
            "diverged": t.checks.iter().filter(|c| c.diverged).map(|c| c.request_id.as_str()).collect::<Vec<_>>(),
            "largest_misses": t.misses().into_iter().map(check_json).collect::<Vec<_>>(),
            "fixes": t.fixes().into_iter().map(|(id, address, fix)| json!({"request_id": id, "address": address, "fix": fix})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

pub async fn run(
    config: &Config,
    client: &temporalio_client::Client,
    check: bool,
    team: Option<&str>,
    json_out: bool,
) -> Result<(), ClientError> {
    let checked = if check { Some(requests::cost_check(client, &config.task_queue).await?) } else { None };
    let rows = requests::list(client, None, LIMIT).await?;
    let marks = futures::future::join_all(rows.iter().map(|r| requests::progress(client, &r.request_id))).await;
    let checks: Vec<CostCheck> = marks.into_iter().filter_map(|p| p.ok()?.cost_check).collect();
    let mut teams = by_team(config, checks);
    if let Some(only) = team {
        teams.retain(|t| t.team == only);
    }
    if json_out {
        println!("{}", to_json(&teams, checked.as_ref()));
    } else {
        println!("{}", text(&teams, checked.as_ref()));
    }
    Ok(())
}
