//! Harness shared by the cargo-fuzz target `token` in `fuzz/` and the stable test that replays its seed
//! corpus (`fuzz/corpus/token/`, see `tests/fuzz_corpus.rs`). It must never panic, whatever the input.

use crate::token::KeyRing;

/// The fixed key ring the harness opens tokens with: key 1 (bytes `7`×32) and key 2 (`9`×32), key 1
/// sealing.
pub fn ring() -> KeyRing {
    let mut ring = KeyRing::new();
    // Both are valid 32-byte keys, so neither insert fails.
    let _ = ring.insert(1, &[7u8; 32]);
    let _ = ring.insert(2, &[9u8; 32]);
    ring.set_signing(1);
    ring
}

/// `token`: input = one mode byte, then the rest.
/// - mode even: the rest is a token (as text) opened with [`ring`];
/// - mode odd: the rest is a claims record, sealed as it is under key 1 and opened: this reaches the
///   claims decoder, which a forged token cannot.
///
/// Whatever opens must seal again and open to the same claims.
pub fn token_one(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let ring = ring();
    let opened = if mode % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        ring.open(text)
    } else {
        match crate::token::seal_raw(&ring, rest) {
            Some(token) => ring.open(&token),
            None => return,
        }
    };
    if let Ok(claims) = opened {
        // Claims that do not fit a token (strings over 64 KiB) are refused, not sealed wrongly.
        if let Ok(token) = ring.seal(&claims, 0) {
            let again = ring
                .open(&token)
                .unwrap_or_else(|e| panic!("resealed token refused: {e}"));
            assert_eq!(format!("{again:?}"), format!("{claims:?}"));
            assert_eq!(
                again.secret_access_key.expose(),
                claims.secret_access_key.expose()
            );
        }
    }
}
