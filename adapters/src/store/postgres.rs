//! The PostgreSQL backend, for production.

use std::collections::HashMap;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use commands::log::{AppendRequest, Appended, Position, StoreError, Tag};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, Row};
use uuid::Uuid;

use super::plan::{self, Lookups, Outcome, Wanted};
use super::row::{RawEvent, RawId, RawTime};
use super::writer::{BatchCommitter, Committed};
use super::{corrupt, db_int, from_db, unavailable, READ_POOL_CONNECTIONS_MAX};

/// The advisory lock every Lethe writer of a database takes for the
/// length of its append transaction ("LETHELOG" in ASCII).
const APPEND_LOCK_KEY: i64 = 0x4c45_5448_454c_4f47;

const COLUMNS: &str = "position, stream, stream_version, event_id, event_type, schema_version, \
                       occurred_at, recorded_at, payload, metadata, tags, hash";

/// Connects and applies migrations.
pub(crate) async fn open(url: &str) -> Result<(PgPool, PgWriter), StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Unavailable(format!("bad PostgreSQL URL: {e}")))?;
    let pool = PgPoolOptions::new()
        .max_connections(READ_POOL_CONNECTIONS_MAX)
        .connect_with(options.clone())
        .await
        .map_err(unavailable)?;
    // sqlx takes an advisory lock while migrating, so processes starting
    // together do not race.
    sqlx::migrate!("migrations/postgres")
        .run(&pool)
        .await
        .map_err(|e| StoreError::Unavailable(format!("migrating the PostgreSQL store: {e}")))?;
    Ok((
        pool,
        PgWriter {
            options,
            connection: None,
        },
    ))
}

fn raw(row: &PgRow) -> Result<RawEvent, sqlx::Error> {
    Ok(RawEvent {
        position: row.try_get(0)?,
        stream: row.try_get(1)?,
        stream_version: row.try_get(2)?,
        event_id: RawId::Native(row.try_get(3)?),
        event_type: row.try_get(4)?,
        schema_version: i64::from(row.try_get::<i32, _>(5)?),
        occurred_at: RawTime::Native(row.try_get(6)?),
        recorded_at: RawTime::Native(row.try_get(7)?),
        payload: row.try_get(8)?,
        metadata: row.try_get(9)?,
        tags: row.try_get(10)?,
        hash: row.try_get(11)?,
    })
}

fn raws(rows: &[PgRow]) -> Result<Vec<RawEvent>, StoreError> {
    rows.iter().map(|row| raw(row).map_err(from_db)).collect()
}

fn tag_strings(tags: &[Tag]) -> Vec<&str> {
    tags.iter().map(Tag::as_str).collect()
}

pub(crate) async fn read_all(
    pool: &PgPool,
    after: Position,
    limit: usize,
) -> Result<Vec<RawEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
    ))
    .bind(db_int(after))
    .bind(db_int(limit as u64))
    .fetch_all(pool)
    .await
    .map_err(from_db)?;
    raws(&rows)
}

pub(crate) async fn read_stream(
    pool: &PgPool,
    stream: &str,
    after_version: u64,
    limit: usize,
) -> Result<Vec<RawEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events WHERE stream = $1 AND stream_version > $2 \
         ORDER BY stream_version LIMIT $3"
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
    pool: &PgPool,
    tags: &[Tag],
    after: Position,
    limit: usize,
) -> Result<Vec<RawEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events WHERE position IN ( \
             SELECT DISTINCT position FROM event_tags \
             WHERE tag = ANY($1) AND position > $2 \
             ORDER BY position LIMIT $3) \
         ORDER BY position"
    ))
    .bind(tag_strings(tags))
    .bind(db_int(after))
    .bind(db_int(limit as u64))
    .fetch_all(pool)
    .await
    .map_err(from_db)?;
    raws(&rows)
}

pub(crate) async fn head(pool: &PgPool) -> Result<Position, StoreError> {
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0)::BIGINT FROM events")
        .fetch_one(pool)
        .await
        .map_err(from_db)?;
    from_db_int(head)
}

