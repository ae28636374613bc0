//! The PostgreSQL backend, for production.

use std::collections::HashMap;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use commands::log::{AppendRequest, Appended, Position, StoreError, Tag};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgRow};
use sqlx::{ConnectOptions, Connection, Row};
use uuid::Uuid;

use super::plan::{self, Lookups, Memory, Outcome, Plan, Wanted};
use super::row::{RawEvent, RawId, RawTime};
use super::writer::{BatchCommitter, Committed};
use super::{corrupt, db_int, from_db, unavailable, READ_POOL_CONNECTIONS_MAX};

/// The advisory lock every Lethe writer of a database takes for the
/// length of its append transaction ("LETHELOG" in ASCII).
const APPEND_LOCK_KEY: i64 = 0x4c45_5448_454c_4f47;

/// Settings of the writer's own connection. Its statements are the same
/// few point lookups and inserts, prepared once:
/// - `plan_cache_mode`: left to itself, PostgreSQL keeps planning them
///   afresh on every execution (a custom plan looks cheaper), which cost
///   more than executing them;
/// - `enable_seqscan`: a generic plan made while the log is small could
///   otherwise stay a sequential scan of `events` as the log grows;
/// - `jit`: a plan whose only way is a sequential scan is then costed
///   so high that PostgreSQL compiles it on every execution (an update of
///   `log_head` without its key took 139 ms so).
const WRITER_SETTINGS: [(&str, &str); 3] = [
    ("plan_cache_mode", "force_generic_plan"),
    ("enable_seqscan", "off"),
    ("jit", "off"),
];

const COLUMNS: &str = "position, stream, stream_version, event_id, event_type, schema_version, \
                       occurred_at, recorded_at, payload, metadata, tags, hash";

/// Connects and applies migrations.
pub(crate) async fn open(url: &str) -> Result<(PgPool, PgWriter), StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Unavailable(format!("bad PostgreSQL URL: {e}")))?;
    let pool = crate::pools::without_reaper::<sqlx::Postgres>()
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
            options: options.options(WRITER_SETTINGS),
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

/// The first of `expected` (position, tag) rows that the tag index does
/// not hold: one key lookup per row.
pub(crate) async fn missing_tag_row(
    pool: &PgPool,
    expected: &[(Position, &str)],
) -> Result<Option<(i64, String)>, StoreError> {
    let positions: Vec<i64> = expected.iter().map(|(p, _)| db_int(*p)).collect();
    let tags: Vec<&str> = expected.iter().map(|(_, tag)| *tag).collect();
    sqlx::query_as(
        "SELECT x.position, x.tag FROM UNNEST($1::BIGINT[], $2::TEXT[]) AS x(position, tag) \
         WHERE NOT EXISTS (SELECT 1 FROM event_tags t \
             WHERE t.tag = x.tag AND t.position = x.position) \
         ORDER BY x.position, x.tag COLLATE \"C\" LIMIT 1",
    )
    .bind(positions)
    .bind(tags)
    .fetch_optional(pool)
    .await
    .map_err(from_db)
}

/// How many rows the tag index holds for positions 1 to `until`.
pub(crate) async fn tag_row_count(pool: &PgPool, until: Position) -> Result<u64, StoreError> {
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM event_tags WHERE position BETWEEN 1 AND $1")
            .bind(db_int(until))
            .fetch_one(pool)
            .await
            .map_err(from_db)?;
    from_db_int(count)
}

/// The first tag index row at positions 1 to `until` whose event does not
/// carry its tag (or that has no event), by the events' stored tags.
pub(crate) async fn foreign_tag_row(
    pool: &PgPool,
    until: Position,
) -> Result<Option<(i64, String)>, StoreError> {
    sqlx::query_as(
        "SELECT t.position, t.tag FROM event_tags t LEFT JOIN events e ON e.position = t.position \
         WHERE t.position BETWEEN 1 AND $1 AND (e.position IS NULL \
             OR NOT e.tags::JSONB @> jsonb_build_array(t.tag)) \
         ORDER BY t.position, t.tag COLLATE \"C\" LIMIT 1",
    )
    .bind(db_int(until))
    .fetch_optional(pool)
    .await
    .map_err(from_db)
}

