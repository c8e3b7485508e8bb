//! One test per rule and per error message.

use http::HeaderValue;
use stsd_sigv4::{
    AuthKind, SigError, SignParams, parse_amz_date, presign_query, sign_headers, sign_headers_with,
    verify,
};

use crate::common::*;

const BODY: &[u8] = b"Action=GetSessionToken&Version=2011-06-15";
const SIG_MSG: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

fn sign_params<'a>(headers: &'a [(&'a str, &'a str)], body: &'a [u8]) -> SignParams<'a> {
    SignParams {
        method: "POST",
        path: "/",
        query: "",
        headers,
        body,
        access_key_id: AKID,
        secret_access_key: SECRET,
        security_token: None,
        region: "us-east-1",
        service: "sts",
        unix_time: T0,
    }
}

/// A POST signed by our signer: host, content-type, x-amz-date (+ token).
fn signed_post(token: Option<&str>) -> Owned {
    let headers = [("Host", HOST), ("Content-Type", FORM)];
    let mut p = sign_params(&headers, BODY);
    p.security_token = token;
    let added = sign_headers(&p);
    let mut all: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.extend(added);
    Owned::new("POST", "", header_map(&all), BODY)
}

fn authorization(o: &Owned) -> String {
    o.headers["authorization"].to_str().unwrap().to_owned()
}

fn with_authorization(o: &Owned, value: &str) -> Owned {
    let mut o = o.clone();
    o.headers
        .insert("authorization", HeaderValue::from_str(value).unwrap());
    o
}

fn presigned_get(token: Option<&str>, expires: u32) -> Owned {
    let headers = [("host", HOST)];
    let mut p = sign_params(&headers, b"");
    p.method = "GET";
    p.query = "Action=GetCallerIdentity&Version=2011-06-15";
    p.security_token = token;
    let q = presign_query(&p, expires);
    Owned::new("GET", &q, header_map(&headers), b"")
}

fn assert_err(e: &SigError, code: &str, status: u16, message: &str) {
    assert_eq!(e.code(), code, "{e:?}");
    assert_eq!(e.status(), status, "{e:?}");
    assert_eq!(e.message(), message, "{e:?}");
}

fn sig_of(o: &Owned) -> String {
    let a = authorization(o);
    a[a.find("Signature=").unwrap() + 10..].to_owned()
}

// ---------------------------------------------------------------- happy paths

#[test]
fn own_header_signature_verifies() {
    for token in [None, Some("FwoGZXIvYXdzEXAMPLETOKEN+/=")] {
        let o = signed_post(token);
        let auth = o.check_all(T0, "sts", "us-east-1", SECRET).unwrap();
        assert_eq!(auth.kind, AuthKind::Header);
        assert_eq!(auth.access_key_id(), AKID);
        assert_eq!(auth.amz_date(), "20240506T070809Z");
        assert_eq!(auth.timestamp, T0);
        assert_eq!(auth.scope_date(), "20240506");
        assert_eq!(auth.region(), "us-east-1");
        assert_eq!(auth.service(), "sts");
        assert_eq!(auth.security_token.as_deref(), token);
        let expected: &[&str] = if token.is_some() {
            &["content-type", "host", "x-amz-date", "x-amz-security-token"]
        } else {
            &["content-type", "host", "x-amz-date"]
        };
        assert_eq!(auth.signed_headers().collect::<Vec<_>>(), expected);
    }
}

#[test]
fn own_presigned_verifies_and_exposes_fields() {
    for token in [None, Some("tok/with+special=chars")] {
        let o = presigned_get(token, 60);
        let auth = o.check_all(T0, "sts", "us-east-1", SECRET).unwrap();
        assert_eq!(auth.kind, AuthKind::Presigned);
        assert_eq!(auth.signed_headers().collect::<Vec<_>>(), ["host"]);
        assert_eq!(auth.security_token.as_deref(), token);
        assert_eq!(auth.access_key_id(), AKID);
    }
}

#[test]
fn wrong_secret_fails() {
    let o = signed_post(None);
    let e = o
        .check_all(T0, "sts", "us-east-1", "not-the-secret")
        .unwrap_err();
    assert!(matches!(e, SigError::SignatureDoesNotMatch));
    assert_err(&e, "SignatureDoesNotMatch", 403, SIG_MSG);
    assert!(!presigned_get(None, 60).verifies("not-the-secret"));
}

