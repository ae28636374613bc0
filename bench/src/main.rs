//! `lethe-bench`: Lethe's event log and command path measured beside plain
//! sqlx and postgres-es, its HTTP API beside the ledger called directly,
//! and its read side over a large log, on SQLite and PostgreSQL, in one
//! run. Every figure is printed with its ratio to a baseline measured in
//! the same run where one exists (these machines are shared and noisy),
//! the targets of issues 3 and 6 are marked met or missed, and everything
//! goes to `bench/results/latest.json`.
//!
//! Run it through `make bench` / `make bench-quick`, which start a
//! throwaway PostgreSQL (fsync on) and set `DATABASE_URL`.

mod env;
mod http;
mod lethe;
mod machine;
mod measure;
mod peer;
mod raw;
mod read;
mod report;
mod rss;
mod service;
mod shape;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use serde_json::json;
use sqlx::Connection;

use env::{Backend, Env};
use measure::{drive, Op, Window};
use report::{Figure, Rule, Target};

/// The service's allocator (see the `lethe` binary), so that Lethe is
/// measured as it runs there; the baselines in this process share it.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The concurrency of the "many writers" measurements.
const WRITERS_MANY: usize = 64;
/// Events per append in the batch measurements.
const BATCH_EVENTS: usize = 100;

#[derive(Debug, Parser)]
#[command(about = "Measures Lethe beside raw sqlx and postgres-es, in one run")]
struct Args {
    /// Smoke run: short windows and a small inventory (under two minutes).
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON results [default: bench/results/latest.json,
    /// or bench/results/quick.json for --quick, so that a smoke run never
    /// overwrites the last full run].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only the measurements whose key contains this text, e.g.
    /// `sqlite.lethe.append.64` (for profiling one path).
    #[arg(long)]
    only: Option<String>,
    /// Events in the log of the read-side measurements [default: 1000000,
    /// or 20000 for --quick].
    #[arg(long)]
    read_events: Option<u64>,
}

/// Durations and sizes of one run.
#[derive(Debug, Clone, Copy)]
struct Plan {
    mode: &'static str,
    window: Window,
    /// Deletion requests each ledger writer and each HTTP connection
    /// makes (one file each).
    ledger_files_per_writer: usize,
    /// Events in the log the read side is measured on.
    read_events: u64,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                mode: "quick",
                window: Window {
                    warmup: Duration::from_millis(300),
                    measure: Duration::from_millis(1_500),
                },
                ledger_files_per_writer: 8,
                read_events: 20_000,
            }
        } else {
            Self {
                mode: "full",
                window: Window {
                    warmup: Duration::from_secs(1),
                    measure: Duration::from_secs(8),
                },
                ledger_files_per_writer: 60,
                read_events: 1_000_000,
            }
        }
    }
}

/// `--only`: the measurements to run (all when unset).
static ONLY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

fn wanted(key: &str) -> bool {
    ONLY.get()
        .and_then(Option::as_deref)
        .is_none_or(|only| key.contains(only))
}

/// Keys of the figures, shared by the measurements and the targets.
fn key(backend: Backend, name: &str, writers: usize) -> String {
    format!("{}.{name}.{writers}", backend.name())
}

fn progress(figure: &Figure) {
    match (&figure.not_measured, figure.rate) {
        (Some(why), _) => eprintln!(
            "  {:<9} {:<13} {:<44} not measured: {why}",
            figure.backend, figure.system, figure.measurement
        ),
        (None, rate) => eprintln!(
            "  {:<9} {:<13} {:<44} x{:<3} {:>9} {}  p50 {} ms  p99 {} ms{}",
            figure.backend,
            figure.system,
            figure.measurement,
            figure.writers,
            report::num(rate),
            figure.unit,
            report::num(figure.p50_ms),
            report::num(figure.p99_ms),
            if figure.errors > 0 {
                format!(
                    "  {} errors: {}",
                    figure.errors,
                    figure.first_error.as_deref().unwrap_or("")
                )
            } else {
                String::new()
            }
        ),
    }
}

