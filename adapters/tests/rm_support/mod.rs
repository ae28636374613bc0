//! Shared by the read-model tests: a fresh database of each backend with
//! the event store and the read models opened on it, the PostgreSQL gate,
//! and a generator of realistic histories through the `Ledger`.
#![allow(dead_code)]

pub mod history;

use std::sync::Arc;

use adapters::readmodel::ReadModels;
use adapters::store::{self, Store};
use commands::log::{EventStore, RecordedEvent, READ_EVENTS_MAX};
use projections::memory::MemoryReadModels;
use sqlx::Connection;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server to test against, if any. With `CI=true` a missing
/// `DATABASE_URL` fails the test: CI must never skip this suite silently.
pub fn postgres_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "CI=true but DATABASE_URL is unset: the PostgreSQL read-model suite must run \
                     in CI (use `make test`, which starts a throwaway PostgreSQL)"
                );
            }
            eprintln!(
                "\n#############################################################\n\
                 PostgreSQL read-model suite SKIPPED: DATABASE_URL unset (run `make test`)\n\
                 #############################################################\n"
            );
            None
        }
    }
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |at| authority_start + at);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A fresh database with the log and the read models on it.
pub struct Harness {
    pub kind: Kind,
    pub store: Arc<Store>,
    pub models: ReadModels,
    pub url: String,
    dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
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
                let admin_url = postgres_url()?;
                let name = format!("lethe_rm_{}", Uuid::now_v7().simple());
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .expect("connect to DATABASE_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                admin.close().await.expect("close admin connection");
                (
                    with_database(&admin_url, &name),
                    None,
                    Some((admin_url, name)),
                )
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
        if let Some((admin_url, name)) = postgres {
            if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
                let _ = admin.close().await;
            }
        }
    }
}
