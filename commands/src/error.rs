//! Errors of the application layer.

use domain::error::DomainError;
use domain::events::DecodeError;

use crate::log::StoreError;
use crate::vault::VaultError;

/// Why a command did not take effect. Nothing was stored in any case.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The rules refused the command. Show the reason to the caller (4xx,
    /// see [`DomainError`] for which).
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// The request, hold or task named does not exist. Check the id (404).
    #[error("{0} not found")]
    NotFound(String),
    /// Other writers kept changing what this decision read, beyond the
    /// retry budget. Retry the command later (409).
    #[error("the decision kept conflicting with concurrent writes; retry later")]
    Contended,
    /// The event store failed. Retry later; report 503 meanwhile.
    #[error(transparent)]
    Store(StoreError),
    /// A stored event does not decode. An operator must look (500).
    #[error(transparent)]
    Corrupt(#[from] DecodeError),
    /// The idempotency key was used before for a different command (another
    /// scope, kind, channel, policy or requester). The first command
    /// stands and nothing new was stored; send a new command under a new
    /// key (422).
    #[error(
        "this idempotency key was used before for a different {what}; a new command needs a new key"
    )]
    KeyReused { what: &'static str },
    /// Personal data could not be sealed: the key table is unavailable
    /// (retry later, 503) or its keys do not open (tampering or the wrong
    /// master key; an operator must look, 500).
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl From<StoreError> for CommandError {
    fn from(error: StoreError) -> Self {
        CommandError::Store(error)
    }
}
