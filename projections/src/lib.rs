//! Lethe's read models: the views people need, built from the log.
//!
//! Each read model is a projection: a pure function from one decoded event
//! (and its envelope) to typed changes against a small storage port,
//! [`ReadModelTx`]. The port is implemented in SQL by the adapters (for
//! SQLite and PostgreSQL) and in memory here ([`memory::MemoryReadModels`])
//! for fast tests. Nothing here knows SQL or I/O; the projection runner that
//! reads the log, applies pages and writes checkpoints lives in the adapters.
//!
//! The projections, by [`ProjectionName`]:
//!
//! - `audit`: every event as a human-readable entry ([`audit`]).
//! - `resources`: what the platform still holds ([`resources`]).
//! - `requests`: per deletion request its deadline facts; the deadline
//!   report, request detail and Meta deletion status are queries over it
//!   ([`requests`], [`report`]).
//! - `holds`: the holds register ([`holds`]).
//! - `tasks`: the erasure task queue ([`tasks`]).
//!
//! **Invariant:** a projection reads and writes only its own rows, so each
//! can be rebuilt alone; joins across read models (a task's covering holds)
//! happen at query time.
//!
//! **Invariant:** applying the same events in the same order gives the same
//! rows: no clock, no randomness, times come from the envelope.

pub mod audit;
pub mod csv;
pub mod dump;
pub mod error;
pub mod holds;
pub mod memory;
pub mod report;
pub mod requests;
pub mod resources;
pub mod rows;
pub mod tasks;
#[doc(hidden)]
pub mod testkit;

use std::fmt;
use std::str::FromStr;

use commands::log::RecordedEvent;
use domain::events::LedgerEvent;

pub use error::ReadModelError;
pub use rows::ReadModelTx;

/// The read models, each checkpointed and rebuildable on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProjectionName {
    Audit,
    Resources,
    Requests,
    Holds,
    Tasks,
}

impl ProjectionName {
    /// Every projection, in the order the runner applies them.
    pub const ALL: [ProjectionName; 5] = [
        ProjectionName::Audit,
        ProjectionName::Resources,
        ProjectionName::Requests,
        ProjectionName::Holds,
        ProjectionName::Tasks,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProjectionName::Audit => "audit",
            ProjectionName::Resources => "resources",
            ProjectionName::Requests => "requests",
            ProjectionName::Holds => "holds",
            ProjectionName::Tasks => "tasks",
        }
    }
}

impl fmt::Display for ProjectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProjectionName {
    type Err = ReadModelError;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        ProjectionName::ALL
            .into_iter()
            .find(|name| name.as_str() == raw)
            .ok_or_else(|| {
                ReadModelError::InvalidQuery(format!(
                    "unknown projection {raw:?}; expected one of: audit, resources, requests, holds, tasks"
                ))
            })
    }
}

/// Decodes a recorded event. A payload that does not decode stops the
/// runner: skipping it would make the read models silently wrong.
pub fn decode(recorded: &RecordedEvent) -> Result<LedgerEvent, ReadModelError> {
    LedgerEvent::decode(
        &recorded.event_type,
        recorded.schema_version,
        &recorded.payload,
    )
    .map_err(|e| ReadModelError::Corrupt(format!("event at position {}: {e}", recorded.position)))
}

/// Applies one event to one projection.
pub async fn apply(
    name: ProjectionName,
    tx: &mut dyn ReadModelTx,
    recorded: &RecordedEvent,
    event: &LedgerEvent,
) -> Result<(), ReadModelError> {
    match name {
        ProjectionName::Audit => audit::apply(tx, recorded, event).await,
        ProjectionName::Resources => resources::apply(tx, recorded, event).await,
        ProjectionName::Requests => requests::apply(tx, recorded, event).await,
        ProjectionName::Holds => holds::apply(tx, recorded, event).await,
        ProjectionName::Tasks => tasks::apply(tx, recorded, event).await,
    }
}
