//! Requests as boto3 sends them: `POST /` with a form body, signed with [`stsd_sigv4::sign_headers`].
//!
//! botocore signs every header but `user-agent`, `expect`, `x-amzn-trace-id` …, and adds
//! `amz-sdk-invocation-id`/`amz-sdk-request` and `Content-Length` after signing, so the signed headers of
//! an STS or IAM call are `content-type;host;x-amz-date` plus `x-amz-security-token` with session
//! credentials. The unsigned headers are sent too, so the request has boto3's size and shape.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use http_body_util::Full;

/// Content type boto3 (botocore) sends for awsQuery bodies.
pub const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// A botocore-like user agent.
pub const USER_AGENT: &str = "Boto3/1.40.0 md/Botocore#1.40.0 ua/2.1 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.40.0 stsd-loadgen";

/// Credentials to sign with.
#[derive(Clone)]
pub struct Creds {
    /// `AKIA…` or `ASIA…`.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Creds")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// A form body from `(name, value)` pairs, encoded as Python's `urlencode` does.
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// A signed request that can be sent any number of times (within the 15-minute skew window).
#[derive(Debug, Clone)]
pub struct Signed {
    headers: HeaderMap,
    body: Bytes,
    /// The whole request as it goes on the wire (HTTP/1.1, header names lowercase as hyper writes them).
    wire: Bytes,
}

impl Signed {
    /// A new `http::Request` for this signed request (the header map is cloned, the body shared).
    pub fn request(&self) -> Request<Full<Bytes>> {
        let mut r = Request::new(Full::new(self.body.clone()));
        *r.method_mut() = Method::POST;
        *r.uri_mut() = http::Uri::from_static("/");
        *r.headers_mut() = self.headers.clone();
        r
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The serialised request, for [`crate::client::Conn::send`].
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }
}

/// A 36-character UUID-shaped invocation id (boto3 sends one per call; replays reuse it).
pub fn invocation_id() -> String {
    stsd_core::ids::uuid_v4()
}

fn value(s: &str) -> anyhow::Result<HeaderValue> {
    HeaderValue::from_str(s).map_err(|e| anyhow::anyhow!("header value {s:?}: {e}"))
}

/// Signs `body` for `service` (`sts` or `iam`) at `unix_time`, as boto3 would send it to `host`.
///
/// # Errors
/// A header value that HTTP cannot carry (e.g. a token with a newline).
pub fn sign(
    host: &str,
    creds: &Creds,
    service: &str,
    body: String,
    unix_time: i64,
) -> anyhow::Result<Signed> {
    let length = body.len().to_string();
    let signing_headers = [("Content-Type", CONTENT_TYPE), ("Host", host)];
    let added = stsd_sigv4::sign_headers(&stsd_sigv4::SignParams {
        method: "POST",
        path: "/",
        query: "",
        headers: &signing_headers,
        body: body.as_bytes(),
        access_key_id: &creds.access_key_id,
        secret_access_key: &creds.secret_access_key,
        security_token: creds.session_token.as_deref(),
        region: crate::REGION,
        service,
        unix_time,
    });
    let mut headers = HeaderMap::with_capacity(10);
    headers.insert(http::header::CONTENT_TYPE, value(CONTENT_TYPE)?);
    for (name, v) in &added {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| anyhow::anyhow!("header name {name:?}: {e}"))?;
        headers.insert(name, value(v)?);
    }
    headers.insert("amz-sdk-invocation-id", value(&invocation_id())?);
    headers.insert(
        "amz-sdk-request",
        HeaderValue::from_static("attempt=1; max=5"),
    );
    headers.insert(
        http::header::USER_AGENT,
        HeaderValue::from_static(USER_AGENT),
    );
    headers.insert(http::header::CONTENT_LENGTH, value(&length)?);
    headers.insert(http::header::HOST, value(host)?);
    let wire = serialise(&headers, body.as_bytes());
    Ok(Signed {
        headers,
        body: Bytes::from(body),
        wire,
    })
}

/// The host name of the benchmark's API (`[[authz.api]]` in the benchmark's configuration).
pub const AUTHZ_HOST: &str = "orders.internal";
/// The path of the request the authorizer checks.
pub const AUTHZ_PATH: &str = "/orders/42";

