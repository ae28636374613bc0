//! The projection runner: pages of the log applied with their checkpoint
//! in one transaction; the rebuild that fills shadow tables and swaps them
//! in; the creation of missing tables.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use commands::log::{EventStore, Position, RecordedEvent};
use domain::events::LedgerEvent;
use futures_util::future::try_join_all;
use projections::{ProjectionName, ReadModelError};
use serde::Serialize;

use super::db::{db_error, Backend, Val};
use super::schema::{self, SCHEMA_VERSION, SHADOW};
use super::sqltx::{PageRows, Reader, SqlTx, Written};
use super::{ReadModels, Tx};

/// Most events applied in one transaction of the live runner. Smaller
/// pages hold the SQLite write lock (shared with the log's writer) and
/// the live tables for less time. A rebuild's pages are larger
/// ([`REBUILD_PAGE_EVENTS`]).
pub const PAGE_EVENTS_MAX: usize = 1_000;
/// Most events in one page of a rebuild's fill. A rebuild writes only its
/// shadow tables, so no query waits on its transactions, and larger
/// pages spread each page's fixed costs (a statement per table, the
/// commit, the checkpoint rows) over more events and write a row that
/// consecutive pages change once; they also hold more in memory, since
/// three pages are in flight. Measured alone at a million events on
/// SQLite, one run each, the process's resident memory during the
/// rebuild rising from before it: pages of 1,000 gave 44,372 events/s
/// (65 to 77 MB), 2,000 gave 52,289 (84 to 100 MB), 4,000 gave 53,886
/// (64 to 134 MB). In a full benchmark run, pages of 4,000 took the peak
/// of the HTTP and read measurements from 119 to 183 MB on PostgreSQL,
/// close to the 200 MB target. Pairs of runs with 4,000 and 1,000 before
/// that (SQLite: 55,210, 55,458, 51,227, 52,523 against 49,758, 45,565,
/// 45,560, 47,511; PostgreSQL: 53,237 and 54,330 against 50,464) show
/// the gain above this machine's noise. On SQLite a page's write holds
/// the write lock that the log's writer shares, so appends beside a
/// rebuild can wait that long: 71 ms on average and 123 ms at most for
/// pages of 4,000 in an instrumented rebuild.
pub const REBUILD_PAGE_EVENTS: usize = 2_000;
/// How long `follow` waits for the log to move before looking again.
pub const FOLLOW_WAIT: Duration = Duration::from_secs(1);
/// The PostgreSQL advisory lock that serialises DDL on the read models
/// (creation at open, rebuild preparation and swap) across processes.
const DDL_LOCK_KEY: i64 = 0x6c65_7468_6552_4d00;

/// How a rebuild on PostgreSQL splits the projections over concurrent
/// transactions (they share no tables), so that the server works on
/// several pages' writes at once instead of one after another. Grouped
/// by what each cost alone in a rebuild of 200k events (audit 4.3 s,
/// resources 6 s, tasks 4.7 s, requests and holds 0.9 s each, the log's
/// read not counted), three groups of about equal work; more would take
/// more of the pool's connections for little. SQLite has one writer at a
/// time, so there a rebuild writes every projection in one transaction.
const REBUILD_GROUPS: [&[ProjectionName]; 3] = [
    &[
        ProjectionName::Audit,
        ProjectionName::Requests,
        ProjectionName::Holds,
    ],
    &[ProjectionName::Resources],
    &[ProjectionName::Tasks],
];

/// Which tables a page writes and which checkpoints it moves: the live
/// ones, or a rebuild's shadow ones.
#[derive(Debug, Clone)]
struct Target {
    names: Vec<ProjectionName>,
    shadow: bool,
}

impl Target {
    fn suffix(&self) -> &'static str {
        if self.shadow {
            SHADOW
        } else {
            ""
        }
    }

    fn key(&self, name: ProjectionName) -> String {
        if self.shadow {
            format!("{name}@rebuild")
        } else {
            name.as_str().to_owned()
        }
    }

    /// This target split into the [`REBUILD_GROUPS`] it has projections
    /// of (PostgreSQL), or whole (SQLite).
    fn groups(&self, backend: Backend) -> Vec<Target> {
        if backend == Backend::Sqlite {
            return vec![self.clone()];
        }
        REBUILD_GROUPS
            .iter()
            .map(|group| Target {
                names: group
                    .iter()
                    .copied()
                    .filter(|n| self.names.contains(n))
                    .collect(),
                shadow: self.shadow,
            })
            .filter(|target| !target.names.is_empty())
            .collect()
    }
}

