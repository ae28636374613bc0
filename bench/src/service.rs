//! Items 4 and 5 of the benchmark issue, on one backend: the HTTP API
//! under 64 connections beside the ledger called directly, then the read
//! side over a large log (catch-up, rebuild, audit lookups, exports and
//! their memory), with the process's peak resident memory through both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::readmodel::ReadModels;
use adapters::store::Store;

use crate::env::{Backend, Env};
use crate::measure::{Sample, Window};
use crate::report::Figure;
use crate::rss::{kb_to_mb, Peaks};
use crate::{http, key, lethe, progress, read, record, wanted, Plan, Spec, WRITERS_MANY};

/// `1M`, `100k`, `20k`, `2000`: sizes in measurement names.
pub fn count(n: u64) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 10_000 && n % 1_000 == 0 {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

fn push(figures: &mut Vec<Figure>, figure: Figure) {
    progress(&figure);
    figures.push(figure);
}

/// Everything that reads or serves: HTTP first, then the read side.
pub async fn measure(env: &Env, backend: Backend, plan: Plan, figures: &mut Vec<Figure>) {
    let mut peaks = Peaks::start();
    measure_http(env, backend, plan, figures).await;
    let read_side = ReadSide::new(backend, plan.read_events);
    if read_side.specs().iter().any(|s| wanted(&s.key())) {
        if let Err(error) = read_side.run(env, plan, &mut peaks, figures).await {
            for spec in read_side.specs() {
                if !figures.iter().any(|f| f.key == spec.key()) {
                    push(figures, spec.failed(&error));
                }
            }
        }
    }
    let spec = Spec {
        backend,
        system: "lethe server",
        name: "server.rss_peak",
        measurement: "peak RSS, HTTP + reads (server and clients)",
        writers: 1,
        unit: "MB",
        baseline: None,
    };
    if wanted(&spec.key()) {
        let peak = peaks.highest_kb();
        let figure = if peak == 0 {
            spec.absent("no /proc/self/status on this system")
        } else {
            spec.figure(&Sample::default()).with_size(kb_to_mb(peak))
        };
        push(figures, figure);
    }
}

async fn measure_http(env: &Env, backend: Backend, plan: Plan, figures: &mut Vec<Figure>) {
    let spec = Spec {
        backend,
        system: "lethe http",
        name: "http.request_deletion",
        measurement: "POST /v1/deletion-requests, 64 connections",
        writers: WRITERS_MANY,
        unit: "commands/s",
        baseline: Some(key(backend, "lethe.request_deletion", WRITERS_MANY)),
    };
    if !wanted(&spec.key()) {
        return;
    }
    let files = plan.ledger_files_per_writer;
    let prepared = async {
        let url = env.fresh(backend, "http").await?;
        let store = Arc::new(adapters::store::open(&url).await?);
        let started = Instant::now();
        let ledger = lethe::prepare_ledger(store.clone(), WRITERS_MANY, files).await?;
        eprintln!(
            "  {:<9} prepared {} workspaces x {} files through the ledger in {:.1} s",
            backend.name(),
            WRITERS_MANY,
            files,
            started.elapsed().as_secs_f64()
        );
        let server = http::Server::start(&url, ledger).await?;
        anyhow::Ok((store, server))
    }
    .await;
    let (store, server) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            push(figures, spec.failed(&error));
            return;
        }
    };
    let writers = http::post_writers(&server, WRITERS_MANY, files).await;
    // Count-based, as the ledger figure it is compared with.
    let whole = Window {
        warmup: Duration::ZERO,
        measure: Duration::from_secs(600),
    };
    record(figures, &spec, writers, whole).await;
    server.stop().await;
    store.close().await;
}

/// The read-side measurements of one backend over a log of `events`.
struct ReadSide {
    backend: Backend,
    events: u64,
    measurements: [String; 7],
}

const CATCH_UP: usize = 0;
const EXPORT_TENTH: usize = 1;
const READ_LOG: usize = 2;
const REBUILD: usize = 3;
const LOOKUP: usize = 4;
const EXPORT_ALL: usize = 5;
const VERIFY: usize = 6;

impl ReadSide {
    fn new(backend: Backend, events: u64) -> Self {
        let tenth = events / 10;
        Self {
            backend,
            events,
            measurements: [
                format!("catch up all projections, first {} events", count(tenth)),
                format!("export {} entries (CSV): peak RSS rise", count(tenth)),
                format!(
                    "read the log, {}-event pages",
                    adapters::readmodel::PAGE_EVENTS_MAX
                ),
                format!("rebuild all projections, {} events", count(events)),
                format!("audit lookup of one subject, {} events", count(events)),
                format!("export {} entries (CSV): peak RSS rise", count(events)),
                format!(
                    "verify the whole log (lethe verify), {} events",
                    count(events)
                ),
            ],
        }
    }

