//! `tollgate approver-report`: how often the AI approver agrees with the people it works
//! beside, read from the requests and approvals themselves (nothing is kept on the side, and no
//! human decision is changed): agreement, a confusion matrix, agreement by cost band, by rule
//! and by confidence band, the recent disagreements with both sides' reasons, and what `full`
//! mode would have decided alone at today's limits. `--export jsonl` writes the pairs as a
//! dataset: chat-format records for fine-tuning and an evaluation file.

use std::path::Path;

use futures::StreamExt;
use serde_json::{Value, json};
use temporalio_client::{Client, WorkflowExecutionStatus, WorkflowGetResultOptions, WorkflowListOptions};
use tollgate_ai::review::llm;
use tollgate_artifacts::ArtifactStore;
use tollgate_client::ClientError;
use tollgate_config::Config;
use tollgate_proto::{AiApprover, AiOutcome, DecisionKind, ReviewInput};
use tollgate_workflows::ai::{self, Pair};
use tollgate_workflows::{ApprovalWorkflow, ProvisionWorkflow, decision};

/// At most this many requests and approvals are read.
const MAX_READ: usize = 5_000;
/// Disagreements listed.
const RECENT: usize = 10;

/// Workflows read at once (each may wait for a worker to answer its query).
const READ_AT_ONCE: usize = 8;

/// What `collect` read: the pairs, and the workflows it could not read with why (a running
/// request whose query no worker answered, a result Temporal did not give). Never dropped in
/// silence: the report counts and lists them.
#[derive(Debug, Default)]
pub struct Collected {
    pub pairs: Vec<Pair>,
    pub unread: Vec<(String, String)>,
}

/// The pairs started since `since_ms`, of one kind (`approval` for agents' approvals) or all.
pub async fn collect(client: &Client, since_ms: i64, kind: Option<&str>) -> Result<Collected, ClientError> {
    let since = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(since_ms.max(0) as u64),
    );
    let mut collected = Collected::default();
    let started = format!("StartTime > '{since}' AND ExecutionStatus != 'ContinuedAsNew'");
    if kind != Some("approval") {
        let mut query = format!("WorkflowType = '{}' AND {started}", tollgate_workflows::WORKFLOW_TYPE);
        if let Some(k) = kind {
            query.push_str(&format!(" AND TollgateKind = '{}'", k.replace(['\'', '\\'], "")));
        }
        let read = futures::stream::iter(list(client, &query).await?)
            .map(|(id, status)| async move {
                let progress = if status == WorkflowExecutionStatus::Completed {
                    let handle = client.get_workflow_handle::<ProvisionWorkflow>(&id);
                    handle.get_result(WorkflowGetResultOptions::default()).await.map_err(|e| e.to_string())
                } else {
                    tollgate_client::requests::progress(client, &id).await.map_err(|e| e.to_string())
                };
                (id, progress.map(|p| ai::pair_of_request(&p)))
            })
            .buffer_unordered(READ_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        for (id, pair) in read {
            match pair {
                Ok(pair) => collected.pairs.extend(pair),
                Err(why) => collected.unread.push((id, why)),
            }
        }
    }
    if kind.is_none() || kind == Some("approval") {
        let query = format!("WorkflowType = '{}' AND {started}", tollgate_workflows::approval::WORKFLOW_TYPE);
        for (id, status) in list(client, &query).await? {
            // Still pending: no human decided yet, so there is no pair to read.
            if status != WorkflowExecutionStatus::Completed {
                continue;
            }
            let handle = client.get_workflow_handle::<ApprovalWorkflow>(&id);
            match handle.get_result(WorkflowGetResultOptions::default()).await {
                Ok(r) => collected.pairs.extend(ai::pair_of_approval(&r)),
                Err(e) => collected.unread.push((id, e.to_string())),
            }
        }
    }
    collected.pairs.sort_by_key(|p| p.human_at);
    collected.unread.sort();
    Ok(collected)
}

/// The report's account of what it could not read.
pub fn unread_json(unread: &[(String, String)]) -> Value {
    json!({
        "count": unread.len(),
        "workflows": unread.iter().map(|(id, why)| json!({"id": id, "why": why})).collect::<Vec<_>>(),
    })
}

