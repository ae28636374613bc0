//! The rows of every read model and the storage port the projections
//! write them through.
//!
//! Rows use plain strings for subjects and ids (already validated when
//! their events were accepted), so that both SQL backends store and return
//! them unchanged and a dump compares byte for byte.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use commands::log::Position;
use serde::Serialize;
use uuid::Uuid;

use crate::error::ReadModelError;

/// One event as auditors read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// The event's log position: the stable paging key.
    pub position: Position,
    pub event_id: Uuid,
    pub stream: String,
    pub event_type: String,
    /// When it happened (the command's time).
    pub occurred_at: DateTime<Utc>,
    /// When the log stored it.
    pub recorded_at: DateTime<Utc>,
    /// The authenticated principal that issued the command.
    pub actor: String,
    pub source_channel: Option<String>,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    /// What happened, in words.
    pub summary: String,
    /// Why, when the event says (a hold's reason, a refusal, an error).
    pub reason: Option<String>,
    /// Every subject the event is about, `KIND:ID`, sorted.
    pub subjects: Vec<String>,
}

/// Where a resource stands, as stored. "Blocked by hold" is not stored: it
/// is a deletion-pending resource with an active covering hold, decided at
/// query time against the holds register, so that placing a workspace hold
/// never rewrites every resource row of the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceState {
    Active,
    Disconnected,
    DeletionPending,
    Retained,
    Erased,
}

impl ResourceState {
    pub const ALL: [ResourceState; 5] = [
        ResourceState::Active,
        ResourceState::Disconnected,
        ResourceState::DeletionPending,
        ResourceState::Retained,
        ResourceState::Erased,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceState::Active => "active",
            ResourceState::Disconnected => "disconnected",
            ResourceState::DeletionPending => "deletion-pending",
            ResourceState::Retained => "retained",
            ResourceState::Erased => "erased",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        ResourceState::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// A product resource, workspace or integration the platform holds or held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceRow {
    /// `KIND:ID`, e.g. `file:f-9`, `workspace:ws-1`, `integration:yt-3`.
    pub subject: String,
    /// The `KIND` part.
    pub kind: String,
    pub workspace: Option<String>,
    pub account: Option<String>,
    pub parent: Option<String>,
    pub derived_from: Option<String>,
    /// For integrations: the external account, e.g. `instagram:1784…`.
    pub external_account: Option<String>,
    /// The scopes whose holds cover it and under which it is listed: itself,
    /// its workspace, account, parents and source, transitively (as
    /// `Inventory::covering_scopes`), plus the external account.
    pub scopes: Vec<String>,
    pub registered_at: DateTime<Utc>,
    pub disconnected_at: Option<DateTime<Utc>>,
    /// Released erasure tasks on it that are not completed.
    pub tasks_pending: i64,
    /// When a step that erases it from active systems completed (R12).
    pub erased_at: Option<DateTime<Utc>>,
    pub retained_basis: Option<String>,
    pub retained_until: Option<DateTime<Utc>>,
    pub state: ResourceState,
    /// When `state` last changed.
    pub since: DateTime<Utc>,
    /// The position of the last event that changed the row.
    pub position: Position,
}

/// A legal or moderation hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldRow {
    pub hold: String,
    pub scope: String,
    pub kind: String,
    pub matter: String,
    pub reason: String,
    pub placed_by: String,
    pub placed_at: DateTime<Utc>,
    pub placed_position: Position,
    pub lifted_by: Option<String>,
    pub lifted_at: Option<DateTime<Utc>>,
    pub lift_reason: Option<String>,
    pub lifted_position: Option<Position>,
}

impl HoldRow {
    pub fn active(&self) -> bool {
        self.lifted_at.is_none()
    }
}

