//! The `lethe` binary: the command line and the service.

mod cli;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use adapters::store::{self, VerifyError};
use clap::{Parser, Subcommand};

/// jemalloc, not the system allocator: with glibc's malloc the ledger's
/// commands and a rebuild of the read models after a spell of writing ran
/// about a tenth slower (bench/README.md, "The allocator").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Lethe, an event-sourced deletion ledger.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Re-walk the event log's hash chain. Exits 0 when the log is intact,
    /// 1 when it was altered (naming the first bad position), 2 when the
    /// store cannot be read, 3 when it is intact but records forgets whose
    /// key was not destroyed (`lethe forget --due` finishes them).
    Verify {
        /// The event store: sqlite://PATH or postgres://...
        #[arg(long, env = "LETHE_STORE", default_value = "sqlite://./data/lethe.db")]
        store: String,
    },
    #[command(flatten)]
    Ledger(cli::Command),
}

/// How often `lethe verify` on a terminal says how far it has walked.
const VERIFY_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The log was altered.
const EXIT_BROKEN: u8 = 1;
/// The store could not be opened or read.
const EXIT_UNAVAILABLE: u8 = 2;
/// The log is intact, but forgets it records are not finished.
const EXIT_UNFINISHED_FORGETS: u8 = 3;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Verify { store } => Ok(verify(&store).await),
        Command::Ledger(command) => cli::run(command).await,
    }
}

async fn verify(url: &str) -> ExitCode {
    let shown = store::redacted(url);
    match store::holds_a_log(url).await {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("lethe verify: {shown} holds no ledger (a mistyped path or database?)");
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
        Err(error) => {
            eprintln!("lethe verify: cannot open {shown}: {error}");
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
    }
    let store = match store::open(url).await {
        Ok(store) => store,
        Err(error) => {
            eprintln!("lethe verify: cannot open {shown}: {error}");
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
    };
    // On a terminal, a line every few seconds of a long walk.
    let terminal = std::io::stderr().is_terminal();
    let mut shown_at = Instant::now();
    let outcome = store::verify_with_progress(&store, |walked| {
        if terminal && shown_at.elapsed() >= VERIFY_PROGRESS_EVERY {
            eprintln!("lethe verify: intact up to position {walked}, walking on...");
            shown_at = Instant::now();
        }
    })
    .await;
    store.close().await;
    match outcome {
        Ok(report) => {
            println!(
                "intact: {} events, head hash {}",
                report.events,
                hex_string(&report.head_hash)
            );
            let unfinished = report.unfinished_forgets;
            match unfinished.first {
                Some(first) if unfinished.count > 0 => {
                    eprintln!(
                        "UNFINISHED: {} forget(s) recorded, the first at position {first}, whose \
                         subject's key table holds no tombstone: its values may still read. \
                         `lethe forget --due` finishes them (`lethe serve` does within the hour)",
                        unfinished.count
                    );
                    ExitCode::from(EXIT_UNFINISHED_FORGETS)
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(VerifyError::Broken(chain_break)) => {
            eprintln!(
                "BROKEN at position {}: {}",
                chain_break.position, chain_break.reason
            );
            ExitCode::from(EXIT_BROKEN)
        }
        Err(VerifyError::Store(error)) => {
            eprintln!("lethe verify: cannot read the log: {error}");
            ExitCode::from(EXIT_UNAVAILABLE)
        }
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
