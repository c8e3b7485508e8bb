//! The STS actions.

use crate::auth::Caller;
use crate::state::{AppState, DeviceRead};
use stsd_core::ids;
use stsd_core::timefmt::iso8601;
use stsd_core::token::MfaContext;
use stsd_core::token::{Principal, SessionClaims};
use stsd_core::totp;
use stsd_proto::ApiError;
use stsd_proto::error::{MFA_INVALID_CODE, MFA_UNABLE_TO_VALIDATE};

use stsd_proto::sts::{self as wire, GetSessionTokenInput, StsAction};
use stsd_store::Owner;
use stsd_store::iam::ROOT_OWNER;

/// Root sessions last at most one hour; longer requests are clamped (AWS behaviour).
pub const ROOT_MAX_DURATION: i64 = 3600;
/// Default duration of an IAM user's session.
pub const USER_DEFAULT_DURATION: i64 = 43_200;

/// A successful action: the body, and what the audit log may record of the response.
#[derive(Debug)]
pub struct Executed {
    /// XML body.
    pub body: String,
    /// CloudTrail-style `responseElements` (never a secret or a token).
    pub response: Option<serde_json::Value>,
}

impl From<String> for Executed {
    fn from(body: String) -> Self {
        Executed {
            body,
            response: None,
        }
    }
}

/// Runs an STS action for `caller`; returns the response body. `device`: the MFA device the request
/// names, if it was read with the caller's key.
///
/// # Errors
/// The action's AWS error.
pub async fn execute(
    state: &AppState,
    caller: &Caller,
    transport: &crate::authz::context::Transport<'_>,
    action: StsAction,
    request_id: &str,
    device: Option<DeviceRead>,
) -> Result<Executed, ApiError> {
    match action {
        StsAction::GetCallerIdentity => {
            let id = caller.identity(&state.account);
            Ok(
                wire::get_caller_identity_body(&id.arn, &id.user_id, &state.account, request_id)
                    .into(),
            )
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
            Ok(wire::get_access_key_info_body(&ids::format_account(account), request_id).into())
        }
        StsAction::GetSessionToken(input) => {
            get_session_token(state, caller, &input, request_id, device).await
        }
        StsAction::AssumeRole(input) => {
            Box::pin(crate::assume::assume_role(
                state, caller, transport, &input, request_id, device,
            ))
            .await
        }
        StsAction::GetScopedCredentials(input) => {
            crate::assume::get_scoped_credentials(state, caller, &input, request_id)
        }
    }
}

async fn get_session_token(
    state: &AppState,
    caller: &Caller,
    input: &GetSessionTokenInput,
    request_id: &str,
    device: Option<DeviceRead>,
) -> Result<Executed, ApiError> {
    let key = match caller {
        Caller::Session(_) => {
            return Err(ApiError::access_denied(
                "Cannot call GetSessionToken with session credentials",
            ));
        }
        Caller::LongTerm(k) => k,
    };
    let now = state.clock.now();
    let mfa = match (&input.serial_number, &input.token_code) {
        (None, None) => {
            require_mfa_unless(state, key.owner_mfa_required, false)?;
            None
        }
        // Boxed: its store calls make a large future, and keeping it out of line keeps every
        // GetSessionToken's future (moved at each await) small.
        (Some(serial), Some(code)) => {
            let owner_id = match &key.owner {
                Owner::Root => ROOT_OWNER,
                Owner::User(u) => u.user_id.as_str(),
            };
            Some(Box::pin(verify_mfa(state, owner_id, serial, code, now, device)).await?)
        }
        // Only one of the two (reference roles-and-sessions §3, [R]).
        _ => return Err(ApiError::access_denied(MFA_BOTH_REQUIRED)),
    };
    let (claims, token) = mint_session_token(
        state,
        &key.owner,
        &key.access_key_id,
        mfa,
        input,
        now,
        request_id,
    )?;
    let expiration = iso8601(claims.expires_at);
    let body = wire::get_session_token_body(
        &wire::Credentials {
            access_key_id: &claims.access_key_id,
            secret_access_key: claims.secret_access_key.expose(),
            session_token: &token,
            expiration: &expiration,
        },
        request_id,
    );
    // Built only for the audit log (this is the hot path of the server).
    let response = state.audit.is_some().then(|| {
        serde_json::json!({
            "credentials": {"accessKeyId": claims.access_key_id, "expiration": expiration},
            "sessionTokenSize": token.len(),
        })
    });
    Ok(Executed { body, response })
}

