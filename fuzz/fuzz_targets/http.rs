//! Bytes a client sends on one connection, served in-process (no sockets) by the server's HTTP settings and
//! request handling against a real store. Harness: `stsd::fuzz::fuzz_one`. Seeds: `fuzz/corpus/http/`
//! (replayed on stable by the module's tests).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stsd::fuzz::fuzz_one(data);
});
