//! The SQLite backend: one file, WAL, the embedded default.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use commands::log::{rfc3339_micros, AppendRequest, Appended, Position, StoreError, Tag};
use sqlx::error::BoxDynError;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Arguments, ConnectOptions, Row};

use super::plan::{self, Lookups, Memory, Outcome, Plan, Wanted};
use super::row::{RawEvent, RawId, RawTime};
use super::writer::{BatchCommitter, Committed};
use super::{corrupt, db_int, from_db, unavailable, READ_POOL_CONNECTIONS_MAX};

/// WAL pages after which a commit of the writer copies the WAL back into
/// the database (SQLite's default is 1,000). A batch of 64 one-event
/// appends changes a few hundred pages, mostly index leaves that the next
/// batches change again: a checkpoint every few batches wrote the same
/// pages over and over, inside the commit that callers wait for. At this
/// size the WAL grows to about 32 MB between checkpoints.
const WRITER_CHECKPOINT_PAGES: &str = "8000";

/// The settings of the writer's connection beyond WAL and
/// `synchronous=FULL`: statement journals in memory (see [`open`]) and
/// [`WRITER_CHECKPOINT_PAGES`]. Neither weakens durability. Public so that
/// the benchmark's plain-SQL baselines write as the writer does.
pub const WRITER_PRAGMAS: [(&str, &str); 2] = [
    ("temp_store", "memory"),
    ("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES),
];

/// Rows of the recent tag table (`event_tags_recent`, see migration 0500)
/// at which the writer moves them into the settled one: about 16 batches
/// of 64 two-tag events. Each batch's tags change every page of a table
/// this size (a few dozen), and each move writes the settled leaves those
/// rows fall on once, where inserting every batch's tags there wrote one
/// leaf per tag row.
///
/// The writer counts the rows it adds (and counts the table when it
/// connects), so that no append pays for counting them. Another
/// process's writer adds rows it does not count, and moves rows it did
/// count: the table holds at most this many rows per writing process,
/// plus one batch's. A batch with more tag rows than this writes them
/// into the settled table itself (they are many rows for each leaf), so
/// that no batch moves more than a few thousand rows of another.
pub const RECENT_TAG_ROWS_MAX: usize = 2048;

/// Moves every recent tag row into the settled table, inside an append's
/// transaction; the index (the union of both) stays the same. Without a
/// `WHERE`, SQLite empties the recent table at once rather than row by
/// row. A row the settled table holds already is one fact stored twice
/// (a row written there by hand ahead of its event), and is kept once:
/// refusing it would refuse every append after it. Public, with
/// [`RECENT_TAG_ROWS_MAX`], so that the benchmark's plain-SQL baseline of
/// a batch writes as the writer does.
pub const SETTLE_RECENT_TAGS: &str = "INSERT OR IGNORE INTO event_tags_settled (tag, position) \
         SELECT tag, position FROM event_tags_recent; \
     DELETE FROM event_tags_recent;";

/// What opens every append's transaction: it takes the write lock.
const BEGIN: &str = "BEGIN IMMEDIATE;";

/// How long a writer waits for another process's write transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

const COLUMNS: &str = "position, stream, stream_version, event_id, event_type, schema_version, \
                       occurred_at, recorded_at, payload, metadata, tags, hash";

/// Opens (creating if needed) the database file and applies migrations.
pub(crate) async fn open(path: &str) -> Result<(SqlitePool, SqliteWriter), StoreError> {
    if path.is_empty() || path.starts_with(":memory:") {
        return Err(StoreError::InvalidEvent(
            "a SQLite store needs a file path, e.g. sqlite://./data/lethe.db".into(),
        ));
    }
    if let Some(parent) = Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
    }
    let options = SqliteConnectOptions::from_str("sqlite:")
        .map_err(unavailable)?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: an acknowledged append survives a power loss. With WAL,
        // NORMAL would only lose the last commits, but the ledger promises
        // that what it acknowledged is kept; group commit pays one fsync
        // per batch, not per append.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = crate::pools::without_reaper::<sqlx::Sqlite>()
        .max_connections(READ_POOL_CONNECTIONS_MAX)
        .connect_with(options.clone())
        .await
        .map_err(unavailable)?;
    sqlx::migrate!("migrations/sqlite")
        .run(&pool)
        .await
        .map_err(|e| StoreError::Unavailable(format!("migrating the SQLite store: {e}")))?;
    Ok((
        pool,
        SqliteWriter {
            // Each of the writer's statements inserts many rows inside
            // a transaction, so SQLite keeps a statement journal for
            // it: the pages it changes, as they were, to undo it
            // alone. In temporary files that was two fifths of the
            // writer's page writes, and a file made and removed every
            // other batch; in memory it is a copy of no more pages
            // than one batch changes (at most `BATCH_EVENTS_MAX`
            // events, or one append). The guard table of
            // `guarded_calls` is temporary as well.
            options: WRITER_PRAGMAS
                .iter()
                .fold(options, |options, (name, value)| {
                    options.pragma(*name, *value)
                }),
            connection: None,
            recent_tag_rows: 0,
        },
    ))
}