/// Describes one measurement; `run` does it.
struct Spec<'a> {
    backend: Backend,
    system: &'static str,
    name: &'static str,
    measurement: &'a str,
    writers: usize,
    unit: &'static str,
    baseline: Option<String>,
}

impl Spec<'_> {
    fn key(&self) -> String {
        key(self.backend, self.name, self.writers)
    }

    fn figure(&self, sample: &measure::Sample) -> Figure {
        let mut figure = self.absent("").with_sample(sample);
        figure.baseline.clone_from(&self.baseline);
        figure
    }

    fn failed(&self, error: &anyhow::Error) -> Figure {
        Figure::not_measured(
            self.key(),
            self.backend.name(),
            self.system,
            self.measurement,
            self.writers,
            self.unit,
            format!("failed: {error:#}"),
        )
    }

    fn absent(&self, why: &str) -> Figure {
        Figure::not_measured(
            self.key(),
            self.backend.name(),
            self.system,
            self.measurement,
            self.writers,
            self.unit,
            why.into(),
        )
    }
}

async fn record<O: Op>(
    figures: &mut Vec<Figure>,
    spec: &Spec<'_>,
    writers: anyhow::Result<Vec<O>>,
    window: Window,
) {
    let figure = match writers {
        Ok(writers) => spec.figure(&drive(writers, window).await),
        Err(error) => spec.failed(&error),
    };
    progress(&figure);
    figures.push(figure);
}

async fn raw_db(env: &Env, backend: Backend, name: &str) -> anyhow::Result<raw::RawDb> {
    let url = env.fresh(backend, name).await?;
    let db = match backend {
        Backend::Sqlite => raw::RawDb::Sqlite(env.sqlite_path(name)),
        Backend::Postgres => raw::RawDb::Postgres(url),
    };
    db.create_schema().await?;
    Ok(db)
}

/// The one-writer pair: a raw one-event transaction and Lethe's
/// one-event append, measured in turns; (raw figure, Lethe figure).
async fn one_writer(
    env: &Env,
    backend: Backend,
    window: Window,
    raw_spec: &Spec<'_>,
    lethe_spec: &Spec<'_>,
) -> (Figure, Figure) {
    let writers = async {
        let db = raw_db(env, backend, "raw_one_1").await?;
        let raw = raw::writers(&db, 1, 1).await?.pop();
        let url = env.fresh(backend, "lethe_append_1").await?;
        let store = Arc::new(adapters::store::open(&url).await?);
        let lethe = lethe::append_writers(&store, 1, 1, false).pop();
        match (raw, lethe) {
            (Some(raw), Some(lethe)) => Ok((raw, lethe, store)),
            _ => Err(anyhow::anyhow!("no writer was made")),
        }
    }
    .await;
    match writers {
        Ok((raw, lethe, store)) => {
            let (raw_sample, lethe_sample) = measure::drive_alternating(raw, lethe, window).await;
            store.close().await;
            (
                raw_spec.figure(&raw_sample),
                lethe_spec.figure(&lethe_sample),
            )
        }
        Err(error) => (raw_spec.failed(&error), lethe_spec.failed(&error)),
    }
}