/// (tag, position) index rows for positions in `(after, until]`.
pub(crate) async fn tag_rows(
    pool: &PgPool,
    after: Position,
    until: Position,
) -> Result<Vec<(String, i64)>, StoreError> {
    sqlx::query_as(
        "SELECT tag, position FROM event_tags WHERE position > $1 AND position <= $2 \
         ORDER BY position, tag COLLATE \"C\"",
    )
    .bind(db_int(after))
    .bind(db_int(until))
    .fetch_all(pool)
    .await
    .map_err(from_db)
}

/// A stream whose recorded version differs from its last stored event.
pub(crate) async fn stream_mismatch(
    pool: &PgPool,
) -> Result<Option<(String, i64, i64)>, StoreError> {
    sqlx::query_as(
        "SELECT s.stream, s.version, COALESCE(MAX(e.stream_version), 0)::BIGINT AS stored \
         FROM streams s LEFT JOIN events e ON e.stream = s.stream \
         GROUP BY s.stream, s.version HAVING s.version <> COALESCE(MAX(e.stream_version), 0) \
         LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .map_err(from_db)
}

fn from_db_int(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(format!("negative number {value} in the store")))
}

/// The PostgreSQL writer's dedicated connection. A transaction-scoped
/// advisory lock serialises writers across processes; the head is read
/// after it, and READ COMMITTED gives that statement a fresh snapshot, so
/// it sees the previous holder's commit.
#[derive(Debug)]
pub(crate) struct PgWriter {
    options: PgConnectOptions,
    connection: Option<PgConnection>,
}

#[async_trait]
impl BatchCommitter for PgWriter {
    async fn commit(&mut self, batch: &[&AppendRequest]) -> Result<Committed, StoreError> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            slot => slot.insert(self.options.connect().await.map_err(unavailable)?),
        };
        let result = commit(connection, batch).await;
        if result.is_err() {
            // The connection may be mid-transaction or broken; a fresh one
            // is certainly clean.
            self.connection = None;
        }
        result
    }
}

