//! Signing-key derivation and the string to sign.
//!
//! `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`, and the
//! signature is `HMAC(kSigning, string_to_sign)`. Every intermediate key lives in a [`Zeroizing`] buffer.
//! (The `hmac` crate's internal pad states are not zeroized; that is out of our reach.)

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

pub(crate) type HmacSha256 = Hmac<Sha256>;

pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub(crate) const TERMINATOR: &str = "aws4_request";

/// A keyed HMAC-SHA256. `None` is unreachable (HMAC accepts keys of any length) but keeps this panic-free;
/// callers fail closed on it.
fn keyed(key: &[u8]) -> Option<HmacSha256> {
    HmacSha256::new_from_slice(key).ok()
}

/// `HMAC(key, data)` into `out`, scrubbing the temporary output.
fn hmac_into(key: &[u8], data: &[u8], out: &mut [u8; 32]) -> Option<()> {
    let mut mac = keyed(key)?;
    mac.update(data);
    let mut tag = mac.finalize().into_bytes();
    out.copy_from_slice(&tag);
    tag.as_mut_slice().zeroize();
    Some(())
}

/// The final SigV4 key for one scope. Zeroized on drop (every clone too); no `Debug`, no `PartialEq`.
#[derive(Clone)]
pub(crate) struct SigningKey(Zeroizing<[u8; 32]>);

impl SigningKey {
    /// Derives the signing key for `date/region/service/aws4_request`.
    pub(crate) fn derive(secret: &[u8], date: &str, region: &str, service: &str) -> Option<Self> {
        const STACK: usize = 128;
        let mut k = Zeroizing::new([0u8; 32]);
        {
            // "AWS4" + secret, on the stack for any realistic secret length
            let mut stack = Zeroizing::new([0u8; 4 + STACK]);
            let mut heap = Zeroizing::new(Vec::new());
            let k_secret: &[u8] = if secret.len() <= STACK {
                stack[..4].copy_from_slice(b"AWS4");
                stack[4..4 + secret.len()].copy_from_slice(secret);
                &stack[..4 + secret.len()]
            } else {
                heap.reserve_exact(4 + secret.len());
                heap.extend_from_slice(b"AWS4");
                heap.extend_from_slice(secret);
                &heap
            };
            hmac_into(k_secret, date.as_bytes(), &mut k)?;
        }
        let mut next = Zeroizing::new([0u8; 32]);
        hmac_into(&k[..], region.as_bytes(), &mut next)?;
        hmac_into(&next[..], service.as_bytes(), &mut k)?;
        hmac_into(&k[..], TERMINATOR.as_bytes(), &mut next)?;
        Some(Self(next))
    }

    /// An HMAC keyed with this signing key, ready for the string to sign.
    pub(crate) fn mac(&self) -> Option<HmacSha256> {
        keyed(&self.0[..])
    }

