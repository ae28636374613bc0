//! Everything in Lethe that touches the outside: event stores, read-model
//! storage, HTTP, Meta signed_request.

pub mod readmodel;
pub mod store;