/// GetSessionToken without an MFA code is refused where MFA is required (`[mfa] required_for_all`, or
/// the user's own flag); `mfa_present`: the caller proved MFA some other way (a console sign-in with a
/// code).
///
/// # Errors
/// `AccessDenied` with [`MFA_REQUIRED`].
pub fn require_mfa_unless(
    state: &AppState,
    owner_mfa_required: bool,
    mfa_present: bool,
) -> Result<(), ApiError> {
    if !mfa_present && (state.mfa.required_for_all || owner_mfa_required) {
        return Err(ApiError::access_denied(MFA_REQUIRED));
    }
    Ok(())
}

/// Issues GetSessionToken's credentials for `owner` (MFA already checked): the root's sessions are
/// clamped to one hour, a user's default to 12 hours; `source`: what asked for them (the long-term key,
/// or the console sign-in), whose request budget the session spends. Returns the claims (with the new
/// secret) and the sealed session token. Used by the API and by the console's "Session credentials".
///
/// # Errors
/// `InternalFailure` when the token cannot be sealed.
pub fn mint_session_token(
    state: &AppState,
    owner: &Owner,
    source: &str,
    mfa: Option<MfaContext>,
    input: &GetSessionTokenInput,
    now: i64,
    request_id: &str,
) -> Result<(SessionClaims, String), ApiError> {
    let (principal, duration) = match owner {
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
    let claims = SessionClaims {
        account_id: state.account_id,
        principal,
        access_key_id: ids::new_session_key_id(state.account_id),
        secret_access_key: ids::new_secret_access_key(),
        source_access_key_id: source.to_owned(),
        issued_at: now,
        expires_at: now + duration,
        mfa,
        ext: stsd_core::token::SessionExt::default(),
    };
    let min = usize::try_from(input.minimum_session_token_size.unwrap_or(0)).unwrap_or(0);
    let token = state.key_ring().seal(&claims, min).map_err(|e| {
        tracing::error!(request_id, error = %e, "sealing a session token failed");
        ApiError::internal()
    })?;
    Ok((claims, token))
}

/// Only one of `SerialNumber` and `TokenCode` given [R].
pub const MFA_BOTH_REQUIRED: &str =
    "MultiFactorAuthentication failed, must provide both MFA serial number and one time pass code.";

/// The message for GetSessionToken without MFA where MFA is required (stsd's own rule, not AWS's).
pub const MFA_REQUIRED: &str = "MultiFactorAuthentication required: this principal must call GetSessionToken with SerialNumber and TokenCode";

/// The largest number of devices with unrecorded failures remembered (each entry is a few dozen bytes).
const UNRECORDED_CAPACITY: usize = 100_000;
/// Attempts to record a failed code before the request gives up (the failure is then kept in memory).
const RECORD_ATTEMPTS: u32 = 3;

/// Failed MFA codes that could not be written to the store, by serial number: (time of the first one,
/// how many). A device with unrecorded failures is treated as locked on this node (every code refused,
/// even a correct one) until they are written: otherwise a store that refuses writes would let codes be
/// guessed without the lock-out ever advancing. Every later request for the device retries the write.
#[derive(Debug, Default)]
pub struct UnrecordedFailures {
    inner: std::sync::Mutex<std::collections::HashMap<String, (i64, i64)>>,
}

impl UnrecordedFailures {
    fn get(&self, serial: &str) -> Option<(i64, i64)> {
        self.inner.lock().ok().and_then(|m| m.get(serial).copied())
    }

    fn add(&self, serial: &str, at: i64, max: i64) {
        if let Ok(mut m) = self.inner.lock() {
            if m.len() >= UNRECORDED_CAPACITY && !m.contains_key(serial) {
                // Bounded: the oldest entries matter least (a lock-out they caused would be over).
                if let Some(oldest) = m
                    .iter()
                    .min_by_key(|(_, (t, _))| *t)
                    .map(|(k, _)| k.clone())
                {
                    m.remove(&oldest);
                }
            }
            let e = m.entry(serial.to_owned()).or_insert((at, 0));
            e.1 = (e.1 + 1).min(max.max(1));
        }
    }

    fn remove(&self, serial: &str) {
        if let Ok(mut m) = self.inner.lock() {
            m.remove(serial);
        }
    }
}

/// Records `count` failed codes for a device (retrying a few times); true when the device got locked.
pub(crate) async fn record_failures(
    state: &AppState,
    serial: &str,
    at: i64,
    count: i64,
) -> Result<bool, stsd_store::StoreError> {
    let policy = state.mfa;
    let mut locked = false;
    for _ in 0..count {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match state
                .store
                .mfa_record_failure(
                    serial,
                    at,
                    policy.max_failures,
                    policy.failure_window,
                    policy.lockout,
                )
                .await
            {
                Ok(l) => {
                    locked |= l;
                    break;
                }
                Err(e) if attempt >= RECORD_ATTEMPTS => return Err(e),
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
            }
        }
    }
    Ok(locked)
}

