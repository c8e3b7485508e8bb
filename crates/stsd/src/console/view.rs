//! The console's pages: one askama template struct per page or partial (templates in
//! `crates/stsd/templates/console/`, HTML-escaped at compile time), and the base layout's data.
//!
//! No struct here derives `Debug`: several carry a CSRF token, a new secret access key or an MFA seed.

use super::session::SessionInfo;
use crate::state::AppState;
use askama::Template;
use stsd_core::secret::Secret;

/// What the base layout (`console/base.html`) shows around every page.
pub(crate) struct Layout<'a> {
    /// The page title (also the `<h1>`).
    pub title: &'a str,
    /// This deployment's account id.
    pub account: &'a str,
    /// The signed-in principal's name, if any.
    pub user: Option<&'a str>,
    /// The session's CSRF token: when present, the header has a sign-out form.
    pub csrf: Option<&'a str>,
    /// Whether the navigation is shown (fully signed-in sessions only).
    pub nav: bool,
    /// Which navigation entry is the current page: `home`, `session`, `admin` or empty.
    pub current: &'a str,
    /// A `role="alert"` message (errors, denials).
    pub alert: Option<&'a str>,
    /// A `role="status"` message (successes).
    pub status: Option<&'a str>,
    /// The stylesheet's URL (with a content hash, so that it can be cached for long).
    pub css: &'static str,
}

impl<'a> Layout<'a> {
    /// The layout of a page seen without a session (sign-in, errors).
    pub fn public(state: &'a AppState, title: &'a str) -> Self {
        Layout {
            title,
            account: &state.account,
            user: None,
            csrf: None,
            nav: false,
            current: "",
            alert: None,
            status: None,
            css: super::stylesheet_url(),
        }
    }

    /// The layout of a page seen with a session: the sign-out form, and the navigation once the
    /// sign-in is complete.
    pub fn signed_in(
        state: &'a AppState,
        info: &'a SessionInfo,
        csrf: &'a Secret,
        title: &'a str,
    ) -> Self {
        Layout {
            user: Some(&info.principal.name),
            csrf: Some(csrf.expose()),
            nav: info.stage == super::session::Stage::Ready,
            ..Layout::public(state, title)
        }
    }

    /// Marks a navigation entry as the current page.
    pub fn current(mut self, current: &'a str) -> Self {
        self.current = current;
        self
    }

    /// Adds a `role="alert"` message.
    pub fn alert(mut self, message: Option<&'a str>) -> Self {
        self.alert = message;
        self
    }

    /// Adds a `role="status"` message.
    pub fn status(mut self, message: Option<&'a str>) -> Self {
        self.status = message;
        self
    }
}

/// A page with a title, one line of text and an optional link (not found, forbidden, signed out).
#[derive(Template)]
#[template(path = "console/message.html")]
pub(crate) struct MessagePage<'a> {
    pub layout: Layout<'a>,
    pub text: Option<&'a str>,
    pub link: Option<(&'a str, &'a str)>,
}

/// The sign-in form.
#[derive(Template)]
#[template(path = "console/signin.html")]
pub(crate) struct SignInPage<'a> {
    pub layout: Layout<'a>,
    /// The account id the form is pre-filled with.
    pub account: &'a str,
}

/// The sign-in's MFA step.
#[derive(Template)]
#[template(path = "console/mfa_signin.html")]
pub(crate) struct MfaSignInPage<'a> {
    pub layout: Layout<'a>,
    pub csrf: &'a str,
    /// Serial numbers of the principal's devices.
    pub devices: Vec<String>,
}

/// The forced password change (`PasswordResetRequired`, expired password).
#[derive(Template)]
#[template(path = "console/password_change.html")]
pub(crate) struct PasswordChangePage<'a> {
    pub layout: Layout<'a>,
    pub csrf: &'a str,
}

/// One MFA device row.
pub(crate) struct MfaRow {
    pub serial: String,
    pub enabled: String,
}

/// One access-key row.
pub(crate) struct KeyRow {
    pub id: String,
    pub status: String,
    pub created: String,
    /// `GetAccessKeyLastUsed`: date, service and region, `N/A`, or `-` when not allowed.
    pub last_used: String,
    pub active: bool,
}

/// "My security credentials".
#[derive(Template)]
#[template(path = "console/home.html")]
pub(crate) struct HomePage<'a> {
    pub layout: Layout<'a>,
    pub csrf: &'a str,
    /// The principal's ARN.
    pub arn: String,
    /// Whether the sign-in used an MFA code.
    pub mfa_at_sign_in: bool,
    /// An IAM user (not the root).
    pub is_user: bool,
    /// The MFA devices, or the denial's message.
    pub mfa: Result<Vec<MfaRow>, String>,
    /// Whether the "Assign MFA device" form is shown.
    pub can_add_mfa: bool,
    /// No enabled device, but a setting or a policy expects MFA: prompt to assign one.
    pub mfa_demanded: bool,
    /// The access keys, or the denial's message.
    pub keys: Result<Vec<KeyRow>, String>,
}

/// A new virtual MFA device: its QR code and secret, and the form for two consecutive codes.
#[derive(Template)]
#[template(path = "console/mfa_assign.html")]
pub(crate) struct MfaAssignPage<'a> {
    pub layout: Layout<'a>,
    pub csrf: &'a str,
    pub serial: &'a str,
    /// The base32 seed (shown once).
    pub seed: &'a str,
    /// The QR code's PNG in base64.
    pub qr_png_base64: &'a str,
    /// The issuer the QR code names (`--mfa-issuer`).
    pub issuer: &'a str,
    /// The account name in the QR code (`USER@ACCOUNT`).
    pub label: &'a str,
}

/// A new access key, with its secret (shown once).
#[derive(Template)]
#[template(path = "console/key_created.html")]
pub(crate) struct KeyCreatedPage<'a> {
    pub layout: Layout<'a>,
    pub csrf: &'a str,
    /// How long the CSV download stays available.
    pub download_minutes: i64,
    pub id: &'a str,
    pub secret: &'a str,
}

/// New session credentials (shown once).
pub(crate) struct SessionCredentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: &'a str,
    pub expiration: &'a str,
    /// Whether they carry the sign-in's MFA.
    pub mfa: bool,
}

/// "Session credentials": the form, and the new credentials as `export` lines after a request.
#[derive(Template)]
#[template(path = "console/session_credentials.html")]
pub(crate) struct SessionCredentialsPage<'a> {
    pub layout: Layout<'a>,
    pub csrf: &'a str,
    pub mfa_at_sign_in: bool,
    pub is_root: bool,
    pub credentials: Option<SessionCredentials<'a>>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn templates_escape_every_value() {
        let layout = Layout {
            title: "Sign <in>",
            account: "1\"2",
            user: None,
            csrf: None,
            nav: false,
            current: "",
            alert: Some("<b>'&'</b>"),
            status: None,
            css: "/console/static/console.css",
        };
        let html = SignInPage {
            layout,
            account: "\"><script>",
        }
        .render()
        .unwrap();
        assert!(
            html.contains(
                "<p role=\"alert\" class=\"alert\">&#60;b&#62;&#39;&#38;&#39;&#60;/b&#62;</p>"
            ),
            "{html}"
        );
        assert!(
            html.contains("value=\"&#34;&#62;&#60;script&#62;\""),
            "{html}"
        );
        assert!(html.contains("<h1>Sign &#60;in&#62;</h1>"));
        assert!(!html.contains("<script>"));
    }
}
