//! Sealed, stateless session tokens.
//!
//! A session token carries everything a verifier needs (account, principal, the session's access key id and
//! secret, issue and expiry times, MFA state), sealed with AES-256-GCM-SIV under a token key from the key
//! ring. Any node holding the key ring can open it without a database read; without the key the secret is
//! neither readable nor derivable, and any change to any byte makes opening fail.
//!
//! Wire form: URL-safe base64 (no padding) of
//! `version (1) | key id (4, BE) | nonce (12) | AEAD(plaintext) (n + 16)`, with `version | key id` as the
//! associated data. The plaintext is a compact binary record (see [`SessionClaims::encode`]); zero bytes
//! appended to it pad a token up to `MinimumSessionTokenSize` while it still authenticates.

use crate::crypto::{CryptoError, SealingKey};
use crate::secret::Secret;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::HashMap;
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + 12;
const TAG_LEN: usize = 16;
/// The largest token stsd issues, in characters (AWS's limit).
pub const MAX_TOKEN_LEN: usize = 4096;

const FLAG_USER: u8 = 1;
const FLAG_MFA: u8 = 2;

/// Why a token could not be opened. All of them answer `InvalidClientTokenId` on the wire.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not base64, too short, too long, or of an unknown version.
    #[error("malformed session token")]
    Malformed,
    /// Sealed under a key this node does not know (retired, or from another deployment).
    #[error("session token sealed under unknown key {0}")]
    UnknownKey(u32),
    /// Authentication failed: the token was altered.
    #[error("session token failed authentication")]
    Tampered,
    /// The claims would make a token longer than [`MAX_TOKEN_LEN`].
    #[error("session token would exceed {MAX_TOKEN_LEN} characters")]
    TooLarge,
}

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The account root.
    Root,
    /// An IAM user.
    User {
        /// `AIDA...` unique id.
        user_id: String,
        /// User name.
        name: String,
        /// IAM path (`/` by default).
        path: String,
    },
}

/// MFA state of a session: the counterpart of `aws:MultiFactorAuthPresent` / `aws:MultiFactorAuthAge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaContext {
    /// When the MFA code was verified (unix seconds).
    pub authenticated_at: i64,
    /// Serial number of the device used.
    pub serial_number: String,
}

/// What a session token says.
#[derive(Debug, Clone)]
pub struct SessionClaims {
    /// Account id.
    pub account_id: u64,
    /// The principal the session was issued to.
    pub principal: Principal,
    /// The session's `ASIA...` access key id.
    pub access_key_id: String,
    /// The session's secret access key.
    pub secret_access_key: Secret,
    /// The long-term access key id that requested the session.
    pub source_access_key_id: String,
    /// Issue time (unix seconds).
    pub issued_at: i64,
    /// Expiry time (unix seconds).
    pub expires_at: i64,
    /// MFA state, when MFA was used.
    pub mfa: Option<MfaContext>,
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), TokenError> {
    let len = u16::try_from(s.len()).map_err(|_| TokenError::TooLarge)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TokenError> {
        if self.0.len() < n {
            return Err(TokenError::Malformed);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, TokenError> {
        Ok(self.take(1)?[0])
    }
    fn i64(&mut self) -> Result<i64, TokenError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(b))
    }
    fn str(&mut self) -> Result<String, TokenError> {
        let mut l = [0u8; 2];
        l.copy_from_slice(self.take(2)?);
        let bytes = self.take(usize::from(u16::from_be_bytes(l)))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| TokenError::Malformed)
    }
}

impl SessionClaims {
    /// The compact binary record sealed in a token.
    ///
    /// `flags (1) | account (8) | issued_at (8) | expires_at (8) | access key id | secret | source key id`
    /// `[| user id | name | path]  [| mfa time (8) | serial]`, strings as `u16 length | UTF-8`.
    fn encode(&self) -> Result<Zeroizing<Vec<u8>>, TokenError> {
        let mut out = Zeroizing::new(Vec::with_capacity(160));
        let mut flags = 0;
        if matches!(self.principal, Principal::User { .. }) {
            flags |= FLAG_USER;
        }
        if self.mfa.is_some() {
            flags |= FLAG_MFA;
        }
        out.push(flags);
        out.extend_from_slice(&self.account_id.to_be_bytes());
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        put_str(&mut out, &self.access_key_id)?;
        put_str(&mut out, self.secret_access_key.expose())?;
        put_str(&mut out, &self.source_access_key_id)?;
        if let Principal::User {
            user_id,
            name,
            path,
        } = &self.principal
        {
            put_str(&mut out, user_id)?;
            put_str(&mut out, name)?;
            put_str(&mut out, path)?;
        }
        if let Some(mfa) = &self.mfa {
            out.extend_from_slice(&mfa.authenticated_at.to_be_bytes());
            put_str(&mut out, &mfa.serial_number)?;
        }
        Ok(out)
    }

