//! `lethe serve`: the HTTP API and, beside it, the projection runner that
//! keeps the read models following the log.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use adapters::auth::{ApiRole, Tokens};
use adapters::http::{app, AppState};
use adapters::meta::{MetaConfig, MAX_AGE_SECS_DEFAULT};
use adapters::privacy;
use adapters::readmodel::ReadModels;
use clap::Args;
use commands::log::EventStore;
use tokio::sync::watch;

use super::{open_ledger_for, StoreArg};

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
    /// Days after a request completes at which its requester's contact
    /// details (and its other personal values) are forgotten.
    #[arg(long, env = "LETHE_FORGET_CONTACT_AFTER_DAYS", default_value_t = privacy::FORGET_AFTER_DAYS_DEFAULT)]
    pub forget_contact_after_days: u32,
}

/// How often the service forgets what has become due, and requests the
/// erasure of billing records whose retention ended.
const FORGET_SWEEP_INTERVAL: Duration = Duration::from_secs(3_600);

/// Now and then every [`FORGET_SWEEP_INTERVAL`] until `stop` turns true:
/// forgets due personal data, finishes the forgets that stopped before
/// their key was destroyed (from the start of the log once, then from
/// where the last sweep stopped), and requests the erasure of billing
/// records whose retention has ended. A failure is logged and retried
/// next time.
async fn run_forgetting(
    ledger: commands::Ledger,
    models: ReadModels,
    after_days: u32,
    mut stop: watch::Receiver<bool>,
) {
    let mut forgets_checked = 0;
    loop {
        let now = ledger.clock().now();
        match privacy::forget_completed_requests(&ledger, &models, after_days, now).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "forgot the personal data of completed requests"),
            Err(error) => tracing::error!(%error, "automatic forgetting failed; retrying later"),
        }
        match privacy::finish_all_interrupted_forgets(&ledger, &models, forgets_checked).await {
            Ok(done) => {
                forgets_checked = done.checked_up_to;
                if done.finished > 0 {
                    tracing::warn!(
                        forgets = done.finished,
                        "finished forgets recorded before their subject's key was destroyed"
                    );
                }
            }
            Err(error) => {
                tracing::error!(%error, "finishing interrupted forgets failed; retrying later");
            }
        }
        match adapters::retention::request_ended_retentions(&ledger, &models, now).await {
            Ok(done) if done.requested + done.failed == 0 => {}
            Ok(done) => tracing::info!(
                requested = done.requested,
                failed = done.failed,
                "requested the erasure of billing records whose retention ended"
            ),
            Err(error) => tracing::error!(%error, "the retention sweep failed; retrying later"),
        }
        tokio::select! {
            () = tokio::time::sleep(FORGET_SWEEP_INTERVAL) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
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

/// How long `serve` lets open connections finish after a stop signal.
const SHUTDOWN_DRAIN_MAX: Duration = Duration::from_secs(30);

/// Ctrl-C, or SIGTERM (`kill`, container and service managers). The
/// handlers are installed when this is called, not when the future is
/// first polled: a stop sent right after `serve` says it is listening
/// must not meet the default action (an exit with no drain).
fn stop_signal() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut terminate), Ok(mut interrupt)) => {
                return Box::pin(async move {
                    tokio::select! {
                        _ = terminate.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                });
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C only");
            }
        }
    }
    Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// How often the service resumes blocked requests whose holds are all
/// lifted but whose lift did not take them forward.
const RESUME_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Runs the resume sweep every [`RESUME_SWEEP_INTERVAL`] until `stop`
/// turns true; a failure is logged and retried next time.
async fn run_resuming(
    ledger: commands::Ledger,
    models: ReadModels,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(RESUME_SWEEP_INTERVAL) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
        match adapters::resume::resume_unblocked_requests(&ledger, &models).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "took forward requests whose holds are lifted"),
            Err(error) => tracing::error!(%error, "the resume sweep failed; retrying later"),
        }
    }
}

/// The first wait after the runner fails; it doubles on each failure in a
/// row, up to [`RUNNER_BACKOFF_MAX`].
const RUNNER_BACKOFF_MIN: Duration = Duration::from_millis(500);
const RUNNER_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Runs `follow` until `stop` turns true: a failure is logged and
/// retried after a bounded backoff (a restart loses nothing: each page
/// commits with its checkpoint).
async fn run_projections(
    models: ReadModels,
    store: Arc<dyn EventStore>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = RUNNER_BACKOFF_MIN;
    loop {
        match models.follow(store.as_ref(), stop.clone()).await {
            Ok(()) => return,
            Err(error) => {
                tracing::error!(%error, retry_in = ?backoff, "the projection runner failed");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
        backoff = (backoff * 2).min(RUNNER_BACKOFF_MAX);
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let arg = &args.store;
    let url = &arg.store;
    let (_store, ledger) = open_ledger_for(arg, adapters::keys::Startup::Service).await?;
    let read_models = super::open_read_models(url, &ledger).await?;
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
    let (stop, stopped) = watch::channel(false);
    let runner = tokio::spawn(run_projections(
        read_models.clone(),
        ledger.store().clone(),
        stopped.clone(),
    ));
    let resuming = tokio::spawn(run_resuming(
        ledger.clone(),
        read_models.clone(),
        stopped.clone(),
    ));
    let forgetting = tokio::spawn(run_forgetting(
        ledger.clone(),
        read_models.clone(),
        args.forget_contact_after_days,
        stopped,
    ));
    let state = AppState::new(ledger, read_models, tokens, meta, &public_url);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let stop_signal = stop_signal();
    println!(
        "Lethe listening on http://{} (store {}); OpenAPI at /openapi.json",
        listener.local_addr()?,
        adapters::store::redacted(url)
    );
    let (signalled, mut draining) = watch::channel(false);
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(async move {
        stop_signal.await;
        tracing::info!("stopping: no new connections; finishing those open");
        let _ = signalled.send(true);
    });
    let served = tokio::select! {
        served = server => served,
        // A client that never finishes (a slow export) does not keep the
        // process up for good.
        () = async {
            let _ = draining.wait_for(|signalled| *signalled).await;
            tokio::time::sleep(SHUTDOWN_DRAIN_MAX).await;
        } => {
            tracing::warn!(after = ?SHUTDOWN_DRAIN_MAX, "connections still open; stopping anyway");
            Ok(())
        }
    };
    // The runner stops with the server, whichever way it ended.
    let _ = stop.send(true);
    if let Err(error) = runner.await {
        tracing::error!(%error, "the projection runner panicked");
    }
    if let Err(error) = resuming.await {
        tracing::error!(%error, "the resume sweep panicked");
    }
    if let Err(error) = forgetting.await {
        tracing::error!(%error, "automatic forgetting panicked");
    }
    served?;
    Ok(ExitCode::SUCCESS)
}
