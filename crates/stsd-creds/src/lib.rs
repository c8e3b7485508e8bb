//! `stsd-creds`: MFA-backed session credentials for every AWS tool, against stsd or AWS itself.
//!
//! One long-term key plus an MFA device become cached session credentials (`GetSessionToken`, or
//! `AssumeRole` when the profile has `role_arn`), handed to tools as `credential_process` JSON, environment
//! variables for a child process, an export, or a local container-credentials endpoint.
//!
//! Modules: [`config`] (the shared AWS files, profile and endpoint resolution), [`sts`] (signed calls and their
//! XML), [`cache`] (session files, lock, last MFA code), [`mfa`] (code sources and the terminal prompt),
//! [`session`] (cache + lock + MFA + call), [`serve`] (the container-credentials endpoint), [`secret`]
//! (redacting secret types), [`cli`] (the commands).

#![warn(missing_docs)]

pub mod cache;
pub mod cli;
pub mod config;
pub mod mfa;
pub mod secret;
pub mod serve;
pub mod session;
pub mod sts;
