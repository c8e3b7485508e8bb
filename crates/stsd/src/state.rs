//! Shared server state: the store, the token key ring, the access-key cache and the configuration that
//! requests need.

use crate::cache::TtlCache;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use stsd_core::token::KeyRing;
use stsd_store::{AccessKey, Store};

/// The largest number of access keys kept in the in-memory cache.
pub const KEY_CACHE_CAPACITY: usize = 100_000;
/// How long a cached access key is trusted. Changes made through this node's API are visible at once;
/// changes made elsewhere (another node, `stsd admin` on the data directory) within this bound.
pub const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// The largest number of unknown access key ids remembered (see [`AppState::access_key`]).
pub const UNKNOWN_KEY_CACHE_CAPACITY: usize = 10_000;
/// How long an access key id is remembered as unknown, so that anonymous traffic with made-up key ids
/// reaches the database at most once per id and period. New ids are random, so a remembered miss for a
/// key created afterwards is practically impossible; if it happens, the key works within this bound, as
/// changes made elsewhere do ([`KEY_CACHE_TTL`]). [`AppState::forget_key`] drops an entry at once.
/// Ids that no stored key can have (not 16 to 128 letters and digits) never reach the database at all,
/// so an entry is at most 128 bytes.
pub const UNKNOWN_KEY_CACHE_TTL: std::time::Duration = KEY_CACHE_TTL;

/// Where the time comes from. Tests of time-dependent behaviour run the server with an offset.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    /// Seconds added to the system clock.
    pub offset: i64,
}

impl Clock {
    /// The current unix time in seconds.
    pub fn now(&self) -> i64 {
        stsd_core::timefmt::now_unix() + self.offset
    }
}

/// MFA rules for GetSessionToken (issue defaults: ±1 step, 10 failures in 15 minutes lock for 15 minutes).
#[derive(Debug, Clone, Copy)]
pub struct MfaPolicy {
    /// Steps accepted on either side of the current one.
    pub window_steps: i64,
    /// Failed codes that lock a device.
    pub max_failures: i64,
    /// Seconds within which failures count together.
    pub failure_window: i64,
    /// Seconds a locked device refuses every code.
    pub lockout: i64,
    /// Every GetSessionToken must use MFA (account-wide, beyond AWS).
    pub required_for_all: bool,
}

impl Default for MfaPolicy {
    fn default() -> Self {
        MfaPolicy {
            window_steps: 1,
            max_failures: 10,
            failure_window: 900,
            lockout: 900,
            required_for_all: false,
        }
    }
}

/// How long a principal's "sessions not before" time is trusted before it is read again: the bound
/// within which revocations and user deletions made on any node take effect everywhere.
pub const REVOCATION_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Last use of a long-term key, as recorded for GetAccessKeyLastUsed: (time, region, service).
pub type LastUse = (i64, String, String);

/// An MFA device as read together with the caller's access key
/// ([`AppState::access_key_reading_device`]).
#[derive(Debug)]
pub struct DeviceRead {
    /// The serial number the request named.
    pub serial: String,
    /// The device, `None` when there is none with that serial number.
    pub device: Option<stsd_store::MfaDevice>,
}

