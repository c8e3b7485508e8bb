//! The stsd server: configuration, start-up, the HTTP layer and the handlers of the STS (and IAM) APIs.
//!
//! Request path: [`http`] accepts a connection and reads the request (size and time limits) →
//! [`handler::handle`] decodes the parameters, authenticates with SigV4 ([`auth`]), parses the typed action
//! ([`stsd_proto`]) and runs it ([`sts`]) → every failure becomes an [`stsd_proto::ApiError`] in
//! [`errors`] and is written as AWS's `ErrorResponse`.

pub mod admin;
pub mod assume;
pub mod audit;
pub mod auth;
pub mod authorizer;
pub mod authz;
pub mod cache;
pub mod cli;
pub mod config;
pub mod console;
pub mod errors;
pub mod fuzz;
pub mod handler;
pub mod http;
pub mod iam;
pub mod limits;
pub mod metrics;
pub mod password;
pub mod qr;
pub mod remote;
pub mod setup;
pub mod state;
pub mod sts;
pub mod tls;