async fn list(client: &Client, query: &str) -> Result<Vec<(String, WorkflowExecutionStatus)>, ClientError> {
    let mut stream = client.list_workflows(query.to_string(), WorkflowListOptions::builder().limit(MAX_READ).build());
    let mut found = Vec::new();
    while let Some(item) = stream.next().await {
        let exec = item.map_err(|e| ClientError::Failed(format!("listing what the AI reviewed: {e}")))?;
        found.push((exec.id().to_string(), exec.status()));
    }
    Ok(found)
}

/// Agreement among a group of pairs.
#[derive(Default, Clone, Copy)]
struct Tally {
    pairs: u32,
    decided: u32,
    agreed: u32,
    confidence_sum: f64,
}

impl Tally {
    fn add(&mut self, pair: &Pair) {
        self.pairs += 1;
        if let Some(reward) = pair.reward() {
            self.decided += 1;
            self.agreed += u32::from(reward > 0);
            self.confidence_sum += pair.review.confidence;
        }
    }

    fn json(&self, label_key: &str, label: &str) -> Value {
        json!({
            label_key: label,
            "pairs": self.pairs,
            "decided": self.decided,
            "agreed": self.agreed,
            "agreement": rate(self.agreed, self.decided),
            "mean_confidence": (self.decided > 0).then(|| round(self.confidence_sum / f64::from(self.decided))),
        })
    }
}

fn rate(n: u32, of: u32) -> Option<f64> {
    (of > 0).then(|| round(f64::from(n) / f64::from(of)))
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn cost_band(pair: &Pair) -> &'static str {
    match pair.monthly_cost {
        None => "agents' approvals",
        Some(c) if c < 10.0 => "under $10/month",
        Some(c) if c < 100.0 => "$10-100/month",
        Some(c) if c < 1000.0 => "$100-1000/month",
        Some(_) => "$1000/month and more",
    }
}

fn confidence_band(pair: &Pair) -> &'static str {
    match pair.review.confidence {
        c if c < 0.5 => "0.00-0.49",
        c if c < 0.8 => "0.50-0.79",
        c if c < 0.9 => "0.80-0.89",
        _ => "0.90-1.00",
    }
}

/// Groups in a stable order (the order labels first appear in `order`).
fn grouped(pairs: &[Pair], label_key: &str, order: &[&str], key: impl Fn(&Pair) -> String) -> Vec<Value> {
    let mut labels: Vec<String> = order.iter().map(|s| s.to_string()).collect();
    for p in pairs {
        let k = key(p);
        if !labels.contains(&k) {
            labels.push(k);
        }
    }
    labels
        .into_iter()
        .filter_map(|label| {
            let mut t = Tally::default();
            pairs.iter().filter(|p| key(p) == label).for_each(|p| t.add(p));
            (t.pairs > 0).then(|| t.json(label_key, &label))
        })
        .collect()
}

/// One pair as JSON (the report's records, and the evaluation file's labels).
pub fn pair_json(p: &Pair) -> Value {
    json!({
        "id": p.id,
        "kind": p.kind,
        "monthly_cost": p.monthly_cost,
        "inputs_digest": p.review.inputs_digest,
        "record_digest": p.review.record_digest,
        "ai": {
            "decision": p.review.decision,
            "confidence": p.review.confidence,
            "reasons": p.review.reasons,
            "reviewer": p.review.reviewer,
            "rule": p.review.rule_id,
            "overridden_by_rule": p.review.overridden_by_rule,
            "model_decision": p.review.model_decision,
            "outcome": p.review.outcome().as_str_name().trim_start_matches("AI_OUTCOME_").to_lowercase(),
        },
        "human": {
            "decision": decision::word(p.human),
            "by": p.human_by,
            "comment": p.human_comment,
            "at": tollgate_workflows::fmt_time_ms(p.human_at),
        },
        "reward": p.reward(),
    })
}

