//! The read models in SQL (SQLite and PostgreSQL), in the same database as
//! the event log: the projection runner, rebuilds, and the queries the HTTP
//! API and the CLI serve.
//!
//! - [`ReadModels::open`] connects to the store's URL, applies the
//!   migrations (idempotent) and creates the read-model tables it misses.
//! - [`ReadModels::catch_up`] / [`ReadModels::follow`] read the log from
//!   the checkpoint in pages and apply each page and its checkpoint in one
//!   transaction, so a crash never loses or doubles an event.
//! - [`ReadModels::rebuild`] builds a projection's tables aside from
//!   position 0, then swaps them in within one transaction; queries keep
//!   answering from the old tables meanwhile.
//!
//! **Invariant:** a projection's tables hold exactly the effect of the
//! events up to its checkpoint, since rows and checkpoint commit together.
//!
//! **Boundary:** the log stays the authority. Read models may lag; a
//! decision (claiming a task) is made by `Ledger` against the log.

mod codec;
mod db;
mod export;
mod query;
mod runner;
mod schema;
mod sqltx;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use commands::vault::VaultError;
use commands::Vault;
use domain::subject::Subject;
use projections::ReadModelError;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};

pub use db::Backend;
pub use export::{AuditExport, ExportFormat, EXPORT_PAGE_ROWS};
pub use query::{
    AuditPage, AuditQuery, DeadlineQuery, EndedRetention, HoldQuery, HoldView, MetaStatus,
    RecordedForget, RequestDetail, RequestToForget, ResourcePage, ResourceQuery, ResourceView,
    TaskQuery, PAGE_ROWS_DEFAULT, PAGE_ROWS_MAX, REPORT_LIST_ROWS_MAX, REPORT_REQUESTS_MAX,
};
pub use runner::{RebuildReport, FOLLOW_WAIT, PAGE_EVENTS_MAX, REBUILD_PAGE_EVENTS};
pub use schema::SCHEMA_VERSION;

/// Connections each read-model pool keeps.
pub const POOL_CONNECTIONS_MAX: u32 = 4;
/// How long a SQLite statement waits for another connection's write lock
/// (the event store's writer, a second runner) before failing.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The read models of one database: runner, rebuild and queries. Cheap to
/// clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct ReadModels {
    pool: Pool,
    /// Test-only fault: fail the page after this many more pages, between
    /// the rows and the checkpoint.
    fault: Arc<Mutex<Option<usize>>>,
    /// Most events in one page of a rebuild's fill
    /// ([`REBUILD_PAGE_EVENTS`], smaller only in tests).
    rebuild_page_events: usize,
    /// Opens sealed personal data for display and hashes external ids in
    /// filters; without it, entries show sealed tokens and keyed hashes.
    vault: Option<Arc<Vault>>,
}

/// A pooled connection of either backend.
enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Conn {
    fn exec(&mut self) -> db::Exec<'_> {
        match self {
            Conn::Sqlite(c) => db::Exec::Sqlite(c),
            Conn::Postgres(c) => db::Exec::Postgres(c),
        }
    }
}

/// An open transaction of either backend. Dropped without `commit`, it
/// rolls back.
enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    fn exec(&mut self) -> db::Exec<'_> {
        match self {
            Tx::Sqlite(tx) => db::Exec::Sqlite(tx),
            Tx::Postgres(tx) => db::Exec::Postgres(tx),
        }
    }

    async fn commit(self) -> Result<(), ReadModelError> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
        .map_err(db::db_error)
    }
}

