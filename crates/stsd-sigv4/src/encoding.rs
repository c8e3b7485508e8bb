//! Query-string handling: raw `k=v` pairs, form decoding (`+` is a space) and AWS URI encoding.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};

/// Everything but the unreserved set `A-Za-z0-9-_.~` is percent-encoded (uppercase hex).
pub(crate) const AWS_URI_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

const UNRESERVED: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        i += 1;
    }
    t
};

/// `A-Za-z0-9-_.~`
pub(crate) fn is_unreserved(b: u8) -> bool {
    UNRESERVED[usize::from(b)]
}

/// `s.split(sep as char)` for an ASCII separator, found by a plain byte scan: the short strings of a
/// request (credential scope, signed-header list, Authorization elements) are split in fewer
/// instructions than by `str::split`'s memchr search, whose set-up dominates at these lengths. Byte
/// positions of an ASCII byte are character boundaries, so every piece is a `&str` of `s`.
pub(crate) fn split_ascii(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    debug_assert!(sep.is_ascii());
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.bytes().position(|b| b == sep) {
            Some(i) => {
                rest = r.get(i + 1..);
                r.get(..i)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// The raw `(key, value)` pairs of a query string, as `form_urlencoded::parse` sees them: split on `&`,
/// empty segments skipped, split at the first `=` (no `=` means an empty value). Nothing is decoded.
pub(crate) fn raw_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|s| s.split_once('=').unwrap_or((s, "")))
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Form-decodes a raw query component: `+` becomes a space, `%XX` a byte; a `%` not followed by two hex
/// digits stays literal. Invalid UTF-8 is replaced by U+FFFD (as the URL standard's form decoder does).
pub(crate) fn form_decode(raw: &str) -> Cow<'_, str> {
    let b = raw.as_bytes();
    if !b.iter().any(|&c| c == b'%' || c == b'+') {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                b.get(i + 1).copied().and_then(hex_val),
                b.get(i + 2).copied().and_then(hex_val),
            ) {
                (Some(h), Some(l)) => {
                    out.push((h << 4) | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// AWS URI-encodes `s` (unreserved characters kept, every other byte `%XX`, uppercase).
pub(crate) fn uri_encode(s: &str) -> Cow<'_, str> {
    percent_encode(s.as_bytes(), AWS_URI_ENCODE).into()
}

/// Whether decoding then AWS URI-encoding `raw` gives `raw` back: only unreserved characters and `%XX`
/// escapes (uppercase hex) of ASCII bytes that must be escaped. What SDKs send is normally canonical.
fn is_canonical(raw: &[u8]) -> bool {
    fn upper_hex(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if is_unreserved(c) {
            i += 1;
            continue;
        }
        if c != b'%' {
            return false;
        }
        let decoded = match (
            raw.get(i + 1).copied().and_then(upper_hex),
            raw.get(i + 2).copied().and_then(upper_hex),
        ) {
            (Some(h), Some(l)) => (h << 4) | l,
            _ => return false,
        };
        // an escaped unreserved character is re-encoded bare; non-ASCII needs a UTF-8 check: slow path
        if decoded >= 0x80 || is_unreserved(decoded) {
            return false;
        }
        i += 3;
    }
    true
}

/// The canonical form of a raw query component: decoded, then AWS URI-encoded.
pub(crate) fn canonical_component(raw: &str) -> Cow<'_, str> {
    if is_canonical(raw.as_bytes()) {
        return Cow::Borrowed(raw);
    }
    match form_decode(raw) {
        Cow::Borrowed(s) => uri_encode(s),
        Cow::Owned(s) => Cow::Owned(uri_encode(&s).into_owned()),
    }
}

/// Whether the raw query key decodes to `name`.
pub(crate) fn key_is(raw: &str, name: &str) -> bool {
    raw == name || (raw.len() > name.len() && form_decode(raw) == name)
}

/// The canonical query string of `query` (pairs canonicalised, sorted by key then value, joined with `&`),
/// handed to `sink` piece by piece. `skip_signature` drops `X-Amz-Signature` (presigned requests).
pub(crate) fn canonical_query(query: &str, skip_signature: bool, mut sink: impl FnMut(&[u8])) {
    if query.is_empty() {
        return;
    }
    let mut pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = raw_pairs(query)
        .filter(|(k, _)| !(skip_signature && key_is(k, crate::X_AMZ_SIGNATURE)))
        .map(|(k, v)| (canonical_component(k), canonical_component(v)))
        .collect();
    pairs.sort_unstable();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            sink(b"&");
        }
        sink(k.as_bytes());
        sink(b"=");
        sink(v.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(q: &str, skip: bool) -> String {
        let mut out = Vec::new();
        canonical_query(q, skip, |b| out.extend_from_slice(b));
        String::from_utf8(out).unwrap_or_default()
    }

    proptest::proptest! {
        #[test]
        fn split_ascii_is_str_split(s in "[a-c/;,=é ]{0,24}", sep in proptest::sample::select(vec![b'/', b';', b',', b'=', b'a'])) {
            let ours: Vec<&str> = split_ascii(&s, sep).collect();
            let std: Vec<&str> = s.split(char::from(sep)).collect();
            proptest::prop_assert_eq!(ours, std);
        }
    }

    #[test]
    fn split_ascii_keeps_empty_pieces() {
        assert_eq!(split_ascii("", b'/').collect::<Vec<_>>(), [""]);
        assert_eq!(
            split_ascii("/a//b/", b'/').collect::<Vec<_>>(),
            ["", "a", "", "b", ""]
        );
    }

    #[test]
    fn raw_pairs_split() {
        let v: Vec<_> = raw_pairs("a=1&&b&c=&=d&e=f=g&").collect();
        assert_eq!(
            v,
            [("a", "1"), ("b", ""), ("c", ""), ("", "d"), ("e", "f=g")]
        );
        assert_eq!(raw_pairs("").count(), 0);
    }

    #[test]
    fn decode() {
        assert_eq!(form_decode("abc"), "abc");
        assert_eq!(form_decode("a+b"), "a b");
        assert_eq!(form_decode("a%20b%2b"), "a b+");
        assert_eq!(form_decode("%C3%A9%e2%82%ac"), "é€");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz%4"), "%zz%4");
        assert_eq!(form_decode("%FF"), "\u{FFFD}");
        assert_eq!(form_decode("a%00b"), "a\0b");
    }

    #[test]
    fn encode() {
        assert_eq!(
            uri_encode("AZaz09-_.~ /+=&%é*"),
            "AZaz09-_.~%20%2F%2B%3D%26%25%C3%A9%2A"
        );
    }

    #[test]
    fn canonical_fast_path_agrees_with_slow_path() {
        for raw in [
            "",
            "abc",
            "a%2Fb",
            "a%2fb",
            "%41",
            "%7E",
            "%20",
            "%2B%3D",
            "%C3%A9",
            "%FF",
            "%",
            "%2",
            "%G0",
            "a+b",
            "a*b",
            "AKID%2F20240101%2Fus-east-1%2Fsts%2Faws4_request",
            "%00",
            "%7F",
        ] {
            let slow = match form_decode(raw) {
                Cow::Borrowed(s) => uri_encode(s).into_owned(),
                Cow::Owned(s) => uri_encode(&s).into_owned(),
            };
            assert_eq!(canonical_component(raw), slow, "{raw:?}");
            // the fast path may be conservative (non-ASCII), never wrong
            if is_canonical(raw.as_bytes()) {
                assert_eq!(raw, slow, "{raw:?}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(256))]
        #[test]
        fn fast_path_never_changes_the_result(raw in "[A-Za-z0-9%+=._~*/ -]{0,12}|(%[0-9A-Fa-f]{2}){1,4}") {
            let slow = match form_decode(&raw) {
                Cow::Borrowed(s) => uri_encode(s).into_owned(),
                Cow::Owned(s) => uri_encode(&s).into_owned(),
            };
            proptest::prop_assert_eq!(canonical_component(&raw), slow);
        }
    }

    #[test]
    fn canonical_components() {
        assert_eq!(canonical_component("abc"), "abc");
        assert_eq!(canonical_component("a+b"), "a%20b");
        assert_eq!(canonical_component("a%2fb"), "a%2Fb");
        assert_eq!(canonical_component("a%7Eb"), "a~b");
        assert_eq!(canonical_component("a*b"), "a%2Ab");
        assert_eq!(canonical_component("%"), "%25");
    }

    #[test]
    fn canonical_query_sorts_by_encoded_key_then_value() {
        assert_eq!(canon("", false), "");
        assert_eq!(
            canon("Version=2011-06-15&Action=GetCallerIdentity", false),
            "Action=GetCallerIdentity&Version=2011-06-15"
        );
        assert_eq!(canon("b=2&a=2&a=1&a", false), "a=&a=1&a=2&b=2");
        // sorting happens on the encoded form: '%' (0x25) sorts before 'A' (0x41), '_' after 'Z'
        assert_eq!(canon("A=1&%21=2&_=3&Z=4", false), "%21=2&A=1&Z=4&_=3");
        assert_eq!(canon("k=a+b&k=a%20a", false), "k=a%20a&k=a%20b");
    }

    #[test]
    fn canonical_query_skips_signature_only_when_asked() {
        let q = "X-Amz-Signature=abc&Action=GetCallerIdentity&X-Amz-Date=20200101T000000Z";
        assert_eq!(
            canon(q, true),
            "Action=GetCallerIdentity&X-Amz-Date=20200101T000000Z"
        );
        assert_eq!(
            canon(q, false),
            "Action=GetCallerIdentity&X-Amz-Date=20200101T000000Z&X-Amz-Signature=abc"
        );
        // an encoded spelling of the name is the same parameter
        assert_eq!(canon("X%2DAmz-Signature=abc&a=1", true), "a=1");
    }

    #[test]
    fn key_matching() {
        assert!(key_is("X-Amz-Algorithm", "X-Amz-Algorithm"));
        assert!(key_is("X%2DAmz%2DAlgorithm", "X-Amz-Algorithm"));
        assert!(!key_is("x-amz-algorithm", "X-Amz-Algorithm"));
        assert!(!key_is("X-Amz-Algorithm2", "X-Amz-Algorithm"));
    }
}