fn raw(row: &SqliteRow) -> Result<RawEvent, sqlx::Error> {
    Ok(RawEvent {
        position: row.try_get(0)?,
        stream: row.try_get(1)?,
        stream_version: row.try_get(2)?,
        event_id: RawId::Text(row.try_get(3)?),
        event_type: row.try_get(4)?,
        schema_version: row.try_get(5)?,
        occurred_at: RawTime::Text(row.try_get(6)?),
        recorded_at: RawTime::Text(row.try_get(7)?),
        payload: row.try_get(8)?,
        metadata: row.try_get(9)?,
        tags: row.try_get(10)?,
        hash: row.try_get(11)?,
    })
}

fn raws(rows: &[SqliteRow]) -> Result<Vec<RawEvent>, StoreError> {
    rows.iter().map(|row| raw(row).map_err(from_db)).collect()
}

/// A JSON array bound as one parameter and unpacked with `json_each`, so
/// that lookups of any size use one cached statement.
fn json_list<T: serde::Serialize>(items: &[T]) -> Result<String, StoreError> {
    serde_json::to_string(items).map_err(|e| StoreError::InvalidEvent(e.to_string()))
}

pub(crate) async fn read_all(
    pool: &SqlitePool,
    after: Position,
    limit: usize,
) -> Result<Vec<RawEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"
    ))
    .bind(db_int(after))
    .bind(db_int(limit as u64))
    .fetch_all(pool)
    .await
    .map_err(from_db)?;
    raws(&rows)
}

pub(crate) async fn read_stream(
    pool: &SqlitePool,
    stream: &str,
    after_version: u64,
    limit: usize,
) -> Result<Vec<RawEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events WHERE stream = ?1 AND stream_version > ?2 \
         ORDER BY stream_version LIMIT ?3"
    ))
    .bind(stream)
    .bind(db_int(after_version))
    .bind(db_int(limit as u64))
    .fetch_all(pool)
    .await
    .map_err(from_db)?;
    raws(&rows)
}

pub(crate) async fn read_by_tags(
    pool: &SqlitePool,
    tags: &[Tag],
    after: Position,
    limit: usize,
) -> Result<Vec<RawEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events WHERE position IN ( \
             SELECT position FROM event_tags_settled \
             WHERE tag IN (SELECT value FROM json_each(?1)) AND position > ?2 \
             UNION \
             SELECT position FROM event_tags_recent \
             WHERE tag IN (SELECT value FROM json_each(?1)) AND position > ?2 \
             ORDER BY position LIMIT ?3) \
         ORDER BY position"
    ))
    .bind(json_list(tags)?)
    .bind(db_int(after))
    .bind(db_int(limit as u64))
    .fetch_all(pool)
    .await
    .map_err(from_db)?;
    raws(&rows)
}

pub(crate) async fn head(pool: &SqlitePool) -> Result<Position, StoreError> {
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(pool)
        .await
        .map_err(from_db)?;
    from_db_int(head)
}

/// The first of `expected` (position, tag) rows that the tag index does
/// not hold: one key lookup per row, in either of its two tables.
pub(crate) async fn missing_tag_row(
    pool: &SqlitePool,
    expected: &[(Position, &str)],
) -> Result<Option<(i64, String)>, StoreError> {
    let rows: Vec<(i64, &str)> = expected
        .iter()
        .map(|(position, tag)| (db_int(*position), *tag))
        .collect();
    let rows = serde_json::to_string(&rows).map_err(|e| corrupt(format!("tag rows: {e}")))?;
    sqlx::query_as(
        "SELECT position, tag FROM ( \
             SELECT CAST(j.value ->> 0 AS INTEGER) AS position, j.value ->> 1 AS tag \
             FROM json_each(?1) j) x \
         WHERE NOT EXISTS (SELECT 1 FROM event_tags_settled s \
                 WHERE s.tag = x.tag AND s.position = x.position) \
             AND NOT EXISTS (SELECT 1 FROM event_tags_recent r \
                 WHERE r.tag = x.tag AND r.position = x.position) \
         ORDER BY position, tag LIMIT 1",
    )
    .bind(rows)
    .fetch_optional(pool)
    .await
    .map_err(from_db)
}

