//! Query string, then optionally `\n` and a form body, through `stsd_proto::Params` decoding and the
//! duplicate-name check.
//! Harness: `stsd_proto::fuzz::params_one`. Seeds: `fuzz/corpus/params/` (replayed on stable by the crate's tests).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stsd_proto::fuzz::params_one(data);
});
