//! Shared by the read-model tests: a fresh database of each backend with
//! the event store and the read models opened on it, the PostgreSQL gate,
//! and a generator of realistic histories through the `Ledger`.
#![allow(dead_code)]

#[path = "../support/backends.rs"]
mod backends;
#[path = "../support/fresh_db.rs"]
mod fresh_db;
#[allow(unused_imports)]
pub(crate) use backends::on_both_backends;
pub use fresh_db::FreshDatabase;

pub mod history;

use std::sync::Arc;

use adapters::readmodel::ReadModels;
use adapters::store::{self, Store};
use commands::log::{EventStore, RecordedEvent, READ_EVENTS_MAX};
use projections::memory::MemoryReadModels;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A fresh database with the log and the read models on it.
pub struct Harness {
    pub kind: Kind,
    pub store: Arc<Store>,
    pub models: ReadModels,
    pub url: String,
    dir: Option<tempfile::TempDir>,
    postgres: Option<FreshDatabase>,
}

impl Harness {
    /// `None` when the PostgreSQL suite is skipped.
    pub async fn new(kind: Kind) -> Option<Self> {
        let (url, dir, postgres) = match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/lethe.db", dir.path().display());
                (url, Some(dir), None)
            }
            Kind::Postgres => {
                let fresh = FreshDatabase::create("lethe_rm").await?;
                (fresh.url.clone(), None, Some(fresh))
            }
        };
        let store = Arc::new(store::open(&url).await.expect("open the event store"));
        let models = ReadModels::open(&url).await.expect("open the read models");
        Some(Self {
            kind,
            store,
            models,
            url,
            dir,
            postgres,
        })
    }

    /// Every event of the log, in order.
    pub async fn all_events(&self) -> Vec<RecordedEvent> {
        let mut all = Vec::new();
        loop {
            let after = all.last().map_or(0, |e: &RecordedEvent| e.position);
            let page = self
                .store
                .read_all(after, READ_EVENTS_MAX)
                .await
                .expect("read the log");
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    /// The read models the in-memory reference builds from the same log.
    pub async fn reference(&self) -> MemoryReadModels {
        let mut memory = MemoryReadModels::new();
        memory
            .apply_all(&self.all_events().await)
            .await
            .expect("the reference projects the log");
        memory
    }

    /// Runs one SQL statement on the harness's database, beside the store
    /// and the read models (what an older version or an operator left).
    pub async fn execute(&self, sql: &str) {
        use sqlx::Connection as _;
        match self.kind {
            Kind::Postgres => {
                let mut connection = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut connection).await.unwrap();
                connection.close().await.unwrap();
            }
            Kind::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut connection).await.unwrap();
                connection.close().await.unwrap();
            }
        }
    }

    /// The integer that one SQL query answers, on the harness's database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        use sqlx::Connection as _;
        match self.kind {
            Kind::Postgres => {
                let mut connection = sqlx::PgConnection::connect(&self.url).await.unwrap();
                let value: i64 = sqlx::query_scalar(sql)
                    .fetch_one(&mut connection)
                    .await
                    .unwrap();
                connection.close().await.unwrap();
                value
            }
            Kind::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                let value: i64 = sqlx::query_scalar(sql)
                    .fetch_one(&mut connection)
                    .await
                    .unwrap();
                connection.close().await.unwrap();
                value
            }
        }
    }

    /// Marks `projection`'s tables as made by an older version of Lethe
    /// (one schema version lower), as an upgrade finds them.
    pub async fn age_schema(&self, projection: &str) {
        self.execute(&format!(
            "UPDATE read_model_checkpoints SET schema_version = schema_version - 1 \
             WHERE projection = '{projection}'"
        ))
        .await;
    }

    pub async fn finish(self) {
        let Self {
            store,
            models,
            postgres,
            dir,
            ..
        } = self;
        models.close().await;
        store.close().await;
        drop(store);
        drop(dir);
        if let Some(fresh) = postgres {
            fresh.drop_now().await;
        }
    }
}
