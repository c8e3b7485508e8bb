//! The web console (issue 19), served under `/console/` on the main listener with `--console`:
//! sign-in (account id, user name or the root, password; then an MFA code when the principal has an
//! enabled device), a forced password change when `PasswordResetRequired`, "My security credentials"
//! (change password, MFA devices, access keys), sign-out; the administration pages live in [`admin`].
//!
//! Every IAM action runs through the same executor and authorization as the API ([`crate::iam::Iam`]),
//! as the signed-in principal, with the sign-in's MFA state as `aws:MultiFactorAuthPresent`
//! ([`run_action`]); sign-ins and console actions are written to the audit log. Sessions, cookies, CSRF
//! tokens and security headers: [`session`]. Pages are askama templates ([`view`], autoescaped), no
//! script; one stylesheet is served at `/console/static/console.css`.
//!
//! Files by flow: this module routes and holds the shared helpers; [`signin`] the sign-in steps,
//! password change and sign-out; [`credentials`] the self-service page and its forms; [`tokens`]
//! the session-credentials page.

pub mod admin;
mod credentials;
pub mod session;
mod signin;
mod tokens;
pub(crate) mod view;

use crate::auth::user_arn;
use crate::authz::context::{self, Who};
use crate::handler::Incoming;
use crate::iam::{Actor, Iam};
use crate::state::AppState;
use askama::Template;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde_json::json;
use session::{Principal, SessionInfo, Stage};
use std::sync::LazyLock;
use stsd_core::secret::Secret;
use stsd_policy::Value;
use stsd_proto::Params;
use stsd_proto::iam::{IamAction, IamOutput};
use stsd_store::iam::ROOT_OWNER;
use view::{Layout, MessagePage, SignInPage};

pub use credentials::otpauth_uri;

/// What the sign-in page says for every failure: nothing tells whether the account, the user or the
/// password was wrong (AWS's console wording).
pub const SIGN_IN_FAILED: &str = "Your authentication information is incorrect. Please try again.";

/// A console answer.
pub(crate) type Reply = Response<Full<Bytes>>;

/// The console's stylesheet (embedded; served at `/console/static/console.css`).
const STYLESHEET: &str = include_str!("../../static/console.css");

/// The stylesheet's URL, with a hash of its content so that a changed stylesheet gets a new URL and
/// the old one can be cached for a year.
pub(crate) fn stylesheet_url() -> &'static str {
    static URL: LazyLock<String> = LazyLock::new(|| {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(STYLESHEET.as_bytes());
        let tag: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("/console/static/console.css?v={tag}")
    });
    &URL
}

fn stylesheet() -> Reply {
    let mut r = Response::new(Full::new(Bytes::from_static(STYLESHEET.as_bytes())));
    let h = r.headers_mut();
    for (k, v) in session::SECURITY_HEADERS {
        h.insert(*k, http::HeaderValue::from_static(v));
    }
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    r
}

/// An HTML answer with the console's security headers (and `Cache-Control: no-store`).
pub(crate) fn respond(status: u16, html: String, cookie: Option<String>) -> Reply {
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

/// Renders a page; a template that fails to render gives a bare 500 page.
pub(crate) fn render(status: u16, page: &impl Template, cookie: Option<String>) -> Reply {
    match page.render() {
        Ok(html) => respond(status, html, cookie),
        Err(e) => {
            tracing::error!(error = %e, "rendering a console page failed");
            respond(
                500,
                "<!doctype html>\n<html lang=\"en\"><title>Error · stsd</title><h1>Internal error</h1></html>\n"
                    .into(),
                None,
            )
        }
    }
}

/// `303 See Other` to `/console/`.
pub(crate) fn redirect(cookie: Option<String>) -> Reply {
    redirect_to("/console/", cookie)
}

/// `303 See Other` to a console path.
pub(crate) fn redirect_to(location: &'static str, cookie: Option<String>) -> Reply {
    let mut r = respond(303, String::new(), cookie);
    r.headers_mut().insert(
        http::header::LOCATION,
        http::HeaderValue::from_static(location),
    );
    r
}

/// A page with a title and one line of text (with an optional link), in the signed-in layout when a
/// session is given.
pub(crate) fn message(
    state: &AppState,
    signed_in: Option<(&SessionInfo, &Secret)>,
    status: u16,
    title: &str,
    text: Option<&str>,
    link: Option<(&str, &str)>,
) -> Reply {
    let layout = match signed_in {
        Some((info, csrf)) => Layout::signed_in(state, info, csrf, title),
        None => Layout::public(state, title),
    };
    render(status, &MessagePage { layout, text, link }, None)
}

/// The 404 page.
pub(crate) fn not_found(state: &AppState, signed_in: Option<(&SessionInfo, &Secret)>) -> Reply {
    message(state, signed_in, 404, "Not found", None, None)
}

/// The sign-in page, with a message (failure) or without.
pub(crate) fn sign_in_page(state: &AppState, status: u16, alert: Option<&str>) -> Reply {
    render(
        status,
        &SignInPage {
            layout: Layout::public(state, "Sign in").alert(alert),
            account: &state.account,
        },
        None,
    )
}

/// The session cookie of a request, if any.
fn cookie_of<'a>(req: &'a Incoming<'_>, https: bool) -> Option<&'a str> {
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| session::cookie_value(h, https))
}

