//! Teams and role-based approval rules: `[[teams]]` (members, who approves their requests,
//! an optional monthly budget) and `[[approval_rules]]` ("a prod rds needs 1 from dba and 1
//! from platform"). Read from this file rather than Rego data: the rules decide who may approve,
//! so they are checked when the worker starts (an unknown team, a cycle, an empty group, a rule
//! nobody can satisfy: the file, the key and the reason), and each request keeps the copy it
//! started with. Teams nest (`member_teams`); the workflow sees every team already expanded.

use std::collections::BTreeSet;

use serde::Deserialize;
use tollgate_proto::{ApprovalGroup, ApprovalRule, GroupNeed, Team};

use crate::ConfigError;
use crate::check::Check;

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RawTeams {
    #[serde(default)]
    teams: Vec<RawTeam>,
    #[serde(default)]
    approval_rules: Vec<RawRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    name: String,
    #[serde(default)]
    members: Vec<String>,
    /// Teams whose members are members of this one too.
    #[serde(default)]
    member_teams: Vec<String>,
    /// Who approves this team's requests: people ...
    #[serde(default)]
    approvers: Vec<String>,
    /// ... and the members of these teams.
    #[serde(default)]
    approver_teams: Vec<String>,
    budget_monthly: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    when: RawWhen,
    #[serde(default)]
    need: Vec<RawNeed>,
    counts_in_each_group: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    #[serde(default)]
    environments: Vec<String>,
    #[serde(default)]
    kinds: Vec<String>,
    min_monthly_cost: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNeed {
    team: String,
    count: Option<u32>,
}

/// The teams, each with its members and approvers expanded, and the rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Teams {
    pub teams: Vec<Team>,
    pub rules: Vec<ApprovalRule>,
}

impl RawTeams {
    pub fn validate(self, c: &Check, required_approvals: u32) -> Result<Teams, ConfigError> {
        let names: Vec<&str> = self.teams.iter().map(|t| t.name.trim()).collect();
        for (i, t) in self.teams.iter().enumerate() {
            let at = |key: &str| format!("teams[{i}].{key}");
            if t.name.trim().is_empty() {
                return Err(c.err(&at("name"), "is empty"));
            }
            if names[..i].contains(&t.name.trim()) {
                return Err(c.err(&at("name"), format!("'{}' is listed twice", t.name)));
            }
            for (key, list) in [("members", &t.members), ("approvers", &t.approvers)] {
                if list.iter().any(|m| m.trim().is_empty()) {
                    return Err(c.err(&at(key), "contains an empty name"));
                }
            }
            for (key, list) in [("member_teams", &t.member_teams), ("approver_teams", &t.approver_teams)] {
                if let Some(unknown) = list.iter().find(|n| !names.contains(&n.trim())) {
                    return Err(c.err(&at(key), format!("'{unknown}' is not a team (teams: {})", names.join(", "))));
                }
            }
            if t.budget_monthly.is_some_and(|b| b.is_nan() || b <= 0.0) {
                return Err(c.err(&at("budget_monthly"), "must be more than zero (US dollars per month)"));
            }
        }
        let mut teams = Vec::new();
        for (i, t) in self.teams.iter().enumerate() {
            let members = expand(&self.teams, i, &mut Vec::new()).map_err(|cycle| {
                c.err(&format!("teams[{i}].member_teams"), format!("is a cycle: {}", cycle.join(" -> ")))
            })?;
            if members.is_empty() {
                return Err(c.err(
                    &format!("teams[{i}].members"),
                    format!("{} has no members: an empty group can approve nothing", t.name),
                ));
            }
            let mut approvers: BTreeSet<String> = t.approvers.iter().map(|a| a.trim().to_string()).collect();
            for other in &t.approver_teams {
                let j = names.iter().position(|n| *n == other.trim()).unwrap_or_default();
                approvers.extend(expand(&self.teams, j, &mut Vec::new()).unwrap_or_default());
            }
            let has_approvers = !t.approvers.is_empty() || !t.approver_teams.is_empty();
            if has_approvers && (approvers.len() as u32) < required_approvals {
                return Err(c.err(
                    &format!("teams[{i}].approvers"),
                    format!(
                        "{} has {} approver(s) but required_approvals is {required_approvals}: none of its requests could be approved",
                        t.name,
                        approvers.len()
                    ),
                ));
            }
            teams.push(Team {
                name: t.name.trim().to_string(),
                members: members.into_iter().collect(),
                approver_people: approvers.into_iter().collect(),
                approver_teams: t.approver_teams.iter().map(|a| a.trim().to_string()).collect(),
                budget_monthly: t.budget_monthly,
            });
        }
        let mut rules: Vec<ApprovalRule> = Vec::new();
        for (i, r) in self.approval_rules.into_iter().enumerate() {
            rules.push(rule(c, i, r, &teams, &rules)?);
        }
        Ok(Teams { teams, rules })
    }
}