/// How many distinct rows the tag index holds for positions 1 to `until`
/// (a row in both tables counts once: the lookups read their union).
pub(crate) async fn tag_row_count(pool: &SqlitePool, until: Position) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM event_tags_settled WHERE position BETWEEN 1 AND ?1) \
              + (SELECT COUNT(*) FROM event_tags_recent r WHERE position BETWEEN 1 AND ?1 \
                 AND NOT EXISTS (SELECT 1 FROM event_tags_settled s \
                     WHERE s.tag = r.tag AND s.position = r.position))",
    )
    .bind(db_int(until))
    .fetch_one(pool)
    .await
    .map_err(from_db)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The first tag index row at positions 1 to `until` whose event does not
/// carry its tag (or that has no event), by the events' stored tags.
pub(crate) async fn foreign_tag_row(
    pool: &SqlitePool,
    until: Position,
) -> Result<Option<(i64, String)>, StoreError> {
    sqlx::query_as(
        "SELECT t.position, t.tag FROM event_tags t LEFT JOIN events e ON e.position = t.position \
         WHERE t.position BETWEEN 1 AND ?1 AND (e.position IS NULL OR NOT EXISTS \
             (SELECT 1 FROM json_each(e.tags) j WHERE j.value = t.tag)) \
         ORDER BY t.position, t.tag LIMIT 1",
    )
    .bind(db_int(until))
    .fetch_optional(pool)
    .await
    .map_err(from_db)
}

/// The head the log records (`None`: no record) and the last position
/// it stores, read in one statement, so that an append committing
/// meanwhile moves neither or both.
pub(crate) async fn recorded_head(pool: &SqlitePool) -> Result<(Option<i64>, i64), StoreError> {
    sqlx::query_as(
        "SELECT (SELECT position FROM log_head), (SELECT COALESCE(MAX(position), 0) FROM events)",
    )
    .fetch_one(pool)
    .await
    .map_err(from_db)
}

fn from_db_int(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(format!("negative number {value} in the store")))
}

/// The SQLite writer's dedicated connection. `BEGIN IMMEDIATE` takes the
/// database's write lock up front, which serialises writers across
/// processes; the head is read after it, inside the transaction.
#[derive(Debug)]
pub(crate) struct SqliteWriter {
    options: SqliteConnectOptions,
    connection: Option<SqliteConnection>,
    /// Rows in `event_tags_recent` as far as this writer knows (see
    /// [`RECENT_TAG_ROWS_MAX`]).
    recent_tag_rows: usize,
}

/// A batch's calls ([`guarded_calls`]) and how many tag rows they add.
pub(crate) struct SqliteRows {
    calls: Vec<Call>,
    tag_rows: usize,
}

impl SqliteWriter {
    async fn connection(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        Ok(match &mut self.connection {
            Some(connection) => connection,
            slot => {
                let mut connection = self.options.connect().await.map_err(unavailable)?;
                sqlx::query("CREATE TEMP TABLE IF NOT EXISTS append_guard (ok INTEGER)")
                    .execute(&mut connection)
                    .await
                    .map_err(from_db)?;
                let recent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM event_tags_recent")
                    .fetch_one(&mut connection)
                    .await
                    .map_err(from_db)?;
                self.recent_tag_rows = usize::try_from(recent).unwrap_or(0);
                slot.insert(connection)
            }
        })
    }
}

#[async_trait]
impl BatchCommitter for SqliteWriter {
    type Rows = SqliteRows;

    fn rows(plan: &mut Plan<'_>) -> Result<SqliteRows, StoreError> {
        let tag_rows = recent_rows(plan);
        Ok(SqliteRows {
            calls: guarded_calls(plan)?,
            tag_rows,
        })
    }

