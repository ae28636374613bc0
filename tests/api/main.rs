//! The HTTP API end to end: every rule as a story, the Meta callbacks,
//! the role matrix and bad input, on SQLite and on PostgreSQL.

mod bad_input;
mod helpers;
mod meta;
mod privacy;
mod roles;
mod rules;
mod socket;
