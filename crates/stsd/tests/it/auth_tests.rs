//! SigV4 authentication over raw HTTP: presigned GETs and header-signed POSTs signed with `aws-sigv4`.

use crate::harness::{Opts, Server, TempDir, amz_date, time_with_offset, unix_now};
use crate::raw;
use crate::sign::{
    self, Creds, FORM, SignCfg, flip_hex_param, presigned_get, signed_post, tamper_token,
};
use crate::xml::{assert_error, assert_root_identity, assert_success, must};

pub const GCI: &str = "Action=GetCallerIdentity&Version=2011-06-15";
pub const SIG_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
pub const INVALID_KEY: &str = "The security token included in the request is invalid.";
pub const INVALID_TOKEN: &str = "The security token included in the request is invalid";
pub const EXPIRED_TOKEN: &str = "The security token included in the request is expired";

/// GetSessionToken over raw HTTP with the root key of `srv`.
pub fn raw_session(srv: &Server, duration: Option<u32>) -> Creds {
    let mut body = "Action=GetSessionToken&Version=2011-06-15".to_owned();
    if let Some(d) = duration {
        body.push_str(&format!("&DurationSeconds={d}"));
    }
    let r = sign::post(srv.addr, &srv.root, &body);
    assert_success(&r, "GetSessionToken");
    Creds::session(
        &must(&r.body, "AccessKeyId"),
        &must(&r.body, "SecretAccessKey"),
        &must(&r.body, "SessionToken"),
    )
}

#[test]
fn presigned_get_caller_identity_with_root_key() {
    let srv = Server::start();
    let p = presigned_get(srv.addr, &srv.root, GCI, &SignCfg::default());
    assert!(p.target.contains("X-Amz-Signature="), "{}", p.target);
    assert!(!p.target.contains("X-Amz-Security-Token"), "{}", p.target);
    assert_root_identity(&p.send(), &srv.account);
}

#[test]
fn presigned_get_with_session_credentials_needs_the_token() {
    let srv = Server::start();
    let session = raw_session(&srv, None);
    let p = presigned_get(srv.addr, &session, GCI, &SignCfg::default());
    assert!(p.target.contains("X-Amz-Security-Token="), "{}", p.target);
    assert_root_identity(&p.send(), &srv.account);

    // The same temporary key without its token is an unknown key (with the period).
    let p = presigned_get(srv.addr, &session.without_token(), GCI, &SignCfg::default());
    assert_error(&p.send(), 403, "InvalidClientTokenId", INVALID_KEY);
}

#[test]
fn presigned_signature_with_one_hex_digit_changed_does_not_match() {
    let srv = Server::start();
    let session = raw_session(&srv, None);
    for creds in [&srv.root, &session] {
        let mut p = presigned_get(srv.addr, creds, GCI, &SignCfg::default());
        assert_eq!(p.send().status, 200);
        p.target = flip_hex_param(&p.target, "X-Amz-Signature");
        assert_error(&p.send(), 403, "SignatureDoesNotMatch", SIG_MISMATCH);
    }
}

#[test]
fn header_signed_post_with_session_token_header() {
    let srv = Server::start();
    let session = raw_session(&srv, Some(900));
    let p = signed_post(srv.addr, &session, GCI, &SignCfg::default());
    assert_eq!(
        p.header("x-amz-security-token"),
        session.token.as_deref().unwrap()
    );
    assert_root_identity(&p.send(), &srv.account);
}

#[test]
fn wrong_secret_does_not_match() {
    let srv = Server::start();
    let wrong = Creds::new(&srv.root.id, "wrongSecretwrongSecretwrongSecretwrongSe");
    assert_error(
        &sign::post(srv.addr, &wrong, GCI),
        403,
        "SignatureDoesNotMatch",
        SIG_MISMATCH,
    );
    let p = presigned_get(srv.addr, &wrong, GCI, &SignCfg::default());
    assert_error(&p.send(), 403, "SignatureDoesNotMatch", SIG_MISMATCH);

    // A session's key with another secret.
    let session = raw_session(&srv, None);
    let wrong = Creds {
        secret: "x".repeat(40),
        ..session
    };
    assert_error(
        &sign::post(srv.addr, &wrong, GCI),
        403,
        "SignatureDoesNotMatch",
        SIG_MISMATCH,
    );
}

