//! Authentication errors: fine-grained reasons that collapse to AWS's few wire codes.
//!
//! `Display` (via `thiserror`) is the precise reason, meant for logs. [`SigError::message`] is the text AWS
//! puts in `<Message>`, [`SigError::code`] the `<Code>` and [`SigError::status`] the HTTP status. Texts follow
//! `shared/reference/aws-sts-wire.md` §3.2 and §7 (Coral messages, some inferred from dynalite's notes).

use crate::amz_date::format_amz_date;

/// AWS `Code` for a request without any authentication.
pub const CODE_MISSING_AUTHENTICATION_TOKEN: &str = "MissingAuthenticationToken";
/// AWS `Code` for a syntactically broken signature.
pub const CODE_INCOMPLETE_SIGNATURE: &str = "IncompleteSignature";
/// AWS `Code` for a signature that does not verify (also clock skew and credential scope).
pub const CODE_SIGNATURE_DOES_NOT_MATCH: &str = "SignatureDoesNotMatch";

/// The short `SignatureDoesNotMatch` message of current AWS captures.
pub const MSG_SIGNATURE_DOES_NOT_MATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// Why a request's SigV4 authentication was rejected.
///
/// Each variant is documented with the check that produces it. Unknown keys and bad or expired session
/// tokens are found by the server's lookups, not here; the server reports those with its own AWS errors.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SigError {
    /// Neither an `Authorization` header nor an `X-Amz-Algorithm` query parameter.
    #[error("request carries no authentication")]
    MissingAuthentication,

    /// An `Authorization` header whose scheme does not start with `AWS4-` (e.g. SigV2 or `Bearer`).
    /// Coral answers these like a request without authentication.
    #[error("Authorization header is not an AWS4 signature")]
    NotAws4Authorization,

    /// Both an `Authorization` header and an `X-Amz-Algorithm` query parameter.
    #[error("both header and query-string authentication present")]
    BothAuthMethods,

    /// An element of the `Authorization` header without `=`.
    #[error("Authorization header element {pair:?} has no '='")]
    MalformedAuthPair {
        /// The offending element, whitespace removed.
        pair: String,
        /// The whole `Authorization` header as received.
        authorization: String,
    },

    /// `Credential`, `Signature` or `SignedHeaders` missing (or empty) in the `Authorization` header, and/or
    /// neither an `X-Amz-Date` nor a `Date` header.
    #[error(
        "incomplete Authorization header (missing: credential={missing_credential}, \
         signature={missing_signature}, signed_headers={missing_signed_headers}, date={missing_date})"
    )]
    IncompleteAuthorization {
        /// `Credential=` absent or empty.
        missing_credential: bool,
        /// `Signature=` absent or empty.
        missing_signature: bool,
        /// `SignedHeaders=` absent or empty.
        missing_signed_headers: bool,
        /// Neither an `X-Amz-Date` nor a `Date` header.
        missing_date: bool,
        /// The whole `Authorization` header as received.
        authorization: String,
    },

    /// A presigned request lacks one of the `X-Amz-*` query parameters (or has it empty).
    #[error("presigned request lacks query parameter {param}")]
    MissingQueryParam {
        /// The missing parameter's name, e.g. `X-Amz-Credential`.
        param: &'static str,
    },

    /// The request date (`X-Amz-Date` header/parameter or `Date` header) is not `YYYYMMDDTHHMMSSZ`.
    #[error("request date {value:?} is not ISO-8601 basic format")]
    InvalidDate {
        /// The value as received.
        value: String,
    },

    /// `host` is not among the signed headers.
    #[error("host is not a signed header")]
    HostNotSigned,

    /// An algorithm other than `AWS4-HMAC-SHA256` (SigV4a included).
    #[error("unsupported signing algorithm {algorithm:?}")]
    UnsupportedAlgorithm {
        /// The algorithm as received.
        algorithm: String,
    },

    /// The credential does not have five `/`-separated elements.
    #[error("credential {credential:?} does not have 5 elements")]
    MalformedCredential {
        /// The credential as received.
        credential: String,
    },

    /// The credential scope's fifth element is not `aws4_request`.
    #[error("credential scope terminator {terminator:?} is not aws4_request")]
    InvalidTerminator {
        /// The terminator as received.
        terminator: String,
    },

    /// The credential scope's date differs from the first 8 characters of the request date.
    #[error("credential scope date {scope_date:?} does not match request date {amz_date:?}")]
    ScopeDateMismatch {
        /// The scope's date element.
        scope_date: String,
        /// The request date (`YYYYMMDDTHHMMSSZ`).
        amz_date: String,
    },

    /// The request date is more than 15 minutes before the server's clock.
    #[error("request date {amz_date} is more than 15 minutes in the past (now {now})")]
    SignatureExpired {
        /// The request date as received.
        amz_date: String,
        /// The server's time, unix seconds.
        now: i64,
    },

    /// The request date is more than 15 minutes after the server's clock.
    #[error("request date {amz_date} is more than 15 minutes in the future (now {now})")]
    SignatureNotYetCurrent {
        /// The request date as received.
        amz_date: String,
        /// The server's time, unix seconds.
        now: i64,
    },

    /// The credential scope names a region that is not served and/or the wrong service.
    #[error(
        "credential scope mismatch (region {region:?}, service {service:?}, expected service {expected_service:?})"
    )]
    ScopeMismatch {
        /// `Some(region)` when the scope's region is not allowed.
        region: Option<String>,
        /// `Some(service)` when the scope's service is not `expected_service`.
        service: Option<String>,
        /// The service this endpoint serves (e.g. `sts`).
        expected_service: String,
    },

    /// The signature does not verify (includes a `Signature` that is not 64 lowercase hex digits).
    #[error("signature does not match")]
    SignatureDoesNotMatch,
}

