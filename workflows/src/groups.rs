//! Who a request needs approvals from when teams or approval rules are configured: its
//! requester's team's approvers, and each group a matching rule names. Fixed at the gate from
//! the settings the request started with (pure functions; the filling itself is
//! `tollgate_proto::groups`, shared with the configuration's checks).

use tollgate_proto::{ApprovalGroup, ApprovalRule, ProvisionRequest, Settings, Team};

/// What `rule.rule` says for the requester's team's own approvers.
pub const TEAM_APPROVERS: &str = "team approvers";

/// The rules that apply to `request` at `monthly_cost`, in the file's order.
pub fn matching<'a>(settings: &'a Settings, request: &ProvisionRequest, monthly_cost: f64) -> Vec<&'a ApprovalRule> {
    let among = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
    settings
        .approval_rules
        .iter()
        .filter(|r| among(&r.environments, &request.environment) && among(&r.kinds, &request.kind))
        .filter(|r| monthly_cost >= r.min_monthly_cost)
        .collect()
}

/// The requester's team: the first listed that has them as a member.
pub fn team_of<'a>(settings: &'a Settings, requester: &str) -> Option<&'a Team> {
    settings.teams.iter().find(|t| t.members.iter().any(|m| m == requester))
}

/// The groups a request that needs approval waits on; empty: `required_approvals` of
/// `approving_users`, as without teams. The requester is never eligible.
pub fn required(settings: &Settings, request: &ProvisionRequest, rules: &[&ApprovalRule]) -> Vec<ApprovalGroup> {
    let others = |people: &[String]| people.iter().filter(|p| **p != request.requester).cloned().collect();
    let mut groups = Vec::new();
    if let Some(team) = team_of(settings, &request.requester).filter(|t| !t.approver_people.is_empty()) {
        groups.push(ApprovalGroup {
            team: team.name.clone(),
            rule: TEAM_APPROVERS.into(),
            count: settings.required_approvals.max(1),
            eligible: others(&team.approver_people),
            counts_in_each_group: false,
        });
    }
    for rule in rules {
        for need in &rule.need {
            let members = settings.teams.iter().find(|t| t.name == need.team).map(|t| t.members.as_slice());
            groups.push(ApprovalGroup {
                team: need.team.clone(),
                rule: rule.name.clone(),
                count: need.count.max(1),
                eligible: others(members.unwrap_or_default()),
                counts_in_each_group: rule.counts_in_each_group,
            });
        }
    }
    groups
}

/// Why nobody could approve a request that waits on `groups` (the requester left out), if so.
pub fn unsatisfiable(groups: &[ApprovalGroup]) -> Option<String> {
    let everyone: Vec<&str> = groups.iter().flat_map(|g| g.eligible.iter().map(String::as_str)).collect();
    if tollgate_proto::groups::satisfied(groups, &everyone) {
        return None;
    }
    let short: Vec<String> = tollgate_proto::groups::fill(groups, &everyone)
        .iter()
        .zip(groups)
        .filter(|(f, g)| (f.len() as u32) < g.count)
        .map(|(_, g)| format!("{} ({}) needs {} of {}", g.team, g.rule, g.count, people(&g.eligible)))
        .collect();
    Some(format!("no one could approve it: {}", short.join("; ")))
}

