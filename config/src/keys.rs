//! Every configuration key in one table: its name, how it is written, its default as the
//! README shows it, and what it means. Environment overrides, the "unknown key" help and the
//! README's configuration table all come from here (a test holds the README equal to
//! [`markdown_table`], and another holds each documented default equal to the effective one).

/// How a key's value is written; used to parse environment overrides and to explain errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Text,
    List,
    Integer,
    Number,
    Boolean,
    Duration,
    Table,
    /// An array of tables (`[[budgets]]`): the file only, not the environment.
    Tables,
}

impl KeyKind {
    pub fn allowed(self) -> &'static str {
        match self {
            KeyKind::Text => "a string",
            KeyKind::List => "a list of strings (in the environment: comma-separated)",
            KeyKind::Integer => "a whole number",
            KeyKind::Number => "a number",
            KeyKind::Boolean => "true or false",
            KeyKind::Duration => "a duration such as 30s, 5m, 5h, 30d or 1w",
            KeyKind::Table => "a table of strings (in the environment: NAME=value pairs, comma-separated)",
            KeyKind::Tables => "tables in the file ([[name]])",
        }
    }
}

/// One key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// `grace_period`, or `section.key`.
    pub name: &'static str,
    pub kind: KeyKind,
    /// The default as the README writes it (markdown).
    pub default: &'static str,
    /// One line: what it means (markdown).
    pub doc: &'static str,
}

pub(crate) const fn key(name: &'static str, kind: KeyKind, default: &'static str, doc: &'static str) -> Key {
    Key { name, kind, default, doc }
}

