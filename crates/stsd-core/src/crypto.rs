//! Encryption at rest under the master key: AES-256-GCM-SIV (nonce-misuse resistant) with a random
//! 96-bit nonce, and the caller's context string as associated data so that a ciphertext cannot be moved
//! to another row or purpose.
//!
//! Blob layout: `nonce (12) | ciphertext | tag (16)`.

use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use zeroize::Zeroizing;

/// Length of a master key in bytes.
pub const KEY_LEN: usize = 32;

/// Errors of the crypto layer. They never carry key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The ciphertext was altered, belongs to another context, or was sealed under another key.
    #[error("decryption failed (wrong key, wrong context or corrupted data)")]
    Decrypt,
    /// A key file or key blob does not have the expected form.
    #[error("malformed key: {0}")]
    MalformedKey(&'static str),
}

/// An AEAD key used for sealing (the master key, token keys).
pub struct SealingKey {
    // aws-lc calls a key with caller-supplied nonces "less safe"; the nonces are always fresh random
    // bytes from `crate::random_fill` (the CSPRNG through the per-thread pool), which saves the RDRAND
    // read that aws-lc's own randomized-nonce key makes on every seal. AES-GCM-SIV also tolerates a
    // repeated nonce (it then only reveals that two plaintexts were equal).
    key: LessSafeKey,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(<redacted>)")
    }
}

impl SealingKey {
    /// A key from 32 bytes.
    ///
    /// # Errors
    /// [`CryptoError::MalformedKey`] if `bytes` is not 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != KEY_LEN {
            return Err(CryptoError::MalformedKey("a key must be 32 bytes"));
        }
        UnboundKey::new(&AES_256_GCM_SIV, bytes)
            .map(|key| SealingKey {
                key: LessSafeKey::new(key),
            })
            .map_err(|_| CryptoError::MalformedKey("rejected by AES-256-GCM-SIV"))
    }

    /// 32 fresh random bytes for a new key.
    pub fn generate_bytes() -> Zeroizing<[u8; KEY_LEN]> {
        let mut b = Zeroizing::new([0u8; KEY_LEN]);
        crate::random_fill(b.as_mut());
        b
    }

    /// Encrypts `plaintext` bound to `context`.
    pub fn encrypt(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(&[0u8; NONCE_LEN]);
        out.extend_from_slice(plaintext);
        let mut body = out.split_off(NONCE_LEN);
        let nonce = self.seal_in_place(context, &mut body);
        out.copy_from_slice(&nonce);
        out.extend_from_slice(&body);
        out
    }

    /// Seals `in_out` in place (ciphertext + tag appended) and returns the random nonce used.
    pub fn seal_in_place(&self, aad: &[u8], in_out: &mut Vec<u8>) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        crate::random_fill(&mut nonce);
        // Sealing fails only for inputs larger than AES-GCM-SIV's limit (gigabytes); ours are tiny.
        #[allow(clippy::expect_used)]
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), in_out)
            .expect("AEAD seal of a small buffer");
        nonce
    }

    /// Opens a ciphertext+tag in place; returns the plaintext slice.
    ///
    /// # Errors
    /// [`CryptoError::Decrypt`] on any authentication failure.
    pub fn open_in_place<'a>(
        &self,
        nonce: &[u8],
        aad: &[u8],
        in_out: &'a mut [u8],
    ) -> Result<&'a mut [u8], CryptoError> {
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Decrypt)?;
        self.key
            .open_in_place(nonce, Aad::from(aad), in_out)
            .map_err(|_| CryptoError::Decrypt)
    }

    /// Decrypts a blob made by [`Self::encrypt`] with the same `context`.
    ///
    /// # Errors
    /// [`CryptoError::Decrypt`] if the blob is short, altered, or of another key or context.
    pub fn decrypt(&self, context: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if blob.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        let mut buf = Zeroizing::new(ct.to_vec());
        let len = self.open_in_place(nonce, context, &mut buf)?.len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// Reads a master key file's text: the base64 of 32 bytes (surrounding whitespace ignored).
///
/// # Errors
/// [`CryptoError::MalformedKey`] if the text is not base64 of exactly 32 bytes.
pub fn parse_key_file(text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| CryptoError::MalformedKey("the master key file must hold base64 text"))?;
    let bytes = Zeroizing::new(bytes);
    if bytes.len() != KEY_LEN {
        return Err(CryptoError::MalformedKey(
            "the master key file must hold the base64 of exactly 32 bytes",
        ));
    }
    Ok(bytes)
}

/// The text of a master key file for `key`.
pub fn format_key_file(key: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "{}\n",
        base64::engine::general_purpose::STANDARD.encode(key)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_context_binding() {
        let k = SealingKey::from_bytes(SealingKey::generate_bytes().as_ref()).unwrap();
        let blob = k.encrypt(b"access_key:AKIA1", b"secret");
        assert_eq!(
            k.decrypt(b"access_key:AKIA1", &blob).unwrap().as_slice(),
            b"secret"
        );
        assert_eq!(
            k.decrypt(b"access_key:AKIA2", &blob),
            Err(CryptoError::Decrypt)
        );
        let other = SealingKey::from_bytes(SealingKey::generate_bytes().as_ref()).unwrap();
        assert_eq!(
            other.decrypt(b"access_key:AKIA1", &blob),
            Err(CryptoError::Decrypt)
        );
        // Random nonces: the same plaintext never gives the same blob.
        assert_ne!(blob, k.encrypt(b"access_key:AKIA1", b"secret"));
        for i in 0..blob.len() {
            let mut t = blob.clone();
            t[i] ^= 1;
            assert_eq!(
                k.decrypt(b"access_key:AKIA1", &t),
                Err(CryptoError::Decrypt),
                "byte {i}"
            );
        }
        assert_eq!(k.decrypt(b"x", &blob[..10]), Err(CryptoError::Decrypt));
    }

    #[test]
    fn key_files() {
        let bytes = SealingKey::generate_bytes();
        let text = format_key_file(bytes.as_ref());
        assert_eq!(parse_key_file(&text).unwrap().as_slice(), bytes.as_ref());
        assert!(parse_key_file("not base64!").is_err());
        assert!(parse_key_file("AAAA").is_err());
        assert!(SealingKey::from_bytes(&[0u8; 16]).is_err());
        assert!(!format!("{:?}", SealingKey::from_bytes(bytes.as_ref()).unwrap()).contains('['));
    }
}
