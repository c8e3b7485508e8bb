//! Assertions on AWS query-protocol responses: framing (headers, request id, layout) and error bodies.

use crate::raw::Response;

/// The STS XML namespace.
pub const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Decodes the five predefined XML entities and numeric character references.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail.find(';').expect("unterminated entity");
        let entity = &tail[1..end];
        match entity {
            "amp" => out.push('&'),
            "lt" => out.push('<'),
            "gt" => out.push('>'),
            "quot" => out.push('"'),
            "apos" => out.push('\''),
            e if e.starts_with("#x") => {
                out.push(char::from_u32(u32::from_str_radix(&e[2..], 16).unwrap()).unwrap())
            }
            e if e.starts_with('#') => out.push(char::from_u32(e[1..].parse().unwrap()).unwrap()),
            e => panic!("unknown entity &{e};"),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The unescaped text of the first `<tag>...</tag>` in `body`.
pub fn text(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find(&close)?;
    Some(unescape(&body[start..end]))
}

/// Like [`text`], panicking when the element is absent.
pub fn must(body: &str, tag: &str) -> String {
    text(body, tag).unwrap_or_else(|| panic!("no <{tag}> in:\n{body}"))
}

/// True for a lowercase hyphenated UUID of version 4 (RFC 4122 variant).
pub fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

/// Checks what every XML response has: `Content-Type: text/xml`, one `x-amzn-RequestId` that is a UUID v4,
/// a Content-Length and an HTTP `Date`, no XML declaration, a trailing newline. Returns the request id.
pub fn assert_xml_framing(r: &Response) -> String {
    assert_eq!(r.header("content-type"), Some("text/xml"), "{r:?}");
    assert_eq!(r.header_count("x-amzn-requestid"), 1, "{r:?}");
    let rid = r.header("x-amzn-requestid").unwrap().to_owned();
    assert!(
        is_uuid_v4(&rid),
        "request id {rid:?} is not a lowercase UUID v4"
    );
    assert_eq!(
        r.header("content-length")
            .map(|v| v.parse::<usize>().unwrap()),
        Some(r.body.len()),
        "{r:?}"
    );
    let date = r.header("date").unwrap_or_default();
    assert!(
        date.ends_with(" GMT") && date.len() == 29,
        "Date header {date:?}"
    );
    assert!(!r.body.contains("<?xml"), "XML declaration in {}", r.body);
    assert!(
        r.body.ends_with(">\n"),
        "body must end with a newline: {:?}",
        r.body
    );
    assert!(!r.body.ends_with("\n\n"), "{:?}", r.body);
    rid
}

/// Asserts an AWS error response: `status`, framing, and a body that is exactly
/// `ErrorResponse/Error/{Type,Code,Message}` plus a sibling `RequestId` equal to the header, in AWS's layout,
/// with `Type` Sender for 4xx (Receiver for 5xx) and the exact (unescaped) `message`.
#[track_caller]
pub fn assert_error(r: &Response, status: u16, code: &str, message: &str) {
    assert_eq!(
        (
            r.status,
            text(&r.body, "Code").as_deref(),
            text(&r.body, "Message").as_deref()
        ),
        (status, Some(code), Some(message)),
        "unexpected error response:\n{}",
        r.body
    );
    let rid = assert_xml_framing(r);
    let fault = if status < 500 { "Sender" } else { "Receiver" };
    let head = format!(
        "<ErrorResponse xmlns=\"{STS_NS}\">\n  <Error>\n    <Type>{fault}</Type>\n    <Code>{code}</Code>\n    <Message>"
    );
    let tail =
        format!("</Message>\n  </Error>\n  <RequestId>{rid}</RequestId>\n</ErrorResponse>\n");
    assert!(
        r.body.starts_with(&head) && r.body.ends_with(&tail),
        "error body layout differs:\n{}",
        r.body
    );
    let raw_message = &r.body[head.len()..r.body.len() - tail.len()];
    assert_eq!(unescape(raw_message), message);
}

/// Asserts a 200 `{action}Response` with AWS's layout; returns the `{action}Result` inner text.
#[track_caller]
pub fn assert_success(r: &Response, action: &str) -> String {
    assert_eq!(r.status, 200, "{}", r.body);
    let rid = assert_xml_framing(r);
    let head = format!("<{action}Response xmlns=\"{STS_NS}\">\n  <{action}Result>\n");
    let tail = format!(
        "  </{action}Result>\n  <ResponseMetadata>\n    <RequestId>{rid}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n"
    );
    assert!(
        r.body.starts_with(&head) && r.body.ends_with(&tail),
        "success body layout differs:\n{}",
        r.body
    );
    r.body[head.len()..r.body.len() - tail.len()].to_owned()
}

/// Asserts the exact GetCallerIdentity body of a root caller of `account`.
#[track_caller]
pub fn assert_root_identity(r: &Response, account: &str) {
    let inner = assert_success(r, "GetCallerIdentity");
    assert_eq!(
        inner,
        format!(
            "    <Arn>arn:aws:iam::{account}:root</Arn>\n    <UserId>{account}</UserId>\n    <Account>{account}</Account>\n"
        )
    );
}
