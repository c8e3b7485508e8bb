//! Vectors produced by botocore 1.43.11 (the Python SDK behind boto3 and the AWS CLI): STS clients created
//! with access key `AKIDEXAMPLE`, the documentation secret, and the clock frozen at 2024-05-06T07:08:09Z.
//! Presigned URLs come from `generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")`
//! (endpoint `https://sts.amazonaws.com`); header-signed POSTs were captured at `before-send` (region
//! `eu-west-1`, so host `sts.eu-west-1.amazonaws.com`, which urllib3 adds from the URL).

use stsd_sigv4::{AuthKind, SignParams, presign_query, sign_headers};

use crate::common::*;

const TOKEN: &str =
    "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+token/with=special+chars";

const PRESIGNED: [(Option<&str>, &str); 2] = [
    (
        None,
        "Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240506%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20240506T070809Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=11f11c094428a0fc48ccc45221b160aae88df73aaedddad1e999e0b2d967f78c",
    ),
    (
        Some(TOKEN),
        "Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240506%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20240506T070809Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLE%2F%2F%2F%2F%2F%2F%2F%2F%2F%2FwEaCXVzLWVhc3QtMSJHMEUCIQD%2Btoken%2Fwith%3Dspecial%2Bchars&X-Amz-Signature=fadd091e96bc98ecf1d1a96c5b4615bedc9f1ce89ef5f0087d1504c39162074a",
    ),
];

const GCI: &str = "Action=GetCallerIdentity&Version=2011-06-15";
const GST: &str = "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=3600&SerialNumber=arn%3Aaws%3Aiam%3A%3A123456789012%3Amfa%2Fuser&TokenCode=123456";

/// (token, body, Authorization as botocore sent it)
const HEADER_SIGNED: [(Option<&str>, &str, &str); 4] = [
    (
        None,
        GCI,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240506/eu-west-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=df22af175d9073efb0268a752cd843f10e4bfadb37c94b44f215f3339a01bc5f",
    ),
    (
        None,
        GST,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240506/eu-west-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=c8a761af5ee5462d3d27d02496284e0bfe875f5308fdd942c4aae54935fc2b71",
    ),
    (
        Some(TOKEN),
        GCI,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240506/eu-west-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=62eb676b5ba83937a466745c4148c394d62543afa7b2eda1cb4ec23f867caeaa",
    ),
    (
        Some(TOKEN),
        GST,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240506/eu-west-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=a54a6cc18a14152ab0a0e93a8cac5707319bde0e0b6373412d22bcd9d75e31e8",
    ),
];

const EU_HOST: &str = "sts.eu-west-1.amazonaws.com";

#[test]
fn botocore_presigned_urls_verify() {
    for (token, query) in PRESIGNED {
        let o = Owned::new("GET", query, header_map(&[("host", HOST)]), b"");
        let auth = o.check_all(T0, "sts", "us-east-1", SECRET).unwrap();
        assert_eq!(auth.kind, AuthKind::Presigned);
        assert_eq!(auth.security_token.as_deref(), token);
        assert!(!o.verifies("wrong"));
    }
}

#[test]
fn our_presign_query_is_byte_identical_to_botocore() {
    for (token, query) in PRESIGNED {
        let ours = presign_query(
            &SignParams {
                method: "GET",
                path: "/",
                query: "Action=GetCallerIdentity&Version=2011-06-15",
                headers: &[("host", HOST)],
                body: b"",
                access_key_id: AKID,
                secret_access_key: SECRET,
                security_token: token,
                region: "us-east-1",
                service: "sts",
                unix_time: T0,
            },
            60,
        );
        assert_eq!(ours, query);
    }
}

fn botocore_headers(token: Option<&str>, body: &str, authorization: &str) -> Vec<(String, String)> {
    let mut h = vec![
        ("Host".to_owned(), EU_HOST.to_owned()),
        ("Content-Type".to_owned(), FORM.to_owned()),
        (
            "User-Agent".to_owned(),
            "Botocore/1.43.11 ua/2.1 os/linux md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython cfg/retry-mode#legacy".to_owned(),
        ),
        ("X-Amz-Date".to_owned(), "20240506T070809Z".to_owned()),
    ];
    if let Some(t) = token {
        h.push(("X-Amz-Security-Token".to_owned(), t.to_owned()));
    }
    h.push(("Authorization".to_owned(), authorization.to_owned()));
    h.push((
        "amz-sdk-invocation-id".to_owned(),
        "906e32a3-2869-4d0a-9d5f-d81c2d6cfaeb".to_owned(),
    ));
    h.push(("amz-sdk-request".to_owned(), "attempt=1".to_owned()));
    h.push(("Content-Length".to_owned(), body.len().to_string()));
    h
}

#[test]
fn botocore_header_signed_posts_verify() {
    for (token, body, authorization) in HEADER_SIGNED {
        let o = Owned::new(
            "POST",
            "",
            header_map(&botocore_headers(token, body, authorization)),
            body.as_bytes(),
        );
        let auth = o.check_all(T0, "sts", "eu-west-1", SECRET).unwrap();
        assert_eq!(auth.kind, AuthKind::Header);
        assert_eq!(auth.security_token.as_deref(), token);
        assert_eq!(auth.region(), "eu-west-1");
        // us-east-1 only: botocore's regional request is out of scope
        let e = auth
            .check_scope("sts", Some(&["us-east-1".to_owned()]))
            .unwrap_err();
        assert_eq!(
            e.message(),
            "Credential should be scoped to a valid region. "
        );
        let mut tampered = o.clone();
        tampered.body = body
            .replace("3600", "3601")
            .replace("2011", "2012")
            .into_bytes();
        assert!(!tampered.verifies(SECRET));
    }
}

#[test]
fn our_sign_headers_equals_botocore() {
    for (token, body, authorization) in HEADER_SIGNED {
        let headers = [("Host", EU_HOST), ("Content-Type", FORM)];
        let ours = sign_headers(&SignParams {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: body.as_bytes(),
            access_key_id: AKID,
            secret_access_key: SECRET,
            security_token: token,
            region: "eu-west-1",
            service: "sts",
            unix_time: T0,
        });
        assert_eq!(
            ours[0],
            ("authorization".to_owned(), authorization.to_owned())
        );
    }
}
