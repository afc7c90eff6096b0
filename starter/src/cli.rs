//! The `tollgate` command line as clap reads it: every command, flag and help text.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Dataset formats of `approver-report --export`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    Jsonl,
}

#[derive(Parser)]
#[command(name = "tollgate", version, about = "Self-service infrastructure behind a cost and approval gate")]
pub(crate) struct Cli {
    /// Configuration file (default: $TOLLGATE_CONFIG, else ./tollgate.toml if present).
    #[arg(long, short, global = true)]
    pub(crate) config: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, global = true, value_enum, default_value_t = Output::Text)]
    pub(crate) output: Output,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Ask for a resource from the catalog (ec2, s3, rds); prints the request id.
    Request {
        /// What to create: a catalog kind (ec2, s3, rds) or a kind from a module source.
        kind: String,
        /// Who asks (and owns) it; they are told of every step and may keep, destroy or cancel it.
        /// (`--as` works too, as for every other command.)
        #[arg(long, visible_alias = "as")]
        requester: String,
        /// Kind parameter, e.g. --param instance_type=t3.small (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// How long it lives, e.g. 2h, 3d, 1w (default: default_ttl).
        #[arg(long)]
        ttl: Option<String>,
        /// dev, staging or prod (prod always needs approval).
        #[arg(long = "env", default_value = "dev")]
        environment: String,
        /// Where to create it: us-east-1 (default) or eu-west-1.
        #[arg(long)]
        region: Option<String>,
        /// A readable name for the resources (default: made from the kind and requester).
        #[arg(long)]
        name: Option<String>,
        /// The cloud (only those in allowed_vendors are accepted).
        #[arg(long, default_value = "aws")]
        vendor: String,
        /// Stop after the gate and report what would happen.
        #[arg(long)]
        dry_run: bool,
        /// Use this request id instead of a generated one.
        #[arg(long)]
        id: Option<String>,
    },
    /// Show a request's progress.
    #[command(group(clap::ArgGroup::new("live").args(["watch", "follow"]).multiple(true)))]
    Status {
        /// The request id `tollgate request` printed.
        id: String,
        /// Show live progress until the request settles (active, awaiting approval or ended).
        #[arg(long)]
        watch: bool,
        /// Like --watch, but until the request has ended.
        #[arg(long)]
        follow: bool,
        /// With --watch or --follow: only the steps as they happen and how it ended, not the
        /// whole status afterwards.
        #[arg(long, requires = "live")]
        brief: bool,
    },
    /// List requests, newest first.
    List {
        /// Only requests in this stage (e.g. ACTIVE, AWAITING_APPROVAL).
        #[arg(long)]
        stage: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Approve a request awaiting approval.
    Approve {
        /// The request id.
        id: String,
        /// Who approves (one of approving_users; not the requester).
        #[arg(long = "as", value_name = "USER")]
        user: String,
        /// Why, for the record and the requester.
        #[arg(long, default_value = "")]
        comment: String,
        /// The plan digest you reviewed; refused if the plan has changed.
        #[arg(long)]
        plan: Option<String>,
    },
    /// Reject a request awaiting approval (one rejection ends it).
    Reject {
        /// The request id.
        id: String,
        /// Who rejects (one of approving_users; not the requester).
        #[arg(long = "as", value_name = "USER")]
        user: String,
        /// Why (required): the requester reads it.
        #[arg(long)]
        reason: String,
    },
    /// Keep an active request for another extension_period, or --for a duration (capped at
    /// max_ttl). With a team budget the keep is priced by the team's ledger: past its headroom
    /// the team's approvers are asked, and their keep grants it.
    Keep {
        /// The request id.
        id: String,
        /// Who keeps it (the requester or an approver).
        #[arg(long = "as", value_name = "USER")]
        user: String,
        /// How much longer, e.g. 3d or 12h (default: the extension_period).
        #[arg(long = "for", value_name = "DURATION")]
        extension: Option<String>,
    },
    /// Destroy an active request's resources now.
    Destroy {
        /// The request id.
        id: String,
        /// Who destroys it (the requester or an approver).
        #[arg(long = "as", value_name = "USER")]
        user: String,
    },
    /// Withdraw a request at any stage: nothing more is created and whatever exists is destroyed.
    Cancel {
        /// The request id.
        id: String,
        /// Who withdraws it (the requester or an approver).
        #[arg(long = "as", value_name = "USER")]
        user: String,
        /// Why, for the record.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Print one of a request's stored artifacts: its module, its plan (Terraform's plan
    /// JSON), its state, the LLM's transcript or the AI approver's review (or an audit's
    /// report); read from the artifact store the worker uses (decrypted with the key
    /// `artifacts.encryption_key_env` names).
    Show {
        /// The request id (an audit id for `report`).
        id: String,
        /// Which artifact.
        #[arg(value_enum)]
        what: crate::show::Artifact,
    },
    /// Find resources whose request closed without destroying them, and destroy (or report) them.
    Reconcile {
        /// Only report what would be done.
        #[arg(long)]
        dry_run: bool,
    },
    /// Ask a person "may I?" through the approval gateway (for pipelines), and wait.
    Approval {
        #[command(subcommand)]
        action: ApprovalCommand,
    },
    /// Run the policy pack on a Terraform plan JSON, as the worker does (for your own CI).
    Policy {
        #[command(subcommand)]
        action: PolicyCommand,
    },
    /// Maintain the price book.
    Prices {
        #[command(subcommand)]
        action: PricesCommand,
    },
    /// Audit a resource (its id, name or ARN), a request's resources (--request) or every ACTIVE
    /// request's (--all-active) against the policy pack; or retry, cancel or show an audit.
    #[command(args_conflicts_with_subcommands = true)]
    Audit {
        #[command(subcommand)]
        action: Option<crate::audit::AuditCommand>,
        /// What to audit: a resource id (i-..., sg-..., a bucket name), or a request id with --request.
        target: Option<String>,
        /// The target is a request id: audit everything it holds.
        #[arg(long)]
        request: bool,
        /// Audit every ACTIVE request's resources.
        #[arg(long)]
        all_active: bool,
        /// Who asks for the audit.
        #[arg(long = "as", default_value = "tollgate")]
        user: String,
        /// Follow it until it is done, paused or cancelled.
        #[arg(long)]
        watch: bool,
        /// Print the id at once instead of waiting (up to 20s) for discovery to say whether
        /// the target exists (an audit of nothing then ends DONE, `nothing_to_audit`).
        #[arg(long, conflicts_with = "watch")]
        no_wait: bool,
    },
    /// Estimate vs actual, per team: what each request is billed against the estimate it was
    /// approved on, the largest misses, and which usage declarations to fix.
    CostReport {
        /// Check every ACTIVE request's bill now (as the daily schedule does) first.
        #[arg(long)]
        check: bool,
        /// Only this team.
        #[arg(long)]
        team: Option<String>,
    },
    /// How often the AI approver agreed with people: a confusion matrix, agreement by cost,
    /// rule and confidence, recent disagreements, and what full mode would have decided alone.
    ApproverReport {
        /// Requests and approvals started within this long (e.g. 7d, 24h).
        #[arg(long, default_value = "7d")]
        since: String,
        /// Only this request kind (ec2, s3, rds, ...), or `approval` for agents' approvals.
        #[arg(long)]
        kind: Option<String>,
        /// Also write the pairs as a dataset: approver-train.jsonl (chat-format records with the
        /// person's decision as the label) and approver-eval.jsonl (one in five, held out).
        #[arg(long, value_enum)]
        export: Option<ExportFormat>,
        /// Where --export writes its files.
        #[arg(long, default_value = ".")]
        to: PathBuf,
    },
    /// Serve Tollgate's tools to an AI agent over MCP on stdin/stdout (request and follow
    /// infrastructure, ask a person for approval); the agent never approves anything.
    Mcp {
        /// Who the agent acts for: the requester of what it asks for.
        #[arg(long = "as")]
        user: String,
        /// The approval gateway's address, for ask_for_approval and get_approval.
        #[arg(long, env = "TOLLGATE_GATEWAY_URL")]
        gateway: Option<String>,
        /// An API token of the gateway (asked as its user).
        #[arg(long, env = "TOLLGATE_GATEWAY_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Run a local Temporal dev server (with Web UI) and a worker in the foreground.
    Dev {
        /// The dev server's gRPC port (TEMPORAL_ADDRESS=127.0.0.1:<port> for the CLI).
        #[arg(long, default_value_t = 7233)]
        port: u16,
        /// The Temporal Web UI's port.
        #[arg(long, default_value_t = 8233)]
        ui_port: u16,
        /// SQLite file for the dev server (default: <data_dir>/temporal.db).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Also run the approval gateway (the web inbox), with a token for each approver.
        #[arg(long)]
        gateway: bool,
        /// The gateway's port, with --gateway.
        #[arg(long, default_value_t = 8088)]
        gateway_port: u16,
        /// Show the Temporal server's own log here (default: <data_dir>/temporal-server.log).
        #[arg(long)]
        server_log: bool,
    },
}

/// Which policies `tollgate policy` loads: the configuration's `[policy]`, adjusted by flags.
#[derive(clap::Args)]
pub(crate) struct PolicyFlags {
    /// Add a rule directory (every *.rego below it; repeatable).
    #[arg(long = "policies", value_name = "DIR")]
    pub(crate) dirs: Vec<PathBuf>,
    /// Leave out the shipped pack.
    #[arg(long)]
    pub(crate) no_builtin: bool,
    /// Override a rule's level: RULE=deny|approval|warn|off (repeatable).
    #[arg(long = "level", value_name = "RULE=LEVEL")]
    pub(crate) levels: Vec<String>,
}

#[derive(Subcommand)]
pub(crate) enum ApprovalCommand {
    /// Create a generic approval at the gateway; with --wait, block until it is decided and
    /// print the record as JSON. Exits 0 approved, 1 rejected, 3 timed out, 2 refused by the
    /// gateway (token, context), 5 gateway unreachable.
    Ask {
        /// What the pipeline wants to do, as the approvers will read it.
        #[arg(long)]
        action: String,
        /// A JSON object with what the approvers (and reviewers) should see: repository,
        /// commit, image tags, changed files...
        #[arg(long)]
        context_file: Option<PathBuf>,
        /// How long a decision may take before the approval times out (e.g. 30m, 2h).
        #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Wait for the decision (long-polling the gateway) and exit with its code.
        #[arg(long)]
        wait: bool,
        /// The gateway's address.
        #[arg(long, env = "TOLLGATE_GATEWAY_URL")]
        gateway: String,
        /// The pipeline's API token (keep it in the CI's secrets).
        #[arg(long, env = "TOLLGATE_GATEWAY_TOKEN", hide_env_values = true)]
        token: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Evaluate a plan (`terraform show -json <planfile>`, or - for stdin), or audit a state
    /// (a state file, or `terraform show -json` of one). Exits 4 when a finding is at the
    /// --fail-on level or above (default deny), 2 on unreadable input.
    Check {
        /// The plan or state as JSON: a file, or - for standard input.
        plan: PathBuf,
        #[command(flatten)]
        flags: PolicyFlags,
        /// The lowest level that fails the check.
        #[arg(long, value_enum, default_value_t = FailOn::Deny)]
        fail_on: FailOn,
    },
    /// List the rules with their controls and levels.
    Rules {
        #[command(flatten)]
        flags: PolicyFlags,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FailOn {
    Deny,
    Approval,
    Warn,
}

#[derive(Subcommand)]
pub(crate) enum PricesCommand {
    /// Build or refresh the price book from AWS Price List offer files (bulk JSON, e.g.
    /// https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/us-east-1/index.json).
    Import {
        /// Offer files (AmazonEC2, AmazonRDS, AmazonS3).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The book to refresh (default: the configured price_book, else the built-in one).
        #[arg(long)]
        book: Option<PathBuf>,
        /// Where to write the result (default: the book refreshed, else ./price_book.toml).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The new book's version (default: aws-price-list-<offers' date>).
        #[arg(long)]
        version: Option<String>,
    },
}