/// The head the log records (`None`: no record) and the last position
/// it stores, read in one statement, so that an append committing
/// meanwhile moves neither or both.
pub(crate) async fn recorded_head(pool: &PgPool) -> Result<(Option<i64>, i64), StoreError> {
    sqlx::query_as(
        "SELECT (SELECT position FROM log_head), (SELECT COALESCE(MAX(position), 0)::BIGINT FROM events)",
    )
    .fetch_one(pool)
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

impl PgWriter {
    async fn connection(&mut self) -> Result<&mut PgConnection, StoreError> {
        Ok(match &mut self.connection {
            Some(connection) => connection,
            slot => slot.insert(self.options.connect().await.map_err(unavailable)?),
        })
    }
}

/// Whether an insert failed on a unique key or a deadlock: what it
/// assumed no longer holds, and it stored nothing.
fn guard_broken(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => {
            error.is_unique_violation() || error.code().as_deref() == Some(DEADLOCK_DETECTED)
        }
        _ => false,
    }
}

#[async_trait]
impl BatchCommitter for PgWriter {
    type Rows = Rows;

    fn rows(plan: &mut Plan<'_>) -> Result<Rows, StoreError> {
        Ok(Rows::of(plan))
    }

    async fn store(&mut self, rows: Rows) -> Result<bool, StoreError> {
        match insert(self.connection().await?, &rows).await {
            Ok(stored) => Ok(stored == rows.positions.len()),
            Err(error) if guard_broken(&error) => Ok(false),
            Err(error) => Err(from_db(error)),
        }
    }

    async fn commit(
        &mut self,
        memory: &mut Memory,
        batch: &[&AppendRequest],
    ) -> Result<Committed, StoreError> {
        commit(self.connection().await?, memory, batch).await
    }

    fn reset(&mut self) {
        self.connection = None;
    }
}

/// Decides a batch on looked-up state and commits it in two round trips
/// (the lookups, one statement and so one snapshot, then the guarded
/// insert of [`insert`]), and falls back to the locked transaction of
/// [`locked_commit`] when another writer got in between.
///
/// Why this is as safe as deciding under the lock: the insert is one
/// statement (its own transaction) that takes the advisory lock without
/// waiting and stores nothing unless it got the lock and the head is
/// still the one the plan was made on; a repeated event id or idempotency
/// key fails it on a unique key. If another process holds the lock or has
/// committed meanwhile, the guard fails (or, for a commit that lands
/// between our snapshot and our lock, our first position collides with
/// theirs on the primary key); either way we take the locked path, which
/// decides the batch afresh. So every insert happens under the lock on
/// top of the committed head: positions stay gap-free in commit order,
/// and the chain links to the real predecessor. Batches decided on the
/// writer's memory go straight to the same insert, whose guard then also
/// checks what the plan assumed ([`plan::Assumed`]).
async fn commit(
    connection: &mut PgConnection,
    memory: &mut Memory,
    batch: &[&AppendRequest],
) -> Result<Committed, StoreError> {
    let lookups = lookup(connection, &Wanted::of(batch)).await?;
    let mut plan = plan::plan(batch, lookups, Utc::now());
    let outcomes = resolve(connection, std::mem::take(&mut plan.outcomes)).await?;
    if plan.rows.is_empty() {
        // Nothing to store: every answer was decided on one consistent
        // snapshot of committed data.
        memory.committed(&plan);
        return Ok(Committed {
            outcomes,
            head: plan.head,
        });
    }
    let rows = Rows::of(&mut plan);
    match insert(connection, &rows).await {
        Ok(stored) if stored == rows.positions.len() => {
            memory.committed(&plan);
            Ok(Committed {
                outcomes,
                head: plan.head,
            })
        }
        Ok(_) => locked_commit(connection, memory, batch).await,
        Err(error) if guard_broken(&error) => locked_commit(connection, memory, batch).await,
        Err(error) => Err(from_db(error)),
    }
}

/// PostgreSQL's SQLSTATE for a deadlock between two transactions.
const DEADLOCK_DETECTED: &str = "40P01";

/// The batch decided and stored under the cross-process advisory lock:
/// nobody else can append in between, so the insert's guard holds.
async fn locked_commit(
    connection: &mut PgConnection,
    memory: &mut Memory,
    batch: &[&AppendRequest],
) -> Result<Committed, StoreError> {
    let mut tx = connection.begin().await.map_err(from_db)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK_KEY)
        .execute(&mut *tx)
        .await
        .map_err(from_db)?;
    let lookups = lookup(&mut tx, &Wanted::of(batch)).await?;
    let mut plan = plan::plan(batch, lookups, Utc::now());
    let outcomes = resolve(&mut tx, std::mem::take(&mut plan.outcomes)).await?;
    if !plan.rows.is_empty() {
        let rows = Rows::of(&mut plan);
        let stored = insert(&mut tx, &rows).await.map_err(from_db)?;
        if stored != rows.positions.len() {
            return Err(corrupt(
                "the head moved while the append lock was held: another writer ignores the lock",
            ));
        }
    }
    tx.commit().await.map_err(from_db)?;
    memory.committed(&plan);
    Ok(Committed {
        outcomes,
        head: plan.head,
    })
}

