//! Integration tests of the real `stsd` binary over HTTP: the AWS SDK, raw SigV4 requests signed with the
//! independent `aws-sigv4` crate, restarts on the same data directory, framing and connection handling.
//!
//! Every test starts its own server(s) on `127.0.0.1:0` in its own temporary data directory, so tests run
//! in parallel; servers are stopped (SIGTERM) and directories removed when they are dropped.

#![allow(clippy::unwrap_used)]

mod harness;
mod raw;
mod sdk;
mod sign;
mod xml;

mod auth_tests;
mod authorizer_tests;
mod console_admin_tests;
mod console_tests;
mod framing_tests;
mod hardening_tests;
mod iam_mfa_tests;
mod passwords_tests;
mod restart_tests;
mod roles_tests;
mod sdk_tests;
mod sts_json_tests;
mod validation_tests;
