//! The web console (issue 19), first cut, served under `/console/` on the main listener with
//! `--console`: sign-in (account id, user name or the root, password; then an MFA code when the
//! principal has an enabled device), a forced password change when `PasswordResetRequired`, and "My
//! security credentials" (change password; MFA devices and access keys listed), sign-out.
//!
//! Every IAM action runs through the same executor and authorization as the API ([`crate::iam::Iam`]),
//! as the signed-in principal, with the sign-in's MFA state as `aws:MultiFactorAuthPresent`; sign-ins and
//! console actions are written to the audit log. Sessions, cookies, CSRF tokens and security headers:
//! [`session`]. Pages are plain server-rendered HTML (every value escaped), no script.

pub mod session;

use crate::auth::user_arn;
use crate::authz::context::{self, Who};
use crate::handler::Incoming;
use crate::iam::{Actor, Iam};
use crate::password;
use crate::state::AppState;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde_json::json;
use session::{Principal, SessionInfo, Stage};
use stsd_core::secret::Secret;
use stsd_policy::Value;
use stsd_proto::Params;
use stsd_proto::iam::{IamAction, IamOutput, Page};
use stsd_store::iam::ROOT_OWNER;

/// What the sign-in page says for every failure: nothing tells whether the account, the user or the
/// password was wrong (AWS's console wording).
pub const SIGN_IN_FAILED: &str = "Your authentication information is incorrect. Please try again.";

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · stsd</title></head>\n<body>\n<main>\n<h1>{}</h1>\n{body}\n</main>\n</body></html>\n",
        esc(title),
        esc(title)
    )
}

fn respond(status: u16, html: String, cookie: Option<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(html)));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    for (k, v) in session::SECURITY_HEADERS {
        h.insert(*k, http::HeaderValue::from_static(v));
    }
    if let Some(c) = cookie.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
        h.insert(http::header::SET_COOKIE, c);
    }
    r
}

fn redirect(cookie: Option<String>) -> Response<Full<Bytes>> {
    let mut r = respond(303, String::new(), cookie);
    r.headers_mut().insert(
        http::header::LOCATION,
        http::HeaderValue::from_static("/console/"),
    );
    r
}

fn sign_in_form(account: &str, message: Option<&str>) -> String {
    let msg = message.map_or_else(String::new, |m| {
        format!("<p role=\"alert\">{}</p>\n", esc(m))
    });
    format!(
        "{msg}<form method=\"post\" action=\"/console/signin\">\n\
         <p><label for=\"account\">Account ID</label><br><input id=\"account\" name=\"account\" value=\"{}\" required autocomplete=\"off\"></p>\n\
         <p><label for=\"user\">IAM user name</label><br><input id=\"user\" name=\"user\" autocomplete=\"username\"></p>\n\
         <p><input type=\"checkbox\" id=\"root\" name=\"root\" value=\"on\"> <label for=\"root\">Sign in as the root user</label></p>\n\
         <p><label for=\"password\">Password</label><br><input id=\"password\" name=\"password\" type=\"password\" required autocomplete=\"current-password\"></p>\n\
         <p><button type=\"submit\">Sign in</button></p>\n</form>",
        esc(account)
    )
}

/// The session cookie of a request, if any.
fn cookie_of<'a>(req: &'a Incoming<'_>) -> Option<&'a str> {
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| session::cookie_value(h, req.tls))
}

/// A sign-in form posted from another site is refused (login CSRF): a browser's `Origin` must be this
/// server and `Sec-Fetch-Site` must not say cross-site.
fn same_origin(req: &Incoming<'_>) -> bool {
    let header = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok());
    if header("sec-fetch-site").is_some_and(|s| s == "cross-site" || s == "same-site") {
        return false;
    }
    match (header("origin"), header("host")) {
        (None, _) => true,
        // Pages are sent with `Referrer-Policy: no-referrer`, under which browsers send `Origin: null`
        // with a form's POST; then the browser's own `Sec-Fetch-Site` must say it came from this origin.
        (Some("null"), _) => header("sec-fetch-site") == Some("same-origin"),
        (Some(o), Some(host)) => {
            let scheme = if req.tls { "https" } else { "http" };
            o == format!("{scheme}://{host}")
        }
        (Some(_), None) => false,
    }
}

