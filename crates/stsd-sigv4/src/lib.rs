//! Pure AWS Signature Version 4 verification (and a small signer) for stsd.
//!
//! No I/O and no clock: the caller passes the request and the current time in unix seconds.
//!
//! Server flow, in AWS's (Coral's) check order:
//!
//! 1. [`parse`]: finds `Authorization` header auth or presigned query auth (`X-Amz-Algorithm` …) and parses
//!    it ([`SigError::MissingAuthentication`] when there is neither);
//! 2. [`Auth::check_time`]: ±15 minutes (`X-Amz-Expires` is signed but, as in STS, not enforced);
//! 3. [`Auth::check_scope`]: service and allowed regions;
//! 4. the caller looks up [`Auth::access_key_id`] (an unknown key is the server's error to report);
//! 5. [`verify`]: recomputes the signature with the secret and compares in constant time.
//!
//! Every [`SigError`] knows its AWS [`code`](SigError::code), HTTP [`status`](SigError::status) and exact
//! [`message`](SigError::message) (texts from `shared/reference/aws-sts-wire.md` §3.2 and §7).
//!
//! Modules: `parse` (header/query syntax), `encoding` (query canonicalisation), `canonical` (canonical
//! request, hashed incrementally), `key` (key derivation, string to sign, the redacted signature type),
//! `amz_date` (`YYYYMMDDTHHMMSSZ` and civil-date arithmetic), `sign` ([`sign_headers`], [`presign_query`]).
//!
//! Rules follow <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html>:
//! the canonical URI is the path as received (`/` when empty; not normalised again), the canonical query
//! decodes each key and value (`+` is a space) and re-encodes it (unreserved `A-Za-z0-9-_.~` kept, the rest
//! `%XX`), sorted by encoded key then value; canonical headers are exactly the `SignedHeaders` (values
//! trimmed, runs of spaces collapsed, repeated headers joined with `,`); the payload hash is always computed
//! from the body (a client's `x-amz-content-sha256` is never trusted).

#![warn(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod amz_date;
mod cache;
mod canonical;
mod encoding;
mod error;
mod key;
mod parse;
mod sign;

#[doc(hidden)]
pub mod fuzz;

use hmac::Mac;

pub use amz_date::{format_amz_date, parse_amz_date};
pub use cache::KeyCache;
pub use error::{
    CODE_INCOMPLETE_SIGNATURE, CODE_MISSING_AUTHENTICATION_TOKEN, CODE_SIGNATURE_DOES_NOT_MATCH,
    MSG_SIGNATURE_DOES_NOT_MATCH, SigError,
};
pub use sign::{SignParams, presign_query, sign_headers, sign_headers_with};

use canonical::{CanonicalInput, canonical_request_hash, payload_hash};
use key::{Signature, SigningKey, update_string_to_sign};

/// Allowed clock skew between the request date and the server: 15 minutes.
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// Query parameter naming the algorithm of a presigned request; its presence makes a request presigned.
pub const X_AMZ_ALGORITHM: &str = "X-Amz-Algorithm";
/// Query parameter with the credential (`AKID/date/region/service/aws4_request`).
pub const X_AMZ_CREDENTIAL: &str = "X-Amz-Credential";
/// Query parameter with the request date (`YYYYMMDDTHHMMSSZ`).
pub const X_AMZ_DATE: &str = "X-Amz-Date";
/// Query parameter with the advisory lifetime of a presigned request (signed, not enforced).
pub const X_AMZ_EXPIRES: &str = "X-Amz-Expires";
/// Query parameter with the signed header names.
pub const X_AMZ_SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
/// Query parameter with the signature (the one parameter left out of the canonical query).
pub const X_AMZ_SIGNATURE: &str = "X-Amz-Signature";
/// Query parameter (presigned) or header (`x-amz-security-token`) with the session token.
pub const X_AMZ_SECURITY_TOKEN: &str = "X-Amz-Security-Token";

/// A request as received, borrowed. `query` is the raw query string without `?`, exactly as on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// Raw path, e.g. `/` (empty is treated as `/`).
    pub path: &'a str,
    /// Raw query string without `?` (may be empty).
    pub query: &'a str,
    /// All request headers.
    pub headers: &'a http::HeaderMap,
    /// The complete body.
    pub body: &'a [u8],
}

/// Where the signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthKind {
    /// `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
    Header,
    /// `X-Amz-Algorithm`, `X-Amz-Credential`, … in the query string.
    Presigned,
}

