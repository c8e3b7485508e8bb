//! The HTTP layer: accept loop, limits, timeouts, graceful shutdown.

use crate::handler::{self, Incoming};
use crate::state::AppState;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming as Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use stsd_proto::ApiError;
use stsd_proto::request::STS_NS;
use stsd_proto::xml::error_body;
use tokio::net::TcpListener;

/// The largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// How long a client may take to send the request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may stay idle (no request in progress, nothing received) before it is closed:
/// shorter than [`HEADER_TIMEOUT`], so idle keep-alive connections cannot hold the connection slots.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Back-off of the accept loop when the process is out of file descriptors (`EMFILE`/`ENFILE`).
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The least time between two warnings about failing accepts.
const ACCEPT_WARNING_INTERVAL: Duration = Duration::from_secs(60);
/// How long a client may take to send the body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

const X_AMZN_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-amzn-requestid");

fn response(status: u16, body: String, request_id: &str) -> Response<Full<Bytes>> {
    response_typed(status, body, request_id, "text/xml")
}

fn response_typed(
    status: u16,
    body: String,
    request_id: &str,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        h.insert(X_AMZN_REQUEST_ID, v);
    }
    r
}

fn plain(status: u16, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    r
}

/// Scheduler ticks between a worker's checks for new socket events (tokio's default is 61).
///
/// A request here is a few tens of microseconds of work, and with many keep-alive connections a worker
/// that polls the event queue less often drains a larger batch of ready connections in one go. Measured
/// on the 2-core benchmark machine (64 connections, GetSessionToken): p99 4.5-5.0 ms against 5.5-5.8 ms
/// at 61, with the same throughput; 7 was worse on both. The benchmark's HTTP ceiling uses the same value.
pub const EVENT_INTERVAL: u32 = 200;

fn error_response(e: &ApiError, request_id: &str) -> Response<Full<Bytes>> {
    response(e.status, error_body(e, STS_NS, request_id), request_id)
}

async fn serve_request(
    state: Arc<AppState>,
    req: Request<Body>,
    peer: SocketAddr,
    tls: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    if req.method() == http::Method::GET && matches!(req.uri().path(), "/healthz" | "/metrics") {
        // Inside the per-IP rate limit like every other request.
        if state.ip_limit.enabled() && !state.ip_limit.allow(&peer.ip().to_string()) {
            state.metrics.throttled();
            return Ok(error_response(
                &ApiError::throttling(),
                &handler::new_request_id(),
            ));
        }
        match req.uri().path() {
            "/healthz" => return Ok(plain(200, "ok\n")),
            "/metrics" => {
                let mut r = Response::new(Full::new(Bytes::from(state.metrics.render())));
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                return Ok(r);
            }
            _ => {}
        }
    }
    let request_id = handler::new_request_id();

    let (parts, body) = req.into_parts();
    if let Some(len) = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > MAX_BODY as u64
    {
        return Ok(error_response(
            &ApiError::body_too_large(MAX_BODY),
            &request_id,
        ));
    }
    let mut collect = std::pin::pin!(Limited::new(body, MAX_BODY).collect());
    // A small body usually arrives with the headers: poll once before arming the timeout, so the common
    // case registers no timer at all.
    let first = std::future::poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await;
    let collected = match first {
        Poll::Ready(done) => Ok(done),
        Poll::Pending => tokio::time::timeout(BODY_TIMEOUT, collect).await,
    };
    let body = match collected {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) => {
            let err = if e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::body_too_large(MAX_BODY)
            } else {
                ApiError::invalid_query("The request body could not be read")
            };
            return Ok(error_response(&err, &request_id));
        }
        Err(_) => return Ok(error_response(&ApiError::request_timeout(), &request_id)),
    };
    let incoming = Incoming {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body: &body,
        peer: peer.ip(),
        tls,
    };
    if state.console.is_some()
        && (incoming.path == "/console" || incoming.path.starts_with("/console/"))
    {
        return Ok(crate::console::handle(&state, &incoming).await);
    }
    if crate::authorizer::is_authorizer_path(incoming.path) {
        let answer = crate::authorizer::handle(&state, &incoming, &request_id).await;
        tracing::debug!(request_id = %request_id, %peer, status = answer.status, reason = ?answer.reason, micros = started.elapsed().as_micros() as u64, "authorizer");
        return Ok(answer.into_response(&request_id));
    }
    let outcome = handler::handle(&state, &incoming, &request_id).await;
    state.metrics.request(
        outcome.action.as_deref(),
        outcome.error_code.as_deref(),
        started.elapsed(),
    );
    // One line per request at debug level: metrics and the audit log are the per-request records at
    // volume; info stays readable (start-up, shutdown, administrative changes, failures).
    tracing::debug!(
        request_id = %request_id,
        %peer,
        action = outcome.action.as_deref().unwrap_or("-"),
        status = outcome.status,
        error = outcome.error_code.as_deref().unwrap_or("-"),
        micros = started.elapsed().as_micros() as u64,
        "handled"
    );
    Ok(response_typed(
        outcome.status,
        outcome.body,
        &request_id,
        if outcome.json {
            "application/json"
        } else {
            "text/xml"
        },
    ))
}

