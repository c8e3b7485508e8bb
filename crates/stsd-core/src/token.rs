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

/// Tokens of IAM users and the root without extensions keep the original layout (version 1), so that
/// nodes of an older release still open them; tokens with a role principal or extensions are version 2,
/// which older nodes refuse (rather than misread).
const VERSION: u8 = 1;
const VERSION_EXT: u8 = 2;
const HEADER_LEN: usize = 1 + 4 + 12;
const TAG_LEN: usize = 16;
/// The largest token stsd issues, in characters (AWS's limit).
pub const MAX_TOKEN_LEN: usize = 4096;

const FLAG_USER: u8 = 1;
const FLAG_MFA: u8 = 2;
const FLAG_ROLE: u8 = 4;
const FLAG_EXT: u8 = 8;
const EXT_SOURCE_IDENTITY: u8 = 1;
const EXT_SESSION_POLICY: u8 = 2;

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
    /// A role session (AssumeRole).
    Role {
        /// `AROA...` unique id of the role.
        role_id: String,
        /// Role name.
        name: String,
        /// Role path.
        path: String,
        /// `RoleSessionName`.
        session_name: String,
    },
}

/// What a session carries besides its principal: session policies, scope-down layers, tags and
/// source identity. Empty for plain GetSessionToken sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionExt {
    /// `SourceIdentity`, kept through chaining.
    pub source_identity: Option<String>,
    /// The inline session policy (AssumeRole `Policy`), whitespace removed.
    pub session_policy: Option<String>,
    /// Managed session policies (AssumeRole `PolicyArns`), by reference.
    pub policy_arns: Vec<String>,
    /// GetScopedCredentials scope-down policies, oldest first (at most 3), whitespace removed.
    pub scope_policies: Vec<String>,
    /// Session tags `(key, value)`.
    pub tags: Vec<(String, String)>,
    /// Keys of the tags that pass to chained sessions.
    pub transitive_tag_keys: Vec<String>,
}

impl SessionExt {
    fn is_empty(&self) -> bool {
        *self == SessionExt::default()
    }
}

/// Removes JSON whitespace outside strings (a policy's meaning does not depend on it), so that
/// session policies take less room in the token.
pub fn compact_json(doc: &str) -> String {
    let mut out = String::with_capacity(doc.len());
    let (mut in_str, mut escaped) = (false, false);
    for c in doc.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            if c == '"' {
                in_str = true;
            }
            out.push(c);
        }
    }
    out
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
    /// MFA state, when MFA was used (for role sessions: inherited from the calling session, or from
    /// the code given to AssumeRole).
    pub mfa: Option<MfaContext>,
    /// Session policies, scope-down layers, tags, source identity.
    pub ext: SessionExt,
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
        if matches!(self.principal, Principal::Role { .. }) {
            flags |= FLAG_ROLE;
        }
        if !self.ext.is_empty() {
            flags |= FLAG_EXT;
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
        if let Principal::Role {
            role_id,
            name,
            path,
            session_name,
        } = &self.principal
        {
            put_str(&mut out, role_id)?;
            put_str(&mut out, name)?;
            put_str(&mut out, path)?;
            put_str(&mut out, session_name)?;
        }
        if let Some(mfa) = &self.mfa {
            out.extend_from_slice(&mfa.authenticated_at.to_be_bytes());
            put_str(&mut out, &mfa.serial_number)?;
        }
        if flags & FLAG_EXT != 0 {
            let e = &self.ext;
            let mut present = 0;
            if e.source_identity.is_some() {
                present |= EXT_SOURCE_IDENTITY;
            }
            if e.session_policy.is_some() {
                present |= EXT_SESSION_POLICY;
            }
            out.push(present);
            if let Some(s) = &e.source_identity {
                put_str(&mut out, s)?;
            }
            if let Some(s) = &e.session_policy {
                put_str(&mut out, s)?;
            }
            let count = |n: usize| u8::try_from(n).map_err(|_| TokenError::TooLarge);
            out.push(count(e.policy_arns.len())?);
            for a in &e.policy_arns {
                put_str(&mut out, a)?;
            }
            out.push(count(e.scope_policies.len())?);
            for p in &e.scope_policies {
                put_str(&mut out, p)?;
            }
            out.push(count(e.tags.len())?);
            for (k, v) in &e.tags {
                put_str(&mut out, k)?;
                put_str(&mut out, v)?;
            }
            out.push(count(e.transitive_tag_keys.len())?);
            for k in &e.transitive_tag_keys {
                put_str(&mut out, k)?;
            }
        }
        Ok(out)
    }

    /// The length in characters of the token these claims make without padding.
    ///
    /// # Errors
    /// [`TokenError::TooLarge`] when a field cannot be encoded at all.
    pub fn token_len(&self) -> Result<usize, TokenError> {
        let n = HEADER_LEN + self.encode()?.len() + TAG_LEN;
        Ok((n * 4).div_ceil(3))
    }

    /// The token format version these claims need.
    fn version(&self) -> u8 {
        if matches!(self.principal, Principal::Role { .. }) || !self.ext.is_empty() {
            VERSION_EXT
        } else {
            VERSION
        }
    }

    fn decode(version: u8, plain: &[u8]) -> Result<SessionClaims, TokenError> {
        let mut r = Reader(plain);
        let flags = r.u8()?;
        let known = if version == VERSION {
            FLAG_USER | FLAG_MFA
        } else {
            FLAG_USER | FLAG_MFA | FLAG_ROLE | FLAG_EXT
        };
        if flags & !known != 0 || flags & (FLAG_USER | FLAG_ROLE) == FLAG_USER | FLAG_ROLE {
            return Err(TokenError::Malformed);
        }
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
        } else if flags & FLAG_ROLE != 0 {
            Principal::Role {
                role_id: r.str()?,
                name: r.str()?,
                path: r.str()?,
                session_name: r.str()?,
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
        let mut ext = SessionExt::default();
        if flags & FLAG_EXT != 0 {
            let present = r.u8()?;
            if present & EXT_SOURCE_IDENTITY != 0 {
                ext.source_identity = Some(r.str()?);
            }
            if present & EXT_SESSION_POLICY != 0 {
                ext.session_policy = Some(r.str()?);
            }
            for _ in 0..r.u8()? {
                ext.policy_arns.push(r.str()?);
            }
            for _ in 0..r.u8()? {
                ext.scope_policies.push(r.str()?);
            }
            for _ in 0..r.u8()? {
                let k = r.str()?;
                ext.tags.push((k, r.str()?));
            }
            for _ in 0..r.u8()? {
                ext.transitive_tag_keys.push(r.str()?);
            }
        }
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
            ext,
        })
    }
}

