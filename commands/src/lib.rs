//! Lethe's application layer: load state from the event log, let the
//! domain decide, append the outcome; idempotency, retries on conflict,
//! and the process that reacts to events.

pub mod clock;
pub mod error;
pub mod ledger;
pub mod log;
pub mod memory;
pub mod vault;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::CommandError;
pub use ledger::{Context, DeletionRequestInput, Ledger, RequestSummary};
pub use vault::{MasterKey, Vault, VaultError};
