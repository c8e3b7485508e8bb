//! Prometheus metrics, rendered on `GET /metrics` in the text exposition format.
//!
//! Labels are bounded: actions come from the implemented operations (anything else is `unknown`), outcome
//! codes from stsd's own error codes. Never an access key id or a user name.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency bucket upper bounds in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// Operations that may appear as a label.
pub const KNOWN_ACTIONS: &[&str] = &[
    "GetSessionToken",
    "GetCallerIdentity",
    "GetAccessKeyInfo",
    "CreateUser",
    "GetUser",
    "ListUsers",
    "DeleteUser",
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "GetAccessKeyLastUsed",
    "CreateVirtualMFADevice",
    "EnableMFADevice",
    "ResyncMFADevice",
    "DeactivateMFADevice",
    "DeleteVirtualMFADevice",
    "ListMFADevices",
    "ListVirtualMFADevices",
    "GetMFADevice",
    // (At most 31 names: the per-action table is an array with a `Default`.)
    "AssumeRole",
    "GetScopedCredentials",
    "CreateRole",
    "GetRole",
    "ListRoles",
    "UpdateRole",
    "UpdateAssumeRolePolicy",
    "DeleteRole",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "AttachRolePolicy",
];

/// The label of requests whose action is not in [`KNOWN_ACTIONS`].
const UNKNOWN_ACTION: &str = "unknown";

/// A bounded label for an action name.
pub fn action_label(action: Option<&str>) -> &'static str {
    KNOWN_ACTIONS
        .get(action_index(action))
        .copied()
        .unwrap_or(UNKNOWN_ACTION)
}

/// The action's place in [`KNOWN_ACTIONS`], or `KNOWN_ACTIONS.len()` for anything else.
fn action_index(action: Option<&str>) -> usize {
    action
        .and_then(|a| KNOWN_ACTIONS.iter().position(|k| *k == a))
        .unwrap_or(KNOWN_ACTIONS.len())
}

/// A latency histogram that threads update without a lock: each observation adds to one bucket (the
/// first whose bound it does not exceed), the count and the sum; rendering accumulates the buckets.
#[derive(Default)]
struct AtomicHistogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// A consistent-enough copy for rendering (each field is read once).
    fn snapshot(&self) -> Histogram {
        let mut h = Histogram::default();
        let mut below = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            below += b.load(Ordering::Relaxed);
            h.buckets[i] = below;
        }
        h.count = self.count.load(Ordering::Relaxed).max(below);
        h.sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        h
    }
}

/// Per action: successful requests and the latency of all requests.
#[derive(Default)]
struct ActionStats {
    ok: AtomicU64,
    latency: AtomicHistogram,
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}",
                self.buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// Why a credential was refused (label values of `stsd_auth_failures_total`).
#[derive(Debug, Clone, Copy)]
pub enum AuthFailure {
    /// No or malformed authentication.
    Malformed,
    /// Unknown or inactive access key.
    UnknownKey,
    /// Signature mismatch, time skew, wrong scope.
    Signature,
    /// Session token malformed, tampered, of an unknown key or another account.
    TokenInvalid,
    /// Session expired.
    TokenExpired,
    /// Session revoked (or its user deleted).
    TokenRevoked,
}

const AUTH_REASONS: [&str; 6] = [
    "malformed",
    "unknown_key",
    "signature",
    "token_invalid",
    "token_expired",
    "token_revoked",
];