/// A rebuild's shadow target being filled page by page: what it knows of
/// the rows in its tables, and the rows of the page before (being written
/// while the next is projected).
struct Filling {
    target: Target,
    written: Written,
    prev: Option<Arc<PageRows>>,
}

/// Decodes a page of events once for every target that applies it.
fn decode_page(events: &[RecordedEvent]) -> Result<Vec<LedgerEvent>, ReadModelError> {
    events.iter().map(projections::decode).collect()
}

/// Checks that `events`, read after position `from`, start right after it.
fn contiguous(from: Position, events: &[RecordedEvent]) -> Result<(), ReadModelError> {
    match events.first() {
        Some(first) if first.position != from + 1 => Err(ReadModelError::Corrupt(format!(
            "the log skips from position {from} to {}",
            first.position
        ))),
        _ => Ok(()),
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RebuildReport {
    pub projections: Vec<String>,
    /// The position the swapped-in tables were built to.
    pub position: Position,
    /// Events applied to the shadow tables.
    pub events: u64,
}

/// How long the swap waits for the live tables before it lets go of
/// those it holds and tries again: well under PostgreSQL's
/// `deadlock_timeout` (1 s by default), so that a query waiting on a
/// table the swap holds is let through before anyone is called
/// deadlocked.
const SWAP_LOCK_WAIT: Duration = Duration::from_millis(100);
/// Most attempts at the swap's locks; between them the swap waits
/// [`SWAP_LOCK_WAIT`] times the attempt number (about 2 minutes in all).
const SWAP_LOCK_ATTEMPTS_MAX: u32 = 50;

/// PostgreSQL's SQLSTATE for a lock not granted within `lock_timeout`.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// The names of the tables `names` own, in the order of `schema::tables`.
fn live_tables(names: &[ProjectionName]) -> Vec<&'static str> {
    names
        .iter()
        .flat_map(|name| schema::tables(*name))
        .map(|table| table.name)
        .collect()
}

/// PostgreSQL: takes the live `tables` for a swap (or for recreating them
/// after a schema change), all or none. A query takes its tables one by
/// one in the order it names them, which is not the swap's order (the
/// resource lookup reads `rm_resource_scopes` before `rm_resources`). A
/// swap that held `rm_resources` while waiting for `rm_resource_scopes`,
/// behind a query holding that and waiting for `rm_resources`, was a
/// deadlock: PostgreSQL aborted one of the two, the query or the whole
/// rebuild. Here the swap waits [`SWAP_LOCK_WAIT`] at most, then gives
/// back what it took and tries again, so the query goes first.
async fn lock_live_tables(tx: &mut Tx, tables: &[&str]) -> Result<(), ReadModelError> {
    use sqlx::Executor as _;
    let super::db::Exec::Postgres(conn) = tx.exec() else {
        // SQLite locks the whole database; nothing to order.
        return Ok(());
    };
    // Those that exist (a projection new to this database has none), in
    // the order given.
    let existing: Vec<String> = sqlx::query_scalar(
        "SELECT t.name FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n) \
         WHERE to_regclass(t.name) IS NOT NULL ORDER BY t.n",
    )
    .bind(tables)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    if existing.is_empty() {
        return Ok(());
    }
    let tables = existing.join(", ");
    let lock = format!("LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE");
    let wait = format!("SET LOCAL lock_timeout = {}", SWAP_LOCK_WAIT.as_millis());
    for attempt in 1..=SWAP_LOCK_ATTEMPTS_MAX {
        conn.execute("SAVEPOINT swap_lock")
            .await
            .map_err(db_error)?;
        // Set inside the savepoint: rolling it back restores the timeout.
        conn.execute(wait.as_str()).await.map_err(db_error)?;
        match conn.execute(lock.as_str()).await {
            Ok(_) => {
                conn.execute("RELEASE SAVEPOINT swap_lock")
                    .await
                    .map_err(db_error)?;
                // The renames need no more waiting: the tables are held.
                conn.execute("SET LOCAL lock_timeout = 0")
                    .await
                    .map_err(db_error)?;
                return Ok(());
            }
            Err(sqlx::Error::Database(error))
                if error.code().as_deref() == Some(LOCK_NOT_AVAILABLE) =>
            {
                conn.execute("ROLLBACK TO SAVEPOINT swap_lock")
                    .await
                    .map_err(db_error)?;
                tokio::time::sleep(SWAP_LOCK_WAIT * attempt).await;
            }
            Err(error) => return Err(db_error(error)),
        }
    }
    Err(ReadModelError::Unavailable(format!(
        "could not take the live tables ({tables}) from the queries reading them in \
         {SWAP_LOCK_ATTEMPTS_MAX} attempts; the live tables are unchanged: try again when \
         fewer queries are running"
    )))
}

async fn ddl_lock(tx: &mut Tx, backend: Backend) -> Result<(), ReadModelError> {
    if backend == Backend::Postgres {
        tx.exec()
            .execute(
                "SELECT pg_advisory_xact_lock($1)",
                vec![DDL_LOCK_KEY.into()],
            )
            .await?;
    }
    Ok(())
}

/// Which keys and secondary indexes `create_tables` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Indexes {
    /// With the tables (live tables, filled page by page).
    Now,
    /// Later, by `create_indexes` (a rebuild's tables, filled first),
    /// except those the writes need ([`schema::Table::indexes_serve_writes`],
    /// [`schema::Table::key_serves_writes`]).
    Later,
}