fn audit(state: &AppState, req: &Incoming<'_>, event: serde_json::Value) {
    if let Some(a) = &state.audit {
        let mut record = json!({
            "eventVersion": "1.08",
            "eventTime": stsd_core::timefmt::iso8601(state.clock.now()),
            "sourceIPAddress": req.peer.to_string(),
            "userAgent": req.headers.get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| crate::audit::clean(ua, 256)),
            "recipientAccountId": state.account,
            "eventType": "AwsConsoleSignIn",
        });
        if let (Some(r), Some(e)) = (record.as_object_mut(), event.as_object()) {
            r.extend(e.clone());
        }
        a.record(record);
    }
}

fn identity(state: &AppState, p: &Principal) -> serde_json::Value {
    match &p.user_id {
        None => json!({"type": "Root", "principalId": state.account,
            "arn": format!("arn:aws:iam::{}:root", state.account), "accountId": state.account}),
        Some(id) => json!({"type": "IAMUser", "principalId": id, "userName": p.name,
            "accountId": state.account}),
    }
}

/// Serves one console request.
pub async fn handle(state: &AppState, req: &Incoming<'_>) -> Response<Full<Bytes>> {
    let Some(sessions) = &state.console else {
        return respond(404, page("Not found", ""), None);
    };
    let now = state.clock.now();
    let cookie = cookie_of(req);
    let mut current = cookie.and_then(|c| sessions.get(c, now));
    // Revoking a principal's sessions (`stsd admin sessions revoke`, deleting the user) ends its console
    // sessions too; when the revocation time cannot be read, the session is not trusted.
    if let (Some(c), Some((info, _))) = (cookie, &current) {
        let owner = info
            .principal
            .user_id
            .clone()
            .unwrap_or_else(|| ROOT_OWNER.to_owned());
        let revoked = match state.sessions_not_before(&owner).await {
            Ok(Some(t)) => info.created_at < t,
            // The user no longer exists.
            Ok(None) => info.principal.user_id.is_some(),
            Err(_) => true,
        };
        if revoked {
            sessions.remove(c);
            current = None;
        }
    }
    let form = Params::parse(req.body);
    match (req.method, req.path) {
        ("GET", "/console" | "/console/") => match current {
            None => respond(
                200,
                page("Sign in", &sign_in_form(&state.account, None)),
                None,
            ),
            Some((info, csrf)) => home(state, req, &info, &csrf, None).await,
        },
        ("POST", "/console/signin") => {
            if !same_origin(req) {
                return respond(
                    403,
                    page("Forbidden", "<p>Cross-site request refused.</p>"),
                    None,
                );
            }
            sign_in(state, req, &form, now).await
        }
        ("POST", path) => {
            // Every other form needs a live session and its CSRF token.
            let (Some(c), Some((info, _))) = (cookie, current) else {
                return respond(
                    403,
                    page(
                        "Signed out",
                        "<p>Your session has ended. <a href=\"/console/\">Sign in</a>.</p>",
                    ),
                    None,
                );
            };
            if !form
                .get("csrf")
                .is_some_and(|t| sessions.check_csrf(c, t, now))
            {
                return respond(
                    403,
                    page(
                        "Forbidden",
                        "<p>The form was not accepted (missing or stale CSRF token). <a href=\"/console/\">Reload</a>.</p>",
                    ),
                    None,
                );
            }
            match path {
                "/console/signout" => {
                    sessions.remove(c);
                    audit(
                        state,
                        req,
                        json!({"eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogout",
                        "userIdentity": identity(state, &info.principal)}),
                    );
                    redirect(Some(session::clear_cookie(req.tls)))
                }
                "/console/mfa" if info.stage == Stage::NeedsMfa => {
                    mfa(state, req, c, &info, &form, now).await
                }
                "/console/password" if info.stage != Stage::NeedsMfa => {
                    change_password(state, req, c, &info, &form, now).await
                }
                "/console/mfa/create" | "/console/mfa/enable" | "/console/mfa/remove"
                    if info.stage == Stage::Ready =>
                {
                    let csrf = sessions
                        .get(c, now)
                        .map_or_else(|| Secret::new(""), |(_, t)| t);
                    mfa_device(state, req, &info, &csrf, path, &form).await
                }
                "/console/keys" if info.stage == Stage::Ready => {
                    let csrf = sessions
                        .get(c, now)
                        .map_or_else(|| Secret::new(""), |(_, t)| t);
                    access_key(state, req, &info, &csrf, &form).await
                }
                _ => respond(404, page("Not found", ""), None),
            }
        }
        _ => respond(404, page("Not found", ""), None),
    }
}

