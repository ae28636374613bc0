//! Lethe measured through its own ports: appends through `EventStore`
//! (the group-commit writer behind it) and deletion requests through
//! `Ledger::request_deletion`, the full decide-and-append path.

use std::sync::Arc;

use adapters::store::Store;
use anyhow::Context as _;
use async_trait::async_trait;
use commands::clock::SystemClock;
use commands::ledger::{Context, DeletionRequestInput, Ledger};
use commands::log::{AppendCondition, AppendRequest, EventStore, ExpectedVersion, StreamId};
use domain::deadline::{PolicyName, PolicyTable};
use domain::ids::{AccountId, WorkspaceId};
use domain::membership::Registration;
use domain::subject::Subject;
use domain::values::{Channel, Initiator};

use crate::measure::Op;
use crate::shape;

/// Appends to its own stream with the exact expected version, as a
/// command does; optionally on the condition that no event with its
/// workspace tag was appended since its last append.
#[derive(Debug)]
pub struct AppendWriter {
    store: Arc<Store>,
    writer: usize,
    stream: StreamId,
    version: u64,
    last_position: u64,
    events_per_append: usize,
    conditional: bool,
}

pub fn append_writers(
    store: &Arc<Store>,
    writers: usize,
    events_per_append: usize,
    conditional: bool,
) -> Vec<AppendWriter> {
    (0..writers)
        .map(|writer| AppendWriter {
            store: store.clone(),
            writer,
            stream: StreamId::new(format!("bench-{writer}")),
            version: 0,
            last_position: 0,
            events_per_append,
            conditional,
        })
        .collect()
}

#[async_trait]
impl Op for AppendWriter {
    async fn run(&mut self) -> anyhow::Result<u64> {
        let events = (0..self.events_per_append as u64)
            .map(|i| shape::new_event(self.writer, self.version + i + 1))
            .collect();
        let request = AppendRequest {
            stream: self.stream.clone(),
            expected: match self.version {
                0 => ExpectedVersion::NoStream,
                version => ExpectedVersion::Exact(version),
            },
            condition: self.conditional.then(|| AppendCondition {
                tags: vec![shape::workspace_tag(self.writer)],
                after: self.last_position,
            }),
            idempotency_key: None,
            events,
        };
        let appended = self.store.append(request).await?;
        self.version = appended.stream_version;
        self.last_position = appended.last_position;
        Ok(self.events_per_append as u64)
    }
}

fn workspace(writer: usize) -> anyhow::Result<WorkspaceId> {
    Ok(WorkspaceId::parse(&format!("ws-bench-{writer}"))?)
}

pub fn owner(writer: usize) -> anyhow::Result<AccountId> {
    Ok(AccountId::parse(&format!("acct-bench-{writer}"))?)
}

pub fn file(writer: usize, n: usize) -> anyhow::Result<Subject> {
    Ok(Subject::parse(&format!("file:f-{writer}-{n}"))?)
}

fn context() -> Context {
    Context::new("service:bench", "bench")
}

/// A ledger over `store` with, per writer, one workspace holding
/// `files_per_writer` files: the inventory the deletion requests name.
/// Built through the ledger's own commands, `writers` at a time.
pub async fn prepare_ledger(
    store: Arc<Store>,
    writers: usize,
    files_per_writer: usize,
) -> anyhow::Result<Ledger> {
    let ledger = Ledger::new(
        store,
        Arc::new(SystemClock),
        PolicyTable::default(),
        Arc::new(commands::Vault::ephemeral()),
    );
    let mut tasks = Vec::with_capacity(writers);
    for writer in 0..writers {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let ctx = context();
            ledger
                .create_workspace(&ctx, workspace(writer)?, owner(writer)?)
                .await?;
            for n in 0..files_per_writer {
                ledger
                    .register_resource(
                        &ctx,
                        Registration {
                            resource: file(writer, n)?,
                            workspace: Some(workspace(writer)?),
                            account: None,
                            parent: None,
                            derived_from: None,
                            references: Vec::new(),
                            created_by: Some(owner(writer)?),
                        },
                    )
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("a preparing writer panicked")??;
    }
    Ok(ledger)
}

/// Requests the deletion of each of its writer's files once.
#[derive(Debug)]
pub struct DeletionWriter {
    ledger: Ledger,
    writer: usize,
    next: usize,
    files: usize,
}

pub fn deletion_writers(ledger: &Ledger, writers: usize, files: usize) -> Vec<DeletionWriter> {
    (0..writers)
        .map(|writer| DeletionWriter {
            ledger: ledger.clone(),
            writer,
            next: 0,
            files,
        })
        .collect()
}

#[async_trait]
impl Op for DeletionWriter {
    async fn run(&mut self) -> anyhow::Result<u64> {
        if self.next == self.files {
            return Ok(0);
        }
        let scope = file(self.writer, self.next)?;
        self.next += 1;
        self.ledger
            .request_deletion(
                &context(),
                DeletionRequestInput {
                    scope,
                    channel: Channel::InProduct,
                    policy: Some(PolicyName::Gdpr),
                    requested_by: Initiator::Member {
                        account: owner(self.writer)?,
                    },
                    recorded_by: None,
                    verification: None,
                    contact: None,
                    received_at: None,
                },
            )
            .await?;
        Ok(1)
    }
}