/// Whether a rebuild adds `table`'s primary key after filling it.
fn key_later(backend: Backend, table: &schema::Table) -> bool {
    backend == Backend::Postgres && !table.key_serves_writes
}

async fn create_tables(
    tx: &mut Tx,
    backend: Backend,
    name: ProjectionName,
    suffix: &str,
    generation: i64,
    indexes: Indexes,
) -> Result<(), ReadModelError> {
    for table in schema::tables(name) {
        tx.exec()
            .raw(&schema::drop_if_exists(table, suffix))
            .await?;
        let statements = match indexes {
            Indexes::Now => schema::create(backend, table, suffix, generation),
            Indexes::Later => {
                let key = if key_later(backend, table) {
                    schema::Key::Later
                } else {
                    schema::Key::Now
                };
                let mut statements = vec![schema::create_table(
                    backend, table, suffix, generation, key,
                )];
                if table.indexes_serve_writes {
                    statements.extend(schema::create_indexes(table, suffix, generation));
                }
                statements
            }
        };
        for statement in statements {
            tx.exec().raw(&statement).await?;
        }
    }
    Ok(())
}

/// Creates the keys and secondary indexes that `create_tables` left for
/// later.
async fn create_indexes(
    tx: &mut Tx,
    backend: Backend,
    name: ProjectionName,
    suffix: &str,
    generation: i64,
) -> Result<(), ReadModelError> {
    for table in schema::tables(name) {
        if key_later(backend, table) {
            tx.exec()
                .raw(&schema::add_primary_key(table, suffix, generation))
                .await?;
        }
        if table.indexes_serve_writes {
            continue;
        }
        for statement in schema::create_indexes(table, suffix, generation) {
            tx.exec().raw(&statement).await?;
        }
    }
    Ok(())
}

/// The checkpoint rows of `keys`: (position, generation, schema version).
async fn checkpoint_rows(
    tx: &mut Tx,
    backend: Backend,
    keys: &[String],
) -> Result<BTreeMap<String, (Position, i64, i64)>, ReadModelError> {
    let mut keys = keys.to_vec();
    keys.sort();
    // Locked in key order (PostgreSQL), the same order every runner and
    // rebuild uses, so that two of them never deadlock.
    let lock = if backend == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let sql = format!(
        "SELECT projection, position, generation, schema_version FROM read_model_checkpoints \
         WHERE projection IN ({}) ORDER BY projection{lock}",
        super::db::ordered_placeholders(backend, 1, keys.len())
    );
    let rows = tx
        .exec()
        .fetch_all(&sql, keys.iter().map(|k| Val::from(k.as_str())).collect())
        .await?;
    let mut found = BTreeMap::new();
    for row in rows {
        found.insert(
            row.text("projection")?,
            (
                row.pos("position")?,
                row.int("generation")?,
                row.int("schema_version")?,
            ),
        );
    }
    Ok(found)
}

