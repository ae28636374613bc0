//! The one error type of the read side, shared by the port and its
//! implementations.

use commands::log::StoreError;

/// Why a projection step or a read-model query failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    /// The read-model database could not be reached or failed. Nothing of
    /// the current page was kept (its transaction rolled back); retry later,
    /// and answer 503 meanwhile.
    #[error("read models unavailable: {0}")]
    Unavailable(String),
    /// A stored row or a logged event does not decode. The runner stops
    /// rather than skip it; an operator must look (run `lethe verify`, then
    /// `lethe projections rebuild`).
    #[error("read models corrupt: {0}")]
    Corrupt(String),
    /// The query itself is malformed (bad subject, unknown projection,
    /// limit out of range). Fix the input; a retry fails the same way (400).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// One parameter of the query is invalid (an unknown resource state,
    /// say); `name` is the parameter as the caller gave it. Fix it; a
    /// retry fails the same way (422 on that parameter).
    #[error("invalid {name}: {why}")]
    InvalidParameter { name: &'static str, why: String },
    /// Stored personal data failed its integrity check while being shown
    /// (a sealed value does not open under its live key). Nothing is
    /// shown; an operator must look (500, run `lethe verify`).
    #[error("tampering detected: {0}")]
    Tampered(String),
    /// The event log could not be read. Retry later (503).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A test-only fault was injected at this point; the transaction was
    /// rolled back. Never returned outside tests.
    #[error("injected fault: {0}")]
    Injected(&'static str),
}
