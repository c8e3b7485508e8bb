//! A bounded cache of derived signing keys.
//!
//! Deriving `kSigning` takes four HMACs (sixteen SHA-256 blocks) and its result changes only with the
//! secret and the scope (`date/region/service`), so a client signing many requests in a day needs it once.
//! [`KeyCache`] keeps one entry per slot; the slot is chosen by the access key id and an entry is used only
//! when the secret (compared in constant time) and the scope are exactly the ones of the request, so a
//! collision, a changed or deleted key, or a new day can only cost a derivation, never change a verdict.
//! Secrets and keys in the cache are zeroized when replaced or dropped, and nothing here is `Debug`-printed.

use std::sync::Mutex;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::key::SigningKey;

/// Slots in [`KeyCache::new`]'s default table.
pub const DEFAULT_SLOTS: usize = 256;

struct Entry {
    secret: Zeroizing<Vec<u8>>,
    date: String,
    region: String,
    service: String,
    key: SigningKey,
}

impl Entry {
    fn matches(&self, secret: &[u8], date: &str, region: &str, service: &str) -> bool {
        // Lengths are not secret; `ct_eq` on slices of unequal length is false anyway.
        let same_secret: bool = self.secret.as_slice().ct_eq(secret).into();
        same_secret && self.date == date && self.region == region && self.service == service
    }
}

/// Derived SigV4 signing keys, shared by the threads that verify requests. See the module docs.
pub struct KeyCache {
    slots: Box<[Mutex<Option<Entry>>]>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new(DEFAULT_SLOTS)
    }
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl KeyCache {
    /// A cache of `slots` entries (at least one).
    pub fn new(slots: usize) -> Self {
        Self {
            slots: (0..slots.max(1)).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// The signing key for this secret and scope: from the slot of `access_key_id` when it holds exactly
    /// this secret and scope, else derived and stored there.
    pub(crate) fn signing_key(
        &self,
        access_key_id: &str,
        secret: &[u8],
        date: &str,
        region: &str,
        service: &str,
    ) -> Option<SigningKey> {
        let slot = &self.slots[slot_index(access_key_id, self.slots.len())];
        // A poisoned slot only means another thread panicked while holding it: its entry is either the
        // old one or a fully written new one (the entry is replaced in one assignment), so it stays usable.
        let mut guard = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = guard.as_ref()
            && entry.matches(secret, date, region, service)
        {
            return Some(entry.key.clone());
        }
        let key = SigningKey::derive(secret, date, region, service)?;
        *guard = Some(Entry {
            secret: Zeroizing::new(secret.to_vec()),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            key: key.clone(),
        });
        Some(key)
    }
}

/// FNV-1a of the access key id, reduced to a slot. Access key ids are random, so this spreads them; a
/// crafted id can at worst evict another key's entry (a derivation more, never a different verdict).
fn slot_index(access_key_id: &str, slots: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in access_key_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // `slots` is at least one; the remainder is below it, so it fits a usize.
    usize::try_from(h % slots as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn hex_of(k: &SigningKey) -> String {
        hex::encode(k.bytes())
    }

    fn derived(secret: &str, date: &str, region: &str, service: &str) -> String {
        SigningKey::derive(secret.as_bytes(), date, region, service)
            .map(|k| hex_of(&k))
            .unwrap_or_default()
    }

    fn cached(c: &KeyCache, id: &str, secret: &str, date: &str, region: &str) -> String {
        c.signing_key(id, secret.as_bytes(), date, region, "sts")
            .map(|k| hex_of(&k))
            .unwrap_or_default()
    }

    #[test]
    fn a_hit_and_a_miss_give_the_derived_key() {
        let c = KeyCache::new(4);
        let want = derived(SECRET, "20150830", "us-east-1", "sts");
        assert_eq!(
            cached(&c, "AKIAEXAMPLE", SECRET, "20150830", "us-east-1"),
            want
        );
        assert_eq!(
            cached(&c, "AKIAEXAMPLE", SECRET, "20150830", "us-east-1"),
            want
        );
    }

    #[test]
    fn a_different_secret_date_region_or_service_is_never_served_from_the_entry() {
        // One slot: every lookup lands on the same entry.
        let c = KeyCache::new(1);
        let id = "AKIAEXAMPLE";
        assert_eq!(
            cached(&c, id, SECRET, "20150830", "us-east-1"),
            derived(SECRET, "20150830", "us-east-1", "sts")
        );
        let other = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ";
        assert_eq!(
            cached(&c, id, other, "20150830", "us-east-1"),
            derived(other, "20150830", "us-east-1", "sts")
        );
        assert_eq!(
            cached(&c, id, other, "20150831", "us-east-1"),
            derived(other, "20150831", "us-east-1", "sts")
        );
        assert_eq!(
            cached(&c, id, other, "20150831", "eu-west-1"),
            derived(other, "20150831", "eu-west-1", "sts")
        );
        let iam = c
            .signing_key(id, other.as_bytes(), "20150831", "eu-west-1", "iam")
            .map(|k| hex_of(&k))
            .unwrap_or_default();
        assert_eq!(iam, derived(other, "20150831", "eu-west-1", "iam"));
        // A secret that is a prefix of the cached one is a different secret.
        assert_eq!(
            cached(&c, id, &other[..20], "20150831", "eu-west-1"),
            derived(&other[..20], "20150831", "eu-west-1", "sts")
        );
    }

    #[test]
    fn many_keys_through_few_slots_stay_correct() {
        let c = KeyCache::new(3);
        for round in 0..3 {
            for i in 0..20 {
                let id = format!("AKIA{i:016}");
                let secret = format!("secret-{i}");
                assert_eq!(
                    cached(&c, &id, &secret, "20240101", "us-east-1"),
                    derived(&secret, "20240101", "us-east-1", "sts"),
                    "round {round} key {i}"
                );
            }
        }
    }

    #[test]
    fn debug_shows_no_entries() {
        let c = KeyCache::new(2);
        let _ = c.signing_key("AKIAEXAMPLE", SECRET.as_bytes(), "20150830", "r", "sts");
        let shown = format!("{c:?}");
        assert!(!shown.contains("wJalr"), "{shown}");
        assert!(shown.contains("slots: 2"), "{shown}");
    }
}
