//! Signing in and out: the password step (with the lock-out and the password-age rules), the MFA step,
//! the forced and the voluntary password change, sign-out. Every failure of the password step reads the
//! same ([`super::SIGN_IN_FAILED`]) and costs one Argon2 verification.

use super::session::{self, Principal, SessionInfo, Stage};
use super::view::{Layout, MfaSignInPage, PasswordChangePage};
use super::{Reply, audit, identity, owner_of, redirect, render, run_validated, sign_in_page};
use crate::handler::Incoming;
use crate::password;
use crate::state::AppState;
use serde_json::json;
use stsd_core::secret::Secret;
use stsd_proto::Params;
use stsd_proto::iam::IamAction;

/// `POST /console/signin`: the password step.
pub(super) async fn sign_in(
    state: &AppState,
    req: &Incoming<'_>,
    form: &Params,
    now: i64,
) -> Reply {
    let Some(sessions) = &state.console else {
        return super::not_found(state, None);
    };
    let pw = Secret::new(form.get("password").unwrap_or_default());
    let as_root = form.get("root") == Some("on");
    let account_ok = form.get("account").map(str::trim) == Some(state.account.as_str());
    let principal = if as_root {
        Some(Principal {
            user_id: None,
            name: "root".into(),
        })
    } else {
        match form.get("user").map(str::trim).filter(|u| !u.is_empty()) {
            Some(name) => state
                .store
                .user_by_name(name)
                .await
                .ok()
                .flatten()
                .map(|u| Principal {
                    user_id: Some(u.user_id),
                    name: u.name,
                }),
            None => None,
        }
    };
    let owner = principal.as_ref().map(owner_of);
    let profile = match &owner {
        Some(o) if account_ok => state.store.login_profile(o).await.ok().flatten(),
        _ => None,
    };
    // One Argon2 verification in every case, so the time taken does not tell what was wrong.
    let verified = match &profile {
        Some(p) => password::verify(pw.expose(), &p.password_hash)
            .await
            .unwrap_or(false),
        None => {
            let _ = password::verify_nothing(pw.expose()).await;
            false
        }
    };
    // Wrong passwords count towards a lock-out like wrong MFA codes (the `[mfa]` limits); a locked
    // profile refuses even the right password, with the same answer as any failure.
    let locked = profile
        .as_ref()
        .is_some_and(|p| p.locked_until.is_some_and(|t| t > now));
    if let (Some(o), Some(_), false, false) = (&owner, &profile, verified, locked) {
        let m = state.mfa;
        match state
            .store
            .login_record_failure(o, now, m.max_failures, m.failure_window, m.lockout)
            .await
        {
            Ok(true) => {
                tracing::warn!(principal = %o, "console sign-in locked after failed passwords")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(principal = %o, error = %e, "recording a failed sign-in failed")
            }
        }
    }
    let verified = verified && !locked;
    let (Some(principal), Some(owner), Some(profile), true) = (principal, owner, profile, verified)
    else {
        audit(
            state,
            req,
            json!({"eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
            "userIdentity": {"type": if as_root { "Root" } else { "IAMUser" },
                "userName": form.get("user").map(|u| crate::audit::clean(u, 64))},
            "errorMessage": "Failed authentication", "responseElements": {"ConsoleLogin": "Failure"}}),
        );
        return sign_in_page(state, 401, Some(super::SIGN_IN_FAILED));
    };
    if let Err(e) = state.store.login_reset_failures(&owner).await {
        tracing::warn!(principal = %owner, error = %e, "resetting failed sign-ins failed");
    }
    // Password expiry (the account policy's MaxPasswordAge, IAM users only): a new password is needed
    // before anything else; with HardExpiry only an administrator can set it.
    // Fail closed: without the password policy or the device list the sign-in cannot know what it
    // must demand, so it does not go on.
    let unavailable = || {
        sign_in_page(
            state,
            503,
            Some("The service is unavailable. Please try again later."),
        )
    };
    let Ok(policy) = state.store.password_policy().await else {
        return unavailable();
    };
    let expired = principal.user_id.is_some()
        && policy.is_some_and(|p| {
            p.max_password_age > 0
                && now - profile.password_changed_at > p.max_password_age * 86_400
        });
    if expired && policy.is_some_and(|p| p.hard_expiry) {
        audit(
            state,
            req,
            json!({"eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
            "userIdentity": identity(state, &principal),
            "errorMessage": "Password expired", "responseElements": {"ConsoleLogin": "Failure"}}),
        );
        return sign_in_page(
            state,
            403,
            Some("Your password has expired. Ask your administrator to reset it."),
        );
    }
    let Ok(devices) = state.store.list_mfa_devices(&owner, None, 8).await else {
        return unavailable();
    };
    let stage = if !devices.is_empty() {
        Stage::NeedsMfa
    } else if profile.password_reset_required || expired {
        Stage::NeedsPasswordChange
    } else {
        Stage::Ready
    };
    audit(
        state,
        req,
        json!({"eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
        "userIdentity": identity(state, &principal),
        "additionalEventData": {"MFAUsed": "No", "MFAPending": if stage == Stage::NeedsMfa { "Yes" } else { "No" }},
        "responseElements": {"ConsoleLogin": if stage == Stage::NeedsMfa { "MFARequired" } else { "Success" }}}),
    );
    let (cookie, _) = sessions.create(principal, None, stage, now);
    redirect(Some(session::set_cookie(&cookie, super::https(state, req))))
}

