//! A form body through `stsd_proto::sts::StsAction::parse` (its `Action`, validation).
//! Harness: `stsd_proto::fuzz::sts_action_one`. Seeds: `fuzz/corpus/sts_action/` (replayed on stable by the crate's tests).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stsd_proto::fuzz::sts_action_one(data);
});
