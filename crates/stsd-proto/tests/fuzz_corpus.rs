//! Stable mirrors of the cargo-fuzz targets `params`, `sts_action`, `iam_action` and `xml`
//! (`fuzz/fuzz_targets/`): each replays its seed corpus (`fuzz/corpus/<target>/`) and cheap mutations of
//! it through the same harness (`stsd_proto::fuzz`), which must never panic.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use stsd_proto::fuzz::{iam_action_one, params_one, sts_action_one, xml_one};

fn replay(target: &str, harness: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        n += 1;
        harness(&data);
        for cut in 0..data.len() {
            harness(&data[..cut]);
        }
        for i in 0..data.len() {
            for b in [b'%', b'&', b'=', b'<', b'>', b'\n', 0xff] {
                let mut d = data.clone();
                d[i] = b;
                harness(&d);
            }
        }
    }
    assert!(n >= 3, "{target}: seed corpus missing ({n} files)");
}

#[test]
fn params_corpus() {
    replay("params", params_one);
}

#[test]
fn sts_action_corpus() {
    replay("sts_action", sts_action_one);
}

#[test]
fn iam_action_corpus() {
    replay("iam_action", iam_action_one);
}

#[test]
fn xml_corpus() {
    replay("xml", xml_one);
}
