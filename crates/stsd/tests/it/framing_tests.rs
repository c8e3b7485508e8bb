//! Response framing, the health check, slow and idle connections, and shutdown with open connections.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::auth_tests::{GCI, raw_session};
use crate::harness::{Server, unix_now};
use crate::raw;
use crate::sign::{self, SignCfg};
use crate::xml::{assert_error, assert_success, assert_xml_framing, must, text};

#[test]
fn get_session_token_body_layout() {
    let srv = Server::start();
    let before = unix_now();
    let r = sign::post(
        srv.addr,
        &srv.root,
        "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900",
    );
    let inner = assert_success(&r, "GetSessionToken");
    let id = must(&r.body, "AccessKeyId");
    let secret = must(&r.body, "SecretAccessKey");
    let token = must(&r.body, "SessionToken");
    let expiration = must(&r.body, "Expiration");
    let size = token.len();
    // Credentials in AWS's real order, then the size members.
    assert_eq!(
        inner,
        format!(
            "    <Credentials>\n      <AccessKeyId>{id}</AccessKeyId>\n      <SecretAccessKey>{secret}</SecretAccessKey>\n      <SessionToken>{token}</SessionToken>\n      <Expiration>{expiration}</Expiration>\n    </Credentials>\n    <SessionTokenUtilization>{}</SessionTokenUtilization>\n    <SessionTokenSize>{size}</SessionTokenSize>\n",
            (size * 100).div_ceil(4096)
        )
    );
    // YYYY-MM-DDTHH:MM:SSZ, whole seconds, issue time + 900.
    let candidates: Vec<String> = (before..=unix_now())
        .map(|t| {
            aws_smithy_types::DateTime::from_secs(t + 900)
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .unwrap()
        })
        .collect();
    assert!(
        candidates.contains(&expiration),
        "{expiration} not in {candidates:?}"
    );
    assert_eq!(expiration.len(), 20);
}

#[test]
fn request_ids_match_and_are_unique() {
    let srv = Server::start();
    let session = raw_session(&srv, None);
    let mut ids = HashSet::new();
    let responses = [
        sign::post(srv.addr, &srv.root, GCI),
        sign::post(srv.addr, &session, GCI),
        sign::presigned_get(srv.addr, &srv.root, GCI, &SignCfg::default()).send(),
        sign::post(
            srv.addr,
            &session,
            "Action=GetSessionToken&Version=2011-06-15",
        ),
        sign::post(srv.addr, &srv.root, "Action=Foo&Version=2011-06-15"),
        raw::send(srv.addr, "GET", "/", &[], b""),
    ];
    for r in &responses {
        let rid = assert_xml_framing(r);
        let body_rid = must(&r.body, "RequestId");
        assert_eq!(rid, body_rid, "{}", r.body);
        assert!(ids.insert(rid), "request id reused");
        if r.status >= 400 {
            assert!(r.body.starts_with("<ErrorResponse "), "{}", r.body);
            assert_eq!(text(&r.body, "Type").as_deref(), Some("Sender"));
            assert!(!r.body.contains("<ResponseMetadata>"), "{}", r.body);
        } else {
            assert!(
                r.body.contains("  <ResponseMetadata>\n    <RequestId>"),
                "{}",
                r.body
            );
        }
    }
    assert_eq!(
        responses.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 200, 200, 403, 400, 403]
    );
}

#[test]
fn healthz() {
    let srv = Server::start();
    let r = raw::send(srv.addr, "GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "ok\n");
}

#[test]
fn http_method_other_than_get_or_post() {
    let srv = Server::start();
    // Authentication is not even looked at; the answer is still an AWS error document.
    let r = raw::send(srv.addr, "PUT", &format!("/?{GCI}"), &[], b"");
    assert_eq!(r.status, 405, "{r:?}");
    assert_xml_framing(&r);
    assert_eq!(text(&r.body, "Code").as_deref(), Some("MethodNotAllowed"));
}

/// Reads until the peer closes; returns how long it took (panics after `limit`).
fn time_until_closed(mut s: TcpStream, started: Instant, limit: Duration) -> Duration {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return started.elapsed(),
            Err(e) => panic!("connection still open after {:?}: {e}", started.elapsed()),
        }
    }
}

/// A client that connects and sends nothing is disconnected by the 5 s idle timeout, and one that sends half
/// a request head and stalls by the idle or the 10 s header timeout, while other clients are served
/// meanwhile.
#[test]
fn idle_and_slow_connections_are_closed() {
    let srv = Server::start();
    let started = Instant::now();
    let idle = TcpStream::connect(srv.addr).unwrap();
    let mut slow = TcpStream::connect(srv.addr).unwrap();
    slow.write_all(format!("POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: ", srv.addr).as_bytes())
        .unwrap();
    let limit = Duration::from_secs(16);
    let slow_thread = std::thread::spawn(move || time_until_closed(slow, started, limit));
    let idle_thread = std::thread::spawn(move || time_until_closed(idle, started, limit));

    // Other clients are not held up.
    std::thread::sleep(Duration::from_millis(200));
    let r = sign::post(srv.addr, &srv.root, GCI);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(started.elapsed() < Duration::from_secs(5));

    let took = idle_thread.join().unwrap();
    assert!(
        took >= Duration::from_secs(4) && took <= Duration::from_secs(8),
        "idle connection closed after {took:?} (idle timeout is 5 s)"
    );
    let took = slow_thread.join().unwrap();
    assert!(
        took >= Duration::from_secs(4) && took <= Duration::from_secs(15),
        "slow connection closed after {took:?} (idle timeout 5 s, header timeout 10 s)"
    );
}

/// SIGTERM ends the server promptly and successfully even with idle and kept-alive connections open.
#[test]
fn graceful_shutdown_with_open_connections() {
    let mut srv = Server::start();
    let _idle = TcpStream::connect(srv.addr).unwrap();
    // A kept-alive connection that has been served once.
    let mut kept = TcpStream::connect(srv.addr).unwrap();
    kept.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", srv.addr).as_bytes())
        .unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 512];
    let n = kept.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 "),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let started = Instant::now();
    let status = srv.stop();
    assert!(status.success(), "exit {status}; stderr:\n{}", srv.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    // The kept-alive connection was closed.
    assert_eq!(kept.read(&mut buf).unwrap_or(0), 0);
}

#[test]
fn error_body_is_the_reference_envelope() {
    let srv = Server::start();
    let r = raw::send(srv.addr, "GET", &format!("/?{GCI}"), &[], b"");
    assert_error(
        &r,
        403,
        "MissingAuthenticationToken",
        "Request is missing Authentication Token",
    );
    let rid = r.header("x-amzn-requestid").unwrap();
    assert_eq!(
        r.body,
        format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>MissingAuthenticationToken</Code>\n    <Message>Request is missing Authentication Token</Message>\n  </Error>\n  <RequestId>{rid}</RequestId>\n</ErrorResponse>\n"
        )
    );
}
