//! Console sessions (issue 19, first step; the pages that use them come next).
//!
//! A session is identified by an opaque cookie: 256 random bits, URL-safe base64. The server keeps only
//! the SHA-256 of each cookie (a memory dump yields no usable cookie), with the principal, the MFA state
//! of the sign-in, the stage the sign-in has reached, and a per-session CSRF token that every
//! state-changing form must echo (compared in constant time). Sessions end after an idle timeout, an
//! absolute timeout, sign-out, or revocation of the principal's sessions. They live in this node's
//! memory: a restart signs everyone out, and several nodes need sticky routing for `/console/`.
//! Cookie values and CSRF tokens are never logged and never appear in `Debug` output.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use stsd_core::secret::Secret;

/// Default idle timeout: 15 minutes without a request.
pub const DEFAULT_IDLE_SECS: i64 = 15 * 60;
/// Default absolute timeout: 12 hours after sign-in, whatever the activity.
pub const DEFAULT_ABSOLUTE_SECS: i64 = 12 * 60 * 60;
/// The most sessions a node keeps; beyond it the oldest are dropped.
pub const MAX_SESSIONS: usize = 100_000;

/// The cookie's name: with TLS the `__Host-` prefix (the browser then insists on `Secure`, `Path=/` and no
/// `Domain`, so no other host or path can set or shadow it).
pub fn cookie_name(tls: bool) -> &'static str {
    if tls {
        "__Host-stsd-console"
    } else {
        "stsd-console"
    }
}

/// `Set-Cookie` for a new session: `HttpOnly`, `SameSite=Strict`, `Secure` over TLS, no `Max-Age` (a
/// browser-session cookie; the server enforces the timeouts).
pub fn set_cookie(value: &Secret, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict{secure}",
        cookie_name(tls),
        value.expose()
    )
}

/// `Set-Cookie` that removes the session cookie (sign-out).
pub fn clear_cookie(tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}",
        cookie_name(tls)
    )
}

/// The session cookie's value from a `Cookie` request header, if present.
pub fn cookie_value(header: &str, tls: bool) -> Option<&str> {
    let name = cookie_name(tls);
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name && !v.is_empty()).then_some(v)
    })
}

/// Response headers of every console page: no framing, no referrer, no caching (pages show secrets),
/// no script or style from anywhere but the console itself, no MIME sniffing.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
];

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's id, or `None` for the account root.
    pub user_id: Option<String>,
    /// The user's name (`root` for the root).
    pub name: String,
}

/// How far a sign-in has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The password was right; the principal has an enabled MFA device whose code is still to come.
    NeedsMfa,
    /// Signed in, but `PasswordResetRequired` (or an expired password): only a password change is allowed.
    NeedsPasswordChange,
    /// Signed in.
    Ready,
}

/// A session as the pages see it (no cookie, no CSRF token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Who.
    pub principal: Principal,
    /// When an MFA code was verified at sign-in (`aws:MultiFactorAuthPresent`), and the device.
    pub mfa: Option<(i64, String)>,
    /// The sign-in's stage.
    pub stage: Stage,
    /// Sign-in time.
    pub created_at: i64,
}

/// How long a new access key's secret stays downloadable as CSV (seconds).
pub const NEW_KEY_DOWNLOAD_SECS: i64 = 5 * 60;

/// A new access key whose secret may still be downloaded once (zeroized when dropped).
struct NewKey {
    access_key_id: String,
    secret: Secret,
    until: i64,
}

struct Entry {
    info: SessionInfo,
    last_seen: i64,
    csrf: Secret,
    new_key: Option<NewKey>,
}

/// Console settings (`[console]` in the configuration file, `stsd serve` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The issuer the console's MFA QR codes name (`--mfa-issuer`, `[console] mfa_issuer`).
    pub mfa_issuer: String,
    /// Treat every console request as HTTPS even when this listener has no TLS (a TLS-terminating
    /// proxy in front): `Secure` and `__Host-` cookie, `https://` origin check
    /// (`--console-secure-cookies`, `[console] secure_cookies`).
    pub secure_cookies: bool,
}

