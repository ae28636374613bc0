//! The subcommands of `lethe` beyond `verify`: the service, tokens, holds,
//! reads and the demo. Each takes `--store URL` (else `LETHE_STORE`, else
//! `sqlite://./data/lethe.db`).

mod demo;
mod holds;
mod reads;
mod serve;
mod tokens;

use std::process::ExitCode;
use std::sync::Arc;

use adapters::readmodel::ReadModels;
use adapters::store::{self, Store};
use clap::{Args, Subcommand, ValueEnum};
use commands::ledger::Context;
use commands::log::Position;
use commands::{Ledger, SystemClock};
use domain::deadline::PolicyTable;

/// The default store: one SQLite file under ./data.
pub const DEFAULT_STORE: &str = "sqlite://./data/lethe.db";

/// Where the event log is.
#[derive(Debug, Clone, Args)]
pub struct StoreArg {
    /// The event store: sqlite://PATH or postgres://...
    #[arg(long, env = "LETHE_STORE", default_value = DEFAULT_STORE)]
    pub store: String,
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
    /// Load a realistic story into the store, so that every view has data.
    Demo(demo::DemoArgs),
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
        Command::Demo(args) => demo::run(args).await,
    }
}

/// Opens the store and the ledger over it, on the wall clock.
pub async fn open_ledger(url: &str) -> anyhow::Result<(Arc<Store>, Ledger)> {
    let store = Arc::new(
        store::open(url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the store {url}: {e}"))?,
    );
    let ledger = Ledger::new(store.clone(), Arc::new(SystemClock), PolicyTable::default());
    Ok((store, ledger))
}

/// Opens the read models of the store at `url` (open the store first:
/// it creates the SQLite file) and catches them up with its log, so that
/// a read shows every event written so far.
pub async fn caught_up_read_models(
    url: &str,
    store: &Store,
) -> anyhow::Result<(ReadModels, Position)> {
    let models = ReadModels::open(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the read models in {url}: {e}"))?;
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