// ---------------------------------------------------------------- missing / both

#[test]
fn no_authentication() {
    let o = Owned::new("POST", "", header_map(&[("host", HOST)]), BODY);
    let e = o.parse().unwrap_err();
    assert!(matches!(e, SigError::MissingAuthentication));
    assert_err(
        &e,
        "MissingAuthenticationToken",
        403,
        "Request is missing Authentication Token",
    );
    // X-Amz-* query parameters without X-Amz-Algorithm are not authentication
    let o = Owned::new(
        "GET",
        "X-Amz-Credential=a&X-Amz-Signature=b",
        header_map(&[("host", HOST)]),
        b"",
    );
    assert!(matches!(
        o.parse().unwrap_err(),
        SigError::MissingAuthentication
    ));
}

#[test]
fn non_aws4_authorization_is_missing_authentication() {
    for value in [
        "Bearer abc",
        "AWS AKID:c2ln",
        "",
        "aws4-hmac-sha256 Credential=x",
    ] {
        let o = with_authorization(&signed_post(None), value);
        let e = o.parse().unwrap_err();
        assert!(matches!(e, SigError::NotAws4Authorization), "{value:?}");
        assert_err(
            &e,
            "MissingAuthenticationToken",
            403,
            "Request is missing Authentication Token",
        );
    }
}

#[test]
fn both_header_and_query_auth() {
    let mut o = signed_post(None);
    o.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256".into();
    let e = o.parse().unwrap_err();
    assert!(matches!(e, SigError::BothAuthMethods));
    assert_err(
        &e,
        "IncompleteSignature",
        400,
        "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.",
    );
    // a presigned URL with an Authorization header added
    let mut p = presigned_get(None, 60);
    p.headers
        .insert("authorization", HeaderValue::from_static("Bearer x"));
    assert!(matches!(p.parse().unwrap_err(), SigError::BothAuthMethods));
}

// ---------------------------------------------------------------- header syntax

#[test]
fn missing_equal_sign() {
    let base = signed_post(None);
    let sig = sig_of(&base);
    let header = format!(
        "AWS4-HMAC-SHA256 {AKID}/20240506/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={sig}"
    );
    let e = with_authorization(&base, &header).parse().unwrap_err();
    assert_err(
        &e,
        "IncompleteSignature",
        400,
        &format!(
            "'{AKID}/20240506/us-east-1/sts/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'."
        ),
    );
    // the offending element is quoted with its whitespace removed
    let header = format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20240506/us-east-1/sts/aws4_request, Signed Headers , Signature={sig}"
    );
    let e = with_authorization(&base, &header).parse().unwrap_err();
    assert!(
        e.message()
            .starts_with("'SignedHeaders' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential="),
        "{}",
        e.message()
    );
}

#[test]
fn missing_parameters_one_by_one() {
    let base = signed_post(None);
    let full = authorization(&base);
    let (alg, rest) = full.split_once(' ').unwrap();
    let parts: Vec<&str> = rest.split(", ").collect();
    for (i, name) in ["Credential", "SignedHeaders", "Signature"]
        .iter()
        .enumerate()
    {
        let kept: Vec<&str> = parts
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| *p)
            .collect();
        let header = format!("{alg} {}", kept.join(", "));
        let e = with_authorization(&base, &header).parse().unwrap_err();
        assert!(matches!(e, SigError::IncompleteAuthorization { .. }));
        assert_err(
            &e,
            "IncompleteSignature",
            400,
            &format!("Authorization header requires '{name}' parameter. Authorization={header}"),
        );
        // an empty value counts as missing
        let mut emptied: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
        emptied[i] = format!("{name}=");
        let header = format!("{alg} {}", emptied.join(", "));
        let e = with_authorization(&base, &header).parse().unwrap_err();
        assert_eq!(
            e.message(),
            format!("Authorization header requires '{name}' parameter. Authorization={header}")
        );
    }
}

#[test]
fn missing_everything_concatenates_in_coral_order() {
    let mut o = with_authorization(&signed_post(None), "AWS4-HMAC-SHA256 Foo=bar");
    o.headers.remove("x-amz-date");
    let e = o.parse().unwrap_err();
    assert_err(
        &e,
        "IncompleteSignature",
        400,
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. \
         Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a \
         'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 Foo=bar",
    );
    // algorithm only
    let e = with_authorization(&signed_post(None), "AWS4-HMAC-SHA256")
        .parse()
        .unwrap_err();
    assert!(e.message().ends_with("Authorization=AWS4-HMAC-SHA256"));
}

