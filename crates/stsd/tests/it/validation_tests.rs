//! Actions, versions, parameter validation, body limits and content types over raw HTTP.

use crate::auth_tests::{GCI, INVALID_KEY, SIG_MISMATCH};
use crate::harness::Server;
use crate::raw;
use crate::sign::{self, Creds, FORM, SignCfg, signed_post};
use crate::xml::{assert_error, assert_root_identity, assert_success, must};

const GST: &str = "Action=GetSessionToken&Version=2011-06-15";

fn gst_with(srv: &Server, params: &str) -> raw::Response {
    sign::post(srv.addr, &srv.root, &format!("{GST}&{params}"))
}

#[test]
fn unknown_action_and_unknown_version() {
    let srv = Server::start();
    assert_error(
        &sign::post(srv.addr, &srv.root, "Action=Foo&Version=2011-06-15"),
        400,
        "InvalidAction",
        "Could not find operation Foo for version 2011-06-15",
    );
    assert_error(
        &sign::post(
            srv.addr,
            &srv.root,
            "Action=GetSessionToken&Version=2099-01-01",
        ),
        400,
        "InvalidAction",
        "Could not find operation GetSessionToken for version 2099-01-01",
    );
    // Through a presigned GET as well.
    let p = sign::presigned_get(
        srv.addr,
        &srv.root,
        "Action=Foo&Version=2011-06-15",
        &SignCfg::default(),
    );
    assert_error(
        &p.send(),
        400,
        "InvalidAction",
        "Could not find operation Foo for version 2011-06-15",
    );
}