async fn measure_backend(env: &Env, backend: Backend, plan: Plan, figures: &mut Vec<Figure>) {
    let window = plan.window;
    let raw_one = |writers| key(backend, "raw.one_per_tx", writers);
    let raw_multi = key(backend, "raw.multi_row_100", 1);

    // One writer: the raw transaction and Lethe's append take turns (see
    // `measure::drive_alternating`), since their latency ratio is a target.
    let raw_spec = Spec {
        backend,
        system: "raw sqlx",
        name: "raw.one_per_tx",
        measurement: "1 event per transaction",
        writers: 1,
        unit: "events/s",
        baseline: None,
    };
    let lethe_spec = Spec {
        backend,
        system: "lethe store",
        name: "lethe.append",
        measurement: "append 1 event (group commit)",
        writers: 1,
        unit: "events/s",
        baseline: Some(raw_one(1)),
    };
    let mut lethe_one = None;
    if wanted(&raw_spec.key()) || wanted(&lethe_spec.key()) {
        let (raw_figure, lethe_figure) =
            one_writer(env, backend, window, &raw_spec, &lethe_spec).await;
        progress(&raw_figure);
        figures.push(raw_figure);
        lethe_one = Some(lethe_figure);
    }

    // Baselines of the other writers.
    let spec = Spec {
        backend,
        system: "raw sqlx",
        name: "raw.one_per_tx",
        measurement: "1 event per transaction",
        writers: WRITERS_MANY,
        unit: "events/s",
        baseline: None,
    };
    if wanted(&spec.key()) {
        let writers = async {
            let db = raw_db(env, backend, &format!("raw_one_{WRITERS_MANY}")).await?;
            raw::writers(&db, WRITERS_MANY, 1).await
        }
        .await;
        record(figures, &spec, writers, window).await;
    }
    let spec = Spec {
        backend,
        system: "raw sqlx",
        name: "raw.multi_row_100",
        measurement: "100 events per tx, one multi-row INSERT",
        writers: 1,
        unit: "events/s",
        baseline: None,
    };
    if wanted(&spec.key()) {
        let writers = async {
            let db = raw_db(env, backend, "raw_multi").await?;
            raw::writers(&db, 1, raw::MULTI_ROW_EVENTS).await
        }
        .await;
        record(figures, &spec, writers, window).await;
    }
    let spec = Spec {
        backend,
        system: "raw sqlx",
        name: "raw.full_batch_64",
        measurement: "one batch's rows (64 streams) per tx",
        writers: 1,
        unit: "events/s",
        baseline: Some(raw_multi.clone()),
    };
    if wanted(&spec.key()) {
        let writer = async {
            let db = raw_db(env, backend, "raw_full_batch").await?;
            Ok(vec![
                raw::RawBatchWriter::new(&db, raw::BATCH_STREAMS).await?,
            ])
        }
        .await;
        record(figures, &spec, writer, window).await;
    }

    // The peer exists on PostgreSQL only.
    for writers in [1, WRITERS_MANY] {
        let spec = Spec {
            backend,
            system: "postgres-es",
            name: "peer.persist",
            measurement: "persist, 1 event per call",
            writers,
            unit: "events/s",
            baseline: Some(raw_one(writers)),
        };
        if !wanted(&spec.key()) {
            continue;
        }
        if backend == Backend::Sqlite {
            figures.push(spec.absent("postgres-es is PostgreSQL only"));
            continue;
        }
        let pool = async {
            let url = env
                .fresh(backend, &format!("peer_persist_{writers}"))
                .await?;
            peer::setup(&url, writers).await
        }
        .await;
        let ops = pool
            .as_ref()
            .map(|pool| peer::persist_writers(pool, writers));
        record(
            figures,
            &spec,
            ops.map_err(|e| anyhow::anyhow!("{e:#}")),
            window,
        )
        .await;
        if let Ok(pool) = pool {
            pool.close().await;
        }
    }
    let spec = Spec {
        backend,
        system: "postgres-es",
        name: "peer.execute",
        measurement: "CqrsFramework::execute, 6400 aggregates",
        writers: WRITERS_MANY,
        unit: "commands/s",
        baseline: Some(raw_one(WRITERS_MANY)),
    };
    let peer_execute = wanted(&spec.key());
    if peer_execute && backend == Backend::Sqlite {
        figures.push(spec.absent("postgres-es is PostgreSQL only"));
    } else if peer_execute {
        let pool = async {
            let url = env.fresh(backend, "peer_execute").await?;
            peer::setup(&url, WRITERS_MANY).await
        }
        .await;
        let ops = pool
            .as_ref()
            .map(|pool| peer::execute_writers(pool, WRITERS_MANY));
        record(
            figures,
            &spec,
            ops.map_err(|e| anyhow::anyhow!("{e:#}")),
            window,
        )
        .await;
        if let Ok(pool) = pool {
            pool.close().await;
        }
    }

    // Lethe through its store port.
    if let Some(figure) = lethe_one {
        progress(&figure);
        figures.push(figure);
    }
    let store_runs: [(&str, &str, usize, usize, bool, String); 3] = [
        (
            "lethe.append",
            "append 1 event (group commit)",
            WRITERS_MANY,
            1,
            false,
            raw_one(WRITERS_MANY),
        ),
        (
            "lethe.append_conditional",
            "append 1 event on a tag condition",
            WRITERS_MANY,
            1,
            true,
            raw_one(WRITERS_MANY),
        ),
        (
            "lethe.append_batch_100",
            "append 100 events in one append",
            1,
            BATCH_EVENTS,
            false,
            raw_multi.clone(),
        ),
    ];
    for (name, measurement, writers, events, conditional, baseline) in store_runs {
        let spec = Spec {
            backend,
            system: "lethe store",
            name,
            measurement,
            writers,
            unit: "events/s",
            baseline: Some(baseline),
        };
        if !wanted(&spec.key()) {
            continue;
        }
        let db_name = format!("{}_{writers}", name.replace('.', "_"));
        let store = async {
            let url = env.fresh(backend, &db_name).await?;
            Ok::<_, anyhow::Error>(Arc::new(adapters::store::open(&url).await?))
        }
        .await;
        let ops = store
            .as_ref()
            .map(|store| lethe::append_writers(store, writers, events, conditional));
        record(
            figures,
            &spec,
            ops.map_err(|e| anyhow::anyhow!("{e:#}")),
            window,
        )
        .await;
        if let Ok(store) = store {
            store.close().await;
        }
    }

    // Lethe's full command path.
    let spec = Spec {
        backend,
        system: "lethe ledger",
        name: "lethe.request_deletion",
        measurement: "Ledger::request_deletion (decide + append)",
        writers: WRITERS_MANY,
        unit: "commands/s",
        baseline: Some(raw_one(WRITERS_MANY)),
    };
    if !wanted(&spec.key()) {
        return;
    }
    let prepared = async {
        let url = env.fresh(backend, "ledger").await?;
        let store = Arc::new(adapters::store::open(&url).await?);
        let started = Instant::now();
        let ledger =
            lethe::prepare_ledger(store.clone(), WRITERS_MANY, plan.ledger_files_per_writer)
                .await?;
        eprintln!(
            "  {:<9} prepared {} workspaces x {} files through the ledger in {:.1} s",
            backend.name(),
            WRITERS_MANY,
            plan.ledger_files_per_writer,
            started.elapsed().as_secs_f64()
        );
        anyhow::Ok((store, ledger))
    }
    .await;
    let ops = prepared.as_ref().map(|(_, ledger)| {
        lethe::deletion_writers(ledger, WRITERS_MANY, plan.ledger_files_per_writer)
    });
    // Count-based: every writer requests each of its files once.
    let whole = Window {
        warmup: Duration::ZERO,
        measure: Duration::from_secs(600),
    };
    record(
        figures,
        &spec,
        ops.map_err(|e| anyhow::anyhow!("{e:#}")),
        whole,
    )
    .await;
    if let Ok((store, _)) = prepared {
        store.close().await;
    }
}