/// Everything a batch is decided against, in one statement so that it
/// is one snapshot: the head and its hash, earlier appends by idempotency
/// key and by event id, stream versions and the last position of each
/// condition tag. Rows are tagged by `kind`.
async fn lookup(connection: &mut PgConnection, wanted: &Wanted) -> Result<Lookups, StoreError> {
    const HEAD: i32 = 0;
    const KEY: i32 = 1;
    const EVENT: i32 = 2;
    const STREAM: i32 = 3;
    const TAG: i32 = 4;
    const RECORDED_HEAD: i32 = 5;
    type LookupRow = (
        i32,
        Option<String>,
        Option<i64>,
        i64,
        i64,
        i64,
        Option<Vec<u8>>,
    );
    // A correlated max per tag is one backward index scan each, however
    // many events carry the tag.
    let rows: Vec<LookupRow> = sqlx::query_as(
        "(SELECT 0, NULL::TEXT, position, 0::BIGINT, 0::BIGINT, 0::BIGINT, hash \
             FROM events ORDER BY position DESC LIMIT 1) \
         UNION ALL \
         SELECT 1, key, first_position, last_position, stream_version, 0, NULL::BYTEA \
             FROM idempotency_keys WHERE key = ANY($1) \
         UNION ALL \
         SELECT 2, event_id::TEXT, position, stream_version, append_first, append_last, NULL \
             FROM events WHERE event_id = ANY($2) \
         UNION ALL \
         SELECT 3, st, (SELECT max(stream_version) FROM events WHERE stream = st), 0, 0, 0, NULL \
             FROM unnest($3::TEXT[]) AS st \
         UNION ALL \
         SELECT 4, t, (SELECT max(position) FROM event_tags WHERE tag = t), 0, 0, 0, NULL \
             FROM unnest($4::TEXT[]) AS t \
         UNION ALL \
         SELECT 5, NULL, position, 0, 0, 0, NULL FROM log_head WHERE only_row",
    )
    .bind(&wanted.idempotency_keys)
    .bind(&wanted.event_ids)
    .bind(&wanted.streams)
    .bind(&wanted.tags)
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
            HEAD => {
                let position = a()?;
                lookups.head = from_db_int(position)?;
                lookups.head_hash = hash
                    .unwrap_or_default()
                    .try_into()
                    .map_err(|_| corrupt(format!("hash at position {position} is not 32 bytes")))?;
            }
            KEY => {
                lookups
                    .idempotency_keys
                    .insert(key()?, appended(a()?, b, c)?);
            }
            EVENT => {
                let id = Uuid::parse_str(&key()?).map_err(|e| corrupt(format!("event id: {e}")))?;
                let (position, version, first, last) = (a()?, b, c, d);
                // Versions and positions of one append are both contiguous.
                lookups
                    .event_ids
                    .insert(id, appended(first, last, version + (last - position))?);
            }
            STREAM => {
                // No row: the stream has no event yet.
                if let Ok(version) = a() {
                    lookups.streams.insert(key()?, from_db_int(version)?);
                }
            }
            TAG => {
                if let Ok(max) = a() {
                    lookups.tag_max.insert(key()?, from_db_int(max)?);
                }
            }
            RECORDED_HEAD => recorded_head = Some(from_db_int(a()?)?),
            other => return Err(corrupt(format!("unknown lookup kind {other}"))),
        }
    }
    super::check_recorded_head(recorded_head, lookups.head)?;
    Ok(lookups)
}

/// Turns the plan's outcomes into answers, looking up the committed event
/// that failed a condition (rare, so only then).
async fn resolve(
    connection: &mut PgConnection,
    planned: Vec<Outcome>,
) -> Result<Vec<Result<Appended, StoreError>>, StoreError> {
    let mut outcomes = Vec::with_capacity(planned.len());
    for outcome in planned {
        outcomes.push(match outcome {
            Outcome::Done(result) => result,
            Outcome::CommittedConflict { tags, after } => {
                // The event that failed the condition is committed, and
                // later commits only add higher positions: the first one
                // after `after` is the same in any later snapshot.
                let found: Option<(i64, String)> = sqlx::query_as(
                    "SELECT position, tags FROM events WHERE position = ( \
                         SELECT min(position) FROM event_tags \
                         WHERE tag = ANY($1) AND position > $2)",
                )
                .bind(tag_strings(&tags))
                .bind(db_int(after))
                .fetch_optional(&mut *connection)
                .await
                .map_err(from_db)?;
                let (position, stored) =
                    found.ok_or_else(|| corrupt("a tagged event is missing from the log"))?;
                Err(super::conflict(&tags, &stored, from_db_int(position)?)?)
            }
        });
    }
    Ok(outcomes)
}