/// Parsed, not yet verified, authentication data.
///
/// The credential scope and the signed-header list are kept as one string each, read through
/// [`Auth::access_key_id`], [`Auth::scope_date`], [`Auth::region`], [`Auth::service`] and
/// [`Auth::signed_headers`]: three allocations per request instead of one per part.
///
/// `Debug` redacts the signature and the session token. There is no `PartialEq`.
#[derive(Clone)]
pub struct Auth {
    /// Header or presigned query.
    pub kind: AuthKind,
    /// The credential scope as sent, trailing `/` removed: `KEY/YYYYMMDD/REGION/SERVICE/aws4_request`.
    credential: String,
    /// Where the access key id, the scope date, the region and the service end in `credential` (each
    /// followed by one `/`).
    ends: [usize; 4],
    /// The request date as sent, `YYYYMMDDTHHMMSSZ`.
    amz_date: String,
    /// Unix seconds of [`Auth::amz_date`].
    pub timestamp: i64,
    /// Signed header names, lowercase, `;`-separated in the order listed (never empty).
    signed_headers: String,
    /// `X-Amz-Security-Token` header (header auth) or query parameter (presigned), decoded.
    pub security_token: Option<String>,
    signature: Signature,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("kind", &self.kind)
            .field("access_key_id", &self.access_key_id())
            .field("amz_date", &self.amz_date)
            .field("timestamp", &self.timestamp)
            .field("scope_date", &self.scope_date())
            .field("region", &self.region())
            .field("service", &self.service())
            .field("signed_headers", &self.signed_headers)
            .field(
                "security_token",
                &self
                    .security_token
                    .as_ref()
                    .map(|t| format!("<redacted, {} bytes>", t.len())),
            )
            .field("signature", &self.signature)
            .finish()
    }
}

/// Finds header auth or presigned query auth and parses it.
///
/// # Errors
///
/// - [`SigError::MissingAuthentication`] without any authentication, [`SigError::NotAws4Authorization`] for
///   an `Authorization` header that is not `AWS4-…` (both `MissingAuthenticationToken`);
/// - `IncompleteSignature` (400) for syntax errors: [`SigError::BothAuthMethods`],
///   [`SigError::MalformedAuthPair`], [`SigError::IncompleteAuthorization`], [`SigError::MissingQueryParam`],
///   [`SigError::InvalidDate`], [`SigError::HostNotSigned`], [`SigError::UnsupportedAlgorithm`],
///   [`SigError::MalformedCredential`], [`SigError::InvalidTerminator`];
/// - [`SigError::ScopeDateMismatch`] (`SignatureDoesNotMatch`) when the scope date is not the request's.
///
/// A `Signature` that is not 64 lowercase hex digits is not an error here; [`verify`] rejects it.
pub fn parse(req: &Request<'_>) -> Result<Auth, SigError> {
    parse::parse(req)
}

impl Auth {
    /// Part `i` of the credential scope (0: key id, 1: date, 2: region, 3: service).
    fn scope_part(&self, i: usize) -> &str {
        let start = match i {
            0 => 0,
            _ => self.ends.get(i - 1).map_or(0, |e| e + 1),
        };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.credential.get(start..end).unwrap_or("")
    }

    /// The credential's access key id (first scope element).
    pub fn access_key_id(&self) -> &str {
        self.scope_part(0)
    }

    /// The credential scope's date, `YYYYMMDD` (equal to the first 8 characters of `amz_date`).
    pub fn scope_date(&self) -> &str {
        self.scope_part(1)
    }

    /// The credential scope's region.
    pub fn region(&self) -> &str {
        self.scope_part(2)
    }

    /// The credential scope's service.
    pub fn service(&self) -> &str {
        self.scope_part(3)
    }

    /// The request date as sent, `YYYYMMDDTHHMMSSZ`.
    pub fn amz_date(&self) -> &str {
        &self.amz_date
    }

    /// Signed header names, lowercase, in the order listed.
    pub fn signed_headers(&self) -> impl Iterator<Item = &str> {
        encoding::split_ascii(&self.signed_headers, b';')
    }

    /// Checks the request date against `now_unix` ± 15 minutes (bounds inclusive).
    ///
    /// `X-Amz-Expires` is NOT honoured: STS accepts a presigned request exactly inside this window.
    ///
    /// # Errors
    ///
    /// [`SigError::SignatureExpired`] / [`SigError::SignatureNotYetCurrent`] (`SignatureDoesNotMatch`, 403).
    pub fn check_time(&self, now_unix: i64) -> Result<(), SigError> {
        if self.timestamp < now_unix.saturating_sub(MAX_SKEW_SECS) {
            Err(SigError::SignatureExpired {
                amz_date: self.amz_date.clone(),
                now: now_unix,
            })
        } else if self.timestamp > now_unix.saturating_add(MAX_SKEW_SECS) {
            Err(SigError::SignatureNotYetCurrent {
                amz_date: self.amz_date.clone(),
                now: now_unix,
            })
        } else {
            Ok(())
        }
    }

