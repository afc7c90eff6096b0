//! Words both sides share, each with its wire name fixed in one place: an activity's Temporal
//! type name, the AI approver's mode and its verdicts. Recorded histories and other SDKs read
//! these names, so they never change.

use crate::{AiApprover, FindingLevel, PolicyFinding};

/// Declares [`ActivityName`] from one list: each activity's variant and its Temporal type name.
macro_rules! activity_names {
    ($($variant:ident = $wire:literal,)*) => {
        /// Every activity by name: the declarations in `tollgate-workflows`, the bodies in
        /// `tollgate-activities`, the fault wrapper and `[faults] activities` all use it (tests
        /// there hold that each has a declaration and a body). `as_str` is the Temporal
        /// activity type another language's worker would register.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub enum ActivityName {
            $($variant,)*
        }

        impl ActivityName {
            pub const ALL: &'static [ActivityName] = &[$(ActivityName::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ActivityName::$variant => $wire,)*
                }
            }
        }
    };
}

activity_names! {
    LoadSettings = "load_settings",
    GenerateModule = "generate_module",
    Plan = "plan",
    CheckPolicy = "check_policy",
    EstimateCost = "estimate_cost",
    CostContext = "cost_context",
    Apply = "apply",
    Destroy = "destroy",
    Notify = "notify",
    ListHoldings = "list_holdings",
    RequestStates = "request_states",
    Review = "review",
    Discover = "discover",
    Analyse = "analyse",
    Remediate = "remediate",
    Repair = "repair",
    NewFindings = "new_findings",
    FileReport = "file_report",
}

impl ActivityName {
    pub fn parse(name: &str) -> Option<ActivityName> {
        ActivityName::ALL.iter().copied().find(|a| a.as_str() == name)
    }

    /// Every name, as the README and the "unknown activity" help list them.
    pub fn listed() -> String {
        ActivityName::ALL.iter().map(|a| format!("`{}`", a.as_str())).collect::<Vec<_>>().join(", ")
    }
}

impl std::fmt::Display for ActivityName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[ai_approver] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AiMode {
    Off,
    CoApprover,
    Full,
}

impl AiMode {
    pub const NAMES: &'static str = "off, co-approver or full";

    pub fn parse(text: &str) -> Option<AiMode> {
        match text {
            "" | "off" => Some(AiMode::Off),
            "co-approver" => Some(AiMode::CoApprover),
            "full" => Some(AiMode::Full),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AiMode::Off => "off",
            AiMode::CoApprover => "co-approver",
            AiMode::Full => "full",
        }
    }

    /// The mode of these settings (unset or unknown: off).
    pub fn of(settings: Option<&AiApprover>) -> AiMode {
        settings.and_then(|s| AiMode::parse(&s.mode)).unwrap_or(AiMode::Off)
    }
}

/// The review's verdict words.
pub const APPROVE: &str = "approve";
pub const REJECT: &str = "reject";
pub const ESCALATE: &str = "escalate";

/// Stands for "kinds from module sources the caller has not fetched" in `source_kinds`: a
/// kind that is not built in is then left to the worker, which has them.
pub const SOURCE_KINDS_UNFETCHED: &str = "*";

/// Whether `text` matches the glob `pattern` (`*` is any run of characters, `?` one, `[ab]`
/// a set); an invalid pattern matches nothing (configuration refuses them at start).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    globset::Glob::new(pattern).map(|g| g.compile_matcher().is_match(text)).unwrap_or(false)
}

/// "deny", "approval" or "warn", as configuration and output spell a level.
pub fn level_name(level: FindingLevel) -> &'static str {
    match level {
        FindingLevel::Deny => "deny",
        FindingLevel::Approval => "approval",
        FindingLevel::Warn | FindingLevel::Unspecified => "warn",
    }
}

/// A finding's level name.
pub fn level_label(f: &PolicyFinding) -> &'static str {
    level_name(f.level())
}

/// What an LLM reviewer or module writer is called in records and output: `llm:MODEL`.
pub fn llm_named(model: &str) -> String {
    format!("llm:{model}")
}

/// The model behind an `llm:MODEL` name; None for any other reviewer or source.
pub fn llm_model(name: &str) -> Option<&str> {
    name.strip_prefix("llm:")
}
