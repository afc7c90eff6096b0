//! The AI approver's review (the `review` activity): the rules reviewer always, the LLM
//! reviewer when configured (its answer under the rules: a rule's verdict replaces the
//! model's). What the workflow does with the review (count it, let it decide alone, escalate)
//! is decided in the workflow, from the settings fixed when the request started.

pub mod llm;
pub mod rules;
pub mod tools;

use std::time::{Duration, SystemTime};

use serde_json::json;
use temporalio_sdk::activities::ActivityError;
use tollgate_config::ai::{AiApproverConfig, PromptConfig};
use tollgate_proto::{AiApprover, AiReview, ReviewInput};
use tollgate_workflows::ai::ESCALATE;

use crate::TollgateActivities;
use tollgate_artifacts::ArtifactKind;
use crate::llm::ChatClient;
use tollgate_workflows::failure::FailureType;
use tollgate_workflows::kit::options::REVIEW_ATTEMPTS;

/// The reviewer a worker runs with when `[ai_approver] mode` is not off.
pub struct AiReviewer {
    pub config: AiApproverConfig,
    pub prompt: PromptConfig,
    /// The LLM reviewer's client (`reviewer = "llm"`); None: the rules alone.
    pub llm: Option<ChatClient>,
}

/// The rules reviewer's verdict: the deciding rule's, or an escalation when none matched.
fn rules_review(deciding: Option<&rules::Matched<'_>>) -> AiReview {
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
    review
}

/// The model's answer under the rules: a matching rule's verdict replaces the model's, and
/// the record keeps both (`overridden_by_rule` when they differ).
fn combine(answer: llm::ModelAnswer, deciding: Option<&rules::Matched<'_>>, model: &str) -> AiReview {
    let mut review = AiReview {
        reviewer: model.to_string(),
        decision: answer.decision.clone(),
        confidence: answer.confidence,
        reasons: answer.reasons.clone(),
        model_decision: answer.decision.clone(),
        model_reasons: answer.reasons,
        model_confidence: answer.confidence,
        ..Default::default()
    };
    // A rule is certain: its verdict and reason lead; the model's reasons follow when it agrees.
    if let Some(m) = deciding {
        review.rule_id = m.rule.id.clone();
        review.decision = m.verdict().as_str().into();
        review.confidence = 1.0;
        if m.verdict().as_str() == answer.decision {
            review.reasons.insert(0, m.reason());
        } else {
            review.overridden_by_rule = m.rule.id.clone();
            review.reasons = vec![m.reason()];
        }
    }
    review
}

/// The digest of what was judged: the same inputs give the same digest.
pub fn inputs_digest(input: &ReviewInput) -> String {
    tollgate_artifacts::digest_of(&serde_json::to_vec(input).unwrap_or_default())
}

impl TollgateActivities {
    pub(crate) async fn review_work(&self, input: ReviewInput, attempt: u32) -> Result<AiReview, ActivityError> {
        let started = tokio::time::Instant::now();
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
        let mut review = rules_review(deciding);
        let mut transcript = llm::Transcript::default();
        if let Some(client) = &ai.llm {
            let mut toolbox =
                tools::Toolbox::open(self, &input, &ai.config.mcp_servers, ai.config.max_tool_result_bytes as usize)
                    .await;
            // The model has what is left of three quarters of the review's time, counted from the
            // start (reading history and starting MCP servers take their share under load); the
            // last quarter is for the fallback and the record, so the activity never times out.
            let budget = ai.config.timeout.mul_f64(0.75);
            let answer = tokio::time::timeout_at(
                started + budget,
                llm::converse(client, &ai.prompt, &input, &mut toolbox, ai.config.max_tool_calls, &mut transcript),
            )
            .await
            .unwrap_or_else(|_| {
                Err(llm::Fallback::Rules(format!("no answer within {}", humantime::format_duration(budget))))
            });
            transcript.tool_calls.splice(0..0, std::mem::take(&mut toolbox.unreachable));
            toolbox.close().await;
            let model = format!("llm:{}", client.config.model);
            match answer {
                Ok(answer) => review = combine(answer, deciding, &model),
                Err(llm::Fallback::Retry(why)) if attempt < REVIEW_ATTEMPTS => {
                    return Err(crate::classified(FailureType::LlmUnavailable, true, why));
                }
                Err(llm::Fallback::Retry(why) | llm::Fallback::Rules(why)) => {
                    tracing::warn!(reason = %why, "the LLM reviewer's answer was not used: the rules decide");
                    review.fallback = why;
                }
            }
            review.tool_calls = transcript.tool_calls.clone();
        }
        review.inputs_digest = inputs_digest(&input);
        review.settings = Some(ai.config.settings.clone());
        review.attempt = attempt;
        let record = json!({
            "inputs": &input,
            "requester_history": &history,
            "rules_matched": matched.iter().map(|m| json!({
                "id": m.rule.id, "verdict": m.verdict().as_str(), "reason": m.reason(),
            })).collect::<Vec<_>>(),
            "conversation": &transcript.messages,
            "tool_calls": &review.tool_calls,
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
