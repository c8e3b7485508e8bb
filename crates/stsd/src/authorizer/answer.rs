//! The authorizer's answers: 200 with identity headers, or API Gateway's JSON errors
//! (reference §3.2), and their counters.

use crate::auth::Caller;
use crate::state::AppState;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use stsd_proto::ApiError;

/// Why a check ended as it did (the `reason` label of `stsd_authorizer_decisions_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Allowed.
    Allowed,
    /// No policy allows.
    ImplicitDeny,
    /// A Deny statement applies.
    ExplicitDeny,
    /// No signature.
    MissingAuthentication,
    /// No API for the host and path, no original request, or a route the action table lacks.
    UnknownRoute,
    /// Bad signature syntax, mismatch, skew or scope.
    Signature,
    /// Unknown or inactive key; invalid, tampered or revoked session token.
    InvalidToken,
    /// Expired session.
    ExpiredToken,
    /// `UNSIGNED-PAYLOAD` where the API does not allow it.
    UnsignedPayload,
    /// Rate limit.
    Throttled,
    /// The store failed.
    Error,
}

impl Reason {
    /// Number of reasons.
    pub const COUNT: usize = 11;
}

/// Label values, indexed by [`Reason`].
pub const REASONS: [(&str, &str); Reason::COUNT] = [
    ("allow", "allowed"),
    ("deny", "implicit_deny"),
    ("deny", "explicit_deny"),
    ("deny", "missing_authentication"),
    ("deny", "unknown_route"),
    ("deny", "signature"),
    ("deny", "invalid_token"),
    ("deny", "expired_token"),
    ("deny", "unsigned_payload"),
    ("deny", "throttled"),
    ("error", "error"),
];

/// Decisions by outcome and reason.
#[derive(Debug, Default)]
pub struct Counters {
    counts: [AtomicU64; Reason::COUNT],
}

impl Counters {
    /// Counts one decision.
    pub fn count(&self, r: Reason) {
        if let Some(c) = self.counts.get(r as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Appends the text exposition.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP stsd_authorizer_decisions_total Forward-auth checks (/_stsd/authorize) by outcome and reason.\n# TYPE stsd_authorizer_decisions_total counter\n");
        for ((outcome, reason), c) in REASONS.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "stsd_authorizer_decisions_total{{outcome=\"{outcome}\",reason=\"{reason}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
    }
}

/// An answer to a check.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Why.
    pub reason: Reason,
    /// `x-amzn-ErrorType` for refusals.
    pub error_type: Option<&'static str>,
    /// The error message (empty when allowed).
    pub message: String,
    /// The JSON body (empty when allowed).
    pub body: String,
    /// Identity headers (allowed only).
    pub headers: Vec<(&'static str, String)>,
}

/// The message of a missing signature (API Gateway's exact text).
pub const MISSING_AUTHENTICATION_TOKEN: &str = "Missing Authentication Token";
/// API Gateway's signature mismatch message.
pub const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
/// API Gateway's invalid token message.
pub const INVALID_TOKEN: &str = "The security token included in the request is invalid.";
/// The expired token message.
pub const EXPIRED_TOKEN: &str = "The security token included in the request is expired";

impl Answer {
    fn error(
        status: u16,
        reason: Reason,
        error_type: &'static str,
        key: &str,
        message: String,
    ) -> Answer {
        let mut body = serde_json::Map::new();
        body.insert(key.to_owned(), serde_json::Value::String(message.clone()));
        Answer {
            status,
            reason,
            error_type: Some(error_type),
            body: serde_json::Value::Object(body).to_string(),
            message,
            headers: Vec::new(),
        }
    }

    /// No signature, or a route no API serves.
    pub fn unknown_route() -> Answer {
        Self::error(
            403,
            Reason::UnknownRoute,
            "MissingAuthenticationTokenException",
            "message",
            MISSING_AUTHENTICATION_TOKEN.to_owned(),
        )
    }

    /// The signature does not match.
    pub fn signature_mismatch() -> Answer {
        Self::error(
            403,
            Reason::Signature,
            "InvalidSignatureException",
            "message",
            SIGNATURE_MISMATCH.to_owned(),
        )
    }

    /// `UNSIGNED-PAYLOAD` (or another non-hash value) where the API does not allow it.
    pub fn unsigned_refused() -> Answer {
        Self::error(
            403,
            Reason::UnsignedPayload,
            "InvalidSignatureException",
            "message",
            "This API does not accept unsigned payloads: sign the request with the payload's SHA-256 in x-amz-content-sha256.".to_owned(),
        )
    }