    /// The calls of [`guarded_calls`]: one transaction, whose guard's
    /// verdict the last call answers. A repeated event id or idempotency
    /// key fails on a unique key, and the transaction is rolled back.
    async fn store(&mut self, rows: SqliteRows) -> Result<bool, StoreError> {
        let SqliteRows {
            mut calls,
            tag_rows,
        } = rows;
        // Connecting counts the recent tag rows.
        self.connection().await?;
        let settle = self.settle_due() && settle_first(&mut calls);
        let connection = self.connection().await?;
        let answers = match send(connection, calls).await {
            Ok(last) => last
                .iter()
                .map(|row| row.try_get::<bool, _>(0))
                .collect::<Result<Vec<bool>, _>>(),
            Err(error) => Err(error),
        };
        match answers {
            Ok(answers) => match answers.as_slice() {
                [stored] => {
                    self.count_recent(settle, tag_rows);
                    Ok(*stored)
                }
                answers => Err(corrupt(format!(
                    "the append's last statement gave {} answers, not one",
                    answers.len()
                ))),
            },
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                sqlx::query("ROLLBACK")
                    .execute(&mut *connection)
                    .await
                    .map(|_| false)
                    .map_err(from_db)
            }
            Err(error) => Err(from_db(error)),
        }
    }

    async fn commit(
        &mut self,
        memory: &mut Memory,
        batch: &[&AppendRequest],
    ) -> Result<Committed, StoreError> {
        self.connection().await?;
        let settle = self.settle_due();
        let stored = commit(self.connection().await?, memory, batch, settle).await?;
        self.count_recent(stored.settled, stored.tag_rows);
        Ok(stored.committed)
    }

    fn reset(&mut self) {
        self.connection = None;
    }
}

impl SqliteWriter {
    fn settle_due(&self) -> bool {
        self.recent_tag_rows >= RECENT_TAG_ROWS_MAX
    }

    /// After a committed transaction that added at most `tag_rows` rows
    /// to the recent table (none when its guard failed), and moved the
    /// recent ones first when `settled`.
    fn count_recent(&mut self, settled: bool, tag_rows: usize) {
        let before = if settled { 0 } else { self.recent_tag_rows };
        self.recent_tag_rows = before + tag_rows;
    }
}

/// The tag rows of `plan` that go into the recent table: all of them, or
/// none when they are more than [`RECENT_TAG_ROWS_MAX`].
fn recent_rows(plan: &Plan<'_>) -> usize {
    let rows = plan.tag_rows.len();
    if rows > RECENT_TAG_ROWS_MAX {
        0
    } else {
        rows
    }
}

/// Puts [`SETTLE_RECENT_TAGS`] into the first call, right after the
/// `BEGIN IMMEDIATE` that opens the transaction; `false` (nothing moved)
/// when that call does not open one. The call's text differs from the
/// usual one only in the batches that move the rows.
fn settle_first(calls: &mut [Call]) -> bool {
    let Some((sql, _)) = calls.first_mut() else {
        return false;
    };
    let Some(rest) = sql.strip_prefix(BEGIN) else {
        return false;
    };
    *sql = format!("{BEGIN} {SETTLE_RECENT_TAGS} {rest}");
    true
}

