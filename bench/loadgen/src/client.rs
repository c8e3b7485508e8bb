//! One HTTP/1.1 keep-alive connection that writes requests serialised once in advance and reads the
//! answers with `httparse`, the way `wrk` does: per request one write and the reads of the answer, no
//! header maps, no extra task. The client's own CPU is taken from the two cores the server is measured
//! on, so it is kept as small as it can be.

use anyhow::{Context, bail};
use bytes::Bytes;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest answer head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest answer body accepted.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// A keep-alive connection to one server.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// How often the server had closed the connection before a request, so that a new one was opened
    /// (an HTTP/1.0 server does that after every answer).
    pub reopened: u64,
}

/// How the body of an answer is delimited.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// The status, framing and keep-alive of a parsed answer head of `len` bytes.
struct Head {
    len: usize,
    status: u16,
    framing: Framing,
    close: bool,
}

fn parse_head(buf: &[u8]) -> anyhow::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf).context("malformed answer head")? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let status = resp.code.context("answer without a status")?;
    let mut framing = Framing::UntilClose;
    // HTTP/1.0 closes unless it says keep-alive; HTTP/1.1 keeps the connection unless it says close.
    let mut close = resp.version == Some(0);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .context("bad Content-Length")?;
            framing = Framing::Length(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if h.value.eq_ignore_ascii_case(b"chunked") {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    if matches!(status, 100..=199 | 204 | 304) {
        framing = Framing::Length(0);
    }
    Ok(Some(Head {
        len,
        status,
        framing,
        close,
    }))
}

/// Decodes a complete chunked body; `None` while more bytes are needed.
fn dechunk(mut data: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&data[..eol]).context("bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).context("bad chunk size")?;
        let rest = &data[eol + 2..];
        if size == 0 {
            // The last chunk, then (no trailers here) the final CRLF.
            return Ok(rest.starts_with(b"\r\n").then_some(out));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&rest[..size]);
        data = &rest[size + 2..];
        if out.len() > MAX_BODY {
            bail!("answer body over {MAX_BODY} bytes");
        }
    }
}

impl Conn {
    /// Connects to `addr` (TCP_NODELAY, like botocore's urllib3 and the server).
    ///
    /// # Errors
    /// Connection failures.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
        let mut c = Conn {
            addr,
            stream: None,
            buf: Vec::with_capacity(8192),
            reopened: 0,
        };
        c.reconnect().await?;
        Ok(c)
    }

    /// Replaces the connection with a new one.
    ///
    /// # Errors
    /// Connection failures.
    pub async fn reconnect(&mut self) -> anyhow::Result<()> {
        self.stream = None;
        let stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        self.stream = Some(stream);
        self.buf.clear();
        Ok(())
    }

    /// Sends one serialised request and reads the whole answer: `(status, body)`. A connection the
    /// server had closed (after an answer that said so, or while idle: the request then gets no byte of
    /// answer) is reopened, as a pooling client would, and counted in [`Conn::reopened`].
    ///
    /// # Errors
    /// Transport failures (connection refused or reset, malformed answer).
    pub async fn send(&mut self, request: &[u8]) -> anyhow::Result<(u16, Bytes)> {
        if self.stream.is_none() {
            self.reconnect().await?;
            self.reopened += 1;
        }
        match self.exchange(request).await? {
            Some(answer) => Ok(answer),
            None => {
                // Closed while idle: the request was not answered, so it is sent again once.
                self.reconnect().await?;
                self.reopened += 1;
                self.exchange(request)
                    .await?
                    .context("connection closed before an answer")
            }
        }
    }

    /// One request and its answer; `None` when the connection turned out to be closed before any
    /// byte of the answer arrived.
    async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<Option<(u16, Bytes)>> {
        let Some(stream) = self.stream.as_mut() else {
            bail!("not connected");
        };
        self.buf.clear();
        if let Err(e) = stream.write_all(request).await {
            return match e.kind() {
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => Ok(None),
                _ => Err(e.into()),
            };
        }
        let head = loop {
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            if self.buf.len() > MAX_HEAD {
                bail!("answer head over {MAX_HEAD} bytes");
            }
            let n = match read_more(stream, &mut self.buf).await {
                Err(e)
                    if e.kind() == std::io::ErrorKind::ConnectionReset && self.buf.is_empty() =>
                {
                    0
                }
                r => r?,
            };
            if n == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                bail!("connection closed in the answer head");
            }
        };
        let body = match head.framing {
            Framing::Length(n) => {
                if n > MAX_BODY {
                    bail!("answer body over {MAX_BODY} bytes");
                }
                while self.buf.len() < head.len + n {
                    if read_more(stream, &mut self.buf).await? == 0 {
                        bail!("connection closed in the answer body");
                    }
                }
                Bytes::copy_from_slice(&self.buf[head.len..head.len + n])
            }
            Framing::Chunked => loop {
                if let Some(body) = dechunk(&self.buf[head.len..])? {
                    break Bytes::from(body);
                }
                if read_more(stream, &mut self.buf).await? == 0 {
                    bail!("connection closed in a chunked body");
                }
            },
            Framing::UntilClose => {
                while read_more(stream, &mut self.buf).await? > 0 {
                    if self.buf.len() > head.len + MAX_BODY {
                        bail!("answer body over {MAX_BODY} bytes");
                    }
                }
                self.stream = None;
                return Ok(Some((
                    head.status,
                    Bytes::copy_from_slice(&self.buf[head.len..]),
                )));
            }
        };
        if head.close {
            self.stream = None;
        }
        Ok(Some((head.status, body)))
    }
}

