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
pub mod ids;
pub mod secret;
pub mod timefmt;
pub mod token;
pub mod totp;

/// Fills `buf` from the operating system's CSPRNG (via aws-lc).
pub fn random_fill(buf: &mut [u8]) {
    // aws-lc's RNG only fails if the OS entropy source is broken; there is nothing sensible to do then.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(buf).expect("system random source failed");
}