/// A GET of [`AUTHZ_PATH`] on [`AUTHZ_HOST`] signed for `execute-api` (as `awscurl` signs it), presented to
/// `/_stsd/authorize` the way nginx's `auth_request` forwards it (`X-Original-Method`, `X-Original-URI`,
/// `Host $http_host`).
///
/// # Errors
/// A header value that HTTP cannot carry.
pub fn sign_authz(creds: &Creds, unix_time: i64) -> anyhow::Result<Signed> {
    let mut headers = signed_authz_headers(creds, unix_time)?;
    headers.insert("x-original-method", HeaderValue::from_static("GET"));
    headers.insert("x-original-uri", HeaderValue::from_static(AUTHZ_PATH));
    headers.insert("x-forwarded-for", HeaderValue::from_static("127.0.0.1"));
    let wire = serialise_line(b"GET /_stsd/authorize HTTP/1.1\r\n", &headers, b"");
    Ok(Signed {
        headers,
        body: Bytes::new(),
        wire,
    })
}

/// The same signed GET as [`sign_authz`], as a client sends it to a reverse proxy in front of the API:
/// `GET /orders/42` with `Host: orders.internal`.
///
/// # Errors
/// A header value that HTTP cannot carry.
pub fn sign_authz_proxied(creds: &Creds, unix_time: i64) -> anyhow::Result<Signed> {
    let headers = signed_authz_headers(creds, unix_time)?;
    let line = format!("GET {AUTHZ_PATH} HTTP/1.1\r\n");
    let wire = serialise_line(line.as_bytes(), &headers, b"");
    Ok(Signed {
        headers,
        body: Bytes::new(),
        wire,
    })
}

/// `Host`, the SigV4 headers (service `execute-api`) and awscurl's user agent for the GET of [`AUTHZ_PATH`].
fn signed_authz_headers(creds: &Creds, unix_time: i64) -> anyhow::Result<HeaderMap> {
    let signing_headers = [("Host", AUTHZ_HOST)];
    let added = stsd_sigv4::sign_headers(&stsd_sigv4::SignParams {
        method: "GET",
        path: AUTHZ_PATH,
        query: "",
        headers: &signing_headers,
        body: b"",
        access_key_id: &creds.access_key_id,
        secret_access_key: &creds.secret_access_key,
        security_token: creds.session_token.as_deref(),
        region: crate::REGION,
        service: "execute-api",
        unix_time,
    });
    let mut headers = HeaderMap::with_capacity(10);
    headers.insert(http::header::HOST, HeaderValue::from_static(AUTHZ_HOST));
    for (name, v) in &added {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| anyhow::anyhow!("header name {name:?}: {e}"))?;
        headers.insert(name, value(v)?);
    }
    headers.insert(
        http::header::USER_AGENT,
        HeaderValue::from_static("awscurl/0.44 stsd-loadgen"),
    );
    Ok(headers)
}

/// `POST / HTTP/1.1`, the headers and the body, as one buffer.
fn serialise(headers: &HeaderMap, body: &[u8]) -> Bytes {
    serialise_line(b"POST / HTTP/1.1\r\n", headers, body)
}

fn serialise_line(line: &[u8], headers: &HeaderMap, body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(1024 + body.len());
    out.extend_from_slice(line);
    for (name, v) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_boto3() {
        let creds = Creds {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("tok".into()),
        };
        let body = form_body(&[
            ("Action", "GetSessionToken"),
            ("Version", crate::STS_VERSION),
            ("SerialNumber", "arn:aws:iam::123456789012:mfa/d"),
        ]);
        assert_eq!(
            body,
            "Action=GetSessionToken&Version=2011-06-15&SerialNumber=arn%3Aaws%3Aiam%3A%3A123456789012%3Amfa%2Fd"
        );
        let s = sign("127.0.0.1:1", &creds, "sts", body, 1_700_000_000).expect("signs");
        let r = s.request();
        let auth = r.headers()["authorization"].to_str().expect("ascii");
        assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,"));
        assert!(auth.contains("/20231114/us-east-1/sts/aws4_request"));
        assert_eq!(r.headers()["x-amz-security-token"], "tok");
        assert_eq!(r.headers()["content-type"], CONTENT_TYPE);
        assert_eq!(
            r.headers()["content-length"],
            s.body().len().to_string().as_str()
        );

        // The server's verifier accepts it.
        let req = stsd_sigv4::Request {
            method: "POST",
            path: "/",
            query: "",
            headers: r.headers(),
            body: s.body(),
        };
        let auth = stsd_sigv4::parse(&req).expect("parses");
        assert!(auth.check_time(1_700_000_000).is_ok());
        assert!(stsd_sigv4::verify(&req, &auth, creds.secret_access_key.as_bytes()).is_ok());
        assert!(stsd_sigv4::verify(&req, &auth, b"another secret").is_err());
    }
}
