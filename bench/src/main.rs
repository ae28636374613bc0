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

use adapters::store::Store;
use env::{Backend, Env};
use measure::{drive, Op, Window};
use report::{Figure, Rule, Target};

/// The service's allocator (see the `lethe` binary), so that Lethe is
/// measured as it runs there; the baselines in this process share it.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Connections the PostgreSQL server must accept: the write side's
/// measurements in turns hold theirs open at once (three groups of 64,
/// four stores of a writer and a read pool each, a few single ones).
const POSTGRES_CONNECTIONS_NEEDED: u32 = 250;

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

/// What a measurement taken in turns keeps open until the turns end.
enum Held {
    Nothing,
    Store(Arc<Store>),
    Pool(sqlx::PgPool),
}

impl Held {
    async fn close(self) {
        match self {
            Held::Nothing => {}
            Held::Store(store) => store.close().await,
            Held::Pool(pool) => pool.close().await,
        }
    }
}

/// Boxes each writer for [`measure::drive_in_turns`].
fn group<O: Op>(writers: Vec<O>) -> measure::Group {
    writers
        .into_iter()
        .map(|op| Box::new(op) as Box<dyn Op>)
        .collect()
}

/// The write side's rate measurements, taken together in turns by
/// [`measure::drive_in_turns`] so that every ratio between them compares
/// figures from the same moments of the machine; each with its writers
/// (or why they could not be made) and what they hold open.
#[derive(Default)]
struct Turns<'a> {
    entries: Vec<(Spec<'a>, anyhow::Result<(measure::Group, Held)>)>,
}

impl<'a> Turns<'a> {
    /// Adds a measurement when `--only` wants it; its writers are made
    /// only then.
    async fn add(
        &mut self,
        spec: Spec<'a>,
        writers: impl std::future::Future<Output = anyhow::Result<(measure::Group, Held)>>,
    ) {
        if wanted(&spec.key()) {
            let writers = writers.await;
            self.entries.push((spec, writers));
        }
    }

    /// Runs every measurement whose writers were made; their figures, and
    /// those of the others' failures, in the order added.
    async fn run(self, window: Window, figures: &mut Vec<Figure>) {
        let mut specs = Vec::with_capacity(self.entries.len());
        let (mut groups, mut held) = (Vec::new(), Vec::new());
        for (spec, writers) in self.entries {
            match writers {
                Ok((group, hold)) => {
                    groups.push(group);
                    held.push(hold);
                    specs.push((spec, None));
                }
                Err(error) => specs.push((spec, Some(error))),
            }
        }
        let mut samples = measure::drive_in_turns(groups, window).await.into_iter();
        for (spec, error) in specs {
            let figure = match (error, samples.next()) {
                (Some(error), _) => spec.failed(&error),
                (None, Some(sample)) => spec.figure(&sample),
                (None, None) => spec.failed(&anyhow::anyhow!("no sample was taken")),
            };
            progress(&figure);
            figures.push(figure);
        }
        for hold in held {
            hold.close().await;
        }
    }
}

/// `writers` raw writers of `events_per_tx` events each on a fresh
/// database named `name`.
async fn raw_group(
    env: &Env,
    backend: Backend,
    name: &str,
    writers: usize,
    events_per_tx: usize,
) -> anyhow::Result<(measure::Group, Held)> {
    let db = raw_db(env, backend, name).await?;
    Ok((
        group(raw::writers(&db, writers, events_per_tx).await?),
        Held::Nothing,
    ))
}

/// Lethe's store on a fresh database named `name`, with `writers`
/// appenders of `events` events each.
async fn lethe_group(
    env: &Env,
    backend: Backend,
    name: &str,
    writers: usize,
    events: usize,
    conditional: bool,
) -> anyhow::Result<(measure::Group, Held)> {
    let url = env.fresh(backend, name).await?;
    let store = Arc::new(adapters::store::open(&url).await?);
    let appenders = lethe::append_writers(&store, writers, events, conditional);
    Ok((group(appenders), Held::Store(store)))
}

/// postgres-es on a fresh database named `name`, its writers made by
/// `make` from a pool of their number.
async fn peer_group<O: Op>(
    env: &Env,
    backend: Backend,
    name: &str,
    writers: usize,
    make: fn(&sqlx::PgPool, usize) -> Vec<O>,
) -> anyhow::Result<(measure::Group, Held)> {
    let url = env.fresh(backend, name).await?;
    let pool = peer::setup(&url, writers)
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    Ok((group(make(&pool, writers)), Held::Pool(pool)))
}

