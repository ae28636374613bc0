//! `lethe serve`: the HTTP API.

use std::process::ExitCode;

use adapters::auth::{ApiRole, Tokens};
use adapters::http::{app, AppState};
use adapters::meta::{MetaConfig, MAX_AGE_SECS_DEFAULT};
use clap::Args;

use super::{open_ledger, StoreArg};

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Address to listen on.
    #[arg(long, env = "LETHE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// When no token exists yet, create one per role and print them
    /// (used by `make run` on a fresh store).
    #[arg(long)]
    pub bootstrap_tokens: bool,
}

/// The Meta callback settings from the environment; `None` without an
/// app secret (the callbacks then answer 503 and say why).
pub fn meta_from_env() -> anyhow::Result<Option<MetaConfig>> {
    let Some(secret) = std::env::var("LETHE_META_APP_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    let max_age_secs = match std::env::var("LETHE_META_MAX_AGE_SECS") {
        Ok(raw) => raw.parse().map_err(|e| {
            anyhow::anyhow!("LETHE_META_MAX_AGE_SECS must be a number of seconds: {e}")
        })?,
        Err(_) => MAX_AGE_SECS_DEFAULT,
    };
    Ok(Some(MetaConfig::new(secret.into_bytes(), max_age_secs)))
}

async fn bootstrap(tokens: &Tokens, listen: &str) -> anyhow::Result<()> {
    if tokens.count().await? > 0 {
        println!("Tokens exist already (`lethe token list`); none created.");
        return Ok(());
    }
    println!("First start: one token per role (shown only now; stored hashed):\n");
    let mut auditor = String::new();
    for role in ApiRole::ALL {
        let token = tokens.create(&format!("{role}-1"), role).await?;
        println!("  {:<8} {token}", role.as_str());
        if role == ApiRole::Auditor {
            auditor = token;
        }
    }
    println!(
        "\nTry:\n  curl -s -H 'Authorization: Bearer {auditor}' http://{listen}/v1/reports/deadlines\n"
    );
    Ok(())
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let url = &args.store.store;
    let (_store, ledger) = open_ledger(url).await?;
    let tokens = Tokens::connect(url).await?;
    if args.bootstrap_tokens {
        bootstrap(&tokens, &args.listen).await?;
    }
    let meta = meta_from_env()?;
    if meta.is_none() {
        tracing::warn!("LETHE_META_APP_SECRET is unset: the Meta callbacks answer 503");
    }
    let public_url =
        std::env::var("LETHE_PUBLIC_URL").unwrap_or_else(|_| format!("http://{}", args.listen));
    let state = AppState::new(ledger, tokens, meta, &public_url);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    println!(
        "Lethe listening on http://{} (store {url}); OpenAPI at /openapi.json",
        listener.local_addr()?
    );
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}
