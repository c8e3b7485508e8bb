//! Authentication: SigV4 (header or presigned) → the calling principal.
//!
//! Order of checks (wire reference §3.3): authorization syntax → date and skew → credential scope →
//! access key → signature → session token expiry. Authentication always runs before the action's own
//! validation, so a request with a bad signature and a bad parameter gets `SignatureDoesNotMatch`.

use crate::errors;
use crate::metrics::AuthFailure;
use crate::state::{AppState, DeviceRead};
use std::sync::Arc;
use stsd_core::ids;
use stsd_core::token::{Principal, SessionClaims};
use stsd_proto::ApiError;
use stsd_proto::request::Api;
use stsd_sigv4 as sigv4;
use stsd_store::{AccessKey, KeyStatus, Owner};

/// Who signed the request, and with which kind of credentials.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Long-term access key of the root or an IAM user.
    LongTerm(Arc<AccessKey>),
    /// Session credentials from GetSessionToken.
    Session(Box<SessionClaims>),
}

/// The identity a caller presents (GetCallerIdentity, authorization).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `arn:aws:iam::ACCT:root` or `arn:aws:iam::ACCT:user/PATH/NAME`.
    pub arn: String,
    /// The account id (root) or the user's `AIDA...` id.
    pub user_id: String,
    /// The IAM user name, for users.
    pub user_name: Option<String>,
}

/// The ARN of a role session: `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION` (the role's path is dropped).
pub fn assumed_role_arn(account: &str, role_name: &str, session_name: &str) -> String {
    [
        "arn:aws:sts::",
        account,
        ":assumed-role/",
        role_name,
        "/",
        session_name,
    ]
    .concat()
}

/// The account root's ARN. The ARNs are built with `concat` rather than `format!`: they are built for
/// every authorized request, and the formatting machinery costs several times a plain copy.
pub fn root_arn(account: &str) -> String {
    ["arn:aws:iam::", account, ":root"].concat()
}

/// A role session's unique id, `ROLEID:SESSION` (`GetCallerIdentity`'s `UserId`, `aws:userid`).
pub fn role_session_user_id(role_id: &str, session_name: &str) -> String {
    [role_id, ":", session_name].concat()
}

/// The ARN of an IAM user: the path is included when it is not `/`.
pub fn user_arn(account: &str, path: &str, name: &str) -> String {
    ["arn:aws:iam::", account, ":user", path, name].concat()
}

impl Caller {
    /// The principal this caller acts as.
    pub fn identity(&self, account: &str) -> Identity {
        let root = || Identity {
            arn: root_arn(account),
            user_id: account.to_owned(),
            user_name: None,
        };
        match self {
            Caller::LongTerm(k) => match &k.owner {
                Owner::Root => root(),
                Owner::User(u) => Identity {
                    arn: user_arn(account, &u.path, &u.name),
                    user_id: u.user_id.clone(),
                    user_name: Some(u.name.clone()),
                },
            },
            Caller::Session(c) => match &c.principal {
                Principal::Root => root(),
                Principal::User {
                    user_id,
                    name,
                    path,
                } => Identity {
                    arn: user_arn(account, path, name),
                    user_id: user_id.clone(),
                    user_name: Some(name.clone()),
                },
                Principal::Role {
                    role_id,
                    name,
                    session_name,
                    ..
                } => Identity {
                    arn: assumed_role_arn(account, name, session_name),
                    user_id: role_session_user_id(role_id, session_name),
                    user_name: None,
                },
            },
        }
    }

    /// The claims of session credentials.
    pub fn claims(&self) -> Option<&SessionClaims> {
        match self {
            Caller::LongTerm(_) => None,
            Caller::Session(c) => Some(c),
        }
    }

    /// True for role sessions (AssumeRole credentials).
    pub fn is_role_session(&self) -> bool {
        matches!(
            self,
            Caller::Session(c) if matches!(c.principal, Principal::Role { .. })
        )
    }

    /// True for session credentials.
    pub fn is_session(&self) -> bool {
        matches!(self, Caller::Session(_))
    }

    /// The access key id the request was signed with.
    pub fn access_key_id(&self) -> &str {
        match self {
            Caller::LongTerm(k) => &k.access_key_id,
            Caller::Session(c) => &c.access_key_id,
        }
    }

    /// The key whose request budget this request spends (`--rate-limit-per-key`): the key itself for a
    /// long-term key; for a session, the long-term key that created it, so that minting sessions does not
    /// multiply a key's budget.
    pub fn rate_limit_key(&self) -> &str {
        match self {
            Caller::LongTerm(k) => &k.access_key_id,
            Caller::Session(c) => &c.source_access_key_id,
        }
    }

    /// For sessions, whether MFA was used; `None` for long-term keys.
    pub fn mfa(&self) -> Option<bool> {
        match self {
            Caller::LongTerm(_) => None,
            Caller::Session(c) => Some(c.mfa.is_some()),
        }
    }
}

/// Verifies the request's signature and returns the caller. `mfa_serial`: the MFA device the request
/// names, read with a key that is not cached ([`Authenticated::device`]).
///
/// # Errors
/// The AWS error for the first failed check.
pub async fn authenticate(
    state: &AppState,
    req: &sigv4::Request<'_>,
    api: Api,
    mfa_serial: Option<&str>,
) -> Result<Authenticated, ApiError> {
    authenticate_with(
        state,
        req,
        api.signing_service(),
        state.regions.as_deref(),
        Payload::Body,
        mfa_serial,
    )
    .await
}

/// Where the payload hash of the canonical request comes from.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// Computed from the body (the STS/IAM endpoint).
    Body,
    /// Given: the request verifies when it does with any of these values (the authorizer, which sees no
    /// body and takes the signed `x-amz-content-sha256` value, or the empty body's hash).
    Declared(&'a [&'a str]),
}