/// Team `i`'s members with those of its member teams; Err: the cycle it is part of.
fn expand(teams: &[RawTeam], i: usize, path: &mut Vec<usize>) -> Result<BTreeSet<String>, Vec<String>> {
    if let Some(start) = path.iter().position(|&p| p == i) {
        let mut cycle: Vec<String> = path[start..].iter().map(|&p| teams[p].name.clone()).collect();
        cycle.push(teams[i].name.clone());
        return Err(cycle);
    }
    path.push(i);
    let mut members: BTreeSet<String> = teams[i].members.iter().map(|m| m.trim().to_string()).collect();
    for sub in &teams[i].member_teams {
        if let Some(j) = teams.iter().position(|t| t.name.trim() == sub.trim()) {
            members.extend(expand(teams, j, path)?);
        }
    }
    path.pop();
    Ok(members)
}

fn rule(
    c: &Check,
    i: usize,
    r: RawRule,
    teams: &[Team],
    earlier: &[ApprovalRule],
) -> Result<ApprovalRule, ConfigError> {
    let at = |key: &str| format!("approval_rules[{i}].{key}");
    let names: Vec<&str> = teams.iter().map(|t| t.name.as_str()).collect();
    if r.name.trim().is_empty() {
        return Err(c.err(&at("name"), "is empty"));
    }
    if earlier.iter().any(|e| e.name == r.name.trim()) {
        return Err(c.err(&at("name"), format!("'{}' is listed twice", r.name)));
    }
    if r.need.is_empty() {
        return Err(
            c.err(&at("need"), "is empty: say which teams approve, e.g. need = [{ team = \"dba\", count = 1 }]")
        );
    }
    if r.when.min_monthly_cost.is_some_and(|m| m.is_nan() || m < 0.0) {
        return Err(c.err(&at("when.min_monthly_cost"), "must be zero or more (US dollars per month)"));
    }
    let mut need = Vec::new();
    for (j, n) in r.need.iter().enumerate() {
        let Some(team) = teams.iter().find(|t| t.name == n.team.trim()) else {
            return Err(c.err(
                &at(&format!("need[{j}].team")),
                format!("'{}' is not a team (teams: {})", n.team, names.join(", ")),
            ));
        };
        let count = n.count.unwrap_or(1);
        if count == 0 {
            return Err(c.err(&at(&format!("need[{j}].count")), "must be at least 1"));
        }
        if count as usize > team.members.len() {
            return Err(c.err(
                &at(&format!("need[{j}].count")),
                format!(
                    "is {count} but {} has {} member(s): no request could satisfy the rule",
                    team.name,
                    team.members.len()
                ),
            ));
        }
        if need.iter().any(|g: &GroupNeed| g.team == team.name) {
            return Err(
                c.err(&at(&format!("need[{j}].team")), format!("{} is needed twice: give one count", team.name))
            );
        }
        need.push(GroupNeed { team: team.name.clone(), count });
    }
    let counts_in_each_group = r.counts_in_each_group.unwrap_or(false);
    // With everyone approving, could the groups be filled? (A person counts in one group only
    // unless the rule says otherwise.)
    let groups: Vec<ApprovalGroup> = need
        .iter()
        .map(|g| ApprovalGroup {
            team: g.team.clone(),
            count: g.count,
            eligible: teams.iter().find(|t| t.name == g.team).map(|t| t.members.clone()).unwrap_or_default(),
            counts_in_each_group,
            ..Default::default()
        })
        .collect();
    let everyone: BTreeSet<&str> = groups.iter().flat_map(|g| g.eligible.iter().map(String::as_str)).collect();
    if !tollgate_proto::groups::satisfied(&groups, &everyone.iter().copied().collect::<Vec<_>>()) {
        let wanted: u32 = need.iter().map(|g| g.count).sum();
        return Err(c.err(
            &at("need"),
            format!(
                "needs {wanted} approvals from {} people in all, each counting in one group only: no request could satisfy it (set counts_in_each_group = true, or lower a count)",
                everyone.len()
            ),
        ));
    }
    Ok(ApprovalRule {
        name: r.name.trim().to_string(),
        environments: r.when.environments,
        kinds: r.when.kinds,
        min_monthly_cost: r.when.min_monthly_cost.unwrap_or(0.0),
        need,
        counts_in_each_group,
    })
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn load(text: &str) -> Result<Config, String> {
        Config::from_sources(text, "tollgate.toml", &[]).map_err(|e| e.to_string())
    }

    const TEAMS: &str = r#"
required_approvals = 1

[[teams]]
name = "platform"
members = ["alice", "dave"]
member_teams = ["sre"]
approvers = ["carol"]
approver_teams = ["sre"]
budget_monthly = 2000

[[teams]]
name = "sre"
members = ["erin"]

[[teams]]
name = "dba"
members = ["dave", "frank"]

[[approval_rules]]
name = "prod-rds"
when = { environments = ["prod"], kinds = ["rds"] }
need = [{ team = "dba", count = 1 }, { team = "platform", count = 1 }]
"#;

    #[test]
    fn teams_expand_and_rules_are_kept() {
        let c = load(TEAMS).unwrap();
        let platform = &c.settings.teams[0];
        assert_eq!(platform.members, ["alice", "dave", "erin"], "sre's members belong to platform");
        assert_eq!(platform.approver_people, ["carol", "erin"], "carol, and sre's members");
        assert_eq!(platform.budget_monthly, Some(2000.0));
        let rule = &c.settings.approval_rules[0];
        assert_eq!((rule.name.as_str(), rule.need.len(), rule.counts_in_each_group), ("prod-rds", 2, false));
        assert_eq!(rule.environments, ["prod"]);
    }

    /// Each refusal names the file, the key and the reason.
    #[test]
    fn bad_teams_and_rules_are_refused_at_start() {
        let cases = [
            (
                "[[teams]]\nname = \"a\"\nmembers = [\"x\"]\napprover_teams = [\"finance\"]",
                "tollgate.toml: teams[0].approver_teams: 'finance' is not a team (teams: a)",
            ),
            (
                "[[teams]]\nname = \"a\"\nmember_teams = [\"b\"]\n[[teams]]\nname = \"b\"\nmember_teams = [\"a\"]",
                "tollgate.toml: teams[0].member_teams: is a cycle: a -> b -> a",
            ),
            (
                "[[teams]]\nname = \"a\"",
                "tollgate.toml: teams[0].members: a has no members: an empty group can approve nothing",
            ),
            (
                "[[teams]]\nname = \"a\"\nmembers = [\"x\"]\n[[teams]]\nname = \"a\"\nmembers = [\"y\"]",
                "tollgate.toml: teams[1].name: 'a' is listed twice",
            ),
            (
                "required_approvals = 2\napproving_users = [\"p\", \"q\"]\n[[teams]]\nname = \"a\"\nmembers = [\"x\"]\napprovers = [\"carol\"]",
                "tollgate.toml: teams[0].approvers: a has 1 approver(s) but required_approvals is 2: none of its requests could be approved",
            ),
            (
                "[[teams]]\nname = \"a\"\nmembers = [\"x\"]\n[[approval_rules]]\nname = \"r\"\nneed = [{ team = \"dba\" }]",
                "tollgate.toml: approval_rules[0].need[0].team: 'dba' is not a team (teams: a)",
            ),
            (
                "[[teams]]\nname = \"a\"\nmembers = [\"x\"]\n[[approval_rules]]\nname = \"r\"\nneed = [{ team = \"a\", count = 2 }]",
                "tollgate.toml: approval_rules[0].need[0].count: is 2 but a has 1 member(s): no request could satisfy the rule",
            ),
            (
                "[[teams]]\nname = \"a\"\nmembers = [\"x\"]\n[[teams]]\nname = \"b\"\nmembers = [\"x\"]\n[[approval_rules]]\nname = \"r\"\nneed = [{ team = \"a\" }, { team = \"b\" }]",
                "tollgate.toml: approval_rules[0].need: needs 2 approvals from 1 people in all, each counting in one group only: no request could satisfy it (set counts_in_each_group = true, or lower a count)",
            ),
            (
                "[[approval_rules]]\nname = \"r\"",
                "tollgate.toml: approval_rules[0].need: is empty: say which teams approve, e.g. need = [{ team = \"dba\", count = 1 }]",
            ),
            (
                "[[teams]]\nname = \"a\"\nmembers = [\"x\"]\nbudget = 5",
                "tollgate.toml: teams[0].budget: unknown field `budget`, expected one of `name`, `members`, `member_teams`, `approvers`, `approver_teams`, `budget_monthly`",
            ),
            ("teams = 5", "tollgate.toml: teams: 5 is not tables in the file ([[name]]) (default [])"),
        ];
        for (text, want) in cases {
            assert_eq!(load(text).unwrap_err(), want, "for {text:?}");
        }
        let each = "[[teams]]\nname = \"a\"\nmembers = [\"x\"]\n[[teams]]\nname = \"b\"\nmembers = [\"x\"]\n[[approval_rules]]\nname = \"r\"\ncounts_in_each_group = true\nneed = [{ team = \"a\" }, { team = \"b\" }]";
        assert!(load(each).is_ok(), "x may count in each group when the rule says so");
    }
}
