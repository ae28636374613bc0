//! The read models in memory: the reference implementation of
//! [`ReadModelTx`] that the projection tests run against, and that the SQL
//! implementations are compared with.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use commands::log::{Position, RecordedEvent};

use crate::dump::ReadModelDump;
use crate::error::ReadModelError;
use crate::rows::{AuditEntry, HoldRow, ReadModelTx, RequestRow, ResourceRow, TaskRow};
use crate::{apply, decode, tasks, ProjectionName};

/// Every read model as maps, with one checkpoint for all of them.
#[derive(Debug, Default, Clone)]
pub struct MemoryReadModels {
    pub audit: BTreeMap<Position, AuditEntry>,
    pub resources: BTreeMap<String, ResourceRow>,
    pub holds: BTreeMap<String, HoldRow>,
    pub requests: BTreeMap<String, RequestRow>,
    pub tasks: BTreeMap<String, TaskRow>,
    pub checkpoint: Position,
}

impl MemoryReadModels {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies recorded events past the checkpoint to every projection.
    pub async fn apply_all<'a>(
        &mut self,
        events: impl IntoIterator<Item = &'a RecordedEvent>,
    ) -> Result<(), ReadModelError> {
        for recorded in events {
            if recorded.position <= self.checkpoint {
                continue;
            }
            let event = decode(recorded)?;
            for name in ProjectionName::ALL {
                apply(name, self, recorded, &event).await?;
            }
            self.checkpoint = recorded.position;
        }
        Ok(())
    }

    pub fn dump(&self) -> ReadModelDump {
        ReadModelDump {
            audit: self.audit.values().cloned().collect(),
            resources: self.resources.values().cloned().collect(),
            requests: self.requests.values().cloned().collect(),
            holds: self.holds.values().cloned().collect(),
            tasks: self.tasks.values().cloned().collect(),
        }
        .sorted()
    }

    /// The tasks a worker may try to claim at `now`, in release order.
    pub fn claimable(&self, now: DateTime<Utc>) -> Vec<&TaskRow> {
        let active: Vec<&HoldRow> = self.holds.values().filter(|h| h.active()).collect();
        let mut found: Vec<&TaskRow> = self
            .tasks
            .values()
            .filter(|task| tasks::claimable(task, &active, now))
            .collect();
        found.sort_by_key(|task| task.released_position);
        found
    }
}

#[async_trait]
impl ReadModelTx for MemoryReadModels {
    async fn append_audit(&mut self, entry: AuditEntry) -> Result<(), ReadModelError> {
        self.audit.insert(entry.position, entry);
        Ok(())
    }

    async fn resource(&mut self, subject: &str) -> Result<Option<ResourceRow>, ReadModelError> {
        Ok(self.resources.get(subject).cloned())
    }

    async fn put_resource(&mut self, row: ResourceRow) -> Result<(), ReadModelError> {
        self.resources.insert(row.subject.clone(), row);
        Ok(())
    }

    async fn hold(&mut self, hold: &str) -> Result<Option<HoldRow>, ReadModelError> {
        Ok(self.holds.get(hold).cloned())
    }

    async fn put_hold(&mut self, row: HoldRow) -> Result<(), ReadModelError> {
        self.holds.insert(row.hold.clone(), row);
        Ok(())
    }

    async fn request(&mut self, request: &str) -> Result<Option<RequestRow>, ReadModelError> {
        Ok(self.requests.get(request).cloned())
    }

    async fn put_request(&mut self, row: RequestRow) -> Result<(), ReadModelError> {
        self.requests.insert(row.request.clone(), row);
        Ok(())
    }

    async fn task(&mut self, task: &str) -> Result<Option<TaskRow>, ReadModelError> {
        Ok(self.tasks.get(task).cloned())
    }

    async fn put_task(&mut self, row: TaskRow) -> Result<(), ReadModelError> {
        self.tasks.insert(row.task.clone(), row);
        Ok(())
    }
}