async fn sign_in(
    state: &AppState,
    req: &Incoming<'_>,
    form: &Params,
    now: i64,
) -> Response<Full<Bytes>> {
    let Some(sessions) = &state.console else {
        return respond(404, page("Not found", ""), None);
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
    let owner = principal
        .as_ref()
        .map(|p| p.user_id.clone().unwrap_or_else(|| ROOT_OWNER.to_owned()));
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
        return respond(
            401,
            page(
                "Sign in",
                &sign_in_form(&state.account, Some(SIGN_IN_FAILED)),
            ),
            None,
        );
    };
    if let Err(e) = state.store.login_reset_failures(&owner).await {
        tracing::warn!(principal = %owner, error = %e, "resetting failed sign-ins failed");
    }
    // Password expiry (the account policy's MaxPasswordAge, IAM users only): a new password is needed
    // before anything else; with HardExpiry only an administrator can set it.
    let policy = state.store.password_policy().await.ok().flatten();
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
        return respond(
            403,
            page(
                "Sign in",
                &sign_in_form(
                    &state.account,
                    Some("Your password has expired. Ask your administrator to reset it."),
                ),
            ),
            None,
        );
    }
    let devices = state
        .store
        .list_mfa_devices(&owner, None, 8)
        .await
        .unwrap_or_default();
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
    redirect(Some(session::set_cookie(&cookie, req.tls)))
}

async fn mfa(
    state: &AppState,
    req: &Incoming<'_>,
    cookie: &str,
    info: &SessionInfo,
    form: &Params,
    now: i64,
) -> Response<Full<Bytes>> {
    let Some(sessions) = &state.console else {
        return respond(404, page("Not found", ""), None);
    };
    let owner = info
        .principal
        .user_id
        .clone()
        .unwrap_or_else(|| ROOT_OWNER.to_owned());
    let serial = form.get("serial").unwrap_or_default();
    let code = form.get("code").unwrap_or_default().trim();
    let ok = code.len() == 6
        && code.bytes().all(|b| b.is_ascii_digit())
        && crate::sts::verify_mfa(state, &owner, serial, code, now)
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
        return home(
            state,
            req,
            info,
            &csrf,
            Some("The MFA code is not valid. Please try again."),
        )
        .await;
    }
    let policy = state.store.password_policy().await.ok().flatten();
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
        Some((new_cookie, _)) => redirect(Some(session::set_cookie(&new_cookie, req.tls))),
        None => redirect(Some(session::clear_cookie(req.tls))),
    }
}

/// The executor acting as the signed-in principal, with the sign-in's MFA state in the context.
async fn actor(state: &AppState, req: &Incoming<'_>, info: &SessionInfo) -> Option<Actor> {
    let now = state.clock.now();
    let who = match &info.principal.user_id {
        None => Who::root(&state.account),
        Some(id) => {
            let u = state.store.user_by_id(id).await.ok().flatten()?;
            Who {
                arn: user_arn(&state.account, &u.path, &u.name),
                user: Some((u.user_id.clone(), u.name.clone(), u.path.clone())),
                role: None,
                session: None,
            }
        }
    };
    let ua = req
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let mut ctx = context::build(
        None,
        &who,
        &state.account,
        now,
        Some((req.peer, req.tls)),
        ua,
        "us-east-1",
    );
    match &info.mfa {
        Some((at, _)) => {
            ctx.set("aws:MultiFactorAuthPresent", Value::Bool(true));
            #[allow(clippy::cast_precision_loss)]
            ctx.set("aws:MultiFactorAuthAge", Value::Num((now - at) as f64));
        }
        None => ctx.set("aws:MultiFactorAuthPresent", Value::Bool(false)),
    }
    Some(Actor {
        who,
        ctx,
        mfa: info.mfa.is_some(),
    })
}

