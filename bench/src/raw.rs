//! The baselines: plain sqlx on an `events` table of the same shape as
//! Lethe's (same columns, same unique keys), each writer on its own
//! connection, each event in its own `BEGIN; INSERT; COMMIT` or 100
//! events in one multi-row `INSERT`.
//!
//! One more, for context: the rows one group-commit batch of 64 callers
//! writes, by plain SQL. One event on each of 64 streams (with the append
//! columns Lethe keeps), each event's tag rows and the log's head row, in
//! one transaction: one statement on PostgreSQL, as Lethe's insert. The
//! next batch's rows are built while the statement runs. It is a
//! reference, not a ceiling: Lethe decides, hashes and answers callers
//! besides, but its SQLite writer binds the rows in fewer calls.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgConnectOptions;
use sqlx::query_builder::Separated;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{
    ConnectOptions, Connection, PgConnection, Postgres, QueryBuilder, Sqlite, SqliteConnection,
};

use crate::measure::Op;
use crate::shape::{self, raw_row, RawRow, EVENT_TYPE};

/// Events per transaction of the multi-row baseline.
pub const MULTI_ROW_EVENTS: usize = 100;
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(60);

const PG_SCHEMA: &str = "CREATE TABLE events (
    position        BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream          TEXT        NOT NULL,
    stream_version  BIGINT      NOT NULL,
    event_id        UUID        NOT NULL UNIQUE,
    event_type      TEXT        NOT NULL,
    schema_version  INTEGER     NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    payload         TEXT        NOT NULL,
    metadata        TEXT        NOT NULL,
    tags            TEXT        NOT NULL,
    hash            BYTEA       NOT NULL,
    append_first    BIGINT,
    append_last     BIGINT,
    UNIQUE (stream, stream_version));
CREATE TABLE event_tags (
    tag       TEXT   NOT NULL,
    position  BIGINT NOT NULL,
    PRIMARY KEY (tag, position));
CREATE TABLE log_head (
    only_row  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    position  BIGINT  NOT NULL);
INSERT INTO log_head (position) VALUES (0)";

const SQLITE_SCHEMA: &str = "CREATE TABLE events (
    position        INTEGER PRIMARY KEY,
    stream          TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL,
    event_id        TEXT    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    occurred_at     TEXT    NOT NULL,
    recorded_at     TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    tags            TEXT    NOT NULL,
    hash            BLOB    NOT NULL,
    append_first    INTEGER,
    append_last     INTEGER,
    UNIQUE (stream, stream_version));
CREATE TABLE event_tags_settled (
    tag       TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (tag, position)) WITHOUT ROWID;
CREATE TABLE event_tags_recent (
    tag       TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (tag, position)) WITHOUT ROWID;
CREATE TABLE log_head (
    only_row  INTEGER PRIMARY KEY DEFAULT 1 CHECK (only_row = 1),
    position  INTEGER NOT NULL);
INSERT INTO log_head (position) VALUES (0)";

const INSERT: &str = "INSERT INTO events (stream, stream_version, event_id, event_type, \
                      schema_version, occurred_at, recorded_at, payload, metadata, tags, hash) ";

/// The full-batch baseline's insert: positions given, as Lethe's writer
/// gives them, and the append's positions beside each event.
const INSERT_AT_PG: &str = "WITH e AS (INSERT INTO events (position, stream, stream_version, \
                            event_id, event_type, schema_version, occurred_at, recorded_at, \
                            payload, metadata, tags, hash, append_first, append_last) \
                            OVERRIDING SYSTEM VALUE ";
const INSERT_AT_SQLITE: &str = "INSERT INTO events (position, stream, stream_version, event_id, \
                                event_type, schema_version, occurred_at, recorded_at, payload, \
                                metadata, tags, hash, append_first, append_last) ";
const INSERT_TAGS: &str = "INSERT INTO event_tags (tag, position) ";
const INSERT_RECENT_TAGS: &str = "INSERT INTO event_tags_recent (tag, position) ";

/// Streams of the full-batch baseline: one per caller of Lethe's 64
/// writers, whose batches hold one event of each.
pub const BATCH_STREAMS: usize = 64;

/// A database for the raw baselines: its URL (PostgreSQL) or file.
#[derive(Debug, Clone)]
pub enum RawDb {
    Postgres(String),
    Sqlite(std::path::PathBuf),
}

/// Opens one connection the way the store's writer does: WAL,
/// `synchronous=FULL` and the writer's other settings on SQLite, defaults
/// (fsync on) on PostgreSQL.
pub enum RawConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

