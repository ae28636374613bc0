//! Lethe's pure core: the events of the deletion ledger, the state they
//! fold into, and the decisions that turn commands into events or clear
//! refusals. Rules R1–R15 of the deletion policy live here.
//!
//! Nothing in this crate performs I/O or reads the clock: time, ids and
//! everything read from the log come in as arguments.

pub mod deadline;
pub mod error;
pub mod events;
pub mod hold;
pub mod ids;
pub mod integration;
pub mod inventory;
pub mod membership;
pub mod personal;
pub mod request;
pub mod subject;
pub mod text;
pub mod values;
