//! Helpers: building requests, and signing with the `aws-sigv4` crate as an independent oracle.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use stsd_sigv4::{Auth, Request, SigError};

pub const AKID: &str = "AKIDEXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub const HOST: &str = "sts.amazonaws.com";
pub const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// 2024-05-06T07:08:09Z
pub const T0: i64 = 1_714_979_289;

pub const AWS_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, AWS_SET).to_string()
}

pub fn header_map<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_ref().as_bytes()).unwrap(),
            HeaderValue::from_str(v.as_ref()).unwrap(),
        );
    }
    map
}

/// An owned request, borrowed as a [`Request`] on demand.
#[derive(Debug, Clone)]
pub struct Owned {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Owned {
    pub fn new(method: &str, query: &str, headers: HeaderMap, body: &[u8]) -> Self {
        Self {
            method: method.into(),
            path: "/".into(),
            query: query.into(),
            headers,
            body: body.to_vec(),
        }
    }

    pub fn req(&self) -> Request<'_> {
        Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    pub fn parse(&self) -> Result<Auth, SigError> {
        stsd_sigv4::parse(&self.req())
    }

    /// parse + check_time + check_scope + verify, as the server does.
    pub fn check_all(
        &self,
        now: i64,
        service: &str,
        region: &str,
        secret: &str,
    ) -> Result<Auth, SigError> {
        let auth = self.parse()?;
        auth.check_time(now)?;
        auth.check_scope(service, Some(&[region.to_owned()]))?;
        verify_both(&self.req(), &auth, secret)?;
        Ok(auth)
    }

    /// parse + verify only.
    pub fn verifies(&self, secret: &str) -> bool {
        self.parse()
            .and_then(|a| verify_both(&self.req(), &a, secret))
            .is_ok()
    }
}

/// A small cache shared by every test, so entries are hit, missed and evicted across cases.
static KEY_CACHE: std::sync::LazyLock<stsd_sigv4::KeyCache> =
    std::sync::LazyLock::new(|| stsd_sigv4::KeyCache::new(3));

/// `verify`, after checking that `verify_cached` (twice: a miss or a hit, then a hit) agrees with it.
fn verify_both(req: &Request<'_>, auth: &Auth, secret: &str) -> Result<(), SigError> {
    let plain = stsd_sigv4::verify(req, auth, secret.as_bytes());
    for _ in 0..2 {
        let cached = stsd_sigv4::verify_cached(req, auth, secret.as_bytes(), &KEY_CACHE);
        assert_eq!(
            cached.is_ok(),
            plain.is_ok(),
            "verify_cached disagrees with verify"
        );
    }
    plain
}

/// What to sign with the oracle.
#[derive(Debug, Clone)]
pub struct OracleInput {
    pub method: String,
    pub path: String,
    /// raw, already encoded
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub token: Option<String>,
    pub region: String,
    pub service: String,
    pub time: i64,
    /// `Some(expires)` → presigned (query) signature.
    pub presign_expires: Option<u64>,
}

impl OracleInput {
    pub fn new(method: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> Self {
        Self {
            method: method.into(),
            path: "/".into(),
            query: query.into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.to_vec(),
            token: None,
            region: "us-east-1".into(),
            service: "sts".into(),
            time: T0,
            presign_expires: None,
        }
    }
}

/// Signs with aws-sigv4. Returns the request as it would be sent and the signature (hex).
pub fn oracle_sign(input: &OracleInput, secret: &str) -> (Owned, String) {
    let identity = Credentials::new(AKID, secret, input.token.clone(), None, "test").into();
    let mut settings = SigningSettings::default();
    if let Some(expires) = input.presign_expires {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(expires));
    }
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(input.time).unwrap());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&input.region)
        .name(&input.service)
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = if input.query.is_empty() {
        format!("https://{HOST}{}", input.path)
    } else {
        format!("https://{HOST}{}?{}", input.path, input.query)
    };
    let signable = SignableRequest::new(
        &input.method,
        uri,
        input.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&input.body),
    )
    .unwrap();
    let (instructions, signature) = sign(signable, &params).unwrap().into_parts();
    let (added_headers, added_params) = instructions.into_parts();

    let mut headers = header_map(&input.headers);
    for h in &added_headers {
        headers.append(
            HeaderName::from_bytes(h.name().as_bytes()).unwrap(),
            HeaderValue::from_str(h.value()).unwrap(),
        );
    }
    let mut query = input.query.clone();
    for (k, v) in &added_params {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(k);
        query.push('=');
        query.push_str(&enc(v));
    }
    let owned = Owned {
        method: input.method.clone(),
        path: input.path.clone(),
        query,
        headers,
        body: input.body.clone(),
    };
    (owned, signature)
}

/// The signature aws-sigv4 computes for `input` (used to decide whether a mutation is semantic).
pub fn oracle_signature(input: &OracleInput, secret: &str) -> String {
    oracle_sign(input, secret).1
}