async fn run_action(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    action: &IamAction,
) -> Result<IamOutput, String> {
    let Some(actor) = actor(state, req, info).await else {
        return Err("Your user no longer exists.".into());
    };
    let result = Iam::new(state, actor).execute(action).await;
    let mut event = json!({"eventSource": "iam.amazonaws.com", "eventName": action.name(),
        "eventType": "AwsApiCall", "userIdentity": identity(state, &info.principal)});
    if let (Err(e), Some(o)) = (&result, event.as_object_mut()) {
        o.insert("errorCode".into(), json!(e.code));
        o.insert(
            "errorMessage".into(),
            json!(crate::audit::clean(&e.message, 512)),
        );
    }
    audit(state, req, event);
    result.map_err(|e| e.message)
}

async fn change_password(
    state: &AppState,
    req: &Incoming<'_>,
    cookie: &str,
    info: &SessionInfo,
    form: &Params,
    now: i64,
) -> Response<Full<Bytes>> {
    let Some(sessions) = &state.console else {
        return respond(404, page("Not found", ""), None);
    };
    let csrf = sessions
        .get(cookie, now)
        .map_or_else(|| Secret::new(""), |(_, c)| c);
    let old = form.get("old").unwrap_or_default();
    let new = form.get("new").unwrap_or_default();
    if form.get("confirm") != Some(new) {
        return home(
            state,
            req,
            info,
            &csrf,
            Some("The new passwords do not match."),
        )
        .await;
    }
    let action = IamAction::ChangePassword {
        old_password: old.to_owned(),
        new_password: new.to_owned(),
    };
    // The same validation as the API (lengths, characters), then the executor.
    let params = Params::from_pairs(action.to_params());
    let parsed = IamAction::parse("ChangePassword", &params).map_err(|e| e.message);
    let result = match parsed {
        Ok(a) => run_action(state, req, info, &a).await.map(|_| ()),
        Err(m) => Err(m),
    };
    match result {
        Err(m) => home(state, req, info, &csrf, Some(&m)).await,
        Ok(()) => {
            // Other sessions of this principal end; this one continues with a new cookie.
            sessions.revoke(info.principal.user_id.as_deref());
            let (c, _) =
                sessions.create(info.principal.clone(), info.mfa.clone(), Stage::Ready, now);
            redirect(Some(session::set_cookie(&c, req.tls)))
        }
    }
}

/// `/console/keys`: create (the secret is shown once, on this answer only), activate, deactivate, delete.
async fn access_key(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    csrf: &Secret,
    form: &Params,
) -> Response<Full<Bytes>> {
    let id = form.get("id").unwrap_or_default().to_owned();
    let action = match form.get("op") {
        Some("create") => IamAction::CreateAccessKey { user_name: None },
        Some(op @ ("activate" | "deactivate")) => IamAction::UpdateAccessKey {
            user_name: None,
            access_key_id: id,
            active: op == "activate",
        },
        Some("delete") => IamAction::DeleteAccessKey {
            user_name: None,
            access_key_id: id,
        },
        _ => return home(state, req, info, csrf, Some("Unknown operation.")).await,
    };
    // The same validation as the API, then the executor.
    let params = Params::from_pairs(action.to_params());
    let result = match IamAction::parse(action.name(), &params) {
        Ok(a) => run_action(state, req, info, &a).await,
        Err(e) => Err(e.message),
    };
    match result {
        Err(m) => home(state, req, info, csrf, Some(&m)).await,
        Ok(IamOutput::NewAccessKey {
            key,
            secret_access_key,
        }) => {
            let secret = Secret::new(secret_access_key);
            let body = format!(
                "<p role=\"status\">This is the only time the secret access key can be viewed. Save it now.</p>\n\
                 <dl><dt>Access key ID</dt><dd><code>{}</code></dd><dt>Secret access key</dt><dd><code>{}</code></dd></dl>\n\
                 <p><a href=\"/console/\">Back to My security credentials</a></p>",
                esc(&key.access_key_id),
                esc(secret.expose())
            );
            respond(200, page("Access key created", &body), None)
        }
        Ok(_) => redirect(None),
    }
}

