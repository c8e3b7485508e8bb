//! A form body through `stsd_proto::iam::IamAction::parse` and back through `to_params`.
//! Harness: `stsd_proto::fuzz::iam_action_one`. Seeds: `fuzz/corpus/iam_action/` (replayed on stable by the crate's tests).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stsd_proto::fuzz::iam_action_one(data);
});