/// Every key, in the README's order.
pub const KEYS: &[Key] = &[
    key("task_queue", KeyKind::Text, "`tollgate`", "Temporal task queue of the worker"),
    key("log_level", KeyKind::Text, "`info`", "error, warn, info, debug, trace (`RUST_LOG` wins if set)"),
    key(
        "log_format",
        KeyKind::Text,
        "`text`",
        "`text` (for people) or `json` (one object per line with the request id, workflow and run ids, activity and stage as fields, for a log collector)",
    ),
    key(
        "metrics.listen",
        KeyKind::Text,
        "none (off)",
        "serve Prometheus metrics on this address (`GET /metrics`): the SDK's worker metrics and Tollgate's own; see [Metrics](#metrics)",
    ),
    key(
        "metrics.refresh",
        KeyKind::Duration,
        "`30s`",
        "how often the gauges read from Temporal (approvals waiting, active requests and their cost) are refreshed",
    ),
    key(
        "worker.workflow_cache",
        KeyKind::Integer,
        "`500`",
        "workflows the worker keeps in memory between tasks; an evicted one replays its history on its next task or query (see [Benchmarks](BENCHMARKS.md))",
    ),
    key("worker.workflow_task_pollers", KeyKind::Integer, "`5`", "concurrent polls for workflow tasks (at least 2)"),
    key("worker.activity_task_pollers", KeyKind::Integer, "`5`", "concurrent polls for activity tasks"),
    key("worker.workflow_task_slots", KeyKind::Integer, "`100`", "workflow tasks processed at once"),
    key(
        "worker.activity_slots",
        KeyKind::Integer,
        "`100`",
        "activities (generate, plan, apply, destroy, notify) run at once",
    ),
    key(
        "worker.local_activity_slots",
        KeyKind::Integer,
        "`100`",
        "local activities (settings, policy, pricing) run at once",
    ),
    key(
        "worker.grpc_compression",
        KeyKind::Text,
        "`gzip`",
        "`gzip` (the SDK's default: less traffic to a distant server such as Temporal Cloud) or `none` (a server next to the worker: about 13% more throughput and 12% less worker CPU, see [Worker tuning](#worker-tuning))",
    ),
    key(
        "data_dir",
        KeyKind::Text,
        "`.tollgate`",
        "artifacts (modules, plans, state), sandbox inventory, dev-server database",
    ),
    key(
        "web_ui_url",
        KeyKind::Text,
        "port + 1000 on a local `TEMPORAL_ADDRESS` (the dev server's)",
        "the Temporal Web UI's address, for the links `tollgate status` and `tollgate dev` print",
    ),
    key(
        "approving_users",
        KeyKind::List,
        "`[]`",
        "who may approve or reject; nobody approves their own request; fixed per request when it starts; none: a request that needs approval is refused",
    ),
    key("required_approvals", KeyKind::Integer, "`1`", "approvals needed; one rejection ends the request"),
    key(
        "teams",
        KeyKind::Tables,
        "`[]`",
        "teams: `[[teams]]` tables with `name`, `members` (people), `member_teams` (teams whose members belong too), `approvers` and `approver_teams` (who approves the team's requests, `required_approvals` of them, in place of `approving_users`), `budget_monthly` (USD, optional: the team budget headroom gate); see [Teams and approval rules](#teams-and-approval-rules)",
    ),
    key(
        "approval_rules",
        KeyKind::Tables,
        "`[]`",
        "role-based approval: `[[approval_rules]]` tables with `name`, `when` (`environments`, `kinds`, `min_monthly_cost`; all given must match), `need` (`[{ team = \"dba\", count = 1 }, ...]`: approvals from each team's members) and `counts_in_each_group` (default false: a person counts in one group only); a matching request needs approval",
    ),
    key(
        "grace_period",
        KeyKind::Duration,
        "`5h`",
        "expiry warning this long before expiry, then reminders this often; approval reminders this often",
    ),
    key("max_ttl", KeyKind::Duration, "`30d`", "no request lives longer than this after creation (keep is capped)"),
    key("extension_period", KeyKind::Duration, "`1w`", "what one `keep` adds"),
    key("default_ttl", KeyKind::Duration, "= `extension_period`", "TTL when a request names none"),
    key(
        "approval_timeout",
        KeyKind::Duration,
        "`72h`",
        "no decision within this: the request ends EXPIRED, nothing applied",
    ),
    key(
        "ai_approver.mode",
        KeyKind::Text,
        "`off`",
        "the AI approver: `off`, `co-approver` (reviews every request needing approval; its approval counts once, never as the last) or `full` (may decide alone within the limits below); see [The AI approver](#the-ai-approver)",
    ),
    key(
        "ai_approver.name",
        KeyKind::Text,
        "`tollgate-ai`",
        "the name its decisions carry (never one of `approving_users`)",
    ),
    key(
        "ai_approver.reviewer",
        KeyKind::Text,
        "`rules`",
        "`rules` (the prompt file's rules alone) or `llm` (the `[llm]` endpoint, with the rules over it and as its fallback)",
    ),
    key(
        "ai_approver.prompt_file",
        KeyKind::Text,
        "none",
        "a TOML file with `base_prompt`, `considerations` and `[[rules]]`; a bad rule stops the worker naming the file and rule",
    ),
    key(
        "ai_approver.min_confidence",
        KeyKind::Number,
        "`0.9`",
        "`full`: the least confidence with which it decides alone",
    ),
    key(
        "ai_approver.max_monthly_cost",
        KeyKind::Number,
        "`50`",
        "`full`: it approves alone only requests adding at most this (USD/month)",
    ),
    key(
        "ai_approver.environments",
        KeyKind::List,
        "`[\"dev\"]`",
        "`full`: the environments in which it approves alone",
    ),
    key(
        "ai_approver.actions",
        KeyKind::List,
        "`[]`",
        "`full`: globs over the generic approvals' actions it may approve alone (e.g. `deploy * to staging`)",
    ),
    key(
        "ai_approver.may_reject",
        KeyKind::Boolean,
        "`false`",
        "`full`: it may reject alone, only for a rule's reason; a human may overturn that within `overturn_window`",
    ),
    key("ai_approver.overturn_window", KeyKind::Duration, "`1h`", "how long a human may overturn its rejection"),
    key("ai_approver.max_tool_calls", KeyKind::Integer, "`8`", "tool calls the LLM reviewer may make in one review"),
    key(
        "ai_approver.max_tool_result_bytes",
        KeyKind::Integer,
        "`16384`",
        "a tool's answer is cut to this many bytes before the model reads it",
    ),
    key(
        "ai_approver.mcp_servers",
        KeyKind::Tables,
        "`[]`",
        "the team's MCP servers whose tools the LLM reviewer may call: `[[ai_approver.mcp_servers]]` tables with `name`, `command` (a list) or `url`, and `tools` (the allow-list)",
    ),
    key(
        "ai_approver.timeout",
        KeyKind::Duration,
        "`1m`",
        "one review, tool calls included; a late review is retried, then left to the humans",
    ),
    key(
        "cost_threshold_percent",
        KeyKind::Number,
        "`10`",
        "approval needed when the monthly cost is at least this % of the baseline",
    ),
    key(
        "baseline_monthly_cost",
        KeyKind::Number,
        "`1000`",
        "the average monthly bill (USD) the threshold is a percentage of (with `baseline_source = \"static\"`)",
    ),
    key(
        "baseline_source",
        KeyKind::Text,
        "`static`",
        "`static` (`baseline_monthly_cost`), `ledger` (the monthly cost of everything Tollgate keeps alive, from its own records) or `aws-cost-explorer` (the last three full months' average unblended cost); see [The gate](#the-gate)",
    ),
    key(
        "cost_explorer.endpoint",
        KeyKind::Text,
        "`https://ce.us-east-1.amazonaws.com`",
        "Cost Explorer's endpoint; credentials are the standard `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), with `ce:GetCostAndUsage`",
    ),
    key("cost_explorer.region", KeyKind::Text, "`us-east-1`", "the signing region"),
    key(
        "cost_explorer.tag_key",
        KeyKind::Text,
        "none",
        "only the cost of resources with this tag key (with `cost_explorer.tag_value`, e.g. `team`)",
    ),
    key("cost_explorer.tag_value", KeyKind::Text, "none", "... and this value (e.g. `data`)"),
    key("cost_explorer.cache", KeyKind::Duration, "`6h`", "how long one answer is reused (AWS bills each call)"),
    key(
        "budgets",
        KeyKind::Tables,
        "`[]`",
        "monthly budgets: `[[budgets]]` tables with `name`, `members` (requesters), `monthly` (USD; past it a request needs approval), `hard_cap` (optional; past it a request is refused)",
    ),
    key("allowed_vendors", KeyKind::List, "`[\"aws\"]`", "vendors requests may name"),
    key("dry_run", KeyKind::Boolean, "`false`", "every request stops after the gate and reports what would happen"),
    key(
        "continue_as_new_after_events",
        KeyKind::Integer,
        "`2000`",
        "an active request's history is rolled over (continue-as-new) past this many events",
    ),
    key(
        "price_book",
        KeyKind::Text,
        "built in",
        "path to a price book TOML (same shape as `cost/data/price_book.toml`)",
    ),
    key(
        "register_search_attributes",
        KeyKind::Boolean,
        "`true`",
        "register missing search attributes on the namespace at worker start (see Namespace setup)",
    ),
    key(
        "notifications.channels",
        KeyKind::List,
        "`[\"log\"]`",
        "`log` (worker log), `webhook` (JSON POST) and/or `slack` (approval messages with buttons)",
    ),
    key("notifications.webhook_url", KeyKind::Text, "none", "required for `webhook`; http or https"),
    key("notifications.webhook_timeout", KeyKind::Duration, "`10s`", "per POST"),
    key(
        "notifications.webhook_secret_env",
        KeyKind::Text,
        "none",
        "names the variable holding the secret that signs each body (`X-Tollgate-Signature: sha256=<hex HMAC-SHA256>`); set but missing refuses worker start",
    ),
    key(
        "notifications.approval_slack_channel",
        KeyKind::Text,
        "none",
        "for `slack` through the Web API: the channel (`#infra-approvals` or an id) approval messages go to",
    ),
    key(
        "notifications.slack_token_env",
        KeyKind::Text,
        "`SLACK_BOT_TOKEN`",
        "the variable holding the Slack app's bot token (scope `chat:write`); missing refuses worker start",
    ),
    key(
        "notifications.slack_api_url",
        KeyKind::Text,
        "`https://slack.com/api`",
        "Slack's Web API (a proxy, or a fake in tests)",
    ),
    key(
        "notifications.slack_webhook_url",
        KeyKind::Text,
        "none",
        "for `slack` without a bot: an incoming-webhook URL (messages with buttons, no updates in place); use this or `approval_slack_channel`",
    ),
    key(
        "links.public_url",
        KeyKind::Text,
        "none",
        "the gateway's address as approvers reach it; when set, approval and expiry webhooks carry signed one-click links to `<public_url>/links/...`",
    ),
    key(
        "links.secret_env",
        KeyKind::Text,
        "`TOLLGATE_LINK_SECRET`",
        "the variable holding the link key (the gateway's `link_secret_env`: the same key); missing refuses worker start",
    ),
    key("links.ttl", KeyKind::Duration, "`24h`", "how long a link in a notification stays valid"),
    key(
        "retry.initial_interval",
        KeyKind::Duration,
        "`1s`",
        "first retry delay of a failed activity (doubles each time)",
    ),
    key("retry.max_interval", KeyKind::Duration, "`1m`", "longest delay between retries"),
    key(
        "retry.max_attempts",
        KeyKind::Integer,
        "`10`",
        "attempts before a step counts as failed (the request then ends FAILED, after cleanup); loading the worker's settings always gets 3",
    ),
    key(
        "timeouts.plan",
        KeyKind::Duration,
        "`5m`",
        "how long one attempt of the plan step may take (then it is retried)",
    ),
    key(
        "timeouts.apply",
        KeyKind::Duration,
        "`15m`",
        "the same for apply (a real RDS instance can take longer: raise it)",
    ),
    key("timeouts.destroy", KeyKind::Duration, "`15m`", "the same for destroy"),
    key(
        "drift.interval",
        KeyKind::Duration,
        "`6h`",
        "while ACTIVE, re-plan the approved module this often to find drift (`0s`: never); see [Drift](#drift)",
    ),
    key(
        "drift.action",
        KeyKind::Text,
        "`report`",
        "`report` (record it, tell the owner) or `reapply` (apply the approved configuration again)",
    ),
    key("reconcile.interval", KeyKind::Duration, "`1h`", "how often the reconcile schedule runs"),
    key(
        "cost_check.interval",
        KeyKind::Duration,
        "`1d`",
        "how often a schedule checks each ACTIVE request's bill against its approved estimate; `0s`: only `tollgate cost-report --check`",
    ),
    key(
        "cost_check.max_ratio",
        KeyKind::Number,
        "`1.5`",
        "a bill this many times the estimate, or under it by as much, diverges: the owner and approvers are told",
    ),
    key(
        "cost_check.actuals",
        KeyKind::Text,
        "`engine`",
        "where bills come from: `engine` (the sandbox's meter; the Terraform engine keeps none) or `aws-cost-explorer` (the last 7 full days by the `RequestId` tag, with `[cost_explorer]`)",
    ),
    key(
        "reconcile.action",
        KeyKind::Text,
        "`destroy`",
        "`destroy` leftovers of closed requests, or only `report` them; the owner is told either way",
    ),
    key(
        "audit.interval",
        KeyKind::Duration,
        "off",
        "a Temporal Schedule audits every ACTIVE request this often; owners hear about new findings only (see [Audits](#audits))",
    ),
    key(
        "generate",
        KeyKind::Text,
        "`catalog`",
        "who writes modules: `catalog` (vetted modules only), `llm`, or `llm-then-catalog` (the LLM first, the vetted module if it fails); see [LLM-written modules](#llm-written-modules)",
    ),
    key(
        "llm.base_url",
        KeyKind::Text,
        "none",
        "an OpenAI-compatible endpoint, e.g. `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1` (Ollama)",
    ),
    key("llm.model", KeyKind::Text, "none", "the model name the endpoint knows"),
    key(
        "llm.api_key_env",
        KeyKind::Text,
        "none",
        "the environment variable holding the API key (sent as a bearer token)",
    ),
    key(
        "llm.azure_api_version",
        KeyKind::Text,
        "none",
        "Azure OpenAI: adds `?api-version=` and sends the key as `api-key` (base_url `https://<resource>.openai.azure.com/openai/deployments/<deployment>`)",
    ),
    key("llm.timeout", KeyKind::Duration, "`1m`", "per chat-completions call"),
    key("llm.max_attempts", KeyKind::Integer, "`10`", "answers tried per module; each refusal is fed back for repair"),
    key(
        "llm.allowed_resource_types",
        KeyKind::List,
        "the sandbox cloud's types",
        "the resource types a written module may use",
    ),
    key(
        "engine",
        KeyKind::Text,
        "`sandbox`",
        "`sandbox` (the embedded simulated cloud) or `terraform` (the Terraform/OpenTofu CLI); see [Engines](#engines)",
    ),
    key("terraform.binary", KeyKind::Text, "`terraform`", "the CLI to run: `terraform`, `tofu`, or a path to either"),
    key(
        "terraform.args",
        KeyKind::List,
        "`[]`",
        "extra arguments for plan, apply and destroy (e.g. `[\"-parallelism=4\"]`)",
    ),
    key(
        "terraform.env",
        KeyKind::Table,
        "`{}`",
        "extra environment for Terraform and its providers (e.g. `{ AWS_PROFILE = \"sandbox\" }`); credentials stay here or in the worker's environment",
    ),
    key(
        "terraform.sandbox_provider",
        KeyKind::Text,
        "none",
        "path to `tollgate-sandbox-provider`: installs it as `hashicorp/aws` (offline runs of the real catalog)",
    ),
    key(
        "terraform.stop_timeout",
        KeyKind::Duration,
        "`2m`",
        "after a cancellation's SIGINT, how long Terraform may take to stop before SIGKILL",
    ),
    key("terraform.lock_timeout", KeyKind::Duration, "`1m`", "how long a run waits for a state lock another run holds"),
    key(
        "artifacts.url",
        KeyKind::Text,
        "`<data_dir>/artifacts`",
        "where modules, plans and state are kept: `file:///dir`, `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`; see [Artifact store](#artifact-store)",
    ),
    key(
        "artifacts.options",
        KeyKind::Table,
        "`{}`",
        "settings of that store (object_store's keys: `endpoint`, `region`, `allow_http`, ...); credentials from the environment (`AWS_ACCESS_KEY_ID`, ...)",
    ),
    key(
        "artifacts.encryption_key_env",
        KeyKind::Text,
        "none",
        "the environment variable holding a 64-hex-character key: plans and state are then encrypted at rest (AES-256-GCM)",
    ),
    key(
        "artifacts.encryption_key_id",
        KeyKind::Text,
        "derived from the key",
        "the id stored with each encrypted artifact",
    ),
    key(
        "module_sources",
        KeyKind::Tables,
        "`[]`",
        "team modules beside the catalog: `[[module_sources]]` tables with `name`, `git` + `ref` or `url` (a `.tar.gz`), `path`, `digest`; see [Module sources](#module-sources)",
    ),
    key(
        "sandbox.latency",
        KeyKind::Duration,
        "`0s`",
        "sandbox delay per resource (demo, resilience tests); under `terraform` with the sandbox provider, the provider's",
    ),
    key("sandbox.account_id", KeyKind::Text, "`123456789012`", "account id in the sandbox's synthetic ARNs"),
    key(
        "infracost.binary",
        KeyKind::Text,
        "none",
        "the `infracost` CLI: plans are priced with `infracost breakdown` instead of the price book (see [Cost](#cost))",
    ),
    key(
        "infracost.api_key_env",
        KeyKind::Text,
        "`INFRACOST_API_KEY`",
        "the environment variable holding the Infracost API key (the worker refuses to start without it when `infracost.binary` is set)",
    ),
    key("infracost.timeout", KeyKind::Duration, "`2m`", "per `infracost breakdown` run"),
    key(
        "policy.builtin",
        KeyKind::Boolean,
        "`true`",
        "judge plans with the shipped pack (`policies/`); see [Policies](#policies)",
    ),
    key(
        "policy.dirs",
        KeyKind::List,
        "`[]`",
        "team rule directories: every `*.rego` below them (`*_test.rego` excepted) joins the pack",
    ),
    key(
        "policy.levels",
        KeyKind::Table,
        "`{}`",
        "a level per rule id: `deny`, `approval`, `warn` or `off`, e.g. `{ \"open-ingress\" = \"approval\" }`",
    ),
    key(
        "faults.activities",
        KeyKind::List,
        "`[]`",
        "fault injection (drills, tests): activities that fail, by name: {activities}",
    ),
    key(
        "faults.fail_first_attempts",
        KeyKind::Integer,
        "`0`",
        "the first N attempts of those activities fail with a retryable `InjectedFault`",
    ),
    key(
        "faults.after_work",
        KeyKind::Boolean,
        "`false`",
        "fail after the activity did its work (a lost reply) instead of before",
    ),
];

mod registry;
pub use registry::{NOT_SETTINGS, Registry, WORKER};
