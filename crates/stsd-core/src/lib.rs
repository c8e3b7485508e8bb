//! stsd's domain and crypto code, kept free of I/O so it can be unit-tested and fuzzed alone.
//!
//! - [`ids`]: account ids, `AKIA`/`ASIA` access key ids and `AIDA` user ids (which encode the account id
//!   the way AWS's do), secret access keys.
//! - [`secret`]: [`secret::Secret`], a string that never prints and compares in constant time.
//! - [`crypto`]: the master key that encrypts secrets at rest (AES-256-GCM-SIV, context-bound).
//! - [`token`]: sealed, stateless session tokens and the key ring that seals and opens them.
//! - [`totp`]: RFC 6238 codes (SHA-1, 6 digits, 30 s) and window checks.
//! - [`timefmt`]: `YYYY-MM-DDTHH:MM:SSZ` formatting without a date library.

pub mod crypto;
#[doc(hidden)]
pub mod fuzz;
pub mod ids;
pub mod secret;
pub mod timefmt;
pub mod token;
pub mod totp;

/// Fills `buf` with bytes from aws-lc's CSPRNG (a CTR-DRBG seeded from the operating system).
///
/// Small requests are served from a per-thread pool of [`RANDOM_POOL_SIZE`] bytes drawn from that CSPRNG
/// in one call, because each call into aws-lc pays a fixed cost (an RDRAND read and a DRBG update) that
/// dominated the handful of short ids and secrets a GetSessionToken needs. Bytes are zeroed in the pool
/// as soon as they are handed out, so the pool never holds bytes that were already used; what it holds is
/// future output, exactly like the DRBG's own state. The process never forks, so no two processes share
/// a pool.
pub fn random_fill(buf: &mut [u8]) {
    if buf.len() > RANDOM_POOL_SIZE / 8 {
        fill_direct(buf);
        return;
    }
    let pooled = POOL.try_with(|pool| {
        let Ok(mut pool) = pool.try_borrow_mut() else {
            return false;
        };
        pool.take(buf);
        true
    });
    if pooled != Ok(true) {
        // Thread-local storage is gone (thread exit) or busy: go to the source directly.
        fill_direct(buf);
    }
}

/// Size of each thread's pool of random bytes for [`random_fill`].
pub const RANDOM_POOL_SIZE: usize = 4096;

fn fill_direct(buf: &mut [u8]) {
    // aws-lc's RNG only fails if the OS entropy source is broken; there is nothing sensible to do then.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(buf).expect("system random source failed");
}

struct RandomPool {
    bytes: Box<[u8; RANDOM_POOL_SIZE]>,
    /// Bytes before `used` have been handed out (and zeroed).
    used: usize,
}

impl RandomPool {
    fn take(&mut self, out: &mut [u8]) {
        if RANDOM_POOL_SIZE - self.used < out.len() {
            fill_direct(&mut self.bytes[..]);
            self.used = 0;
        }
        let end = self.used + out.len();
        let taken = &mut self.bytes[self.used..end];
        out.copy_from_slice(taken);
        zeroize::Zeroize::zeroize(taken);
        self.used = end;
    }
}

impl Drop for RandomPool {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.bytes[..]);
    }
}

thread_local! {
    static POOL: std::cell::RefCell<RandomPool> = std::cell::RefCell::new(RandomPool {
        bytes: Box::new([0u8; RANDOM_POOL_SIZE]),
        // Empty: the first request fills it.
        used: RANDOM_POOL_SIZE,
    });
}

#[cfg(test)]
mod random_tests {
    use super::*;

    #[test]
    fn pooled_bytes_are_never_handed_out_twice() {
        // Many small draws across several refills: all 16-byte values distinct, none all-zero (a zeroed,
        // already used part of the pool handed out again would show up as zeros or as repeats).
        let mut seen = std::collections::HashSet::new();
        for _ in 0..(3 * RANDOM_POOL_SIZE / 16 + 7) {
            let mut b = [0u8; 16];
            random_fill(&mut b);
            assert_ne!(b, [0u8; 16]);
            assert!(seen.insert(b), "a random value repeated");
        }
    }

    #[test]
    fn odd_sizes_and_large_requests() {
        for len in [0usize, 1, 7, 30, 511, 512, 513, 5000] {
            let mut a = vec![0u8; len];
            let mut b = vec![0u8; len];
            random_fill(&mut a);
            random_fill(&mut b);
            if len >= 7 {
                assert_ne!(a, b, "len {len}");
                assert!(a.iter().any(|&x| x != 0), "len {len}");
            }
        }
    }

    #[test]
    fn used_part_of_the_pool_is_zeroed() {
        let mut b = [0u8; 32];
        random_fill(&mut b);
        POOL.with(|p| {
            let p = p.borrow();
            assert!(p.used >= 32);
            assert!(p.bytes[..p.used].iter().all(|&x| x == 0));
        });
    }
}
