//! `lethe hold place|lift|list`.

use std::process::ExitCode;

use adapters::readmodel::{HoldQuery, PAGE_ROWS_MAX};
use clap::Subcommand;
use domain::ids::HoldId;
use domain::subject::Subject;
use domain::text::{MatterRef, Reason};
use domain::values::HoldKind;

use super::{caught_up_read_models, cli_context, open_ledger, StoreArg};

#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// Place a legal or moderation hold; prints the hold id.
    Place {
        /// KIND:ID of what the hold covers, e.g. workspace:ws-42.
        #[arg(long)]
        scope: String,
        /// legal or moderation.
        #[arg(long)]
        kind: String,
        /// The matter or case reference.
        #[arg(long)]
        matter: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Lift a hold; the deletions it blocked resume.
    Lift {
        hold_id: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// The holds register.
    List {
        /// Only active holds.
        #[arg(long)]
        active: bool,
        #[command(flatten)]
        store: StoreArg,
    },
}

pub async fn run(command: HoldCommand) -> anyhow::Result<ExitCode> {
    match command {
        HoldCommand::Place {
            scope,
            kind,
            matter,
            reason,
            store,
        } => {
            let scope = Subject::parse(&scope)?;
            let kind: HoldKind = kind.parse()?;
            let matter = MatterRef::parse(&matter)?;
            let reason = Reason::parse(&reason)?;
            let (_store, ledger) = open_ledger(&store).await?;
            let hold = ledger
                .place_hold(&cli_context(), scope, kind, matter, reason)
                .await?;
            println!("{hold}");
        }
        HoldCommand::Lift {
            hold_id,
            reason,
            store,
        } => {
            let hold = HoldId::parse(&hold_id)?;
            let reason = Reason::parse(&reason)?;
            let (_store, ledger) = open_ledger(&store).await?;
            ledger.lift_hold(&cli_context(), hold, reason).await?;
            eprintln!("lifted {hold}");
        }
        HoldCommand::List { active, store } => {
            let arg = &store;
            let (store, ledger) = open_ledger(arg).await?;
            let (models, _) = caught_up_read_models(arg, &store, &ledger).await?;
            println!(
                "{:<38} {:<6} {:<11} {:<28} {:<22} BLOCKS",
                "HOLD", "ACTIVE", "KIND", "SCOPE", "MATTER"
            );
            let mut query = HoldQuery {
                active_only: active,
                limit: PAGE_ROWS_MAX,
                ..HoldQuery::default()
            };
            loop {
                let page = models.holds(&query).await?;
                for view in &page {
                    let mut view = view.clone();
                    models
                        .reveal(&mut [&mut view.hold.scope, &mut view.hold.matter])
                        .await?;
                    println!(
                        "{:<38} {:<6} {:<11} {:<28} {:<22} {}",
                        view.hold.hold,
                        if view.active { "yes" } else { "no" },
                        view.hold.kind,
                        view.hold.scope,
                        view.hold.matter,
                        view.blocked_requests.len()
                    );
                }
                match page.last() {
                    Some(last) if page.len() == PAGE_ROWS_MAX => {
                        query.after = last.hold.placed_position;
                    }
                    _ => break,
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
