//! Given / when / then tests of every rule of the deletion policy
//! (R1–R15 of DESIGN.md), one module per aggregate. Each test is named
//! after the rule it shows.

mod hold;
mod integration;
mod membership;
mod request;
mod support;
mod text;
