//! A map whose entries expire: the in-memory caches in front of the store (access keys, unknown key
//! ids, revocation times, compiled policy sets, roles with their trust policies). Bounded: when it is full, expired entries go, and if every
//! entry is still fresh (a flood of distinct keys) it starts over rather than grow; lookups refill what
//! is hot. A poisoned lock reads as a miss and writes nothing, so a panic elsewhere costs lookups,
//! never answers.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Entries of type `V` by string key, each trusted for `ttl` after it was put in.
pub struct TtlCache<V> {
    ttl: Duration,
    capacity: usize,
    map: RwLock<HashMap<String, (Instant, V)>>,
}

impl<V> std::fmt::Debug for TtlCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets (keys, seeds): never shown.
        f.debug_struct("TtlCache")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<V: Clone> TtlCache<V> {
    /// An empty cache holding at most `capacity` entries, each for `ttl`.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        TtlCache {
            ttl,
            capacity,
            map: RwLock::new(HashMap::new()),
        }
    }

    /// The entry for `key` if it is younger than the TTL.
    pub fn get(&self, key: &str) -> Option<V> {
        let map = self.map.read().ok()?;
        let (at, v) = map.get(key)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    /// The entry for `key` whatever its age (the last known value, for when the store is unreachable).
    pub fn get_stale(&self, key: &str) -> Option<V> {
        let map = self.map.read().ok()?;
        map.get(key).map(|(_, v)| v.clone())
    }

    /// Puts `value` in for `key`, fresh from now.
    pub fn insert(&self, key: &str, value: V) {
        let Ok(mut map) = self.map.write() else {
            return;
        };
        if map.len() >= self.capacity && !map.contains_key(key) {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(key.to_owned(), (Instant::now(), value));
    }

    /// Drops the entry for `key` (after a change made through this node).
    pub fn remove(&self, key: &str) {
        if let Ok(mut map) = self.map.write() {
            map.remove(key);
        }
    }

    /// Drops every entry.
    pub fn clear(&self) {
        if let Ok(mut map) = self.map.write() {
            map.clear();
        }
    }

    /// Entries held, expired or not.
    pub fn len(&self) -> usize {
        self.map.read().map_or(0, |m| m.len())
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_stale_ones_stay_readable() {
        let c = TtlCache::new(Duration::from_millis(30), 10);
        c.insert("a", 1);
        assert_eq!(c.get("a"), Some(1));
        assert_eq!(c.get("b"), None);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get("a"), None);
        assert_eq!(c.get_stale("a"), Some(1));
        c.insert("a", 2);
        assert_eq!(c.get("a"), Some(2));
        c.remove("a");
        assert_eq!(c.get_stale("a"), None);
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_and_never_grows_past_its_capacity() {
        let c = TtlCache::new(Duration::from_millis(30), 3);
        c.insert("old", 0);
        std::thread::sleep(Duration::from_millis(40));
        c.insert("a", 1);
        c.insert("b", 2);
        // Full: the expired entry goes, the fresh ones stay.
        c.insert("c", 3);
        assert_eq!((c.len(), c.get_stale("old")), (3, None));
        assert_eq!(
            (c.get("a"), c.get("b"), c.get("c")),
            (Some(1), Some(2), Some(3))
        );
        // Replacing an entry of a full cache keeps the others.
        c.insert("a", 10);
        assert_eq!((c.len(), c.get("a"), c.get("b")), (3, Some(10), Some(2)));
        // Full of fresh entries: it starts over.
        c.insert("d", 4);
        assert_eq!((c.len(), c.get("d"), c.get("a")), (1, Some(4), None));
        for i in 0..100 {
            c.insert(&i.to_string(), i);
            assert!(c.len() <= 3);
        }
    }
}