    fn specs(&self) -> Vec<Spec<'_>> {
        let backend = self.backend;
        let spec = |i: usize, system, name, unit, baseline: Option<usize>| Spec {
            backend,
            system,
            name,
            measurement: &self.measurements[i],
            writers: 1,
            unit,
            baseline: baseline.map(|b| key(backend, Self::NAMES[b], 1)),
        };
        vec![
            spec(
                CATCH_UP,
                "lethe read",
                Self::NAMES[CATCH_UP],
                "events/s",
                Some(READ_LOG),
            ),
            spec(
                EXPORT_TENTH,
                "lethe read",
                Self::NAMES[EXPORT_TENTH],
                "MB",
                None,
            ),
            spec(
                READ_LOG,
                "lethe store",
                Self::NAMES[READ_LOG],
                "events/s",
                None,
            ),
            spec(
                REBUILD,
                "lethe read",
                Self::NAMES[REBUILD],
                "events/s",
                Some(READ_LOG),
            ),
            spec(LOOKUP, "lethe read", Self::NAMES[LOOKUP], "lookups/s", None),
            spec(
                EXPORT_ALL,
                "lethe read",
                Self::NAMES[EXPORT_ALL],
                "MB",
                Some(EXPORT_TENTH),
            ),
            spec(
                VERIFY,
                "lethe store",
                Self::NAMES[VERIFY],
                "events/s",
                Some(READ_LOG),
            ),
        ]
    }

    const NAMES: [&'static str; 7] = [
        "read.catch_up",
        "read.export_rss_tenth",
        "store.read_log",
        "read.rebuild",
        "read.audit_lookup",
        "read.export_rss",
        "store.verify",
    ];

    /// Fills the log to a tenth, catches the read models up and exports;
    /// fills it to the end, reads it, rebuilds, looks up and exports again.
    async fn run(
        &self,
        env: &Env,
        plan: Plan,
        peaks: &mut Peaks,
        figures: &mut Vec<Figure>,
    ) -> anyhow::Result<()> {
        let url = env.fresh(self.backend, "read_side").await?;
        let store = Arc::new(adapters::store::open(&url).await?);
        let vault = read::vault(&url).await?;
        let models = ReadModels::open(&url).await?.with_vault(vault.clone());
        let opened = Opened {
            url: &url,
            store: &store,
            models: &models,
        };
        let result = self.run_on(&opened, vault, plan, peaks, figures).await;
        models.close().await;
        store.close().await;
        result
    }

    async fn run_on(
        &self,
        opened: &Opened<'_>,
        vault: Arc<commands::Vault>,
        plan: Plan,
        peaks: &mut Peaks,
        figures: &mut Vec<Figure>,
    ) -> anyhow::Result<()> {
        let Opened { url, store, models } = *opened;
        let specs = self.specs();
        let backend = self.backend.name();
        let mut loader = read::Loader::new(vault)?;
        let tenth = self.events / 10;
        let took = loader.fill_to(store, tenth).await?;
        eprintln!(
            "  {backend:<9} appended {} events of tenant histories in {:.1} s ({:.0} events/s)",
            loader.events,
            took.as_secs_f64(),
            loader.events as f64 / took.as_secs_f64().max(1e-9)
        );

        let started = Instant::now();
        let at = models.catch_up(store.as_ref()).await?;
        anyhow::ensure!(at == tenth, "caught up to {at}, expected {tenth}");
        push(
            figures,
            specs[CATCH_UP].figure(&read::once(tenth, started.elapsed())),
        );

        self.export(models, tenth, &specs[EXPORT_TENTH], peaks, figures)
            .await?;

        let took = loader.fill_to(store, self.events).await?;
        let settling = Instant::now();
        crate::env::settle(url).await?;
        eprintln!(
            "  {backend:<9} appended up to {} events in {:.1} s more; settled in {:.1} s",
            loader.events,
            took.as_secs_f64(),
            settling.elapsed().as_secs_f64()
        );

        if wanted(&specs[READ_LOG].key()) || wanted(&specs[REBUILD].key()) {
            let sample = read::read_log(store).await?;
            anyhow::ensure!(
                sample.events == self.events,
                "read {} events",
                sample.events
            );
            push(figures, specs[READ_LOG].figure(&sample));
        }

        let started = Instant::now();
        let report = models.rebuild(store.as_ref(), None).await?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            report.position == self.events && report.events == self.events,
            "rebuilt {} events up to {}",
            report.events,
            report.position
        );
        push(
            figures,
            specs[REBUILD].figure(&read::once(report.events, elapsed)),
        );

        if wanted(&specs[VERIFY].key()) {
            let started = Instant::now();
            let report = adapters::store::verify(store)
                .await
                .map_err(|e| anyhow::anyhow!("verify: {e}"))?;
            anyhow::ensure!(
                report.events == self.events,
                "verified {} events",
                report.events
            );
            push(
                figures,
                specs[VERIFY].figure(&read::once(report.events, started.elapsed())),
            );
        }

        let lookups = read::lookups(models, loader.tenants_complete());
        record(figures, &specs[LOOKUP], Ok(lookups), plan.window).await;

        self.export(models, self.events, &specs[EXPORT_ALL], peaks, figures)
            .await
    }

    /// Exports every entry and records how far the process's peak RSS rose
    /// above its size before the export.
    async fn export(
        &self,
        models: &ReadModels,
        entries: u64,
        spec: &Spec<'_>,
        peaks: &mut Peaks,
        figures: &mut Vec<Figure>,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let (exported, rise) = peaks.rise_during(read::export_all(models)).await;
        let elapsed = started.elapsed();
        let exported = exported?;
        anyhow::ensure!(
            exported == entries,
            "exported {exported} entries, expected {entries}"
        );
        let figure = match rise {
            Some(kb) => spec
                .figure(&read::once(exported, elapsed))
                .with_size(kb_to_mb(kb)),
            None => spec.absent("the peak RSS cannot be reset (/proc/self/clear_refs)"),
        };
        push(figures, figure);
        Ok(())
    }
}

/// The read side's database, opened.
#[derive(Debug, Clone, Copy)]
struct Opened<'a> {
    url: &'a str,
    store: &'a Arc<Store>,
    models: &'a ReadModels,
}
