//! A small SigV4 signer for our own clients (load generator, raw-HTTP tests, admin CLI remote mode).

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::amz_date::format_amz_date;
use crate::canonical::{
    CanonicalInput, HeaderSource, hex32, payload_hash, write_canonical_request,
};
use crate::encoding::uri_encode;
use crate::key::{ALGORITHM, TERMINATOR, signature_hex};
use crate::{
    X_AMZ_ALGORITHM, X_AMZ_CREDENTIAL, X_AMZ_DATE, X_AMZ_EXPIRES, X_AMZ_SECURITY_TOKEN,
    X_AMZ_SIGNATURE, X_AMZ_SIGNED_HEADERS,
};

/// What to sign. `Debug` redacts the secret and the session token.
#[derive(Clone, Copy)]
pub struct SignParams<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Raw path (`/` for STS).
    pub path: &'a str,
    /// Raw query string without `?`, already encoded as it will be sent.
    pub query: &'a str,
    /// Request headers; must include `host`, and `content-type` when there is a body. Names are
    /// case-insensitive; a name given twice is one header with two values.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body as it will be sent.
    pub body: &'a [u8],
    /// Access key id.
    pub access_key_id: &'a str,
    /// Secret access key.
    pub secret_access_key: &'a str,
    /// Session token, if the credentials are temporary.
    pub security_token: Option<&'a str>,
    /// Signing region.
    pub region: &'a str,
    /// Signing service, e.g. `sts`.
    pub service: &'a str,
    /// Signing time, unix seconds.
    pub unix_time: i64,
}

impl std::fmt::Debug for SignParams<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignParams")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("security_token", &self.security_token.map(|_| "<redacted>"))
            .field("region", &self.region)
            .field("service", &self.service)
            .field("unix_time", &self.unix_time)
            .finish()
    }
}

/// The headers a signed request needs next to the caller's, plus the canonical header set to sign.
struct HeaderSet<'a> {
    /// `(lowercase name, value)`, sorted by name, one entry per value.
    entries: Vec<(String, &'a str)>,
    /// Sorted, deduplicated lowercase names.
    names: Vec<String>,
}

impl<'a> HeaderSet<'a> {
    fn new() -> Self {
        Self {
            entries: Vec::new(),
            names: Vec::new(),
        }
    }

    /// Adds every value of `name` found in `headers`.
    fn copy_from(&mut self, headers: &[(&'a str, &'a str)], name: &str) {
        let lower = name.to_ascii_lowercase();
        if self.names.contains(&lower) {
            return;
        }
        let mut any = false;
        for (n, v) in headers {
            if n.eq_ignore_ascii_case(&lower) {
                self.entries.push((lower.clone(), v));
                any = true;
            }
        }
        if any || lower == "host" {
            self.names.push(lower);
        }
    }

    /// Adds a header we set ourselves (replacing any caller value).
    fn set(&mut self, name: &str, value: &'a str) {
        self.entries.retain(|(n, _)| n != name);
        self.names.retain(|n| n != name);
        self.entries.push((name.to_owned(), value));
        self.names.push(name.to_owned());
    }

    fn finish(&mut self) {
        // stable sort: values of one header keep their order
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        self.names.sort();
    }
}

impl HeaderSource for HeaderSet<'_> {
    fn for_each_value(&self, name: &str, f: &mut dyn FnMut(&[u8])) {
        for (n, v) in &self.entries {
            if n == name {
                f(v.as_bytes());
            }
        }
    }
}

fn canonical_hash(
    params: &SignParams<'_>,
    query: &str,
    presigned: bool,
    headers: &HeaderSet<'_>,
) -> [u8; 64] {
    let payload = payload_hash(params.body);
    let signed_headers = headers.names.join(";");
    let mut hasher = Sha256::new();
    write_canonical_request(
        &CanonicalInput {
            method: params.method,
            path: params.path,
            query,
            skip_signature_param: presigned,
            headers,
            signed_headers: &signed_headers,
            payload_hash: &payload,
        },
        |b| hasher.update(b),
    );
    hex32(&hasher.finalize().into())
}

fn scope(params: &SignParams<'_>, date: &str) -> String {
    format!(
        "{}/{}/{}/{}/{TERMINATOR}",
        params.access_key_id, date, params.region, params.service
    )
}

/// Signs a request with an `Authorization` header.
///
/// Returns the headers to add: `("authorization", …)`, `("x-amz-date", …)` and, with a token,
/// `("x-amz-security-token", …)`. Signs `host`, `content-type` (if present), `x-amz-date`,
/// `x-amz-security-token` (if a token is given). Same as [`sign_headers_with`] with no extra headers.
pub fn sign_headers(params: &SignParams<'_>) -> Vec<(String, String)> {
    sign_headers_with(params, &[])
}