#[test]
fn missing_date() {
    let mut o = signed_post(None);
    o.headers.remove("x-amz-date");
    let header = authorization(&o);
    let e = o.parse().unwrap_err();
    assert_err(
        &e,
        "IncompleteSignature",
        400,
        &format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={header}"
        ),
    );
}

/// Signs a canonical request text by hand with aws-sigv4's public key functions.
fn hand_sign(canonical: &str, amz_date: &str, time: i64) -> String {
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(canonical.as_bytes()));
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}/us-east-1/sts/aws4_request\n{hash}",
        &amz_date[..8]
    );
    let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(time as u64);
    let key = aws_sigv4::sign::v4::generate_signing_key(SECRET, t, "us-east-1", "sts");
    aws_sigv4::sign::v4::calculate_signature(key, sts.as_bytes())
}

#[test]
fn date_header_fallback() {
    use sha2::Digest;
    // a client that signs with `Date` (ISO basic) instead of X-Amz-Date
    let date = "20240506T070809Z";
    let canonical = format!(
        "POST\n/\n\ncontent-type:{FORM}\ndate:{date}\nhost:{HOST}\n\ncontent-type;date;host\n{}",
        hex::encode(sha2::Sha256::digest(BODY))
    );
    let sig = hand_sign(&canonical, date, T0);
    let authz = format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20240506/us-east-1/sts/aws4_request, SignedHeaders=content-type;date;host, Signature={sig}"
    );
    let o = Owned::new(
        "POST",
        "",
        header_map(&[
            ("host", HOST),
            ("content-type", FORM),
            ("date", date),
            ("authorization", authz.as_str()),
        ]),
        BODY,
    );
    let auth = o.check_all(T0, "sts", "us-east-1", SECRET).unwrap();
    assert_eq!(auth.amz_date(), date);
    assert_eq!(
        auth.signed_headers().collect::<Vec<_>>(),
        ["content-type", "date", "host"]
    );
    // X-Amz-Date wins over Date when both are present
    let mut both = o.clone();
    both.headers
        .insert("x-amz-date", HeaderValue::from_static("20240507T000000Z"));
    let e = both.parse().unwrap_err();
    assert!(matches!(e, SigError::ScopeDateMismatch { .. }), "{e:?}");
    // an empty X-Amz-Date counts as absent
    let mut empty = o.clone();
    empty
        .headers
        .insert("x-amz-date", HeaderValue::from_static(""));
    assert!(empty.verifies(SECRET));
    // an RFC 1123 Date is not accepted
    let mut rfc = o.clone();
    rfc.headers.insert(
        "date",
        HeaderValue::from_static("Mon, 06 May 2024 07:08:09 GMT"),
    );
    let e = rfc.parse().unwrap_err();
    assert_err(
        &e,
        "IncompleteSignature",
        400,
        "Date must be in ISO-8601 'basic format'. Got 'Mon, 06 May 2024 07:08:09 GMT'. See http://en.wikipedia.org/wiki/ISO_8601",
    );
}

