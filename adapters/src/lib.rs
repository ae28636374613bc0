//! adapters
pub mod auth;
pub mod http;
pub mod meta;
pub mod readmodel;
pub mod store;
