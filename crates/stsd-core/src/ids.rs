//! AWS-shaped identifiers.
//!
//! Access key ids (`AKIA`/`ASIA` + 16 chars) and unique ids (`AIDA` + 17 chars) use the base32 alphabet
//! `[A-Z2-7]` and encode the account id as AWS's do (wire reference §4): base32-decode the characters after
//! the 4-character prefix, read the first 6 bytes as a big-endian integer `x`, and the account id is
//! `(x & 0x7fffffffff80) >> 7`. STS `GetAccessKeyInfo` relies on this.

use crate::random_fill;
use crate::secret::Secret;
use base64::Engine as _;
use data_encoding::BASE32_NOPAD;

/// Prefix of long-term access key ids.
pub const LONG_TERM_PREFIX: &str = "AKIA";
/// Prefix of session (temporary) access key ids.
pub const SESSION_PREFIX: &str = "ASIA";
/// Prefix of IAM user unique ids.
pub const USER_PREFIX: &str = "AIDA";

/// The largest 12-digit account id.
pub const MAX_ACCOUNT_ID: u64 = 999_999_999_999;

/// A new random 12-digit account id (no leading zero, so it reads well everywhere).
pub fn new_account_id() -> u64 {
    let mut b = [0u8; 8];
    random_fill(&mut b);
    100_000_000_000 + u64::from_be_bytes(b) % 900_000_000_000
}

/// Formats an account id with its 12 digits.
pub fn format_account(account: u64) -> String {
    format!("{account:012}")
}

/// Parses a 12-digit account id.
pub fn parse_account(s: &str) -> Option<u64> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn encoded_id(prefix: &str, account: u64, chars: usize) -> String {
    debug_assert!(account <= MAX_ACCOUNT_ID);
    let mut bytes = [0u8; 11];
    random_fill(&mut bytes);
    let x = ((account & 0xff_ffff_ffff) << 7) | u64::from(bytes[5] & 0x7f);
    bytes[..6].copy_from_slice(&x.to_be_bytes()[2..]);
    let mut out = String::with_capacity(prefix.len() + chars);
    out.push_str(prefix);
    out.push_str(&BASE32_NOPAD.encode(&bytes)[..chars]);
    out
}

/// A new long-term access key id: `AKIA` + 16 chars.
pub fn new_long_term_key_id(account: u64) -> String {
    encoded_id(LONG_TERM_PREFIX, account, 16)
}

/// A new session access key id: `ASIA` + 16 chars.
pub fn new_session_key_id(account: u64) -> String {
    encoded_id(SESSION_PREFIX, account, 16)
}

/// A new IAM user unique id: `AIDA` + 17 chars.
pub fn new_user_id(account: u64) -> String {
    encoded_id(USER_PREFIX, account, 17)
}

/// A new unique id with another 4-character prefix (e.g. for MFA devices), 17 chars after it.
pub fn new_unique_id(prefix: &str, account: u64) -> String {
    encoded_id(prefix, account, 17)
}

/// The account id encoded in a key id or unique id, if it has that shape.
pub fn account_from_id(id: &str) -> Option<u64> {
    let body = id.get(4..)?;
    let head = body.get(..16)?;
    let bytes = BASE32_NOPAD.decode(head.as_bytes()).ok()?;
    let mut x = [0u8; 8];
    x[2..].copy_from_slice(bytes.get(..6)?);
    Some((u64::from_be_bytes(x) & 0x7fff_ffff_ff80) >> 7)
}

/// True for a well-formed long-term or session key id: 4-char prefix + 16 chars of `[A-Z2-7]`.
pub fn is_key_id(id: &str, prefix: &str) -> bool {
    id.len() == 20
        && id.starts_with(prefix)
        && id[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

/// A random UUID v4 in its lowercase hyphenated form (request ids, event ids).
pub fn uuid_v4() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = [0u8; 16];
    random_fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// A new 40-character secret access key (30 random bytes, standard base64).
pub fn new_secret_access_key() -> Secret {
    let mut b = [0u8; 30];
    random_fill(&mut b);
    let s = base64::engine::general_purpose::STANDARD.encode(b);
    zeroize::Zeroize::zeroize(&mut b);
    Secret::new(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_real_aws_ids() {
        // Both ids come from one real capture whose account is 291738886548 (wire reference §4).
        assert_eq!(
            account_from_id("ASIAUH3H6EGKJI4NP6V5"),
            Some(291_738_886_548)
        );
        assert_eq!(
            account_from_id("AIDAUH3H6EGKDO36JYJH3"),
            Some(291_738_886_548)
        );
        assert_eq!(account_from_id("AKIA"), None);
        assert_eq!(account_from_id("AKIA0000000000000000"), None);
    }

    #[test]
    fn generated_ids_round_trip() {
        for account in [0, 1, 123_456_789_012, 291_738_886_548, MAX_ACCOUNT_ID] {
            let k = new_long_term_key_id(account);
            assert!(is_key_id(&k, "AKIA"), "{k}");
            assert_eq!(account_from_id(&k), Some(account));
            let s = new_session_key_id(account);
            assert!(is_key_id(&s, "ASIA"), "{s}");
            assert_eq!(account_from_id(&s), Some(account));
            let u = new_user_id(account);
            assert_eq!(u.len(), 21);
            assert!(u.starts_with("AIDA"));
            assert_eq!(account_from_id(&u), Some(account));
        }
        assert_ne!(new_session_key_id(1), new_session_key_id(1));
    }

    #[test]
    fn uuids_are_v4() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(
            u.bytes()
                .all(|c| c == b'-' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert!(parts[2].starts_with('4'), "{u}");
        assert!("89ab".contains(&parts[3][..1]), "{u}");
        assert_ne!(uuid_v4(), u);
    }

    #[test]
    fn secrets_and_accounts() {
        let s = new_secret_access_key();
        assert_eq!(s.expose().len(), 40);
        assert!(
            s.expose()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        );
        let a = new_account_id();
        assert_eq!(format_account(a).len(), 12);
        assert_eq!(parse_account(&format_account(a)), Some(a));
        assert_eq!(format_account(42), "000000000042");
        assert_eq!(parse_account("12345678901"), None);
        assert_eq!(parse_account("12345678901a"), None);
    }
}
