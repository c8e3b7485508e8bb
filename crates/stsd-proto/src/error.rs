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

    /// 400 `InvalidQueryParameter` for a parameter name given more than once (AWS's common error for a
    /// query string that "is malformed or does not adhere to AWS standards"; `MalformedQueryString` is
    /// a 404 in AWS's list). The name is echoed only when it looks like a parameter name.
    pub fn duplicate_parameter(name: &str) -> Self {
        let plain = !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
        Self::invalid_query(if plain {
            format!("The parameter {name} appears more than once in the request")
        } else {
            "A parameter appears more than once in the request".to_owned()
        })
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

    /// 400 `PasswordPolicyViolation` (IAM): the password does not meet the account password policy.
    pub fn password_policy_violation(message: impl Into<String>) -> Self {
        Self::new(400, "PasswordPolicyViolation", message)
    }

    /// 409 `EntityTemporarilyUnmodifiable` (IAM): the entity is being changed by another request; the
    /// same request is likely to succeed when retried.
    pub fn entity_temporarily_unmodifiable(message: impl Into<String>) -> Self {
        Self::new(409, "EntityTemporarilyUnmodifiable", message)
    }

    /// 400 `InvalidUserType` (IAM): the operation is for IAM users only (`ChangePassword`).
    pub fn invalid_user_type(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidUserType", message)
    }

    /// 400 `InvalidInput` (IAM).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidInput", message)
    }

    /// 400 `MalformedPolicyDocument` (IAM): the policy grammar's message, e.g. [`POLICY_SYNTAX_ERRORS`].
    pub fn malformed_policy_document(message: impl Into<String>) -> Self {
        Self::new(400, "MalformedPolicyDocument", message)
    }

    /// 400 `PolicyNotAttachable` (IAM): the managed policy cannot be attached (e.g. service-role only).
    pub fn policy_not_attachable(message: impl Into<String>) -> Self {
        Self::new(400, "PolicyNotAttachable", message)
    }

    /// 500 `PolicyEvaluation` (IAM simulator): evaluation failed on the server's side (`Receiver`).
    pub fn policy_evaluation(message: impl Into<String>) -> Self {
        Self::new(500, "PolicyEvaluation", message)
    }

    /// 500 `ServiceFailure` (IAM): the request failed because of an unknown server error (message [I]).
    pub fn service_failure() -> Self {
        Self::new(
            500,
            "ServiceFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    }

    /// 404 `NoSuchEntity`: `The user policy with name <policy> cannot be found.` [I]
    pub fn no_such_user_policy(policy_name: &str) -> Self {
        Self::no_such_entity(format!(
            "The user policy with name {policy_name} cannot be found."
        ))
    }

    /// 404 `NoSuchEntity`: `The group policy with name <policy> cannot be found.` [I]
    pub fn no_such_group_policy(policy_name: &str) -> Self {
        Self::no_such_entity(format!(
            "The group policy with name {policy_name} cannot be found."
        ))
    }

    /// 404 `NoSuchEntity`: `The group with name <name> cannot be found.` [I]
    pub fn no_such_group(group_name: &str) -> Self {
        Self::no_such_entity(format!("The group with name {group_name} cannot be found."))
    }

    /// 404 `NoSuchEntity`: `Policy <arn> does not exist or is not attachable.` [R]
    pub fn no_such_policy(policy_arn: &str) -> Self {
        Self::no_such_entity(format!(
            "Policy {policy_arn} does not exist or is not attachable."
        ))
    }

    /// 404 `NoSuchEntity`: `Policy <arn> version <v> does not exist or is not attachable.` [I]
    pub fn no_such_policy_version(policy_arn: &str, version_id: &str) -> Self {
        Self::no_such_entity(format!(
            "Policy {policy_arn} version {version_id} does not exist or is not attachable."
        ))
    }

    /// 409 `EntityAlreadyExists`: `A policy called <name> already exists. Duplicate names are not allowed.` [R]
    pub fn policy_already_exists(policy_name: &str) -> Self {
        Self::entity_already_exists(format!(
            "A policy called {policy_name} already exists. Duplicate names are not allowed."
        ))
    }

    /// 409 `EntityAlreadyExists`: `Group with name <name> already exists.` [I] (the user form is [R])
    pub fn group_already_exists(group_name: &str) -> Self {
        Self::entity_already_exists(format!("Group with name {group_name} already exists."))
    }

    /// 409 `DeleteConflict`: `Cannot delete a policy attached to entities.` [R]
    pub fn policy_attached() -> Self {
        Self::delete_conflict("Cannot delete a policy attached to entities.")
    }

    /// 409 `DeleteConflict`: `Cannot delete the default version of a policy.` [I]
    pub fn default_version_delete() -> Self {
        Self::delete_conflict("Cannot delete the default version of a policy.")
    }

    /// 409 `DeleteConflict`: `Cannot delete entity, must remove users from group first.` [I]
    pub fn group_has_users() -> Self {
        Self::delete_conflict("Cannot delete entity, must remove users from group first.")
    }

    /// 409 `DeleteConflict`: `Cannot delete entity, must delete policies first.` [I]
    pub fn entity_has_policies() -> Self {
        Self::delete_conflict("Cannot delete entity, must delete policies first.")
    }

    /// 409 `DeleteConflict`: `Cannot delete entity, must detach all policies first.` [I]
    pub fn entity_has_attached_policies() -> Self {
        Self::delete_conflict("Cannot delete entity, must detach all policies first.")
    }

    /// 409 `LimitExceeded`: the sixth version of a managed policy. [I]
    pub fn too_many_policy_versions() -> Self {
        Self::limit_exceeded(
            "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.",
        )
    }

    /// 409 `LimitExceeded`: `Maximum policy size of <limit> bytes exceeded for <kind> <name>` (no period;
    /// `kind` is `user`, `group` or `role`; limits 2048, 5120, 10240) [R].
    pub fn inline_policy_size(limit: usize, kind: &str, name: &str) -> Self {
        Self::limit_exceeded(format!(
            "Maximum policy size of {limit} bytes exceeded for {kind} {name}"
        ))
    }

    /// 409 `LimitExceeded`: `Cannot exceed quota for <Quota>: <n>` (e.g. `PolicySize: 6144`,
    /// `PoliciesPerUser: 10`, `GroupsPerUser: 10`) [R].
    pub fn quota_exceeded(quota: &str, limit: usize) -> Self {
        Self::limit_exceeded(format!("Cannot exceed quota for {quota}: {limit}"))
    }
}

/// `Syntax errors in policy.` (`MalformedPolicyDocument`) [I]
pub const POLICY_SYNTAX_ERRORS: &str = "Syntax errors in policy.";
/// `Policy document must be version 2012-10-17 or greater.` (`MalformedPolicyDocument`) [R]
pub const POLICY_VERSION_TOO_OLD: &str = "Policy document must be version 2012-10-17 or greater.";

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_policy_errors_have_the_model_status_and_fault() {
        for (e, status, code, fault) in [
            (
                ApiError::malformed_policy_document(POLICY_SYNTAX_ERRORS),
                400,
                "MalformedPolicyDocument",
                Fault::Sender,
            ),
            (
                ApiError::policy_not_attachable("x"),
                400,
                "PolicyNotAttachable",
                Fault::Sender,
            ),
            (
                ApiError::policy_evaluation("x"),
                500,
                "PolicyEvaluation",
                Fault::Receiver,
            ),
            (
                ApiError::service_failure(),
                500,
                "ServiceFailure",
                Fault::Receiver,
            ),
            (
                ApiError::no_such_policy("arn:aws:iam::1:policy/p"),
                404,
                "NoSuchEntity",
                Fault::Sender,
            ),
            (
                ApiError::policy_already_exists("p"),
                409,
                "EntityAlreadyExists",
                Fault::Sender,
            ),
            (
                ApiError::policy_attached(),
                409,
                "DeleteConflict",
                Fault::Sender,
            ),
            (
                ApiError::inline_policy_size(2048, "user", "alice"),
                409,
                "LimitExceeded",
                Fault::Sender,
            ),
        ] {
            assert_eq!(
                (e.status, e.code.as_ref(), e.fault()),
                (status, code, fault)
            );
        }
        assert_eq!(
            ApiError::inline_policy_size(2048, "user", "alice").message,
            "Maximum policy size of 2048 bytes exceeded for user alice"
        );
        assert_eq!(
            ApiError::quota_exceeded("PolicySize", 6144).message,
            "Cannot exceed quota for PolicySize: 6144"
        );
        assert_eq!(
            ApiError::policy_already_exists("p").message,
            "A policy called p already exists. Duplicate names are not allowed."
        );
    }
}
