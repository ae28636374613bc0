//! Shared by the store test binaries: fresh stores of every backend, event
//! builders and the PostgreSQL gate.
#![allow(dead_code)]

#[path = "fresh_db.rs"]
mod fresh_db;
pub use fresh_db::FreshDatabase;
#[path = "backends.rs"]
mod backends;
#[allow(unused_imports)]
pub(crate) use backends::on_both_backends;

use std::sync::Arc;

use adapters::store::{self, Store};
use chrono::Utc;
use commands::log::{
    verify_chain, AppendRequest, ChainBreak, EventStore, ExpectedVersion, Metadata, NewEvent,
    StoreError, StreamId, Tag, GENESIS_HASH,
};
use commands::memory::MemoryStore;
use sqlx::Connection;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Sqlite,
    Postgres,
}

/// A fresh, empty store of one backend, and what it takes to clean up.
pub struct Harness {
    pub kind: Kind,
    pub store: Arc<dyn EventStore>,
    pub memory: Option<Arc<MemoryStore>>,
    pub db: Option<Arc<Store>>,
    /// The URL a second process (or a second `open`) uses.
    pub url: Option<String>,
    dir: Option<tempfile::TempDir>,
    postgres: Option<FreshDatabase>,
}

impl Harness {
    /// A fresh store, or `None` when the PostgreSQL suite is skipped.
    pub async fn new(kind: Kind) -> Option<Self> {
        match kind {
            Kind::Memory => {
                let memory = Arc::new(MemoryStore::new());
                Some(Self {
                    kind,
                    store: memory.clone(),
                    memory: Some(memory),
                    db: None,
                    url: None,
                    dir: None,
                    postgres: None,
                })
            }
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/nested/lethe.db", dir.path().display());
                let db = Arc::new(store::open(&url).await.expect("open SQLite store"));
                Some(Self {
                    kind,
                    store: db.clone(),
                    memory: None,
                    db: Some(db),
                    url: Some(url),
                    dir: Some(dir),
                    postgres: None,
                })
            }
            Kind::Postgres => {
                let fresh = FreshDatabase::create("lethe_test").await?;
                let url = fresh.url.clone();
                let db = Arc::new(store::open(&url).await.expect("open PostgreSQL store"));
                Some(Self {
                    kind,
                    store: db.clone(),
                    memory: None,
                    db: Some(db),
                    url: Some(url),
                    dir: None,
                    postgres: Some(fresh),
                })
            }
        }
    }

    /// Asserts that the whole log verifies and returns its length.
    pub async fn assert_intact(&self) -> u64 {
        if let Some(db) = &self.db {
            let report = store::verify(db).await.expect("the log verifies");
            return report.events;
        }
        let events = self.memory.as_ref().expect("memory store").all_events();
        let (_, next) = verify_chain(&events, GENESIS_HASH, 1).expect("the log verifies");
        next - 1
    }

    /// Closes the store and drops the PostgreSQL database.
    pub async fn finish(self) {
        let Self {
            store,
            db,
            postgres,
            ..
        } = self;
        drop(store);
        if let Some(db) = db {
            db.close().await;
        }
        if let Some(fresh) = postgres {
            fresh.drop_now().await;
        }
    }
}

/// Runs `sql` (statements split on `;`) on the harness's database,
/// outside the store.
pub async fn alter(h: &Harness, kind: Kind, sql: &str) {
    let url = h.url.clone().unwrap();
    let statements = sql.split(';').filter(|s| !s.trim().is_empty());
    macro_rules! run_on {
        ($connection:ty) => {{
            let mut connection = <$connection>::connect(&url).await.unwrap();
            for statement in statements {
                sqlx::query(statement)
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
            connection.close().await.unwrap();
        }};
    }
    match kind {
        Kind::Sqlite => run_on!(sqlx::SqliteConnection),
        Kind::Postgres => run_on!(sqlx::PgConnection),
        Kind::Memory => unreachable!("the memory store has no SQL"),
    }
}

/// Verifies the log of `db`, which must break at `position`; the break.
pub async fn broken_at(db: &Store, position: u64) -> ChainBreak {
    match store::verify(db).await {
        Err(store::VerifyError::Broken(chain_break)) => {
            assert_eq!(chain_break.position, position, "{chain_break}");
            chain_break
        }
        other => panic!("verify should fail at {position}, got {other:?}"),
    }
}

/// Appends `request` to `store`, which must refuse it as corrupt with a
/// reason that contains `says`.
pub async fn refused_as_corrupt(store: &dyn EventStore, request: AppendRequest, says: &str) {
    match store.append(request).await {
        Err(StoreError::Corrupt(why)) => assert!(why.contains(says), "{why}"),
        other => panic!("the append should be refused as corrupt, got {other:?}"),
    }
}

/// A one-event append with no checks.
pub fn event(event_type: &str, tags: &[&str]) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        occurred_at: Utc::now(),
        payload: serde_json::json!({ "note": "abc", "n": 1, "nested": { "z": [1, 2.5, null], "a": "é\u{0}" } }),
        metadata: Metadata {
            actor: "service:test".into(),
            correlation_id: Some(Uuid::now_v7()),
            causation_id: None,
            idempotency_key: None,
            source_channel: Some("test".into()),
        },
        tags: tags.iter().map(|tag| Tag::new(*tag)).collect(),
    }
}

pub fn request(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest {
        stream: StreamId::new(stream),
        expected,
        condition: None,
        idempotency_key: None,
        events,
    }
}