#[test]
fn authentication_comes_before_validation() {
    let srv = Server::start();
    let wrong = Creds::new(&srv.root.id, "wrongSecretwrongSecretwrongSecretwrongSe");
    for body in [
        format!("{GST}&DurationSeconds=1"),
        format!("{GST}&DurationSeconds=abc"),
        "Action=Foo&Version=2011-06-15".to_owned(),
        "Action=GetSessionToken&Version=2099-01-01".to_owned(),
    ] {
        assert_error(
            &sign::post(srv.addr, &wrong, &body),
            403,
            "SignatureDoesNotMatch",
            SIG_MISMATCH,
        );
        let unknown = Creds::new(
            "AKIAUNKNOWNKEY000000",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        assert_error(
            &sign::post(srv.addr, &unknown, &body),
            403,
            "InvalidClientTokenId",
            INVALID_KEY,
        );
        let r = raw::send(
            srv.addr,
            "POST",
            "/",
            &[("Content-Type".to_owned(), FORM.to_owned())],
            body.as_bytes(),
        );
        assert_error(
            &r,
            403,
            "MissingAuthenticationToken",
            "Request is missing Authentication Token",
        );
    }
}

#[test]
fn duration_seconds_out_of_range() {
    let srv = Server::start();
    for (value, rule) in [
        ("899", "have value greater than or equal to 900"),
        ("20", "have value greater than or equal to 900"),
        ("-5", "have value greater than or equal to 900"),
        ("129601", "have value less than or equal to 129600"),
        ("345600", "have value less than or equal to 129600"),
    ] {
        assert_error(
            &gst_with(&srv, &format!("DurationSeconds={value}")),
            400,
            "ValidationError",
            &format!(
                "1 validation error detected: Value '{value}' at 'durationSeconds' failed to satisfy constraint: Member must {rule}"
            ),
        );
    }
    // The bounds themselves are valid.
    assert_success(&gst_with(&srv, "DurationSeconds=900"), "GetSessionToken");
    assert_success(&gst_with(&srv, "DurationSeconds=129600"), "GetSessionToken");
}

#[test]
fn duration_seconds_not_an_integer_is_malformed_input() {
    let srv = Server::start();
    for value in ["abc", "1.5", "9e2", ""] {
        assert_error(
            &gst_with(&srv, &format!("DurationSeconds={value}")),
            400,
            "MalformedInput",
            &format!(
                "Value '{value}' at 'durationSeconds' failed to parse: Member must be an integer between -2147483648 and 2147483647"
            ),
        );
    }
}

#[test]
fn other_parameter_constraints() {
    let srv = Server::start();
    for (params, message) in [
        (
            "TokenCode=11111111111111",
            "1 validation error detected: Value '11111111111111' at 'tokenCode' failed to satisfy constraint: Member must have length less than or equal to 6",
        ),
        (
            "TokenCode=12345",
            "1 validation error detected: Value '12345' at 'tokenCode' failed to satisfy constraint: Member must have length greater than or equal to 6",
        ),
        (
            "TokenCode=abcdef",
            "1 validation error detected: Value 'abcdef' at 'tokenCode' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\d]*",
        ),
        (
            "SerialNumber=abc",
            "1 validation error detected: Value 'abc' at 'serialNumber' failed to satisfy constraint: Member must have length greater than or equal to 9",
        ),
        (
            "SerialNumber=a+b+c+d+e+f",
            "1 validation error detected: Value 'a b c d e f' at 'serialNumber' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=/:,.@-]*",
        ),
        (
            "MinimumSessionTokenSize=5000",
            "1 validation error detected: Value '5000' at 'minimumSessionTokenSize' failed to satisfy constraint: Member must have value less than or equal to 4096",
        ),
    ] {
        assert_error(&gst_with(&srv, params), 400, "ValidationError", message);
    }
}

#[test]
fn two_violations_are_reported_together() {
    let srv = Server::start();
    let r = gst_with(&srv, "DurationSeconds=1&TokenCode=1");
    let a = "Value '1' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900";
    let b = "Value '1' at 'tokenCode' failed to satisfy constraint: Member must have length greater than or equal to 6";
    // The reference does not pin the clause order.
    let message = must(&r.body, "Message");
    let expected = [
        format!("2 validation errors detected: {a}; {b}"),
        format!("2 validation errors detected: {b}; {a}"),
    ];
    assert!(expected.contains(&message), "{message}");
    assert_error(&r, 400, "ValidationError", &message);
}

#[test]
fn body_over_64_kib_is_refused() {
    let srv = Server::start();
    let message = "Request body must not exceed 65536 bytes";
    let pad = |total: usize| {
        let mut b = format!("{GCI}&Pad=");
        b.push_str(&"x".repeat(total - b.len()));
        b
    };
    // Declared with Content-Length (the whole body is sent).
    let big = pad(70_000);
    let r = raw::send(
        srv.addr,
        "POST",
        "/",
        &[("Content-Type".to_owned(), FORM.to_owned())],
        big.as_bytes(),
    );
    assert_error(&r, 413, "RequestEntityTooLarge", message);
    // Signed, one byte over the limit.
    let p = signed_post(srv.addr, &srv.root, &pad(65_537), &SignCfg::default());
    assert_error(&p.send(), 413, "RequestEntityTooLarge", message);
    // Chunked, without a declared length.
    let body = pad(70_000);
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: {FORM}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        srv.addr
    )
    .into_bytes();
    for chunk in body.as_bytes().chunks(8192) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    assert_error(
        &raw::send_bytes(srv.addr, &req),
        413,
        "RequestEntityTooLarge",
        message,
    );
    // Exactly 64 KiB is fine.
    let p = signed_post(srv.addr, &srv.root, &pad(65_536), &SignCfg::default());
    assert_root_identity(&p.send(), &srv.account);
}

#[test]
fn form_content_type_with_and_without_charset() {
    let srv = Server::start();
    for ct in [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
    ] {
        let cfg = SignCfg {
            content_type: Some(ct.to_owned()),
            ..SignCfg::default()
        };
        let p = signed_post(srv.addr, &srv.root, GCI, &cfg);
        assert_eq!(p.header("content-type"), ct);
        assert_root_identity(&p.send(), &srv.account);
        let p = signed_post(
            srv.addr,
            &srv.root,
            &format!("{GST}&DurationSeconds=900"),
            &cfg,
        );
        assert_success(&p.send(), "GetSessionToken");
    }
}