/// Decides and stores a batch in two calls into SQLite: `BEGIN IMMEDIATE`
/// with every lookup, then every insert with `COMMIT` (in more calls for
/// a large append, see [`Calls`]). Each call is one multi-statement
/// query. The lookups' keys travel as JSON arrays
/// (`json_each`), so that text never depends on the batch size; the rows
/// go in multi-row `VALUES` statements of a few sizes ([`VALUES_ROWS`]),
/// so those texts come back batch after batch and stay prepared. Calls,
/// not rows, are what cost here: each one is a hop to sqlx's SQLite
/// worker thread.
///
/// The transaction is opened and closed by the statements themselves; on
/// any error the writer drops this connection, which rolls it back.
async fn commit(
    connection: &mut SqliteConnection,
    memory: &mut Memory,
    batch: &[&AppendRequest],
    settle: bool,
) -> Result<Stored, StoreError> {
    let wanted = Wanted::of(batch);
    let ids: Vec<String> = wanted
        .event_ids
        .iter()
        .map(|id| id.hyphenated().to_string())
        .collect();
    type LookupRow = (
        i64,
        Option<String>,
        Option<i64>,
        i64,
        i64,
        i64,
        Option<Vec<u8>>,
    );
    // A correlated MAX per tag is one index seek each, however many
    // events carry the tag.
    let rows: Vec<LookupRow> = sqlx::query_as(
        "BEGIN IMMEDIATE; \
         SELECT 0, NULL, position, 0, 0, 0, hash FROM ( \
             SELECT position, hash FROM events ORDER BY position DESC LIMIT 1) \
         UNION ALL \
         SELECT 1, key, first_position, last_position, stream_version, 0, NULL \
             FROM idempotency_keys WHERE key IN (SELECT value FROM json_each(?1)) \
         UNION ALL \
         SELECT 2, event_id, position, stream_version, append_first, append_last, NULL \
             FROM events WHERE event_id IN (SELECT value FROM json_each(?2)) \
         UNION ALL \
         SELECT 3, value, (SELECT MAX(stream_version) FROM events WHERE stream = value), \
             0, 0, 0, NULL FROM json_each(?3) \
         UNION ALL \
         SELECT 4, value, NULLIF(MAX( \
                 COALESCE((SELECT MAX(position) FROM event_tags_settled WHERE tag = value), 0), \
                 COALESCE((SELECT MAX(position) FROM event_tags_recent WHERE tag = value), 0)), 0), \
             0, 0, 0, NULL FROM json_each(?4) \
         UNION ALL \
         SELECT 5, NULL, position, 0, 0, 0, NULL FROM log_head WHERE only_row = 1",
    )
    .bind(json_list(&wanted.idempotency_keys)?)
    .bind(json_list(&ids)?)
    .bind(json_list(&wanted.streams)?)
    .bind(json_list(&wanted.tags)?)
    .fetch_all(&mut *connection)
    .await
    .map_err(from_db)?;

    let mut recorded_head = None;
    let mut lookups = Lookups {
        complete: true,
        head: 0,
        head_hash: commands::log::GENESIS_HASH,
        idempotency_keys: HashMap::new(),
        event_ids: HashMap::new(),
        streams: HashMap::new(),
        tag_max: HashMap::new(),
    };
    for (kind, key, a, b, c, d, hash) in rows {
        let key = || {
            key.clone()
                .ok_or_else(|| corrupt("a lookup row without its key"))
        };
        let a = || a.ok_or_else(|| corrupt("a lookup row without its position"));
        match kind {
            0 => {
                let position = a()?;
                lookups.head = from_db_int(position)?;
                lookups.head_hash = hash
                    .unwrap_or_default()
                    .try_into()
                    .map_err(|_| corrupt(format!("hash at position {position} is not 32 bytes")))?;
            }
            1 => {
                lookups
                    .idempotency_keys
                    .insert(key()?, appended(a()?, b, c)?);
            }
            2 => {
                let id = uuid::Uuid::parse_str(&key()?)
                    .map_err(|e| corrupt(format!("event id: {e}")))?;
                let (position, version, first, last) = (a()?, b, c, d);
                // Versions and positions of one append are both contiguous.
                lookups
                    .event_ids
                    .insert(id, appended(first, last, version + (last - position))?);
            }
            3 => {
                // No row: the stream has no event yet.
                if let Ok(version) = a() {
                    lookups.streams.insert(key()?, from_db_int(version)?);
                }
            }
            4 => {
                if let Ok(max) = a() {
                    lookups.tag_max.insert(key()?, from_db_int(max)?);
                }
            }
            5 => recorded_head = Some(from_db_int(a()?)?),
            other => return Err(corrupt(format!("unknown lookup kind {other}"))),
        }
    }
    super::check_recorded_head(recorded_head, lookups.head)?;
    let mut plan = plan::plan(batch, lookups, Utc::now());

    let mut outcomes = Vec::with_capacity(plan.outcomes.len());
    for outcome in std::mem::take(&mut plan.outcomes) {
        outcomes.push(match outcome {
            Outcome::Done(result) => result,
            Outcome::CommittedConflict { tags, after } => {
                let position: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(position) FROM ( \
                         SELECT MIN(position) AS position FROM event_tags_settled \
                         WHERE tag IN (SELECT value FROM json_each(?1)) AND position > ?2 \
                         UNION ALL \
                         SELECT MIN(position) FROM event_tags_recent \
                         WHERE tag IN (SELECT value FROM json_each(?1)) AND position > ?2)",
                )
                .bind(json_list(&tags)?)
                .bind(db_int(after))
                .fetch_one(&mut *connection)
                .await
                .map_err(from_db)?;
                let position = position
                    .ok_or_else(|| corrupt("the tag index changed inside a transaction"))?;
                let stored: String =
                    sqlx::query_scalar("SELECT tags FROM events WHERE position = ?1")
                        .bind(position)
                        .fetch_one(&mut *connection)
                        .await
                        .map_err(from_db)?;
                Err(super::conflict(&tags, &stored, from_db_int(position)?)?)
            }
        });
    }

    let tag_rows = recent_rows(&plan);
    // A batch with nothing to store moves nothing either.
    let settled = settle && !plan.rows.is_empty();
    if plan.rows.is_empty() {
        sqlx::query("COMMIT")
            .execute(&mut *connection)
            .await
            .map_err(from_db)?;
    } else {
        let mut calls = Calls::default();
        if settled {
            calls.statement(SETTLE_RECENT_TAGS);
        }
        push_inserts(&mut plan, "", &mut calls)?;
        calls.statement("COMMIT;");
        send(connection, calls.finish()).await.map_err(from_db)?;
    }
    memory.committed(&plan);
    Ok(Stored {
        committed: Committed {
            outcomes,
            head: plan.head,
        },
        settled,
        tag_rows,
    })
}

