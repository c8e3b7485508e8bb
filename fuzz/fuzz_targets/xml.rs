//! A document through the XML reader (`stsd_proto::xml::parse`, `parse_error`) and text through the writer.
//! Harness: `stsd_proto::fuzz::xml_one`. Seeds: `fuzz/corpus/xml/` (replayed on stable by the crate's tests).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stsd_proto::fuzz::xml_one(data);
});