/// A deletion request with its deadline facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRow {
    pub request: String,
    pub scope: String,
    pub channel: String,
    pub policy: String,
    /// R3: the policy the caller named, when the request is held to
    /// another; CCPA's confirmation of receipt still applies under it.
    pub asked_policy: Option<String>,
    /// `member:ID` or `platform`.
    pub requested_by: String,
    /// R15: the operator who recorded an e-mail request.
    pub recorded_by: Option<String>,
    pub received_at: DateTime<Utc>,
    /// The due time at receipt.
    pub original_due_at: DateTime<Utc>,
    /// The due time now, extensions included.
    pub due_at: DateTime<Utc>,
    pub extension_reason: Option<String>,
    pub verified: bool,
    /// As `domain::request::RequestState::as_str`.
    pub state: String,
    /// The holds that block it now (empty unless blocked).
    pub blocked_by: Vec<String>,
    /// When the current blocked period began.
    pub blocked_since: Option<DateTime<Utc>>,
    /// Blocked time of the periods that ended, in seconds.
    pub blocked_seconds: i64,
    pub tasks_total: i64,
    pub tasks_done: i64,
    /// Retention exceptions recorded for it (R1, R14).
    pub retained: i64,
    pub refusal_code: Option<String>,
    pub refusal_reason: Option<String>,
    /// When the refusal was recorded.
    pub refused_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub residual_copies_purged_by: Option<DateTime<Utc>>,
    /// R5: the code a Meta data-deletion callback answered with.
    pub confirmation_code: Option<String>,
    /// When the requester was told the request was received (CCPA).
    pub receipt_confirmed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub position: Position,
}

/// Where an erasure task stands, as stored. Whether it can be claimed
/// also depends on the clock and on the holds register, so that is a
/// query ("claimable"), not a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskState {
    /// Released, never claimed.
    Released,
    /// Leased to a worker (the lease may have run out).
    Leased,
    /// The last attempt failed; retried from `next_attempt_at`.
    Failed,
    Completed,
}

impl TaskState {
    pub const ALL: [TaskState; 4] = [
        TaskState::Released,
        TaskState::Leased,
        TaskState::Failed,
        TaskState::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Released => "released",
            TaskState::Leased => "leased",
            TaskState::Failed => "failed",
            TaskState::Completed => "completed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        TaskState::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// One erasure step released to workers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskRow {
    pub task: String,
    pub request: String,
    pub step: String,
    pub target: String,
    pub workspace: Option<String>,
    /// The scopes whose holds stop it.
    pub covered_by: Vec<String>,
    pub state: TaskState,
    pub lease_holder: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub released_at: DateTime<Utc>,
    /// The release's position: the queue's order.
    pub released_position: Position,
    pub completed_at: Option<DateTime<Utc>>,
    pub completed_by: Option<String>,
    pub position: Position,
}

/// The storage port of the projections: keyed reads and whole-row writes
/// of each read model's rows, inside one transaction that the runner
/// commits together with the checkpoint.
///
/// Whole-row `put`s (rather than column updates) let an implementation
/// keep the rows of a page in memory and write each changed row once when
/// the page commits; a `get` must see the `put`s made before it in the
/// same transaction.
#[async_trait]
pub trait ReadModelTx: Send {
    async fn append_audit(&mut self, entry: AuditEntry) -> Result<(), ReadModelError>;

    async fn resource(&mut self, subject: &str) -> Result<Option<ResourceRow>, ReadModelError>;
    async fn put_resource(&mut self, row: ResourceRow) -> Result<(), ReadModelError>;

    async fn hold(&mut self, hold: &str) -> Result<Option<HoldRow>, ReadModelError>;
    async fn put_hold(&mut self, row: HoldRow) -> Result<(), ReadModelError>;

    async fn request(&mut self, request: &str) -> Result<Option<RequestRow>, ReadModelError>;
    async fn put_request(&mut self, row: RequestRow) -> Result<(), ReadModelError>;

    async fn task(&mut self, task: &str) -> Result<Option<TaskRow>, ReadModelError>;
    async fn put_task(&mut self, row: TaskRow) -> Result<(), ReadModelError>;
}
