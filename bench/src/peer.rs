//! The peer: `postgres-es` with `cqrs-es`, used as their documentation
//! shows. `persist` writes one event per call (one transaction each);
//! `CqrsFramework::execute` loads the aggregate, handles the command and
//! persists its event.

use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore, SerializedEvent};
use cqrs_es::{Aggregate, CqrsFramework, DomainEvent};
use postgres_es::{PostgresCqrs, PostgresEventRepository};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::measure::Op;
use crate::shape;

/// Aggregates each `execute` writer cycles through.
pub const AGGREGATES_PER_WRITER: usize = 100;

/// The schema from postgres-es's `db/init.sql`.
const SCHEMA: &str = "
CREATE TABLE events (
    aggregate_type text NOT NULL,
    aggregate_id   text NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text NOT NULL,
    event_version  text NOT NULL,
    payload        json NOT NULL,
    metadata       json NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE TABLE snapshots (
    aggregate_type   text NOT NULL,
    aggregate_id     text NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0) NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);";

/// A deletion-request aggregate in cqrs-es terms: one command, one event.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Requests {
    received: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RequestEvent {
    DeletionRequested { body: serde_json::Value },
}

impl DomainEvent for RequestEvent {
    fn event_type(&self) -> String {
        shape::EVENT_TYPE.into()
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug)]
pub struct RequestDeletion {
    body: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub struct Never;

impl Aggregate for Requests {
    const TYPE: &'static str = "request";
    type Command = RequestDeletion;
    type Event = RequestEvent;
    type Error = Never;
    type Services = ();

    async fn handle(
        &mut self,
        command: RequestDeletion,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Never> {
        sink.write(RequestEvent::DeletionRequested { body: command.body }, self)
            .await;
        Ok(())
    }

    fn apply(&mut self, _event: RequestEvent) {
        self.received += 1;
    }
}

/// A pool as large as the number of writers, so that the peer never
/// waits for a connection.
pub async fn setup(url: &str, writers: usize) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(writers.max(1))?)
        .connect(url)
        .await?;
    sqlx::raw_sql(SCHEMA).execute(&pool).await?;
    Ok(pool)
}

/// Calls `PostgresEventRepository::persist` with one event per call.
pub struct PersistWriter {
    repository: Arc<PostgresEventRepository>,
    writer: usize,
    aggregate_id: String,
    sequence: usize,
}

impl std::fmt::Debug for PersistWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistWriter")
            .field("aggregate_id", &self.aggregate_id)
            .finish_non_exhaustive()
    }
}

pub fn persist_writers(pool: &PgPool, writers: usize) -> Vec<PersistWriter> {
    let repository = Arc::new(PostgresEventRepository::new(pool.clone()));
    (0..writers)
        .map(|writer| PersistWriter {
            repository: repository.clone(),
            writer,
            aggregate_id: format!("persist-{writer}"),
            sequence: 0,
        })
        .collect()
}

#[async_trait]
impl Op for PersistWriter {
    async fn run(&mut self) -> anyhow::Result<u64> {
        self.sequence += 1;
        let event = SerializedEvent::new(
            self.aggregate_id.clone(),
            self.sequence,
            Requests::TYPE.into(),
            shape::EVENT_TYPE.into(),
            "1".into(),
            shape::payload(self.writer, self.sequence as u64),
            serde_json::to_value(shape::metadata())?,
        );
        self.repository
            .persist::<Requests>(&[event], None)
            .await
            .map_err(|e| anyhow::anyhow!("persist: {e}"))?;
        Ok(1)
    }
}

type Framework = PostgresCqrs<Requests>;

/// Runs `CqrsFramework::execute` over its own aggregates, round robin.
pub struct ExecuteWriter {
    framework: Arc<Framework>,
    writer: usize,
    n: u64,
}

impl std::fmt::Debug for ExecuteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecuteWriter")
            .field("writer", &self.writer)
            .finish_non_exhaustive()
    }
}

pub fn execute_writers(pool: &PgPool, writers: usize) -> Vec<ExecuteWriter> {
    let repository = PostgresEventRepository::new(pool.clone());
    let store = PersistedEventStore::new_event_store(repository);
    let framework = Arc::new(CqrsFramework::new(store, Vec::new(), ()));
    (0..writers)
        .map(|writer| ExecuteWriter {
            framework: framework.clone(),
            writer,
            n: 0,
        })
        .collect()
}

#[async_trait]
impl Op for ExecuteWriter {
    async fn run(&mut self) -> anyhow::Result<u64> {
        self.n += 1;
        let aggregate = format!(
            "request-{}-{}",
            self.writer,
            self.n % AGGREGATES_PER_WRITER as u64
        );
        self.framework
            .execute(
                &aggregate,
                RequestDeletion {
                    body: shape::payload(self.writer, self.n),
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("execute: {e}"))?;
        Ok(1)
    }
}