/// The otpauth URI of a QR code the console draws: an issuer prefix and `issuer=` parameter, and the
/// account in the label, so that an authenticator app tells deployments apart (IAM's own `QRCodePNG`
/// keeps AWS's `name@account` label).
pub fn otpauth_uri(issuer: &str, user: &str, account: &str, seed: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~@".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}@{}?secret={seed}&issuer={}",
        enc(issuer),
        enc(user),
        enc(account),
        enc(issuer)
    )
}

/// `/console/mfa/*`: assign a virtual MFA device (create it, show its QR code and secret, then enable it
/// with two consecutive codes) or remove one (deactivate, then delete the virtual device).
async fn mfa_device(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    csrf: &Secret,
    path: &str,
    form: &Params,
) -> Response<Full<Bytes>> {
    let Some(user_name) = info
        .principal
        .user_id
        .as_ref()
        .map(|_| info.principal.name.clone())
    else {
        return home(
            state,
            req,
            info,
            csrf,
            Some("The root's MFA device is managed with stsd admin mfa enroll --root."),
        )
        .await;
    };
    let serial = form.get("serial").unwrap_or_default().to_owned();
    let actions: Vec<IamAction> = match path {
        "/console/mfa/create" => vec![IamAction::CreateVirtualMfaDevice {
            name: form.get("name").unwrap_or_default().trim().to_owned(),
            path: "/".into(),
        }],
        "/console/mfa/enable" => vec![IamAction::EnableMfaDevice {
            user_name,
            serial_number: serial.clone(),
            code1: form.get("code1").unwrap_or_default().trim().to_owned(),
            code2: form.get("code2").unwrap_or_default().trim().to_owned(),
        }],
        _ => vec![
            IamAction::DeactivateMfaDevice {
                user_name: None,
                serial_number: serial.clone(),
            },
            IamAction::DeleteVirtualMfaDevice {
                serial_number: serial.clone(),
            },
        ],
    };
    for action in actions {
        let params = Params::from_pairs(action.to_params());
        let result = match IamAction::parse(action.name(), &params) {
            Ok(a) => run_action(state, req, info, &a).await,
            Err(e) => Err(e.message),
        };
        match result {
            Err(m) => return home(state, req, info, csrf, Some(&m)).await,
            Ok(IamOutput::NewVirtualMfaDevice {
                serial_number,
                base32_seed,
                ..
            }) => {
                let seed = Secret::new(base32_seed);
                let uri = Secret::new(otpauth_uri(
                    "stsd",
                    &info.principal.name,
                    &state.account,
                    seed.expose(),
                ));
                let qr = crate::qr::png(uri.expose())
                    .map(|png| {
                        use base64::Engine as _;
                        base64::engine::general_purpose::STANDARD.encode(png)
                    })
                    .unwrap_or_default();
                let body = format!(
                    "<p>Scan the QR code with your authenticator app, or type the secret key. Then type two consecutive codes.</p>\n\
                     <p><img alt=\"QR code of the device's secret key\" width=\"256\" height=\"256\" src=\"data:image/png;base64,{qr}\"></p>\n\
                     <p>Secret key: <code>{}</code></p>\n\
                     <form method=\"post\" action=\"/console/mfa/enable\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                     <input type=\"hidden\" name=\"serial\" value=\"{}\">\n\
                     <p><label for=\"code1\">MFA code 1</label><br><input id=\"code1\" name=\"code1\" inputmode=\"numeric\" pattern=\"[0-9]{{6}}\" required autocomplete=\"one-time-code\"></p>\n\
                     <p><label for=\"code2\">MFA code 2</label><br><input id=\"code2\" name=\"code2\" inputmode=\"numeric\" pattern=\"[0-9]{{6}}\" required autocomplete=\"one-time-code\"></p>\n\
                     <p><button type=\"submit\">Add MFA</button></p></form>",
                    esc(seed.expose()),
                    esc(csrf.expose()),
                    esc(&serial_number)
                );
                return respond(200, page("Assign MFA device", &body), None);
            }
            Ok(_) => {}
        }
    }
    redirect(None)
}

