//! The authorizer (`/_stsd/authorize`) over raw HTTP: each proxy's header shape (nginx `auth_request`,
//! Caddy/Traefik forward-auth, Envoy `ext_authz`), trusted and untrusted peers, API Gateway's errors,
//! payload hashes and presigned URLs, session tokens (tampered, expired), and `--authz-listen`.

use crate::harness::{Opts, Server, TempDir, time_with_offset};
use crate::raw::{self, Response};
use crate::sdk::iam;
use crate::sdk::{client, creds_of};
use crate::sign::{Creds, Prepared, SignCfg, signed_api_request, tamper_token};

const HOST: &str = "orders.internal:8080";
const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:orders/prod/*/orders/*"},
 {"Effect":"Deny","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:orders/prod/GET/orders/secret"},
 {"Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:orders/prod/GET/office/*",
  "Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}},
 {"Effect":"Allow","Action":"orders:GetOrder","Resource":"*"}
]}"#;

fn config(dir: &TempDir, trusted: &str, unsigned: bool) -> String {
    let path = dir.data_dir().with_file_name("stsd.toml");
    std::fs::write(
        &path,
        format!(
            "[authz]\ntrusted_proxies = [\"{trusted}\"]\n\
             [[authz.api]]\nid = \"orders\"\nstage = \"prod\"\nhosts = [\"orders.internal\"]\nunsigned_payload = {unsigned}\n\
             [[authz.api]]\nid = \"shop\"\nstage = \"v1\"\nhosts = [\"orders.internal\"]\npath_prefix = \"/shop/\"\naction_prefix = \"orders\"\n\
             [[authz.api.actions]]\nmethod = \"GET\"\npath = \"orders/*\"\naction = \"GetOrder\"\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// A server, and alice's long-term credentials (with [`POLICY`]).
async fn setup(trusted: &str, unsigned: bool, extra: &[&str]) -> (Server, Creds, TempDir) {
    let dir = TempDir::new("authz");
    let cfg = config(&dir, trusted, unsigned);
    let mut args = vec!["--config", cfg.as_str()];
    args.extend_from_slice(extra);
    let server = Server::start_in(&dir.data_dir(), &Opts::args(&args));
    let root = iam(&server.endpoint(), &server.root);
    root.create_user().user_name("alice").send().await.unwrap();
    root.put_user_policy()
        .user_name("alice")
        .policy_name("api")
        .policy_document(POLICY)
        .send()
        .await
        .unwrap();
    let alice = crate::sdk::access_key(&root, "alice").await;
    (server, alice, dir)
}

fn exec_api() -> SignCfg {
    SignCfg {
        service: "execute-api".to_owned(),
        content_type: None,
        ..SignCfg::default()
    }
}

fn sign(
    server: &Server,
    creds: &Creds,
    method: &str,
    target: &str,
    extra: &[(&str, &str)],
) -> Prepared {
    signed_api_request(
        server.addr,
        creds,
        method,
        HOST,
        target,
        extra,
        b"",
        &exec_api(),
        false,
    )
}

fn headers_without(p: &Prepared, drop: &[&str]) -> Vec<(String, String)> {
    p.headers
        .iter()
        .filter(|(k, _)| !drop.iter().any(|d| k.eq_ignore_ascii_case(d)))
        .cloned()
        .collect()
}

/// As nginx `auth_request` sends it (`Host $http_host`, `X-Original-*`, no body).
fn via_nginx(p: &Prepared, xff: Option<&str>) -> Response {
    let mut h = p.headers.clone();
    h.push(("X-Original-Method".into(), p.method.clone()));
    h.push(("X-Original-URI".into(), p.target.clone()));
    if let Some(x) = xff {
        h.push(("X-Forwarded-For".into(), x.into()));
    }
    raw::send(p.addr, "GET", "/_stsd/authorize", &h, b"")
}

/// As Caddy `forward_auth` sends it: GET, Host rewritten, `X-Forwarded-*`.
fn via_caddy(p: &Prepared) -> Response {
    let mut h = headers_without(p, &["host"]);
    h.push(("Host".into(), p.addr.to_string()));
    h.push(("X-Forwarded-Method".into(), p.method.clone()));
    h.push(("X-Forwarded-Uri".into(), p.target.clone()));
    h.push(("X-Forwarded-Host".into(), HOST.into()));
    h.push(("X-Forwarded-Proto".into(), "https".into()));
    h.push(("X-Forwarded-For".into(), "198.51.100.9".into()));
    raw::send(p.addr, "GET", "/_stsd/authorize", &h, b"")
}

/// As Envoy `ext_authz` (HTTP) sends it: the original method and path under the prefix.
fn via_envoy(p: &Prepared, extra: &[(&str, &str)]) -> Response {
    let mut h = p.headers.clone();
    for (k, v) in extra {
        h.push(((*k).into(), (*v).into()));
    }
    let target = format!("/_stsd/authorize{}", p.target);
    raw::send(p.addr, &p.method, &target, &h, b"")
}

fn assert_json_error(r: &Response, status: u16, error_type: &str, body: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.header("x-amzn-errortype"), Some(error_type), "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body, body);
}

#[tokio::test]
async fn every_proxy_shape_is_verified_and_authorized() {
    let (server, alice, _dir) = setup("127.0.0.1/32", false, &[]).await;
    let account = &server.account;
    let p = sign(&server, &alice, "GET", "/orders/42?b=2&a=1", &[]);
    for r in [via_nginx(&p, None), via_caddy(&p), via_envoy(&p, &[])] {
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.header("x-stsd-principal-arn"),
            Some(format!("arn:aws:iam::{account}:user/alice").as_str())
        );
        assert_eq!(r.header("x-stsd-account"), Some(account.as_str()));
        assert!(r.header("x-stsd-user-id").unwrap().starts_with("AIDA"));
        assert_eq!(r.header("x-stsd-access-key-id"), Some(alice.id.as_str()));
        assert_eq!(r.header("x-stsd-mfa-authenticated"), Some("false"));
        assert_eq!(r.header("x-stsd-session-expires").unwrap_or(""), "");
        assert!(!r.body.contains(&alice.secret));
    }
    // POST with a signed payload hash (what the proxy cannot hash itself).
    let sha = EMPTY_SHA;
    let p = signed_api_request(
        server.addr,
        &alice,
        "POST",
        HOST,
        "/orders/1",
        &[("x-amz-content-sha256", sha)],
        b"",
        &exec_api(),
        false,
    );
    assert_eq!(via_nginx(&p, None).status, 200);
    // Not allowed: API Gateway's AccessDeniedException with a capital-M Message.
    let p = sign(&server, &alice, "GET", "/admin", &[]);
    let r = via_nginx(&p, None);
    assert_json_error(
        &r,
        403,
        "AccessDeniedException",
        &format!(
            "{{\"Message\":\"User: arn:aws:iam::{account}:user/alice is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:{account}:orders/prod/GET/admin\"}}"
        ),
    );
    assert_eq!(r.header("x-stsd-error"), Some(r.body.as_str()));
    assert_eq!(r.header("x-stsd-principal-arn"), None);
    // Explicit deny.
    let p = sign(&server, &alice, "GET", "/orders/secret", &[]);
    let r = via_caddy(&p);
    assert_eq!(r.status, 403);
    assert!(r.body.ends_with(" with an explicit deny\"}"), "{}", r.body);
    // Envoy's with_request_body: stsd hashes the body itself; without the body it cannot verify.
    let body = br#"{"qty":2}"#;
    let p = signed_api_request(
        server.addr,
        &alice,
        "POST",
        HOST,
        "/orders/5",
        &[],
        body,
        &exec_api(),
        false,
    );
    let r = raw::send(
        p.addr,
        "POST",
        &format!("/_stsd/authorize{}", p.target),
        &p.headers,
        body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        via_nginx(&p, None).header("x-amzn-errortype"),
        Some("InvalidSignatureException")
    );
    // Own action table: orders:GetOrder under /shop/.
    let p = sign(&server, &alice, "GET", "/shop/orders/7", &[]);
    assert_eq!(via_envoy(&p, &[]).status, 200);
    let p = sign(&server, &alice, "DELETE", "/shop/orders/7", &[]);
    assert_json_error(
        &via_envoy(&p, &[]),
        403,
        "MissingAuthenticationTokenException",
        "{\"message\":\"Missing Authentication Token\"}",
    );
    // The root may do everything.
    let p = sign(&server, &server.root, "DELETE", "/anything", &[]);
    assert_eq!(via_nginx(&p, None).status, 200);
    // Metrics count decisions by reason.
    let m = raw::send(server.addr, "GET", "/metrics", &[], b"");
    assert!(
        m.body
            .contains("stsd_authorizer_decisions_total{outcome=\"allow\",reason=\"allowed\"} 7"),
        "{}",
        m.body
    );
    assert!(
        m.body.contains(
            "stsd_authorizer_decisions_total{outcome=\"deny\",reason=\"explicit_deny\"} 1"
        )
    );
}

#[tokio::test]
async fn signature_failures_answer_like_api_gateway() {
    let (server, alice, _dir) = setup("127.0.0.1/32", false, &[]).await;
    // No signature at all.
    let h = vec![
        ("Host".to_owned(), HOST.to_owned()),
        ("X-Original-Method".to_owned(), "GET".to_owned()),
        ("X-Original-URI".to_owned(), "/orders/1".to_owned()),
    ];
    let r = raw::send(server.addr, "GET", "/_stsd/authorize", &h, b"");
    assert_json_error(
        &r,
        403,
        "MissingAuthenticationTokenException",
        "{\"message\":\"Missing Authentication Token\"}",
    );
    assert_eq!(r.header("content-length"), Some("42"));
    // Wrong secret.
    let wrong = Creds::new(&alice.id, "wrongwrongwrongwrongwrongwrongwrongwrong0");
    let p = sign(&server, &wrong, "GET", "/orders/1", &[]);
    assert_json_error(
        &via_nginx(&p, None),
        403,
        "InvalidSignatureException",
        "{\"message\":\"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\"}",
    );
    // A signed request replayed for another path.
    let p = sign(&server, &alice, "GET", "/orders/1", &[]);
    let mut moved = p.clone();
    moved.target = "/orders/2".into();
    assert_eq!(
        via_nginx(&moved, None).header("x-amzn-errortype"),
        Some("InvalidSignatureException")
    );
    // Signed for STS, not execute-api.
    let sts_cfg = SignCfg {
        content_type: None,
        ..SignCfg::default()
    };
    let p = signed_api_request(
        server.addr,
        &alice,
        "GET",
        HOST,
        "/orders/1",
        &[],
        b"",
        &sts_cfg,
        false,
    );
    let r = via_nginx(&p, None);
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("InvalidSignatureException")
    );
    // Unknown key.
    let p = sign(
        &server,
        &Creds::new("AKIAUNKNOWNUNKNOWN00", &alice.secret),
        "GET",
        "/orders/1",
        &[],
    );
    assert_json_error(
        &via_nginx(&p, None),
        403,
        "UnrecognizedClientException",
        "{\"message\":\"The security token included in the request is invalid.\"}",
    );
    // Skew.
    let old = SignCfg {
        time: time_with_offset(-3600),
        ..exec_api()
    };
    let p = signed_api_request(
        server.addr,
        &alice,
        "GET",
        HOST,
        "/orders/1",
        &[],
        b"",
        &old,
        false,
    );
    let r = via_nginx(&p, None);
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("InvalidSignatureException")
    );
    assert!(r.body.contains("Signature expired"), "{}", r.body);
    // Unknown host: API Gateway's unknown route.
    let p = signed_api_request(
        server.addr,
        &alice,
        "GET",
        "elsewhere:80",
        "/orders/1",
        &[],
        b"",
        &exec_api(),
        false,
    );
    assert_eq!(
        via_nginx(&p, None).header("x-amzn-errortype"),
        Some("MissingAuthenticationTokenException")
    );
    // Dot segments are refused.
    let p = sign(&server, &alice, "GET", "/orders/../admin", &[]);
    assert_eq!(via_nginx(&p, None).status, 403);
}

#[tokio::test]
async fn sessions_tokens_presigned_and_unsigned_payloads() {
    let (mut server, alice, dir) = setup("127.0.0.1/32", false, &[]).await;
    let sts = client(&server.endpoint(), &alice);
    let c = sts
        .get_session_token()
        .duration_seconds(900)
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    let session = creds_of(&c);
    let p = sign(&server, &session, "GET", "/orders/1", &[]);
    let r = via_caddy(&p);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-stsd-access-key-id"), Some(session.id.as_str()));
    assert_eq!(r.header("x-stsd-mfa-authenticated"), Some("false"));
    assert_eq!(r.header("x-stsd-mfa-age").unwrap_or(""), "");
    assert!(r.header("x-stsd-session-expires").unwrap().ends_with('Z'));
    let token = session.token.clone().unwrap();
    assert!(!r.body.contains(&token) && r.headers.iter().all(|(_, v)| !v.contains(&token)));
    // Tampered token.
    let bad = Creds::session(&session.id, &session.secret, &tamper_token(&token));
    let p = sign(&server, &bad, "GET", "/orders/1", &[]);
    assert_json_error(
        &via_nginx(&p, None),
        403,
        "UnrecognizedClientException",
        "{\"message\":\"The security token included in the request is invalid.\"}",
    );
    // Presigned URL (query auth), through nginx's headers.
    let p = signed_api_request(
        server.addr,
        &session,
        "GET",
        HOST,
        "/orders/9?x=1",
        &[],
        b"",
        &exec_api(),
        true,
    );
    assert!(p.target.contains("X-Amz-Signature="));
    assert_eq!(via_nginx(&p, None).status, 200);
    // UNSIGNED-PAYLOAD is refused unless the API allows it.
    let p = sign(
        &server,
        &alice,
        "PUT",
        "/orders/3",
        &[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")],
    );
    let r = via_nginx(&p, None);
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("InvalidSignatureException")
    );
    // Revoked session (`stsd admin sessions revoke`, seen within the revocation cache's 5 s).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stsd"))
        .args(["admin", "--data-dir"])
        .arg(dir.data_dir())
        .args(["sessions", "revoke", "--user", "alice"])
        .env_remove("STSD_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    let revoked = loop {
        let p = sign(&server, &session, "GET", "/orders/1", &[]);
        let r = via_nginx(&p, None);
        if r.status != 200 || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    assert_json_error(
        &revoked,
        403,
        "UnrecognizedClientException",
        "{\"message\":\"The security token included in the request is invalid.\"}",
    );
    // Expired session: the same data directory, the clock an hour later.
    server.stop();
    let cfg = config(&dir, "127.0.0.1/32", true);
    let later = Server::start_in(
        &dir.data_dir(),
        &Opts::args(&["--config", &cfg, "--clock-offset-seconds", "3600"]),
    );
    let at = SignCfg {
        time: time_with_offset(3600),
        ..exec_api()
    };
    let p = signed_api_request(
        later.addr,
        &session,
        "GET",
        HOST,
        "/orders/1",
        &[],
        b"",
        &at,
        false,
    );
    assert_json_error(
        &via_nginx(&p, None),
        403,
        "ExpiredTokenException",
        "{\"message\":\"The security token included in the request is expired\"}",
    );
    // The API now allows UNSIGNED-PAYLOAD.
    let p = signed_api_request(
        later.addr,
        &alice,
        "PUT",
        HOST,
        "/orders/3",
        &[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")],
        b"",
        &at,
        false,
    );
    assert_eq!(via_nginx(&p, None).status, 200);
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    // Trusted: the client address comes from X-Forwarded-For.
    let (server, alice, _dir) = setup("127.0.0.1/32", false, &[]).await;
    let p = sign(&server, &alice, "GET", "/office/report", &[]);
    assert_eq!(via_nginx(&p, Some("203.0.113.7")).status, 200);
    assert_eq!(via_nginx(&p, Some("198.51.100.1")).status, 403);
    drop(server);
    // Untrusted peer: a forged X-Forwarded-For changes nothing, and X-Original-* are not read.
    let (server, alice, _dir) = setup("10.0.0.0/8", false, &[]).await;
    let p = sign(&server, &alice, "GET", "/office/report", &[]);
    let r = via_envoy(&p, &[("X-Forwarded-For", "203.0.113.7")]);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.header("x-amzn-errortype"), Some("AccessDeniedException"));
    let r = via_nginx(&p, Some("203.0.113.7"));
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("MissingAuthenticationTokenException")
    );
    // The Envoy shape needs no trust: the client's signature covers it.
    let p = sign(&server, &alice, "GET", "/orders/5", &[]);
    assert_eq!(via_envoy(&p, &[]).status, 200);
}

#[tokio::test]
async fn the_authorizer_has_its_own_listener_with_authz_listen() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let (server, alice, _dir) = setup("127.0.0.1/32", false, &["--authz-listen", &listen]).await;
    let mut p = sign(&server, &alice, "GET", "/orders/1", &[]);
    p.addr = listen.parse().unwrap();
    assert_eq!(via_nginx(&p, None).status, 200);
}

#[tokio::test]
async fn decisions_are_audited_in_cloudtrail_shape_without_secrets() {
    let audit_dir = TempDir::new("authz-audit");
    let audit = audit_dir.data_dir().with_file_name("audit.log");
    let audit_arg = audit.display().to_string();
    let (mut server, alice, _dir) =
        setup("127.0.0.1/32", false, &["--audit-log", &audit_arg]).await;
    let p = signed_api_request(
        server.addr,
        &alice,
        "GET",
        HOST,
        "/orders/1?token=Query-Secret-zQ",
        &[],
        b"",
        &exec_api(),
        true,
    );
    assert_eq!(via_nginx(&p, None).status, 200);
    let p = sign(&server, &alice, "GET", "/admin", &[]);
    assert_eq!(via_nginx(&p, None).status, 403);
    server.stop();
    let text = std::fs::read_to_string(&audit).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["eventSource"] == "execute-api.amazonaws.com")
        .collect();
    assert_eq!(records.len(), 2, "{text}");
    assert_eq!(records[0]["eventName"], "Invoke");
    assert_eq!(records[0]["requestParameters"]["resourcePath"], "orders/1");
    assert_eq!(records[0]["userIdentity"]["accessKeyId"], alice.id.as_str());
    assert_eq!(records[1]["errorCode"], "AccessDeniedException");
    assert!(
        records[1]["resources"][0]["ARN"]
            .as_str()
            .unwrap()
            .ends_with(":orders/prod/GET/admin")
    );
    assert!(
        !text.contains(&alice.secret)
            && !text.contains("X-Amz-Signature")
            && !text.contains("Query-Secret-zQ")
    );
}
