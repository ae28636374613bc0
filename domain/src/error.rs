//! The ways a command can be refused. Each variant says when it happens
//! and what the caller should do; the HTTP edge maps them to status codes.

use serde::Serialize;

use crate::ids::{HoldId, TaskId};
use crate::subject::Subject;

/// A value that does not parse. Nothing was decided; the caller fixes the
/// named field and sends the command again (HTTP 422).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// A command that the rules refuse. Nothing is stored by the decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field is malformed. Fix the named field (HTTP 422).
    #[error("invalid input: {0}")]
    InvalidInput(#[from] InvalidInput),
    /// The subject is not known to the ledger. Register it first, or check
    /// the id (HTTP 404).
    #[error("{0} is not known to the ledger")]
    UnknownSubject(Subject),
    /// The subject was registered before. Use the existing one (HTTP 409).
    #[error("{0} already exists")]
    AlreadyExists(Subject),
    /// R12: the subject was erased from active systems; nothing revives it
    /// and nothing more can be done to it (HTTP 409).
    #[error("{0} was erased; no command applies to it any more")]
    Erased(Subject),
    /// R6 / R9 / R12: the subject's erasure is under way (its tasks are
    /// released): nothing new is registered in it or derived from it,
    /// since the erasure, planned already, would leave it behind (HTTP
    /// 409). Register it elsewhere.
    #[error("{0} is being erased; nothing new can be added to it")]
    BeingErased(Subject),
    /// R9: only the workspace owner deletes a workspace. Ask the owner
    /// (HTTP 403).
    #[error("only the owner of {workspace} may delete it")]
    NotWorkspaceOwner { workspace: Subject },
    /// R9: only an owner (or the platform) makes another owner, since an
    /// owner may delete the workspace; an admin adds admins and members.
    /// Ask an owner (HTTP 403).
    #[error("only an owner of {workspace} may make another owner")]
    NotOwnerToGrantOwner { workspace: Subject },
    /// R1: only a workspace owner or admin (or the platform) may do this
    /// (HTTP 403).
    #[error("only an owner or admin of {workspace} may do this")]
    NotOwnerOrAdmin { workspace: Subject },
    /// The account is not a member of the workspace (HTTP 409).
    #[error("{account} is not a member of {workspace}")]
    NotAMember {
        workspace: Subject,
        account: Subject,
    },
    /// The owner cannot be removed from their own workspace; transfer
    /// ownership or delete the workspace instead (HTTP 409).
    #[error("the owner cannot be removed from {workspace}")]
    CannotRemoveOwner { workspace: Subject },
    /// The integration is already disconnected; nothing to do (HTTP 409).
    #[error("{0} is already disconnected")]
    AlreadyDisconnected(Subject),
    /// Only an active hold can be lifted. Check the hold id (HTTP 409).
    #[error("hold {0} is not active")]
    HoldNotActive(HoldId),
    /// The request is closed (completed or refused); open a new one if
    /// something is left to delete (HTTP 409).
    #[error("the request is already {state}")]
    RequestClosed { state: &'static str },
    /// The request still waits for verification; verify it first (HTTP 409).
    #[error("the request has not been verified")]
    NotVerified,
    /// The requester was verified already, so the request cannot be
    /// refused for a failed verification: its erasure is decided (HTTP
    /// 409). Place a hold to stop it.
    #[error("the request was verified already; it cannot be refused for a failed verification")]
    AlreadyVerified,
    /// The deadline cannot be extended: the policy allows no extension, the
    /// extension was used, it comes too late, or it lacks a reason (HTTP 422).
    #[error("extension refused: {0}")]
    ExtensionRefused(String),
    /// The task is not part of this request (HTTP 404).
    #[error("task {0} is not known")]
    UnknownTask(TaskId),
    /// The task is already done (HTTP 409).
    #[error("task {0} is already completed")]
    TaskAlreadyCompleted(TaskId),
    /// The task cannot be taken now: it is held, leased to another worker,
    /// or waits for its next attempt time. Claim another task (HTTP 409).
    #[error("task {task} cannot be claimed: {why}")]
    TaskNotClaimable { task: TaskId, why: String },
    /// The worker reporting on a task does not hold its lease. Claim it
    /// first (HTTP 409).
    #[error("task {task} is not leased to {worker}")]
    NotLeaseHolder { task: TaskId, worker: String },
}