/// What [`commit`] stored: its answer, whether it moved the recent tag
/// rows first, and how many tag rows it added.
struct Stored {
    committed: Committed,
    settled: bool,
    tag_rows: usize,
}

/// Row counts of the multi-row `VALUES` statements that carry a batch's
/// rows, largest first. A table's rows go in statements of the largest
/// size, and what is left in one statement of the smallest size that
/// holds it, padded with rows of NULLs that the statement skips. So a
/// batch's statements come from a few texts, which the connection keeps
/// prepared, and no statement binds more than 256 rows (3,584 values of
/// an event row, under SQLite's 32,766).
///
/// Rows used to travel as JSON arrays unpacked by `json_each`: with 64
/// writers that unpacking (each element turned back into JSON text, then
/// parsed again by `->>`) was about two fifths of the writer thread,
/// which is what limits the appends' rate.
const VALUES_ROWS: [usize; 5] = [256, 64, 16, 4, 1];

/// The row counts of the `VALUES` statements that carry `rows` rows.
fn values_sizes(rows: usize) -> Vec<usize> {
    let largest = VALUES_ROWS[0];
    let mut sizes = vec![largest; rows / largest];
    let left = rows % largest;
    if left > 0 {
        let fits = VALUES_ROWS.iter().rev().copied().find(|&size| size >= left);
        sizes.push(fits.unwrap_or(largest));
    }
    sizes
}

/// One table's inserts: `insert` (`INSERT INTO table (columns)`) of
/// `columns` values per row, `rows` bound by `bind`, each statement
/// ending with `tail` (more conditions, then a conflict clause).
struct Inserts<'a, R> {
    insert: &'a str,
    columns: usize,
    rows: Vec<R>,
    tail: &'a str,
}

impl<R> Inserts<'_, R> {
    /// Adds the statements to `calls`, binding each one's rows.
    fn push(
        self,
        calls: &mut Calls,
        mut bind: impl FnMut(&mut SqliteArguments<'static>, R) -> Result<(), BoxDynError>,
    ) -> Result<(), StoreError> {
        let row_text = format!("({})", vec!["?"; self.columns].join(", "));
        let text = |size: usize| {
            format!(
                "{} SELECT * FROM (VALUES {}) WHERE column1 IS NOT NULL{};",
                self.insert,
                vec![row_text.as_str(); size].join(", "),
                self.tail
            )
        };
        // The largest statement's text is made once, and only when a
        // table has that many rows: most batches never need it.
        let mut largest: Option<String> = None;
        let sizes = values_sizes(self.rows.len());
        let mut rows = self.rows.into_iter();
        for size in sizes {
            let args = if size == VALUES_ROWS[0] {
                let largest = largest.get_or_insert_with(|| text(size));
                calls.statement(largest)
            } else {
                calls.statement(&text(size))
            };
            let mut bound = 0;
            for row in rows.by_ref().take(size) {
                bind(args, row).map_err(unencodable)?;
                bound += 1;
            }
            for _ in 0..(size - bound) * self.columns {
                args.add(None::<i64>).map_err(unencodable)?;
            }
        }
        Ok(())
    }
}

fn unencodable(error: impl std::fmt::Display) -> StoreError {
    StoreError::InvalidEvent(format!("a value of the append cannot be encoded: {error}"))
}

