//! "Session credentials" (`/console/session`): STS `GetSessionToken` for the signed-in principal,
//! through the API's own code ([`crate::sts::mint_session_token`]): the same parameter validation,
//! durations (the root's clamped to one hour), MFA rule (`[mfa] required_for_all` and the user's flag,
//! satisfied by a sign-in that used an MFA code, whose MFA the session then carries) and request budget.

use super::session::SessionInfo;
use super::view::{Layout, SessionCredentials, SessionCredentialsPage};
use super::{Reply, audit, identity, owner_of, render};
use crate::handler::Incoming;
use crate::state::AppState;
use serde_json::json;
use stsd_core::secret::Secret;
use stsd_core::timefmt::iso8601;
use stsd_core::token::MfaContext;
use stsd_proto::sts::StsAction;
use stsd_proto::{ApiError, Params};
use stsd_store::Owner;

fn page(
    state: &AppState,
    info: &SessionInfo,
    csrf: &Secret,
    alert: Option<&str>,
    credentials: Option<SessionCredentials<'_>>,
) -> Reply {
    render(
        200,
        &SessionCredentialsPage {
            layout: Layout::signed_in(state, info, csrf, "Session credentials")
                .current("session")
                .alert(alert),
            csrf: csrf.expose(),
            mfa_at_sign_in: info.mfa.is_some(),
            is_root: info.principal.user_id.is_none(),
            credentials,
        },
        None,
    )
}

/// `GET /console/session`.
pub(super) fn form(state: &AppState, info: &SessionInfo, csrf: &Secret) -> Reply {
    page(state, info, csrf, None, None)
}

/// `POST /console/session`: new session credentials, shown once (the page is `no-store`).
pub(super) async fn issue(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    csrf: &Secret,
    form: &Params,
) -> Reply {
    match get_session_token(state, req, info, form).await {
        Ok((claims, token)) => {
            let expiration = iso8601(claims.expires_at);
            page(
                state,
                info,
                csrf,
                None,
                Some(SessionCredentials {
                    access_key_id: &claims.access_key_id,
                    secret_access_key: claims.secret_access_key.expose(),
                    session_token: &token,
                    expiration: &expiration,
                    mfa: claims.mfa.is_some(),
                }),
            )
        }
        Err(e) => page(state, info, csrf, Some(&e.message), None),
    }
}

async fn get_session_token(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    form: &Params,
) -> Result<(stsd_core::token::SessionClaims, String), ApiError> {
    // The API's validation of the parameters (DurationSeconds 900..=129600).
    let mut pairs = Vec::new();
    if let Some(d) = form
        .get("duration")
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        pairs.push(("DurationSeconds".to_owned(), d.to_owned()));
    }
    let StsAction::GetSessionToken(input) =
        StsAction::parse("GetSessionToken", &Params::from_pairs(pairs))?
    else {
        return Err(ApiError::internal());
    };
    let (owner, mfa_required) = match &info.principal.user_id {
        None => (Owner::Root, false),
        Some(id) => {
            let user = state
                .store
                .user_by_id(id)
                .await
                .map_err(|e| crate::errors::from_store(&e))?
                .ok_or_else(|| ApiError::access_denied("Your user no longer exists."))?;
            let required = state
                .store
                .user_mfa_required(id)
                .await
                .map_err(|e| crate::errors::from_store(&e))?
                .unwrap_or(false);
            (Owner::User(user), required)
        }
    };
    let source = format!("console:{}", owner_of(&info.principal));
    let request_id = crate::handler::new_request_id();
    let mut event = json!({"eventSource": "sts.amazonaws.com", "eventName": "GetSessionToken",
        "eventType": "AwsApiCall", "requestID": request_id,
        "userIdentity": identity(state, &info.principal),
        "additionalEventData": {"MFAUsed": if info.mfa.is_some() { "Yes" } else { "No" }}});
    let result = async {
        if !state.key_limit.allow(&source) {
            state.metrics.throttled();
            return Err(ApiError::throttling());
        }
        crate::sts::require_mfa_unless(state, mfa_required, info.mfa.is_some())?;
        let mfa = info.mfa.as_ref().map(|(at, serial)| MfaContext {
            authenticated_at: *at,
            serial_number: serial.clone(),
        });
        crate::sts::mint_session_token(
            state,
            &owner,
            &source,
            mfa,
            &input,
            state.clock.now(),
            &request_id,
        )
    }
    .await;
    if let Some(o) = event.as_object_mut() {
        match &result {
            Ok((claims, token)) => {
                o.insert(
                    "responseElements".into(),
                    json!({"credentials": {"accessKeyId": claims.access_key_id,
                        "expiration": iso8601(claims.expires_at)},
                        "sessionTokenSize": token.len()}),
                );
            }
            Err(e) => {
                o.insert("errorCode".into(), json!(e.code));
                o.insert(
                    "errorMessage".into(),
                    json!(crate::audit::clean(&e.message, 512)),
                );
            }
        }
    }
    audit(state, req, event);
    result
}