/// The report over `pairs`, with `full` mode's limits of today (`limits`) for the what-if.
pub fn aggregate(pairs: &[Pair], limits: &AiApprover) -> Value {
    let mut all = Tally::default();
    let mut matrix = json!({});
    for ai_word in [ai::APPROVE, ai::REJECT, ai::ESCALATE] {
        matrix[ai_word] = json!({"approve": 0, "reject": 0});
    }
    for p in pairs {
        all.add(p);
        let ai_word = if [ai::APPROVE, ai::REJECT].contains(&p.review.decision.as_str()) {
            p.review.decision.as_str()
        } else {
            ai::ESCALATE
        };
        let cell = &mut matrix[ai_word][decision::word(p.human)];
        *cell = json!(cell.as_u64().unwrap_or(0) + 1);
    }
    let escalated = |kind: DecisionKind| pairs.iter().filter(|p| p.reward().is_none() && p.human == kind).count();
    let disagreements: Vec<Value> =
        pairs.iter().rev().filter(|p| p.reward() == Some(-1)).take(RECENT).map(pair_json).collect();
    // What full mode would have done alone at today's limits, and how often a person disagreed.
    let mut full = limits.clone();
    full.mode = ai::Mode::Full.as_str().into();
    let (mut alone_approve, mut alone_reject, mut overruled) = (0, 0, 0);
    for p in pairs {
        let (outcome, _) = ai::outcome(&full, &p.subject(), &p.review, 0, 1);
        let said = match outcome {
            AiOutcome::ApprovedAlone => {
                alone_approve += 1;
                DecisionKind::Approve
            }
            AiOutcome::RejectedAlone => {
                alone_reject += 1;
                DecisionKind::Reject
            }
            _ => continue,
        };
        overruled += u32::from(said != p.human);
    }
    let alone = alone_approve + alone_reject;
    json!({
        "pairs": pairs.len(),
        "decided": all.decided,
        "agreed": all.agreed,
        "agreement": rate(all.agreed, all.decided),
        "matrix": matrix,
        "escalations": {
            "human_approved": escalated(DecisionKind::Approve),
            "human_rejected": escalated(DecisionKind::Reject),
        },
        "by_cost_band": grouped(pairs, "band", &["under $10/month", "$10-100/month", "$100-1000/month", "$1000/month and more", "agents' approvals"], |p| cost_band(p).to_string()),
        "by_rule": grouped(pairs, "rule", &[], |p| if p.review.rule_id.is_empty() { "(no rule)".to_string() } else { p.review.rule_id.clone() }),
        "by_confidence": grouped(pairs, "band", &["0.00-0.49", "0.50-0.79", "0.80-0.89", "0.90-1.00"], |p| confidence_band(p).to_string()),
        "disagreements": disagreements,
        "full_mode": {
            "limits": {
                "max_monthly_cost": limits.max_monthly_cost,
                "environments": limits.environments,
                "actions": limits.actions,
                "min_confidence": limits.min_confidence,
                "may_reject": limits.may_reject,
            },
            "would_decide_alone": alone,
            "would_approve": alone_approve,
            "would_reject": alone_reject,
            "a_human_disagreed": overruled,
        },
        "records": pairs.iter().map(pair_json).collect::<Vec<_>>(),
    })
}

fn pct(v: &Value) -> String {
    v.as_f64().map(|r| format!("{:.0}%", r * 100.0)).unwrap_or_else(|| "-".into())
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    t.set_header(header.to_vec());
    for r in rows {
        t.add_row(r);
    }
    t.to_string()
}

