//! Secret values and credential sets: `Debug` never shows a secret, memory is wiped on drop.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret string (secret access key, session token, bearer token). `Debug` prints `<redacted>`; there is
/// no `Display`, so it cannot slip into a log line or an error message by accident.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the few places that must write it (signing, the hand-off formats, the cache).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A long-term (or source) key: what signs the `GetSessionToken` / `AssumeRole` call.
#[derive(Debug, Clone)]
pub struct SourceKey {
    /// `AKIA…` access key id.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: Secret,
    /// A session token, when the source is itself temporary (STS refuses GetSessionToken then).
    pub session_token: Option<Secret>,
    /// Where the key came from, for messages (`[alice] in ~/.aws/credentials`, `environment`).
    pub origin: String,
}

/// Temporary credentials as STS returned them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCredentials {
    /// `ASIA…` access key id.
    pub access_key_id: String,
    /// Session secret.
    pub secret_access_key: Secret,
    /// Session token.
    pub session_token: Secret,
    /// When they stop working.
    pub expiration: OffsetDateTime,
}

impl SessionCredentials {
    /// Seconds of validity left at `now` (negative when expired).
    pub fn seconds_left(&self, now: OffsetDateTime) -> i64 {
        (self.expiration - now).whole_seconds()
    }

    /// Whether more than `margin_secs` of validity are left at `now`: the cache reuses only such sessions.
    pub fn is_fresh(&self, now: OffsetDateTime, margin_secs: u64) -> bool {
        let margin = i64::try_from(margin_secs).unwrap_or(i64::MAX);
        self.seconds_left(now) > margin
    }

    /// Expiration as ISO 8601 / RFC 3339 with whole seconds, `2026-12-01T12:00:00Z` (what the SDKs parse).
    pub fn expiration_string(&self) -> String {
        format_timestamp(self.expiration)
    }
}

/// `2026-12-01T12:00:00Z`: UTC, whole seconds.
pub fn format_timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses an RFC 3339 timestamp (STS writes `2026-12-01T12:00:00Z`, sometimes with fractional seconds).
pub fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let c = SessionCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::new("very-secret"),
            session_token: Secret::new("token-value"),
            expiration: OffsetDateTime::UNIX_EPOCH,
        };
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("very-secret"), "{dbg}");
        assert!(!dbg.contains("token-value"), "{dbg}");
        assert!(dbg.contains("ASIAEXAMPLE"), "{dbg}");
    }

    #[test]
    fn timestamps_round_trip() {
        let t = parse_timestamp("2026-12-01T12:00:05Z").expect("parses");
        assert_eq!(format_timestamp(t), "2026-12-01T12:00:05Z");
        let t = parse_timestamp("2026-12-01T12:00:05.123Z").expect("fraction");
        assert_eq!(format_timestamp(t), "2026-12-01T12:00:05Z");
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn freshness_uses_the_margin() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        let c = SessionCredentials {
            access_key_id: "ASIA".into(),
            secret_access_key: Secret::new("s"),
            session_token: Secret::new("t"),
            expiration: now + time::Duration::seconds(301),
        };
        assert!(c.is_fresh(now, 300));
        assert!(!c.is_fresh(now, 301));
        assert!(!c.is_fresh(now + time::Duration::seconds(400), 0));
        assert_eq!(c.seconds_left(now), 301);
    }
}
