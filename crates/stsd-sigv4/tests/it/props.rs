//! Property tests against the aws-sigv4 oracle: random requests it signs must verify; changing one byte of
//! the body, a signed header value, the query or the signature must not (unless aws-sigv4 itself computes the
//! same signature for the changed query, i.e. the change is not semantic).

use std::fmt::Write as _;

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use stsd_sigv4::{SignParams, presign_query, sign_headers_with};

use crate::common::*;

/// Headers aws-sigv4 must not be given, or that would clash with the authentication itself.
const RESERVED: &[&str] = &[
    "host",
    "x-amz-date",
    "x-amz-security-token",
    "authorization",
];
/// Headers aws-sigv4 leaves unsigned.
const UNSIGNED_BY_ORACLE: &[&str] = &["user-agent", "transfer-encoding", "x-amzn-trace-id"];

#[derive(Debug, Clone)]
struct QParam {
    key: String,
    value: String,
    key_only: bool,
    style: u8,
}

fn encode_component(s: &str, style: u8) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b == b' ' {
            out.push_str(if style & 1 != 0 { "+" } else { "%20" });
        } else if ((b.is_ascii_alphanumeric() || b"-_.~".contains(&b)) && style & 4 == 0)
            || (style & 8 != 0 && b"!*'(),;:@/?$".contains(&b))
        {
            // unreserved characters kept (unless style bit 2), some sub-delimiters kept raw (style bit 3)
            out.push(char::from(b));
        } else if style & 2 != 0 {
            let _ = write!(out, "%{b:02x}");
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn raw_query(params: &[QParam]) -> String {
    params
        .iter()
        .map(|p| {
            let k = encode_component(&p.key, p.style);
            if p.key_only {
                k
            } else {
                format!("{k}={}", encode_component(&p.value, p.style >> 4))
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn qparam() -> impl Strategy<Value = QParam> {
    (
        prop_oneof![
            select(vec!["a", "Action", "k", "A", "_", "z~"]).prop_map(str::to_owned),
            "(?s).{0,8}",
        ],
        prop_oneof![Just(String::new()), "(?s).{0,10}", "[a-z ]{0,6}"],
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(|(key, value, key_only, style)| QParam {
            value: if key_only { String::new() } else { value },
            key,
            key_only: key_only && !style.is_multiple_of(3),
            style,
        })
}

fn header_value() -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof!["[!-~]{1,6}", " {1,4}"], 0..6).prop_map(|v| v.concat())
}

fn header() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            "[a-zA-Z][a-zA-Z0-9-]{0,12}",
            select(vec![
                "Content-Type",
                "X-Amz-Target",
                "User-Agent",
                "x-k8s-aws-id",
                "Date"
            ])
            .prop_map(str::to_owned),
        ]
        .prop_filter("reserved", |n| {
            !RESERVED.contains(&n.to_ascii_lowercase().as_str())
        }),
        header_value(),
    )
}

#[derive(Debug, Clone)]
struct Case {
    input: OracleInput,
}

fn case() -> impl Strategy<Value = Case> {
    (
        select(vec!["GET", "POST", "PUT", "DELETE"]),
        prop_oneof![
            Just("/".to_owned()),
            "/[a-z0-9]{1,8}",
            "/[a-z]{1,5}/[A-Za-z0-9_-]{1,5}"
        ],
        prop::collection::vec(qparam(), 0..6),
        prop::collection::vec(header(), 0..6),
        prop::collection::vec(any::<u8>(), 0..200),
        prop::option::of("[A-Za-z0-9+/=]{1,40}"),
        select(vec![
            "us-east-1",
            "eu-west-3",
            "ap-southeast-2",
            "cn-north-1",
        ]),
        select(vec!["sts", "iam", "execute-api"]),
        946_684_800i64..4_102_444_800,
        prop::option::of(1u64..=604_800),
        prop_oneof![Just("Host"), Just("host"), Just("HOST")],
    )
        .prop_map(
            |(
                method,
                path,
                params,
                mut headers,
                body,
                token,
                region,
                service,
                time,
                presign,
                host_name,
            )| {
                headers.insert(0, (host_name.to_owned(), HOST.to_owned()));
                Case {
                    input: OracleInput {
                        method: method.to_owned(),
                        path,
                        query: raw_query(&params),
                        headers,
                        body,
                        token,
                        region: region.to_owned(),
                        service: service.to_owned(),
                        time,
                        presign_expires: presign,
                    },
                }
            },
        )
}

fn accepted(o: &Owned, input: &OracleInput) -> bool {
    o.check_all(input.time, &input.service, &input.region, SECRET)
        .is_ok()
}

/// Rebuilds `o.headers` with value `idx` of header `name` replaced.
fn replace_value(headers: &HeaderMap, name: &str, idx: usize, value: &str) -> HeaderMap {
    let mut out = HeaderMap::new();
    let mut seen = 0;
    for (n, v) in headers {
        if n.as_str() == name {
            let v = if seen == idx {
                HeaderValue::from_str(value).unwrap()
            } else {
                v.clone()
            };
            seen += 1;
            out.append(n.clone(), v);
        } else {
            out.append(n.clone(), v.clone());
        }
    }
    out
}

const URI_SAFE: &[u8] = b"abcXYZ019%+=&-._~";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn oracle_signed_requests_verify(case in case()) {
        let (o, _) = oracle_sign(&case.input, SECRET);
        let result = o.check_all(case.input.time, &case.input.service, &case.input.region, SECRET);
        prop_assert!(result.is_ok(), "{:?}: {:?}", result.err(), o);
        let auth = result.unwrap_or_else(|_| unreachable!());
        prop_assert_eq!(auth.security_token.as_deref(), case.input.token.as_deref());
        // every header aws-sigv4 signs, and only those
        for (name, _) in &case.input.headers {
            let lower = name.to_ascii_lowercase();
            prop_assert_eq!(
                auth.signed_headers().any(|h| h == lower),
                !UNSIGNED_BY_ORACLE.contains(&lower.as_str()),
                "{}", lower
            );
        }
    }

    #[test]
    fn body_byte_flip_is_rejected(case in case(), at in any::<Index>(), x in 1u8..=255) {
        let (mut o, _) = oracle_sign(&case.input, SECRET);
        prop_assert!(accepted(&o, &case.input));
        if o.body.is_empty() {
            o.body.push(x);
        } else {
            let i = at.index(o.body.len());
            o.body[i] ^= x;
        }
        prop_assert!(!accepted(&o, &case.input));
    }

    #[test]
    fn signed_header_byte_flip_is_rejected(
        case in case(),
        which in any::<Index>(),
        value_idx in any::<Index>(),
        at in any::<Index>(),
        c in 0x20u8..=0x7e,
    ) {
        let (o, _) = oracle_sign(&case.input, SECRET);
        let auth = o.parse().unwrap_or_else(|e| panic!("{e:?}"));
        let names: Vec<&str> = auth.signed_headers().collect();
        let name = names[which.index(names.len())];
        let values: Vec<String> = o
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .collect();
        prop_assert!(!values.is_empty(), "signed header {} absent", name);
        let vi = value_idx.index(values.len());
        let mut bytes = values[vi].clone().into_bytes();
        if bytes.is_empty() {
            bytes.push(if c == b' ' { b'x' } else { c });
        } else {
            let i = at.index(bytes.len());
            bytes[i] = if bytes[i] == c { if c == b'~' { b'!' } else { c + 1 } } else { c };
        }
        let mutated = String::from_utf8(bytes).unwrap_or_default();
        let mut m = o.clone();
        m.headers = replace_value(&o.headers, name, vi, &mutated);
        prop_assert!(!accepted(&m, &case.input), "{} {:?} -> {:?}", name, values[vi], mutated);
    }

    #[test]
    fn query_byte_flip_is_rejected_unless_equivalent(
        case in case(),
        at in any::<Index>(),
        c in select(URI_SAFE.to_vec()),
    ) {
        let (o, sig) = oracle_sign(&case.input, SECRET);
        let user_query = &case.input.query;
        let mut bytes = user_query.clone().into_bytes();
        if bytes.is_empty() {
            bytes.push(c);
        } else {
            let i = at.index(bytes.len());
            bytes[i] = if bytes[i] == c { b'q' } else { c };
            if bytes == user_query.as_bytes() {
                bytes.push(b'q');
            }
        }
        let mutated_user = String::from_utf8(bytes).unwrap_or_default();
        // the request as sent: mutated operation params, untouched auth params
        let mut m = o.clone();
        m.query = if case.input.presign_expires.is_some() {
            let auth_part = o.query.strip_prefix(user_query.as_str()).unwrap_or_default();
            let auth_part = auth_part.strip_prefix('&').unwrap_or(auth_part);
            if mutated_user.is_empty() { auth_part.to_owned() } else { format!("{mutated_user}&{auth_part}") }
        } else {
            mutated_user.clone()
        };
        // does aws-sigv4 consider the mutated query the same request?
        let mut mi = case.input.clone();
        mi.query = mutated_user.clone();
        let equivalent = oracle_signature(&mi, SECRET) == sig;
        prop_assert_eq!(
            accepted(&m, &case.input),
            equivalent,
            "{:?} -> {:?}", user_query, mutated_user
        );
    }

    #[test]
    fn signature_nibble_flip_is_rejected(case in case(), at in 0usize..64, d in 1u8..16) {
        let (o, sig) = oracle_sign(&case.input, SECRET);
        let mut bytes = sig.clone().into_bytes();
        let old = u8::from_str_radix(std::str::from_utf8(&bytes[at..=at]).unwrap_or("0"), 16).unwrap_or(0);
        bytes[at] = b"0123456789abcdef"[usize::from((old + d) % 16)];
        let bad = String::from_utf8(bytes).unwrap_or_default();
        let mut m = o.clone();
        if case.input.presign_expires.is_some() {
            m.query = o.query.replace(&format!("X-Amz-Signature={sig}"), &format!("X-Amz-Signature={bad}"));
        } else {
            let a = o.headers["authorization"].to_str().unwrap_or_default().replace(&sig, &bad);
            m.headers.insert("authorization", HeaderValue::from_str(&a).unwrap_or_else(|_| unreachable!()));
        }
        prop_assert!(m.query != o.query || m.headers != o.headers);
        prop_assert!(!accepted(&m, &case.input));
    }

    #[test]
    fn our_signer_matches_oracle(case in case()) {
        let extra: Vec<&str> = case
            .input
            .headers
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !UNSIGNED_BY_ORACLE.contains(&n.to_ascii_lowercase().as_str()))
            .collect();
        let headers: Vec<(&str, &str)> =
            case.input.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let params = SignParams {
            method: &case.input.method,
            path: &case.input.path,
            query: &case.input.query,
            headers: &headers,
            body: &case.input.body,
            access_key_id: AKID,
            secret_access_key: SECRET,
            security_token: case.input.token.as_deref(),
            region: &case.input.region,
            service: &case.input.service,
            unix_time: case.input.time,
        };
        let mut header_input = case.input.clone();
        header_input.presign_expires = None;
        let (oracle, _) = oracle_sign(&header_input, SECRET);
        let ours = sign_headers_with(&params, &extra);
        prop_assert_eq!(
            Some(ours[0].1.as_str()),
            oracle.headers.get("authorization").and_then(|v| v.to_str().ok())
        );

        // presign: host only on both sides
        let mut presign_input = case.input.clone();
        presign_input.headers.retain(|(n, _)| n.eq_ignore_ascii_case("host"));
        let expires = case.input.presign_expires.unwrap_or(900);
        presign_input.presign_expires = Some(expires);
        let (_, oracle_sig) = oracle_sign(&presign_input, SECRET);
        let q = presign_query(&params, u32::try_from(expires).unwrap_or(900));
        prop_assert!(q.ends_with(&format!("X-Amz-Signature={oracle_sig}")), "{}", q);
        let mut o = Owned::new(&case.input.method, &q, header_map(&headers), &case.input.body);
        o.path = case.input.path.clone();
        prop_assert!(accepted(&o, &case.input));
    }
}

#[test]
fn query_encoding_styles_are_understood_by_the_oracle() {
    // sanity check of the generator: every style encodes to something aws-sigv4 accepts and decodes equally
    let p = |style| QParam {
        key: "k é".into(),
        value: "v/+* ~".into(),
        key_only: false,
        style,
    };
    let base = {
        let mut i = OracleInput::new("GET", &raw_query(&[p(0)]), &[("host", HOST)], b"");
        i.time = T0;
        oracle_signature(&i, SECRET)
    };
    for style in 0..=255u8 {
        let mut i = OracleInput::new("GET", &raw_query(&[p(style)]), &[("host", HOST)], b"");
        i.time = T0;
        assert_eq!(
            oracle_signature(&i, SECRET),
            base,
            "style {style}: {}",
            i.query
        );
    }
}