/// The MFA step's page (a session at [`Stage::NeedsMfa`]).
pub(super) async fn mfa_page(
    state: &AppState,
    info: &SessionInfo,
    csrf: &Secret,
    message: Option<&str>,
) -> Reply {
    let devices = state
        .store
        .list_mfa_devices(&owner_of(&info.principal), None, 8)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.serial_number)
        .collect();
    render(
        200,
        &MfaSignInPage {
            layout: Layout::signed_in(state, info, csrf, "Multi-factor authentication")
                .alert(message),
            csrf: csrf.expose(),
            devices,
        },
        None,
    )
}

/// The forced password change's page (a session at [`Stage::NeedsPasswordChange`]).
pub(super) fn password_change_page(
    state: &AppState,
    info: &SessionInfo,
    csrf: &Secret,
    message: Option<&str>,
) -> Reply {
    render(
        200,
        &PasswordChangePage {
            layout: Layout::signed_in(state, info, csrf, "Change password").alert(message),
            csrf: csrf.expose(),
        },
        None,
    )
}

/// `POST /console/mfa`: the sign-in's MFA code (counts towards the device's lock-out, as for
/// `GetSessionToken`).
pub(super) async fn mfa(
    state: &AppState,
    req: &Incoming<'_>,
    cookie: &str,
    info: &SessionInfo,
    form: &Params,
    now: i64,
) -> Reply {
    let Some(sessions) = &state.console else {
        return super::not_found(state, None);
    };
    let owner = owner_of(&info.principal);
    let serial = form.get("serial").unwrap_or_default();
    let code = form.get("code").unwrap_or_default().trim();
    let ok = code.len() == 6
        && code.bytes().all(|b| b.is_ascii_digit())
        && crate::sts::verify_mfa(state, &owner, serial, code, now, None)
            .await
            .is_ok();
    audit(
        state,
        req,
        json!({"eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
        "userIdentity": identity(state, &info.principal),
        "additionalEventData": {"MFAUsed": "Yes"},
        "responseElements": {"ConsoleLogin": if ok { "Success" } else { "Failure" }}}),
    );
    if !ok {
        let (_, csrf) = sessions
            .get(cookie, now)
            .unwrap_or((info.clone(), Secret::new("")));
        return mfa_page(
            state,
            info,
            &csrf,
            Some("The MFA code is not valid. Please try again."),
        )
        .await;
    }
    // Fail closed: without the password policy or the device list the sign-in cannot know what it
    // must demand, so it does not go on.
    let unavailable = || {
        sign_in_page(
            state,
            503,
            Some("The service is unavailable. Please try again later."),
        )
    };
    let Ok(policy) = state.store.password_policy().await else {
        return unavailable();
    };
    let reset = state
        .store
        .login_profile(&owner)
        .await
        .ok()
        .flatten()
        .is_some_and(|p| {
            p.password_reset_required
                || (info.principal.user_id.is_some()
                    && policy.is_some_and(|pol| {
                        pol.max_password_age > 0
                            && now - p.password_changed_at > pol.max_password_age * 86_400
                    }))
        });
    let stage = if reset {
        Stage::NeedsPasswordChange
    } else {
        Stage::Ready
    };
    match sessions.advance(cookie, stage, Some((now, serial.to_owned())), now) {
        Some((new_cookie, _)) => redirect(Some(session::set_cookie(
            &new_cookie,
            super::https(state, req),
        ))),
        None => redirect(Some(session::clear_cookie(super::https(state, req)))),
    }
}

/// `POST /console/password`: IAM's `ChangePassword` (the account policy's rules and IAM's messages);
/// the principal's other sessions end, this one continues with a new cookie.
pub(super) async fn change_password(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    csrf: &Secret,
    form: &Params,
    now: i64,
) -> Reply {
    let Some(sessions) = &state.console else {
        return super::not_found(state, None);
    };
    let old = form.get("old").unwrap_or_default();
    let new = form.get("new").unwrap_or_default();
    if form.get("confirm") != Some(new) {
        return super::credentials::home(
            state,
            req,
            info,
            csrf,
            Some("The new passwords do not match."),
        )
        .await;
    }
    let action = IamAction::ChangePassword {
        old_password: old.to_owned(),
        new_password: new.to_owned(),
    };
    match run_validated(state, req, info, &action).await {
        Err(m) => super::credentials::home(state, req, info, csrf, Some(&m)).await,
        Ok(_) => {
            // Other sessions of this principal end; this one continues with a new cookie.
            sessions.revoke(info.principal.user_id.as_deref());
            let (c, _) =
                sessions.create(info.principal.clone(), info.mfa.clone(), Stage::Ready, now);
            redirect(Some(session::set_cookie(&c, super::https(state, req))))
        }
    }
}

/// `POST /console/signout`.
pub(super) fn sign_out(
    state: &AppState,
    req: &Incoming<'_>,
    cookie: &str,
    info: &SessionInfo,
) -> Reply {
    if let Some(sessions) = &state.console {
        sessions.remove(cookie);
    }
    audit(
        state,
        req,
        json!({"eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogout",
        "userIdentity": identity(state, &info.principal)}),
    );
    redirect(Some(session::clear_cookie(super::https(state, req))))
}