/// Everything a request handler needs.
pub struct AppState {
    /// Durable store.
    pub store: Store,
    /// Token keys; swapped as a whole when the ring changes.
    pub key_ring: RwLock<Arc<KeyRing>>,
    /// This server's account id.
    pub account_id: u64,
    /// The account id as 12 digits.
    pub account: String,
    /// Regions accepted in credential scopes (`None`: any).
    pub regions: Option<Vec<String>>,
    /// Clock.
    pub clock: Clock,
    /// MFA rules.
    pub mfa: MfaPolicy,
    /// Metrics.
    pub metrics: crate::metrics::Metrics,
    /// Per-source-IP request rate limit.
    pub ip_limit: crate::limits::Limiter,
    /// Per-access-key request rate limit.
    pub key_limit: crate::limits::Limiter,
    /// The audit log, when enabled.
    pub audit: Option<crate::audit::AuditLog>,
    /// The web console's sessions (`--console`); `None`: `/console/` is not served.
    pub console: Option<crate::console::session::Sessions>,
    /// Derived SigV4 signing keys (per secret and scope), so a key's daily derivation runs once.
    pub signing_keys: stsd_sigv4::KeyCache,
    /// Authorization settings and the policy cache.
    pub authz: crate::authz::Authz,
    /// Failed MFA codes this node could not record in the store (see `sts::verify_mfa`).
    pub mfa_unrecorded: crate::sts::UnrecordedFailures,
    last_used: Mutex<HashMap<String, LastUse>>,
    not_before: TtlCache<Option<i64>>,
    key_cache: TtlCache<Arc<AccessKey>>,
    unknown_keys: TtlCache<()>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("account", &self.account)
            .field("regions", &self.regions)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// New state.
    pub fn new(
        store: Store,
        key_ring: KeyRing,
        account_id: u64,
        regions: Option<Vec<String>>,
        clock: Clock,
    ) -> Self {
        AppState {
            store,
            key_ring: RwLock::new(Arc::new(key_ring)),
            account_id,
            account: stsd_core::ids::format_account(account_id),
            regions,
            clock,
            mfa: MfaPolicy::default(),
            metrics: crate::metrics::Metrics::default(),
            ip_limit: crate::limits::Limiter::new(crate::limits::Rate::default()),
            key_limit: crate::limits::Limiter::new(crate::limits::Rate::default()),
            audit: None,
            console: None,
            signing_keys: stsd_sigv4::KeyCache::default(),
            authz: crate::authz::Authz::default(),
            mfa_unrecorded: crate::sts::UnrecordedFailures::default(),
            last_used: Mutex::new(HashMap::new()),
            not_before: TtlCache::new(REVOCATION_CACHE_TTL, KEY_CACHE_CAPACITY),
            key_cache: TtlCache::new(KEY_CACHE_TTL, KEY_CACHE_CAPACITY),
            unknown_keys: TtlCache::new(UNKNOWN_KEY_CACHE_TTL, UNKNOWN_KEY_CACHE_CAPACITY),
        }
    }

    /// The current key ring.
    pub fn key_ring(&self) -> Arc<KeyRing> {
        match self.key_ring.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Looks up a long-term access key, from the cache when possible.
    ///
    /// # Errors
    /// Store errors.
    pub async fn access_key(
        &self,
        id: &str,
    ) -> Result<Option<Arc<AccessKey>>, stsd_store::StoreError> {
        Ok(self.access_key_reading_device(id, None).await?.0)
    }

    /// [`Self::access_key`]; when the key is not cached and the request names an MFA device (`serial`),
    /// the device is read in the same statement and returned for `sts::verify_mfa`, which would read it
    /// next. A sign-in with MFA is the first use of its key, so the key is cold exactly then.
    ///
    /// # Errors
    /// Store errors.
    pub async fn access_key_reading_device(
        &self,
        id: &str,
        serial: Option<&str>,
    ) -> Result<(Option<Arc<AccessKey>>, Option<DeviceRead>), stsd_store::StoreError> {
        if let Some(k) = self.key_cache.get(id) {
            return Ok((Some(k), None));
        }
        // Stored ids are generated (20 characters) or given at first start (16 to 128 letters and
        // digits, checked in `setup`): anything else cannot exist.
        if !(16..=128).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok((None, None));
        }
        if self.unknown_keys.get(id).is_some() {
            return Ok((None, None));
        }
        // Serial numbers are at most 256 characters (IAM's limit); a longer one is refused later and
        // is not worth reading.
        let serial = serial.filter(|s| s.len() <= 256);
        let started = std::time::Instant::now();
        let looked_up = match serial {
            None => {
                let key = self.store.access_key(id).await;
                self.metrics.store("access_key", started.elapsed());
                key?.map(|k| (k, None))
            }
            Some(serial) => {
                let both = self.store.access_key_and_mfa_device(id, serial).await;
                self.metrics
                    .store("access_key_mfa_device", started.elapsed());
                both?.map(|(k, device)| {
                    let read = DeviceRead {
                        serial: serial.to_owned(),
                        device,
                    };
                    (k, Some(read))
                })
            }
        };
        let Some((key, device)) = looked_up else {
            self.unknown_keys.insert(id, ());
            return Ok((None, None));
        };
        let key = Arc::new(key);
        self.key_cache.insert(id, Arc::clone(&key));
        Ok((Some(key), device))
    }

