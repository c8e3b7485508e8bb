//! The STS actions.

use crate::auth::Caller;
use crate::state::AppState;
use stsd_core::ids;
use stsd_core::timefmt::iso8601;
use stsd_core::token::{Principal, SessionClaims};
use stsd_proto::ApiError;
use stsd_proto::error::MFA_UNABLE_TO_VALIDATE;
use stsd_proto::sts::{self as wire, GetSessionTokenInput, StsAction};
use stsd_store::Owner;

/// Root sessions last at most one hour; longer requests are clamped (AWS behaviour).
pub const ROOT_MAX_DURATION: i64 = 3600;
/// Default duration of an IAM user's session.
pub const USER_DEFAULT_DURATION: i64 = 43_200;

/// Runs an STS action for `caller`; returns the response body.
///
/// # Errors
/// The action's AWS error.
pub async fn execute(
    state: &AppState,
    caller: &Caller,
    action: StsAction,
    request_id: &str,
) -> Result<String, ApiError> {
    match action {
        StsAction::GetCallerIdentity => {
            let id = caller.identity(&state.account);
            Ok(wire::get_caller_identity_body(
                &id.arn,
                &id.user_id,
                &state.account,
                request_id,
            ))
        }
        StsAction::GetAccessKeyInfo { access_key_id } => {
            if caller.is_session() {
                return Err(ApiError::access_denied(
                    "Cannot call GetAccessKeyInfo with session credentials",
                ));
            }
            let account = ids::account_from_id(&access_key_id).ok_or_else(|| {
                ApiError::validation(format!(
                    "1 validation error detected: Value '{access_key_id}' at 'accessKeyId' failed to satisfy constraint: Member must be an access key id"
                ))
            })?;
            Ok(wire::get_access_key_info_body(
                &ids::format_account(account),
                request_id,
            ))
        }
        StsAction::GetSessionToken(input) => {
            get_session_token(state, caller, &input, request_id).await
        }
    }
}

async fn get_session_token(
    state: &AppState,
    caller: &Caller,
    input: &GetSessionTokenInput,
    request_id: &str,
) -> Result<String, ApiError> {
    let key = match caller {
        Caller::Session(_) => {
            return Err(ApiError::access_denied(
                "Cannot call GetSessionToken with session credentials",
            ));
        }
        Caller::LongTerm(k) => k,
    };
    if input.serial_number.is_some() || input.token_code.is_some() {
        // MFA verification is not available yet: never issue a session that claims it.
        return Err(ApiError::access_denied(MFA_UNABLE_TO_VALIDATE));
    }
    let (principal, duration) = match &key.owner {
        Owner::Root => (
            Principal::Root,
            input
                .duration_seconds
                .unwrap_or(ROOT_MAX_DURATION)
                .min(ROOT_MAX_DURATION),
        ),
        Owner::User(u) => (
            Principal::User {
                user_id: u.user_id.clone(),
                name: u.name.clone(),
                path: u.path.clone(),
            },
            input.duration_seconds.unwrap_or(USER_DEFAULT_DURATION),
        ),
    };
    let now = state.clock.now();
    let claims = SessionClaims {
        account_id: state.account_id,
        principal,
        access_key_id: ids::new_session_key_id(state.account_id),
        secret_access_key: ids::new_secret_access_key(),
        source_access_key_id: key.access_key_id.clone(),
        issued_at: now,
        expires_at: now + duration,
        mfa: None,
    };
    let min = usize::try_from(input.minimum_session_token_size.unwrap_or(0)).unwrap_or(0);
    let token = state.key_ring().seal(&claims, min).map_err(|e| {
        tracing::error!(error = %e, "sealing a session token failed");
        ApiError::internal()
    })?;
    Ok(wire::get_session_token_body(
        &wire::Credentials {
            access_key_id: &claims.access_key_id,
            secret_access_key: claims.secret_access_key.expose(),
            session_token: &token,
            expiration: &iso8601(claims.expires_at),
        },
        request_id,
    ))
}
