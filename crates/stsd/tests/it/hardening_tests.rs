//! The review's findings (issue 14): each test here failed before its fix.

use crate::auth_tests::{GCI, raw_session};
use crate::harness::{Opts, Server};
use crate::sign::{self, SignCfg};
use crate::xml::{assert_error, assert_success};

/// Sessions spend the budget of the long-term key that created them: minting sessions must not
/// multiply a key's request rate.
#[test]
fn sessions_share_the_rate_limit_of_their_source_key() {
    // Practically no refill during the test: the burst is the whole budget.
    let srv = Server::start_with(Opts::args(&[
        "--rate-limit-per-key",
        "0.001",
        "--rate-limit-burst",
        "3",
    ]));
    let a = raw_session(&srv, None);
    let b = raw_session(&srv, None);
    assert_success(&sign::post(srv.addr, &a, GCI), "GetCallerIdentity");
    // The root key made three requests (two GetSessionToken, one through session a): its budget is spent,
    // whichever of its sessions asks.
    for creds in [&b, &a, &srv.root] {
        assert_error(
            &sign::post(srv.addr, creds, GCI),
            400,
            "Throttling",
            "Rate exceeded",
        );
    }
}

/// A repeated parameter name is refused before anything acts on one of its values: the signature covers
/// the sorted pairs, so reordering duplicates would otherwise change the request's meaning unnoticed.
#[test]
fn duplicate_parameter_names_are_refused() {
    let srv = Server::start();
    let msg = "The parameter DurationSeconds appears more than once in the request";
    let body = "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900&DurationSeconds=3600";
    assert_error(
        &sign::post(srv.addr, &srv.root, body),
        400,
        "InvalidQueryParameter",
        msg,
    );
    // Presigned: the duplicates are inside the signed query string.
    let p = sign::presigned_get(srv.addr, &srv.root, body, &SignCfg::default());
    assert_error(&p.send(), 400, "InvalidQueryParameter", msg);
    // Across the query string and the form body.
    let mut p = sign::signed_post(
        srv.addr,
        &srv.root,
        "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900",
        &SignCfg::default(),
    );
    p.target = "/?DurationSeconds=3600".to_owned();
    assert_error(&p.send(), 400, "InvalidQueryParameter", msg);
    // List members are distinct names; the request itself still works.
    assert_success(
        &sign::post(
            srv.addr,
            &srv.root,
            "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900",
        ),
        "GetSessionToken",
    );
}

/// Requests signed with made-up access key ids reach the database once per id and 5 s, not every time.
#[test]
fn unknown_access_keys_are_remembered_briefly() {
    let srv = Server::start();
    let lookups = |srv: &Server| srv.metric("stsd_store_duration_seconds_count{op=\"access_key\"}");
    let before = lookups(&srv);
    let nobody = crate::sign::Creds::new("AKIANOBODY0000000001", "secretsecretsecretsecret");
    for _ in 0..5 {
        assert_error(
            &sign::post(srv.addr, &nobody, GCI),
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        );
    }
    assert_eq!(
        lookups(&srv) - before,
        1,
        "one database lookup for one unknown id"
    );
    // An id no stored key can have (too long, or not letters and digits) is not looked up at all.
    for id in ["AKIA".repeat(50), "AKIA-NOT-ALNUM-00001".to_owned()] {
        let odd = crate::sign::Creds::new(&id, "secretsecretsecretsecret");
        assert_eq!(sign::post(srv.addr, &odd, GCI).status, 403);
    }
    assert_eq!(
        lookups(&srv) - before,
        1,
        "malformed ids reached the database"
    );
    // Known keys still work.
    assert_success(&sign::post(srv.addr, &srv.root, GCI), "GetCallerIdentity");
}

/// Runs SQL on a running server's SQLite database (fault injection).
async fn sql(data_dir: &std::path::Path, statements: &str) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", data_dir.join("stsd.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(statements.to_owned()))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
}

/// When a session's revocation time cannot be read and none is cached, the session is refused with 503
/// (it may have been revoked), not accepted.
#[tokio::test]
async fn unreadable_revocation_state_refuses_sessions() {
    let dir = crate::harness::TempDir::new("revocation");
    let data = dir.data_dir();
    let srv = Server::start_in(&data, &Opts::default());
    let session = raw_session(&srv, None);
    // The root's revocation time lives in stsd_meta: make it unreadable.
    sql(&data, "ALTER TABLE stsd_meta RENAME TO stsd_meta_away").await;
    let addr = srv.addr;
    let s = session.clone();
    let r = tokio::task::spawn_blocking(move || sign::post(addr, &s, GCI))
        .await
        .unwrap();
    assert_error(
        &r,
        503,
        "ServiceUnavailable",
        "The request has failed due to a temporary failure of the server.",
    );
    sql(&data, "ALTER TABLE stsd_meta_away RENAME TO stsd_meta").await;
    let r = tokio::task::spawn_blocking(move || sign::post(addr, &session, GCI))
        .await
        .unwrap();
    assert_success(&r, "GetCallerIdentity");
}