impl ReadModels {
    /// Opens the read models in the database of the event store `url`
    /// (`sqlite://PATH` or `postgres://...`), applies the migrations and
    /// creates missing read-model tables. Open the event store first when
    /// both are opened in one process: it creates the SQLite file.
    pub async fn open(url: &str) -> Result<Self, ReadModelError> {
        let unavailable = |e: sqlx::Error| ReadModelError::Unavailable(e.to_string());
        let pool = if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let options = SqliteConnectOptions::from_str("sqlite:")
                .map_err(unavailable)?
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // Read models are rebuilt from the log, so a commit lost
                // to a power cut is re-applied from the older checkpoint;
                // the log's own writer keeps FULL.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            let pool = crate::pools::without_reaper::<sqlx::Sqlite>()
                .max_connections(POOL_CONNECTIONS_MAX)
                .connect_with(options)
                .await
                .map_err(unavailable)?;
            sqlx::migrate!("migrations/sqlite")
                .run(&pool)
                .await
                .map_err(|e| ReadModelError::Unavailable(format!("migrating SQLite: {e}")))?;
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(unavailable)?;
            let pool = crate::pools::without_reaper::<sqlx::Postgres>()
                .max_connections(POOL_CONNECTIONS_MAX)
                .connect_with(options)
                .await
                .map_err(unavailable)?;
            sqlx::migrate!("migrations/postgres")
                .run(&pool)
                .await
                .map_err(|e| ReadModelError::Unavailable(format!("migrating PostgreSQL: {e}")))?;
            Pool::Postgres(pool)
        } else {
            return Err(ReadModelError::InvalidQuery(format!(
                "unknown database URL {url:?}: use sqlite://PATH or postgres://..."
            )));
        };
        let models = Self {
            pool,
            fault: Arc::new(Mutex::new(None)),
            rebuild_page_events: REBUILD_PAGE_EVENTS,
            vault: None,
        };
        runner::ensure_schema(&models).await?;
        Ok(models)
    }

    /// These read models, showing personal data through `vault`.
    pub fn with_vault(mut self, vault: Arc<Vault>) -> Self {
        self.vault = Some(vault);
        self
    }

    /// A subject filter as the read models store it: an external account
    /// by its keyed hash. Unparsable input is left for the query to refuse.
    pub(crate) fn stored_subject(&self, raw: &str) -> String {
        match (&self.vault, Subject::parse(raw)) {
            (Some(vault), Ok(subject)) => vault.lookup_subject(&subject).to_string(),
            _ => raw.to_owned(),
        }
    }

    /// Opens the sealed values and keyed-hash ids inside `texts`.
    pub async fn reveal(&self, texts: &mut [&mut String]) -> Result<(), ReadModelError> {
        match &self.vault {
            Some(vault) => vault.reveal(texts).await.map_err(vault_error),
            None => Ok(()),
        }
    }

    /// Opens the sealed values and keyed-hash ids inside a JSON value.
    pub async fn reveal_json(&self, value: &mut serde_json::Value) -> Result<(), ReadModelError> {
        match &self.vault {
            Some(vault) => vault.reveal_json(value).await.map_err(vault_error),
            None => Ok(()),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }

    async fn conn(&self) -> Result<Conn, ReadModelError> {
        match &self.pool {
            Pool::Sqlite(pool) => pool.acquire().await.map(Conn::Sqlite),
            Pool::Postgres(pool) => pool.acquire().await.map(Conn::Postgres),
        }
        .map_err(db::db_error)
    }

    /// Begins a write transaction. SQLite takes the write lock at once
    /// (BEGIN IMMEDIATE), so that a page never fails on upgrading a read
    /// lock while the event store's writer commits.
    async fn begin(&self) -> Result<Tx, ReadModelError> {
        match &self.pool {
            Pool::Sqlite(pool) => pool.begin_with("BEGIN IMMEDIATE").await.map(Tx::Sqlite),
            Pool::Postgres(pool) => pool.begin().await.map(Tx::Postgres),
        }
        .map_err(db::db_error)
    }

    /// Test-only: a rebuild's fill in pages of at most `events` events
    /// (1 to [`REBUILD_PAGE_EVENTS`]), so that a small history still
    /// crosses many pages.
    #[doc(hidden)]
    pub fn with_rebuild_page_events(mut self, events: usize) -> Self {
        self.rebuild_page_events = events.clamp(1, REBUILD_PAGE_EVENTS);
        self
    }

    /// Test-only: the page after `pages_ok` more successful pages fails
    /// after its rows were written and before its checkpoint, as a crash
    /// there would; its transaction rolls back.
    #[doc(hidden)]
    pub fn inject_fault_after(&self, pages_ok: usize) {
        if let Ok(mut fault) = self.fault.lock() {
            *fault = Some(pages_ok);
        }
    }

    fn fault_point(&self) -> Result<(), ReadModelError> {
        let Ok(mut fault) = self.fault.lock() else {
            return Ok(());
        };
        match *fault {
            Some(0) => {
                *fault = None;
                Err(ReadModelError::Injected(
                    "after the read-model rows, before the checkpoint",
                ))
            }
            Some(n) => {
                *fault = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

fn vault_error(error: VaultError) -> ReadModelError {
    match error {
        VaultError::Unavailable(why) => ReadModelError::Unavailable(why),
        other => ReadModelError::Tampered(other.to_string()),
    }
}