/// A batch's rows as [`insert`] binds them, one array per column, with
/// the guard's values: the head the batch was decided on, and what its
/// plan assumed.
#[derive(Debug)]
pub(crate) struct Rows {
    expected_head: i64,
    head: i64,
    positions: Vec<i64>,
    streams: Vec<String>,
    versions: Vec<i64>,
    ids: Vec<Uuid>,
    types: Vec<String>,
    schemas: Vec<i32>,
    occurred: Vec<DateTime<Utc>>,
    recorded: Vec<DateTime<Utc>>,
    payloads: Vec<String>,
    metadata: Vec<String>,
    tags: Vec<String>,
    hashes: Vec<Vec<u8>>,
    firsts: Vec<i64>,
    lasts: Vec<i64>,
    tag_names: Vec<String>,
    tag_positions: Vec<i64>,
    key_names: Vec<String>,
    key_firsts: Vec<i64>,
    key_lasts: Vec<i64>,
    key_versions: Vec<i64>,
    assumed_streams: Vec<String>,
    assumed_versions: Vec<i64>,
    free_tags: Vec<String>,
    free_after: Vec<i64>,
}

impl Rows {
    /// The rows of `plan`, which must store at least one event; takes the
    /// plan's texts, tag rows, keys and assumptions.
    fn of(plan: &mut Plan<'_>) -> Self {
        let count = plan.rows.len();
        let expected_head = plan
            .rows
            .first()
            .map_or(plan.head, |row| row.event.header.position - 1);
        let mut rows = Self {
            expected_head: db_int(expected_head),
            head: db_int(plan.head),
            positions: Vec::with_capacity(count),
            streams: Vec::with_capacity(count),
            versions: Vec::with_capacity(count),
            ids: Vec::with_capacity(count),
            types: Vec::with_capacity(count),
            schemas: Vec::with_capacity(count),
            occurred: Vec::with_capacity(count),
            recorded: Vec::with_capacity(count),
            payloads: Vec::with_capacity(count),
            metadata: Vec::with_capacity(count),
            tags: Vec::with_capacity(count),
            hashes: Vec::with_capacity(count),
            firsts: Vec::with_capacity(count),
            lasts: Vec::with_capacity(count),
            tag_names: Vec::new(),
            tag_positions: Vec::new(),
            key_names: Vec::new(),
            key_firsts: Vec::new(),
            key_lasts: Vec::new(),
            key_versions: Vec::new(),
            assumed_streams: Vec::new(),
            assumed_versions: Vec::new(),
            free_tags: Vec::new(),
            free_after: Vec::new(),
        };
        for row in &mut plan.rows {
            let event = &row.event.header;
            rows.positions.push(db_int(event.position));
            rows.streams.push(event.stream.to_owned());
            rows.versions.push(db_int(event.stream_version));
            rows.ids.push(event.event_id);
            rows.types.push(event.event_type.to_owned());
            rows.schemas.push(i32::from(event.schema_version));
            rows.occurred.push(event.occurred_at);
            rows.recorded.push(event.recorded_at);
            rows.payloads.push(std::mem::take(&mut row.payload));
            rows.metadata.push(std::mem::take(&mut row.metadata));
            rows.tags.push(std::mem::take(&mut row.tags));
            rows.hashes.push(row.event.hash.to_vec());
            rows.firsts.push(db_int(row.append_first));
            rows.lasts.push(db_int(row.append_last));
        }
        for (tag, position) in std::mem::take(&mut plan.tag_rows) {
            rows.tag_names.push(tag);
            rows.tag_positions.push(db_int(position));
        }
        for (key, appended) in std::mem::take(&mut plan.idempotency_keys) {
            rows.key_names.push(key);
            rows.key_firsts.push(db_int(appended.first_position));
            rows.key_lasts.push(db_int(appended.last_position));
            rows.key_versions.push(db_int(appended.stream_version));
        }
        let assumed = std::mem::take(&mut plan.assumed);
        for (stream, version) in assumed.streams {
            rows.assumed_streams.push(stream);
            rows.assumed_versions.push(db_int(version));
        }
        for (tag, after) in assumed.free_tags {
            rows.free_tags.push(tag);
            rows.free_after.push(db_int(after));
        }
        rows
    }
}

