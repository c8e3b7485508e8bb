//! `stsd-ceiling`: the machine's HTTP ceiling for stsd's benchmark. A minimal hyper server set up like
//! stsd's HTTP layer (multi-threaded tokio, HTTP/1.1 keep-alive, TCP_NODELAY, header timeout, whole body
//! read) that answers every request with a fixed `GetCallerIdentity` XML body and does nothing else.

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

/// The fixed answer: a GetCallerIdentity response of the size stsd writes for an IAM user.
const BODY: &str = "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <GetCallerIdentityResult>\n    <Arn>arn:aws:iam::123456789012:user/bench-user</Arn>\n    <UserId>AIDAEXAMPLEUSERID0000</UserId>\n    <Account>123456789012</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>01234567-89ab-4cde-8f01-23456789abcd</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n";

/// Minimal HTTP server answering a fixed GetCallerIdentity body.
#[derive(Debug, Parser)]
#[command(name = "stsd-ceiling", version, about)]
struct Cli {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Exit after this many seconds even if nobody stops it.
    #[arg(long, default_value_t = 7200)]
    lifetime: u64,
}

async fn answer(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the whole body, as stsd does (64 KiB limit).
    let _ = Limited::new(req.into_body(), 64 * 1024).collect().await;
    let mut r = Response::new(Full::new(Bytes::from_static(BODY.as_bytes())));
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/xml"),
    );
    h.insert(
        "x-amzn-requestid",
        http::HeaderValue::from_static("01234567-89ab-4cde-8f01-23456789abcd"),
    );
    Ok(r)
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    println!("stsd-ceiling listening on {}", listener.local_addr()?);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .keep_alive(true);
    let lifetime = tokio::time::sleep(Duration::from_secs(cli.lifetime));
    tokio::pin!(lifetime);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let conn = builder.serve_connection(TokioIo::new(stream), service_fn(answer));
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = tokio::signal::ctrl_c() => break,
            () = &mut lifetime => break,
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    stsd_loadgen::run_main("stsd-ceiling", serve(Cli::parse()))
}
