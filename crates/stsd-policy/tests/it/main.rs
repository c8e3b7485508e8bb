//! Integration tests of the policy engine: one binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corpus;
mod differential;
mod evaluation;
mod validation;
