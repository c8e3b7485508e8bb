//! Request rate limits (token buckets per source IP and per access key) and their configuration.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Requests per second and burst for one kind of key; `rate <= 0` disables it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Bucket size (requests allowed at once).
    pub burst: f64,
}

/// Token buckets for one kind of key.
#[derive(Debug)]
pub struct Limiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

const MAX_KEYS: usize = 100_000;

impl Limiter {
    /// A limiter (disabled when `rate.per_second <= 0`).
    pub fn new(rate: Rate) -> Self {
        Limiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// True when this limiter limits anything.
    pub fn enabled(&self) -> bool {
        self.rate.per_second > 0.0
    }

    /// True when a request for `key` may proceed now (and takes a token).
    pub fn allow(&self, key: &str) -> bool {
        if !self.enabled() {
            return true;
        }
        let burst = self.rate.burst.max(1.0);
        let now = Instant::now();
        let Ok(mut m) = self.buckets.lock() else {
            return true;
        };
        if m.len() >= MAX_KEYS && !m.contains_key(key) {
            // Forget idle buckets (full ones carry no information).
            let rate = self.rate.per_second;
            m.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
            if m.len() >= MAX_KEYS {
                m.clear();
            }
        }
        let (tokens, at) = m.entry(key.to_owned()).or_insert((burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.rate.per_second).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        let off = Limiter::new(Rate::default());
        assert!((0..1000).all(|_| off.allow("a")));
        let l = Limiter::new(Rate {
            per_second: 1.0,
            burst: 3.0,
        });
        assert!(l.allow("a") && l.allow("a") && l.allow("a"));
        assert!(!l.allow("a"));
        assert!(l.allow("b"), "keys are independent");
    }
}
