//! The two STS calls (`GetSessionToken`, `AssumeRole`): an awsQuery POST signed with `stsd-sigv4`, sent with
//! a blocking HTTP(S) client, and the XML answer or `ErrorResponse` parsed.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use time::OffsetDateTime;

use crate::secret::{Secret, SessionCredentials, SourceKey, parse_timestamp};

/// One STS call.
#[derive(Debug, Clone)]
pub struct StsRequest {
    /// Endpoint URL (`http://127.0.0.1:8754`, `https://sts.us-east-1.amazonaws.com`).
    pub endpoint: String,
    /// Signing region.
    pub region: String,
    /// AssumeRole when set, else GetSessionToken.
    pub role_arn: Option<String>,
    /// AssumeRole's RoleSessionName.
    pub role_session_name: String,
    /// AssumeRole's ExternalId.
    pub external_id: Option<String>,
    /// DurationSeconds, when chosen.
    pub duration_seconds: Option<u32>,
    /// SerialNumber.
    pub mfa_serial: Option<String>,
    /// TokenCode.
    pub mfa_code: Option<String>,
}

impl StsRequest {
    /// `GetSessionToken` or `AssumeRole`.
    pub fn action(&self) -> &'static str {
        if self.role_arn.is_some() {
            "AssumeRole"
        } else {
            "GetSessionToken"
        }
    }

    /// The form body.
    pub fn body(&self) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", self.action());
        form.append_pair("Version", "2011-06-15");
        if let Some(arn) = &self.role_arn {
            form.append_pair("RoleArn", arn);
            form.append_pair("RoleSessionName", &self.role_session_name);
            if let Some(id) = &self.external_id {
                form.append_pair("ExternalId", id);
            }
        }
        if let Some(d) = self.duration_seconds {
            form.append_pair("DurationSeconds", &d.to_string());
        }
        if let (Some(serial), Some(code)) = (&self.mfa_serial, &self.mfa_code) {
            form.append_pair("SerialNumber", serial);
            form.append_pair("TokenCode", code);
        }
        form.finish()
    }
}

/// An error answer from STS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsError {
    /// HTTP status.
    pub status: u16,
    /// AWS error code (`AccessDenied`, `InvalidClientTokenId`, …).
    pub code: String,
    /// Its message.
    pub message: String,
    /// The endpoint that answered.
    pub endpoint: String,
    /// The action called.
    pub action: &'static str,
}

impl std::fmt::Display for StsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at {} failed: {}: {}",
            self.action, self.endpoint, self.code, self.message
        )
    }
}

impl std::error::Error for StsError {}

impl StsError {
    /// Whether STS refused the MFA code itself (a new code may work): `InvalidAuthenticationCode`, or
    /// `AccessDenied` "MultiFactorAuthentication failed…" that is not about the serial number.
    pub fn is_refused_code(&self) -> bool {
        self.code == "InvalidAuthenticationCode"
            || (self.code == "AccessDenied"
                && self.message.contains("MultiFactorAuthentication failed")
                && !self.message.contains("serial number"))
    }
}

/// Text of the first element named `tag` (no prefix), XML entities decoded. Enough for STS's fixed shapes.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let start = [format!("<{tag}>"), format!("<{tag} "), format!("<{tag}/")]
        .iter()
        .filter_map(|open| xml.find(open.as_str()))
        .min()?;
    let after_open = start + xml[start..].find('>')? + 1;
    if xml[..after_open].ends_with("/>") {
        return Some(String::new());
    }
    let close = format!("</{tag}>");
    let end = after_open + xml[after_open..].find(&close)?;
    Some(xml_unescape(&xml[after_open..end]))
}

