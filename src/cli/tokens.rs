//! `lethe token create|list|revoke`.

use std::process::ExitCode;

use adapters::auth::{ApiRole, Tokens};
use adapters::store;
use clap::Subcommand;

use super::StoreArg;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints the token alone on stdout (shown only once).
    Create {
        /// service, legal, auditor or admin.
        #[arg(long)]
        role: String,
        /// A unique name, e.g. file-manager or legal-team.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// List tokens (names, roles, dates; never the secrets).
    List {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Revoke a token; it stops working at once.
    Revoke {
        name: String,
        #[command(flatten)]
        store: StoreArg,
    },
}

/// Opens the store once (creating it and its tables), then the tokens.
pub async fn open_tokens(url: &str) -> anyhow::Result<Tokens> {
    let opened = store::open(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the store {}: {e}", store::redacted(url)))?;
    opened.close().await;
    drop(opened);
    Ok(Tokens::connect(url).await?)
}

pub async fn run(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create { role, name, store } => {
            let role: ApiRole = role.parse()?;
            let tokens = open_tokens(&store.store).await?;
            let token = tokens.create(&name, role).await?;
            println!("{token}");
            tokens.close().await;
        }
        TokenCommand::List { store } => {
            let tokens = open_tokens(&store.store).await?;
            println!("{:<32} {:<8} {:<25} REVOKED", "NAME", "ROLE", "CREATED");
            for info in tokens.list().await? {
                println!(
                    "{:<32} {:<8} {:<25} {}",
                    info.name,
                    info.role.as_str(),
                    info.created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    info.revoked_at
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_else(|| "-".into())
                );
            }
            tokens.close().await;
        }
        TokenCommand::Revoke { name, store } => {
            let tokens = open_tokens(&store.store).await?;
            tokens.revoke(&name).await?;
            eprintln!("revoked {name}");
            tokens.close().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}
