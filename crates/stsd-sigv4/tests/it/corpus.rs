//! Stable mirror of the cargo-fuzz target `fuzz/fuzz_targets/parse.rs`: replays the seed corpus in
//! `tests/corpus/` (and cheap deterministic mutations of it) through the same harness, which must never
//! panic. The fuzz input layout is documented on `stsd_sigv4::fuzz::parse_one`.

use std::path::Path;

use stsd_sigv4::fuzz::parse_one;

use crate::common::*;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Real signed requests in fuzz-input form, so mutations start from inputs that get far into the verifier.
fn signed_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for presign in [None, Some(60)] {
        let mut input = OracleInput::new(
            if presign.is_some() { "GET" } else { "POST" },
            "Action=GetCallerIdentity&Version=2011-06-15",
            &[("host", "sts.amazonaws.com")],
            b"",
        );
        input.time = 1_704_067_200; // 20240101T000000Z, the harness's fixed X-Amz-Date
        input.token = Some("tok".into());
        input.presign_expires = presign;
        let (o, _) = oracle_sign(&input, SECRET);
        let mut data = Vec::new();
        if presign.is_some() {
            data.push(0b110010);
            data.extend_from_slice(b"\n");
            data.extend_from_slice(o.query.as_bytes());
            data.extend_from_slice(b"\ntok\n");
        } else {
            data.push(0b010111);
            data.extend_from_slice(o.headers["authorization"].as_bytes());
            data.extend_from_slice(b"\n");
            data.extend_from_slice(o.query.as_bytes());
            data.extend_from_slice(b"\ntok\n");
        }
        seeds.push(data);
    }
    seeds
}

#[test]
fn corpus_replays_without_panic() {
    let files = corpus();
    assert!(files.len() >= 10, "seed corpus missing: {}", files.len());
    for (name, data) in &files {
        let result = std::panic::catch_unwind(|| parse_one(data));
        assert!(result.is_ok(), "panic on corpus file {name}");
    }
    for seed in signed_seeds() {
        parse_one(&seed);
    }
}

#[test]
fn signed_seed_verifies_in_harness_shape() {
    // the harness input for a real signed request really gets to a successful verify
    let seeds = signed_seeds();
    let header_seed = &seeds[0];
    let mut lines = header_seed[1..].split(|&b| b == b'\n');
    let authz = lines.next().unwrap();
    let query = std::str::from_utf8(lines.next().unwrap()).unwrap();
    let headers = header_map(&[
        ("host", "sts.amazonaws.com"),
        ("authorization", std::str::from_utf8(authz).unwrap()),
        ("x-amz-date", "20240101T000000Z"),
        ("x-amz-security-token", "tok"),
    ]);
    let o = Owned::new("POST", query, headers, b"");
    assert!(o.verifies(SECRET));
}

/// xorshift64*, deterministic.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap()
    }
}

#[test]
fn mutated_corpus_never_panics() {
    let mut inputs: Vec<Vec<u8>> = corpus().into_iter().map(|(_, d)| d).collect();
    inputs.extend(signed_seeds());
    let interesting: &[&[u8]] = &[
        b"=",
        b",",
        b"/",
        b"%",
        b"+",
        b"&",
        b" ",
        b"\n",
        b"\xff",
        b"\xc3\xa9",
        b"AWS4-",
        b"Signature=",
        b"X-Amz-Algorithm=",
        b";",
        b"%2F",
        b"aws4_request",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let mut data = inputs[rng.below(inputs.len())].clone();
        for _ in 0..=rng.below(4) {
            match rng.below(4) {
                0 if !data.is_empty() => {
                    let i = rng.below(data.len());
                    data[i] = u8::try_from(rng.below(256)).unwrap();
                }
                1 if !data.is_empty() => {
                    let i = rng.below(data.len());
                    data.remove(i);
                }
                2 => {
                    let i = rng.below(data.len() + 1);
                    let piece = interesting[rng.below(interesting.len())];
                    data.splice(i..i, piece.iter().copied());
                }
                _ => {
                    let i = rng.below(data.len() + 1);
                    data.truncate(i);
                }
            }
        }
        let result = std::panic::catch_unwind(|| parse_one(&data));
        assert!(result.is_ok(), "panic on input {data:?}");
    }
}