async fn set_checkpoint(
    tx: &mut Tx,
    key: &str,
    position: Position,
    generation: i64,
) -> Result<(), ReadModelError> {
    tx.exec()
        .execute(
            "INSERT INTO read_model_checkpoints (projection, position, generation, schema_version) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (projection) DO UPDATE SET \
             position = excluded.position, generation = excluded.generation, \
             schema_version = excluded.schema_version",
            vec![
                key.into(),
                position.into(),
                generation.into(),
                SCHEMA_VERSION.into(),
            ],
        )
        .await?;
    Ok(())
}

/// Creates the tables of projections that have none, and recreates (empty)
/// those whose schema version changed.
pub(super) async fn ensure_schema(models: &ReadModels) -> Result<(), ReadModelError> {
    let backend = models.backend();
    let mut tx = models.begin().await?;
    ddl_lock(&mut tx, backend).await?;
    let keys: Vec<String> = ProjectionName::ALL
        .iter()
        .map(|n| n.as_str().to_owned())
        .collect();
    let rows = checkpoint_rows(&mut tx, backend, &keys).await?;
    let changed: Vec<ProjectionName> = ProjectionName::ALL
        .into_iter()
        .filter(|name| {
            rows.get(name.as_str())
                .is_some_and(|(_, _, version)| *version != SCHEMA_VERSION)
        })
        .collect();
    // Another process may be answering queries from the old tables.
    let mut live = live_tables(&changed);
    live.extend(schema::RETIRED);
    lock_live_tables(&mut tx, &live).await?;
    for table in schema::RETIRED {
        for suffix in ["", SHADOW] {
            tx.exec()
                .raw(&format!("DROP TABLE IF EXISTS {table}{suffix}"))
                .await?;
        }
    }
    for name in ProjectionName::ALL {
        let generation = match rows.get(name.as_str()) {
            Some((_, _, version)) if *version == SCHEMA_VERSION => continue,
            Some((_, generation, version)) => {
                tracing::warn!(
                    projection = %name,
                    stored = version,
                    current = SCHEMA_VERSION,
                    "read-model schema changed; the projection is rebuilt from the log"
                );
                generation + 1
            }
            None => 0,
        };
        // A rebuild that never finished left its shadow tables at the next
        // generation, whose index names the new tables are about to take.
        for table in schema::tables(name) {
            tx.exec()
                .raw(&schema::drop_if_exists(table, SHADOW))
                .await?;
        }
        tx.exec()
            .execute(
                "DELETE FROM read_model_checkpoints WHERE projection = $1",
                vec![format!("{name}@rebuild").into()],
            )
            .await?;
        create_tables(&mut tx, backend, name, "", generation, Indexes::Now).await?;
        set_checkpoint(&mut tx, name.as_str(), 0, generation).await?;
    }
    tx.commit().await
}

impl ReadModels {
    /// The checkpoint of every projection (and of rebuilds in progress).
    pub async fn checkpoints(&self) -> Result<Vec<(String, Position)>, ReadModelError> {
        let mut conn = self.conn().await?;
        let rows = conn
            .exec()
            .fetch_all(
                "SELECT projection, position FROM read_model_checkpoints ORDER BY projection",
                vec![],
            )
            .await?;
        rows.iter()
            .map(|row| Ok((row.text("projection")?, row.pos("position")?)))
            .collect()
    }

    async fn min_checkpoint(&self, target: &Target) -> Result<Position, ReadModelError> {
        let wanted: Vec<String> = target.names.iter().map(|n| target.key(*n)).collect();
        Ok(self
            .checkpoints()
            .await?
            .into_iter()
            .filter(|(key, _)| wanted.contains(key))
            .map(|(_, position)| position)
            .min()
            .unwrap_or(0))
    }