    /// The key's bytes, for tests that compare derivations.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Feeds the string to sign to `mac`:
/// `AWS4-HMAC-SHA256\n<amz_date>\n<date>/<region>/<service>/aws4_request\n<hex(sha256(canonical request))>`.
pub(crate) fn update_string_to_sign(
    mac: &mut HmacSha256,
    amz_date: &str,
    scope_date: &str,
    region: &str,
    service: &str,
    canonical_request_hash: &[u8; 64],
) {
    mac.update(ALGORITHM.as_bytes());
    mac.update(b"\n");
    mac.update(amz_date.as_bytes());
    mac.update(b"\n");
    mac.update(scope_date.as_bytes());
    mac.update(b"/");
    mac.update(region.as_bytes());
    mac.update(b"/");
    mac.update(service.as_bytes());
    mac.update(b"/");
    mac.update(TERMINATOR.as_bytes());
    mac.update(b"\n");
    mac.update(canonical_request_hash);
}

/// Computes a signature as lowercase hex (signing side). An empty string in the unreachable failure case,
/// which no verifier accepts.
pub(crate) fn signature_hex(
    secret: &[u8],
    amz_date: &str,
    scope_date: &str,
    region: &str,
    service: &str,
    canonical_request_hash: &[u8; 64],
) -> String {
    let Some(mut mac) =
        SigningKey::derive(secret, scope_date, region, service).and_then(|k| k.mac())
    else {
        return String::new();
    };
    update_string_to_sign(
        &mut mac,
        amz_date,
        scope_date,
        region,
        service,
        canonical_request_hash,
    );
    hex::encode(mac.finalize().into_bytes())
}

/// The signature sent by the client: 32 bytes when it was 64 lowercase hex digits.
///
/// Deliberately neither `PartialEq` nor a revealing `Debug`: the only comparison is the constant-time
/// `Mac::verify_slice` in [`crate::verify`].
#[derive(Clone)]
pub(crate) struct Signature(Option<[u8; 32]>);

impl Signature {
    /// Parses 64 lowercase hex digits; anything else becomes a signature that never verifies.
    pub(crate) fn from_hex(s: &str) -> Self {
        /// Each byte's value as a lowercase hex digit, or 0xff.
        const NIBBLE: [u8; 256] = {
            let mut t = [0xffu8; 256];
            let mut c = 0;
            while c < 10 {
                t[b'0' as usize + c] = c as u8;
                c += 1;
            }
            let mut c = 0;
            while c < 6 {
                t[b'a' as usize + c] = 10 + c as u8;
                c += 1;
            }
            t
        };
        let b = s.as_bytes();
        if b.len() != 64 {
            return Self(None);
        }
        let mut out = [0u8; 32];
        let mut bad = 0u8;
        for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
            let (h, l) = (NIBBLE[usize::from(pair[0])], NIBBLE[usize::from(pair[1])]);
            // 0xff has its high bit set; valid nibbles never do.
            bad |= h | l;
            *o = (h << 4) | (l & 0x0f);
        }
        if bad & 0x80 != 0 {
            return Self(None);
        }
        Self(Some(out))
    }

    pub(crate) fn bytes(&self) -> Option<&[u8; 32]> {
        self.0.as_ref()
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // AWS documentation example (IAM ListUsers, also in aws-sigv4's own tests).
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    #[test]
    fn derived_key_matches_aws_docs() {
        let key = SigningKey::derive(SECRET.as_bytes(), "20150830", "us-east-1", "iam");
        let key = key.map(|k| hex::encode(&k.0[..])).unwrap_or_default();
        assert_eq!(
            key,
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn signature_matches_aws_docs() {
        let creq_hash = *b"f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
        let sig = signature_hex(
            SECRET.as_bytes(),
            "20150830T123600Z",
            "20150830",
            "us-east-1",
            "iam",
            &creq_hash,
        );
        assert_eq!(
            sig,
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn long_secret_uses_heap_path_and_matches_plain_hmac() {
        let secret = vec![b'x'; 300];
        let via_derive = SigningKey::derive(&secret, "20200101", "r", "s")
            .map(|k| hex::encode(&k.0[..]))
            .unwrap_or_default();
        let mut k_secret = b"AWS4".to_vec();
        k_secret.extend_from_slice(&secret);
        let mut k = [0u8; 32];
        let mut k2 = [0u8; 32];
        assert!(hmac_into(&k_secret, b"20200101", &mut k).is_some());
        assert!(hmac_into(&k, b"r", &mut k2).is_some());
        assert!(hmac_into(&k2, b"s", &mut k).is_some());
        assert!(hmac_into(&k, b"aws4_request", &mut k2).is_some());
        assert_eq!(via_derive, hex::encode(k2));
    }

    #[test]
    fn signature_parsing_is_strict() {
        let good = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        assert!(Signature::from_hex(good).bytes().is_some());
        assert!(Signature::from_hex(&good.to_uppercase()).bytes().is_none());
        assert!(Signature::from_hex(&good[..63]).bytes().is_none());
        assert!(Signature::from_hex(&format!("{good}0")).bytes().is_none());
        assert!(Signature::from_hex("").bytes().is_none());
        assert!(
            Signature::from_hex(&good.replace('5', "g"))
                .bytes()
                .is_none()
        );
        assert_eq!(format!("{:?}", Signature::from_hex(good)), "<redacted>");
    }
}
