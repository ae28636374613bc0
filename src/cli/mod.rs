//! The subcommands of `lethe` beyond `verify`: the service, tokens, holds,
//! reads and the demo. Each takes `--store URL` (else `LETHE_STORE`, else
//! `sqlite://./data/lethe.db`).

mod demo;
mod holds;
mod privacy;
mod reads;
mod serve;
mod tokens;

use std::process::ExitCode;
use std::sync::Arc;

use adapters::keys::{self, MasterKeyOrigin};
use adapters::readmodel::ReadModels;
use adapters::store::{self, Store};
use clap::{Args, Subcommand, ValueEnum};
use commands::ledger::Context;
use commands::log::Position;
use commands::{Ledger, SystemClock};
use domain::deadline::PolicyTable;

/// The default store: one SQLite file under ./data.
pub const DEFAULT_STORE: &str = "sqlite://./data/lethe.db";

/// Where the event log is, and the master key of its personal data.
#[derive(Debug, Clone, Args)]
pub struct StoreArg {
    /// The event store: sqlite://PATH or postgres://...
    #[arg(long, env = "LETHE_STORE", default_value = DEFAULT_STORE)]
    pub store: String,
    /// The file holding the master key (32 bytes, base64) that wraps the
    /// data keys of personal data. `LETHE_MASTER_KEY` (the key itself)
    /// wins over it; for a SQLite store the default is PATH.master-key,
    /// created on the store's first start.
    #[arg(long, env = "LETHE_MASTER_KEY_FILE")]
    pub master_key_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub policies: PolicyArgs,
}

/// The most days a configured period may last (ten years): a longer one
/// is a typo, not a deletion policy.
const POLICY_DAYS_MAX: i64 = 3_650;
/// The most hours ahead a request may count as at risk (one year).
const AT_RISK_HOURS_MAX: i64 = 8_760;

/// The configurable part of the deadline policy table (DESIGN.md,
/// Deadlines). The statutory policies (youtube-api-user-data, gdpr,
/// ccpa) are fixed by law and not configurable. A changed table applies
/// to requests received after the change: a request keeps the due time
/// recorded when it was received.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Calendar days from receipt within which an `internal` request is due.
    #[arg(
        long,
        env = "LETHE_INTERNAL_DUE_DAYS",
        default_value_t = PolicyTable::default().internal_due_days,
        value_parser = clap::value_parser!(u32).range(1..=POLICY_DAYS_MAX),
    )]
    pub internal_due_days: u32,
    /// Days the one extension of an `internal` request adds (0: no extension).
    #[arg(
        long,
        env = "LETHE_INTERNAL_EXTENSION_DAYS",
        default_value_t = PolicyTable::default().internal_extension_days,
        value_parser = clap::value_parser!(u32).range(0..=POLICY_DAYS_MAX),
    )]
    pub internal_extension_days: u32,
    /// Days after a request completes by which backups and logs must have
    /// dropped residual copies (R13).
    #[arg(
        long,
        env = "LETHE_RESIDUAL_COPIES_DAYS",
        default_value_t = PolicyTable::default().residual_copies_days,
        value_parser = clap::value_parser!(u32).range(0..=POLICY_DAYS_MAX),
    )]
    pub residual_copies_days: u32,
    /// A request due within this many hours counts as at risk.
    #[arg(
        long,
        env = "LETHE_AT_RISK_HOURS",
        default_value_t = PolicyTable::default().at_risk_hours,
        value_parser = clap::value_parser!(u32).range(0..=AT_RISK_HOURS_MAX),
    )]
    pub at_risk_hours: u32,
}

impl PolicyArgs {
    /// The policy table these arguments configure.
    pub fn table(&self) -> PolicyTable {
        PolicyTable {
            internal_due_days: self.internal_due_days,
            internal_extension_days: self.internal_extension_days,
            residual_copies_days: self.residual_copies_days,
            at_risk_hours: self.at_risk_hours,
        }
    }
}

