//! Console passwords: Argon2id hashing and verification, and the account password policy's rules.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) with a 16-byte random salt
//! and the parameters of OWASP's password storage recommendation for Argon2id: 19 MiB of memory, 2
//! passes, 1 lane ([`M_COST_KIB`], [`T_COST`], [`P_COST`]); a stored hash keeps its own parameters, so
//! they can be raised later without invalidating passwords. Hashing takes tens of milliseconds of CPU
//! and 19 MiB, so it runs on tokio's blocking pool (never on the async workers), at most
//! [`MAX_CONCURRENT_HASHES`] at a time. The final comparison of the derived hash is constant-time
//! (`password_hash::Output`'s `PartialEq` is `subtle`'s `ct_eq`). Passwords are held in zeroizing
//! buffers, never logged and never part of an error.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::LazyLock;
use stsd_proto::ApiError;
use stsd_proto::iam::PasswordPolicyView;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// Argon2id memory cost in KiB (19 MiB).
#[cfg(not(fuzzing))]
pub const M_COST_KIB: u32 = 19 * 1024;
/// Argon2id passes.
#[cfg(not(fuzzing))]
pub const T_COST: u32 = 2;
// The fuzz build (`--cfg fuzzing`, never a release or test build) hashes with Argon2's minimum memory
// and one pass, so that a fuzzer's sign-in inputs cost microseconds instead of a 19 MiB hash each.
#[cfg(fuzzing)]
pub const M_COST_KIB: u32 = argon2::Params::MIN_M_COST;
#[cfg(fuzzing)]
pub const T_COST: u32 = 1;
/// Argon2id lanes.
pub const P_COST: u32 = 1;
/// Hash computations running at once (each holds [`M_COST_KIB`] of memory); more wait their turn.
pub const MAX_CONCURRENT_HASHES: usize = 4;

static PERMITS: Semaphore = Semaphore::const_new(MAX_CONCURRENT_HASHES);

fn argon2() -> Result<Argon2<'static>, ApiError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(|e| {
        tracing::error!(error = %e, "Argon2 parameters rejected");
        ApiError::internal()
    })?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = PERMITS.acquire().await.map_err(|_| ApiError::internal())?;
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "password hashing task failed");
        ApiError::internal()
    })?
}

/// Hashes a password (Argon2id, fresh salt) off the async runtime.
///
/// # Errors
/// Internal errors only.
pub async fn hash(password: &str) -> Result<String, ApiError> {
    let password = Zeroizing::new(password.as_bytes().to_vec());
    blocking(move || {
        let mut salt = [0u8; 16];
        stsd_core::random_fill(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|_| ApiError::internal())?;
        argon2()?
            .hash_password(&password, &salt)
            .map(|h| h.to_string())
            .map_err(|e| {
                tracing::error!(error = %e, "password hashing failed");
                ApiError::internal()
            })
    })
    .await
}

fn verify_now(password: &[u8], phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password, &parsed).is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "stored password hash is not a PHC string");
            false
        }
    }
}

/// Whether `password` matches the stored hash, off the async runtime.
///
/// # Errors
/// Internal errors only.
pub async fn verify(password: &str, phc: &str) -> Result<bool, ApiError> {
    matches_any(password, vec![phc.to_owned()]).await
}

/// Whether `password` matches any of the stored hashes (reuse prevention), off the async runtime.
/// Every hash is checked, so the time taken does not tell which one matched.
///
/// # Errors
/// Internal errors only.
pub async fn matches_any(password: &str, hashes: Vec<String>) -> Result<bool, ApiError> {
    if hashes.is_empty() {
        return Ok(false);
    }
    let password = Zeroizing::new(password.as_bytes().to_vec());
    blocking(move || {
        Ok(hashes
            .iter()
            .fold(false, |found, h| verify_now(&password, h) | found))
    })
    .await
}

/// Spends the time of one verification without a stored hash, so that an answer for a principal
/// without a password takes as long as one with a wrong password.
///
/// # Errors
/// Internal errors only.
pub async fn verify_nothing(password: &str) -> Result<(), ApiError> {
    static DUMMY: LazyLock<Option<String>> = LazyLock::new(|| {
        let salt = SaltString::encode_b64(&[0u8; 16]).ok()?;
        argon2()
            .ok()?
            .hash_password(b"stsd-no-password", &salt)
            .ok()
            .map(|h| h.to_string())
    });
    let password = Zeroizing::new(password.as_bytes().to_vec());
    blocking(move || {
        if let Some(d) = DUMMY.as_deref() {
            let _ = verify_now(&password, d);
        }
        Ok(())
    })
    .await
}

/// IAM's symbols: `! @ # $ % ^ & * ( ) _ + - = [ ] { } | '`.
pub const SYMBOLS: &str = "!@#$%^&*()_+-=[]{}|'";

const UPPER: &str = "Password should have at least one uppercase letter";
const LOWER: &str = "Password should have at least one lowercase letter";
const NUMBER: &str = "Password should have at least one number";
const SYMBOL: &str = "Password should have at least one symbol";