/// Decodes the five XML entities and numeric character references; CDATA is not used by STS.
pub fn xml_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(semi) = rest.find(';') else { break };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses the `Credentials` of a GetSessionToken / AssumeRole answer.
pub fn parse_credentials(xml: &str) -> Result<SessionCredentials> {
    let creds = xml_text(xml, "Credentials").context("no <Credentials> in the answer")?;
    let field =
        |name: &str| xml_text(&creds, name).with_context(|| format!("no <{name}> in the answer"));
    let expiration = field("Expiration")?;
    Ok(SessionCredentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: Secret::new(field("SecretAccessKey")?),
        session_token: Secret::new(field("SessionToken")?),
        expiration: parse_timestamp(&expiration)
            .with_context(|| format!("bad <Expiration> {expiration:?}"))?,
    })
}

/// Parses an `ErrorResponse` (`Code`, `Message`); `None` if the body is not one.
pub fn parse_error(xml: &str) -> Option<(String, String)> {
    let error = xml_text(xml, "Error")?;
    Some((
        xml_text(&error, "Code")?,
        xml_text(&error, "Message").unwrap_or_default(),
    ))
}

/// `(scheme, host[:port], path)` of an endpoint URL.
pub fn split_url(url: &str) -> Result<(&str, &str, &str)> {
    let (scheme, rest) = url
        .split_once("://")
        .with_context(|| format!("endpoint {url:?} is not a URL (http:// or https://)"))?;
    if scheme != "http" && scheme != "https" {
        bail!("endpoint {url:?}: only http and https are supported");
    }
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = path.split('?').next().unwrap_or("/");
    let path = if path.is_empty() { "/" } else { path };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if host.is_empty() {
        bail!("endpoint {url:?} has no host");
    }
    Ok((scheme, host, path))
}

/// The blocking HTTP agent: 30 s per call, error statuses returned as answers (their bodies carry the AWS
/// error), proxies from the environment (`NO_PROXY` honoured). HTTPS trusts the Mozilla roots, or only the
/// certificates of `ca_bundle` (a PEM file, like the AWS tools' `AWS_CA_BUNDLE` / `ca_bundle`).
///
/// # Errors
/// An unreadable or certificate-less `ca_bundle`.
pub fn agent(ca_bundle: Option<&Path>) -> Result<ureq::Agent> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(path) = ca_bundle {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read the CA bundle {}", path.display()))?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            bail!("the CA bundle {} holds no PEM certificate", path.display());
        }
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .user_agent(concat!("stsd-creds/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls.build())
        .build()
        .into())
}

