//! The SQLite backend: one file, WAL, the embedded default.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use commands::log::{rfc3339_micros, AppendRequest, Appended, Position, StoreError, Tag};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Row, Sqlite};

use super::plan::{self, Lookups, Outcome, Wanted};
use super::row::{RawEvent, RawId, RawTime};
use super::writer::{BatchCommitter, Committed};
use super::{corrupt, db_int, from_db, unavailable, READ_POOL_CONNECTIONS_MAX};

/// SQLite refuses statements with more bind parameters than this.
const SQLITE_BINDS_MAX: usize = 32_766;
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
    let pool = SqlitePoolOptions::new()
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
            options,
            connection: None,
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
             SELECT DISTINCT position FROM event_tags \
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

/// (tag, position) index rows for positions in `(after, until]`.
pub(crate) async fn tag_rows(
    pool: &SqlitePool,
    after: Position,
    until: Position,
) -> Result<Vec<(String, i64)>, StoreError> {
    sqlx::query_as(
        "SELECT tag, position FROM event_tags WHERE position > ?1 AND position <= ?2 \
         ORDER BY position, tag",
    )
    .bind(db_int(after))
    .bind(db_int(until))
    .fetch_all(pool)
    .await
    .map_err(from_db)
}

/// Streams whose recorded version differs from their last stored event.
pub(crate) async fn stream_mismatch(
    pool: &SqlitePool,
) -> Result<Option<(String, i64, i64)>, StoreError> {
    sqlx::query_as(
        "SELECT s.stream, s.version, COALESCE(MAX(e.stream_version), 0) AS stored \
         FROM streams s LEFT JOIN events e ON e.stream = s.stream \
         GROUP BY s.stream, s.version HAVING s.version <> stored LIMIT 1",
    )
    .fetch_optional(pool)
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
}

#[async_trait]
impl BatchCommitter for SqliteWriter {
    async fn commit(&mut self, batch: &[&AppendRequest]) -> Result<Committed, StoreError> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            slot => slot.insert(self.options.connect().await.map_err(unavailable)?),
        };
        let result = commit(connection, batch).await;
        if result.is_err() {
            // The connection may be mid-transaction or broken; a fresh one
            // is cheap and certainly clean.
            self.connection = None;
        }
        result
    }
}