fn key_forms(csrf: &Secret, id: &str, active: bool) -> String {
    let button = |op: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"/console/keys\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <input type=\"hidden\" name=\"id\" value=\"{}\"><input type=\"hidden\" name=\"op\" value=\"{op}\">\
             <button type=\"submit\">{label}</button></form>",
            esc(csrf.expose()),
            esc(id)
        )
    };
    if active {
        button("deactivate", "Deactivate")
    } else {
        // As in AWS's console: a key is deactivated before it can be deleted.
        format!(
            "{}{}",
            button("activate", "Activate"),
            button("delete", "Delete")
        )
    }
}

fn password_form(csrf: &Secret) -> String {
    format!(
        "<form method=\"post\" action=\"/console/password\">\n<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
         <p><label for=\"old\">Current password</label><br><input id=\"old\" name=\"old\" type=\"password\" required autocomplete=\"current-password\"></p>\n\
         <p><label for=\"new\">New password</label><br><input id=\"new\" name=\"new\" type=\"password\" required autocomplete=\"new-password\"></p>\n\
         <p><label for=\"confirm\">Confirm new password</label><br><input id=\"confirm\" name=\"confirm\" type=\"password\" required autocomplete=\"new-password\"></p>\n\
         <p><button type=\"submit\">Change password</button></p>\n</form>",
        esc(csrf.expose())
    )
}

fn sign_out_form(csrf: &Secret) -> String {
    format!(
        "<form method=\"post\" action=\"/console/signout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Sign out</button></form>",
        esc(csrf.expose())
    )
}

