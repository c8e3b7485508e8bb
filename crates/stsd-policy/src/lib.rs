//! IAM policy engine for stsd: pure (no I/O, no clock, no async).
//!
//! Follows `iam-policies.md` (the shared reference): grammar §1, validation messages §2,
//! evaluation §4, request context §5, AccessDenied text §6.
//!
//! # Design
//!
//! 1. **Grammar.** [`Policy::parse`] reads the document with a small JSON reader of its own
//!    (`json`) that keeps the line/column of every value (for the simulator's statement
//!    positions), rejects duplicate keys and bounds nesting depth. Validation then runs IAM's
//!    checks in moto's order (syntax → version → legacy parsing → Sids → actions present →
//!    resource format → action prefixes → kind-specific checks) and fails with the exact
//!    `MalformedPolicyDocument` message ([`PolicyError`]).
//! 2. **Compiled form.** Each statement becomes action globs (case-insensitive), per-segment ARN
//!    patterns (`*` in the resource part may cross `/`; policy variables only there), principals,
//!    and conditions with pre-parsed values (numbers, dates as Unix seconds + nanoseconds, CIDRs,
//!    base64-decoded bytes, string patterns with variables as tokens). A [`Policy`] is
//!    `Send + Sync` and is evaluated many times without re-parsing.
//! 3. **Evaluation.** [`evaluate`] takes every applicable policy of one set (identity policies, or
//!    a trust/resource policy): an explicit Deny wins, else any Allow allows, else implicit deny.
//!    Matching allocates nothing for string/numeric/date/bool/IP conditions and variables on
//!    string context values; only the returned [`Matched`] list allocates ([`decide`] returns
//!    the bare [`Outcome`] and allocates nothing). [`evaluate_layers`]
//!    intersects the identity set with session (scope-down) layers, and
//!    [`access_denied_message`] renders AWS's AccessDenied text for the deciding layer.
//!
//! # Performance
//!
//! AWS's "manage your own credentials with MFA" policy (§8.1, 9 statements) against a typical
//! request: [`evaluate`] 0.11–0.25 µs, [`decide`] 0.06–0.15 µs (minimum over batches,
//! `eval_cost_min` in `tests/it/evaluation.rs`); criterion's means on the shared, loaded 2-core
//! machine are 0.3–0.7 µs (`cargo bench -p stsd-policy`). Parsing and compiling it takes about
//! 60 µs: compile policies once and keep the [`Policy`].
//!
//! # What the caller must do
//!
//! - **Root bypass**: the root user is allowed everything (reference §4.1.1); the engine knows no
//!   principals, so do not evaluate policies for root.
//! - **Build the [`Context`] with AWS's presence rules** (§5.1): keys that AWS omits must be
//!   absent, not empty or false: `aws:MultiFactorAuthPresent` absent for long-term keys, `false`
//!   for GetSessionToken credentials without MFA, `true` with MFA; `aws:MultiFactorAuthAge` only
//!   with MFA; `aws:TokenIssueTime` only for temporary credentials; `aws:username` only for IAM
//!   users. The missing-key rules (§1.3) depend on this.
//! - **Trust policy writes**: the engine checks principal shapes; whether each user or role in
//!   [`Policy::aws_principals`] exists is a store question, answered with
//!   [`invalid_principal_message`] (`Invalid principal in policy: "AWS":"…"`).
//! - **Calls policies cannot control** (GetSessionToken, GetCallerIdentity, §4.2) are not
//!   evaluated at all.
//! - Choose the layers: identity policies of the user and its groups (union), then each session
//!   policy set or permissions boundary as a separate layer (intersection). Same-account resource
//!   policy grants (§4.1.6) are a caller decision.
//!
//! # Semantics worth knowing
//!
//! - Missing key: positive operators false, negated (`…Not…`, `NotIpAddress`) true, `…IfExists`
//!   true, `Null` tests presence; `ForAllValues:` true and `ForAnyValue:` false on an absent or
//!   empty key. An empty list in the context counts as absent.
//! - Without a qualifier and with several request values, a positive operator needs one request
//!   value to match one policy value; a negated operator needs no request value to match.
//! - A variable whose key has no single value and no default never matches: a `Resource` with it
//!   matches nothing, `StringEquals`/`StringLike` are false and their negations true.
//! - `NullIfExists` parses (as moto) and behaves like `Null`.

#![warn(missing_docs)]

mod condition;
mod eval;
#[doc(hidden)]
pub mod fuzz;
mod json;
mod pattern;
mod policy;
mod value;

pub use eval::{
    Decision, Layer, LayeredDecision, Matched, Outcome, PolicyRef, PrincipalInfo, Request,
    SourceKind, access_denied_message, access_denied_text, decide, evaluate, evaluate_layers,
    evaluate_layers_indexed,
};
pub use policy::{ParseOptions, Policy, PolicyKind, invalid_principal_message};
pub use value::{Context, Value};

/// A line/column position in a policy document, 1-based, columns counted in characters (as IAM's
/// simulator reports `StartPosition`/`EndPosition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

/// A rejected policy document; `message` is IAM's `MalformedPolicyDocument` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The message, exactly as IAM words it where the reference records it.
    pub message: String,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

/// The size IAM's quotas count: characters other than whitespace (space, tab, CR, LF), anywhere in
/// the document.
pub fn policy_size(document: &str) -> usize {
    document
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\r'))
        .count()
}