impl SigError {
    /// The AWS error code (`<Code>`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingAuthentication | Self::NotAws4Authorization => {
                CODE_MISSING_AUTHENTICATION_TOKEN
            }
            Self::BothAuthMethods
            | Self::MalformedAuthPair { .. }
            | Self::IncompleteAuthorization { .. }
            | Self::MissingQueryParam { .. }
            | Self::InvalidDate { .. }
            | Self::HostNotSigned
            | Self::UnsupportedAlgorithm { .. }
            | Self::MalformedCredential { .. }
            | Self::InvalidTerminator { .. } => CODE_INCOMPLETE_SIGNATURE,
            Self::ScopeDateMismatch { .. }
            | Self::SignatureExpired { .. }
            | Self::SignatureNotYetCurrent { .. }
            | Self::ScopeMismatch { .. }
            | Self::SignatureDoesNotMatch => CODE_SIGNATURE_DOES_NOT_MATCH,
        }
    }

    /// The HTTP status: 400 for `IncompleteSignature`, 403 for everything else.
    pub fn status(&self) -> u16 {
        if self.code() == CODE_INCOMPLETE_SIGNATURE {
            400
        } else {
            403
        }
    }

    /// AWS's message text (`<Message>`), unescaped.
    pub fn message(&self) -> String {
        match self {
            Self::MissingAuthentication | Self::NotAws4Authorization => {
                "Request is missing Authentication Token".to_owned()
            }
            Self::BothAuthMethods => "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.".to_owned(),
            Self::MalformedAuthPair {
                pair,
                authorization,
            } => format!(
                "'{pair}' not a valid key=value pair (missing equal-sign) in Authorization header: '{authorization}'."
            ),
            Self::IncompleteAuthorization {
                missing_credential,
                missing_signature,
                missing_signed_headers,
                missing_date,
                authorization,
            } => {
                let mut msg = String::new();
                for (missing, name) in [
                    (missing_credential, "Credential"),
                    (missing_signature, "Signature"),
                    (missing_signed_headers, "SignedHeaders"),
                ] {
                    if *missing {
                        msg.push_str("Authorization header requires '");
                        msg.push_str(name);
                        msg.push_str("' parameter. ");
                    }
                }
                if *missing_date {
                    msg.push_str("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
                }
                msg.push_str("Authorization=");
                msg.push_str(authorization);
                msg
            }
            Self::MissingQueryParam { param } => format!(
                "AWS query-string parameters must include '{param}'. Re-examine the query-string parameters."
            ),
            Self::InvalidDate { value } => format!(
                "Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ),
            Self::HostNotSigned => {
                "'Host' must be a 'SignedHeader' in the AWS Authorization.".to_owned()
            }
            Self::UnsupportedAlgorithm { algorithm } => {
                format!("Unsupported AWS 'algorithm': '{algorithm}'")
            }
            Self::MalformedCredential { credential } => format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
            ),
            Self::InvalidTerminator { terminator } => format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
            ),
            Self::ScopeDateMismatch {
                scope_date,
                amz_date,
            } => {
                let http_date = amz_date.get(..8).unwrap_or(amz_date);
                format!(
                    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{http_date}', from '{amz_date}'."
                )
            }
            Self::SignatureExpired { amz_date, now } => format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
                format_amz_date(now.saturating_sub(crate::MAX_SKEW_SECS)),
                format_amz_date(*now),
            ),
            Self::SignatureNotYetCurrent { amz_date, now } => format!(
                "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
                format_amz_date(now.saturating_add(crate::MAX_SKEW_SECS)),
                format_amz_date(*now),
            ),
            Self::ScopeMismatch {
                region,
                service,
                expected_service,
            } => {
                let mut msg = String::new();
                if region.is_some() {
                    msg.push_str("Credential should be scoped to a valid region. ");
                }
                if service.is_some() {
                    msg.push_str("Credential should be scoped to correct service: '");
                    msg.push_str(expected_service);
                    msg.push_str("'. ");
                }
                msg
            }
            Self::SignatureDoesNotMatch => MSG_SIGNATURE_DOES_NOT_MATCH.to_owned(),
        }
    }
}