#[test]
fn invalid_x_amz_date() {
    for bad in [
        "20240506T070809",
        "2024-05-06T07:08:09Z",
        "20240230T070809Z",
        "201",
    ] {
        let mut o = signed_post(None);
        o.headers
            .insert("x-amz-date", HeaderValue::from_str(bad).unwrap());
        let e = o.parse().unwrap_err();
        assert!(matches!(e, SigError::InvalidDate { .. }));
        assert_err(
            &e,
            "IncompleteSignature",
            400,
            &format!(
                "Date must be in ISO-8601 'basic format'. Got '{bad}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ),
        );
    }
}

#[test]
fn host_must_be_signed() {
    let base = signed_post(None);
    let header =
        authorization(&base).replace("content-type;host;x-amz-date", "content-type;x-amz-date");
    let e = with_authorization(&base, &header).parse().unwrap_err();
    assert!(matches!(e, SigError::HostNotSigned));
    assert_err(
        &e,
        "IncompleteSignature",
        400,
        "'Host' must be a 'SignedHeader' in the AWS Authorization.",
    );
    // case-insensitive in the list
    let header = authorization(&base).replace("content-type;host;", "content-type;Host;");
    assert!(with_authorization(&base, &header).parse().is_ok());
}

#[test]
fn unsupported_algorithm() {
    let base = signed_post(None);
    for alg in ["AWS4-ECDSA-P256-SHA256", "AWS4-HMAC-SHA1", "AWS4-"] {
        let header = authorization(&base).replace("AWS4-HMAC-SHA256", alg);
        let e = with_authorization(&base, &header).parse().unwrap_err();
        assert_err(
            &e,
            "IncompleteSignature",
            400,
            &format!("Unsupported AWS 'algorithm': '{alg}'"),
        );
    }
}

#[test]
fn credential_shape() {
    let base = signed_post(None);
    let scope = format!("{AKID}/20240506/us-east-1/sts/aws4_request");
    for bad in [
        format!("{AKID}/20240506/us-east-1/sts"),
        format!("{AKID}/20240506/us-east-1/sts/aws4_request/extra"),
        "justakey".to_owned(),
    ] {
        let header = authorization(&base).replace(&scope, &bad);
        let e = with_authorization(&base, &header).parse().unwrap_err();
        assert_err(
            &e,
            "IncompleteSignature",
            400,
            &format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{bad}'"
            ),
        );
    }
    // trailing slashes are ignored
    let header = authorization(&base).replace(&scope, &format!("{scope}//"));
    let o = with_authorization(&base, &header);
    let auth = o.parse().unwrap();
    assert!(verify(&o.req(), &auth, SECRET.as_bytes()).is_ok());
}

#[test]
fn terminator() {
    let base = signed_post(None);
    let header = authorization(&base).replace("/sts/aws4_request", "/sts/aws5_request");
    let e = with_authorization(&base, &header).parse().unwrap_err();
    assert!(matches!(e, SigError::InvalidTerminator { .. }));
    assert_err(
        &e,
        "IncompleteSignature",
        400,
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ",
    );
}

#[test]
fn scope_date_must_match_request_date() {
    let base = signed_post(None);
    let header = authorization(&base).replace("/20240506/", "/20240505/");
    let e = with_authorization(&base, &header).parse().unwrap_err();
    assert_err(
        &e,
        "SignatureDoesNotMatch",
        403,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20240505' != '20240506', from '20240506T070809Z'.",
    );
}

#[test]
fn whitespace_and_comma_tolerance() {
    let base = signed_post(None);
    let full = authorization(&base);
    let (alg, rest) = full.split_once(' ').unwrap();
    let parts: Vec<&str> = rest.split(", ").collect();
    let variants = [
        format!("{alg} {}", parts.join(",")),
        format!("{alg}   {}", parts.join(" ,  ")),
        format!("{alg}\t{}", parts.join(",\t")),
        format!("{alg} {},", parts.join(", ")),
        format!("{alg} , {}", parts.join(",, ")),
        format!(
            "{alg} {}",
            parts.iter().rev().cloned().collect::<Vec<_>>().join(", ")
        ),
        format!("  {alg} {}  ", parts.join(", ")),
        format!(
            "{alg} Credential = {}",
            &parts.join(", ")["Credential=".len()..]
        ),
        // unknown elements are ignored
        format!("{alg} {}, Foo=bar", parts.join(", ")),
    ];
    for header in variants {
        let o = with_authorization(&base, &header);
        let auth = o.parse().unwrap_or_else(|e| panic!("{header:?}: {e:?}"));
        verify(&o.req(), &auth, SECRET.as_bytes()).unwrap_or_else(|e| panic!("{header:?}: {e:?}"));
    }
}

#[test]
fn duplicate_elements_last_wins() {
    let base = signed_post(None);
    let good = sig_of(&base);
    let header = authorization(&base).replace(
        &format!("Signature={good}"),
        &format!("Signature={}, Signature={good}", "0".repeat(64)),
    );
    assert!(with_authorization(&base, &header).verifies(SECRET));
}

// ---------------------------------------------------------------- time

