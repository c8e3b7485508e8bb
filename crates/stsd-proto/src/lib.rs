//! Pure awsQuery protocol code for stsd. No I/O, no clock, no randomness.
//!
//! Module map:
//! - [`params`]: decoding of query strings and form bodies into [`params::Params`].
//! - [`error`]: [`error::ApiError`], the one error type every failure becomes before it is written.
//! - [`validate`]: the Coral validation grammar (`1 validation error detected: ...`).
//! - [`xml`]: a small pretty-printing XML writer that produces AWS's exact layout.
//! - [`sts`]: the STS API (`2011-06-15`): typed inputs parsed from [`params::Params`] and response bodies.
//! - [`iam`]: the IAM API subset (`2010-05-08`): users, access keys, MFA devices, inline and managed
//!   policies, groups, the policy simulator.
//! - [`request`]: which API (STS or IAM) a request addresses, from `Version`.

pub mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod iam;
pub mod json;
pub mod params;
pub mod request;
pub mod sts;
pub mod validate;
pub mod xml;

pub use error::ApiError;
pub use params::Params;
