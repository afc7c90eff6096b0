//! Filling approval groups: which approvals count for which group. A person counts in one
//! group only (unless the group says a person may count in each); the people are matched to
//! the groups' places by augmenting paths, so an approval never fills a place another person
//! could have filled while a group that only it could fill stays short. A person is in a group
//! when the group lists them, or when an identity provider vouches they are in its team (a
//! decision's `teams`, from the gateway's sign-in).

use std::collections::BTreeMap;

use crate::{ApprovalGroup, Decision, DecisionKind};

/// The teams vouched for each person (empty: only the groups' lists count).
pub type Vouched<'a> = BTreeMap<&'a str, Vec<&'a str>>;

/// Whether `person` counts for `group`.
pub fn in_group(group: &ApprovalGroup, person: &str, vouched: &Vouched<'_>) -> bool {
    group.eligible.iter().any(|e| e == person)
        || vouched.get(person).is_some_and(|teams| teams.iter().any(|t| *t == group.team))
}

/// For each group, the people who count for it (at most its count), given who approved.
pub fn fill(groups: &[ApprovalGroup], approved: &[&str]) -> Vec<Vec<String>> {
    fill_vouched(groups, approved, &Vouched::new())
}

/// [`fill`], with the teams an identity provider vouches for.
pub fn fill_vouched(groups: &[ApprovalGroup], approved: &[&str], vouched: &Vouched<'_>) -> Vec<Vec<String>> {
    let mut filled: Vec<Vec<String>> = vec![Vec::new(); groups.len()];
    // Places of the groups whose people count once: (group, nth place).
    let mut places: Vec<usize> = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        if group.counts_in_each_group {
            let mut each: Vec<&str> = approved.iter().copied().filter(|a| in_group(group, a, vouched)).collect();
            each.dedup();
            filled[g] = each.into_iter().take(group.count as usize).map(str::to_string).collect();
        } else {
            places.extend(std::iter::repeat_n(g, group.count as usize));
        }
    }
    let mut people: Vec<&str> = approved.to_vec();
    people.sort_unstable();
    people.dedup();
    // holder[place] = the person in it.
    let mut holder: Vec<Option<usize>> = vec![None; places.len()];
    for person in 0..people.len() {
        let mut seen = vec![false; places.len()];
        seat(person, &people, &places, groups, vouched, &mut holder, &mut seen);
    }
    for (place, person) in holder.iter().enumerate() {
        if let Some(p) = person {
            filled[places[place]].push(people[*p].to_string());
        }
    }
    filled
}

/// Who approved among `decisions`: people only (the AI approver fills no group).
pub fn human_approvers(decisions: &[Decision]) -> Vec<&str> {
    decisions.iter().filter(|d| !d.ai && d.kind == DecisionKind::Approve as i32).map(|d| d.user.as_str()).collect()
}

/// The teams vouched for each person who decided.
pub fn vouched(decisions: &[Decision]) -> Vouched<'_> {
    let mut vouched = Vouched::new();
    for d in decisions.iter().filter(|d| !d.teams.is_empty()) {
        vouched.entry(d.user.as_str()).or_default().extend(d.teams.iter().map(String::as_str));
    }
    vouched
}

/// [`fill`] with the people who approved among `decisions` (and the teams vouched for them).
pub fn filled_by(groups: &[ApprovalGroup], decisions: &[Decision]) -> Vec<Vec<String>> {
    fill_vouched(groups, &human_approvers(decisions), &vouched(decisions))
}

/// How many of the groups' places `decisions` fill (out of the sum of their counts).
pub fn filled_count(groups: &[ApprovalGroup], decisions: &[Decision]) -> u32 {
    filled_by(groups, decisions).iter().zip(groups).map(|(f, g)| (f.len() as u32).min(g.count)).sum()
}

/// Whether every group has its count.
pub fn satisfied(groups: &[ApprovalGroup], approved: &[&str]) -> bool {
    fill(groups, approved).iter().zip(groups).all(|(f, g)| f.len() as u32 >= g.count)
}

/// Finds `person` a place, moving others along if they can go elsewhere (Kuhn's algorithm).
fn seat(
    person: usize,
    people: &[&str],
    places: &[usize],
    groups: &[ApprovalGroup],
    vouched: &Vouched<'_>,
    holder: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for place in 0..places.len() {
        if seen[place] || !in_group(&groups[places[place]], people[person], vouched) {
            continue;
        }
        seen[place] = true;
        let free = match holder[place] {
            None => true,
            Some(other) => seat(other, people, places, groups, vouched, holder, seen),
        };
        if free {
            holder[place] = Some(person);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(team: &str, count: u32, eligible: &[&str], each: bool) -> ApprovalGroup {
        ApprovalGroup {
            team: team.into(),
            count,
            eligible: eligible.iter().map(|e| e.to_string()).collect(),
            counts_in_each_group: each,
            ..Default::default()
        }
    }

    #[test]
    fn one_person_fills_one_place_and_the_matching_moves_people_along() {
        // dave is in both; erin only in platform: dave must count for dba.
        let groups = [group("platform", 1, &["dave", "erin"], false), group("dba", 1, &["dave"], false)];
        assert!(!satisfied(&groups, &["dave"]), "one person, two groups");
        assert!(satisfied(&groups, &["dave", "erin"]));
        assert_eq!(fill(&groups, &["erin", "dave"]), [vec!["erin".to_string()], vec!["dave".to_string()]]);
        // Dave approved first: a greedy fill would put him in platform and leave dba short.
        assert!(satisfied(&groups, &["dave", "erin"]));
    }

    #[test]
    fn counts_and_people_in_each_group() {
        let groups = [group("dba", 2, &["a", "b", "c"], false)];
        assert!(!satisfied(&groups, &["a", "a"]), "the same person twice is one approval");
        assert!(satisfied(&groups, &["a", "c"]));
        assert!(!satisfied(&groups, &["a", "x"]), "x is not in the group");
        let each = [group("platform", 1, &["dave"], true), group("dba", 1, &["dave"], true)];
        assert!(satisfied(&each, &["dave"]), "the rule lets dave count in each");
        assert!(satisfied(&[], &[]), "no groups: nothing to fill");
    }

    #[test]
    fn a_team_an_identity_provider_vouches_for_counts_as_the_groups_list() {
        let groups = [group("dba", 1, &["dave"], false), group("platform", 1, &["carol"], false)];
        let mut frank = Decision { user: "frank".into(), kind: DecisionKind::Approve as i32, ..Default::default() };
        assert_eq!(filled_count(&groups, std::slice::from_ref(&frank)), 0, "frank is in no list");
        frank.teams = vec!["dba".into()];
        assert_eq!(filled_by(&groups, std::slice::from_ref(&frank)), [vec!["frank".to_string()], vec![]]);
        let carol = Decision { user: "carol".into(), kind: DecisionKind::Approve as i32, ..Default::default() };
        assert_eq!(filled_count(&groups, &[frank, carol]), 2);
    }
}
