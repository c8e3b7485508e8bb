//! A configuration file's text through `stsd::config::parse` and `apply`.
//! Harness: `stsd::config::fuzz_one`. Seeds: `fuzz/corpus/config/` (replayed on stable by the crate's tests).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stsd::config::fuzz_one(data);
});
