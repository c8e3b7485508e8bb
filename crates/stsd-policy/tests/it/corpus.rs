//! Stable mirror of the `policy` fuzz target: replays every seed in `fuzz/corpus/policy/` plus
//! deterministic mutations (truncations, byte flips, splices) through the same harness.

use std::path::PathBuf;

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/policy");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn corpus_replays() {
    let seeds = seeds();
    assert!(seeds.len() >= 5, "corpus too small: {}", seeds.len());
    for (name, data) in &seeds {
        eprintln!("{name}");
        stsd_policy::fuzz::policy_one(data);
    }
}

#[test]
fn corpus_mutations() {
    let seeds = seeds();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for (_, data) in &seeds {
        for cut in (0..data.len()).step_by(7) {
            stsd_policy::fuzz::policy_one(&data[..cut]);
        }
        for _ in 0..300 {
            let mut d = data.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % d.len().max(1);
                if let Some(b) = d.get_mut(i) {
                    *b = b"{}[]\":,*?$\\ ab01"[(next() % 16) as usize];
                }
            }
            stsd_policy::fuzz::policy_one(&d);
        }
    }
    // Deep nesting is refused, not recursed into.
    stsd_policy::fuzz::policy_one("[".repeat(100_000).as_bytes());
    stsd_policy::fuzz::policy_one(
        format!("{{\"Statement\":{}", "{\"a\":".repeat(50_000)).as_bytes(),
    );
}

/// Many keys, statements and condition keys: parsing stays fast (no quadratic checks).
#[test]
fn large_documents_parse_quickly() {
    let start = std::time::Instant::now();
    let keys: Vec<String> = (0..12_000).map(|i| format!("\"k{i}\":0")).collect();
    let doc = format!("{{{}}}", keys.join(","));
    assert!(stsd_policy::Policy::parse(&doc, stsd_policy::PolicyKind::Identity).is_err());
    let stmts: Vec<String> = (0..2_000)
        .map(|i| format!(r#"{{"Sid":"S{i}","Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{{"StringEquals":{{"k:a{i}":"v"}}}}}}"#))
        .collect();
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        stmts.join(",")
    );
    let p = stsd_policy::Policy::parse(&doc, stsd_policy::PolicyKind::Identity).unwrap();
    assert_eq!(p.condition_keys().len(), 2_000);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}