/// [`authenticate`] for a given credential-scope service and region set, and payload hash: the same
/// checks, errors, caches and principal resolution as the STS endpoint (the authorizer's entry point).
///
/// # Errors
/// The AWS error for the first failed check.
pub async fn authenticate_scoped(
    state: &AppState,
    req: &sigv4::Request<'_>,
    service: &str,
    regions: Option<&[String]>,
    payload: Payload<'_>,
) -> Result<Authenticated, ApiError> {
    authenticate_with(state, req, service, regions, payload, None).await
}

async fn authenticate_with(
    state: &AppState,
    req: &sigv4::Request<'_>,
    service: &str,
    regions: Option<&[String]>,
    payload: Payload<'_>,
    mfa_serial: Option<&str>,
) -> Result<Authenticated, ApiError> {
    let fail = |reason: AuthFailure, e: ApiError| {
        state.metrics.auth_failure(reason);
        e
    };
    let auth = sigv4::parse(req).map_err(|e| fail(AuthFailure::Malformed, errors::from_sig(&e)))?;
    let now = state.clock.now();
    auth.check_time(now)
        .map_err(|e| fail(AuthFailure::Signature, errors::from_sig(&e)))?;
    auth.check_scope(service, regions)
        .map_err(|e| fail(AuthFailure::Signature, errors::from_sig(&e)))?;
    let (caller, device) = resolve(state, req, &auth, now, payload, mfa_serial, &fail).await?;
    Ok(Authenticated {
        caller,
        region: auth.region().to_owned(),
        device,
    })
}

/// A verified caller and the region its request was signed for.
#[derive(Debug)]
pub struct Authenticated {
    /// The caller.
    pub caller: Caller,
    /// Credential-scope region.
    pub region: String,
    /// The MFA device the request names, when it was read with the caller's key.
    pub device: Option<DeviceRead>,
}

async fn resolve(
    state: &AppState,
    req: &sigv4::Request<'_>,
    auth: &sigv4::Auth,
    now: i64,
    payload: Payload<'_>,
    mfa_serial: Option<&str>,
    fail: &impl Fn(AuthFailure, ApiError) -> ApiError,
) -> Result<(Caller, Option<DeviceRead>), ApiError> {
    let verify = |secret: &[u8]| {
        let verdict = match payload {
            Payload::Body => sigv4::verify_cached(req, auth, secret, &state.signing_keys),
            Payload::Declared(hashes) => {
                let mut verdict = Err(sigv4::SigError::SignatureDoesNotMatch);
                for h in hashes {
                    verdict = sigv4::verify_cached_with_payload_hash(
                        req,
                        auth,
                        secret,
                        &state.signing_keys,
                        h,
                    );
                    if verdict.is_ok() {
                        break;
                    }
                }
                verdict
            }
        };
        verdict.map_err(|e| fail(AuthFailure::Signature, errors::from_sig(&e)))
    };
    if auth.access_key_id().starts_with(ids::SESSION_PREFIX) {
        // A temporary key without its token is an unknown key.
        let Some(token) = auth.security_token.as_deref() else {
            return Err(fail(
                AuthFailure::UnknownKey,
                ApiError::unknown_access_key(),
            ));
        };
        let claims = state
            .key_ring()
            .open(token)
            .map_err(|e| fail(AuthFailure::TokenInvalid, errors::from_token(&e)))?;
        if claims.access_key_id != auth.access_key_id() || claims.account_id != state.account_id {
            return Err(fail(
                AuthFailure::TokenInvalid,
                ApiError::invalid_session_token(),
            ));
        }
        verify(claims.secret_access_key.expose().as_bytes())?;
        if claims.expires_at <= now {
            return Err(fail(AuthFailure::TokenExpired, ApiError::expired_token()));
        }
        // Revocation: sessions issued before the principal's "not before" time, or of a deleted user,
        // are no longer valid.
        let principal = match &claims.principal {
            Principal::Root => stsd_store::iam::ROOT_OWNER,
            Principal::User { user_id, .. } => user_id.as_str(),
            Principal::Role { role_id, .. } => role_id.as_str(),
        };
        // Unknown because the store cannot be read (and nothing is cached): refuse with 503 rather than
        // accept a session that may have been revoked.
        let not_before = state.sessions_not_before(principal).await.map_err(|e| {
            tracing::warn!(error = %e, "revocation state unavailable and not cached: session refused");
            ApiError::service_unavailable()
        })?;
        match not_before {
            Some(nb) if claims.issued_at >= nb => {}
            _ => {
                return Err(fail(
                    AuthFailure::TokenRevoked,
                    ApiError::invalid_session_token(),
                ));
            }
        }
        return Ok((Caller::Session(Box::new(claims)), None));
    }

    let (key, device) = state
        .access_key_reading_device(auth.access_key_id(), mfa_serial)
        .await
        .map_err(|e| errors::from_store(&e))?;
    // An inactive key is refused exactly like one that does not exist.
    let Some(key) = key.filter(|k| k.status == KeyStatus::Active) else {
        return Err(fail(
            AuthFailure::UnknownKey,
            ApiError::unknown_access_key(),
        ));
    };
    verify(key.secret.expose().as_bytes())?;
    if auth.security_token.is_some() {
        // A security token makes no sense with a long-term key: refuse it rather than ignore it.
        return Err(fail(
            AuthFailure::TokenInvalid,
            ApiError::invalid_session_token(),
        ));
    }
    state.note_key_use(&key.access_key_id, now, auth.region(), auth.service());
    Ok((Caller::LongTerm(key), device))
}