/// Most statements in one call into SQLite. A call's text is the key of
/// its prepared statements in the connection's cache: a batch of 64
/// one-event appends fits in one call, and a large append (up to 20,000
/// events of 64 tags) goes in many calls of the same few texts, rather
/// than in one text of thousands of statements, each prepared anew and
/// all of them kept in the cache.
const CALL_STATEMENTS_MAX: usize = 8;

/// One call into SQLite: statements, and their arguments in the order of
/// the text's plain `?` placeholders (sqlx binds them in order across the
/// statements, whereas a `?4` in a statement of its own would leave the
/// gap ?1..?3 eating the arguments). Owned, so that a batch's calls can
/// be made while the batch before it is stored.
pub(crate) type Call = (String, SqliteArguments<'static>);

/// Statements gathered into calls of at most [`CALL_STATEMENTS_MAX`].
#[derive(Default)]
struct Calls {
    done: Vec<Call>,
    sql: String,
    args: SqliteArguments<'static>,
    statements: usize,
}

impl Calls {
    /// Adds `text` (one statement or more, each ending in `;`), in a new
    /// call if this one is full, and gives the arguments to bind its
    /// values to.
    fn statement(&mut self, text: &str) -> &mut SqliteArguments<'static> {
        if self.statements >= CALL_STATEMENTS_MAX {
            self.close();
        }
        self.sql.push_str(text);
        self.sql.push(' ');
        self.statements += 1;
        &mut self.args
    }

    fn close(&mut self) {
        if self.statements > 0 {
            self.done.push((
                std::mem::take(&mut self.sql),
                std::mem::take(&mut self.args),
            ));
            self.statements = 0;
        }
    }

    fn finish(mut self) -> Vec<Call> {
        self.close();
        self.done
    }
}

/// Sends `calls` in order; the rows of the last one.
async fn send(
    connection: &mut SqliteConnection,
    calls: Vec<Call>,
) -> Result<Vec<SqliteRow>, sqlx::Error> {
    let mut rows = Vec::new();
    for (sql, args) in calls {
        rows = sqlx::query_with(&sql, args)
            .fetch_all(&mut *connection)
            .await?;
    }
    Ok(rows)
}

/// Adds the statements that insert a plan's rows into every table to
/// `calls`, taking the plan's texts, tag rows and keys; each insert also
/// checks `guard` (empty, or `AND` a condition that must hold for
/// anything to be stored).
fn push_inserts(plan: &mut Plan<'_>, guard: &str, calls: &mut Calls) -> Result<(), StoreError> {
    let events = format!("INSERT INTO events ({COLUMNS}, append_first, append_last)");
    Inserts {
        insert: &events,
        columns: 14,
        rows: std::mem::take(&mut plan.rows),
        tail: guard,
    }
    .push(calls, |args, row| {
        let event = &row.event.header;
        args.add(db_int(event.position))?;
        args.add(event.stream.to_owned())?;
        args.add(db_int(event.stream_version))?;
        args.add(event.event_id.hyphenated().to_string())?;
        args.add(event.event_type.to_owned())?;
        args.add(i64::from(event.schema_version))?;
        args.add(rfc3339_micros(event.occurred_at))?;
        args.add(rfc3339_micros(event.recorded_at))?;
        args.add(row.payload)?;
        args.add(row.metadata)?;
        args.add(row.tags)?;
        args.add(row.event.hash.to_vec())?;
        args.add(db_int(row.append_first))?;
        args.add(db_int(row.append_last))
    })?;
    let pair = |args: &mut SqliteArguments<'static>, (name, number): (String, u64)| {
        args.add(name)?;
        args.add(db_int(number))
    };
    // A row either table holds already (written by hand ahead of its
    // event) is the same fact, kept once, as the move keeps it.
    let tags_into = if recent_rows(plan) == plan.tag_rows.len() {
        "INSERT OR IGNORE INTO event_tags_recent (tag, position)"
    } else {
        "INSERT OR IGNORE INTO event_tags_settled (tag, position)"
    };
    Inserts {
        insert: tags_into,
        columns: 2,
        rows: std::mem::take(&mut plan.tag_rows),
        tail: guard,
    }
    .push(calls, pair)?;
    calls
        .statement(&format!(
            "UPDATE log_head SET position = ? WHERE only_row = 1{guard};"
        ))
        .add(db_int(plan.head))
        .map_err(unencodable)?;
    Inserts {
        insert: "INSERT INTO idempotency_keys (key, first_position, last_position, stream_version)",
        columns: 4,
        rows: std::mem::take(&mut plan.idempotency_keys),
        tail: guard,
    }
    .push(calls, |args, (key, appended)| {
        args.add(key)?;
        args.add(db_int(appended.first_position))?;
        args.add(db_int(appended.last_position))?;
        args.add(db_int(appended.stream_version))
    })
}

