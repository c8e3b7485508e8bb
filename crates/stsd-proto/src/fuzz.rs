//! Harnesses shared by the cargo-fuzz targets in `fuzz/` and the stable tests that replay their seed
//! corpora (`fuzz/corpus/<target>/`, see `tests/fuzz_corpus.rs`). Each must never panic, whatever the
//! input; the `assert!`s state properties that must hold for every input.

use crate::iam::IamAction;
use crate::request::{IAM_NS, STS_NS};
use crate::sts::StsAction;
use crate::xml::{error_body, parse, parse_error};
use crate::{ApiError, Params};

/// Every refusal of a parser is a client error that renders as an `ErrorResponse` our own reader reads
/// back with the same code and message.
fn check_refusal(e: &ApiError, namespace: &str) {
    assert!((400..500).contains(&e.status), "{e}");
    let body = error_body(e, namespace, "00000000-0000-4000-8000-000000000000");
    let (code, message) = parse_error(&body).unwrap_or_else(|| panic!("unreadable: {body}"));
    assert_eq!(code, e.code);
    assert_eq!(message, e.message.trim());
}

/// `params`: input = query string, optionally `\n` and a form body. Decoding never yields an empty name
/// and agrees with `form_urlencoded` on the query part.
pub fn params_one(data: &[u8]) {
    let (query, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let mut p = Params::parse(query);
    let want: Vec<(String, String)> = form_urlencoded::parse(query)
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(p.pairs(), want.as_slice());
    if let Some(body) = body {
        p.extend_from(body);
    }
    assert!(p.pairs().iter().all(|(k, _)| !k.is_empty()));
    if let Some(dup) = p.first_duplicate() {
        assert!(p.pairs().iter().filter(|(k, _)| k == dup).count() >= 2);
        check_refusal(&ApiError::duplicate_parameter(dup), STS_NS);
    }
    if let Err(e) = crate::request::action_and_version(&p) {
        check_refusal(&e, STS_NS);
    }
}

/// `sts_action`: input = a form body. `StsAction::parse` of its `Action` either gives that action or a
/// renderable client error.
pub fn sts_action_one(data: &[u8]) {
    let p = Params::parse(data);
    let action = p.get("Action").unwrap_or("GetSessionToken");
    match StsAction::parse(action, &p) {
        Ok(a) => assert_eq!(a.name(), action),
        Err(e) => check_refusal(&e, STS_NS),
    }
}

/// `iam_action`: input = a form body. `IamAction::parse` either gives that action, which survives a
/// round trip through its own parameters (what `stsd admin --endpoint-url` sends), or a renderable client
/// error.
pub fn iam_action_one(data: &[u8]) {
    let p = Params::parse(data);
    let action = p.get("Action").unwrap_or("CreateUser");
    match IamAction::parse(action, &p) {
        Ok(a) => {
            assert_eq!(a.name(), action);
            let again = IamAction::parse(a.name(), &Params::from_pairs(a.to_params()));
            assert!(again.as_ref() == Ok(&a), "round trip changed {action}");
        }
        Err(e) => check_refusal(&e, IAM_NS),
    }
}

/// `xml`: input = a document. The reader never panics; a document that reads has a named root, and any
/// text written by the writer reads back (trimmed) as written.
pub fn xml_one(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(root) = parse(text) {
        assert!(!root.name.is_empty());
    }
    let _ = parse_error(text);
    check_refusal(&ApiError::validation(text), STS_NS);
}