async fn home(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    csrf: &Secret,
    message: Option<&str>,
) -> Response<Full<Bytes>> {
    let msg = message.map_or_else(String::new, |m| {
        format!("<p role=\"alert\">{}</p>\n", esc(m))
    });
    let out = sign_out_form(csrf);
    match info.stage {
        Stage::NeedsMfa => {
            let owner = info
                .principal
                .user_id
                .clone()
                .unwrap_or_else(|| ROOT_OWNER.to_owned());
            let devices = state
                .store
                .list_mfa_devices(&owner, None, 8)
                .await
                .unwrap_or_default();
            let options: String = devices
                .iter()
                .map(|d| {
                    format!(
                        "<option value=\"{}\">{}</option>",
                        esc(&d.serial_number),
                        esc(&d.serial_number)
                    )
                })
                .collect();
            let body = format!(
                "{msg}<form method=\"post\" action=\"/console/mfa\">\n<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
                 <p><label for=\"serial\">MFA device</label><br><select id=\"serial\" name=\"serial\">{options}</select></p>\n\
                 <p><label for=\"code\">MFA code</label><br><input id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]{{6}}\" required autocomplete=\"one-time-code\"></p>\n\
                 <p><button type=\"submit\">Submit</button></p>\n</form>\n{out}",
                esc(csrf.expose())
            );
            respond(200, page("Multi-factor authentication", &body), None)
        }
        Stage::NeedsPasswordChange => {
            let body = format!(
                "{msg}<p>You must change your password to continue.</p>\n{}\n{out}",
                password_form(csrf)
            );
            respond(200, page("Change password", &body), None)
        }
        Stage::Ready => {
            let mut body = msg;
            let arn = match &info.principal.user_id {
                None => format!("arn:aws:iam::{}:root", state.account),
                Some(_) => state
                    .store
                    .user_by_name(&info.principal.name)
                    .await
                    .ok()
                    .flatten()
                    .map_or_else(String::new, |u| user_arn(&state.account, &u.path, &u.name)),
            };
            body.push_str(&format!(
                "<h2>Account details</h2>\n<dl><dt>Account ID</dt><dd>{}</dd><dt>Signed in as</dt><dd>{}</dd><dt>MFA at sign-in</dt><dd>{}</dd></dl>\n",
                esc(&state.account),
                esc(&arn),
                if info.mfa.is_some() { "yes" } else { "no" }
            ));
            body.push_str("<h2>Console password</h2>\n");
            if info.principal.user_id.is_some() {
                body.push_str(&password_form(csrf));
            } else {
                body.push_str(
                    "<p>The root's password is set with <code>stsd admin root password</code>.</p>",
                );
            }
            let list = Page {
                marker: None,
                max_items: 100,
            };
            body.push_str("\n<h2>Multi-factor authentication (MFA)</h2>\n");
            match run_action(
                state,
                req,
                info,
                &IamAction::ListMfaDevices {
                    user_name: None,
                    page: list.clone(),
                },
            )
            .await
            {
                Ok(IamOutput::MfaDevices { devices, .. }) => {
                    if devices.is_empty() {
                        body.push_str("<p>No MFA device.</p>\n");
                    } else {
                        body.push_str("<table><thead><tr><th scope=\"col\">Serial number</th><th scope=\"col\">Enabled</th><th scope=\"col\">Actions</th></tr></thead><tbody>");
                        for d in &devices {
                            body.push_str(&format!(
                                "<tr><td>{}</td><td>{}</td><td><form method=\"post\" action=\"/console/mfa/remove\">\
                                 <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"serial\" value=\"{}\">\
                                 <button type=\"submit\">Remove</button></form></td></tr>",
                                esc(&d.serial_number),
                                esc(d.enable_date.as_deref().unwrap_or("")),
                                esc(csrf.expose()),
                                esc(&d.serial_number)
                            ));
                        }
                        body.push_str("</tbody></table>\n");
                    }
                    if info.principal.user_id.is_some() && devices.len() < 8 {
                        body.push_str(&format!(
                            "<form method=\"post\" action=\"/console/mfa/create\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                             <p><label for=\"mfa-name\">Device name</label><br><input id=\"mfa-name\" name=\"name\" required></p>\
                             <p><button type=\"submit\">Assign MFA device</button></p></form>\n",
                            esc(csrf.expose())
                        ));
                    }
                }
                Ok(_) => body.push_str("<p>No MFA device.</p>\n"),
                Err(m) => body.push_str(&format!("<p role=\"alert\">{}</p>\n", esc(&m))),
            }
            body.push_str("<h2>Access keys</h2>\n");
            match run_action(
                state,
                req,
                info,
                &IamAction::ListAccessKeys {
                    user_name: None,
                    page: list,
                },
            )
            .await
            {
                Ok(IamOutput::AccessKeys { keys, .. }) => {
                    if keys.is_empty() {
                        body.push_str("<p>No access key.</p>\n");
                    } else {
                        body.push_str("<table><thead><tr><th scope=\"col\">Access key ID</th><th scope=\"col\">Status</th><th scope=\"col\">Created</th><th scope=\"col\">Actions</th></tr></thead><tbody>");
                        for k in &keys {
                            body.push_str(&format!(
                                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                                esc(&k.access_key_id),
                                esc(&k.status),
                                esc(&k.create_date),
                                key_forms(csrf, &k.access_key_id, k.status == "Active")
                            ));
                        }
                        body.push_str("</tbody></table>\n");
                    }
                    if keys.len() < 2 {
                        body.push_str(&format!(
                            "<form method=\"post\" action=\"/console/keys\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                             <input type=\"hidden\" name=\"op\" value=\"create\"><button type=\"submit\">Create access key</button></form>\n",
                            esc(csrf.expose())
                        ));
                    }
                }
                Ok(_) => body.push_str("<p>No access key.</p>\n"),
                Err(m) => body.push_str(&format!("<p role=\"alert\">{}</p>\n", esc(&m))),
            }
            body.push_str(&out);
            respond(200, page("My security credentials", &body), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_labels_name_the_issuer_and_the_account() {
        assert_eq!(
            otpauth_uri("stsd", "alice", "123456789012", "ABCD"),
            "otpauth://totp/stsd:alice@123456789012?secret=ABCD&issuer=stsd"
        );
        assert_eq!(
            otpauth_uri("my corp", "a+b=c", "1", "X"),
            "otpauth://totp/my%20corp:a%2Bb%3Dc@1?secret=X&issuer=my%20corp"
        );
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
