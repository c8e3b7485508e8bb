//! RFC 6238 TOTP as AWS virtual and hardware MFA devices use it: HMAC-SHA-1, 6 digits, 30-second steps.

use aws_lc_rs::hmac;
use subtle::ConstantTimeEq;

/// Seconds per time step.
pub const STEP_SECONDS: i64 = 30;

/// The time step containing `unix` seconds.
pub fn step_at(unix: i64) -> i64 {
    unix.div_euclid(STEP_SECONDS)
}

/// The 6-digit HOTP value (RFC 4226) for `counter`, as a zero-padded string.
pub fn code(secret: &[u8], counter: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let h = tag.as_ref();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    format!("{:06}", bin % 1_000_000)
}

fn matches(secret: &[u8], step: i64, given: &str) -> bool {
    code(secret, step).as_bytes().ct_eq(given.as_bytes()).into()
}

/// Finds the step in `now_step - window ..= now_step + window` whose code is `given`, searching the
/// current step first. Steps `<= not_after` (already used) are never accepted.
pub fn verify(
    secret: &[u8],
    given: &str,
    now_step: i64,
    window: i64,
    used_up_to: Option<i64>,
) -> Option<i64> {
    if given.len() != 6 || !given.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut candidates = vec![now_step];
    for d in 1..=window {
        candidates.push(now_step - d);
        candidates.push(now_step + d);
    }
    candidates
        .into_iter()
        .filter(|s| used_up_to.is_none_or(|u| *s > u))
        .find(|s| matches(secret, *s, given))
}

/// Finds two consecutive steps `s, s+1` with codes `code1, code2` in `now_step - window ..= now_step + window`
/// (EnableMFADevice / ResyncMFADevice). Returns `s + 1`, the step of the second code.
pub fn verify_consecutive(
    secret: &[u8],
    code1: &str,
    code2: &str,
    now_step: i64,
    window: i64,
) -> Option<i64> {
    ((now_step - window)..=(now_step + window))
        .find(|s| matches(secret, *s, code1) && matches(secret, *s + 1, code2))
        .map(|s| s + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 Appendix B (SHA-1), 8-digit values truncated to their last 6 digits.
        for (t, expected8) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code(RFC_SECRET, step_at(t)), expected8[2..], "t={t}");
        }
    }

    #[test]
    fn rfc4226_hotp_vectors() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (i, e) in expected.iter().enumerate() {
            assert_eq!(code(RFC_SECRET, i as i64), *e);
        }
    }

    #[test]
    fn window_and_replay() {
        let now = step_at(1_700_000_000);
        let c = code(RFC_SECRET, now);
        assert_eq!(verify(RFC_SECRET, &c, now, 1, None), Some(now));
        assert_eq!(verify(RFC_SECRET, &c, now + 1, 1, None), Some(now));
        assert_eq!(verify(RFC_SECRET, &c, now - 1, 1, None), Some(now));
        assert_eq!(verify(RFC_SECRET, &c, now + 2, 1, None), None);
        assert_eq!(verify(RFC_SECRET, &c, now, 1, Some(now)), None);
        assert_eq!(verify(RFC_SECRET, &c, now, 1, Some(now - 1)), Some(now));
        assert_eq!(verify(RFC_SECRET, "12345", now, 1, None), None);
        assert_eq!(verify(RFC_SECRET, "abcdef", now, 1, None), None);
    }

    #[test]
    fn consecutive_codes() {
        let now = step_at(1_700_000_000);
        let (a, b) = (code(RFC_SECRET, now - 3), code(RFC_SECRET, now - 2));
        assert_eq!(
            verify_consecutive(RFC_SECRET, &a, &b, now, 5),
            Some(now - 2)
        );
        assert_eq!(verify_consecutive(RFC_SECRET, &b, &a, now, 5), None);
        assert_eq!(verify_consecutive(RFC_SECRET, &a, &b, now, 2), None);
    }
}
