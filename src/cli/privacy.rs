//! `lethe forget` and `lethe keys rotate`: crypto-shredding from the
//! terminal.

use std::path::PathBuf;
use std::process::ExitCode;

use adapters::keys::{self, MASTER_KEY_ENV};
use adapters::privacy;
use clap::{Args, Subcommand};
use commands::MasterKey;
use domain::events::ForgetCause;
use domain::subject::Subject;

use super::{caught_up_read_models, cli_context, open_ledger, StoreArg};

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// KIND:ID of the subject whose personal data to forget, e.g.
    /// request:0190…, instagram:17841400000000001, hold:0190…
    #[arg(long, conflicts_with = "due", required_unless_present = "due")]
    subject: Option<String>,
    /// Instead: forget the personal data of every request completed at
    /// least --after-days ago, and finish every forget that stopped
    /// before its key was destroyed (what `lethe serve` does every hour).
    #[arg(long)]
    due: bool,
    #[arg(long, env = "LETHE_FORGET_CONTACT_AFTER_DAYS", default_value_t = privacy::FORGET_AFTER_DAYS_DEFAULT)]
    after_days: u32,
    #[command(flatten)]
    store: StoreArg,
}

pub async fn run_forget(args: ForgetArgs) -> anyhow::Result<ExitCode> {
    let arg = &args.store;
    let (store, ledger) = open_ledger(arg).await?;
    if args.due {
        let (models, _) = caught_up_read_models(arg, &store, &ledger).await?;
        let count = privacy::forget_completed_requests(
            &ledger,
            &models,
            args.after_days,
            ledger.clock().now(),
        )
        .await?;
        println!("forgot the personal data of {count} completed request(s)");
        let finished = privacy::finish_all_interrupted_forgets(&ledger, &models, 0)
            .await?
            .finished;
        if finished > 0 {
            println!(
                "finished {finished} forget(s) recorded before their subject's key was destroyed"
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let raw = args.subject.as_deref().unwrap_or_default();
    let subject = Subject::parse(raw)?;
    let forgotten = ledger
        .forget(&cli_context(), &subject, ForgetCause::OnRequest)
        .await?;
    match (forgotten.first_time, forgotten.key_destroyed) {
        (true, true) => println!("forgot {raw} (recorded as {})", forgotten.subject),
        (true, false) => println!(
            "recorded {raw} as forgotten (as {}); this call found no live key to destroy: \
             none was ever made for it (no personal value was held under it), or the service's \
             sweep destroyed it a moment before. A requester's contact and notes belong to \
             their request: forget request:ID for those",
            forgotten.subject
        ),
        (false, _) => println!("{raw} was forgotten before; its key is destroyed"),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-wrap every data key under a new master key; the log is not
    /// touched. The current key comes as for every command
    /// (LETHE_MASTER_KEY, --master-key-file, or the store's key file).
    Rotate {
        /// The new master key's file; created with a new random key when
        /// it does not exist.
        #[arg(long)]
        new_master_key_file: PathBuf,
        #[command(flatten)]
        store: StoreArg,
    },
}

pub async fn run_keys(command: KeysCommand) -> anyhow::Result<ExitCode> {
    let KeysCommand::Rotate {
        new_master_key_file,
        store,
    } = command;
    let new = match std::fs::read_to_string(&new_master_key_file) {
        Ok(text) => MasterKey::from_base64(&text)?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let new = MasterKey::generate();
            keys::write_key_file(&new_master_key_file, &new)?;
            new
        }
        Err(error) => anyhow::bail!("cannot read {}: {error}", new_master_key_file.display()),
    };
    // The key table and the current key, without opening a vault: after a
    // rotation that stopped half-way the lookup key is under the new key
    // already, and running the same command again finishes it.
    let (table, current) =
        keys::key_table_and_master(&store.store, store.master_key_file.as_deref())
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot open the keys of {}: {e}",
                    adapters::store::redacted(&store.store)
                )
            })?;
    let count = commands::Vault::rotate_table(&table, &current, &new).await?;
    println!(
        "re-wrapped {count} key(s) from master key {} to {}; stop every lethe process using this \
         store and start them with the new key ({} or --master-key-file {}); a process still \
         running with the old key cannot open the re-wrapped keys",
        current.id(),
        new.id(),
        MASTER_KEY_ENV,
        new_master_key_file.display()
    );
    Ok(ExitCode::SUCCESS)
}