/// Reads what is available into `buf`; 0 at end of stream.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    buf.reserve(4096);
    stream.read_buf(buf).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that reads one request head per answer and writes `answers` in turn, closing the
    /// connection after the ones marked so.
    async fn server(answers: Vec<(&'static [u8], bool)>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let mut answers = answers.into_iter();
            'conns: while let Ok((mut s, _)) = listener.accept().await {
                loop {
                    let mut req = Vec::new();
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        let mut b = [0u8; 1024];
                        match s.read(&mut b).await {
                            Ok(0) | Err(_) => continue 'conns,
                            Ok(n) => req.extend_from_slice(&b[..n]),
                        }
                    }
                    let Some((answer, close)) = answers.next() else {
                        return;
                    };
                    if s.write_all(answer).await.is_err() {
                        continue 'conns;
                    }
                    if close {
                        continue 'conns;
                    }
                }
            }
        });
        addr
    }

    const REQ: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    #[tokio::test]
    async fn keep_alive_chunked_and_closing_answers() {
        let addr = server(vec![
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false),
            (
                b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                false,
            ),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", true),
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close", true),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false),
        ])
        .await;
        let mut c = Conn::connect(addr).await.expect("connects");
        let (s, b) = c.send(REQ).await.expect("first");
        assert_eq!((s, &b[..]), (200, &b"hello"[..]));
        let (s, b) = c.send(REQ).await.expect("chunked");
        assert_eq!((s, &b[..]), (403, &b"abcde"[..]));
        assert_eq!(c.reopened, 0);
        let (s, b) = c.send(REQ).await.expect("HTTP/1.0");
        assert_eq!((s, &b[..]), (200, &b"ok"[..]));
        let (s, b) = c
            .send(REQ)
            .await
            .expect("after a close, on a new connection");
        assert_eq!((s, &b[..]), (200, &b"until close"[..]));
        assert_eq!(c.reopened, 1);
        let (s, b) = c.send(REQ).await.expect("no body");
        assert_eq!((s, b.len()), (204, 0));
        assert_eq!(c.reopened, 2);
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_reopened_and_the_request_sent_again() {
        // The server closes after the first answer without saying so.
        let addr = server(vec![
            (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", true),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb", false),
        ])
        .await;
        let mut c = Conn::connect(addr).await.expect("connects");
        assert_eq!(&c.send(REQ).await.expect("first").1[..], b"a");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(&c.send(REQ).await.expect("second").1[..], b"b");
        assert_eq!(c.reopened, 1);
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(parse_head(b"NOT HTTP\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-"),
            Ok(None)
        ));
        assert!(dechunk(b"zz\r\n").is_err());
        assert!(matches!(dechunk(b"3\r\nab"), Ok(None)));
    }
}
