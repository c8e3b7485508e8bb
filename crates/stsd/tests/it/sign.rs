//! Signing raw requests with the independent `aws-sigv4` crate, and sending them with [`crate::raw`].

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;

use crate::raw::{self, Response};

/// The form content type the Rust SDK sends.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// Credentials for signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    /// Access key id.
    pub id: String,
    /// Secret access key.
    pub secret: String,
    /// Session token, for session credentials.
    pub token: Option<String>,
}

impl Creds {
    /// Long-term credentials.
    pub fn new(id: &str, secret: &str) -> Self {
        Creds {
            id: id.to_owned(),
            secret: secret.to_owned(),
            token: None,
        }
    }

    /// Session credentials.
    pub fn session(id: &str, secret: &str, token: &str) -> Self {
        Creds {
            id: id.to_owned(),
            secret: secret.to_owned(),
            token: Some(token.to_owned()),
        }
    }

    /// The same credentials without their session token.
    pub fn without_token(&self) -> Self {
        Creds {
            token: None,
            ..self.clone()
        }
    }
}

/// How to sign.
#[derive(Debug, Clone)]
pub struct SignCfg {
    /// Credential scope region.
    pub region: String,
    /// Credential scope service.
    pub service: String,
    /// Signing time.
    pub time: SystemTime,
    /// `Content-Type` of a POST (`None`: no header).
    pub content_type: Option<String>,
}

impl Default for SignCfg {
    fn default() -> Self {
        SignCfg {
            region: "us-east-1".to_owned(),
            service: "sts".to_owned(),
            time: SystemTime::now(),
            content_type: Some(FORM.to_owned()),
        }
    }
}

impl SignCfg {
    /// Default settings signed at `time`.
    pub fn at(time: SystemTime) -> Self {
        SignCfg {
            time,
            ..SignCfg::default()
        }
    }

    /// Default settings with another scope region.
    pub fn region(region: &str) -> Self {
        SignCfg {
            region: region.to_owned(),
            ..SignCfg::default()
        }
    }
}

fn sign_in_place(
    req: &mut http::Request<Vec<u8>>,
    creds: &Creds,
    cfg: &SignCfg,
    location: SignatureLocation,
) {
    let identity = aws_credential_types::Credentials::new(
        &creds.id,
        &creds.secret,
        creds.token.clone(),
        None,
        "stsd-it",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = location;
    if location == SignatureLocation::QueryParams {
        settings.expires_in = Some(Duration::from_secs(60));
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&cfg.region)
        .name(&cfg.service)
        .time(cfg.time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = req.uri().to_string();
    let headers: Vec<(&str, &str)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    let unsigned = req
        .headers()
        .get("x-amz-content-sha256")
        .is_some_and(|v| v == "UNSIGNED-PAYLOAD");
    let signable = SignableRequest::new(
        req.method().as_str(),
        uri,
        headers.into_iter(),
        if unsigned {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(req.body())
        },
    )
    .unwrap();
    let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(req);
}

/// A header-signed POST `/` with `body`, as headers + body ready for [`raw::send`].
pub fn signed_post(addr: SocketAddr, creds: &Creds, body: &str, cfg: &SignCfg) -> Prepared {
    let mut b = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/"))
        .header("host", addr.to_string());
    if let Some(ct) = &cfg.content_type {
        b = b.header("content-type", ct);
    }
    let mut req = b.body(body.as_bytes().to_vec()).unwrap();
    sign_in_place(&mut req, creds, cfg, SignatureLocation::Headers);
    Prepared::from_request(addr, req)
}

/// A presigned GET `/?{query}` (query-string auth), as [`Prepared`].
pub fn presigned_get(addr: SocketAddr, creds: &Creds, query: &str, cfg: &SignCfg) -> Prepared {
    let mut req = http::Request::builder()
        .method("GET")
        .uri(format!("http://{addr}/?{query}"))
        .header("host", addr.to_string())
        .body(Vec::new())
        .unwrap();
    sign_in_place(&mut req, creds, cfg, SignatureLocation::QueryParams);
    Prepared::from_request(addr, req)
}

/// A signed request that can still be altered before it is sent.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Where to send it.
    pub addr: SocketAddr,
    /// Method.
    pub method: String,
    /// Request target (path and query).
    pub target: String,
    /// Headers (including `host`, `authorization`, `x-amz-date`, ...).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Prepared {
    fn from_request(addr: SocketAddr, req: http::Request<Vec<u8>>) -> Self {
        let (parts, body) = req.into_parts();
        Prepared {
            addr,
            method: parts.method.to_string(),
            target: parts
                .uri
                .path_and_query()
                .map(ToString::to_string)
                .unwrap_or_else(|| "/".to_owned()),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
                .collect(),
            body,
        }
    }

    /// The value of header `name`.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    /// Replaces the value of header `name`.
    pub fn set_header(&mut self, name: &str, value: &str) {
        let h = self
            .headers
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .unwrap_or_else(|| panic!("no {name} header"));
        h.1 = value.to_owned();
    }

    /// Sends it.
    pub fn send(&self) -> Response {
        raw::send(
            self.addr,
            &self.method,
            &self.target,
            &self.headers,
            &self.body,
        )
    }
}

/// Signs (now, us-east-1, sts) and sends a form POST.
pub fn post(addr: SocketAddr, creds: &Creds, body: &str) -> Response {
    signed_post(addr, creds, body, &SignCfg::default()).send()
}

/// Changes one hex digit of the value of query parameter `name` in `target`.
pub fn flip_hex_param(target: &str, name: &str) -> String {
    let key = format!("{name}=");
    let start = target.find(&key).expect("parameter present") + key.len();
    let mut bytes = target.as_bytes().to_vec();
    bytes[start] = if bytes[start] == b'0' { b'1' } else { b'0' };
    String::from_utf8(bytes).unwrap()
}

/// Changes one character in the middle of a base64 token (to another base64 letter).
pub fn tamper_token(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// A request to one's own API signed for `service` (header form, or presigned with `presign`), with
/// `host` as the signed Host and `extra` headers (signed too).
#[allow(clippy::too_many_arguments)]
pub fn signed_api_request(
    addr: SocketAddr,
    creds: &Creds,
    method: &str,
    host: &str,
    target: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    cfg: &SignCfg,
    presign: bool,
) -> Prepared {
    let mut b = http::Request::builder()
        .method(method)
        .uri(format!("http://{host}{target}"))
        .header("host", host);
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    let mut req = b.body(body.to_vec()).unwrap();
    let location = if presign {
        SignatureLocation::QueryParams
    } else {
        SignatureLocation::Headers
    };
    sign_in_place(&mut req, creds, cfg, location);
    Prepared::from_request(addr, req)
}
