//! A local container-credentials endpoint (the ECS-style one the SDKs read through
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN`): loopback only, a random token
//! required verbatim in `Authorization`, answering `{"AccessKeyId", "SecretAccessKey", "Token",
//! "Expiration"}`, and a background thread that refreshes the session when less than the margin is left.
//!
//! Plain blocking HTTP/1.1 on std threads: one short request per connection, answered with
//! `Connection: close`.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use time::OffsetDateTime;

use crate::mfa::notice;
use crate::secret::{Secret, SessionCredentials};
use crate::session::Provider;

/// The path the credentials are served on.
pub const PATH: &str = "/credentials";

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// A running endpoint.
#[derive(Debug)]
pub struct Endpoint {
    /// `http://127.0.0.1:PORT/credentials`.
    pub uri: String,
    /// The token clients must send in `Authorization`.
    pub token: Secret,
}

/// 32 random bytes from the OS, hex.
pub fn random_token() -> Result<Secret> {
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("cannot read random bytes from /dev/urandom")?;
    Ok(Secret::new(hex::encode(buf)))
}

struct Shared {
    provider: Arc<Provider>,
    creds: Mutex<SessionCredentials>,
    token: Secret,
}

impl Shared {
    fn current(&self) -> Result<SessionCredentials> {
        let c = self
            .creds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // Usable for another minute: serve it (the refresher replaces it at the margin).
        if c.seconds_left(OffsetDateTime::now_utc()) > 60 {
            return Ok(c);
        }
        let fresh = self.provider.get(false)?;
        *self.creds.lock().unwrap_or_else(PoisonError::into_inner) = fresh.clone();
        Ok(fresh)
    }

    fn refresh_loop(&self) {
        loop {
            let left = self
                .creds
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .seconds_left(OffsetDateTime::now_utc());
            let margin = i64::try_from(self.provider.margin()).unwrap_or(i64::MAX);
            // At least 5 s between refreshes, even when the margin is longer than a session.
            let wait = left.saturating_sub(margin).max(5);
            std::thread::sleep(
                Duration::from_secs(wait.unsigned_abs()) + Duration::from_millis(200),
            );
            match self.provider.get(false) {
                Ok(c) => {
                    *self.creds.lock().unwrap_or_else(PoisonError::into_inner) = c;
                }
                Err(e) => {
                    notice(&format!(
                        "refreshing the session failed: {e:#}; retrying in 30 s"
                    ));
                    std::thread::sleep(Duration::from_secs(30));
                }
            }
        }
    }
}

/// Refuses a non-loopback address: the endpoint hands out credentials to whoever has the token, and the
/// token travels in clear text.
pub fn check_loopback(listen: SocketAddr) -> Result<()> {
    if !listen.ip().is_loopback() {
        bail!("--listen {listen}: the credentials endpoint listens on loopback addresses only");
    }
    Ok(())
}

/// Binds `listen` (must be a loopback address) and serves `provider`'s sessions from `initial` on, in
/// background threads that live as long as the process.
pub fn start(
    provider: Arc<Provider>,
    listen: SocketAddr,
    initial: SessionCredentials,
) -> Result<Endpoint> {
    check_loopback(listen)?;
    let listener =
        TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr().context("local address")?;
    let token = random_token()?;
    let shared = Arc::new(Shared {
        provider,
        creds: Mutex::new(initial),
        token: token.clone(),
    });
    let refresher = Arc::clone(&shared);
    std::thread::spawn(move || refresher.refresh_loop());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let _ = handle(stream, &shared);
            });
        }
    });
    let host = match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    Ok(Endpoint {
        uri: format!("http://{host}:{}{PATH}", addr.port()),
        token,
    })
}

/// The request line's target and the `Authorization` value of a request head.
fn parse_head(head: &str) -> Option<(&str, &str, Option<&str>)> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?;
    let target = first.next()?;
    let auth = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("authorization")
            .then_some(value.trim())
    });
    Some((method, target, auth))
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

fn error_body(code: &str, message: &str) -> String {
    serde_json::json!({ "Code": code, "Message": message }).to_string()
}

/// The container-credentials JSON (`Token`, not `SessionToken`).
pub fn container_json(c: &SessionCredentials) -> String {
    serde_json::json!({
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key.expose(),
        "Token": c.session_token.expose(),
        "Expiration": c.expiration_string(),
    })
    .to_string()
}

fn handle(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if buf.len() > MAX_HEAD {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                &error_body("TooLarge", "request head too large"),
            );
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let Some((method, target, auth)) = parse_head(&head) else {
        return respond(
            &mut stream,
            "400 Bad Request",
            &error_body("BadRequest", "malformed request"),
        );
    };
    if method != "GET" {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            &error_body("MethodNotAllowed", "use GET"),
        );
    }
    if target.split('?').next() != Some(PATH) {
        return respond(
            &mut stream,
            "404 Not Found",
            &error_body("NotFound", "no such path"),
        );
    }
    if auth != Some(shared.token.expose()) {
        return respond(
            &mut stream,
            "401 Unauthorized",
            &error_body(
                "Unauthorized",
                "the Authorization header must carry the endpoint's token",
            ),
        );
    }
    match shared.current() {
        Ok(c) => respond(&mut stream, "200 OK", &container_json(&c)),
        Err(e) => respond(
            &mut stream,
            "500 Internal Server Error",
            &error_body("CredentialsUnavailable", &format!("{e:#}")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let (m, t, a) =
            parse_head("GET /credentials HTTP/1.1\r\nHost: x\r\nauthorization:  tok \r\n\r\n")
                .expect("parses");
        assert_eq!((m, t, a), ("GET", "/credentials", Some("tok")));
        let (_, _, a) = parse_head("GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("parses");
        assert!(a.is_none());
    }

    #[test]
    fn container_json_uses_token() {
        let c = SessionCredentials {
            access_key_id: "ASIA1".into(),
            secret_access_key: Secret::new("s"),
            session_token: Secret::new("t"),
            expiration: crate::secret::parse_timestamp("2030-01-01T00:00:00Z").expect("ts"),
        };
        let v: serde_json::Value = serde_json::from_str(&container_json(&c)).expect("json");
        assert_eq!(v["Token"], "t");
        assert_eq!(v["Expiration"], "2030-01-01T00:00:00Z");
        assert!(v.get("SessionToken").is_none());
        assert!(check_loopback("0.0.0.0:1".parse().expect("addr")).is_err());
        assert!(check_loopback("[::1]:1".parse().expect("addr")).is_ok());
        let t1 = random_token().expect("token");
        assert_eq!(t1.expose().len(), 64);
        assert_ne!(t1, random_token().expect("token"));
    }
}