    /// Rate limited (API Gateway's `THROTTLED`).
    pub fn throttled() -> Answer {
        Self::error(
            429,
            Reason::Throttled,
            "TooManyRequestsException",
            "message",
            "Too Many Requests".to_owned(),
        )
    }

    /// Not allowed by policy (API Gateway's `ACCESS_DENIED`, capital `Message`).
    pub fn denied(arn: &str, action: &str, resource: &str, explicit: bool) -> Answer {
        Self::error(
            403,
            if explicit {
                Reason::ExplicitDeny
            } else {
                Reason::ImplicitDeny
            },
            "AccessDeniedException",
            "Message",
            format!(
                "User: {arn} is not authorized to perform: {action} on resource: {resource}{}",
                if explicit {
                    " with an explicit deny"
                } else {
                    ""
                }
            ),
        )
    }

    /// An authentication failure (or a store failure) as API Gateway answers it.
    pub fn from_auth_error(e: &ApiError) -> Answer {
        match &*e.code {
            "MissingAuthenticationToken" => Self::error(
                403,
                Reason::MissingAuthentication,
                "MissingAuthenticationTokenException",
                "message",
                MISSING_AUTHENTICATION_TOKEN.to_owned(),
            ),
            "IncompleteSignature" => Self::error(
                403,
                Reason::Signature,
                "IncompleteSignatureException",
                "message",
                e.message.clone(),
            ),
            "SignatureDoesNotMatch" => Self::error(
                403,
                Reason::Signature,
                "InvalidSignatureException",
                "message",
                if e.message == stsd_sigv4::MSG_SIGNATURE_DOES_NOT_MATCH {
                    SIGNATURE_MISMATCH.to_owned()
                } else {
                    e.message.clone()
                },
            ),
            "InvalidClientTokenId" => Self::error(
                403,
                Reason::InvalidToken,
                "UnrecognizedClientException",
                "message",
                INVALID_TOKEN.to_owned(),
            ),
            "ExpiredToken" => Self::error(
                403,
                Reason::ExpiredToken,
                "ExpiredTokenException",
                "message",
                EXPIRED_TOKEN.to_owned(),
            ),
            "Throttling" => Self::throttled(),
            _ if e.status >= 500 => Self::error(
                e.status,
                Reason::Error,
                "InternalServerErrorException",
                "message",
                "Internal server error".to_owned(),
            ),
            _ => Self::error(
                403,
                Reason::Signature,
                "IncompleteSignatureException",
                "message",
                e.message.clone(),
            ),
        }
    }

    /// Allowed: the identity headers (never a secret or a token).
    pub fn allow(state: &AppState, caller: &Caller, now: i64) -> Answer {
        let id = caller.identity(&state.account);
        let mut headers = vec![
            ("x-stsd-principal-arn", id.arn),
            ("x-stsd-account", state.account.clone()),
            ("x-stsd-user-id", id.user_id),
            ("x-stsd-access-key-id", caller.access_key_id().to_owned()),
        ];
        // Every header is always sent (empty when it does not apply), so a proxy that copies them
        // overwrites any client-sent copy (Caddy before 2.7 copies a missing header as its literal
        // placeholder; nginx removes a header set to an empty value).
        let (mfa, age, expires) = match caller {
            Caller::LongTerm(_) => (false, String::new(), String::new()),
            Caller::Session(c) => (
                c.mfa.is_some(),
                c.mfa
                    .as_ref()
                    .map(|m| (now - m.authenticated_at).max(0).to_string())
                    .unwrap_or_default(),
                stsd_core::timefmt::iso8601(c.expires_at),
            ),
        };
        headers.push(("x-stsd-mfa-authenticated", mfa.to_string()));
        headers.push(("x-stsd-mfa-age", age));
        headers.push(("x-stsd-session-expires", expires));
        Answer {
            status: 200,
            reason: Reason::Allowed,
            error_type: None,
            message: String::new(),
            body: String::new(),
            headers,
        }
    }

    /// The HTTP response.
    pub fn into_response(self, request_id: &str) -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(Bytes::from(self.body.clone())));
        *r.status_mut() =
            http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::FORBIDDEN);
        let h = r.headers_mut();
        if let Ok(v) = http::HeaderValue::from_str(request_id) {
            h.insert("x-amzn-requestid", v);
        }
        if let Some(t) = self.error_type {
            h.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            h.insert("x-amzn-errortype", http::HeaderValue::from_static(t));
            // The body again as a header, for nginx, which drops the subrequest's body: the README
            // shows `auth_request_set` + `error_page` returning it.
            if let Ok(v) = http::HeaderValue::from_str(&self.body) {
                h.insert("x-stsd-error", v);
            }
        }
        for (name, value) in self.headers {
            if let Ok(v) = http::HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        r
    }
}
