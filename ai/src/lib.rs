//! The AI capability: an OpenAI-compatible chat client, LLM-written modules (prompts, the
//! repair conversation, Tollgate's checks of the code), and the AI approver's reviewers (the
//! rules, the LLM with its read-only tools and the team's MCP servers, an audit's opinion).
//! It knows nothing of Temporal: what the reviewer looks up comes through [`review::Lookups`].

pub mod chat;
pub mod module_writer;
pub mod review;

pub use chat::{ChatClient, LlmConfig, LlmError, Message};
pub use review::{AiReviewer, ReviewError};