/// Seals an arbitrary claims record (not necessarily one [`SessionClaims`] would encode) under the ring's
/// signing key, as a token; for the fuzz harness, which must reach the claims decoder. `None` when the
/// ring has no signing key or the record is too large for a token.
pub(crate) fn seal_raw(ring: &KeyRing, plain: &[u8]) -> Option<String> {
    let id = ring.signing?;
    let key = ring.keys.get(&id)?;
    let mut header = [0u8; HEADER_LEN];
    header[0] = VERSION;
    header[1..5].copy_from_slice(&id.to_be_bytes());
    let mut body = plain.to_vec();
    let nonce = key.seal_in_place(&header[..5], &mut body);
    header[5..].copy_from_slice(&nonce);
    let mut bin = Vec::with_capacity(HEADER_LEN + body.len());
    bin.extend_from_slice(&header);
    bin.extend_from_slice(&body);
    let token = URL_SAFE_NO_PAD.encode(&bin);
    (token.len() <= MAX_TOKEN_LEN).then_some(token)
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
        header[0] = claims.version();
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
        let version = bin.first().copied().unwrap_or(0);
        if bin.len() < HEADER_LEN + TAG_LEN || !(version == VERSION || version == VERSION_EXT) {
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
        SessionClaims::decode(version, plain)
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
            ext: SessionExt::default(),
        }
    }

    fn role_claims() -> SessionClaims {
        let mut c = claims(false, true);
        c.principal = Principal::Role {
            role_id: ids::new_unique_id("AROA", 123_456_789_012),
            name: "admin".into(),
            path: "/ops/".into(),
            session_name: "alice-cli".into(),
        };
        c.ext = SessionExt {
            source_identity: Some("alice".into()),
            session_policy: Some(compact_json(
                "{ \"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"iam:Get*\", \"Resource\": \"*\"}]}",
            )),
            policy_arns: vec!["arn:aws:iam::123456789012:policy/ReadOnly".into()],
            scope_policies: vec!["{\"a\":\"b c\"}".into()],
            tags: vec![("team".into(), "ops".into())],
            transitive_tag_keys: vec!["team".into()],
        };
        c
    }

    fn same(a: &SessionClaims, b: &SessionClaims) {
        assert_eq!(a.account_id, b.account_id);
        assert_eq!(a.principal, b.principal);
        assert_eq!(a.access_key_id, b.access_key_id);
        assert!(a.secret_access_key.ct_eq(b.secret_access_key.expose()));
        assert_eq!(a.source_access_key_id, b.source_access_key_id);
        assert_eq!((a.issued_at, a.expires_at), (b.issued_at, b.expires_at));
        assert_eq!(a.mfa, b.mfa);
        assert_eq!(a.ext, b.ext);
    }

    #[test]
    fn role_sessions_round_trip_as_version_2() {
        let r = ring();
        let c = role_claims();
        let t = r.seal(&c, 0).unwrap();
        assert!(t.len() < 1000, "{}", t.len());
        assert_eq!(URL_SAFE_NO_PAD.decode(&t).unwrap()[0], VERSION_EXT);
        same(&r.open(&t).unwrap(), &c);
        // Extensions alone (a scoped GetSessionToken session) also need version 2.
        let mut scoped = claims(true, true);
        scoped.ext.scope_policies.push("{}".into());
        let t = r.seal(&scoped, 0).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&t).unwrap()[0], VERSION_EXT);
        same(&r.open(&t).unwrap(), &scoped);
    }

    #[test]
    fn version_1_tokens_keep_their_layout_and_open() {
        // A token sealed exactly as the first release did (version 1, no extension flags).
        let r = ring();
        let c = claims(true, true);
        let plain = c.encode().unwrap();
        let key = r.keys.get(&7).unwrap();
        let mut header = [0u8; HEADER_LEN];
        header[0] = 1;
        header[1..5].copy_from_slice(&7u32.to_be_bytes());
        let mut body = plain.to_vec();
        let nonce = key.seal_in_place(&header[..5], &mut body);
        header[5..].copy_from_slice(&nonce);
        let mut bin = header.to_vec();
        bin.extend_from_slice(&body);
        let t = URL_SAFE_NO_PAD.encode(&bin);
        same(&r.open(&t).unwrap(), &c);
        // New plain user tokens are still version 1.
        let t = r.seal(&c, 0).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&t).unwrap()[0], 1);
    }

    #[test]
    fn compacting_keeps_strings() {
        assert_eq!(
            compact_json("{ \"a b\" : [ \"x \\\" y\" , 1 ]\n}"),
            "{\"a b\":[\"x \\\" y\",1]}"
        );
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
