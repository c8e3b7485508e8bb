//! Vectors signed by the `aws-sigv4` crate (an independent implementation) must verify, and our signer
//! must produce exactly what aws-sigv4 produces for the same inputs.

use std::collections::BTreeMap;

use stsd_sigv4::{AuthKind, SignParams, presign_query, sign_headers};

use crate::common::*;

const TOKEN: &str =
    "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+token/with=special+chars";

fn sts_post_bodies() -> [&'static [u8]; 4] {
    [
        b"Action=GetSessionToken&Version=2011-06-15",
        b"Action=GetSessionToken&Version=2011-06-15&DurationSeconds=3600&SerialNumber=arn%3Aaws%3Aiam%3A%3A123456789012%3Amfa%2Fuser&TokenCode=123456",
        b"Action=GetCallerIdentity&Version=2011-06-15",
        b"",
    ]
}

#[test]
fn aws_sigv4_header_signed_sts_posts_verify() {
    for body in sts_post_bodies() {
        for token in [None, Some(TOKEN)] {
            for region in ["us-east-1", "eu-central-1"] {
                let headers = [
                    ("host", HOST),
                    ("content-type", FORM),
                    ("user-agent", "aws-sdk-rust/1.3 os/linux"),
                    (
                        "amz-sdk-invocation-id",
                        "7c4e1b2a-0000-4000-8000-000000000000",
                    ),
                    ("amz-sdk-request", "attempt=1; max=3"),
                    ("content-length", "41"),
                ];
                let mut input = OracleInput::new("POST", "", &headers, body);
                input.token = token.map(str::to_owned);
                input.region = region.into();
                let (o, _) = oracle_sign(&input, SECRET);
                let auth = o
                    .check_all(T0 + 120, "sts", region, SECRET)
                    .unwrap_or_else(|e| panic!("{body:?} {token:?} {region}: {e:?}"));
                assert_eq!(auth.kind, AuthKind::Header);
                assert_eq!(auth.security_token.as_deref(), token);
                // user-agent is excluded from signing by aws-sigv4; the rest are signed
                assert!(!auth.signed_headers().any(|h| h == "user-agent"));
                assert!(auth.signed_headers().any(|h| h == "amz-sdk-request"));
                assert!(!o.verifies("wrong"));
            }
        }
    }
}

#[test]
fn aws_sigv4_presigned_get_caller_identity_verifies() {
    for token in [None, Some(TOKEN)] {
        for expires in [60, 900, 604_800] {
            let mut input = OracleInput::new(
                "GET",
                "Action=GetCallerIdentity&Version=2011-06-15",
                &[("host", HOST)],
                b"",
            );
            input.token = token.map(str::to_owned);
            input.presign_expires = Some(expires);
            let (o, _) = oracle_sign(&input, SECRET);
            let auth = o
                .check_all(T0 - 600, "sts", "us-east-1", SECRET)
                .unwrap_or_else(|e| panic!("{token:?} {expires}: {e:?} {}", o.query));
            assert_eq!(auth.kind, AuthKind::Presigned);
            assert_eq!(auth.signed_headers().collect::<Vec<_>>(), ["host"]);
            assert_eq!(auth.security_token.as_deref(), token);
            assert!(!o.verifies("wrong"));
        }
    }
}

#[test]
fn aws_sigv4_presigned_with_extra_signed_header_verifies() {
    // EKS-style token: x-k8s-aws-id is a signed header of the presigned URL
    let mut input = OracleInput::new(
        "GET",
        "Action=GetCallerIdentity&Version=2011-06-15",
        &[("host", HOST), ("x-k8s-aws-id", "my-cluster")],
        b"",
    );
    input.presign_expires = Some(60);
    let (o, _) = oracle_sign(&input, SECRET);
    let auth = o.check_all(T0, "sts", "us-east-1", SECRET).unwrap();
    assert_eq!(
        auth.signed_headers().collect::<Vec<_>>(),
        ["host", "x-k8s-aws-id"]
    );
    let mut m = o.clone();
    m.headers
        .insert("x-k8s-aws-id", http::HeaderValue::from_static("other"));
    assert!(!m.verifies(SECRET));
}

#[test]
fn our_sign_headers_equals_aws_sigv4() {
    for body in sts_post_bodies() {
        for token in [None, Some(TOKEN)] {
            for (query, time) in [
                ("", T0),
                ("Foo=b%20r&A=1", T0 + 86_399),
                ("x=%E2%82%AC+y", 951_782_400),
            ] {
                let headers = [("Host", HOST), ("Content-Type", FORM)];
                let mut input = OracleInput::new("POST", query, &headers, body);
                input.token = token.map(str::to_owned);
                input.time = time;
                let (oracle, _) = oracle_sign(&input, SECRET);

                let ours = sign_headers(&SignParams {
                    method: "POST",
                    path: "/",
                    query,
                    headers: &headers,
                    body,
                    access_key_id: AKID,
                    secret_access_key: SECRET,
                    security_token: token,
                    region: "us-east-1",
                    service: "sts",
                    unix_time: time,
                });
                let ours: BTreeMap<_, _> = ours.into_iter().collect();
                for name in ["authorization", "x-amz-date", "x-amz-security-token"] {
                    assert_eq!(
                        ours.get(name).map(String::as_str),
                        oracle.headers.get(name).map(|v| v.to_str().unwrap()),
                        "{name} for {body:?} {token:?} {query:?}"
                    );
                }
                // and our verifier accepts our own output
                let mut all: Vec<(String, String)> = headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect();
                all.extend(ours);
                let o = Owned::new("POST", query, header_map(&all), body);
                o.check_all(time, "sts", "us-east-1", SECRET).unwrap();
            }
        }
    }
}

fn params_of(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[test]
fn our_presign_query_equals_aws_sigv4() {
    for token in [None, Some(TOKEN)] {
        for expires in [60u32, 3600] {
            let query = "Action=GetCallerIdentity&Version=2011-06-15";
            let mut input = OracleInput::new("GET", query, &[("host", HOST)], b"");
            input.token = token.map(str::to_owned);
            input.presign_expires = Some(u64::from(expires));
            let (oracle, oracle_sig) = oracle_sign(&input, SECRET);

            let ours = presign_query(
                &SignParams {
                    method: "GET",
                    path: "/",
                    query,
                    headers: &[("host", HOST)],
                    body: b"",
                    access_key_id: AKID,
                    secret_access_key: SECRET,
                    security_token: token,
                    region: "us-east-1",
                    service: "sts",
                    unix_time: T0,
                },
                expires,
            );
            assert_eq!(params_of(&ours), params_of(&oracle.query), "{ours}");
            assert!(ours.ends_with(&format!("&X-Amz-Signature={oracle_sig}")));
            // botocore order: operation params, then the auth params, signature last
            let keys: Vec<String> = ours
                .split('&')
                .map(|kv| kv.split('=').next().unwrap().to_owned())
                .collect();
            let mut expected = vec![
                "Action",
                "Version",
                "X-Amz-Algorithm",
                "X-Amz-Credential",
                "X-Amz-Date",
                "X-Amz-Expires",
                "X-Amz-SignedHeaders",
            ];
            if token.is_some() {
                expected.push("X-Amz-Security-Token");
            }
            expected.push("X-Amz-Signature");
            assert_eq!(keys, expected);

            let o = Owned::new("GET", &ours, header_map(&[("host", HOST)]), b"");
            o.check_all(T0, "sts", "us-east-1", SECRET).unwrap();
        }
    }
}
