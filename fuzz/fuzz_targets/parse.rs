//! Arbitrary bytes as `Authorization` header, query string, `Date`/`X-Amz-Security-Token` header and body,
//! through `stsd_sigv4::parse` and every later check. Input layout: `stsd_sigv4::fuzz::parse_one`.
//! Seeds: `crates/stsd-sigv4/tests/corpus/` (replayed on stable by the crate's tests).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stsd_sigv4::fuzz::parse_one(data);
});