async fn measure_backend(env: &Env, backend: Backend, plan: Plan, figures: &mut Vec<Figure>) {
    let raw_one = |writers| key(backend, "raw.one_per_tx", writers);
    let raw_multi = key(backend, "raw.multi_row_100", 1);
    let raw_spec = |name, measurement, writers, baseline| Spec {
        backend,
        system: "raw sqlx",
        name,
        measurement,
        writers,
        unit: "events/s",
        baseline,
    };
    let lethe_spec = |name, measurement, writers, baseline: String| Spec {
        backend,
        system: "lethe store",
        name,
        measurement,
        writers,
        unit: "events/s",
        baseline: Some(baseline),
    };
    let peer_spec = |name, measurement, writers, unit| Spec {
        backend,
        system: "postgres-es",
        name,
        measurement,
        writers,
        unit,
        baseline: Some(raw_one(writers)),
    };

    // Every rate of the write side, in turns, each Lethe figure beside
    // its baseline. The one-writer pair comes first and back to back, as
    // its latency ratio is a target.
    let mut turns = Turns::default();
    let one_event = "1 event per transaction";
    for writers in [1, WRITERS_MANY] {
        turns
            .add(
                raw_spec("raw.one_per_tx", one_event, writers, None),
                raw_group(env, backend, &format!("raw_one_{writers}"), writers, 1),
            )
            .await;
        turns
            .add(
                lethe_spec(
                    "lethe.append",
                    "append 1 event (group commit)",
                    writers,
                    raw_one(writers),
                ),
                lethe_group(
                    env,
                    backend,
                    &format!("lethe_append_{writers}"),
                    writers,
                    1,
                    false,
                ),
            )
            .await;
    }
    turns
        .add(
            lethe_spec(
                "lethe.append_conditional",
                "append 1 event on a tag condition",
                WRITERS_MANY,
                raw_one(WRITERS_MANY),
            ),
            lethe_group(
                env,
                backend,
                "lethe_append_conditional",
                WRITERS_MANY,
                1,
                true,
            ),
        )
        .await;
    turns
        .add(
            raw_spec(
                "raw.multi_row_100",
                "100 events per tx, one multi-row INSERT",
                1,
                None,
            ),
            raw_group(env, backend, "raw_multi", 1, raw::MULTI_ROW_EVENTS),
        )
        .await;
    turns
        .add(
            lethe_spec(
                "lethe.append_batch_100",
                "append 100 events in one append",
                1,
                raw_multi.clone(),
            ),
            lethe_group(
                env,
                backend,
                "lethe_append_batch_100",
                1,
                BATCH_EVENTS,
                false,
            ),
        )
        .await;
    turns
        .add(
            raw_spec(
                "raw.full_batch_64",
                "one batch's rows (64 streams) per tx",
                1,
                Some(raw_multi.clone()),
            ),
            async {
                let db = raw_db(env, backend, "raw_full_batch").await?;
                let writer = raw::RawBatchWriter::new(&db, raw::BATCH_STREAMS).await?;
                Ok((group(vec![writer]), Held::Nothing))
            },
        )
        .await;
    // The peer exists on PostgreSQL only.
    let persist = "persist, 1 event per call";
    let execute = "CqrsFramework::execute, 6400 aggregates";
    let mut absent = Vec::new();
    if backend == Backend::Sqlite {
        for (name, measurement, writers, unit) in [
            ("peer.persist", persist, 1, "events/s"),
            ("peer.persist", persist, WRITERS_MANY, "events/s"),
            ("peer.execute", execute, WRITERS_MANY, "commands/s"),
        ] {
            let spec = peer_spec(name, measurement, writers, unit);
            if wanted(&spec.key()) {
                absent.push(spec.absent("postgres-es is PostgreSQL only"));
            }
        }
    } else {
        for writers in [1, WRITERS_MANY] {
            turns
                .add(
                    peer_spec("peer.persist", persist, writers, "events/s"),
                    peer_group(
                        env,
                        backend,
                        &format!("peer_persist_{writers}"),
                        writers,
                        peer::persist_writers,
                    ),
                )
                .await;
        }
        turns
            .add(
                peer_spec("peer.execute", execute, WRITERS_MANY, "commands/s"),
                peer_group(
                    env,
                    backend,
                    "peer_execute",
                    WRITERS_MANY,
                    peer::execute_writers,
                ),
            )
            .await;
    }
    turns.run(plan.window, figures).await;
    figures.extend(absent);

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
        if backend == Backend::Postgres {
            env.require_connections(POSTGRES_CONNECTIONS_NEEDED).await?;
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