#[test]
fn skew_window_is_inclusive_15_minutes() {
    let o = signed_post(None);
    let auth = o.parse().unwrap();
    assert!(auth.check_time(T0).is_ok());
    assert!(auth.check_time(T0 + 900).is_ok());
    assert!(auth.check_time(T0 - 900).is_ok());
    let e = auth.check_time(T0 + 901).unwrap_err();
    assert!(matches!(e, SigError::SignatureExpired { .. }));
    let e = auth.check_time(T0 - 901).unwrap_err();
    assert!(matches!(e, SigError::SignatureNotYetCurrent { .. }));
    // extreme clocks do not overflow
    assert!(auth.check_time(i64::MAX).is_err());
    assert!(auth.check_time(i64::MIN).is_err());
}

#[test]
fn expired_message_matches_aws_capture() {
    // aws-cli#6676: "Signature expired: 20220127T001427Z is now earlier than 20220127T014428Z (20220127T015928Z - 15 min.)"
    let req = parse_amz_date("20220127T001427Z").unwrap();
    let now = parse_amz_date("20220127T015928Z").unwrap();
    let headers = [("Host", HOST), ("Content-Type", FORM)];
    let mut p = sign_params(&headers, BODY);
    p.unix_time = req;
    let mut all = vec![
        ("Host".to_owned(), HOST.to_owned()),
        ("Content-Type".into(), FORM.into()),
    ];
    all.extend(sign_headers(&p));
    let o = Owned::new("POST", "", header_map(&all), BODY);
    let e = o.parse().unwrap().check_time(now).unwrap_err();
    assert_err(
        &e,
        "SignatureDoesNotMatch",
        403,
        "Signature expired: 20220127T001427Z is now earlier than 20220127T014428Z (20220127T015928Z - 15 min.)",
    );
}

#[test]
fn not_yet_current_message() {
    let o = signed_post(None);
    let now = T0 - 3600; // 20240506T060809Z
    let e = o.parse().unwrap().check_time(now).unwrap_err();
    assert_err(
        &e,
        "SignatureDoesNotMatch",
        403,
        "Signature not yet current: 20240506T070809Z is still later than 20240506T062309Z (20240506T060809Z + 15 min.)",
    );
}

#[test]
fn presigned_expires_is_not_enforced() {
    let o = presigned_get(None, 1);
    assert!(o.check_all(T0 + 899, "sts", "us-east-1", SECRET).is_ok());
    assert!(matches!(
        o.check_all(T0 + 901, "sts", "us-east-1", SECRET)
            .unwrap_err(),
        SigError::SignatureExpired { .. }
    ));
    // a huge X-Amz-Expires does not extend the window either
    let o = presigned_get(None, 604_800);
    assert!(o.check_all(T0 + 3600, "sts", "us-east-1", SECRET).is_err());
}

// ---------------------------------------------------------------- scope

#[test]
fn scope_checks() {
    let o = signed_post(None);
    let auth = o.parse().unwrap();
    let east = ["us-east-1".to_owned(), "eu-west-1".to_owned()];
    let west = ["us-west-2".to_owned()];
    assert!(auth.check_scope("sts", Some(&east)).is_ok());
    assert!(auth.check_scope("sts", None).is_ok());

    let e = auth.check_scope("sts", Some(&west)).unwrap_err();
    assert_err(
        &e,
        "SignatureDoesNotMatch",
        403,
        "Credential should be scoped to a valid region. ",
    );
    let e = auth.check_scope("iam", None).unwrap_err();
    assert_err(
        &e,
        "SignatureDoesNotMatch",
        403,
        "Credential should be scoped to correct service: 'iam'. ",
    );
    let e = auth.check_scope("iam", Some(&west)).unwrap_err();
    assert_err(
        &e,
        "SignatureDoesNotMatch",
        403,
        "Credential should be scoped to a valid region. Credential should be scoped to correct service: 'iam'. ",
    );
    // exact comparisons
    assert!(auth.check_scope("STS", None).is_err());
    assert!(
        auth.check_scope("sts", Some(&["US-EAST-1".to_owned()]))
            .is_err()
    );
    assert!(auth.check_scope("sts", Some(&[])).is_err());
}

// ---------------------------------------------------------------- signature

