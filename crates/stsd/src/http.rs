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
use hyper_util::server::graceful::GracefulShutdown;
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
/// How long a client may take to send the request head (also the idle keep-alive limit).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send the body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

const X_AMZN_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-amzn-requestid");

fn response(status: u16, body: String, request_id: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/xml"),
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
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    if req.method() == http::Method::GET {
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
    };
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
    Ok(response(outcome.status, outcome.body, &request_id))
}

/// Serves connections from `listener` until `shutdown` resolves, then lets in-flight requests finish
/// (up to [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    max_connections: usize,
    tls: Option<Arc<crate::tls::Tls>>,
    shutdown: impl Future<Output = ()>,
) {
    // Connections beyond the limit wait in the kernel's accept queue until one closes.
    let permits = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    let graceful = GracefulShutdown::new();
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
                        // Usually EMFILE: back off briefly instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&state);
                let svc = service_fn(move |req| serve_request(Arc::clone(&state), req, peer));
                let watcher = graceful.watcher();
                let builder = builder.clone();
                let acceptor = tls.as_ref().map(|t| t.acceptor());
                // Each connection (and its TLS handshake) runs in its own task, so a slow handshake
                // never holds up the accept loop.
                tokio::spawn(async move {
                    let _permit = permit;
                    let result = match acceptor {
                        None => watcher.watch(builder.serve_connection(TokioIo::new(stream), svc)).await,
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
                            watcher.watch(builder.serve_connection(TokioIo::new(tls_stream), svc)).await
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
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within the grace period");
    }
}