/// The calls that store a plan decided on what the writer remembers of
/// its own last commit ([`Memory`]), without looking anything up: one
/// call into SQLite (more for a large append, see [`Calls`]).
///
/// One transaction: `BEGIN IMMEDIATE` takes the write lock; a guard
/// checks the head and what the plan assumed ([`plan::Assumed`]) before
/// any row is inserted and leaves its verdict in the connection's own
/// temporary table, which every insert and the closing answer read.
fn guarded_calls(plan: &mut Plan<'_>) -> Result<Vec<Call>, StoreError> {
    let Some(first) = plan.rows.first() else {
        return Err(corrupt("a guarded append without an event to store"));
    };
    let expected_head = db_int(first.event.header.position - 1);
    let assumed = std::mem::take(&mut plan.assumed);
    // Opens with `BEGIN`, after which `settle_first` puts the move of the
    // recent tag rows.
    let guard = "BEGIN IMMEDIATE; \
         DELETE FROM temp.append_guard; \
         INSERT INTO temp.append_guard \
             SELECT 1 WHERE (SELECT COALESCE(MAX(position), 0) FROM events) = ? \
                 AND (SELECT position FROM log_head WHERE only_row = 1) \
                     = (SELECT COALESCE(MAX(position), 0) FROM events) \
                 AND NOT EXISTS (SELECT 1 FROM json_each(?) AS a \
                     WHERE COALESCE((SELECT MAX(stream_version) FROM events WHERE stream = a.value->>0), 0) \
                         <> a.value->>1) \
                 AND NOT EXISTS (SELECT 1 FROM json_each(?) AS f \
                     WHERE EXISTS (SELECT 1 FROM event_tags_settled \
                         WHERE tag = f.value->>0 AND position > f.value->>1) \
                     OR EXISTS (SELECT 1 FROM event_tags_recent \
                         WHERE tag = f.value->>0 AND position > f.value->>1));";
    let mut calls = Calls::default();
    let args = calls.statement(guard);
    args.add(expected_head).map_err(unencodable)?;
    args.add(json_pairs(&assumed.streams)?)
        .map_err(unencodable)?;
    args.add(json_pairs(&assumed.free_tags)?)
        .map_err(unencodable)?;
    push_inserts(
        plan,
        " AND EXISTS (SELECT 1 FROM temp.append_guard)",
        &mut calls,
    )?;
    // The last call's rows are the answer (the COMMIT after it runs too).
    calls.statement("SELECT EXISTS (SELECT 1 FROM temp.append_guard); COMMIT;");
    Ok(calls.finish())
}

/// (name, number) pairs (a tag and a position, a stream and a version) as
/// a JSON array of two-element arrays.
fn json_pairs(pairs: &[(String, u64)]) -> Result<String, StoreError> {
    json_list(
        &pairs
            .iter()
            .map(|(name, number)| (name.as_str(), db_int(*number)))
            .collect::<Vec<_>>(),
    )
}

fn appended(first: i64, last: i64, version: i64) -> Result<Appended, StoreError> {
    Ok(Appended {
        first_position: from_db_int(first)?,
        last_position: from_db_int(last)?,
        stream_version: from_db_int(version)?,
        deduplicated: true,
    })
}

#[cfg(test)]
mod tests {
    /// The options `.cargo/config.toml` passes to SQLite's build: dropping
    /// them costs the rebuild its speed without any other sign.
    #[tokio::test]
    async fn sqlite_is_built_with_the_projects_compile_options() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("lethe.db");
        let (pool, _writer) = super::open(path.to_str().expect("a UTF-8 path"))
            .await
            .expect("open the store");
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(&pool)
            .await
            .expect("compile options");
        for wanted in ["DEFAULT_MEMSTATUS=0", "DEFAULT_LOOKASIDE=1200,1000"] {
            assert!(
                options.iter().any(|option| option == wanted),
                "SQLite was built without {wanted}: {options:?}"
            );
        }
    }
}