async fn commit(
    connection: &mut PgConnection,
    batch: &[&AppendRequest],
) -> Result<Committed, StoreError> {
    let mut tx = connection.begin().await.map_err(from_db)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK_KEY)
        .execute(&mut *tx)
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
             WHERE key = ANY($1)",
        )
        .bind(&wanted.idempotency_keys)
        .fetch_all(&mut *tx)
        .await
        .map_err(from_db)?;
        for (key, first, last, version) in rows {
            idempotency_keys.insert(key, appended(first, last, version)?);
        }
    }

    let rows: Vec<(Uuid, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT event_id, position, stream_version, append_first, append_last FROM events \
         WHERE event_id = ANY($1)",
    )
    .bind(&wanted.event_ids)
    .fetch_all(&mut *tx)
    .await
    .map_err(from_db)?;
    let mut event_ids = HashMap::new();
    for (id, position, version, first, last) in rows {
        // Versions and positions of one append are both contiguous.
        event_ids.insert(id, appended(first, last, version + (last - position))?);
    }

    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT stream, version FROM streams WHERE stream = ANY($1)")
            .bind(&wanted.streams)
            .fetch_all(&mut *tx)
            .await
            .map_err(from_db)?;
    let mut streams = HashMap::new();
    for (stream, version) in rows {
        streams.insert(stream, from_db_int(version)?);
    }

    let mut tag_max = HashMap::new();
    if !wanted.tags.is_empty() {
        // A correlated max per tag is one backward index scan each, however
        // many events carry the tag.
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT t, (SELECT max(position) FROM event_tags WHERE tag = t) \
             FROM unnest($1::TEXT[]) AS t",
        )
        .bind(&wanted.tags)
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
                let found: Option<(i64, String)> = sqlx::query_as(
                    "SELECT position, tags FROM events WHERE position = ( \
                         SELECT min(position) FROM event_tags \
                         WHERE tag = ANY($1) AND position > $2)",
                )
                .bind(tag_strings(&tags))
                .bind(db_int(after))
                .fetch_optional(&mut *tx)
                .await
                .map_err(from_db)?;
                let (position, stored) =
                    found.ok_or_else(|| corrupt("a tagged event is missing from the log"))?;
                Err(super::conflict(&tags, &stored, from_db_int(position)?)?)
            }
        });
    }

    if !plan.rows.is_empty() {
        // UNNEST over one array per column: one statement text whatever
        // the batch size (so it stays prepared), and no bind limit.
        let count = plan.rows.len();
        let mut positions = Vec::with_capacity(count);
        let mut streams = Vec::with_capacity(count);
        let mut versions = Vec::with_capacity(count);
        let mut ids = Vec::with_capacity(count);
        let mut types = Vec::with_capacity(count);
        let mut schemas = Vec::with_capacity(count);
        let mut occurred: Vec<DateTime<Utc>> = Vec::with_capacity(count);
        let mut recorded: Vec<DateTime<Utc>> = Vec::with_capacity(count);
        let mut payloads = Vec::with_capacity(count);
        let mut metadata = Vec::with_capacity(count);
        let mut tags = Vec::with_capacity(count);
        let mut hashes = Vec::with_capacity(count);
        let mut firsts = Vec::with_capacity(count);
        let mut lasts = Vec::with_capacity(count);
        for row in &plan.rows {
            let event = &row.event;
            positions.push(db_int(event.position));
            streams.push(event.stream.as_str());
            versions.push(db_int(event.stream_version));
            ids.push(event.event_id);
            types.push(event.event_type.as_str());
            schemas.push(i32::from(event.schema_version));
            occurred.push(event.occurred_at);
            recorded.push(event.recorded_at);
            payloads.push(row.payload.as_str());
            metadata.push(row.metadata.as_str());
            tags.push(row.tags.as_str());
            hashes.push(event.hash.to_vec());
            firsts.push(db_int(row.append_first));
            lasts.push(db_int(row.append_last));
        }
        sqlx::query(&format!(
            "INSERT INTO events ({COLUMNS}, append_first, append_last) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::UUID[], \
                 $5::TEXT[], $6::INTEGER[], $7::TIMESTAMPTZ[], $8::TIMESTAMPTZ[], $9::TEXT[], \
                 $10::TEXT[], $11::TEXT[], $12::BYTEA[], $13::BIGINT[], $14::BIGINT[])"
        ))
        .bind(positions)
        .bind(streams)
        .bind(versions)
        .bind(ids)
        .bind(types)
        .bind(schemas)
        .bind(occurred)
        .bind(recorded)
        .bind(payloads)
        .bind(metadata)
        .bind(tags)
        .bind(hashes)
        .bind(firsts)
        .bind(lasts)
        .execute(&mut *tx)
        .await
        .map_err(from_db)?;

        if !plan.tag_rows.is_empty() {
            let (tags, positions): (Vec<&str>, Vec<i64>) = plan
                .tag_rows
                .iter()
                .map(|(tag, position)| (tag.as_str(), db_int(*position)))
                .unzip();
            sqlx::query(
                "INSERT INTO event_tags (tag, position) \
                 SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[])",
            )
            .bind(tags)
            .bind(positions)
            .execute(&mut *tx)
            .await
            .map_err(from_db)?;
        }

        let (streams, versions): (Vec<&str>, Vec<i64>) = plan
            .streams
            .iter()
            .map(|(stream, version)| (stream.as_str(), db_int(*version)))
            .unzip();
        sqlx::query(
            "INSERT INTO streams (stream, version) SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[]) \
             ON CONFLICT (stream) DO UPDATE SET version = EXCLUDED.version",
        )
        .bind(streams)
        .bind(versions)
        .execute(&mut *tx)
        .await
        .map_err(from_db)?;

        if !plan.idempotency_keys.is_empty() {
            let mut keys = Vec::new();
            let mut firsts = Vec::new();
            let mut lasts = Vec::new();
            let mut versions = Vec::new();
            for (key, appended) in &plan.idempotency_keys {
                keys.push(key.as_str());
                firsts.push(db_int(appended.first_position));
                lasts.push(db_int(appended.last_position));
                versions.push(db_int(appended.stream_version));
            }
            sqlx::query(
                "INSERT INTO idempotency_keys (key, first_position, last_position, stream_version) \
                 SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[])",
            )
            .bind(keys)
            .bind(firsts)
            .bind(lasts)
            .bind(versions)
            .execute(&mut *tx)
            .await
            .map_err(from_db)?;
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
