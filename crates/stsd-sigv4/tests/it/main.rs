//! The crate's single integration-test binary (one binary keeps link time down).

// Test helpers outside `#[test]` functions panic on purpose when a fixture is broken.
#![allow(clippy::unwrap_used)]

mod botocore;
mod common;
mod corpus;
mod oracle;
mod props;
mod rules;
