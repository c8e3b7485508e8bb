//! One HTTP/1.1 keep-alive connection (hyper's low-level client; no pool, no retries).

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// A keep-alive connection to one server.
pub struct Conn {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
    task: tokio::task::JoinHandle<()>,
    /// How often the server had closed the connection before a request, so that a new one was opened
    /// (an HTTP/1.0 server does that after every answer).
    pub reopened: u64,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn open(
    addr: SocketAddr,
) -> anyhow::Result<(SendRequest<Full<Bytes>>, tokio::task::JoinHandle<()>)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, task))
}

impl Conn {
    /// Connects to `addr` (TCP_NODELAY, like botocore's urllib3 and the server).
    ///
    /// # Errors
    /// Connection or handshake failures.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
        let (sender, task) = open(addr).await?;
        Ok(Conn {
            addr,
            sender,
            task,
            reopened: 0,
        })
    }

    /// Replaces the connection with a new one.
    ///
    /// # Errors
    /// Connection or handshake failures.
    pub async fn reconnect(&mut self) -> anyhow::Result<()> {
        let (sender, task) = open(self.addr).await?;
        self.task.abort();
        self.sender = sender;
        self.task = task;
        Ok(())
    }

    /// Sends one request and reads the whole answer: `(status, body)`. A connection the server closed
    /// while idle is reopened first (as a pooling client would), counted in [`Conn::reopened`].
    ///
    /// # Errors
    /// Transport failures (connection refused or reset, malformed answer).
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
        if self.sender.is_closed() || self.sender.ready().await.is_err() {
            self.reconnect().await?;
            self.reopened += 1;
            self.sender.ready().await?;
        }
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}