fn group_rows(groups: &Value, key: &str) -> Vec<Vec<String>> {
    groups
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            vec![
                g[key].as_str().unwrap_or_default().to_string(),
                g["pairs"].to_string(),
                g["decided"].to_string(),
                g["agreed"].to_string(),
                pct(&g["agreement"]),
                g["mean_confidence"].as_f64().map(|c| format!("{c:.2}")).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect()
}

/// The report for people.
pub fn text(r: &Value, scope: &str) -> String {
    let mut out = Vec::new();
    let unread = r["unread"]["workflows"].as_array().cloned().unwrap_or_default();
    if !unread.is_empty() {
        let listed: Vec<String> = unread
            .iter()
            .map(|w| format!("  {}: {}", w["id"].as_str().unwrap_or_default(), w["why"].as_str().unwrap_or_default()))
            .collect();
        out.push(format!(
            "Could not read {} workflow(s); their decisions are not counted below (run the report again once a worker answers for them):\n{}",
            unread.len(),
            listed.join("\n")
        ));
    }
    out.push(format!(
        "AI approver report ({scope}): {} decisions both the AI and a person took; the AI approved or rejected {} of them and agreed on {} ({}).",
        r["pairs"], r["decided"], r["agreed"], pct(&r["agreement"])
    ));
    out.push(format!(
        "It escalated {}: people approved {} and rejected {} of those.",
        r["escalations"]["human_approved"].as_u64().unwrap_or(0)
            + r["escalations"]["human_rejected"].as_u64().unwrap_or(0),
        r["escalations"]["human_approved"],
        r["escalations"]["human_rejected"]
    ));
    out.push("\nWhat the AI said (rows) against what people decided (columns):".into());
    let m = &r["matrix"];
    out.push(table(
        &["AI \\ PEOPLE", "APPROVE", "REJECT"],
        [ai::APPROVE, ai::REJECT, ai::ESCALATE]
            .iter()
            .map(|w| vec![w.to_string(), m[w]["approve"].to_string(), m[w]["reject"].to_string()])
            .collect(),
    ));
    for (title, key, label) in [
        ("By cost band:", "by_cost_band", "band"),
        ("By rule:", "by_rule", "rule"),
        ("By confidence (is it calibrated? agreement should rise with confidence):", "by_confidence", "band"),
    ] {
        out.push(format!("\n{title}"));
        out.push(table(
            &[&label.to_uppercase(), "PAIRS", "APPROVED/REJECTED", "AGREED", "AGREEMENT", "MEAN CONFIDENCE"],
            group_rows(&r[key], label),
        ));
    }
    let f = &r["full_mode"];
    out.push(format!(
        "\nAt today's limits (up to ${:.2}/month in {}; actions [{}]; confidence {}+; may reject: {}), full mode would have decided {} of these alone ({} approved, {} rejected); a person decided otherwise on {}.",
        f["limits"]["max_monthly_cost"].as_f64().unwrap_or_default(),
        f["limits"]["environments"].as_array().map(|e| e.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
        f["limits"]["actions"].as_array().map(|e| e.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
        f["limits"]["min_confidence"],
        f["limits"]["may_reject"],
        f["would_decide_alone"],
        f["would_approve"],
        f["would_reject"],
        f["a_human_disagreed"]
    ));
    let disagreements = r["disagreements"].as_array().cloned().unwrap_or_default();
    if !disagreements.is_empty() {
        out.push("\nRecent disagreements:".into());
        for d in disagreements {
            let reasons: Vec<&str> =
                d["ai"]["reasons"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
            let comment = d["human"]["comment"]
                .as_str()
                .filter(|c| !c.is_empty())
                .map(|c| format!(": “{c}”"))
                .unwrap_or_default();
            out.push(format!(
                "  {} ({}): the AI said {} ({:.2}: {}); {} said {}{comment}",
                d["id"].as_str().unwrap_or_default(),
                d["kind"].as_str().unwrap_or_default(),
                d["ai"]["decision"].as_str().unwrap_or_default(),
                d["ai"]["confidence"].as_f64().unwrap_or_default(),
                reasons.join("; "),
                d["human"]["by"].as_str().unwrap_or_default(),
                d["human"]["decision"].as_str().unwrap_or_default(),
            ));
        }
    }
    out.push("\nThe report is evidence for people: nothing here changes a decision or tunes a limit.".into());
    out.join("\n")
}

/// Writes `approver-train.jsonl` (chat-format records: the review prompt, and the person's
/// decision as the assistant's answer) and `approver-eval.jsonl` (one in five pairs, held out:
/// the prompt, the expected decision and what the AI said) into `dir`. Returns the counts.
pub async fn export(pairs: &[Pair], config: &Config, dir: &Path) -> Result<(usize, usize), ClientError> {
    let store = ArtifactStore::from_config(&config.artifacts, &config.data_dir)
        .map_err(|e| ClientError::Refused(format!("{e}")))?;
    let prompt = tollgate_config::ai::load_prompt(config.ai_approver.prompt_file.as_deref())
        .map_err(|e| ClientError::Refused(format!("configuration error: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|e| ClientError::Refused(format!("cannot create {}: {e}", dir.display())))?;
    let (mut train, mut eval) = (Vec::new(), Vec::new());
    for p in pairs {
        let record: Value = match store.get(&p.review.record_digest).await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        // The prompt the model saw when an LLM reviewed; else the one it would see today.
        let conversation = record["conversation"].as_array().filter(|c| c.len() >= 2);
        let (system, user) = match conversation {
            Some(c) => (c[0]["content"].clone(), c[1]["content"].clone()),
            None => {
                let input: ReviewInput = serde_json::from_value(record["inputs"].clone()).unwrap_or_default();
                (json!(llm::system_prompt(&prompt)), json!(llm::user_prompt(&input)))
            }
        };
        let label = json!({
            "decision": decision::word(p.human),
            "confidence": 1.0,
            "reasons": [if p.human_comment.is_empty() { format!("decided by {}", p.human_by) } else { p.human_comment.clone() }],
            "rules_considered": [],
        });
        let messages = json!([
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]);
        // One in five, chosen by the id's digest, is held out for evaluation.
        let digest = tollgate_artifacts::digest_of(p.id.as_bytes());
        if u8::from_str_radix(&digest[digest.len() - 2..], 16).unwrap_or(0).is_multiple_of(5) {
            eval.push(json!({
                "id": p.id,
                "messages": messages,
                "expected": decision::word(p.human),
                "ai": {"decision": p.review.decision, "confidence": p.review.confidence, "reviewer": p.review.reviewer},
            }));
        } else {
            let mut chat = messages.as_array().cloned().unwrap_or_default();
            chat.push(json!({"role": "assistant", "content": label.to_string()}));
            train.push(json!({"messages": chat}));
        }
    }
    for (name, lines) in [("approver-train.jsonl", &train), ("approver-eval.jsonl", &eval)] {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| ClientError::Refused(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok((train.len(), eval.len()))
}

/// Parses `--since` (a duration back from now) into epoch milliseconds.
pub fn since_ms(since: &str) -> Result<i64, ClientError> {
    let back = humantime::parse_duration(since).map_err(|e| {
        ClientError::Refused(format!("--since '{since}' is not a duration ({e}); use forms like 7d or 24h"))
    })?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Ok(now.saturating_sub(back).as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_proto::AiReview;

    fn pair(id: &str, cost: Option<f64>, ai: &str, confidence: f64, rule: &str, human: DecisionKind) -> Pair {
        Pair {
            id: id.into(),
            kind: if cost.is_some() { "ec2".into() } else { "approval".into() },
            environment: "dev".into(),
            monthly_cost: cost,
            findings: vec![],
            module_source: "catalog:ec2@1".into(),
            action: "deploy web to staging".into(),
            review: AiReview { decision: ai.into(), confidence, rule_id: rule.into(), ..Default::default() },
            human,
            human_by: "carol".into(),
            human_comment: String::new(),
            human_at: 0,
        }
    }

    #[test]
    fn the_matrix_bands_and_the_full_mode_what_if() {
        use DecisionKind::{Approve as A, Reject as R};
        let pairs = vec![
            pair("1", Some(9.19), "approve", 1.0, "small-dev", A),
            pair("2", Some(16.79), "approve", 1.0, "small-dev", R),
            pair("3", Some(280.0), "reject", 1.0, "big-box", R),
            pair("4", Some(280.0), "reject", 1.0, "big-box", A),
            pair("5", Some(1.15), "escalate", 0.0, "", A),
            pair("6", Some(732.3), "escalate", 0.0, "", R),
            pair("7", None, "approve", 1.0, "staging-deploys", A),
        ];
        let limits = AiApprover {
            max_monthly_cost: 50.0,
            environments: vec!["dev".into()],
            actions: vec!["deploy * to staging".into()],
            min_confidence: 0.9,
            ..Default::default()
        };
        let r = aggregate(&pairs, &limits);
        assert_eq!((r["pairs"].as_u64(), r["decided"].as_u64(), r["agreed"].as_u64()), (Some(7), Some(5), Some(3)));
        assert_eq!(r["agreement"], 0.6);
        assert_eq!(
            r["matrix"],
            json!({"approve": {"approve": 2, "reject": 1}, "reject": {"approve": 1, "reject": 1}, "escalate": {"approve": 1, "reject": 1}})
        );
        assert_eq!(r["escalations"], json!({"human_approved": 1, "human_rejected": 1}));
        assert_eq!(
            r["by_rule"][0],
            json!({"rule": "small-dev", "pairs": 2, "decided": 2, "agreed": 1, "agreement": 0.5, "mean_confidence": 1.0})
        );
        assert_eq!(r["by_cost_band"][0]["band"], "under $10/month");
        assert_eq!(r["by_cost_band"][0]["decided"], 1);
        assert_eq!(
            r["by_confidence"][0],
            json!({"band": "0.00-0.49", "pairs": 2, "decided": 0, "agreed": 0, "agreement": null, "mean_confidence": null})
        );
        assert_eq!(r["by_confidence"][1]["band"], "0.90-1.00");
        assert_eq!(r["full_mode"]["would_decide_alone"], 3, "pairs 1, 2 and 7");
        assert_eq!(r["full_mode"]["a_human_disagreed"], 1, "pair 2");
        assert_eq!(r["disagreements"].as_array().unwrap().len(), 2);
        let text = text(&r, "the last 7 days");
        assert!(text.contains("agreed on 3 (60%)"), "{text}");
    }
}
