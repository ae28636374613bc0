//! adapters
pub mod auth;
pub mod http;
pub mod keys;
pub mod meta;
mod pools;
pub mod privacy;
pub mod readmodel;
pub mod resume;
pub mod retention;
mod side_pool;
pub mod store;
