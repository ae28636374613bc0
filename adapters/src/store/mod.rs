//! The event log on disk: the SQLite and PostgreSQL backends of the
//! [`EventStore`] port, behind one [`Store`] type.
//!
//! - [`open`] picks the backend from the URL, creates what is missing and
//!   applies the embedded migrations.
//! - Appends go through one writer task per opened store (group commit,
//!   see `writer`); reads go straight to a small connection pool.
//! - [`verify`] re-walks the hash chain.
//!
//! **Invariant:** positions are 1..=head without gap, assigned in commit
//! order under a cross-process lock, and each event's hash chains to the
//! one before it.

mod plan;
mod postgres;
mod row;
mod sqlite;
mod verify;
mod writer;

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use commands::log::{
    validate_append, AppendRequest, Appended, EventStore, Position, RecordedEvent, StoreError,
    StreamId, Tag, READ_EVENTS_MAX,
};
use sqlx::{PgPool, SqlitePool};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

pub use sqlite::{
    RECENT_TAG_ROWS_MAX as SQLITE_RECENT_TAG_ROWS_MAX,
    SETTLE_RECENT_TAGS as SQLITE_SETTLE_RECENT_TAGS, WRITER_PRAGMAS as SQLITE_WRITER_PRAGMAS,
};
pub use verify::{
    verify, verify_with_progress, UnfinishedForgets, VerifyError, VerifyReport, VERIFY_PAGE_EVENTS,
};
pub use writer::{BATCH_EVENTS_MAX, QUEUE_APPENDS_MAX};

/// Pages of `read_all_ahead` at least this long are read and decoded on
/// a task of their own; shorter ones are not worth the hop.
const SPAWNED_READ_EVENTS_MIN: usize = 256;
/// Connections each store keeps for reads (the writer has its own).
pub const READ_POOL_CONNECTIONS_MAX: u32 = 4;
/// How often `wait_for` looks at the database for appends made by other
/// processes. Appends of this process wake it at once.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// An opened event store. Cheap to share behind an `Arc`; dropping the
/// last handle stops its writer task once the queued appends are done.
pub struct Store {
    backend: Backend,
    writer: tokio::sync::mpsc::Sender<writer::Job>,
    /// The head as of this process's last commit.
    local_head: watch::Receiver<Position>,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .finish_non_exhaustive()
    }
}

/// Opens the store named by `url`:
///
/// - `sqlite://PATH` (or `sqlite:PATH`): the file and its directory are
///   created when missing; WAL with `synchronous=FULL`.
/// - `postgres://...` or `postgresql://...`: the database must exist.
///
/// Must be called inside a Tokio runtime: it starts the writer task.
/// `url` with the password of its user, if any, replaced by `***`: for
/// messages and logs (`postgres://lethe:secret@db/x` →
/// `postgres://lethe:***@db/x`).
pub fn redacted(url: &str) -> String {
    let url = match url.split_once('?') {
        Some((base, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{base}?{}", query.join("&"))
        }
        None => url.to_owned(),
    };
    let url = url.as_str();
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let Some(at) = url[start..authority_end].rfind('@').map(|i| start + i) else {
        return url.to_owned();
    };
    match url[start..at].find(':').map(|i| start + i) {
        Some(colon) => format!("{}:***{}", &url[..colon], &url[at..]),
        None => url.to_owned(),
    }
}

/// Whether `url` names a store that holds a log already, without creating
/// or migrating anything: what `lethe verify` checks first, so that a
/// mistyped path or database is reported rather than verified empty.
pub async fn holds_a_log(url: &str) -> Result<bool, StoreError> {
    use sqlx::Connection as _;
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if !std::path::Path::new(path).is_file() {
            return Ok(false);
        }
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .read_only(true);
        let mut connection = sqlx::SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| StoreError::Unavailable(format!("opening {path}: {e}")))?;
        let found: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'",
        )
        .fetch_optional(&mut connection)
        .await
        .map_err(|e| StoreError::Unavailable(format!("reading {path}: {e}")))?;
        connection.close().await.ok();
        Ok(found.is_some())
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut connection = sqlx::PgConnection::connect(url)
            .await
            .map_err(|e| StoreError::Unavailable(format!("connecting: {e}")))?;
        let found: bool = sqlx::query_scalar("SELECT to_regclass('events') IS NOT NULL")
            .fetch_one(&mut connection)
            .await
            .map_err(|e| StoreError::Unavailable(format!("reading: {e}")))?;
        connection.close().await.ok();
        Ok(found)
    } else {
        Err(StoreError::InvalidEvent(format!(
            "unknown store URL {:?}: use sqlite://PATH or postgres://...",
            redacted(url)
        )))
    }
}