/// The length of IAM's default policy (used while no account policy is set).
pub const DEFAULT_MINIMUM_LENGTH: usize = 8;

/// Checks a new password against the account policy, or IAM's default policy when none is set
/// (8 characters and three of the four character classes). `PasswordPolicyViolation` names the
/// unmet requirements in IAM's words.
///
/// # Errors
/// `PasswordPolicyViolation`.
pub fn check_rules(password: &str, policy: Option<&PasswordPolicyView>) -> Result<(), ApiError> {
    let len = password.chars().count();
    let has = |f: fn(char) -> bool| password.chars().any(f);
    let classes = [
        (has(|c| c.is_ascii_uppercase()), UPPER),
        (has(|c| c.is_ascii_lowercase()), LOWER),
        (has(|c| c.is_ascii_digit()), NUMBER),
        (has(|c| SYMBOLS.contains(c)), SYMBOL),
    ];
    let violation = |m: String| Err(ApiError::password_policy_violation(m));
    match policy {
        None => {
            if len < DEFAULT_MINIMUM_LENGTH {
                return violation(format!(
                    "Password should have a minimum length of {DEFAULT_MINIMUM_LENGTH}"
                ));
            }
            let present = classes.iter().filter(|(ok, _)| *ok).count();
            if present < 3 {
                let missing: Vec<&str> = classes
                    .iter()
                    .filter(|(ok, _)| !ok)
                    .map(|(_, m)| *m)
                    .collect();
                return violation(format!(
                    "Password should meet {} more of the following requirements: {}",
                    3 - present,
                    missing.join(", ")
                ));
            }
            Ok(())
        }
        Some(p) => {
            let mut unmet = Vec::new();
            let min = usize::try_from(p.minimum_password_length).unwrap_or(usize::MAX);
            if len < min {
                unmet.push(format!(
                    "Password should have a minimum length of {}",
                    p.minimum_password_length
                ));
            }
            let required = [
                p.require_uppercase_characters,
                p.require_lowercase_characters,
                p.require_numbers,
                p.require_symbols,
            ];
            for ((present, message), required) in classes.iter().zip(required) {
                if required && !present {
                    unmet.push((*message).to_owned());
                }
            }
            if unmet.is_empty() {
                Ok(())
            } else {
                violation(unmet.join(", "))
            }
        }
    }
}

/// The message for a password that repeats one of the last `n` (reuse prevention) [I].
pub fn reuse_message(n: i64) -> String {
    format!("Password should not be one of your {n} previous passwords")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let h = hash("correct horse Battery 9").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(!h.contains("horse"));
        assert_ne!(h, hash("correct horse Battery 9").await.unwrap());
        assert!(verify("correct horse Battery 9", &h).await.unwrap());
        assert!(!verify("correct horse battery 9", &h).await.unwrap());
        assert!(!verify("x", "not a hash").await.unwrap());
        let other = hash("Other-passw0rd").await.unwrap();
        assert!(
            matches_any("Other-passw0rd", vec![h.clone(), other])
                .await
                .unwrap()
        );
        assert!(!matches_any("nope", vec![h]).await.unwrap());
        verify_nothing("anything").await.unwrap();
    }

    #[test]
    fn default_policy() {
        let msg = |p: &str| check_rules(p, None).unwrap_err().message;
        assert_eq!(msg("Ab1!"), "Password should have a minimum length of 8");
        assert_eq!(
            msg("abcdefgh1"),
            "Password should meet 1 more of the following requirements: Password should have at least one uppercase letter, Password should have at least one symbol"
        );
        assert_eq!(
            msg("abcdefghij"),
            "Password should meet 2 more of the following requirements: Password should have at least one uppercase letter, Password should have at least one number, Password should have at least one symbol"
        );
        assert!(check_rules("abcdefG1", None).is_ok());
        assert!(check_rules("abcdefg!1", None).is_ok());
        assert_eq!(
            check_rules("Ab1!", None).unwrap_err().code,
            "PasswordPolicyViolation"
        );
    }

    #[test]
    fn account_policy() {
        let p = PasswordPolicyView {
            minimum_password_length: 10,
            require_symbols: true,
            require_numbers: true,
            require_uppercase_characters: true,
            require_lowercase_characters: true,
            ..PasswordPolicyView::default()
        };
        let msg = |pw: &str| check_rules(pw, Some(&p)).unwrap_err().message;
        assert_eq!(
            msg("abc"),
            "Password should have a minimum length of 10, Password should have at least one uppercase letter, Password should have at least one number, Password should have at least one symbol"
        );
        assert_eq!(
            msg("ABCDEFGHIJ1'"),
            "Password should have at least one lowercase letter"
        );
        // A space or a dot is no IAM symbol.
        assert_eq!(
            msg("Abcdefghi1 ."),
            "Password should have at least one symbol"
        );
        assert!(check_rules("Abcdefghi1|", Some(&p)).is_ok());
        // A policy without requirements accepts anything long enough.
        let lax = PasswordPolicyView::default();
        assert!(check_rules("aaaaaa", Some(&lax)).is_ok());
        assert!(check_rules("aaaaa", Some(&lax)).is_err());
    }
}
