//! Stable mirror of the cargo-fuzz target `fuzz/fuzz_targets/token.rs`: replays its seed corpus
//! (`fuzz/corpus/token/`) through the same harness, which must never panic.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use stsd_core::fuzz::{ring, token_one};
use stsd_core::secret::Secret;
use stsd_core::token::{MfaContext, Principal, SessionClaims};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/token")
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn token_corpus_replays_without_panic() {
    let seeds = seeds();
    assert!(seeds.len() >= 5, "seed corpus missing: {}", seeds.len());
    for (_, data) in &seeds {
        token_one(data);
        // And cheap mutations: every short prefix, and some bytes flipped.
        for cut in 0..data.len().min(64) {
            token_one(&data[..cut]);
        }
        for i in (0..data.len()).step_by(7) {
            let mut d = data.clone();
            d[i] ^= 0x5a;
            token_one(&d);
        }
    }
}

#[test]
fn token_corpus_holds_tokens_that_open_under_the_harness_ring() {
    let ring = ring();
    let opened = seeds()
        .iter()
        .filter(|(_, d)| d.first() == Some(&0))
        .filter(|(_, d)| {
            ring.open(std::str::from_utf8(&d[1..]).unwrap_or(""))
                .is_ok()
        })
        .count();
    assert!(opened >= 2, "only {opened} seed tokens open");
}

fn claims(user: bool, mfa: bool) -> SessionClaims {
    SessionClaims {
        account_id: 123_456_789_012,
        principal: if user {
            Principal::User {
                user_id: "AIDAEXAMPLEUSERID0001".into(),
                name: "alice".into(),
                path: "/eng/".into(),
            }
        } else {
            Principal::Root
        },
        access_key_id: "ASIAEXAMPLESESSION01".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"),
        source_access_key_id: "AKIAEXAMPLESOURCE001".into(),
        issued_at: 1_700_000_000,
        expires_at: 1_700_003_600,
        mfa: mfa.then(|| MfaContext {
            authenticated_at: 1_700_000_000,
            serial_number: "arn:aws:iam::123456789012:mfa/alice".into(),
        }),
        ext: Default::default(),
    }
}

/// Regenerates the seed corpus: `cargo test -p stsd-core --test fuzz_corpus -- --ignored`.
#[test]
#[ignore = "writes fuzz/corpus/token"]
fn write_token_seeds() {
    let ring = ring();
    let put = |name: &str, data: Vec<u8>| std::fs::write(dir().join(name), data).unwrap();
    for (name, user, mfa, min) in [
        ("root", false, false, 0),
        ("user-mfa", true, true, 0),
        ("user-padded", true, false, 600),
    ] {
        let mut d = vec![0u8];
        d.extend_from_slice(ring.seal(&claims(user, mfa), min).unwrap().as_bytes());
        put(&format!("token-{name}"), d);
    }
    // Raw claims records (mode 1), in the layout documented on `SessionClaims::encode`.
    let s = |out: &mut Vec<u8>, v: &str| {
        out.extend_from_slice(&u16::try_from(v.len()).unwrap().to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    };
    let mut rec = vec![1u8, 3]; // mode 1, flags: user | mfa
    rec.extend_from_slice(&123_456_789_012u64.to_be_bytes());
    rec.extend_from_slice(&1_700_000_000i64.to_be_bytes());
    rec.extend_from_slice(&1_700_003_600i64.to_be_bytes());
    for v in [
        "ASIAEXAMPLESESSION01",
        "secret",
        "AKIAEXAMPLESOURCE001",
        "AIDAEXAMPLEUSERID0001",
        "alice",
        "/",
    ] {
        s(&mut rec, v);
    }
    rec.extend_from_slice(&1_700_000_000i64.to_be_bytes());
    s(&mut rec, "arn:aws:iam::123456789012:mfa/alice");
    put("raw-user-mfa", rec.clone());
    put("raw-truncated", rec[..20].to_vec());
    let mut bad_len = rec.clone();
    bad_len[26] = 0xff; // the first string's length, far beyond the record
    put("raw-bad-length", bad_len);
    put("text-garbage", b"\x00AQAAAAE-not-a-token".to_vec());
}