#[test]
fn signature_format() {
    let base = signed_post(None);
    let good = sig_of(&base);
    for bad in [
        good.to_uppercase(),
        good[..63].to_owned(),
        format!("{good}00"),
        "zz".repeat(32),
    ] {
        let header = authorization(&base).replace(&good, &bad);
        let o = with_authorization(&base, &header);
        let auth = o.parse().unwrap();
        let e = verify(&o.req(), &auth, SECRET.as_bytes()).unwrap_err();
        assert_err(&e, "SignatureDoesNotMatch", 403, SIG_MSG);
    }
}

#[test]
fn debug_redacts_signature_and_token() {
    let o = signed_post(Some("SECRETTOKENVALUE"));
    let auth = o.parse().unwrap();
    let dbg = format!("{auth:?}");
    assert!(!dbg.contains(&sig_of(&o)), "{dbg}");
    assert!(!dbg.contains("SECRETTOKENVALUE"), "{dbg}");
    assert!(dbg.contains("AKIDEXAMPLE"));
    assert!(dbg.contains("<redacted"));
}

// ---------------------------------------------------------------- canonical request

#[test]
fn only_signed_headers_count() {
    let mut o = signed_post(None);
    o.headers
        .insert("user-agent", HeaderValue::from_static("whatever/1.0"));
    o.headers
        .insert("x-unsigned", HeaderValue::from_static("anything"));
    assert!(o.verifies(SECRET));
}

#[test]
fn signed_header_absent_from_request_fails() {
    let hdrs = [("Host", HOST), ("Content-Type", FORM), ("X-Extra", "v")];
    let mut all: Vec<(String, String)> = hdrs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.extend(sign_headers_with(&sign_params(&hdrs, BODY), &["x-extra"]));
    let mut o = Owned::new("POST", "", header_map(&all), BODY);
    assert!(o.verifies(SECRET));
    o.headers.remove("x-extra");
    let auth = o.parse().unwrap();
    assert!(matches!(
        verify(&o.req(), &auth, SECRET.as_bytes()),
        Err(SigError::SignatureDoesNotMatch)
    ));
}

#[test]
fn header_values_trimmed_collapsed_and_joined() {
    let hdrs = [
        ("Host", HOST),
        ("Content-Type", FORM),
        ("X-Multi", "  a   b "),
        ("x-multi", "c"),
    ];
    let mut all: Vec<(String, String)> = hdrs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.extend(sign_headers_with(&sign_params(&hdrs, BODY), &["X-Multi"]));
    let o = Owned::new("POST", "", header_map(&all), BODY);
    assert!(o.verifies(SECRET));
    // same canonical values, different spacing on the wire
    let mut o2 = o.clone();
    o2.headers.remove("x-multi");
    o2.headers
        .append("x-multi", HeaderValue::from_static("a b"));
    o2.headers
        .append("x-multi", HeaderValue::from_static("   c"));
    assert!(o2.verifies(SECRET));
    // order of repeated values matters
    let mut o3 = o.clone();
    o3.headers.remove("x-multi");
    o3.headers.append("x-multi", HeaderValue::from_static("c"));
    o3.headers
        .append("x-multi", HeaderValue::from_static("a b"));
    assert!(!o3.verifies(SECRET));
}

#[test]
fn payload_hash_is_computed_never_trusted() {
    // the client signs x-amz-content-sha256 of the original body; a replaced body must still fail
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(BODY));
    let hdrs = [
        ("Host", HOST),
        ("Content-Type", FORM),
        ("X-Amz-Content-Sha256", hash.as_str()),
    ];
    let mut all: Vec<(String, String)> = hdrs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.extend(sign_headers_with(
        &sign_params(&hdrs, BODY),
        &["x-amz-content-sha256"],
    ));
    let mut o = Owned::new("POST", "", header_map(&all), BODY);
    assert!(o.verifies(SECRET));
    o.body = b"Action=GetSessionToken&Version=2011-06-15&DurationSeconds=129600".to_vec();
    assert!(!o.verifies(SECRET));
    // UNSIGNED-PAYLOAD is not honoured either
    let mut o = signed_post(None);
    o.headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("UNSIGNED-PAYLOAD"),
    );
    o.body = b"Action=Other".to_vec();
    assert!(!o.verifies(SECRET));
}