pub async fn open(url: &str) -> Result<Store, StoreError> {
    let (backend, writer, head) = if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let (pool, committer) = sqlite::open(path).await?;
        let head = sqlite::head(&pool).await?;
        let (sender, receiver) = watch::channel(head);
        (
            Backend::Sqlite(pool),
            writer::spawn(committer, sender),
            receiver,
        )
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (pool, committer) = postgres::open(url).await?;
        let head = postgres::head(&pool).await?;
        let (sender, receiver) = watch::channel(head);
        (
            Backend::Postgres(pool),
            writer::spawn(committer, sender),
            receiver,
        )
    } else {
        return Err(StoreError::InvalidEvent(format!(
            "unknown store URL {:?}: use sqlite://PATH or postgres://...",
            redacted(url)
        )));
    };
    Ok(Store {
        backend,
        writer,
        local_head: head,
    })
}

impl Store {
    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes the read pool. Appends still queued are finished by the
    /// writer when the store is dropped.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

impl Backend {
    /// Up to `limit` stored rows after position `after`, not decoded yet
    /// (`verify` checks them as stored; the reads decode them).
    async fn raw_page(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<row::RawEvent>, StoreError> {
        match self {
            Backend::Sqlite(pool) => sqlite::read_all(pool, after, limit).await,
            Backend::Postgres(pool) => postgres::read_all(pool, after, limit).await,
        }
    }
}

fn decode_all(raws: Vec<row::RawEvent>) -> Result<Vec<RecordedEvent>, StoreError> {
    raws.into_iter()
        .map(|raw| {
            let position = raw.position();
            raw.decode()
                .map_err(|why| corrupt(format!("event at position {position}: {why}")))
        })
        .collect()
}

#[async_trait]
impl EventStore for Store {
    async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError> {
        validate_append(&request)?;
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(writer::Job { request, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the append writer has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Unavailable("the append writer stopped before answering".into())
        })?
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = limit.min(READ_EVENTS_MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        decode_all(match &self.backend {
            Backend::Sqlite(pool) => {
                sqlite::read_stream(pool, stream.as_str(), after_version, limit).await?
            }
            Backend::Postgres(pool) => {
                postgres::read_stream(pool, stream.as_str(), after_version, limit).await?
            }
        })
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = limit.min(READ_EVENTS_MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        decode_all(self.backend.raw_page(after, limit).await?)
    }

    async fn read_all_ahead(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = limit.min(READ_EVENTS_MAX);
        if limit < SPAWNED_READ_EVENTS_MIN {
            return self.read_all(after, limit).await;
        }
        // Reading a page's rows and decoding them (parsing, the canonical
        // form check) is most of a page's CPU: on a task of its own it
        // runs on another core while the caller works on the page before.
        let backend = self.backend.clone();
        tokio::spawn(async move { decode_all(backend.raw_page(after, limit).await?) })
            .await
            .unwrap_or_else(|failed| match failed.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Err(StoreError::Unavailable(
                    "the runtime shut down during a read".into(),
                )),
            })
    }

    async fn read_by_tags(
        &self,
        tags: &[Tag],
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = limit.min(READ_EVENTS_MAX);
        if limit == 0 || tags.is_empty() {
            return Ok(Vec::new());
        }
        decode_all(match &self.backend {
            Backend::Sqlite(pool) => sqlite::read_by_tags(pool, tags, after, limit).await?,
            Backend::Postgres(pool) => postgres::read_by_tags(pool, tags, after, limit).await?,
        })
    }

    async fn head(&self) -> Result<Position, StoreError> {
        match &self.backend {
            Backend::Sqlite(pool) => sqlite::head(pool).await,
            Backend::Postgres(pool) => postgres::head(pool).await,
        }
    }

    async fn wait_for(&self, after: Position, timeout: Duration) -> Result<Position, StoreError> {
        let deadline = Instant::now() + timeout;
        let mut local = self.local_head.clone();
        loop {
            // Mark the local head seen before reading the database, so
            // that a commit in between still wakes the select below.
            let local_head = *local.borrow_and_update();
            if local_head > after {
                return Ok(local_head);
            }
            let head = self.head().await?;
            let now = Instant::now();
            if head > after || now >= deadline {
                return Ok(head);
            }
            // Other processes' appends are only seen by polling, hence
            // the bounded nap even when the local writer is idle.
            let nap = POLL_INTERVAL.min(deadline - now);
            tokio::select! {
                changed = local.changed() => {
                    if changed.is_err() {
                        // The writer is gone; keep polling until the deadline.
                        tokio::time::sleep(nap).await;
                    }
                }
                () = tokio::time::sleep(nap) => {}
            }
        }
    }
}

/// Maps a database error: data that does not decode is corruption, the
/// rest (I/O, pool, constraint, server) makes the store unavailable.
fn from_db(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(error.to_string()),
        other => StoreError::Unavailable(other.to_string()),
    }
}

fn unavailable(error: impl fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn corrupt(why: impl Into<String>) -> StoreError {
    StoreError::Corrupt(why.into())
}

/// Refuses to append to a log whose recorded head (`log_head`) is not
/// its last stored event: events were removed from its end, or added
/// without an append. Appending would hide that (the next append would
/// record its own head), so the store fails closed until an operator has
/// restored the log from a backup (`lethe verify` names the position).
fn check_recorded_head(recorded: Option<Position>, stored: Position) -> Result<(), StoreError> {
    match recorded {
        Some(recorded) if recorded == stored => Ok(()),
        Some(recorded) => Err(corrupt(format!(
            "the log records its head at {recorded} but its last stored event is at \
             {stored}; nothing is appended until the log is restored from a backup \
             (`lethe verify` names the position)"
        ))),
        None => Err(corrupt(
            "the log's head record is missing; nothing is appended until the log is restored \
             from a backup (`lethe verify` names the position)",
        )),
    }
}

/// Positions and versions are u64 in the port and BIGINT in the
/// databases; values beyond i64 never occur, a huge "after" means "none".
fn db_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The error for a conditional append that met the committed event at
/// `position` (whose stored tags are `stored`): the first of the event's
/// tags that the condition names, as the in-memory store reports it.
fn conflict(condition: &[Tag], stored: &str, position: Position) -> Result<StoreError, StoreError> {
    let tags: Vec<Tag> = serde_json::from_str(stored)
        .map_err(|e| corrupt(format!("tags at position {position}: {e}")))?;
    let wanted: HashSet<&Tag> = condition.iter().collect();
    let tag = tags
        .into_iter()
        .find(|tag| wanted.contains(tag))
        .ok_or_else(|| {
            corrupt(format!(
                "the tag index disagrees with the event at {position}"
            ))
        })?;
    Ok(StoreError::ConditionFailed { tag, position })
}

#[cfg(test)]
mod redaction_tests {
    use super::redacted;

    #[test]
    fn passwords_are_masked_in_the_authority_and_the_query() {
        assert_eq!(
            redacted("postgres://lethe:secret@db:5432/x"),
            "postgres://lethe:***@db:5432/x"
        );
        assert_eq!(
            redacted("postgres://lethe@db/x?sslmode=require&password=secret"),
            "postgres://lethe@db/x?sslmode=require&password=***"
        );
        assert_eq!(redacted("postgres://db/x"), "postgres://db/x");
        assert_eq!(
            redacted("sqlite://./data/lethe.db"),
            "sqlite://./data/lethe.db"
        );
    }
}