/// When a failed MFA code cannot be recorded (the lock-out cannot advance), the device is refused, even
/// with a correct code, until the failure is written; the write is retried by the next request.
#[tokio::test]
async fn unrecorded_mfa_failures_lock_the_device_until_written() {
    let dir = crate::harness::TempDir::new("mfafail");
    let data = dir.data_dir();
    let srv = Server::start_in(&data, &Opts::default());
    let root = crate::sdk::iam(&srv.endpoint(), &srv.root);
    root.create_user().user_name("bob").send().await.unwrap();
    // New users have no permissions: bob manages his own device through the built-in self-service policy.
    root.attach_user_policy()
        .user_name("bob")
        .policy_arn("arn:aws:iam::aws:policy/StsdSelfManageCredentials")
        .send()
        .await
        .unwrap();
    let bob = crate::sdk::access_key(&root, "bob").await;
    let iam = crate::sdk::iam(&srv.endpoint(), &bob);
    let (serial, seed, step) = crate::sdk::enrolled_device(&iam, "bob").await;
    let code = |s: i64| stsd_core::totp::code(&seed, s);
    let gst = |c: String| {
        let (addr, root, serial) = (srv.addr, bob.clone(), serial.clone());
        tokio::task::spawn_blocking(move || {
            sign::post(
                addr,
                &root,
                &format!(
                    "Action=GetSessionToken&Version=2011-06-15&SerialNumber={}&TokenCode={c}",
                    serial.replace(':', "%3A").replace('/', "%2F")
                ),
            )
        })
    };
    let refused = |r: &crate::raw::Response| {
        assert_error(
            r,
            403,
            "AccessDenied",
            "MultiFactorAuthentication failed with invalid MFA one time pass code. ",
        )
    };
    // Failures cannot be written any more.
    sql(
        &data,
        "CREATE TRIGGER no_failures BEFORE UPDATE OF failed_count ON mfa_devices \
         WHEN NEW.failed_count > 0 BEGIN SELECT RAISE(ABORT, 'injected fault'); END;",
    )
    .await;
    let wrong = if code(step + 1) == "000000" {
        "111111"
    } else {
        "000000"
    };
    refused(&gst(wrong.to_owned()).await.unwrap());
    // The unrecorded failure keeps the device locked: even the right code is refused.
    refused(&gst(code(step + 1)).await.unwrap());
    // Writes work again: the next request records the failure, then checks its code.
    sql(&data, "DROP TRIGGER no_failures;").await;
    assert_success(&gst(code(step + 1)).await.unwrap(), "GetSessionToken");
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The database, its WAL and shared-memory files and the audit log are private to the server's user, and
/// a data directory open to others is reported at start.
#[test]
fn files_are_private_and_open_data_directories_are_reported() {
    let dir = crate::harness::TempDir::new("modes");
    let data = dir.data_dir();
    let audit = data.with_file_name("audit.log");
    let srv = Server::start_in(
        &data,
        &Opts::args(&["--audit-log", audit.to_str().unwrap()]),
    );
    assert_success(&sign::post(srv.addr, &srv.root, GCI), "GetCallerIdentity");
    for name in ["stsd.db", "stsd.db-wal", "stsd.db-shm"] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    assert_eq!(mode(&audit), 0o600, "audit log");
    assert!(
        !srv.stderr().contains("open to other users"),
        "{}",
        srv.stderr()
    );
    drop(srv);

    let open = dir.data_dir().with_file_name("open");
    std::fs::create_dir(&open).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let srv = Server::start_in(&open, &Opts::default());
    let stderr = srv.stderr();
    assert!(
        stderr.contains("open to other users (mode 755)") && stderr.contains("chmod 700"),
        "{stderr}"
    );
}

/// An anonymous client cannot fill the audit log: a request that fails authentication is recorded without
/// its parameters, control bytes are not amplified by JSON escaping, every record is bounded, and drops are
/// counted in `/metrics`.
#[test]
fn audit_records_of_anonymous_requests_are_small() {
    let dir = crate::harness::TempDir::new("auditamp");
    let data = dir.data_dir();
    let audit = data.with_file_name("audit.log");
    let mut srv = Server::start_in(
        &data,
        &Opts::args(&["--audit-log", audit.to_str().unwrap()]),
    );
    // 60 KB of control bytes in made-up parameters, unsigned.
    let mut body = String::from("Action=CreateUser&Version=2010-05-08&UserName=x");
    for i in 0..200 {
        body.push_str(&format!("&P{i}={}", "%01".repeat(100)));
    }
    let r = crate::raw::send(
        srv.addr,
        "POST",
        "/",
        &[(
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        )],
        body.as_bytes(),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    // Signed, with control bytes in a parameter the action defines.
    let r = sign::post(
        srv.addr,
        &srv.root,
        &format!(
            "Action=GetSessionToken&Version=2011-06-15&SerialNumber={}",
            "%01".repeat(5000)
        ),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let metrics = crate::raw::send(srv.addr, "GET", "/metrics", &[], b"").body;
    assert!(
        metrics.contains("\nstsd_audit_dropped_total 0\n"),
        "{metrics}"
    );
    assert!(srv.stop().success());
    let text = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let anonymous: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(anonymous["requestParameters"], serde_json::Value::Null);
    assert!(lines[0].len() < 2048, "{} bytes", lines[0].len());
    assert!(!text.contains("\\u0001"), "control bytes escaped six-fold");
    assert!(lines[1].len() <= 8 * 1024, "{} bytes", lines[1].len());
}

/// Reads until the peer closes the connection; how long that took (`None` if still open after `limit`).
fn closed_within(
    s: &mut std::net::TcpStream,
    limit: std::time::Duration,
) -> Option<std::time::Duration> {
    use std::io::Read;
    let started = std::time::Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(started.elapsed());
            }
            Err(_) => return None,
        }
    }
}