/// [`sign_headers`], additionally signing the headers of `params.headers` named in `extra_signed`
/// (case-insensitive; names not present in `params.headers` are skipped).
///
/// A `host` header missing from `params.headers` is signed with an empty value (and will not verify).
pub fn sign_headers_with(params: &SignParams<'_>, extra_signed: &[&str]) -> Vec<(String, String)> {
    let amz_date = format_amz_date(params.unix_time);
    let mut set = HeaderSet::new();
    set.copy_from(params.headers, "host");
    set.copy_from(params.headers, "content-type");
    for name in extra_signed {
        let lower = name.to_ascii_lowercase();
        if lower != "x-amz-date" && lower != "x-amz-security-token" && lower != "authorization" {
            set.copy_from(params.headers, &lower);
        }
    }
    set.set("x-amz-date", &amz_date);
    if let Some(token) = params.security_token {
        set.set("x-amz-security-token", token);
    }
    set.finish();

    let creq_hash = canonical_hash(params, params.query, false, &set);
    let date = amz_date.get(..8).unwrap_or_default();
    let signature = signature_hex(
        params.secret_access_key.as_bytes(),
        &amz_date,
        date,
        params.region,
        params.service,
        &creq_hash,
    );
    let authorization = format!(
        "{ALGORITHM} Credential={}, SignedHeaders={}, Signature={signature}",
        scope(params, date),
        set.names.join(";"),
    );
    let mut out = vec![
        ("authorization".to_owned(), authorization),
        ("x-amz-date".to_owned(), amz_date.clone()),
    ];
    if let Some(token) = params.security_token {
        out.push(("x-amz-security-token".to_owned(), token.to_owned()));
    }
    out
}

/// Presigns a request (query auth) the way botocore's `generate_presigned_url` does, and returns the full
/// query string (without `?`).
///
/// The result is `params.query` (kept as given), then `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
/// `X-Amz-Expires`, `X-Amz-SignedHeaders=host`, `X-Amz-Security-Token` (with a token) and finally
/// `X-Amz-Signature`, values URI-encoded. Only `host` is signed; the payload hash is that of `params.body`
/// (so pass an empty body for a GET, giving the empty-string hash as botocore does).
pub fn presign_query(params: &SignParams<'_>, expires: u32) -> String {
    let amz_date = format_amz_date(params.unix_time);
    let date = amz_date.get(..8).unwrap_or_default();
    let mut query = String::with_capacity(params.query.len() + 256);
    query.push_str(params.query);
    let expires = expires.to_string();
    let credential = scope(params, date);
    let mut auth_params = vec![
        (X_AMZ_ALGORITHM, ALGORITHM),
        (X_AMZ_CREDENTIAL, credential.as_str()),
        (X_AMZ_DATE, amz_date.as_str()),
        (X_AMZ_EXPIRES, expires.as_str()),
        (X_AMZ_SIGNED_HEADERS, "host"),
    ];
    if let Some(token) = params.security_token {
        auth_params.push((X_AMZ_SECURITY_TOKEN, token));
    }
    for (k, v) in auth_params {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(k);
        query.push('=');
        query.push_str(&uri_encode(v));
    }

    let mut set = HeaderSet::new();
    set.copy_from(params.headers, "host");
    set.finish();
    let creq_hash = canonical_hash(params, &query, true, &set);
    let signature = signature_hex(
        params.secret_access_key.as_bytes(),
        &amz_date,
        date,
        params.region,
        params.service,
        &creq_hash,
    );
    let _ = write!(query, "&{X_AMZ_SIGNATURE}={signature}");
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params<'a>(headers: &'a [(&'a str, &'a str)], body: &'a [u8]) -> SignParams<'a> {
        SignParams {
            method: "POST",
            path: "/",
            query: "",
            headers,
            body,
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            security_token: None,
            region: "us-east-1",
            service: "sts",
            unix_time: 1_440_938_160,
        }
    }

    #[test]
    fn header_set_signs_the_documented_headers() {
        let headers = [
            ("Host", "sts.amazonaws.com"),
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("User-Agent", "x"),
            ("X-Custom", "a"),
            ("x-custom", "b"),
        ];
        let mut p = params(&headers, b"Action=GetCallerIdentity&Version=2011-06-15");
        p.security_token = Some("tok");
        let out = sign_headers_with(&p, &["X-Custom", "missing"]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].0, "authorization");
        assert!(out[0].1.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-custom, Signature="
        ));
        assert_eq!(out[1], ("x-amz-date".into(), "20150830T123600Z".into()));
        assert_eq!(out[2], ("x-amz-security-token".into(), "tok".into()));

        let out = sign_headers(&params(&headers[..1], b""));
        assert!(out[0].1.contains("SignedHeaders=host;x-amz-date, "));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut p = params(&[], b"");
        p.security_token = Some("TOKENVALUE");
        let dbg = format!("{p:?}");
        assert!(!dbg.contains("wJalrXUtnFEMI"), "{dbg}");
        assert!(!dbg.contains("TOKENVALUE"), "{dbg}");
        assert!(dbg.contains("AKIDEXAMPLE"), "{dbg}");
    }

    #[test]
    fn presign_layout() {
        let headers = [("host", "sts.amazonaws.com")];
        let mut p = params(&headers, b"");
        p.method = "GET";
        p.query = "Action=GetCallerIdentity&Version=2011-06-15";
        p.security_token = Some("a/b+c=");
        let q = presign_query(&p, 60);
        let expected_prefix = "Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256\
            &X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fsts%2Faws4_request\
            &X-Amz-Date=20150830T123600Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host\
            &X-Amz-Security-Token=a%2Fb%2Bc%3D&X-Amz-Signature=";
        assert!(q.starts_with(expected_prefix), "{q}");
        assert_eq!(q.len(), expected_prefix.len() + 64);
        // without a query of its own there is no leading '&'
        p.query = "";
        assert!(presign_query(&p, 60).starts_with("X-Amz-Algorithm="));
    }
}