/// All counters and histograms.
#[derive(Default)]
pub struct Metrics {
    /// Indexed like [`KNOWN_ACTIONS`], plus one for `unknown`: updated without a lock, as every
    /// request does.
    actions: [ActionStats; KNOWN_ACTIONS.len() + 1],
    /// Failed requests by action and error code (bounded: stsd's own codes).
    errors: Mutex<BTreeMap<&'static str, BTreeMap<String, u64>>>,
    store: Mutex<BTreeMap<&'static str, Histogram>>,
    auth_failures: [AtomicU64; 6],
    mfa_success: AtomicU64,
    mfa_failure: AtomicU64,
    mfa_lockout: AtomicU64,
    throttled: AtomicU64,
    audit_dropped: std::sync::Arc<AtomicU64>,
    /// The authorizer's decisions.
    pub authorizer: crate::authorizer::Counters,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Counts a finished request: `error` is its AWS error code, `None` when it succeeded.
    pub fn request(&self, action: Option<&str>, error: Option<&str>, elapsed: Duration) {
        let i = action_index(action);
        let Some(stats) = self.actions.get(i) else {
            return;
        };
        stats.latency.observe(elapsed);
        let Some(code) = error else {
            stats.ok.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if let Ok(mut m) = self.errors.lock() {
            let label = KNOWN_ACTIONS.get(i).copied().unwrap_or(UNKNOWN_ACTION);
            let by_code = m.entry(label).or_default();
            // No allocation once an (action, code) pair has been seen.
            match by_code.get_mut(code) {
                Some(n) => *n += 1,
                None => {
                    by_code.insert(code.to_owned(), 1);
                }
            }
        }
    }

    /// Times a store operation.
    pub fn store(&self, op: &'static str, elapsed: Duration) {
        if let Ok(mut m) = self.store.lock() {
            m.entry(op).or_default().observe(elapsed.as_secs_f64());
        }
    }

    /// Counts a refused credential.
    pub fn auth_failure(&self, reason: AuthFailure) {
        self.auth_failures[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an accepted MFA code.
    pub fn mfa_success(&self) {
        self.mfa_success.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused MFA code, and a lock-out when it caused one.
    pub fn mfa_failure(&self, locked: bool) {
        self.mfa_failure.fetch_add(1, Ordering::Relaxed);
        if locked {
            self.mfa_lockout.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a throttled request.
    pub fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// The counter of audit records dropped (queue full), shared with the audit log's sending side.
    pub fn audit_dropped_counter(&self) -> std::sync::Arc<AtomicU64> {
        std::sync::Arc::clone(&self.audit_dropped)
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP stsd_requests_total Query-protocol requests by action and outcome (OK or the AWS error code).\n# TYPE stsd_requests_total counter\n");
        let labels = KNOWN_ACTIONS.iter().chain(std::iter::once(&UNKNOWN_ACTION));
        let errors = self.errors.lock().map(|m| m.clone()).unwrap_or_default();
        for (action, stats) in labels.clone().zip(&self.actions) {
            let mut by_outcome: BTreeMap<&str, u64> = errors
                .get(action)
                .map(|m| m.iter().map(|(k, v)| (k.as_str(), *v)).collect())
                .unwrap_or_default();
            let ok = stats.ok.load(Ordering::Relaxed);
            if ok > 0 {
                by_outcome.insert("OK", ok);
            }
            for (outcome, n) in by_outcome {
                let _ = writeln!(
                    out,
                    "stsd_requests_total{{action=\"{action}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP stsd_request_duration_seconds Time from the request head to the response, by action.\n# TYPE stsd_request_duration_seconds histogram\n");
        for (action, stats) in labels.zip(&self.actions) {
            let h = stats.latency.snapshot();
            if h.count > 0 {
                h.render(
                    &mut out,
                    "stsd_request_duration_seconds",
                    &format!("action=\"{action}\""),
                );
            }
        }
        out.push_str("# HELP stsd_store_duration_seconds Store operations on the request path.\n# TYPE stsd_store_duration_seconds histogram\n");
        if let Ok(m) = self.store.lock() {
            for (op, h) in m.iter() {
                h.render(
                    &mut out,
                    "stsd_store_duration_seconds",
                    &format!("op=\"{op}\""),
                );
            }
        }
        out.push_str("# HELP stsd_auth_failures_total Refused credentials by reason.\n# TYPE stsd_auth_failures_total counter\n");
        for (i, r) in AUTH_REASONS.iter().enumerate() {
            let _ = writeln!(
                out,
                "stsd_auth_failures_total{{reason=\"{r}\"}} {}",
                self.auth_failures[i].load(Ordering::Relaxed)
            );
        }
        for (name, help, v) in [
            (
                "stsd_mfa_success_total",
                "Accepted MFA codes.",
                &self.mfa_success,
            ),
            (
                "stsd_mfa_failure_total",
                "Refused MFA codes (wrong, replayed, or while locked).",
                &self.mfa_failure,
            ),
            (
                "stsd_mfa_lockouts_total",
                "MFA devices locked after repeated failures.",
                &self.mfa_lockout,
            ),
            (
                "stsd_throttled_total",
                "Requests refused by rate limits.",
                &self.throttled,
            ),
            (
                "stsd_audit_dropped_total",
                "Audit records dropped because the writer's queue was full.",
                &*self.audit_dropped,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        self.authorizer.render(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_bounded_labels() {
        let m = Metrics::default();
        m.request(Some("GetSessionToken"), None, Duration::from_micros(300));
        m.request(
            Some("AKIASECRETLOOKINGTHING"),
            Some("InvalidAction"),
            Duration::from_millis(2),
        );
        m.request(
            Some("GetSessionToken"),
            Some("AccessDenied"),
            Duration::from_millis(30),
        );
        m.auth_failure(AuthFailure::TokenExpired);
        m.mfa_failure(true);
        let text = m.render();
        assert!(
            text.contains("stsd_requests_total{action=\"GetSessionToken\",outcome=\"OK\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("stsd_requests_total{action=\"unknown\",outcome=\"InvalidAction\"} 1")
        );
        assert!(!text.contains("AKIASECRET"));
        assert!(text.contains(
            "stsd_requests_total{action=\"GetSessionToken\",outcome=\"AccessDenied\"} 1"
        ));
        assert_eq!(action_label(Some("AKIASECRETLOOKINGTHING")), "unknown");
        assert_eq!(action_label(Some("GetUser")), "GetUser");
        // Buckets are cumulative: 300 µs is within 0.0005 and every larger bound, 30 ms only from 0.05.
        for (le, n) in [
            ("0.00025", 0),
            ("0.0005", 1),
            ("0.025", 1),
            ("0.05", 2),
            ("1", 2),
            ("+Inf", 2),
        ] {
            let line = format!(
                "stsd_request_duration_seconds_bucket{{action=\"GetSessionToken\",le=\"{le}\"}} {n}\n"
            );
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(text.contains("stsd_request_duration_seconds_count{action=\"GetSessionToken\"} 2"));
        assert!(
            text.contains("stsd_request_duration_seconds_sum{action=\"GetSessionToken\"} 0.0303")
        );
        // Actions never seen have no histogram.
        assert!(!text.contains("action=\"ListUsers\""), "{text}");
        assert!(text.contains("stsd_auth_failures_total{reason=\"token_expired\"} 1"));
        assert!(text.contains("stsd_mfa_lockouts_total 1"));
    }
}
