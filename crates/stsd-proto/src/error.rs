//! The one error type of the wire surface. Every failure inside stsd (authentication, validation, business
//! rules, storage) is turned into an [`ApiError`] in exactly one place, and only [`ApiError`]s are written
//! to clients, as `ErrorResponse` XML by [`crate::xml::error_body`].
//!
//! Messages marked [R]/[D] in the wire reference are reproduced byte for byte (including trailing spaces).

use std::borrow::Cow;

/// Who is at fault: `Sender` for 4xx, `Receiver` for 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The client's request was wrong (4xx).
    Sender,
    /// The server failed (5xx).
    Receiver,
}

impl Fault {
    /// The `<Type>` text.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Sender => "Sender",
            Fault::Receiver => "Receiver",
        }
    }
}

/// An AWS-shaped error: HTTP status, `Code`, `Message`, `Type`. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// AWS error code (`<Code>`).
    pub code: Cow<'static, str>,
    /// Human-readable message (`<Message>`), exact AWS text where known.
    pub message: String,
}

/// `MultiFactorAuthentication failed, unable to validate MFA code.  Please verify ...` [R]
pub const MFA_UNABLE_TO_VALIDATE: &str = "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user.";
/// `MultiFactorAuthentication failed with invalid MFA one time pass code. ` (trailing space) [R]
pub const MFA_INVALID_CODE: &str =
    "MultiFactorAuthentication failed with invalid MFA one time pass code. ";

impl ApiError {
    /// Any error with an explicit status, code and message.
    pub fn new(
        status: u16,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// `Sender` for 4xx, `Receiver` otherwise.
    pub fn fault(&self) -> Fault {
        if self.status < 500 {
            Fault::Sender
        } else {
            Fault::Receiver
        }
    }

    /// 400 `MissingAction`: the request has no `Action` parameter.
    pub fn missing_action() -> Self {
        Self::new(
            400,
            "MissingAction",
            "The request is missing an action or a required parameter.",
        )
    }

    /// 400 `MissingParameter`: a required protocol parameter such as `Version` is absent.
    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            400,
            "MissingParameter",
            format!("The request must contain the parameter {name}"),
        )
    }

    /// 400 `InvalidAction`: `Could not find operation <Op> for version <v>`.
    pub fn invalid_action(action: &str, version: &str) -> Self {
        Self::new(
            400,
            "InvalidAction",
            format!("Could not find operation {action} for version {version}"),
        )
    }

    /// 400 `ValidationError` with a complete message (see [`crate::validate`]).
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(400, "ValidationError", message)
    }

    /// 400 `MalformedInput`: a parameter could not be parsed into its type (e.g. a non-integer number).
    pub fn malformed_input(message: impl Into<String>) -> Self {
        Self::new(400, "MalformedInput", message)
    }

    /// 403 `AccessDenied`.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(403, "AccessDenied", message)
    }

    /// 403 `InvalidClientTokenId` for an unknown or inactive access key id (message ends with a period).
    pub fn unknown_access_key() -> Self {
        Self::new(
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        )
    }

    /// 403 `InvalidClientTokenId` for a bad, tampered or unknown session token (no final period).
    pub fn invalid_session_token() -> Self {
        Self::new(
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid",
        )
    }

    /// 403 `ExpiredToken`.
    pub fn expired_token() -> Self {
        Self::new(
            403,
            "ExpiredToken",
            "The security token included in the request is expired",
        )
    }

    /// 500 `InternalFailure`. The message never includes the cause (it may contain secrets); log it instead.
    pub fn internal() -> Self {
        Self::new(
            500,
            "InternalFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    }

    /// 503 `ServiceUnavailable`.
    pub fn service_unavailable() -> Self {
        Self::new(
            503,
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server.",
        )
    }

    /// 413 `RequestEntityTooLarge`: the body exceeds the limit.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request body must not exceed {limit} bytes"),
        )
    }

    /// 408 `RequestTimeout`: the body did not arrive in time.
    pub fn request_timeout() -> Self {
        Self::new(
            408,
            "RequestTimeout",
            "Your socket connection to the server was not read from or written to within the timeout period.",
        )
    }

    /// 400 `InvalidQueryParameter`: the request is not a query-protocol request stsd can read.
    pub fn invalid_query(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidQueryParameter", message)
    }

    /// 400 `Throttling` `Rate exceeded`.
    pub fn throttling() -> Self {
        Self::new(400, "Throttling", "Rate exceeded")
    }

    /// 404 `NoSuchEntity` (IAM).
    pub fn no_such_entity(message: impl Into<String>) -> Self {
        Self::new(404, "NoSuchEntity", message)
    }

    /// 409 `EntityAlreadyExists` (IAM).
    pub fn entity_already_exists(message: impl Into<String>) -> Self {
        Self::new(409, "EntityAlreadyExists", message)
    }

    /// 409 `DeleteConflict` (IAM).
    pub fn delete_conflict(message: impl Into<String>) -> Self {
        Self::new(409, "DeleteConflict", message)
    }

    /// 409 `LimitExceeded` (IAM).
    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(409, "LimitExceeded", message)
    }

    /// 403 `InvalidAuthenticationCode` (IAM MFA enable/resync).
    pub fn invalid_authentication_code() -> Self {
        Self::new(
            403,
            "InvalidAuthenticationCode",
            "Authentication code for device is not valid.",
        )
    }

    /// 400 `InvalidInput` (IAM).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidInput", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for ApiError {}
