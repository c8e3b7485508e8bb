//! Shared server state: the store, the token key ring, the access-key cache and the configuration that
//! requests need.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use stsd_core::token::KeyRing;
use stsd_store::{AccessKey, Store};

/// The largest number of access keys kept in the in-memory cache.
pub const KEY_CACHE_CAPACITY: usize = 100_000;

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
    key_cache: RwLock<HashMap<String, Arc<AccessKey>>>,
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
            key_cache: RwLock::new(HashMap::new()),
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
        if let Ok(cache) = self.key_cache.read()
            && let Some(k) = cache.get(id)
        {
            return Ok(Some(Arc::clone(k)));
        }
        let Some(key) = self.store.access_key(id).await? else {
            return Ok(None);
        };
        let key = Arc::new(key);
        if let Ok(mut cache) = self.key_cache.write() {
            if cache.len() >= KEY_CACHE_CAPACITY {
                // Crude but bounded: start over rather than grow. Lookups refill what is hot.
                cache.clear();
            }
            cache.insert(id.to_owned(), Arc::clone(&key));
        }
        Ok(Some(key))
    }

    /// Drops a key from the cache after it changed (status, deletion, owner deletion).
    pub fn forget_key(&self, id: &str) {
        if let Ok(mut cache) = self.key_cache.write() {
            cache.remove(id);
        }
    }

    /// Drops every cached key.
    pub fn forget_all_keys(&self) {
        if let Ok(mut cache) = self.key_cache.write() {
            cache.clear();
        }
    }
}