/// A sign-in form posted from another site is refused (login CSRF): a browser's `Origin` must be this
/// server and `Sec-Fetch-Site` must not say cross-site.
fn same_origin(req: &Incoming<'_>, https: bool) -> bool {
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
            let scheme = if https { "https" } else { "http" };
            o == format!("{scheme}://{host}")
        }
        (Some(_), None) => false,
    }
}

/// Writes a console event to the audit log (never a password, cookie or token).
pub(crate) fn audit(state: &AppState, req: &Incoming<'_>, event: serde_json::Value) {
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

/// The audit log's `userIdentity` of a console principal.
pub(crate) fn identity(state: &AppState, p: &Principal) -> serde_json::Value {
    match &p.user_id {
        None => json!({"type": "Root", "principalId": state.account,
            "arn": crate::auth::root_arn(&state.account), "accountId": state.account}),
        Some(id) => json!({"type": "IAMUser", "principalId": id, "userName": p.name,
            "accountId": state.account}),
    }
}

/// The issuer the console's MFA QR codes name (`--mfa-issuer`).
pub(crate) fn mfa_issuer(state: &AppState) -> &str {
    state
        .console
        .as_ref()
        .map_or(session::DEFAULT_MFA_ISSUER, |s| {
            s.settings().mfa_issuer.as_str()
        })
}

/// Whether a request counts as HTTPS for the cookie (`Secure`, `__Host-`) and the sign-in's origin
/// check: TLS on this listener; `--console-secure-cookies` (a TLS-terminating proxy in front); or
/// `X-Forwarded-Proto: https` from a configured trusted proxy (`--trusted-proxy`, as for
/// `aws:SecureTransport`), never from anyone else.
pub(crate) fn https(state: &AppState, req: &Incoming<'_>) -> bool {
    if req.tls
        || state
            .console
            .as_ref()
            .is_some_and(|s| s.settings().secure_cookies)
    {
        return true;
    }
    let transport = context::Transport {
        peer: req.peer,
        tls: req.tls,
        headers: req.headers,
    };
    context::client(&transport, &state.authz.settings.trusted_proxies).1
}

/// The store's owner key of a principal (the user id, or the root's).
pub(crate) fn owner_of(p: &Principal) -> String {
    p.user_id.clone().unwrap_or_else(|| ROOT_OWNER.to_owned())
}

/// Serves one console request.
pub async fn handle(state: &AppState, req: &Incoming<'_>) -> Reply {
    let Some(sessions) = &state.console else {
        return not_found(state, None);
    };
    if req.method == "GET" && req.path == "/console/static/console.css" {
        return stylesheet();
    }
    let now = state.clock.now();
    let cookie = cookie_of(req, https(state, req));
    let mut current = cookie.and_then(|c| sessions.get(c, now));
    // Revoking a principal's sessions (`stsd admin sessions revoke`, deleting the user) ends its console
    // sessions too; when the revocation time cannot be read, the session is not trusted.
    if let (Some(c), Some((info, _))) = (cookie, &current) {
        let revoked = match state.sessions_not_before(&owner_of(&info.principal)).await {
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
    let is_admin = req.path == "/console/admin" || req.path.starts_with("/console/admin/");
    match (req.method, req.path) {
        ("GET", "/console" | "/console/") => match current {
            None => sign_in_page(state, 200, None),
            Some((info, csrf)) => credentials::home(state, req, &info, &csrf, None).await,
        },
        ("GET", "/console/session") => match current {
            Some((info, csrf)) if info.stage == Stage::Ready => tokens::form(state, &info, &csrf),
            _ => redirect(None),
        },
        ("GET", _) if is_admin => match current {
            Some((info, csrf)) if info.stage == Stage::Ready => {
                admin::handle(state, req, &info, &csrf, &form).await
            }
            // Not (fully) signed in: the sign-in page, or the step it has reached.
            _ => redirect(None),
        },
        ("POST", "/console/signin") => {
            if !same_origin(req, https(state, req)) {
                return message(
                    state,
                    None,
                    403,
                    "Forbidden",
                    Some("Cross-site request refused."),
                    None,
                );
            }
            signin::sign_in(state, req, &form, now).await
        }
        ("POST", path) => {
            // Every other form needs a live session and its CSRF token.
            let (Some(c), Some((info, csrf))) = (cookie, current) else {
                return message(
                    state,
                    None,
                    403,
                    "Signed out",
                    Some("Your session has ended."),
                    Some(("/console/", "Sign in")),
                );
            };
            if !form
                .get("csrf")
                .is_some_and(|t| sessions.check_csrf(c, t, now))
            {
                return message(
                    state,
                    None,
                    403,
                    "Forbidden",
                    Some("The form was not accepted (missing or stale CSRF token)."),
                    Some(("/console/", "Reload")),
                );
            }
            match path {
                "/console/signout" => signin::sign_out(state, req, c, &info),
                "/console/mfa" if info.stage == Stage::NeedsMfa => {
                    signin::mfa(state, req, c, &info, &form, now).await
                }
                "/console/password" if info.stage != Stage::NeedsMfa => {
                    signin::change_password(state, req, &info, &csrf, &form, now).await
                }
                "/console/mfa/create"
                | "/console/mfa/enable"
                | "/console/mfa/resync"
                | "/console/mfa/remove"
                    if info.stage == Stage::Ready =>
                {
                    credentials::mfa_device(state, req, &info, &csrf, path, &form).await
                }
                "/console/session" if info.stage == Stage::Ready => {
                    tokens::issue(state, req, &info, &csrf, &form).await
                }
                "/console/keys" if info.stage == Stage::Ready => {
                    credentials::access_key(state, req, c, &info, &csrf, &form).await
                }
                _ if is_admin && info.stage == Stage::Ready => {
                    admin::handle(state, req, &info, &csrf, &form).await
                }
                _ => not_found(state, Some((&info, &csrf))),
            }
        }
        _ => match current {
            Some((info, csrf)) => not_found(state, Some((&info, &csrf))),
            None => not_found(state, None),
        },
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
            ctx.set_static("aws:MultiFactorAuthPresent", Value::Bool(true));
            #[allow(clippy::cast_precision_loss)]
            ctx.set_static("aws:MultiFactorAuthAge", Value::Num((now - at) as f64));
        }
        None => ctx.set_static("aws:MultiFactorAuthPresent", Value::Bool(false)),
    }
    Some(Actor {
        who,
        ctx,
        mfa: info.mfa.is_some(),
        key: None,
    })
}

/// Runs one IAM action as the signed-in principal through the API's executor (authorization, audit);
/// an error is IAM's message (denials read as AWS's).
pub(crate) async fn run_action(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    action: &IamAction,
) -> Result<IamOutput, String> {
    run_action_api(state, req, info, action)
        .await
        .map_err(|e| e.message)
}

/// [`run_action`] with the whole error (status and code as the API answers them).
pub(crate) async fn run_action_api(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    action: &IamAction,
) -> Result<IamOutput, stsd_proto::ApiError> {
    let Some(actor) = actor(state, req, info).await else {
        return Err(stsd_proto::ApiError::access_denied(
            "Your user no longer exists.",
        ));
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
    result
}

/// Like [`run_action`], after the API's own validation of the action's parameters (lengths,
/// characters): the action is written out as API parameters and parsed back.
pub(crate) async fn run_validated(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    action: &IamAction,
) -> Result<IamOutput, String> {
    let params = Params::from_pairs(action.to_params());
    match IamAction::parse(action.name(), &params) {
        Ok(a) => run_action(state, req, info, &a).await,
        Err(e) => Err(e.message),
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
    fn the_stylesheet_url_names_its_content() {
        let url = stylesheet_url();
        assert!(url.starts_with("/console/static/console.css?v="));
        assert_eq!(url.len(), "/console/static/console.css?v=".len() + 12);
    }
}