impl std::fmt::Debug for RawConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RawConnection::Postgres(_) => "RawConnection::Postgres",
            RawConnection::Sqlite(_) => "RawConnection::Sqlite",
        })
    }
}

impl RawDb {
    pub async fn connect(&self) -> anyhow::Result<RawConnection> {
        Ok(match self {
            RawDb::Postgres(url) => {
                RawConnection::Postgres(PgConnectOptions::from_str(url)?.connect().await?)
            }
            RawDb::Sqlite(path) => RawConnection::Sqlite(sqlite_options(path).connect().await?),
        })
    }

    pub async fn create_schema(&self) -> anyhow::Result<()> {
        match self.connect().await? {
            RawConnection::Postgres(mut c) => {
                sqlx::raw_sql(PG_SCHEMA).execute(&mut c).await?;
            }
            RawConnection::Sqlite(mut c) => {
                sqlx::raw_sql(SQLITE_SCHEMA).execute(&mut c).await?;
            }
        }
        Ok(())
    }
}

fn sqlite_options(path: &Path) -> SqliteConnectOptions {
    adapters::store::SQLITE_WRITER_PRAGMAS.iter().fold(
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(SQLITE_BUSY_TIMEOUT),
        |options, (name, value)| options.pragma(*name, *value),
    )
}

/// One writer of the raw baselines: its own connection and stream.
#[derive(Debug)]
pub struct RawWriter {
    connection: RawConnection,
    writer: usize,
    stream: String,
    version: i64,
    events_per_tx: usize,
}

impl RawWriter {
    pub async fn new(db: &RawDb, writer: usize, events_per_tx: usize) -> anyhow::Result<Self> {
        Ok(Self {
            connection: db.connect().await?,
            writer,
            stream: format!("raw-{writer}"),
            version: 0,
            events_per_tx,
        })
    }
}

#[async_trait]
impl Op for RawWriter {
    async fn run(&mut self) -> anyhow::Result<u64> {
        let rows: Vec<RawRow> = (0..self.events_per_tx)
            .map(|_| {
                self.version += 1;
                raw_row(self.writer, &self.stream, self.version)
            })
            .collect();
        match &mut self.connection {
            RawConnection::Postgres(connection) => {
                let mut tx = connection.begin().await?;
                let mut query = QueryBuilder::<Postgres>::new(INSERT);
                query.push_values(&rows, |mut values, row| push_pg(&mut values, row));
                query.build().execute(&mut *tx).await?;
                tx.commit().await?;
            }
            RawConnection::Sqlite(connection) => {
                let mut tx = connection.begin().await?;
                let mut query = QueryBuilder::<Sqlite>::new(INSERT);
                query.push_values(&rows, |mut values, row| push_sqlite(&mut values, row));
                query.build().execute(&mut *tx).await?;
                tx.commit().await?;
            }
        }
        Ok(rows.len() as u64)
    }
}

/// `writers` raw writers, each on its own connection.
pub async fn writers(
    db: &RawDb,
    writers: usize,
    events_per_tx: usize,
) -> anyhow::Result<Vec<RawWriter>> {
    let mut all = Vec::with_capacity(writers);
    for writer in 0..writers {
        all.push(RawWriter::new(db, writer, events_per_tx).await?);
    }
    Ok(all)
}

fn push_pg<'q>(values: &mut Separated<'_, 'q, Postgres, &'static str>, row: &'q RawRow) {
    values
        .push_bind(row.stream.as_str())
        .push_bind(row.stream_version)
        .push_bind(row.event_id)
        .push_bind(EVENT_TYPE)
        .push_bind(1_i32)
        .push_bind(row.occurred_at)
        .push_bind(row.recorded_at)
        .push_bind(row.payload.as_str())
        .push_bind(row.metadata.as_str())
        .push_bind(row.tags.as_str())
        .push_bind(row.hash.as_slice());
}

fn push_sqlite<'q>(values: &mut Separated<'_, 'q, Sqlite, &'static str>, row: &'q RawRow) {
    values
        .push_bind(row.stream.as_str())
        .push_bind(row.stream_version)
        .push_bind(row.event_id.hyphenated().to_string())
        .push_bind(EVENT_TYPE)
        .push_bind(1_i32)
        .push_bind(commands::log::rfc3339_micros(row.occurred_at))
        .push_bind(commands::log::rfc3339_micros(row.recorded_at))
        .push_bind(row.payload.as_str())
        .push_bind(row.metadata.as_str())
        .push_bind(row.tags.as_str())
        .push_bind(row.hash.as_slice());
}

