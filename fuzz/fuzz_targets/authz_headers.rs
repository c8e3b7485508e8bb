//! The authorizer's reading of a forward-auth check: proxy headers, `X-Forwarded-For`, host and path
//! matching against a fixed API table, route globs. Harness: `stsd::authorizer::fuzz::fuzz_one`.
//! Seeds: `fuzz/corpus/authz_headers/` (replayed on stable by the module's tests).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stsd::authorizer::fuzz::fuzz_one(data);
});