fn targets(has_postgres: bool) -> Vec<Target> {
    let mut all = Vec::new();
    for (backend, absolute) in [(Backend::Postgres, 40_000.0), (Backend::Sqlite, 30_000.0)] {
        let b = backend.name();
        let lethe_many = key(backend, "lethe.append", WRITERS_MANY);
        all.push(Target::new(
            &format!("{b}: 64 writers, 1-event appends >= 5x raw 1 event/tx (64 writers)"),
            &lethe_many,
            Some(&key(backend, "raw.one_per_tx", WRITERS_MANY)),
            Rule::RateRatioAtLeast,
            5.0,
        ));
        if backend == Backend::Postgres {
            all.push(Target::new(
                &format!("{b}: 64 writers, 1-event appends >= 5x postgres-es persist (64 writers)"),
                &lethe_many,
                Some(&key(backend, "peer.persist", WRITERS_MANY)),
                Rule::RateRatioAtLeast,
                5.0,
            ));
        }
        all.push(Target::new(
            &format!("{b}: 64 writers, 1-event appends >= 0.7x raw multi-row insert"),
            &lethe_many,
            Some(&key(backend, "raw.multi_row_100", 1)),
            Rule::RateRatioAtLeast,
            0.7,
        ));
        all.push(Target::new(
            &format!("{b}: 1 writer, p50 latency <= 1.3x raw 1 event/tx"),
            &key(backend, "lethe.append", 1),
            Some(&key(backend, "raw.one_per_tx", 1)),
            Rule::LatencyRatioAtMost,
            1.3,
        ));
        all.push(Target::new(
            &format!("{b}: 64 writers, 1-event appends, absolute (issue 3)"),
            &lethe_many,
            None,
            Rule::RateAtLeast,
            absolute,
        ));
    }
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let b = backend.name();
        all.push(Target::new(
            &format!("{b}: rebuild of all projections >= 50k events/s"),
            &key(backend, "read.rebuild", 1),
            None,
            Rule::RateAtLeast,
            50_000.0,
        ));
        all.push(Target::new(
            &format!("{b}: audit lookup of one subject, p99 < 10 ms"),
            &key(backend, "read.audit_lookup", 1),
            None,
            Rule::P99AtMostMs,
            10.0,
        ));
        all.push(Target::new(
            &format!("{b}: export memory flat: RSS rise for N entries <= 2x for N/10"),
            &key(backend, "read.export_rss", 1),
            Some(&key(backend, "read.export_rss_tenth", 1)),
            Rule::SizeRatioAtMost,
            2.0,
        ));
        all.push(Target::new(
            &format!("{b}: process RSS < 200 MB through HTTP and reads"),
            &key(backend, "server.rss_peak", 1),
            None,
            Rule::AtMost,
            200.0,
        ));
    }
    if !has_postgres {
        for target in all.iter_mut().filter(|t| t.figure.starts_with("postgres")) {
            target.note = Some("no PostgreSQL (DATABASE_URL unset)".into());
        }
    }
    all
}