    /// Drops a key from the cache after it changed (status, deletion, owner deletion).
    pub fn forget_key(&self, id: &str) {
        self.key_cache.remove(id);
        self.unknown_keys.remove(id);
    }

    /// Notes that a long-term key was used (kept in memory; written in batches by [`Self::flush_last_used`]).
    pub fn note_key_use(&self, id: &str, at: i64, region: &str, service: &str) {
        if let Ok(mut m) = self.last_used.lock() {
            match m.get_mut(id) {
                // Coarsened to the second: repeated use within one second changes nothing.
                Some(e) if e.0 == at && e.1 == region && e.2 == service => {}
                Some(e) => *e = (at, region.to_owned(), service.to_owned()),
                None => {
                    m.insert(id.to_owned(), (at, region.to_owned(), service.to_owned()));
                }
            }
        }
    }

    /// The not yet written last use of a key.
    pub fn pending_last_used(&self, id: &str) -> Option<LastUse> {
        self.last_used.lock().ok().and_then(|m| m.get(id).cloned())
    }

    /// Writes the recorded key uses to the store in one transaction.
    ///
    /// # Errors
    /// Store errors (the entries are kept for the next attempt).
    pub async fn flush_last_used(&self) -> Result<usize, stsd_store::StoreError> {
        let entries: Vec<(String, i64, String, String)> = match self.last_used.lock() {
            Ok(mut m) => m.drain().map(|(k, (t, r, s))| (k, t, r, s)).collect(),
            Err(_) => return Ok(0),
        };
        if let Err(e) = self.store.record_last_used(&entries).await {
            if let Ok(mut m) = self.last_used.lock() {
                for (k, t, r, s) in entries {
                    m.entry(k).or_insert((t, r, s));
                }
            }
            return Err(e);
        }
        Ok(entries.len())
    }

    /// The time before which sessions of `principal` (`root` or a user id) are revoked; `None` when the
    /// principal no longer exists. Read from the store at most every [`REVOCATION_CACHE_TTL`]; when the
    /// store is unreachable, the last known value is used, so that session-authenticated requests keep
    /// working while the database is down.
    ///
    /// # Errors
    /// The store's error when it cannot be read and no value is known: the caller must refuse the
    /// session (fail closed), not assume it was never revoked.
    pub async fn sessions_not_before(
        &self,
        principal: &str,
    ) -> Result<Option<i64>, stsd_store::StoreError> {
        if let Some(v) = self.not_before.get(principal) {
            return Ok(v);
        }
        let started = std::time::Instant::now();
        let looked_up = self.store.sessions_not_before(principal).await;
        self.metrics.store("sessions_not_before", started.elapsed());
        match looked_up {
            Ok(v) => {
                self.not_before.insert(principal, v);
                Ok(v)
            }
            Err(e) => {
                let Some(v) = self.not_before.get_stale(principal) else {
                    return Err(e);
                };
                tracing::warn!(error = %e, "revocation state unavailable; using the last known value");
                // Keep using it for another cache period rather than waiting on the database per request.
                self.not_before.insert(principal, v);
                Ok(v)
            }
        }
    }

    /// Forgets a principal's cached revocation time (after a change made through this node).
    pub fn forget_not_before(&self, principal: &str) {
        self.not_before.remove(principal);
    }

    /// Replaces the key ring (after a reload or rotation).
    pub fn set_key_ring(&self, ring: KeyRing) {
        match self.key_ring.write() {
            Ok(mut g) => *g = Arc::new(ring),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(ring),
        }
    }

    /// Drops every cached key.
    pub fn forget_all_keys(&self) {
        self.key_cache.clear();
        self.unknown_keys.clear();
    }
}