#[test]
fn unknown_access_key_is_invalid_with_period() {
    let srv = Server::start();
    for id in ["AKIAIOSFODNN7EXAMPLE", "AKIAUNKNOWNKEY000000"] {
        let creds = Creds::new(id, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert_error(
            &sign::post(srv.addr, &creds, GCI),
            403,
            "InvalidClientTokenId",
            INVALID_KEY,
        );
    }
}

#[test]
fn session_key_without_token_is_invalid_with_period() {
    let srv = Server::start();
    let session = raw_session(&srv, None);
    assert_error(
        &sign::post(srv.addr, &session.without_token(), GCI),
        403,
        "InvalidClientTokenId",
        INVALID_KEY,
    );
    // A never-issued ASIA id too.
    let made_up = Creds::new(
        "ASIAUH3H6EGKJI4NP6V5",
        "zmepK6aYYnw02hDUo7PbUdyNKIob6rvlVKDHBCzg",
    );
    assert_error(
        &sign::post(srv.addr, &made_up, GCI),
        403,
        "InvalidClientTokenId",
        INVALID_KEY,
    );
}

#[test]
fn tampered_session_token_is_invalid_without_period() {
    let srv = Server::start();
    let session = raw_session(&srv, None);
    let tampered = Creds {
        token: Some(tamper_token(session.token.as_deref().unwrap())),
        ..session.clone()
    };
    assert_ne!(tampered.token, session.token);
    let r = sign::post(srv.addr, &tampered, GCI);
    assert_error(&r, 403, "InvalidClientTokenId", INVALID_TOKEN);
    // Byte for byte the size of the reference's real capture (§3.1: Content-Length 305).
    assert_eq!(r.body.len(), 305, "{}", r.body);
    let p = presigned_get(srv.addr, &tampered, GCI, &SignCfg::default());
    assert_error(&p.send(), 403, "InvalidClientTokenId", INVALID_TOKEN);
    // A token that is not even base64.
    let garbage = Creds {
        token: Some("not a token!".to_owned()),
        ..session
    };
    assert_error(
        &sign::post(srv.addr, &garbage, GCI),
        403,
        "InvalidClientTokenId",
        INVALID_TOKEN,
    );
}

#[test]
fn session_token_of_another_server_is_invalid_without_period() {
    let one = Server::start();
    let two = Server::start();
    let foreign = raw_session(&two, None);
    assert_error(
        &sign::post(one.addr, &foreign, GCI),
        403,
        "InvalidClientTokenId",
        INVALID_TOKEN,
    );
    // Another server's token with this server's own session key id.
    let own = raw_session(&one, None);
    let mixed = Creds {
        token: foreign.token.clone(),
        ..own
    };
    assert_error(
        &sign::post(one.addr, &mixed, GCI),
        403,
        "InvalidClientTokenId",
        INVALID_TOKEN,
    );
}

#[test]
fn expired_session_token() {
    let dir = TempDir::new("expiry");
    let data = dir.data_dir();
    let mut first = Server::start_in(&data, &Opts::default());
    let session = raw_session(&first, Some(900));
    assert!(first.stop().success());

    // 4000 s later, as the server sees it; requests are signed at the server's time.
    let later = Server::start_in(&data, &Opts::args(&["--clock-offset-seconds", "4000"]));
    let at = SignCfg::at(time_with_offset(4000));
    let r = signed_post(later.addr, &session, GCI, &at).send();
    assert_error(&r, 403, "ExpiredToken", EXPIRED_TOKEN);
    let p = presigned_get(later.addr, &session, GCI, &at);
    assert_error(&p.send(), 403, "ExpiredToken", EXPIRED_TOKEN);
    // The root key signed at the server's time works, so the signing time above was right ...
    assert_root_identity(
        &signed_post(later.addr, &later.root, GCI, &at).send(),
        &later.account,
    );
    // ... and a request signed at the real time is far outside the server's window.
    let r = sign::post(later.addr, &later.root, GCI);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        must(&r.body, "Message").starts_with("Signature expired: "),
        "{}",
        r.body
    );
    drop(later);

    // 600 s later (set through the environment) the 900 s session is still valid.
    let sooner = Server::start_in(
        &data,
        &Opts {
            env: vec![("STSD_CLOCK_OFFSET_SECONDS".to_owned(), "600".to_owned())],
            ..Opts::default()
        },
    );
    let r = signed_post(
        sooner.addr,
        &session,
        GCI,
        &SignCfg::at(time_with_offset(600)),
    )
    .send();
    assert_root_identity(&r, &sooner.account);
}

/// Sends `p` and checks the skew message against the server's clock, which lies between the times read
/// before and after the request.
fn assert_skew_message(p: &sign::Prepared, req_date: &str, expired: bool) {
    let t0 = unix_now();
    let r = p.send();
    let t1 = unix_now();
    let candidates: Vec<String> = (t0..=t1)
        .map(|now| {
            if expired {
                format!(
                    "Signature expired: {req_date} is now earlier than {} ({} - 15 min.)",
                    amz_date(now - 900),
                    amz_date(now)
                )
            } else {
                format!(
                    "Signature not yet current: {req_date} is still later than {} ({} + 15 min.)",
                    amz_date(now + 900),
                    amz_date(now)
                )
            }
        })
        .collect();
    let message = must(&r.body, "Message");
    let expected = candidates
        .iter()
        .find(|c| **c == message)
        .unwrap_or_else(|| panic!("message {message:?} is none of {candidates:?}"));
    assert_error(&r, 403, "SignatureDoesNotMatch", expected);
}