/// What a connection has been doing, for the idle timeout: requests in progress, and when it last
/// received bytes or finished a request (milliseconds since the connection opened).
#[derive(Debug)]
struct Activity {
    opened: Instant,
    busy: std::sync::atomic::AtomicUsize,
    last_ms: std::sync::atomic::AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            busy: std::sync::atomic::AtomicUsize::new(0),
            last_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms
            .fetch_max(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Resolves once the connection has been idle for `limit`.
    async fn idle_for(&self, limit: Duration) {
        use std::sync::atomic::Ordering;
        loop {
            let last = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline && self.busy.load(Ordering::Relaxed) == 0 {
                return;
            }
            // Busy: look again after another period.
            let wake = if Instant::now() >= deadline {
                Instant::now() + limit
            } else {
                deadline
            };
            tokio::time::sleep_until(wake.into()).await;
        }
    }
}

/// Marks a request in progress for [`Activity`].
struct Busy(Arc<Activity>);

impl Busy {
    fn new(a: &Arc<Activity>) -> Self {
        a.busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Busy(Arc::clone(a))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0
            .busy
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A socket that notes when bytes arrive (so a request head being received is not idleness).
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Open connections per client address.
#[derive(Debug, Default)]
struct PerIp {
    counts: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One counted connection; uncounted on drop.
struct IpSlot {
    per_ip: Arc<PerIp>,
    ip: std::net::IpAddr,
}

impl PerIp {
    /// Counts a connection from `ip` unless it has `max` open already (0: no limit).
    fn try_add(self: &Arc<Self>, ip: std::net::IpAddr, max: usize) -> Option<IpSlot> {
        let mut m = self.counts.lock().ok()?;
        let n = m.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            per_ip: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.per_ip.counts.lock()
            && let Some(n) = m.get_mut(&self.ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// True for the accept errors that mean "out of file descriptors".
fn out_of_descriptors(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            rustix::io::Errno::from_io_error(e),
            Some(rustix::io::Errno::MFILE | rustix::io::Errno::NFILE)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Rate-limits the warning about failing accepts: one, then at most one per interval with the number of
/// failures in between.
#[derive(Debug, Default)]
struct AcceptWarnings {
    last: Option<Instant>,
    suppressed: u64,
}

impl AcceptWarnings {
    /// `Some(failures since the last warning)` when a warning should be written now.
    fn note(&mut self, now: Instant) -> Option<u64> {
        self.suppressed += 1;
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < ACCEPT_WARNING_INTERVAL)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Concurrent connections in all (more wait in the kernel's accept queue).
    pub max: usize,
    /// Concurrent connections from one client address (more are closed at once; 0: no limit).
    pub per_ip: usize,
}

/// Serves connections from `listener` until `shutdown` resolves, then lets in-flight requests finish
/// (up to [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    limits: ConnectionLimits,
    tls: Option<Arc<crate::tls::Tls>>,
    shutdown: impl Future<Output = ()>,
) {
    // Connections beyond the limit wait in the kernel's accept queue until one closes.
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max.max(1)));
    let per_ip = Arc::new(PerIp::default());
    // Every connection holds a receiver: the sender learns when the last one has ended.
    let (closing, _) = tokio::sync::watch::channel(false);
    let mut warnings = AcceptWarnings::default();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = async {
                let permit = Arc::clone(&permits).acquire_owned().await;
                (listener.accept().await, permit)
            } => {
                let (accepted, permit) = accepted;
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        let fds = out_of_descriptors(&e);
                        if let Some(n) = warnings.note(Instant::now()) {
                            tracing::warn!(error = %e, failures = n, "accepting connections fails{}", if fds { " (out of file descriptors: lower --max-connections or raise the open-file limit)" } else { "" });
                        }
                        if fds {
                            // Out of descriptors: back off instead of spinning on the ready listener.
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                        }
                        continue;
                    }
                };
                let Some(slot) = per_ip.try_add(peer.ip(), limits.per_ip) else {
                    tracing::debug!(%peer, "connection refused: too many from this address");
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let acceptor = tls.as_ref().map(|t| t.acceptor());
                let is_tls = acceptor.is_some();
                let activity = Arc::new(Activity::new());
                let stream = Tracked { inner: stream, activity: Arc::clone(&activity) };
                let svc = {
                    let state = Arc::clone(&state);
                    let activity = Arc::clone(&activity);
                    service_fn(move |req| {
                        let busy = Busy::new(&activity);
                        let state = Arc::clone(&state);
                        async move {
                            let r = serve_request(state, req, peer, is_tls).await;
                            drop(busy);
                            r
                        }
                    })
                };
                let mut closing = closing.subscribe();
                let builder = builder.clone();
                // Each connection (and its TLS handshake) runs in its own task, so a slow handshake
                // never holds up the accept loop.
                tokio::spawn(async move {
                    let _permit = permit;
                    let _slot = slot;
                    macro_rules! drive {
                        ($io:expr) => {{
                            let conn = builder.serve_connection(TokioIo::new($io), svc);
                            tokio::pin!(conn);
                            let mut ending = false;
                            loop {
                                tokio::select! {
                                    r = conn.as_mut() => break r,
                                    _ = closing.changed(), if !ending => {
                                        conn.as_mut().graceful_shutdown();
                                        ending = true;
                                    }
                                    () = activity.idle_for(IDLE_TIMEOUT), if !ending => {
                                        tracing::debug!(%peer, "closing an idle connection");
                                        conn.as_mut().graceful_shutdown();
                                        ending = true;
                                    }
                                }
                            }
                        }};
                    }
                    let result = match acceptor {
                        None => drive!(stream),
                        Some(acceptor) => {
                            let tls_stream = match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    tracing::debug!(error = %e, %peer, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    return;
                                }
                            };
                            drive!(tls_stream)
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    let _ = closing.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, closing.closed())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within the grace period");
    }
}

/// Serves one connection over any byte stream with the listener's HTTP settings and request handling
/// (no connection limits, no idle timeout): the way in of the in-process fuzz harness ([`crate::fuzz`]).
/// Unlike the listener it supports half-closed connections, so that a client may send everything, close
/// its side and still read every answer.
///
/// # Errors
/// What hyper reports for the connection (malformed heads are answered first, as on a socket).
pub async fn serve_stream<S>(io: S, state: Arc<AppState>, peer: SocketAddr) -> hyper::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| serve_request(Arc::clone(&state), req, peer, false));
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true)
        .half_close(true)
        .serve_connection(TokioIo::new(io), svc)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_warn_once_per_interval() {
        let mut w = AcceptWarnings::default();
        let t0 = Instant::now();
        assert_eq!(w.note(t0), Some(1));
        for i in 1..1000 {
            assert_eq!(w.note(t0 + Duration::from_millis(i)), None);
        }
        // The 999 suppressed ones and this one.
        assert_eq!(w.note(t0 + ACCEPT_WARNING_INTERVAL), Some(1000));
    }

    #[test]
    fn out_of_descriptors_is_recognised() {
        #[cfg(unix)]
        {
            let emfile = std::io::Error::from(rustix::io::Errno::MFILE);
            assert!(out_of_descriptors(&emfile));
            let enfile = std::io::Error::from(rustix::io::Errno::NFILE);
            assert!(out_of_descriptors(&enfile));
        }
        assert!(!out_of_descriptors(&std::io::Error::from(
            std::io::ErrorKind::ConnectionAborted
        )));
    }

    #[test]
    fn per_ip_slots_are_counted_and_released() {
        let p = Arc::new(PerIp::default());
        let ip: std::net::IpAddr = [127, 0, 0, 1].into();
        let a = p.try_add(ip, 2).unwrap();
        let _b = p.try_add(ip, 2).unwrap();
        assert!(p.try_add(ip, 2).is_none());
        assert!(p.try_add([127, 0, 0, 2].into(), 2).is_some());
        drop(a);
        assert!(p.try_add(ip, 2).is_some());
        assert!(p.try_add(ip, 0).is_some(), "0: no limit");
    }
}