/// Signs and sends `req` with `key`; returns the session credentials or the STS error.
///
/// # Errors
/// An [`StsError`] (downcastable) when STS answered with an error; other errors for transport problems.
pub fn call(
    agent: &ureq::Agent,
    req: &StsRequest,
    key: &SourceKey,
    now: OffsetDateTime,
) -> Result<SessionCredentials> {
    let (scheme, host, path) = split_url(&req.endpoint)?;
    let body = req.body();
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let headers = [("host", host), ("content-type", content_type)];
    let signed = stsd_sigv4::sign_headers(&stsd_sigv4::SignParams {
        method: "POST",
        path,
        query: "",
        headers: &headers,
        body: body.as_bytes(),
        access_key_id: &key.access_key_id,
        secret_access_key: key.secret_access_key.expose(),
        security_token: key.session_token.as_ref().map(Secret::expose),
        region: &req.region,
        service: "sts",
        unix_time: now.unix_timestamp(),
    });
    let url = format!("{scheme}://{host}{path}");
    let mut builder = agent
        .post(&url)
        .header("Host", host)
        .header("Content-Type", content_type)
        .header("Accept", "text/xml");
    for (name, value) in &signed {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let mut response = builder
        .send(body.as_bytes())
        .map_err(|e| anyhow!("cannot reach STS at {}: {e}", req.endpoint))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(|e| anyhow!("reading the answer of {}: {e}", req.endpoint))?;
    if (200..300).contains(&status) {
        return parse_credentials(&text)
            .with_context(|| format!("{} at {}: unexpected answer", req.action(), req.endpoint));
    }
    let (code, message) = parse_error(&text).unwrap_or_else(|| {
        let snippet: String = text.chars().take(200).collect();
        (format!("HTTP {status}"), snippet.trim().to_owned())
    });
    Err(StsError {
        status,
        code,
        message,
        endpoint: req.endpoint.clone(),
        action: req.action(),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"<GetSessionTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetSessionTokenResult>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalr/K7+MDENG</SecretAccessKey>
      <SessionToken>tok&amp;en+/=</SessionToken>
      <Expiration>2026-12-03T12:00:00Z</Expiration>
    </Credentials>
  </GetSessionTokenResult>
  <ResponseMetadata><RequestId>58c5dbae</RequestId></ResponseMetadata>
</GetSessionTokenResponse>"#;

    const ERR: &str = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>MultiFactorAuthentication failed with invalid MFA one time pass code. </Message>
  </Error>
  <RequestId>1</RequestId>
</ErrorResponse>"#;

    #[test]
    fn parses_credentials() {
        let c = parse_credentials(OK).expect("parses");
        assert_eq!(c.access_key_id, "ASIAEXAMPLE");
        assert_eq!(c.secret_access_key.expose(), "wJalr/K7+MDENG");
        assert_eq!(c.session_token.expose(), "tok&en+/=");
        assert_eq!(c.expiration_string(), "2026-12-03T12:00:00Z");
        assert!(parse_credentials("<x/>").is_err());
        let assume = OK.replace("GetSessionToken", "AssumeRole");
        assert_eq!(
            parse_credentials(&assume).expect("role").access_key_id,
            "ASIAEXAMPLE"
        );
    }

    #[test]
    fn parses_errors() {
        let (code, message) = parse_error(ERR).expect("error");
        assert_eq!(code, "AccessDenied");
        assert!(message.starts_with("MultiFactorAuthentication failed with invalid"));
        assert!(parse_error(OK).is_none());
        let e = StsError {
            status: 403,
            code,
            message,
            endpoint: "http://h".into(),
            action: "GetSessionToken",
        };
        assert!(e.is_refused_code());
        assert!(
            e.to_string()
                .contains("GetSessionToken at http://h failed: AccessDenied: ")
        );
        let serial = StsError {
            message: "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user.".into(),
            ..e.clone()
        };
        assert!(!serial.is_refused_code());
        let other = StsError {
            code: "InvalidAuthenticationCode".into(),
            ..e
        };
        assert!(other.is_refused_code());
    }

    #[test]
    fn unescapes() {
        assert_eq!(
            xml_unescape("a&lt;b&gt;&quot;&apos;&#65;&#x42;&bogus;"),
            "a<b>\"'AB&bogus;"
        );
        assert_eq!(xml_text("<A x=\"1\">v</A>", "A").as_deref(), Some("v"));
        assert_eq!(xml_text("<A/>", "A").as_deref(), Some(""));
    }

    #[test]
    fn bodies() {
        let mut r = StsRequest {
            endpoint: "http://h".into(),
            region: "us-east-1".into(),
            role_arn: None,
            role_session_name: "s".into(),
            external_id: None,
            duration_seconds: Some(900),
            mfa_serial: Some("arn:aws:iam::1:mfa/a".into()),
            mfa_code: Some("123456".into()),
        };
        assert_eq!(
            r.body(),
            "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900&SerialNumber=arn%3Aaws%3Aiam%3A%3A1%3Amfa%2Fa&TokenCode=123456"
        );
        r.role_arn = Some("arn:aws:iam::1:role/r".into());
        assert!(r.body().starts_with("Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&RoleSessionName=s&"));
    }

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://127.0.0.1:8754").expect("ok"),
            ("http", "127.0.0.1:8754", "/")
        );
        assert_eq!(
            split_url("https://sts.x.com/p/?q").expect("ok"),
            ("https", "sts.x.com", "/p/")
        );
        assert!(split_url("ftp://x").is_err());
        assert!(split_url("nohost").is_err());
    }
}