/// Stores a batch's rows in every table in one statement, on the
/// condition that the head is still the one they were decided on and
/// what their plan assumed holds; returns how many events were stored (0
/// when not).
///
/// UNNEST over one array per column: one statement text whatever the
/// batch size (so it stays prepared), and no bind limit.
async fn insert(connection: &mut PgConnection, rows: &Rows) -> Result<usize, sqlx::Error> {
    // The guard takes the append lock without waiting (a writer in
    // `locked_commit` holds it while it decides), checks the head and what
    // the plan assumed: each stream at its version (0: absent), no event
    // with each tag after its position.
    // Every sub-statement sees the snapshot the guard saw; the events
    // insert runs first (the main query reads it), the others at the end.
    // Under `locked_commit` the lock is already ours and is taken again.
    let stored: i64 = sqlx::query_scalar(&format!(
        "WITH guard AS ( \
             SELECT 1 WHERE pg_try_advisory_xact_lock({APPEND_LOCK_KEY}) \
                 AND (SELECT COALESCE(max(position), 0) FROM events) = $1 \
                 AND (SELECT position FROM log_head WHERE only_row) = $1 \
                 AND NOT EXISTS (SELECT 1 FROM UNNEST($23::TEXT[], $24::BIGINT[]) AS a(stream, v) \
                     WHERE COALESCE((SELECT max(stream_version) FROM events s WHERE s.stream = a.stream), 0) \
                         <> a.v) \
                 AND NOT EXISTS (SELECT 1 FROM UNNEST($25::TEXT[], $26::BIGINT[]) AS f(tag, after) \
                     WHERE EXISTS (SELECT 1 FROM event_tags t \
                         WHERE t.tag = f.tag AND t.position > f.after))), \
         e AS ( \
             INSERT INTO events ({COLUMNS}, append_first, append_last) \
             SELECT * FROM UNNEST($2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::UUID[], \
                 $6::TEXT[], $7::INTEGER[], $8::TIMESTAMPTZ[], $9::TIMESTAMPTZ[], $10::TEXT[], \
                 $11::TEXT[], $12::TEXT[], $13::BYTEA[], $14::BIGINT[], $15::BIGINT[]) \
             WHERE EXISTS (SELECT 1 FROM guard) \
             RETURNING 1), \
         t AS ( \
             INSERT INTO event_tags (tag, position) \
             SELECT * FROM UNNEST($16::TEXT[], $17::BIGINT[]) WHERE EXISTS (SELECT 1 FROM guard)), \
         h AS ( \
             UPDATE log_head SET position = $18 WHERE only_row AND EXISTS (SELECT 1 FROM guard)), \
         k AS ( \
             INSERT INTO idempotency_keys (key, first_position, last_position, stream_version) \
             SELECT * FROM UNNEST($19::TEXT[], $20::BIGINT[], $21::BIGINT[], $22::BIGINT[]) \
             WHERE EXISTS (SELECT 1 FROM guard)) \
         SELECT count(*) FROM e"
    ))
    .bind(rows.expected_head)
    .bind(&rows.positions)
    .bind(&rows.streams)
    .bind(&rows.versions)
    .bind(&rows.ids)
    .bind(&rows.types)
    .bind(&rows.schemas)
    .bind(&rows.occurred)
    .bind(&rows.recorded)
    .bind(&rows.payloads)
    .bind(&rows.metadata)
    .bind(&rows.tags)
    .bind(&rows.hashes)
    .bind(&rows.firsts)
    .bind(&rows.lasts)
    .bind(&rows.tag_names)
    .bind(&rows.tag_positions)
    .bind(rows.head)
    .bind(&rows.key_names)
    .bind(&rows.key_firsts)
    .bind(&rows.key_lasts)
    .bind(&rows.key_versions)
    .bind(&rows.assumed_streams)
    .bind(&rows.assumed_versions)
    .bind(&rows.free_tags)
    .bind(&rows.free_after)
    .fetch_one(&mut *connection)
    .await?;
    Ok(usize::try_from(stored).unwrap_or(0))
}

fn appended(first: i64, last: i64, version: i64) -> Result<Appended, StoreError> {
    Ok(Appended {
        first_position: from_db_int(first)?,
        last_position: from_db_int(last)?,
        stream_version: from_db_int(version)?,
        deduplicated: true,
    })
}