/// How a read prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// The subcommands of this module.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API.
    Serve(serve::ServeArgs),
    /// Manage the bearer tokens of the HTTP API.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Place, lift and list legal and moderation holds.
    #[command(subcommand)]
    Hold(holds::HoldCommand),
    /// Show deletion requests.
    #[command(subcommand)]
    Request(reads::RequestCommand),
    /// The audit trail of a subject.
    Audit(reads::AuditArgs),
    /// Reports.
    #[command(subcommand)]
    Report(reads::ReportCommand),
    /// The resources of a workspace and their state.
    Resources(reads::ResourcesArgs),
    /// Read models.
    #[command(subcommand)]
    Projections(reads::ProjectionsCommand),
    /// The deadline policy table in effect: when requests are due and
    /// what extensions each policy allows.
    Policies(reads::PoliciesArgs),
    /// Load a realistic story into the store, so that every view has data.
    Demo(demo::DemoArgs),
    /// Forget a subject's personal data (destroy its data key).
    Forget(privacy::ForgetArgs),
    /// Manage the master key of personal data.
    #[command(subcommand)]
    Keys(privacy::KeysCommand),
}

/// Runs one subcommand.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve::run(args).await,
        Command::Token(command) => tokens::run(command).await,
        Command::Hold(command) => holds::run(command).await,
        Command::Request(command) => reads::run_request(command).await,
        Command::Audit(args) => reads::run_audit(args).await,
        Command::Report(command) => reads::run_report(command).await,
        Command::Resources(args) => reads::run_resources(args).await,
        Command::Projections(command) => reads::run_projections(command).await,
        Command::Policies(args) => reads::run_policies(&args),
        Command::Demo(args) => demo::run(args).await,
        Command::Forget(args) => privacy::run_forget(args).await,
        Command::Keys(command) => privacy::run_keys(command).await,
    }
}

/// Opens the store, its key table and the ledger over them, on the wall
/// clock, for a short command. Fails when the master key does not open
/// the store's keys.
pub async fn open_ledger(arg: &StoreArg) -> anyhow::Result<(Arc<Store>, Ledger)> {
    open_ledger_for(arg, keys::Startup::Command).await
}

/// [`open_ledger`] for `startup`: a service also empties the WAL of keys
/// destroyed before a restart, on its vault's own key table.
pub async fn open_ledger_for(
    arg: &StoreArg,
    startup: keys::Startup,
) -> anyhow::Result<(Arc<Store>, Ledger)> {
    let url = &arg.store;
    let store = Arc::new(
        store::open(url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the store {}: {e}", store::redacted(url)))?,
    );
    let (vault, origin) = keys::open_vault(url, arg.master_key_file.as_deref(), startup)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the keys of {}: {e}", store::redacted(url)))?;
    if let MasterKeyOrigin::Created(path) = origin {
        eprintln!(
            "Created the master key of this new store in {} (keep it safe and apart from \
             backups of the store: without it, personal data cannot be read)",
            path.display()
        );
    }
    let ledger = Ledger::new(
        store.clone(),
        Arc::new(SystemClock),
        arg.policies.table(),
        vault,
    );
    Ok((store, ledger))
}

/// The read models in the store at `url`, reading sealed values with the
/// ledger's vault.
pub async fn open_read_models(url: &str, ledger: &Ledger) -> anyhow::Result<ReadModels> {
    Ok(ReadModels::open(url)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot open the read models in {}: {e}",
                adapters::store::redacted(url)
            )
        })?
        .with_vault(ledger.vault().clone()))
}

/// Opens the read models of the store at `url` (open the store first:
/// it creates the SQLite file) and catches them up with its log, so that
/// a read shows every event written so far.
pub async fn caught_up_read_models(
    arg: &StoreArg,
    store: &Store,
    ledger: &Ledger,
) -> anyhow::Result<(ReadModels, Position)> {
    let models = open_read_models(&arg.store, ledger).await?;
    let position = models
        .catch_up(store)
        .await
        .map_err(|e| anyhow::anyhow!("cannot catch the read models up with the log: {e}"))?;
    Ok((models, position))
}

/// The context of a command typed at the terminal: the operator's login.
pub fn cli_context() -> Context {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "operator".into());
    let user: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(64)
        .collect();
    Context::new(format!("cli:{user}"), "cli")
}
