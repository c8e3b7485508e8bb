//! `aws-sdk-sts` clients that talk to a test server through [`crate::raw`] (the SDK is built without its
//! default HTTPS client, so the tests give it this plain-HTTP connector).

use aws_sdk_sts::config::http::{HttpRequest, HttpResponse};
use aws_sdk_sts::config::retry::RetryConfig;
use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

use crate::sign::Creds;

#[derive(Debug, Clone, Copy)]
struct RawConnector;

impl HttpConnector for RawConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let method = request.method().to_owned();
        let uri = request.uri().to_owned();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let Some(body) = request.body().bytes().map(<[u8]>::to_vec) else {
            return HttpConnectorFuture::ready(Err(ConnectorError::other(
                "streaming request bodies are not supported by the test connector".into(),
                None,
            )));
        };
        HttpConnectorFuture::new(async move {
            let rest = uri
                .strip_prefix("http://")
                .ok_or_else(|| ConnectorError::other(format!("not http: {uri}").into(), None))?;
            let (authority, target) = match rest.find('/') {
                Some(i) => (&rest[..i], rest[i..].to_owned()),
                None => (rest, "/".to_owned()),
            };
            let addr = authority
                .parse()
                .map_err(|e| ConnectorError::other(Box::new(e), None))?;
            let resp = tokio::task::spawn_blocking(move || {
                crate::raw::send(addr, &method, &target, &headers, &body)
            })
            .await
            .map_err(|e| ConnectorError::io(Box::new(e)))?;
            let status = StatusCode::try_from(resp.status)
                .map_err(|e| ConnectorError::other(Box::new(e), None))?;
            let mut out = HttpResponse::new(status, SdkBody::from(resp.body));
            for (k, v) in resp.headers {
                out.headers_mut().append(k, v);
            }
            Ok(out)
        })
    }
}

/// The plain-HTTP client for the SDK.
pub fn http_client() -> SharedHttpClient {
    http_client_fn(|_settings, _components| SharedHttpConnector::new(RawConnector))
}

/// An STS client for `endpoint` (`http://ADDR`), region us-east-1, with static `creds`. Retries are off so
/// that every failure is seen.
pub fn client(endpoint: &str, creds: &Creds) -> aws_sdk_sts::Client {
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            &creds.id,
            &creds.secret,
            creds.token.clone(),
            None,
            "stsd-it",
        ))
        .http_client(http_client())
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

/// An IAM client for `endpoint`, like [`client`]: region us-east-1, static `creds`, no retries.
pub fn iam(endpoint: &str, creds: &Creds) -> aws_sdk_iam::Client {
    let conf = aws_sdk_iam::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            &creds.id,
            &creds.secret,
            creds.token.clone(),
            None,
            "stsd-it",
        ))
        .http_client(http_client())
        .retry_config(aws_sdk_iam::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_iam::Client::from_conf(conf)
}

/// A new access key for `user`, created through `iam`, as long-term credentials.
pub async fn access_key(iam: &aws_sdk_iam::Client, user: &str) -> Creds {
    let key = iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    Creds::new(key.access_key_id(), key.secret_access_key())
}

/// A virtual MFA device created and enabled for `user` through `iam` (root's client, or the user's own)
/// with the codes of the previous and current step: its serial number, seed and the current step.
pub async fn enrolled_device(iam: &aws_sdk_iam::Client, user: &str) -> (String, Vec<u8>, i64) {
    let dev = iam
        .create_virtual_mfa_device()
        .virtual_mfa_device_name(user)
        .send()
        .await
        .unwrap()
        .virtual_mfa_device
        .unwrap();
    let serial = dev.serial_number().to_owned();
    let seed = data_encoding::BASE32_NOPAD
        .decode(dev.base32_string_seed().unwrap().as_ref())
        .unwrap();
    let step = stsd_core::totp::step_at(crate::harness::unix_now());
    iam.enable_mfa_device()
        .user_name(user)
        .serial_number(&serial)
        .authentication_code1(stsd_core::totp::code(&seed, step - 1))
        .authentication_code2(stsd_core::totp::code(&seed, step))
        .send()
        .await
        .unwrap();
    (serial, seed, step)
}

/// Session credentials from an SDK `Credentials` shape.
pub fn creds_of(c: &aws_sdk_sts::types::Credentials) -> Creds {
    Creds::session(c.access_key_id(), c.secret_access_key(), c.session_token())
}

/// `(HTTP status, Code, Message)` of a failed SDK call.
pub fn error_parts<E, R>(err: &aws_sdk_sts::error::SdkError<E, R>) -> (u16, String, String)
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug + RawStatus,
{
    match err {
        aws_sdk_sts::error::SdkError::ServiceError(se) => (
            se.raw().raw_status(),
            se.err().code().unwrap_or_default().to_owned(),
            se.err().message().unwrap_or_default().to_owned(),
        ),
        other => panic!("expected a service error, got {other:?}"),
    }
}

/// Access to the HTTP status of the SDK's raw response type.
pub trait RawStatus {
    /// The status code.
    fn raw_status(&self) -> u16;
}

impl RawStatus for HttpResponse {
    fn raw_status(&self) -> u16 {
        self.status().as_u16()
    }
}
