//! A session token opened under a fixed key ring, or a raw claims record sealed and opened (mode byte).
//! Harness: `stsd_core::fuzz::token_one`. Seeds: `fuzz/corpus/token/` (replayed on stable by the crate's tests).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stsd_core::fuzz::token_one(data);
});