#[test]
fn request_sixteen_minutes_old_has_expired() {
    let srv = Server::start();
    let at = time_with_offset(-960);
    let p = signed_post(srv.addr, &srv.root, GCI, &SignCfg::at(at));
    // Our formatter agrees with aws-sigv4's.
    let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(
        p.header("x-amz-date"),
        amz_date(i64::try_from(secs).unwrap())
    );
    assert_skew_message(&p, p.header("x-amz-date"), true);
    let p = presigned_get(
        srv.addr,
        &srv.root,
        GCI,
        &SignCfg::at(time_with_offset(-960)),
    );
    let date = p
        .target
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("X-Amz-Date="))
        .unwrap()
        .to_owned();
    assert_skew_message(&p, &date, true);
}

#[test]
fn request_sixteen_minutes_ahead_is_not_yet_current() {
    let srv = Server::start();
    let p = signed_post(
        srv.addr,
        &srv.root,
        GCI,
        &SignCfg::at(time_with_offset(960)),
    );
    assert_skew_message(&p, p.header("x-amz-date"), false);
}

#[test]
fn requests_within_fourteen_minutes_are_accepted() {
    let srv = Server::start();
    for offset in [-840, 840] {
        let p = signed_post(
            srv.addr,
            &srv.root,
            GCI,
            &SignCfg::at(time_with_offset(offset)),
        );
        assert_root_identity(&p.send(), &srv.account);
        // X-Amz-Expires (60 s here) is not honoured by STS: only the 15-minute window counts.
        let p = presigned_get(
            srv.addr,
            &srv.root,
            GCI,
            &SignCfg::at(time_with_offset(offset)),
        );
        assert!(p.target.contains("X-Amz-Expires=60"), "{}", p.target);
        assert_root_identity(&p.send(), &srv.account);
    }
}

#[test]
fn missing_authentication() {
    let srv = Server::start();
    let r = raw::send(
        srv.addr,
        "POST",
        "/",
        &[("Content-Type".to_owned(), FORM.to_owned())],
        GCI.as_bytes(),
    );
    assert_error(
        &r,
        403,
        "MissingAuthenticationToken",
        "Request is missing Authentication Token",
    );
    let r = raw::send(srv.addr, "GET", &format!("/?{GCI}"), &[], b"");
    assert_error(
        &r,
        403,
        "MissingAuthenticationToken",
        "Request is missing Authentication Token",
    );
}

#[test]
fn malformed_authorization_header_is_incomplete_signature() {
    let srv = Server::start();
    let mut p = signed_post(srv.addr, &srv.root, GCI, &SignCfg::default());
    let good = p.header("authorization").to_owned();
    let bad = good.replacen("Credential=", "Credential", 1);
    assert_ne!(bad, good);
    p.set_header("authorization", &bad);
    let pair: String = bad
        .split_once(' ')
        .unwrap()
        .1
        .split(',')
        .next()
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    assert!(
        pair.starts_with("Credential") && pair.ends_with("/aws4_request"),
        "{pair}"
    );
    assert_error(
        &p.send(),
        400,
        "IncompleteSignature",
        &format!(
            "'{pair}' not a valid key=value pair (missing equal-sign) in Authorization header: '{bad}'."
        ),
    );
}

#[test]
fn credential_scoped_to_another_service() {
    let srv = Server::start();
    let cfg = SignCfg {
        service: "s3".to_owned(),
        ..SignCfg::default()
    };
    let p = signed_post(srv.addr, &srv.root, GCI, &cfg);
    assert_error(
        &p.send(),
        403,
        "SignatureDoesNotMatch",
        "Credential should be scoped to correct service: 'sts'. ",
    );
}

#[test]
fn region_restricted_server() {
    let srv = Server::start_with(Opts::args(&["--region", "us-west-2"]));
    let p = signed_post(srv.addr, &srv.root, GCI, &SignCfg::region("us-east-1"));
    assert_error(
        &p.send(),
        403,
        "SignatureDoesNotMatch",
        "Credential should be scoped to a valid region. ",
    );
    let p = presigned_get(srv.addr, &srv.root, GCI, &SignCfg::region("us-east-1"));
    assert_error(
        &p.send(),
        403,
        "SignatureDoesNotMatch",
        "Credential should be scoped to a valid region. ",
    );
    let p = signed_post(srv.addr, &srv.root, GCI, &SignCfg::region("us-west-2"));
    assert_root_identity(&p.send(), &srv.account);

    // Without --region any region is accepted.
    let open = Server::start();
    for region in ["us-east-1", "us-west-2", "eu-central-1"] {
        let p = signed_post(open.addr, &open.root, GCI, &SignCfg::region(region));
        assert_root_identity(&p.send(), &open.account);
    }
}