/// What the write-side targets are up against: the rows of one
/// group-commit batch of 64 callers, written by plain SQL with nothing
/// else, against the multi-row insert, and Lethe's 64 writers against
/// those rows.
fn contexts() -> Vec<report::Context> {
    let mut all = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let b = backend.name();
        let full_batch = key(backend, "raw.full_batch_64", 1);
        all.push(report::Context::new(
            &format!("{b}: raw one batch's rows per tx / raw multi-row insert"),
            &full_batch,
            &key(backend, "raw.multi_row_100", 1),
        ));
        all.push(report::Context::new(
            &format!("{b}: 64 writers, 1-event appends / raw one batch's rows per tx"),
            &key(backend, "lethe.append", WRITERS_MANY),
            &full_batch,
        ));
    }
    all
}

async fn database_versions(env: &Env) -> serde_json::Value {
    // The options SQLite was built with (`.cargo/config.toml`) change its
    // figures, so they go with them.
    let sqlite = async {
        let mut c = sqlx::SqliteConnection::connect("sqlite::memory:").await?;
        let v: String = sqlx::query_scalar("SELECT sqlite_version()")
            .fetch_one(&mut c)
            .await?;
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(&mut c)
            .await?;
        anyhow::Ok((v, options))
    }
    .await
    .ok();
    let (sqlite, sqlite_options) = sqlite.unzip();
    let postgres = match env.admin_url() {
        None => None,
        Some(url) => async {
            let mut c = sqlx::PgConnection::connect(url).await?;
            let version: String = sqlx::query_scalar("SHOW server_version")
                .fetch_one(&mut c)
                .await?;
            let fsync: String = sqlx::query_scalar("SHOW fsync").fetch_one(&mut c).await?;
            let synchronous_commit: String = sqlx::query_scalar("SHOW synchronous_commit")
                .fetch_one(&mut c)
                .await?;
            anyhow::Ok(json!({
                "version": version,
                "fsync": fsync,
                "synchronous_commit": synchronous_commit,
            }))
        }
        .await
        .ok(),
    };
    json!({
        "sqlite": {
            "version": sqlite,
            "journal_mode": "wal",
            "synchronous": "full",
            "compile_options": sqlite_options,
        },
        "postgres": postgres,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ONLY.set(args.only.clone()).ok();
    let mut plan = Plan::new(args.quick);
    if let Some(events) = args.read_events {
        plan.read_events = events.max(10);
    }
    let env = Env::new(std::env::var("DATABASE_URL").ok())?;
    if !env.has_postgres() {
        eprintln!("################################################################");
        eprintln!("lethe-bench: DATABASE_URL is not set: PostgreSQL is NOT measured.");
        eprintln!("Run it through `make bench`, which starts a throwaway PostgreSQL.");
        eprintln!("################################################################");
    }
    let started = Instant::now();
    eprintln!(
        "lethe-bench ({} run): warmup {:?}, window {:?} per measurement",
        plan.mode, plan.window.warmup, plan.window.measure
    );
    let mut figures = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if backend == Backend::Postgres && !env.has_postgres() {
            continue;
        }
        measure_backend(&env, backend, plan, &mut figures).await;
        service::measure(&env, backend, plan, &mut figures).await;
    }
    report::fill_ratios(&mut figures);
    let mut targets = targets(env.has_postgres());
    report::judge(&mut targets, &figures);

    let mut contexts = contexts();
    report::explain(&mut contexts, &figures);

    let table = report::table(&figures, &targets, &contexts);
    println!("{table}");

    let results = json!({
        "mode": plan.mode,
        "recorded_at": chrono::Utc::now().to_rfc3339(),
        "duration_s": started.elapsed().as_secs_f64(),
        "machine": machine::describe(),
        "versions": machine::versions(),
        "databases": database_versions(&env).await,
        "sizes": {
            "warmup_s": plan.window.warmup.as_secs_f64(),
            "window_s": plan.window.measure.as_secs_f64(),
            "writers_many": WRITERS_MANY,
            "batch_events": BATCH_EVENTS,
            "raw_multi_row_events": raw::MULTI_ROW_EVENTS,
            "raw_full_batch_streams": raw::BATCH_STREAMS,
            "tags_per_event": shape::TAGS_PER_EVENT,
            "payload_bytes": shape::payload(0, 0).to_string().len(),
            "ledger_requests_per_writer": plan.ledger_files_per_writer,
            "http_connections": WRITERS_MANY,
            "http_requests_per_connection": plan.ledger_files_per_writer,
            "read_events": plan.read_events,
            "read_append_events": read::APPEND_EVENTS,
            "read_page_events": adapters::readmodel::PAGE_EVENTS_MAX,
            "rebuild_page_events": adapters::readmodel::REBUILD_PAGE_EVENTS,
            "export_page_rows": adapters::readmodel::EXPORT_PAGE_ROWS,
            "peer_aggregates_per_writer": peer::AGGREGATES_PER_WRITER,
            "store_batch_events_max": adapters::store::BATCH_EVENTS_MAX,
        },
        "figures": figures,
        "targets": targets,
        "context": contexts,
        "table": table,
    });
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from(if args.quick {
            "bench/results/quick.json"
        } else {
            "bench/results/latest.json"
        })
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    std::fs::write(&out, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "wrote {} after {:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    let failed: Vec<&Figure> = figures.iter().filter(|f| f.failed()).collect();
    if !failed.is_empty() {
        anyhow::bail!(
            "{} measurement(s) failed: {}",
            failed.len(),
            failed
                .iter()
                .map(|f| f.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