async fn commit(
    connection: &mut SqliteConnection,
    batch: &[&AppendRequest],
) -> Result<Committed, StoreError> {
    let mut tx = connection
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(from_db)?;
    let wanted = Wanted::of(batch);

    let last: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(from_db)?;
    let (head, head_hash) = match last {
        None => (0, commands::log::GENESIS_HASH),
        Some((position, hash)) => (
            from_db_int(position)?,
            hash.try_into()
                .map_err(|_| corrupt(format!("hash at position {position} is not 32 bytes")))?,
        ),
    };

    let mut idempotency_keys = HashMap::new();
    if !wanted.idempotency_keys.is_empty() {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT key, first_position, last_position, stream_version FROM idempotency_keys \
             WHERE key IN (SELECT value FROM json_each(?1))",
        )
        .bind(json_list(&wanted.idempotency_keys)?)
        .fetch_all(&mut *tx)
        .await
        .map_err(from_db)?;
        for (key, first, last, version) in rows {
            idempotency_keys.insert(key, appended(first, last, version)?);
        }
    }

    let mut event_ids = HashMap::new();
    let ids: Vec<String> = wanted
        .event_ids
        .iter()
        .map(|id| id.hyphenated().to_string())
        .collect();
    let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT event_id, position, stream_version, append_first, append_last FROM events \
         WHERE event_id IN (SELECT value FROM json_each(?1))",
    )
    .bind(json_list(&ids)?)
    .fetch_all(&mut *tx)
    .await
    .map_err(from_db)?;
    for (id, position, version, first, last) in rows {
        let id = uuid::Uuid::parse_str(&id).map_err(|e| corrupt(format!("event id: {e}")))?;
        // Versions and positions of one append are both contiguous.
        event_ids.insert(id, appended(first, last, version + (last - position))?);
    }

    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT stream, version FROM streams WHERE stream IN (SELECT value FROM json_each(?1))",
    )
    .bind(json_list(&wanted.streams)?)
    .fetch_all(&mut *tx)
    .await
    .map_err(from_db)?;
    let mut streams = HashMap::new();
    for (stream, version) in rows {
        streams.insert(stream, from_db_int(version)?);
    }

    let mut tag_max = HashMap::new();
    if !wanted.tags.is_empty() {
        // A correlated MAX per tag is one index seek each, however many
        // events carry the tag.
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT value, (SELECT MAX(position) FROM event_tags WHERE tag = value) \
             FROM json_each(?1)",
        )
        .bind(json_list(&wanted.tags)?)
        .fetch_all(&mut *tx)
        .await
        .map_err(from_db)?;
        for (tag, max) in rows {
            if let Some(max) = max {
                tag_max.insert(tag, from_db_int(max)?);
            }
        }
    }

    let lookups = Lookups {
        head,
        head_hash,
        idempotency_keys,
        event_ids,
        streams,
        tag_max,
    };
    let plan = plan::plan(batch, lookups, Utc::now());

    let mut outcomes = Vec::with_capacity(plan.outcomes.len());
    for outcome in plan.outcomes {
        outcomes.push(match outcome {
            Outcome::Done(result) => result,
            Outcome::CommittedConflict { tags, after } => {
                let position: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(position) FROM event_tags \
                     WHERE tag IN (SELECT value FROM json_each(?1)) AND position > ?2",
                )
                .bind(json_list(&tags)?)
                .bind(db_int(after))
                .fetch_one(&mut *tx)
                .await
                .map_err(from_db)?;
                let position = position
                    .ok_or_else(|| corrupt("the tag index changed inside a transaction"))?;
                let stored: String =
                    sqlx::query_scalar("SELECT tags FROM events WHERE position = ?1")
                        .bind(position)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(from_db)?;
                Err(super::conflict(&tags, &stored, from_db_int(position)?)?)
            }
        });
    }

    if !plan.rows.is_empty() {
        for chunk in plan.rows.chunks(SQLITE_BINDS_MAX / 14) {
            let mut query = QueryBuilder::<Sqlite>::new(format!(
                "INSERT INTO events ({COLUMNS}, append_first, append_last) "
            ));
            query.push_values(chunk, |mut values, row| {
                let event = &row.event;
                values
                    .push_bind(db_int(event.position))
                    .push_bind(event.stream.as_str())
                    .push_bind(db_int(event.stream_version))
                    .push_bind(event.event_id.hyphenated().to_string())
                    .push_bind(event.event_type.as_str())
                    .push_bind(i64::from(event.schema_version))
                    .push_bind(rfc3339_micros(event.occurred_at))
                    .push_bind(rfc3339_micros(event.recorded_at))
                    .push_bind(row.payload.as_str())
                    .push_bind(row.metadata.as_str())
                    .push_bind(row.tags.as_str())
                    .push_bind(&event.hash[..])
                    .push_bind(db_int(row.append_first))
                    .push_bind(db_int(row.append_last));
            });
            query.build().execute(&mut *tx).await.map_err(from_db)?;
        }
        for chunk in plan.tag_rows.chunks(SQLITE_BINDS_MAX / 2) {
            let mut query = QueryBuilder::<Sqlite>::new("INSERT INTO event_tags (tag, position) ");
            query.push_values(chunk, |mut values, (tag, position)| {
                values.push_bind(tag.as_str()).push_bind(db_int(*position));
            });
            query.build().execute(&mut *tx).await.map_err(from_db)?;
        }
        for chunk in plan.streams.chunks(SQLITE_BINDS_MAX / 2) {
            let mut query = QueryBuilder::<Sqlite>::new("INSERT INTO streams (stream, version) ");
            query.push_values(chunk, |mut values, (stream, version)| {
                values
                    .push_bind(stream.as_str())
                    .push_bind(db_int(*version));
            });
            query.push(" ON CONFLICT (stream) DO UPDATE SET version = excluded.version");
            query.build().execute(&mut *tx).await.map_err(from_db)?;
        }
        for chunk in plan.idempotency_keys.chunks(SQLITE_BINDS_MAX / 4) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO idempotency_keys (key, first_position, last_position, stream_version) ",
            );
            query.push_values(chunk, |mut values, (key, appended)| {
                values
                    .push_bind(key.as_str())
                    .push_bind(db_int(appended.first_position))
                    .push_bind(db_int(appended.last_position))
                    .push_bind(db_int(appended.stream_version));
            });
            query.build().execute(&mut *tx).await.map_err(from_db)?;
        }
    }
    tx.commit().await.map_err(from_db)?;
    Ok(Committed {
        outcomes,
        head: plan.head,
    })
}

fn appended(first: i64, last: i64, version: i64) -> Result<Appended, StoreError> {
    Ok(Appended {
        first_position: from_db_int(first)?,
        last_position: from_db_int(last)?,
        stream_version: from_db_int(version)?,
        deduplicated: true,
    })
}