/// The default issuer of the console's MFA QR codes.
pub const DEFAULT_MFA_ISSUER: &str = "stsd";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mfa_issuer: DEFAULT_MFA_ISSUER.into(),
            secure_cookies: false,
        }
    }
}

/// A node's console sessions.
pub struct Sessions {
    idle: i64,
    absolute: i64,
    settings: Settings,
    map: Mutex<HashMap<[u8; 32], Entry>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("idle", &self.idle)
            .field("absolute", &self.absolute)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Drops (and so zeroizes) a new key's secret once its download time is over.
fn forget_expired_key(e: &mut Entry, now: i64) {
    if e.new_key.as_ref().is_some_and(|k| k.until <= now) {
        e.new_key = None;
    }
}

fn random_token() -> Secret {
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    stsd_core::random_fill(raw.as_mut());
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref()))
}

fn digest(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

impl Sessions {
    /// Sessions with these timeouts (seconds).
    pub fn new(idle_secs: i64, absolute_secs: i64) -> Self {
        Sessions {
            idle: idle_secs,
            absolute: absolute_secs,
            settings: Settings::default(),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The same sessions with these settings.
    #[must_use]
    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The console's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn live(&self, e: &Entry, now: i64) -> bool {
        now - e.last_seen < self.idle && now - e.info.created_at < self.absolute
    }

    /// Starts a session; returns the cookie value and the CSRF token.
    pub fn create(
        &self,
        principal: Principal,
        mfa: Option<(i64, String)>,
        stage: Stage,
        now: i64,
    ) -> (Secret, Secret) {
        let cookie = random_token();
        let csrf = random_token();
        let entry = Entry {
            info: SessionInfo {
                principal,
                mfa,
                stage,
                created_at: now,
            },
            last_seen: now,
            csrf: csrf.clone(),
            new_key: None,
        };
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_SESSIONS {
                map.retain(|_, e| {
                    now - e.last_seen < self.idle && now - e.info.created_at < self.absolute
                });
                if map.len() >= MAX_SESSIONS {
                    let oldest = map.iter().min_by_key(|(_, e)| e.last_seen).map(|(k, _)| *k);
                    if let Some(k) = oldest {
                        map.remove(&k);
                    }
                }
            }
            // New keys' secrets not downloaded in time are forgotten (zeroized) even in sessions
            // that are never used again.
            map.values_mut().for_each(|e| forget_expired_key(e, now));
            map.insert(digest(cookie.expose()), entry);
        }
        (cookie, csrf)
    }

    /// The live session of a cookie (its idle timer restarts); expired sessions are removed.
    pub fn get(&self, cookie: &str, now: i64) -> Option<(SessionInfo, Secret)> {
        let key = digest(cookie);
        let mut map = self.map.lock().ok()?;
        let live = map.get(&key).map(|e| self.live(e, now))?;
        if !live {
            map.remove(&key);
            return None;
        }
        let e = map.get_mut(&key)?;
        e.last_seen = now;
        forget_expired_key(e, now);
        Some((e.info.clone(), e.csrf.clone()))
    }

    /// Whether `token` is the CSRF token of the cookie's live session (constant-time comparison).
    pub fn check_csrf(&self, cookie: &str, token: &str, now: i64) -> bool {
        self.get(cookie, now)
            .is_some_and(|(_, csrf)| csrf.ct_eq(token))
    }

    /// Moves a session to another stage (after the MFA code, after a forced password change) and gives
    /// it a new cookie and CSRF token, so a value seen before the step is worth nothing after it.
    pub fn advance(
        &self,
        cookie: &str,
        stage: Stage,
        mfa: Option<(i64, String)>,
        now: i64,
    ) -> Option<(Secret, Secret)> {
        let (info, _) = self.get(cookie, now)?;
        self.remove(cookie);
        let mfa = mfa.or(info.mfa);
        let (new_cookie, csrf) = self.create(info.principal, mfa, stage, now);
        // The absolute timeout still counts from the first sign-in.
        if let Ok(mut map) = self.map.lock()
            && let Some(e) = map.get_mut(&digest(new_cookie.expose()))
        {
            e.info.created_at = info.created_at;
        }
        Some((new_cookie, csrf))
    }

    /// Keeps a new access key's secret in the session for one CSV download within
    /// [`NEW_KEY_DOWNLOAD_SECS`] (replacing any earlier one).
    pub fn stash_new_key(&self, cookie: &str, access_key_id: &str, secret: &Secret, now: i64) {
        if let Ok(mut map) = self.map.lock()
            && let Some(e) = map.get_mut(&digest(cookie))
        {
            e.new_key = Some(NewKey {
                access_key_id: access_key_id.to_owned(),
                secret: secret.clone(),
                until: now + NEW_KEY_DOWNLOAD_SECS,
            });
        }
    }

    /// Takes the stashed secret of a new access key (once; `None` when another key, expired or
    /// already taken). The session forgets it either way once expired.
    pub fn take_new_key(&self, cookie: &str, access_key_id: &str, now: i64) -> Option<Secret> {
        let mut map = self.map.lock().ok()?;
        let e = map.get_mut(&digest(cookie))?;
        forget_expired_key(e, now);
        if e.new_key.as_ref()?.access_key_id != access_key_id {
            return None;
        }
        e.new_key.take().map(|k| k.secret)
    }

    /// Ends one session (sign-out).
    pub fn remove(&self, cookie: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&digest(cookie));
        }
    }

    /// Ends every session of a principal (`None`: the root), as revoking its API sessions does.
    pub fn revoke(&self, user_id: Option<&str>) -> usize {
        let Ok(mut map) = self.map.lock() else {
            return 0;
        };
        let before = map.len();
        map.retain(|_, e| e.info.principal.user_id.as_deref() != user_id);
        before - map.len()
    }

    /// Live sessions (for metrics and tests).
    pub fn len(&self, now: i64) -> usize {
        self.map
            .lock()
            .map(|m| m.values().filter(|e| self.live(e, now)).count())
            .unwrap_or(0)
    }

    /// Whether no session is live.
    pub fn is_empty(&self, now: i64) -> bool {
        self.len(now) == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn alice() -> Principal {
        Principal {
            user_id: Some("AIDAALICE".into()),
            name: "alice".into(),
        }
    }

    #[test]
    fn cookies_are_random_opaque_and_hashed_at_rest() {
        let s = Sessions::new(900, 3600);
        let (c1, csrf1) = s.create(alice(), None, Stage::Ready, 1000);
        let (c2, _) = s.create(alice(), None, Stage::Ready, 1000);
        assert_ne!(c1.expose(), c2.expose());
        assert_eq!(c1.expose().len(), 43);
        assert!(!c1.expose().contains("alice"));
        assert_ne!(c1.expose(), csrf1.expose());
        // Nothing printable gives a cookie or token away.
        let dbg = format!("{s:?} {c1:?} {csrf1:?}");
        assert!(
            !dbg.contains(c1.expose()) && !dbg.contains(csrf1.expose()),
            "{dbg}"
        );
        let map = s.map.lock().unwrap();
        assert!(!map.contains_key(c1.expose().as_bytes().get(..32).unwrap()));
        assert!(map.contains_key(&digest(c1.expose())));
    }

    #[test]
    fn timeouts_csrf_and_revocation() {
        let s = Sessions::new(900, 3600);
        let (c, csrf) = s.create(alice(), Some((1000, "arn:mfa".into())), Stage::Ready, 1000);
        let (info, _) = s.get(c.expose(), 1500).unwrap();
        assert_eq!(info.principal, alice());
        assert_eq!(info.mfa, Some((1000, "arn:mfa".into())));
        assert!(s.check_csrf(c.expose(), csrf.expose(), 1600));
        assert!(!s.check_csrf(c.expose(), "wrong", 1600));
        assert!(!s.check_csrf("no-such-cookie", csrf.expose(), 1600));
        // Activity keeps it alive up to the absolute timeout; then it is gone.
        for t in (1600..4600).step_by(800) {
            assert!(s.get(c.expose(), t).is_some(), "alive at {t}");
        }
        assert!(s.get(c.expose(), 4600).is_none());
        assert!(
            s.get(c.expose(), 1700).is_none(),
            "removed, not just hidden"
        );
        // Idle timeout.
        let (c, _) = s.create(alice(), None, Stage::Ready, 5000);
        assert!(s.get(c.expose(), 5899).is_some());
        assert!(s.get(c.expose(), 6799).is_none());
        // Revocation and sign-out.
        let (a, _) = s.create(alice(), None, Stage::Ready, 7000);
        let root = Principal {
            user_id: None,
            name: "root".into(),
        };
        let (r, _) = s.create(root, None, Stage::Ready, 7000);
        assert_eq!(s.revoke(Some("AIDAALICE")), 1);
        assert!(s.get(a.expose(), 7001).is_none());
        assert!(s.get(r.expose(), 7001).is_some());
        s.remove(r.expose());
        assert!(s.is_empty(7001));
    }

    #[test]
    fn advancing_a_sign_in_rotates_the_cookie_and_keeps_the_start() {
        let s = Sessions::new(900, 3600);
        let (c, csrf) = s.create(alice(), None, Stage::NeedsMfa, 1000);
        let (c2, csrf2) = s
            .advance(
                c.expose(),
                Stage::Ready,
                Some((1100, "arn:mfa".into())),
                1100,
            )
            .unwrap();
        assert!(
            s.get(c.expose(), 1101).is_none(),
            "the pre-MFA cookie is dead"
        );
        assert!(!s.check_csrf(c2.expose(), csrf.expose(), 1101));
        assert!(s.check_csrf(c2.expose(), csrf2.expose(), 1101));
        let (info, _) = s.get(c2.expose(), 1102).unwrap();
        assert_eq!((info.stage, info.created_at), (Stage::Ready, 1000));
        assert_eq!(info.mfa, Some((1100, "arn:mfa".into())));
        assert!(
            s.get(c2.expose(), 4600).is_none(),
            "absolute timeout from the first sign-in"
        );
    }

    #[test]
    fn a_new_key_is_downloadable_once_for_a_few_minutes() {
        let s = Sessions::new(900, 3600);
        let (c, _) = s.create(alice(), None, Stage::Ready, 1000);
        s.stash_new_key(c.expose(), "AKIA1", &Secret::new("sekrit"), 1000);
        assert!(s.take_new_key(c.expose(), "AKIA2", 1001).is_none());
        assert_eq!(
            s.take_new_key(c.expose(), "AKIA1", 1001).unwrap().expose(),
            "sekrit"
        );
        assert!(s.take_new_key(c.expose(), "AKIA1", 1002).is_none(), "once");
        s.stash_new_key(c.expose(), "AKIA3", &Secret::new("x"), 1000);
        assert!(
            s.take_new_key(c.expose(), "AKIA3", 1000 + NEW_KEY_DOWNLOAD_SECS)
                .is_none(),
            "expired"
        );
        let (other, _) = s.create(alice(), None, Stage::Ready, 1000);
        s.stash_new_key(c.expose(), "AKIA4", &Secret::new("y"), 1000);
        assert!(s.take_new_key(other.expose(), "AKIA4", 1001).is_none());
        // Forgotten once expired, by any later sign-in, even if its session is never used again.
        s.create(alice(), None, Stage::Ready, 1000 + NEW_KEY_DOWNLOAD_SECS);
        assert!(s.map.lock().unwrap().values().all(|e| e.new_key.is_none()));
    }

    #[test]
    fn cookie_attributes() {
        let v = Secret::new("abc");
        assert_eq!(
            set_cookie(&v, true),
            "__Host-stsd-console=abc; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        assert_eq!(
            set_cookie(&v, false),
            "stsd-console=abc; Path=/; HttpOnly; SameSite=Strict"
        );
        assert!(clear_cookie(true).contains("Max-Age=0"));
        assert_eq!(
            cookie_value("a=1; __Host-stsd-console=tok; b=2", true),
            Some("tok")
        );
        assert_eq!(cookie_value("stsd-console=tok", true), None);
        assert_eq!(cookie_value("stsd-console=", false), None);
        let csp = SECURITY_HEADERS
            .iter()
            .find(|(k, _)| *k == "content-security-policy")
            .unwrap()
            .1;
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
    }
}