/// The groups as one line: `platform (team approvers): 1 of carol, erin; dba (prod-rds): 1 of dave`.
pub fn describe(groups: &[ApprovalGroup]) -> String {
    groups
        .iter()
        .map(|g| format!("{} ({}): {} of {}", g.team, g.rule, g.count, people(&g.eligible)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Each group with who counts for it so far: `dba (prod-rds): 1 of dave, frank: dave`.
pub fn standing(groups: &[ApprovalGroup], decisions: &[tollgate_proto::Decision]) -> Vec<String> {
    let filled = tollgate_proto::groups::filled_by(groups, decisions);
    groups
        .iter()
        .zip(&filled)
        .map(|(g, f)| {
            let so_far = if f.is_empty() { "waiting".to_string() } else { f.join(", ") };
            format!("{} ({}): {} of {}: {so_far}", g.team, g.rule, g.count, people(&g.eligible))
        })
        .collect()
}

/// Everyone who may approve for some group, once each.
pub fn eligible(groups: &[ApprovalGroup]) -> Vec<String> {
    let mut all: Vec<String> = groups.iter().flat_map(|g| g.eligible.iter().cloned()).collect();
    all.sort();
    all.dedup();
    all
}

fn people(list: &[String]) -> String {
    if list.is_empty() { "nobody".into() } else { list.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_proto::GroupNeed;

    fn settings() -> Settings {
        let team = |name: &str, members: &[&str], approvers: &[&str]| Team {
            name: name.into(),
            members: members.iter().map(|m| m.to_string()).collect(),
            approver_people: approvers.iter().map(|m| m.to_string()).collect(),
            ..Default::default()
        };
        Settings {
            required_approvals: 1,
            teams: vec![
                team("platform", &["alice", "dave", "erin"], &["carol", "erin"]),
                team("dba", &["dave", "frank"], &[]),
                team("finance", &["gina"], &[]),
            ],
            approval_rules: vec![
                ApprovalRule {
                    name: "prod-rds".into(),
                    environments: vec!["prod".into()],
                    kinds: vec!["rds".into()],
                    need: vec![
                        GroupNeed { team: "dba".into(), count: 1 },
                        GroupNeed { team: "platform".into(), count: 1 },
                    ],
                    ..Default::default()
                },
                ApprovalRule {
                    name: "big-spend".into(),
                    min_monthly_cost: 500.0,
                    need: vec![GroupNeed { team: "finance".into(), count: 1 }],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn request(requester: &str, kind: &str, environment: &str) -> ProvisionRequest {
        ProvisionRequest {
            requester: requester.into(),
            kind: kind.into(),
            environment: environment.into(),
            ..Default::default()
        }
    }

    #[test]
    fn rules_match_by_environment_kind_and_cost() {
        let s = settings();
        let names =
            |r: &ProvisionRequest, cost| matching(&s, r, cost).iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&request("alice", "rds", "prod"), 100.0), ["prod-rds"]);
        assert_eq!(names(&request("alice", "rds", "prod"), 732.3), ["prod-rds", "big-spend"]);
        assert!(names(&request("alice", "rds", "dev"), 100.0).is_empty());
        assert_eq!(names(&request("alice", "ec2", "dev"), 500.0), ["big-spend"], "at the threshold counts");
    }

    #[test]
    fn a_prod_rds_needs_dba_and_platform_and_the_requester_never_counts() {
        let s = settings();
        let r = request("frank", "rds", "prod");
        let groups = required(&s, &r, &matching(&s, &r, 100.0));
        assert_eq!(describe(&groups), "dba (prod-rds): 1 of dave; platform (prod-rds): 1 of alice, dave, erin");
        let fill = |who: &[&str]| tollgate_proto::groups::satisfied(&groups, who);
        assert!(!fill(&["dave"]), "dave is in both groups and counts in one");
        assert!(fill(&["dave", "erin"]));
        assert!(!fill(&["frank", "erin"]), "frank asked: he approves for no group");
        // alice is in platform: her team's approvers come first.
        let r = request("alice", "rds", "prod");
        let groups = required(&s, &r, &matching(&s, &r, 100.0));
        assert_eq!(
            describe(&groups),
            "platform (team approvers): 1 of carol, erin; dba (prod-rds): 1 of dave, frank; platform (prod-rds): 1 of dave, erin"
        );
        assert!(
            !tollgate_proto::groups::satisfied(&groups, &["erin", "dave"]),
            "erin counts once: three groups need three people"
        );
        assert!(tollgate_proto::groups::satisfied(&groups, &["carol", "frank", "erin"]));
    }

    #[test]
    fn a_request_no_one_could_approve_says_which_group_falls_short() {
        let s = settings();
        let r = request("gina", "ec2", "dev");
        let groups = required(&s, &r, &matching(&s, &r, 900.0));
        assert_eq!(unsatisfiable(&groups).unwrap(), "no one could approve it: finance (big-spend) needs 1 of nobody");
        let r = request("alice", "ec2", "dev");
        assert_eq!(unsatisfiable(&required(&s, &r, &matching(&s, &r, 900.0))), None);
        assert!(required(&Settings::default(), &r, &[]).is_empty(), "no teams: approving_users as before");
    }
}
