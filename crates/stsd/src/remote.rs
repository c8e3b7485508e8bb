//! A small IAM client for `stsd admin --endpoint-url`: SigV4-signed POSTs (our own signer), over HTTP or
//! HTTPS, answers read back into typed [`IamOutput`]s.

use crate::admin::RemoteArgs;
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use stsd_proto::iam::{IamAction, IamOutput};

/// A configured remote endpoint.
pub struct Remote {
    https: bool,
    host: String,
    port: u16,
    access_key_id: String,
    secret_access_key: zeroize::Zeroizing<String>,
    session_token: Option<String>,
    region: String,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

fn tls_connector(ca_file: Option<&std::path::Path>) -> anyhow::Result<tokio_rustls::TlsConnector> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let path = ca_file
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&path)
        .with_context(|| format!("reading CA file {}", path.display()))?
    {
        roots.add(cert.with_context(|| format!("parsing CA file {}", path.display()))?)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

impl Remote {
    /// Reads the endpoint and credentials.
    ///
    /// # Errors
    /// A malformed endpoint, missing credentials, an unreadable CA file.
    pub fn new(endpoint: &str, args: &RemoteArgs) -> anyhow::Result<Remote> {
        let (https, rest) = if let Some(r) = endpoint.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = endpoint.strip_prefix("http://") {
            (false, r)
        } else {
            bail!("--endpoint-url must start with http:// or https://");
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h.to_owned(),
                p.parse::<u16>().context("the port of --endpoint-url")?,
            ),
            _ => (authority.to_owned(), if https { 443 } else { 80 }),
        };
        if host.is_empty() {
            bail!("--endpoint-url has no host");
        }
        let access_key_id = args.access_key_id.clone().context(
            "--endpoint-url needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )?;
        let secret = args
            .secret_access_key
            .clone()
            .context("--endpoint-url needs AWS_SECRET_ACCESS_KEY in the environment")?;
        Ok(Remote {
            https,
            host,
            port,
            access_key_id,
            secret_access_key: zeroize::Zeroizing::new(secret),
            session_token: args.session_token.clone(),
            region: args.region.clone(),
            tls: if https {
                Some(tls_connector(args.ca_file.as_deref())?)
            } else {
                None
            },
        })
    }

    fn host_header(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Sends one IAM action and reads its answer.
    ///
    /// # Errors
    /// Network failures, and the server's AWS error as `Code: Message`.
    pub async fn execute(&self, action: &IamAction) -> anyhow::Result<IamOutput> {
        let body = form_urlencoded_body(action.to_params());
        let host = self.host_header();
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let signed = stsd_sigv4::sign_headers(&stsd_sigv4::SignParams {
            method: "POST",
            path: "/",
            query: "",
            headers: &[("host", &host), ("content-type", content_type)],
            body: body.as_bytes(),
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            security_token: self.session_token.as_deref(),
            region: &self.region,
            service: "iam",
            unix_time: stsd_core::timefmt::now_unix(),
        });
        let mut req = http::Request::builder()
            .method("POST")
            .uri("/")
            .header("host", &host)
            .header("content-type", content_type)
            .header(
                "user-agent",
                concat!("stsd-admin/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in &signed {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req.body(Full::new(Bytes::from(body)))?;
        let tcp = tokio::net::TcpStream::connect((self.host.trim_matches(['[', ']']), self.port))
            .await
            .with_context(|| format!("connecting to {}:{}", self.host, self.port))?;
        let (status, text) = match &self.tls {
            None => send(TokioIo::new(tcp), req).await?,
            Some(connector) => {
                let name = rustls_pki_types::ServerName::try_from(
                    self.host.trim_matches(['[', ']']).to_owned(),
                )
                .context("the host of --endpoint-url is not a valid TLS server name")?;
                let stream = connector
                    .connect(name, tcp)
                    .await
                    .context("TLS handshake")?;
                send(TokioIo::new(stream), req).await?
            }
        };
        if status == 200 {
            IamOutput::from_xml(action, &text)
                .map_err(|e| anyhow::anyhow!("unexpected answer: {e}"))
        } else {
            match stsd_proto::xml::parse_error(&text) {
                Some((code, message)) => bail!("{code}: {message}"),
                None => bail!(
                    "HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                ),
            }
        }
    }
}

fn form_urlencoded_body(pairs: Vec<(String, String)>) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&encode(&k));
        out.push('=');
        out.push_str(&encode(&v));
    }
    out
}

fn encode(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(char::from(b));
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

async fn send<T>(io: TokioIo<T>, req: http::Request<Full<Bytes>>) -> anyhow::Result<(u16, String)>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    driver.abort();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
