//! The AI approver's review: the rules reviewer always, the LLM reviewer when configured (its
//! answer under the rules: a rule's verdict replaces the model's). What the workflow does with
//! the review (count it, let it decide alone, escalate) is decided in the workflow, from the
//! settings fixed when the request started.

pub mod llm;
pub mod rules;
pub mod tools;

use serde_json::json;
use tollgate_artifacts::{ArtifactError, ArtifactKind, ArtifactStore};
use tollgate_config::ai::{AiApproverConfig, PromptConfig};
use tollgate_proto::words::{ESCALATE, llm_named};
use tollgate_proto::{AiReview, ReviewInput};

use crate::chat::ChatClient;
pub use tools::{LookupError, Lookups};

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

/// Why a review gave no answer (a fallback to the rules is an answer, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The LLM endpoint was rate limiting or unavailable and attempts remain: retry.
    #[error("the LLM reviewer is unavailable: {0}")]
    LlmUnavailable(String),
    /// The review's record could not be stored.
    #[error("storing the review's record: {0}")]
    Record(#[from] ArtifactError),
}

impl AiReviewer {
    /// Reviews `input`: the rules over it and the requester's history, then the model when
    /// configured. The record (inputs, history, matches, conversation, tool calls, review) is
    /// stored in `artifacts` and named by `record_digest`. `last_attempt`: an unavailable model
    /// falls back to the rules instead of asking for a retry.
    pub async fn review(
        &self,
        input: &ReviewInput,
        attempt: u32,
        last_attempt: bool,
        lookups: &impl Lookups,
        artifacts: &ArtifactStore,
    ) -> Result<AiReview, ReviewError> {
        let started = tokio::time::Instant::now();
        let requester = match &input.request {
            Some(r) if input.action.is_empty() => r.requester.clone(),
            _ => input.requested_by.clone(),
        };
        let history = rules::History::read(lookups, &rules::history_windows(&self.prompt.rules), &requester).await;
        let matched = rules::matching(&self.prompt.rules, input, &history);
        let deciding = rules::deciding(&matched);
        let mut review = rules_review(deciding);
        let mut transcript = llm::Transcript::default();
        if let Some(client) = &self.llm {
            let config = &self.config;
            let mut toolbox =
                tools::Toolbox::open(lookups, input, &config.mcp_servers, config.max_tool_result_bytes as usize).await;
            // The model has what is left of three quarters of the review's time, counted from the
            // start (reading history and starting MCP servers take their share under load); the
            // last quarter is for the fallback and the record, so the activity never times out.
            let budget = config.timeout.mul_f64(0.75);
            let answer = tokio::time::timeout_at(
                started + budget,
                llm::converse(client, &self.prompt, input, &mut toolbox, config.max_tool_calls, &mut transcript),
            )
            .await
            .unwrap_or_else(|_| {
                Err(llm::Fallback::Rules(format!("no answer within {}", humantime::format_duration(budget))))
            });
            transcript.tool_calls.splice(0..0, std::mem::take(&mut toolbox.unreachable));
            toolbox.close().await;
            match answer {
                Ok(answer) => review = combine(answer, deciding, &llm_named(&client.config.model)),
                Err(llm::Fallback::Retry(why)) if !last_attempt => return Err(ReviewError::LlmUnavailable(why)),
                Err(llm::Fallback::Retry(why) | llm::Fallback::Rules(why)) => {
                    tracing::warn!(reason = %why, "the LLM reviewer's answer was not used: the rules decide");
                    review.fallback = why;
                }
            }
            review.tool_calls = transcript.tool_calls.clone();
        }
        review.inputs_digest = inputs_digest(input);
        review.settings = Some(self.config.settings.clone());
        review.attempt = attempt;
        let record = json!({
            "inputs": input,
            "requester_history": &history,
            "rules_matched": matched.iter().map(|m| json!({
                "id": m.rule.id, "verdict": m.verdict().as_str(), "reason": m.reason(),
            })).collect::<Vec<_>>(),
            "conversation": &transcript.messages,
            "tool_calls": &review.tool_calls,
            "review": &review,
        });
        let bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
        review.record_digest = artifacts.put(ArtifactKind::Review, &bytes).await?;
        tracing::info!(
            decision = %review.decision,
            rule = %review.rule_id,
            reviewer = %review.reviewer,
            "AI review"
        );
        Ok(review)
    }
}

impl tollgate_proto::failure::Classified for ReviewError {
    fn type_name(&self) -> tollgate_proto::failure::FailureType {
        match self {
            ReviewError::LlmUnavailable(_) => tollgate_proto::failure::FailureType::LlmUnavailable,
            ReviewError::Record(e) => e.type_name(),
        }
    }

    fn retryable(&self) -> bool {
        match self {
            ReviewError::LlmUnavailable(_) => true,
            ReviewError::Record(e) => e.retryable(),
        }
    }
}