fn healthz_on(s: &mut std::net::TcpStream, addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// One address cannot hold every connection slot: beyond `--max-connections-per-ip` its connections are
/// closed at once, and slots come back when its connections close.
#[test]
fn connections_per_address_are_capped() {
    use std::net::TcpStream;
    use std::time::Duration;
    let srv = Server::start_with(Opts::args(&["--max-connections-per-ip", "2"]));
    let mut a = TcpStream::connect(srv.addr).unwrap();
    let mut b = TcpStream::connect(srv.addr).unwrap();
    assert!(healthz_on(&mut a, srv.addr).starts_with("HTTP/1.1 200 "));
    assert!(healthz_on(&mut b, srv.addr).starts_with("HTTP/1.1 200 "));
    let mut c = TcpStream::connect(srv.addr).unwrap();
    let took = closed_within(&mut c, Duration::from_secs(3));
    assert!(
        took.is_some(),
        "a third connection from one address stayed open"
    );
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    let mut d = TcpStream::connect(srv.addr).unwrap();
    assert!(healthz_on(&mut d, srv.addr).starts_with("HTTP/1.1 200 "));
}

/// An idle kept-alive connection is closed after 5 s, before the 10 s head timeout.
#[test]
fn idle_keep_alive_connections_close_after_five_seconds() {
    use std::time::Duration;
    let srv = Server::start();
    let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
    assert!(healthz_on(&mut s, srv.addr).starts_with("HTTP/1.1 200 "));
    // Still usable within the idle period.
    std::thread::sleep(Duration::from_secs(3));
    assert!(healthz_on(&mut s, srv.addr).starts_with("HTTP/1.1 200 "));
    let took = closed_within(&mut s, Duration::from_secs(12)).expect("still open after 12 s");
    assert!(
        took >= Duration::from_secs(4) && took <= Duration::from_secs(8),
        "closed after {took:?}"
    );
}

/// `/healthz` and `/metrics` are inside the per-IP rate limit.
#[test]
fn health_and_metrics_are_rate_limited_per_address() {
    let srv = Server::start_with(Opts::args(&[
        "--rate-limit-per-ip",
        "0.001",
        "--rate-limit-burst",
        "2",
    ]));
    for path in ["/healthz", "/metrics"] {
        let r = crate::raw::send(srv.addr, "GET", path, &[], b"");
        assert_eq!(r.status, 200, "{path}");
    }
    for path in ["/healthz", "/metrics"] {
        assert_error(
            &crate::raw::send(srv.addr, "GET", path, &[], b""),
            400,
            "Throttling",
            "Rate exceeded",
        );
    }
}