/// Checks an MFA code for GetSessionToken: the device must be enabled for the caller, not locked, and
/// the code must match a step inside the window that is later than every step accepted before. The
/// step is consumed with one conditional UPDATE, so concurrent requests (on any node) with the same code
/// succeed at most once; it also requires the device to be still as read (owner, seed, drift), so a
/// device resynchronised or replaced between the read and the UPDATE refuses the code. Failures are
/// counted and lock the device. `read`: the device as read with the caller's key, if it was.
pub(crate) async fn verify_mfa(
    state: &AppState,
    owner_id: &str,
    serial: &str,
    code: &str,
    now: i64,
    read: Option<DeviceRead>,
) -> Result<MfaContext, ApiError> {
    let store_err = |e: stsd_store::StoreError| crate::errors::from_store(&e);
    let device = match read.filter(|r| r.serial == serial) {
        Some(read) => read.device,
        None => {
            let started = std::time::Instant::now();
            let device = state.store.mfa_device(serial).await.map_err(store_err)?;
            state.metrics.store("mfa_device", started.elapsed());
            device
        }
    };
    let Some(device) = device.filter(|d| d.owner.as_deref() == Some(owner_id)) else {
        return Err(ApiError::access_denied(MFA_UNABLE_TO_VALIDATE));
    };
    let policy = state.mfa;
    // Failures this node could not record before: write them first; until they are written, the device
    // counts as locked here (fail closed).
    if let Some((at, count)) = state.mfa_unrecorded.get(serial) {
        match record_failures(state, serial, at, count).await {
            Ok(_) => state.mfa_unrecorded.remove(serial),
            Err(e) => {
                state.metrics.mfa_failure(false);
                tracing::warn!(serial = %serial, error = %e, "MFA code refused: earlier failed codes are not recorded yet");
                return Err(ApiError::access_denied(MFA_INVALID_CODE));
            }
        }
        // The recorded failures may have locked it: read it again.
        return Box::pin(verify_mfa(state, owner_id, serial, code, now, None)).await;
    }
    if device.locked_until.is_some_and(|t| t > now) {
        state.metrics.mfa_failure(false);
        tracing::warn!(serial = %serial, "MFA code refused: device locked after repeated failures");
        return Err(ApiError::access_denied(MFA_INVALID_CODE));
    }
    let seed = data_encoding::BASE32_NOPAD
        .decode(device.seed.expose().trim_end_matches('=').as_bytes())
        .map(zeroize::Zeroizing::new)
        .map_err(|_| ApiError::internal())?;
    let now_step = totp::step_at(now) + device.drift_steps;
    let matched = totp::verify(&seed, code, now_step, policy.window_steps, device.last_step);
    let accepted = match matched {
        Some(step) => {
            let started = std::time::Instant::now();
            let accepted = state.store.mfa_accept_step(&device, step, now).await;
            state.metrics.store("mfa_accept_step", started.elapsed());
            accepted.map_err(store_err)?
        }
        None => false,
    };
    if !accepted {
        let locked = match record_failures(state, serial, now, 1).await {
            Ok(locked) => locked,
            Err(e) => {
                // The code was wrong but the lock-out could not advance: remember the failure and
                // refuse every code for this device until it is written.
                state.mfa_unrecorded.add(serial, now, policy.max_failures);
                tracing::warn!(serial = %serial, error = %e, "recording a failed MFA code failed; the device is refused until it is recorded");
                false
            }
        };
        state.metrics.mfa_failure(locked);
        if locked {
            tracing::warn!(serial = %serial, lockout_seconds = policy.lockout, "MFA device locked after repeated failed codes");
        } else {
            tracing::info!(serial = %serial, "MFA code refused");
        }
        return Err(ApiError::access_denied(MFA_INVALID_CODE));
    }
    state.metrics.mfa_success();
    Ok(MfaContext {
        authenticated_at: now,
        serial_number: serial.to_owned(),
    })
}