/// The rows of one batch: each event at its position, and the tag rows.
#[derive(Debug)]
struct BatchRows {
    events: Vec<(i64, RawRow)>,
    tags: Vec<(String, i64)>,
}

/// The next event of each of `streams` streams (all at `version`), from
/// position `first` on.
fn batch_rows(streams: usize, version: i64, first: i64) -> BatchRows {
    let events = (0..streams)
        .map(|writer| {
            let stream = format!("raw-{writer}");
            (first + writer as i64, raw_row(writer, &stream, version))
        })
        .collect();
    let tags = (0..streams)
        .flat_map(|writer| {
            let position = first + writer as i64;
            shape::tags(writer, version as u64)
                .into_iter()
                .map(move |tag| (tag.as_str().to_owned(), position))
        })
        .collect();
    BatchRows { events, tags }
}

/// Stores one batch and moves the head to `head`, in one transaction;
/// on SQLite, moves the recent tag rows first when `settle`.
async fn write_batch(
    connection: &mut RawConnection,
    rows: &BatchRows,
    head: i64,
    settle: bool,
) -> anyhow::Result<()> {
    match connection {
        RawConnection::Postgres(connection) => {
            let mut query = QueryBuilder::<Postgres>::new(INSERT_AT_PG);
            query.push_values(&rows.events, |mut values, (position, row)| {
                values.push_bind(*position);
                push_pg(&mut values, row);
                values.push_bind(*position).push_bind(*position);
            });
            query.push("), t AS (");
            query.push(INSERT_TAGS);
            query.push_values(&rows.tags, |mut values, (tag, position)| {
                values.push_bind(tag.as_str()).push_bind(*position);
            });
            query.push(") UPDATE log_head SET position = ");
            query.push_bind(head);
            query.push(" WHERE only_row");
            query.build().execute(&mut *connection).await?;
        }
        RawConnection::Sqlite(connection) => {
            let mut tx = connection.begin().await?;
            let mut query = QueryBuilder::<Sqlite>::new(INSERT_AT_SQLITE);
            query.push_values(&rows.events, |mut values, (position, row)| {
                values.push_bind(*position);
                push_sqlite(&mut values, row);
                values.push_bind(*position).push_bind(*position);
            });
            query.build().execute(&mut *tx).await?;
            // SQLite's tag index is a small table of recent rows, moved
            // into the large one when due, as Lethe's writer keeps it.
            if settle {
                sqlx::query(adapters::store::SQLITE_SETTLE_RECENT_TAGS)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut query = QueryBuilder::<Sqlite>::new(INSERT_RECENT_TAGS);
            query.push_values(&rows.tags, |mut values, (tag, position)| {
                values.push_bind(tag.as_str()).push_bind(*position);
            });
            query.build().execute(&mut *tx).await?;
            sqlx::query("UPDATE log_head SET position = ?1 WHERE only_row = 1")
                .bind(head)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

/// The full-batch baseline's one writer: each transaction stores the next
/// event of each of its streams, their tag rows and the head, at
/// positions it counts itself. It builds the next batch's rows while the
/// database stores this one.
#[derive(Debug)]
pub struct RawBatchWriter {
    connection: RawConnection,
    streams: usize,
    version: i64,
    position: i64,
    next: Option<BatchRows>,
    /// Rows in SQLite's recent tag table.
    recent_tag_rows: usize,
}

impl RawBatchWriter {
    pub async fn new(db: &RawDb, streams: usize) -> anyhow::Result<Self> {
        Ok(Self {
            connection: db.connect().await?,
            streams,
            version: 0,
            position: 0,
            next: None,
            recent_tag_rows: 0,
        })
    }
}

#[async_trait]
impl Op for RawBatchWriter {
    async fn run(&mut self) -> anyhow::Result<u64> {
        let streams = self.streams;
        let rows = self
            .next
            .take()
            .unwrap_or_else(|| batch_rows(streams, self.version + 1, self.position + 1));
        self.version += 1;
        self.position += streams as i64;
        let (version, first) = (self.version + 1, self.position + 1);
        // On a thread of its own: the SQLite connection's statements run
        // one after another on its thread, so a future built beside them
        // would only overlap the first.
        let next = tokio::task::spawn_blocking(move || batch_rows(streams, version, first));
        let settle = self.recent_tag_rows >= adapters::store::SQLITE_RECENT_TAG_ROWS_MAX;
        write_batch(&mut self.connection, &rows, self.position, settle).await?;
        self.recent_tag_rows = if settle { 0 } else { self.recent_tag_rows } + rows.tags.len();
        self.next = Some(next.await?);
        Ok(rows.events.len() as u64)
    }
}
