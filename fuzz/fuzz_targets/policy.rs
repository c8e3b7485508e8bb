//! Arbitrary bytes as a policy document, parsed as every kind (identity, trust, resource; with and
//! without legacy versions) and evaluated against fixed requests. Harness:
//! `stsd_policy::fuzz::policy_one`. Seeds: `fuzz/corpus/policy/` (replayed on stable by
//! `cargo test -p stsd-policy`, `tests/it/corpus.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stsd_policy::fuzz::policy_one(data);
});
