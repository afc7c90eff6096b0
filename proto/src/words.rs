//! Words both sides share, each with its wire name fixed in one place: an activity's Temporal
//! type name, the AI approver's mode and its verdicts. Recorded histories and other SDKs read
//! these names, so they never change.

use crate::{AiApprover, AuditTargetKind, FindingLevel, PolicyFinding};

/// Declares a word enum from one list: each variant and its wire name, with `ALL` (in order),
/// `as_str` and `parse`.
macro_rules! words {
    ($(#[doc = $doc:tt])* $name:ident { $($(#[doc = $vdoc:tt])* $variant:ident = $wire:literal,)* }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub enum $name {
            $($(#[doc = $vdoc])* $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }

            pub fn parse(word: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|w| w.as_str() == word)
            }
        }
    };
}

words! {
    /// Every activity by name: the declarations in `tollgate-workflows`, the bodies in
    /// `tollgate-activities`, the fault wrapper and `[faults] activities` all use it (tests
    /// there hold that each has a declaration and a body). `as_str` is the Temporal activity
    /// type another language's worker would register.
    ActivityName {
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
        ReserveHeadroom = "reserve_headroom",
        ReleaseHeadroom = "release_headroom",
        LedgerHoldings = "ledger_holdings",
        MeasureCosts = "measure_costs",
        MarkCosts = "mark_costs",
        PreviewHeadroom = "preview_headroom",
    }
}

impl ActivityName {
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

/// What an audit looks at, as the gateway's `target_kind` and MCP's `start_audit` spell it.
/// One spelling each; any other (say `all-active`, the CLI's flag) is refused naming these.
pub const AUDIT_TARGET_KINDS: &str = "resource, request or all_active";

pub fn audit_target_kind_name(kind: AuditTargetKind) -> &'static str {
    match kind {
        AuditTargetKind::Resource | AuditTargetKind::Unspecified => "resource",
        AuditTargetKind::Request => "request",
        AuditTargetKind::AllActive => "all_active",
    }
}

/// The kind `word` names, or why not (naming the accepted words).
pub fn parse_audit_target_kind(word: &str) -> Result<AuditTargetKind, String> {
    [AuditTargetKind::Resource, AuditTargetKind::Request, AuditTargetKind::AllActive]
        .into_iter()
        .find(|k| audit_target_kind_name(*k) == word)
        .ok_or_else(|| format!("'{word}' is not {AUDIT_TARGET_KINDS}"))
}

#[cfg(test)]
mod audit_target_tests {
    use super::*;

    #[test]
    fn one_spelling_per_target_kind_and_others_refused_naming_them() {
        for kind in [AuditTargetKind::Resource, AuditTargetKind::Request, AuditTargetKind::AllActive] {
            assert_eq!(parse_audit_target_kind(audit_target_kind_name(kind)), Ok(kind));
        }
        assert_eq!(
            parse_audit_target_kind("all-active").unwrap_err(),
            "'all-active' is not resource, request or all_active"
        );
        assert!(parse_audit_target_kind("Request").is_err());
    }
}

words! {
    /// `[reconcile] action`: what the reconciler does with what a closed request left behind.
    ReconcileAction {
        Destroy = "destroy",
        Report = "report",
    }
}

impl ReconcileAction {
    pub const NAMES: &'static str = "destroy or report";

    /// The action settings carry (empty, from runs before the key: the default, destroy).
    pub fn of(word: &str) -> ReconcileAction {
        ReconcileAction::parse(word).unwrap_or(ReconcileAction::Destroy)
    }
}

words! {
    /// `[drift] action`: what a drift check does with drift it finds.
    DriftAction {
        /// Tell the owner.
        Report = "report",
        /// Apply the approved configuration again.
        Reapply = "reapply",
    }
}

impl DriftAction {
    /// The action settings carry (empty or unknown: report, which changes nothing).
    pub fn of(word: &str) -> DriftAction {
        DriftAction::parse(word).unwrap_or(DriftAction::Report)
    }
}

words! {
    /// How an audit's fix is carried out (`AuditFix.kind` on the wire).
    FixKind {
        /// The owning request re-applies its approved configuration (the `repair` update).
        Reapply = "reapply",
        /// An operator runs a command.
        Command = "command",
        /// A person changes the module or the resource by hand.
        Manual = "manual",
    }
}

impl FixKind {
    /// The kind a fix carries (anything else reads as manual: a person decides).
    pub fn of(word: &str) -> FixKind {
        FixKind::parse(word).unwrap_or(FixKind::Manual)
    }
}