#[test]
fn query_equivalent_encodings_verify() {
    // signed over "k=a%20b&z=%2f"; sent as "z=%2F&k=a+b": same canonical query
    let hdrs = [("Host", HOST), ("Content-Type", FORM)];
    let mut p = sign_params(&hdrs, BODY);
    p.query = "k=a%20b&z=%2f";
    let mut all: Vec<(String, String)> = hdrs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.extend(sign_headers(&p));
    let mut o = Owned::new("POST", "k=a%20b&z=%2f", header_map(&all), BODY);
    assert!(o.verifies(SECRET));
    o.query = "z=%2F&k=a+b".into();
    assert!(o.verifies(SECRET));
    o.query = "z=%2F&k=a+c".into();
    assert!(!o.verifies(SECRET));
    // in header auth, an X-Amz-Signature query parameter is an ordinary signed parameter
    o.query = "z=%2F&k=a+b&X-Amz-Signature=x".into();
    assert!(!o.verifies(SECRET));
}

#[test]
fn empty_path_is_slash_and_path_is_signed() {
    let mut o = signed_post(None);
    o.path = String::new();
    assert!(o.verifies(SECRET));
    o.path = "/other".into();
    assert!(!o.verifies(SECRET));
    o.path = "/".into();
    o.method = "PUT".into();
    assert!(!o.verifies(SECRET));
}

// ---------------------------------------------------------------- presigned

#[test]
fn presigned_missing_parameters() {
    let o = presigned_get(Some("tok"), 60);
    for param in [
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ] {
        for mode in ["drop", "empty"] {
            let mut m = o.clone();
            m.query = o
                .query
                .split('&')
                .filter_map(|kv| {
                    if kv.starts_with(&format!("{param}=")) {
                        (mode == "empty").then(|| format!("{param}="))
                    } else {
                        Some(kv.to_owned())
                    }
                })
                .collect::<Vec<_>>()
                .join("&");
            let e = m.parse().unwrap_err();
            assert_err(
                &e,
                "IncompleteSignature",
                400,
                &format!(
                    "AWS query-string parameters must include '{param}'. Re-examine the query-string parameters."
                ),
            );
        }
    }
}

#[test]
fn presigned_syntax_errors() {
    let o = presigned_get(None, 60);
    let replace = |from: &str, to: &str| {
        let mut m = o.clone();
        assert!(m.query.contains(from), "{from}");
        m.query = m.query.replace(from, to);
        m.parse().unwrap_err()
    };
    let e = replace(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256",
    );
    assert_eq!(
        e.message(),
        "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'"
    );
    let e = replace("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=");
    assert_eq!(e.message(), "Unsupported AWS 'algorithm': ''");
    let e = replace("X-Amz-Date=20240506T070809Z", "X-Amz-Date=2024-05-06");
    assert!(matches!(e, SigError::InvalidDate { .. }));
    let e = replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date");
    assert!(matches!(e, SigError::HostNotSigned));
    let e = replace("%2Faws4_request", "%2Faws4");
    assert!(matches!(e, SigError::InvalidTerminator { .. }));
    let e = replace("%2F20240506%2F", "%2F20240507%2F");
    assert!(matches!(e, SigError::ScopeDateMismatch { .. }));
    let e = replace("%2Fus-east-1%2Fsts", "%2Fus-east-1");
    assert!(matches!(e, SigError::MalformedCredential { .. }));
}

#[test]
fn presigned_signature_excluded_and_token_signed() {
    let o = presigned_get(Some("tok"), 60);
    assert!(o.verifies(SECRET));
    // the token is inside the canonical query
    let mut m = o.clone();
    m.query = m
        .query
        .replace("X-Amz-Security-Token=tok", "X-Amz-Security-Token=tol");
    assert!(!m.verifies(SECRET));
    // and so is X-Amz-Expires
    let mut m = o.clone();
    m.query = m.query.replace("X-Amz-Expires=60", "X-Amz-Expires=61");
    assert!(!m.verifies(SECRET));
    // moving X-Amz-Signature elsewhere in the query changes nothing
    let mut m = o.clone();
    let (rest, sig) = m.query.rsplit_once("&X-Amz-Signature=").unwrap();
    m.query = format!("X-Amz-Signature={sig}&{rest}");
    assert!(m.verifies(SECRET));
    // a token header is ignored for presigned requests
    let mut m = presigned_get(None, 60);
    m.headers
        .insert("x-amz-security-token", HeaderValue::from_static("hdr"));
    assert_eq!(m.parse().unwrap().security_token, None);
}

// ---------------------------------------------------------------- error table
