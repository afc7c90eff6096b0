//! The AI approver's review (the `review` activity): the rules reviewer always, the LLM
//! reviewer when configured (its answer under the rules: a rule's verdict replaces the
//! model's). What the workflow does with the review (count it, let it decide alone, escalate)
//! is decided in the workflow, from the settings fixed when the request started.

pub mod rules;

use std::time::{Duration, SystemTime};

use serde_json::json;
use temporalio_sdk::activities::ActivityError;
use tollgate_config::ai::{AiApproverConfig, PromptConfig};
use tollgate_proto::{AiApprover, AiReview, ReviewInput};
use tollgate_workflows::ai::ESCALATE;

use crate::TollgateActivities;
use crate::artifacts::ArtifactKind;

/// The reviewer a worker runs with when `[ai_approver] mode` is not off.
pub struct AiReviewer {
    pub config: AiApproverConfig,
    pub prompt: PromptConfig,
}

impl AiReviewer {
    pub fn new(config: AiApproverConfig, prompt: PromptConfig) -> Self {
        Self { config, prompt }
    }
}

/// The digest of what was judged: the same inputs give the same digest.
pub fn inputs_digest(input: &ReviewInput) -> String {
    crate::artifacts::digest_of(&serde_json::to_vec(input).unwrap_or_default())
}

impl TollgateActivities {
    pub(crate) async fn review_work(&self, input: ReviewInput, attempt: u32) -> Result<AiReview, ActivityError> {
        let Some(ai) = &self.ai else {
            return Ok(AiReview {
                settings: Some(AiApprover { mode: "off".into(), ..Default::default() }),
                attempt,
                ..Default::default()
            });
        };
        let requester = match &input.request {
            Some(r) if input.action.is_empty() => r.requester.clone(),
            _ => input.requested_by.clone(),
        };
        let history = self.requester_history(&rules::history_windows(&ai.prompt.rules), &requester).await;
        let matched = rules::matching(&ai.prompt.rules, &input, &history);
        let deciding = rules::deciding(&matched);
        let mut review = match deciding {
            Some(m) => AiReview {
                decision: m.verdict().as_str().into(),
                confidence: 1.0,
                reasons: vec![m.reason()],
                rule_id: m.rule.id.clone(),
                ..Default::default()
            },
            None => AiReview {
                decision: ESCALATE.into(),
                confidence: 0.0,
                reasons: vec!["no rule matched: a human decides".into()],
                ..Default::default()
            },
        };
        review.reviewer = "rules".into();
        review.inputs_digest = inputs_digest(&input);
        review.settings = Some(ai.config.settings.clone());
        review.attempt = attempt;
        let record = json!({
            "inputs": &input,
            "requester_history": &history,
            "rules_matched": matched.iter().map(|m| json!({
                "id": m.rule.id, "verdict": m.verdict().as_str(), "reason": m.reason(),
            })).collect::<Vec<_>>(),
            "review": &review,
        });
        let bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
        review.record_digest = self.artifacts.put(ArtifactKind::Review, &bytes).await.map_err(crate::art)?;
        tracing::info!(
            decision = %review.decision,
            rule = %review.rule_id,
            reviewer = %review.reviewer,
            "AI review"
        );
        Ok(review)
    }

    /// How many of the requester's requests ended REJECTED within each window. A window whose
    /// count cannot be read is left out: a rule that needs it then does not hold.
    async fn requester_history(&self, windows: &[u64], requester: &str) -> rules::History {
        let mut history = rules::History::default();
        let Some(client) = &self.temporal else { return history };
        for window in windows {
            let since = SystemTime::now() - Duration::from_millis(*window);
            let since = humantime::format_rfc3339_seconds(since);
            let query = format!(
                "WorkflowType = '{}' AND TollgateRequester = '{}' AND TollgateStage = 'REJECTED' AND CloseTime > '{since}'",
                tollgate_workflows::WORKFLOW_TYPE,
                requester.replace(['\'', '\\'], "")
            );
            match client.count_workflows(query, temporalio_client::WorkflowCountOptions::default()).await {
                Ok(count) => {
                    history.rejections_within.insert(*window, count.count() as u64);
                }
                Err(e) => tracing::warn!(error = %e, "reading the requester's history failed"),
            }
        }
        history
    }
}