    /// Applies `events` to `sql`, skipping those at or below each
    /// projection's checkpoint.
    async fn project(
        sql: &mut SqlTx<'_>,
        target: &Target,
        checkpoints: &BTreeMap<ProjectionName, Position>,
        events: &[RecordedEvent],
        decoded: &[LedgerEvent],
    ) -> Result<(), ReadModelError> {
        for (recorded, event) in events.iter().zip(decoded) {
            for name in &target.names {
                if recorded.position > checkpoints.get(name).copied().unwrap_or(0) {
                    projections::apply(*name, sql, recorded, event).await?;
                }
            }
        }
        Ok(())
    }

    /// Applies `events` to the target inside `tx`, skipping those at or
    /// below each projection's checkpoint, and writes the rows (the
    /// caller moves the checkpoints and commits).
    async fn apply_events(
        tx: &mut Tx,
        target: &Target,
        checkpoints: &BTreeMap<ProjectionName, Position>,
        events: &[RecordedEvent],
        decoded: &[LedgerEvent],
    ) -> Result<(), ReadModelError> {
        let mut sql = SqlTx::new(Reader::Tx(tx.exec()), target.suffix(), None, None);
        Self::project(&mut sql, target, checkpoints, events, decoded).await?;
        let rows = sql.finish();
        rows.write(&mut tx.exec(), target.suffix()).await
    }

    /// One page for `target`: read after the lowest checkpoint, apply,
    /// move the checkpoints, commit. Returns the events applied (0 when
    /// the target is at the head).
    async fn page(
        &self,
        store: &dyn EventStore,
        target: &Target,
        page_events_max: usize,
    ) -> Result<usize, ReadModelError> {
        let from = self.min_checkpoint(target).await?;
        let events = store
            .read_all(from, page_events_max.clamp(1, PAGE_EVENTS_MAX))
            .await?;
        self.apply_page(target, from, &events).await
    }

    /// Opens the transaction of a page read after position `from` for
    /// `target`, with the target's checkpoints locked; `None` when one
    /// moved back below `from` meanwhile (a schema reset; read again from
    /// the checkpoints).
    async fn begin_page(
        &self,
        target: &Target,
        from: Position,
    ) -> Result<Option<(Tx, BTreeMap<ProjectionName, Position>)>, ReadModelError> {
        let mut tx = self.begin().await?;
        let keys: Vec<String> = target.names.iter().map(|n| target.key(*n)).collect();
        let rows = checkpoint_rows(&mut tx, self.backend(), &keys).await?;
        let mut checkpoints = BTreeMap::new();
        for name in &target.names {
            let Some((position, _, _)) = rows.get(&target.key(*name)) else {
                return Err(ReadModelError::Corrupt(format!(
                    "no checkpoint row for {}",
                    target.key(*name)
                )));
            };
            if *position < from {
                return Ok(None);
            }
            checkpoints.insert(*name, *position);
        }
        Ok(Some((tx, checkpoints)))
    }

    /// Moves the checkpoints of `target` up to `last` and commits the
    /// page's transaction.
    async fn commit_page(
        &self,
        mut tx: Tx,
        target: &Target,
        last: Position,
    ) -> Result<(), ReadModelError> {
        self.fault_point()?;
        for name in &target.names {
            tx.exec()
                .execute(
                    "UPDATE read_model_checkpoints SET position = $1 \
                     WHERE projection = $2 AND position < $1",
                    vec![last.into(), target.key(*name).into()],
                )
                .await?;
        }
        tx.commit().await
    }