    /// Checks the credential scope: the service must equal `service`; the region must be in `regions` when
    /// `Some` (any region when `None`). Both are compared exactly (case-sensitive), as AWS does.
    ///
    /// # Errors
    ///
    /// [`SigError::ScopeMismatch`] (`SignatureDoesNotMatch`, 403), naming the region and/or the service.
    pub fn check_scope(&self, service: &str, regions: Option<&[String]>) -> Result<(), SigError> {
        let region = self.region();
        let region_ok = regions.is_none_or(|r| r.iter().any(|x| x == region));
        let service_ok = self.service() == service;
        if region_ok && service_ok {
            return Ok(());
        }
        Err(SigError::ScopeMismatch {
            region: (!region_ok).then(|| region.to_owned()),
            service: (!service_ok).then(|| self.service().to_owned()),
            expected_service: service.to_owned(),
        })
    }
}

/// Recomputes the signature of `req` with `secret_access_key` and compares it in constant time.
///
/// `auth` must come from [`parse`] of the same request. The canonical request uses exactly
/// `auth.signed_headers()`; a signed header missing from the request is canonicalised with an empty value
/// (and so normally fails). The payload hash is computed from `req.body`.
///
/// # Errors
///
/// [`SigError::SignatureDoesNotMatch`] (403).
pub fn verify(req: &Request<'_>, auth: &Auth, secret_access_key: &[u8]) -> Result<(), SigError> {
    let key = SigningKey::derive(
        secret_access_key,
        auth.scope_date(),
        auth.region(),
        auth.service(),
    );
    verify_with_key(req, auth, key, &payload_hash(req.body))
}

/// [`verify`], taking the derived signing key from `cache` (and storing it there on a miss). The verdict
/// is always the one [`verify`] gives: the cache serves a key only for exactly this secret and scope.
///
/// # Errors
///
/// [`SigError::SignatureDoesNotMatch`] (403).
pub fn verify_cached(
    req: &Request<'_>,
    auth: &Auth,
    secret_access_key: &[u8],
    cache: &KeyCache,
) -> Result<(), SigError> {
    let key = cache.signing_key(
        auth.access_key_id(),
        secret_access_key,
        auth.scope_date(),
        auth.region(),
        auth.service(),
    );
    verify_with_key(req, auth, key, &payload_hash(req.body))
}

/// [`verify_cached`] with the payload hash given instead of computed from the body: for a verifier that
/// never sees the body (a forward-auth hook behind a proxy), which takes the value the client signed in
/// `x-amz-content-sha256` (hex SHA-256, or a literal such as `UNSIGNED-PAYLOAD` where the caller allows
/// it). Whether that value may be trusted is the caller's decision.
///
/// # Errors
///
/// [`SigError::SignatureDoesNotMatch`] (403).
pub fn verify_cached_with_payload_hash(
    req: &Request<'_>,
    auth: &Auth,
    secret_access_key: &[u8],
    cache: &KeyCache,
    payload_hash: &str,
) -> Result<(), SigError> {
    let key = cache.signing_key(
        auth.access_key_id(),
        secret_access_key,
        auth.scope_date(),
        auth.region(),
        auth.service(),
    );
    verify_with_key(req, auth, key, payload_hash.as_bytes())
}

/// Lowercase hex SHA-256 of `body`, as it appears in a canonical request.
pub fn hex_sha256(body: &[u8]) -> String {
    String::from_utf8_lossy(&payload_hash(body)).into_owned()
}

fn verify_with_key(
    req: &Request<'_>,
    auth: &Auth,
    key: Option<SigningKey>,
    payload: &[u8],
) -> Result<(), SigError> {
    let creq_hash = canonical_request_hash(&CanonicalInput {
        method: req.method,
        path: req.path,
        query: req.query,
        skip_signature_param: auth.kind == AuthKind::Presigned,
        headers: req.headers,
        signed_headers: &auth.signed_headers,
        payload_hash: payload,
    });
    let mut mac = key
        .and_then(|k| k.mac())
        .ok_or(SigError::SignatureDoesNotMatch)?;
    update_string_to_sign(
        &mut mac,
        &auth.amz_date,
        auth.scope_date(),
        auth.region(),
        auth.service(),
        &creq_hash,
    );
    let provided = auth
        .signature
        .bytes()
        .ok_or(SigError::SignatureDoesNotMatch)?;
    mac.verify_slice(provided)
        .map_err(|_| SigError::SignatureDoesNotMatch)
}