    fn decode(plain: &[u8]) -> Result<SessionClaims, TokenError> {
        let mut r = Reader(plain);
        let flags = r.u8()?;
        let mut acct = [0u8; 8];
        acct.copy_from_slice(r.take(8)?);
        let account_id = u64::from_be_bytes(acct);
        let issued_at = r.i64()?;
        let expires_at = r.i64()?;
        let access_key_id = r.str()?;
        let secret_access_key = Secret::new(r.str()?);
        let source_access_key_id = r.str()?;
        let principal = if flags & FLAG_USER != 0 {
            Principal::User {
                user_id: r.str()?,
                name: r.str()?,
                path: r.str()?,
            }
        } else {
            Principal::Root
        };
        let mfa = if flags & FLAG_MFA != 0 {
            Some(MfaContext {
                authenticated_at: r.i64()?,
                serial_number: r.str()?,
            })
        } else {
            None
        };
        // Whatever follows is padding (authenticated, so it cannot have been altered).
        Ok(SessionClaims {
            account_id,
            principal,
            access_key_id,
            secret_access_key,
            source_access_key_id,
            issued_at,
            expires_at,
            mfa,
        })
    }
}

/// The token keys this node knows, and which one seals new tokens.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: HashMap<u32, SealingKey>,
    signing: Option<u32>,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) key `id` from its 32 bytes.
    ///
    /// # Errors
    /// [`CryptoError::MalformedKey`] if `bytes` is not a valid key.
    pub fn insert(&mut self, id: u32, bytes: &[u8]) -> Result<(), CryptoError> {
        self.keys.insert(id, SealingKey::from_bytes(bytes)?);
        Ok(())
    }

    /// Chooses the key that seals new tokens (it must have been inserted).
    pub fn set_signing(&mut self, id: u32) -> bool {
        if self.keys.contains_key(&id) {
            self.signing = Some(id);
            true
        } else {
            false
        }
    }

    /// The id of the key that seals new tokens.
    pub fn signing_key_id(&self) -> Option<u32> {
        self.signing
    }

    /// The ids of every key that can open tokens.
    pub fn key_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.keys.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Seals `claims` into a token of at least `min_len` characters (padding is authenticated).
    ///
    /// # Errors
    /// [`TokenError::UnknownKey`] when no signing key is set; [`TokenError::TooLarge`] when the token
    /// would exceed [`MAX_TOKEN_LEN`] characters.
    pub fn seal(&self, claims: &SessionClaims, min_len: usize) -> Result<String, TokenError> {
        let id = self.signing.ok_or(TokenError::UnknownKey(0))?;
        let key = self.keys.get(&id).ok_or(TokenError::UnknownKey(id))?;
        let mut plain = claims.encode()?;
        // Token length in base64 characters for a binary of n bytes is ceil(4n/3).
        let min_len = min_len.min(MAX_TOKEN_LEN);
        let min_bin = (min_len * 3).div_ceil(4);
        let bin_len = HEADER_LEN + plain.len() + TAG_LEN;
        if bin_len < min_bin {
            let padded = plain.len() + (min_bin - bin_len);
            plain.resize(padded, 0);
        }
        let mut header = [0u8; HEADER_LEN];
        header[0] = VERSION;
        header[1..5].copy_from_slice(&id.to_be_bytes());
        // Sealed in place: after this call `body` holds only ciphertext and tag.
        let mut body: Vec<u8> = plain.to_vec();
        let nonce = key.seal_in_place(&header[..5], &mut body);
        header[5..].copy_from_slice(&nonce);
        let mut bin = Vec::with_capacity(HEADER_LEN + body.len());
        bin.extend_from_slice(&header);
        bin.extend_from_slice(&body);
        let token = URL_SAFE_NO_PAD.encode(&bin);
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        Ok(token)
    }

    /// Opens a token sealed by any key of the ring. Expiry is the caller's to check.
    ///
    /// # Errors
    /// [`TokenError`] for anything but an authentic token of a known key.
    pub fn open(&self, token: &str) -> Result<SessionClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN || token.len() < (HEADER_LEN + TAG_LEN) * 4 / 3 {
            return Err(TokenError::Malformed);
        }
        let bin = URL_SAFE_NO_PAD
            .decode(token.as_bytes())
            .map_err(|_| TokenError::Malformed)?;
        if bin.len() < HEADER_LEN + TAG_LEN || bin[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        let (header, body) = bin.split_at(HEADER_LEN);
        let mut id = [0u8; 4];
        id.copy_from_slice(&header[1..5]);
        let id = u32::from_be_bytes(id);
        let key = self.keys.get(&id).ok_or(TokenError::UnknownKey(id))?;
        let mut body = Zeroizing::new(body.to_vec());
        let plain = key
            .open_in_place(&header[5..], &header[..5], &mut body)
            .map_err(|_| TokenError::Tampered)?;
        SessionClaims::decode(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids;

    fn ring() -> KeyRing {
        let mut r = KeyRing::new();
        r.insert(7, SealingKey::generate_bytes().as_ref()).unwrap();
        assert!(r.set_signing(7));
        r
    }

    fn claims(user: bool, mfa: bool) -> SessionClaims {
        SessionClaims {
            account_id: 123_456_789_012,
            principal: if user {
                Principal::User {
                    user_id: ids::new_user_id(123_456_789_012),
                    name: "alice".into(),
                    path: "/eng/".into(),
                }
            } else {
                Principal::Root
            },
            access_key_id: ids::new_session_key_id(123_456_789_012),
            secret_access_key: ids::new_secret_access_key(),
            source_access_key_id: ids::new_long_term_key_id(123_456_789_012),
            issued_at: 1_700_000_000,
            expires_at: 1_700_043_200,
            mfa: mfa.then(|| MfaContext {
                authenticated_at: 1_700_000_000,
                serial_number: "arn:aws:iam::123456789012:mfa/alice".into(),
            }),
        }
    }

    fn same(a: &SessionClaims, b: &SessionClaims) {
        assert_eq!(a.account_id, b.account_id);
        assert_eq!(a.principal, b.principal);
        assert_eq!(a.access_key_id, b.access_key_id);
        assert!(a.secret_access_key.ct_eq(b.secret_access_key.expose()));
        assert_eq!(a.source_access_key_id, b.source_access_key_id);
        assert_eq!((a.issued_at, a.expires_at), (b.issued_at, b.expires_at));
        assert_eq!(a.mfa, b.mfa);
    }

    #[test]
    fn round_trip_all_shapes() {
        let r = ring();
        for (user, mfa) in [(false, false), (true, false), (false, true), (true, true)] {
            let c = claims(user, mfa);
            let t = r.seal(&c, 0).unwrap();
            assert!(t.len() <= 400, "token too long: {}", t.len());
            same(&r.open(&t).unwrap(), &c);
        }
    }

    #[test]
    fn secret_is_not_visible_in_token() {
        let r = ring();
        let c = claims(true, false);
        let t = r.seal(&c, 0).unwrap();
        let bin = URL_SAFE_NO_PAD.decode(&t).unwrap();
        let secret = c.secret_access_key.expose().as_bytes();
        assert!(!bin.windows(secret.len()).any(|w| w == secret));
        assert!(!bin.windows(5).any(|w| w == b"alice"));
    }

    #[test]
    fn any_change_is_rejected() {
        let r = ring();
        let t = r.seal(&claims(true, true), 0).unwrap();
        let bytes = t.as_bytes();
        for i in 0..bytes.len() {
            for replacement in [b'A', b'z', b'-'] {
                if bytes[i] == replacement {
                    continue;
                }
                let mut m = bytes.to_vec();
                m[i] = replacement;
                let m = String::from_utf8(m).unwrap();
                assert!(r.open(&m).is_err(), "change at {i} accepted");
            }
        }
        assert_eq!(r.open("").unwrap_err(), TokenError::Malformed);
        assert!(r.open(&t[..t.len() - 1]).is_err());
        assert_eq!(
            r.open("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!")
                .unwrap_err(),
            TokenError::Malformed
        );
    }

    #[test]
    fn other_ring_and_rotation() {
        let r = ring();
        let t = r.seal(&claims(false, false), 0).unwrap();
        assert!(matches!(ring().open(&t), Err(TokenError::Tampered)));
        let mut empty = KeyRing::new();
        assert_eq!(empty.open(&t).unwrap_err(), TokenError::UnknownKey(7));
        // A ring with a new signing key still opens tokens of the old one.
        let mut r2 = KeyRing::new();
        let old = SealingKey::generate_bytes();
        r2.insert(1, old.as_ref()).unwrap();
        r2.set_signing(1);
        let t_old = r2.seal(&claims(false, false), 0).unwrap();
        r2.insert(2, SealingKey::generate_bytes().as_ref()).unwrap();
        r2.set_signing(2);
        assert!(r2.open(&t_old).is_ok());
        assert!(r2.open(&r2.seal(&claims(false, false), 0).unwrap()).is_ok());
        assert!(!empty.set_signing(3));
        assert!(empty.seal(&claims(false, false), 0).is_err());
    }

    #[test]
    fn padding_reaches_minimum_and_still_opens() {
        let r = ring();
        let c = claims(true, false);
        for min in [0, 100, 401, 1000, 2001, 4095, 4096] {
            let t = r.seal(&c, min).unwrap();
            assert!(t.len() >= min, "{} < {min}", t.len());
            assert!(t.len() <= (min + 4).max(400), "{} for {min}", t.len());
            assert!(t.len() <= MAX_TOKEN_LEN);
            same(&r.open(&t).unwrap(), &c);
        }
    }

    proptest::proptest! {
        #[test]
        fn open_never_panics(s in "[A-Za-z0-9_-]{0,600}") {
            let _ = ring().open(&s);
        }
    }
}