    /// Applies `events`, read after position `from`, to `target` and
    /// moves its checkpoints, in one transaction. Returns the events
    /// applied: 0 when there were none, or when a checkpoint moved back
    /// below `from` meanwhile (read again from the checkpoints).
    async fn apply_page(
        &self,
        target: &Target,
        from: Position,
        events: &[RecordedEvent],
    ) -> Result<usize, ReadModelError> {
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(0);
        };
        contiguous(from, events)?;
        let decoded = decode_page(events)?;
        let Some((mut tx, checkpoints)) = self.begin_page(target, from).await? else {
            return Ok(0);
        };
        Self::apply_events(&mut tx, target, &checkpoints, events, &decoded).await?;
        self.commit_page(tx, target, last).await?;
        Ok(events.len())
    }

    /// Applies pages to `target` until a page applies nothing (the log's
    /// head, or a checkpoint moved back under it, as [`Self::page`]
    /// says); returns the events applied. The next page is read while one
    /// is applied, so that reading the log (the event store's
    /// connections) and writing the read models (this pool's) overlap
    /// instead of taking turns.
    async fn fill(&self, store: &dyn EventStore, target: &Target) -> Result<u64, ReadModelError> {
        let mut applied = 0_u64;
        let mut from = self.min_checkpoint(target).await?;
        let mut events = store.read_all(from, PAGE_EVENTS_MAX).await?;
        while let Some(last) = events.last().map(|e| e.position) {
            let (done, next) = tokio::join!(
                self.apply_page(target, from, &events),
                store.read_all_ahead(last, PAGE_EVENTS_MAX)
            );
            if done? == 0 {
                break;
            }
            applied += events.len() as u64;
            from = last;
            events = next?;
        }
        Ok(applied)
    }

    /// Projects one page of events for a rebuild's `filling`, outside any
    /// transaction: rows of the page before come from `filling.prev`,
    /// rows the rebuild never wrote are known absent, and the rest are
    /// read as committed.
    async fn project_ahead(
        &self,
        filling: &mut Filling,
        events: &[RecordedEvent],
        decoded: &[LedgerEvent],
    ) -> Result<Arc<PageRows>, ReadModelError> {
        let mut sql = SqlTx::new(
            Reader::Pool(self, None),
            filling.target.suffix(),
            Some(&mut filling.written),
            filling.prev.as_deref(),
        );
        // A rebuild's shadow checkpoints all stand at the page's start,
        // which `write_ahead` checks before it writes.
        Self::project(&mut sql, &filling.target, &BTreeMap::new(), events, decoded).await?;
        Ok(Arc::new(sql.finish()))
    }

    /// Writes the rows `project_ahead` made of the page after `from` up
    /// to `last`, and moves the checkpoints of `target` to `last`, in one
    /// transaction. Returns false, writing nothing, when a checkpoint is
    /// not at `from` (moved under the rebuild): the swap then catches the
    /// shadow tables up from their checkpoints.
    async fn write_ahead(
        &self,
        target: &Target,
        from: Position,
        last: Position,
        rows: &PageRows,
    ) -> Result<bool, ReadModelError> {
        let Some((mut tx, checkpoints)) = self.begin_page(target, from).await? else {
            return Ok(false);
        };
        if checkpoints.values().any(|at| *at != from) {
            return Ok(false);
        }
        rows.write(&mut tx.exec(), target.suffix()).await?;
        self.commit_page(tx, target, last).await?;
        Ok(true)
    }

    /// A rebuild's fill of its shadow targets, from their checkpoints to
    /// the log's head; returns the events applied. Like [`Self::fill`],
    /// but in three stages at once: while the rows of one page are
    /// written (a task of its own, every target in a transaction of its
    /// own), the next page is projected in memory and the one after is
    /// read. A rebuild is the only writer of its shadow tables, so the
    /// projection needs no transaction: it finds the rows of the page in
    /// flight in `prev`, and reads the others as committed.
    async fn fill_ahead(
        &self,
        store: &dyn EventStore,
        fillings: &mut [Filling],
    ) -> Result<u64, ReadModelError> {
        if fillings.is_empty() {
            return Ok(0);
        }
        let mut from = Position::MAX;
        for filling in fillings.iter() {
            from = from.min(self.min_checkpoint(&filling.target).await?);
        }
        let mut applied = 0_u64;
        let page_events = self.rebuild_page_events;
        let mut events = store.read_all(from, page_events).await?;
        let mut writing: Option<(tokio::task::JoinHandle<Result<bool, ReadModelError>>, u64)> =
            None;
        loop {
            let last = events.last().map(|e| e.position);
            let project = async {
                if last.is_none() {
                    return Ok(Vec::new());
                }
                contiguous(from, &events)?;
                let decoded = decode_page(&events)?;
                try_join_all(
                    fillings
                        .iter_mut()
                        .map(|filling| self.project_ahead(filling, &events, &decoded)),
                )
                .await
            };
            let read_ahead = async {
                match last {
                    Some(last) => store.read_all_ahead(last, page_events).await,
                    None => Ok(Vec::new()),
                }
            };
            let write_done = async {
                match writing.take() {
                    Some((task, events)) => match task.await {
                        Ok(Ok(true)) => Ok(Some(events)),
                        Ok(Ok(false)) => Ok(None),
                        Ok(Err(e)) => Err(e),
                        Err(e) => Err(ReadModelError::Unavailable(format!(
                            "a rebuild's page write stopped: {e}"
                        ))),
                    },
                    None => Ok(Some(0)),
                }
            };
            // All three have finished here, so no write is left running
            // when one of them failed.
            let (projected, next, wrote) = tokio::join!(project, read_ahead, write_done);
            let Some(wrote) = wrote? else {
                break;
            };
            applied += wrote;
            let (Some(last), pages, next) = (last, projected?, next?) else {
                break;
            };
            for (filling, rows) in fillings.iter_mut().zip(&pages) {
                filling.prev = Some(Arc::clone(rows));
            }
            let models = self.clone();
            let targets: Vec<Target> = fillings.iter().map(|f| f.target.clone()).collect();
            let page_from = from;
            writing = Some((
                tokio::spawn(async move {
                    let done =
                        try_join_all(targets.iter().zip(&pages).map(|(target, rows)| {
                            models.write_ahead(target, page_from, last, rows)
                        }))
                        .await?;
                    Ok(done.iter().all(|wrote| *wrote))
                }),
                events.len() as u64,
            ));
            from = last;
            events = next;
        }
        Ok(applied)
    }

    /// Applies one page of at most `page_events_max` events to every live
    /// projection. Returns the events applied; 0 means caught up.
    pub async fn run_page(
        &self,
        store: &dyn EventStore,
        page_events_max: usize,
    ) -> Result<usize, ReadModelError> {
        let target = Target {
            names: ProjectionName::ALL.to_vec(),
            shadow: false,
        };
        self.page(store, &target, page_events_max).await
    }

    /// Applies pages until every live projection is at the head the log
    /// had when it was read; returns the lowest checkpoint reached.
    pub async fn catch_up(&self, store: &dyn EventStore) -> Result<Position, ReadModelError> {
        let target = Target {
            names: ProjectionName::ALL.to_vec(),
            shadow: false,
        };
        self.fill(store, &target).await?;
        self.min_checkpoint(&target).await
    }

    /// Follows the log until `stop` turns true (or its sender is dropped):
    /// catches up, then waits for the log to move. Returns on the first
    /// error; restarting it loses nothing, since every committed page
    /// moved its checkpoint and an uncommitted one left no row behind.
    pub async fn follow(
        &self,
        store: &dyn EventStore,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), ReadModelError> {
        loop {
            let at = self.catch_up(store).await?;
            if *stop.borrow() {
                return Ok(());
            }
            tokio::select! {
                moved = store.wait_for(at, FOLLOW_WAIT) => { moved?; }
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Rebuilds `which` (every projection when `None`) from position 0
    /// into shadow tables, then swaps them in within one transaction, so
    /// that queries answer from the old tables until the new ones are
    /// complete. The live runner may keep running meanwhile: the swap
    /// first brings the shadow tables up to the live checkpoint.
    pub async fn rebuild(
        &self,
        store: &dyn EventStore,
        which: Option<ProjectionName>,
    ) -> Result<RebuildReport, ReadModelError> {
        let backend = self.backend();
        let names: Vec<ProjectionName> = which.map_or(ProjectionName::ALL.to_vec(), |n| vec![n]);
        let live = Target {
            names: names.clone(),
            shadow: false,
        };
        let shadow = Target {
            names: names.clone(),
            shadow: true,
        };
        let live_keys: Vec<String> = names.iter().map(|n| live.key(*n)).collect();

        // Prepare empty shadow tables (a crashed rebuild's are dropped).
        let mut generations = BTreeMap::new();
        let mut tx = self.begin().await?;
        ddl_lock(&mut tx, backend).await?;
        let rows = checkpoint_rows(&mut tx, backend, &live_keys).await?;
        for name in &names {
            let generation = rows.get(name.as_str()).map_or(0, |(_, g, _)| *g) + 1;
            create_tables(&mut tx, backend, *name, SHADOW, generation, Indexes::Later).await?;
            set_checkpoint(&mut tx, &shadow.key(*name), 0, generation).await?;
            generations.insert(*name, generation);
        }
        tx.commit().await?;

        // Fill them page by page; queries still read the live tables.
        let mut fillings: Vec<Filling> = shadow
            .groups(backend)
            .into_iter()
            .map(|target| Filling {
                target,
                written: Written::default(),
                prev: None,
            })
            .collect();
        let mut applied = self.fill_ahead(store, &mut fillings).await?;
        // What `Written` holds is of no use past the fill.
        drop(fillings);

        // Index them now that they are full; the pages that catch up in
        // the swap below find their rows by primary key only.
        let mut tx = self.begin().await?;
        ddl_lock(&mut tx, backend).await?;
        for name in &names {
            let generation = generations.get(name).copied().unwrap_or(0);
            create_indexes(&mut tx, backend, *name, SHADOW, generation).await?;
        }
        tx.commit().await?;
        if backend == Backend::Postgres {
            // Tables filled at once have no statistics until autovacuum
            // gets to them; without them the planner guessed a side table
            // lookup to match 40 times the rows it does and read a whole
            // table for an audit lookup (19 ms instead of 0.7 ms at 200k
            // events).
            let mut tx = self.begin().await?;
            for table in live_tables(&names) {
                tx.exec().raw(&format!("ANALYZE {table}{SHADOW}")).await?;
            }
            tx.commit().await?;
        }

        // Swap: catch the shadow up with the live checkpoint, then rename.
        let mut tx = self.begin().await?;
        ddl_lock(&mut tx, backend).await?;
        let mut all_keys = live_keys.clone();
        all_keys.extend(names.iter().map(|n| shadow.key(*n)));
        let rows = checkpoint_rows(&mut tx, backend, &all_keys).await?;
        let position_of = |key: &str| rows.get(key).map_or(0, |(p, _, _)| *p);
        let mut shadow_at: BTreeMap<ProjectionName, Position> = names
            .iter()
            .map(|n| (*n, position_of(&shadow.key(*n))))
            .collect();
        let live_at = names
            .iter()
            .map(|n| position_of(n.as_str()))
            .max()
            .unwrap_or(0);
        loop {
            let from = shadow_at.values().copied().min().unwrap_or(0);
            if from >= live_at {
                break;
            }
            let limit = usize::try_from(live_at - from)
                .unwrap_or(PAGE_EVENTS_MAX)
                .min(PAGE_EVENTS_MAX);
            let events = store.read_all(from, limit).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                return Err(ReadModelError::Corrupt(format!(
                    "the live checkpoint {live_at} is past the log's head"
                )));
            };
            let decoded = decode_page(&events)?;
            Self::apply_events(&mut tx, &shadow, &shadow_at, &events, &decoded).await?;
            applied += events.len() as u64;
            for at in shadow_at.values_mut() {
                *at = (*at).max(last);
            }
        }
        let position = shadow_at.values().copied().min().unwrap_or(0);
        lock_live_tables(&mut tx, &live_tables(&names)).await?;
        for name in &names {
            for table in schema::tables(*name) {
                tx.exec().raw(&schema::drop_if_exists(table, "")).await?;
                tx.exec()
                    .raw(&format!(
                        "ALTER TABLE {}{SHADOW} RENAME TO {}",
                        table.name, table.name
                    ))
                    .await?;
            }
            let generation = generations.get(name).copied().unwrap_or(0);
            set_checkpoint(
                &mut tx,
                name.as_str(),
                position.max(position_of(name.as_str())),
                generation,
            )
            .await?;
            tx.exec()
                .execute(
                    "DELETE FROM read_model_checkpoints WHERE projection = $1",
                    vec![shadow.key(*name).into()],
                )
                .await?;
        }
        tx.commit().await?;
        Ok(RebuildReport {
            projections: names.iter().map(|n| n.as_str().to_owned()).collect(),
            position,
            events: applied,
        })
    }
}
