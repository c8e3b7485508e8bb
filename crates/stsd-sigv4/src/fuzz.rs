//! Fuzzing harness shared by `fuzz/fuzz_targets/parse.rs` (cargo-fuzz, nightly) and the stable corpus
//! replay test (`tests/corpus_replay.rs`). Not part of the supported API.

use crate::{Request, parse, verify};

/// Runs one fuzz input through [`parse`] and, when it parses, through every later check and [`verify`].
///
/// Input layout: byte 0 selects what is present, the rest is split on `\n` into up to four fields:
/// `authorization`, `query`, `date`, and everything after the third `\n` is the body.
///
/// - bit 0: send field 1 as the `Authorization` header;
/// - bit 1: use field 2 as the raw query string (lossy UTF-8);
/// - bit 2: send `X-Amz-Date: 20240101T000000Z`;
/// - bit 3: send field 3 as the `Date` header;
/// - bit 4: send field 3 as `X-Amz-Security-Token`;
/// - bit 5: method GET instead of POST.
///
/// Never panics for any input (that is what the fuzzer checks).
pub fn parse_one(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut fields = rest.splitn(4, |&b| b == b'\n');
    let authorization = fields.next().unwrap_or_default();
    let query = fields.next().unwrap_or_default();
    let date = fields.next().unwrap_or_default();
    let body = fields.next().unwrap_or_default();

    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::HOST,
        http::HeaderValue::from_static("sts.amazonaws.com"),
    );
    if selector & 1 != 0
        && let Ok(v) = http::HeaderValue::from_bytes(authorization)
    {
        headers.insert(http::header::AUTHORIZATION, v);
    }
    if selector & 4 != 0 {
        headers.insert(
            "x-amz-date",
            http::HeaderValue::from_static("20240101T000000Z"),
        );
    }
    if let Ok(v) = http::HeaderValue::from_bytes(date) {
        if selector & 8 != 0 {
            headers.insert(http::header::DATE, v.clone());
        }
        if selector & 16 != 0 {
            headers.insert("x-amz-security-token", v);
        }
    }
    let query = if selector & 2 != 0 {
        String::from_utf8_lossy(query)
    } else {
        "".into()
    };
    let req = Request {
        method: if selector & 32 != 0 { "GET" } else { "POST" },
        path: "/",
        query: &query,
        headers: &headers,
        body,
    };

    match parse(&req) {
        Ok(auth) => {
            let _ = format!("{auth:?}");
            for now in [0, auth.timestamp, i64::MIN, i64::MAX] {
                if let Err(e) = auth.check_time(now) {
                    let _ = (e.code(), e.status(), e.message());
                }
            }
            let regions = ["us-east-1".to_owned()];
            for regions in [None, Some(&regions[..])] {
                if let Err(e) = auth.check_scope("sts", regions) {
                    let _ = (e.code(), e.status(), e.message());
                }
            }
            let _ = verify(&req, &auth, b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        }
        Err(e) => {
            let _ = (e.code(), e.status(), e.message(), e.to_string());
        }
    }
    let _ = crate::parse_amz_date(&String::from_utf8_lossy(date));
}
