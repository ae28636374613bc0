//! Lethe's application layer: load state from the event log, let the
//! domain decide, append the outcome; idempotency, retries on conflict,
//! and the process that reacts to events.

pub mod log;
pub mod memory;
