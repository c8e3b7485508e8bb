//! wrk as a second, independent load generator: the Lua script that makes wrk send one of the
//! benchmark's pre-signed requests, and the parser of wrk's output into a result line.
//!
//! The script sets `wrk.method`, `wrk.path`, `wrk.headers` and `wrk.body` to the request the in-repo
//! generator would send for the workload (taken apart from its wire bytes, so both generators send the
//! same request line, headers and body). wrk formats that request once per thread and replays it on every
//! connection (a SigV4 signature stays valid for the 15-minute skew window). wrk writes the headers in the
//! order of a Lua table walk, not in the in-repo generator's order, and adds `Content-Length` itself
//! (from the body) when there is a body; `Host` is given explicitly so that wrk does not add its own.
//! All connections send the same bytes (the in-repo generator signs per connection, so its requests differ
//! in `amz-sdk-invocation-id` only).
//!
//! The script's `done()` prints one machine-readable line (prefix [`DONE_PREFIX`]) with wrk's exact
//! counts; [`parse_output`] reads it and wrk's human summary (the latency distribution of `--latency`,
//! `Socket errors: …`, `Non-2xx or 3xx responses: …`, `Requests/sec: …`), and keeps the larger error
//! counts of the two. wrk counts an answer as a status error when its status is 400 or more: a 1xx or
//! 3xx answer would not be seen (stsd and the ceiling send none).

use anyhow::{Context, bail};
use std::fmt::Write as _;

/// The prefix of the line the script's `done()` prints.
pub const DONE_PREFIX: &str = "stsd-wrk-result";

/// A request as wrk's script globals hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrkRequest {
    /// `POST`, `GET`.
    pub method: String,
    /// The request target, e.g. `/`.
    pub path: String,
    /// Header names and values in wire order, without `Content-Length` (wrk adds it from the body).
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

impl WrkRequest {
    /// Takes apart a serialised HTTP/1.1 request ([`crate::request::Signed::wire`]).
    ///
    /// # Errors
    /// Bytes that are not one complete request, or a body that disagrees with `Content-Length`.
    pub fn from_wire(wire: &[u8]) -> anyhow::Result<WrkRequest> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let httparse::Status::Complete(head_len) =
            req.parse(wire).context("parsing the request")?
        else {
            bail!("incomplete request head");
        };
        let body = wire[head_len..].to_vec();
        let mut out = Vec::new();
        for h in req.headers.iter() {
            let value = std::str::from_utf8(h.value)
                .with_context(|| format!("header {} is not UTF-8", h.name))?;
            if h.name.eq_ignore_ascii_case("content-length") {
                let n: usize = value.trim().parse().context("Content-Length")?;
                if n != body.len() {
                    bail!("Content-Length {n} but a body of {} bytes", body.len());
                }
                continue;
            }
            out.push((h.name.to_owned(), value.to_owned()));
        }
        Ok(WrkRequest {
            method: req.method.context("no method")?.to_owned(),
            path: req.path.context("no path")?.to_owned(),
            headers: out,
            body,
        })
    }
}

/// A Lua string literal holding exactly `bytes`: printable ASCII as is (but `"` and `\` escaped), every
/// other byte as a three-digit decimal escape (`\013`), which Lua 5.1 / LuaJIT read back byte for byte.
pub fn lua_string(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => {
                let _ = write!(s, "\\{b:03}");
            }
        }
    }
    s.push('"');
    s
}

/// The header name wrk's `wrk.format` expects for the headers it manages itself (`Host`: added from the
/// URL unless present under exactly that name); other names as on the wire (HTTP names are
/// case-insensitive, and SigV4 lower-cases them).
fn wrk_header_name(name: &str) -> &str {
    if name.eq_ignore_ascii_case("host") {
        "Host"
    } else {
        name
    }
}

/// The Lua script for `wrk -s`: the request as globals and a `done()` that prints [`DONE_PREFIX`] with
/// the counts and latency percentiles (µs) as `key=value` fields.
pub fn script(req: &WrkRequest, comment: &str) -> String {
    let mut s = String::new();
    for line in comment.lines() {
        let _ = writeln!(s, "-- {line}");
    }
    let _ = writeln!(s, "wrk.method = {}", lua_string(req.method.as_bytes()));
    let _ = writeln!(s, "wrk.path = {}", lua_string(req.path.as_bytes()));
    let _ = writeln!(s, "wrk.headers = {{}}");
    for (name, value) in &req.headers {
        let _ = writeln!(
            s,
            "wrk.headers[{}] = {}",
            lua_string(wrk_header_name(name).as_bytes()),
            lua_string(value.as_bytes())
        );
    }
    if req.body.is_empty() {
        let _ = writeln!(s, "wrk.body = nil");
    } else {
        let _ = writeln!(
            s,
            "wrk.body = {} -- wrk adds Content-Length",
            lua_string(&req.body)
        );
    }
    let _ = write!(
        s,
        r#"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("{DONE_PREFIX} requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d status_errors=%d connect_errors=%d read_errors=%d write_errors=%d timeout_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
"#
    );
    s
}

/// One wrk run's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WrkResult {
    /// Completed requests (any status).
    pub requests: u64,
    /// Measured seconds.
    pub duration_s: f64,
    /// Requests per second.
    pub rps: f64,
    /// Median latency, µs.
    pub p50_us: u32,
    /// 99th percentile latency, µs.
    pub p99_us: u32,
    /// Answers wrk counted as errors (status ≥ 400; its "Non-2xx or 3xx responses").
    pub status_errors: u64,
    /// Socket errors: connect, read, write, timeout.
    pub socket_errors: [u64; 4],
    /// Whether the `done()` line was found (else the figures come from the human summary).
    pub from_done_line: bool,
}

impl WrkResult {
    /// Connect, read, write and timeout errors together.
    pub fn transport_errors(&self) -> u64 {
        self.socket_errors.iter().sum()
    }
}

/// A duration as wrk prints it (`566.00us`, `1.50ms`, `2.00s`, `1.00m`, `3.00s,`), in µs.
fn wrk_duration_us(s: &str) -> Option<f64> {
    let s = s.trim().trim_end_matches(',');
    let (num, scale) = if let Some(n) = s.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e6)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60e6)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600e6)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|v| v * scale)
}

fn us_u32(us: f64) -> u32 {
    // Saturating float-to-int conversion of a non-negative latency.
    us.round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// Parses wrk's output (stdout of `wrk --latency -s SCRIPT`, with the script's `done()` line).
///
/// # Errors
/// Output without a request count (wrk failed before measuring), or a malformed `done()` line.
pub fn parse_output(text: &str) -> anyhow::Result<WrkResult> {
    let mut r = WrkResult::default();
    let mut summary_requests = None;
    let mut summary_p50 = None;
    let mut summary_p99 = None;
    let mut summary_rps = None;
    let mut summary_secs = None;
    let mut summary_status = 0u64;
    let mut summary_socket = [0u64; 4];
    let mut done = None;
    let mut in_distribution = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix(DONE_PREFIX) {
            done = Some(rest.to_owned());
            continue;
        }
        if t == "Latency Distribution" {
            in_distribution = true;
            continue;
        }
        if in_distribution {
            if let Some((pct, value)) = t.split_once('%') {
                let v = wrk_duration_us(value);
                match pct.trim() {
                    "50" => summary_p50 = v,
                    "99" => summary_p99 = v,
                    _ => {}
                }
                continue;
            }
            in_distribution = false;
        }
        // "313074 requests in 3.00s, 301.38MB read"
        if let Some((n, rest)) = t.split_once(" requests in ")
            && let Ok(n) = n.trim().parse::<u64>()
        {
            summary_requests = Some(n);
            summary_secs = rest
                .split_whitespace()
                .next()
                .and_then(wrk_duration_us)
                .map(|us| us / 1e6);
        } else if let Some(rest) = t.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for part in rest.split(',') {
                let mut it = part.split_whitespace();
                let (Some(kind), Some(n)) = (it.next(), it.next()) else {
                    bail!("unexpected socket error field {part:?}");
                };
                let n: u64 = n
                    .parse()
                    .with_context(|| format!("socket errors: {part:?}"))?;
                let i = match kind {
                    "connect" => 0,
                    "read" => 1,
                    "write" => 2,
                    "timeout" => 3,
                    _ => bail!("unknown socket error kind {kind:?}"),
                };
                summary_socket[i] = n;
            }
        } else if let Some(rest) = t.strip_prefix("Non-2xx or 3xx responses:") {
            summary_status = rest.trim().parse().context("non-2xx count")?;
        } else if let Some(rest) = t.strip_prefix("Requests/sec:") {
            summary_rps = rest.trim().parse::<f64>().ok();
        }
    }
    if let Some(fields) = done {
        let get = |k: &str| -> anyhow::Result<u64> {
            let prefix = format!("{k}=");
            fields
                .split_whitespace()
                .find_map(|f| f.strip_prefix(prefix.as_str()))
                .with_context(|| format!("the {DONE_PREFIX} line has no {k}"))?
                .parse::<f64>()
                .map(|v| v.max(0.0).round() as u64)
                .with_context(|| format!("{DONE_PREFIX}: {k}"))
        };
        r.requests = get("requests")?;
        let duration_us = get("duration_us")?;
        r.p50_us = u32::try_from(get("p50_us")?).unwrap_or(u32::MAX);
        r.p99_us = u32::try_from(get("p99_us")?).unwrap_or(u32::MAX);
        r.status_errors = get("status_errors")?;
        r.socket_errors = [
            get("connect_errors")?,
            get("read_errors")?,
            get("write_errors")?,
            get("timeout_errors")?,
        ];
        r.duration_s = duration_us as f64 / 1e6;
        r.rps = if duration_us > 0 {
            r.requests as f64 / r.duration_s
        } else {
            0.0
        };
        r.from_done_line = true;
    } else {
        r.requests = summary_requests.context(
            "no request count in wrk's output (did wrk fail before measuring? its output is above)",
        )?;
        r.duration_s = summary_secs.unwrap_or(0.0);
        r.rps = summary_rps.unwrap_or(if r.duration_s > 0.0 {
            r.requests as f64 / r.duration_s
        } else {
            0.0
        });
        r.p50_us = us_u32(summary_p50.context("no 50% latency (run wrk with --latency)")?);
        r.p99_us = us_u32(summary_p99.context("no 99% latency (run wrk with --latency)")?);
    }
    // Keep the larger error counts of the two reports (they agree; a missing line means zero).
    r.status_errors = r.status_errors.max(summary_status);
    for (a, b) in r.socket_errors.iter_mut().zip(summary_socket) {
        *a = (*a).max(b);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Creds, form_body, sign, sign_authz};

    /// Lua reads `\ddd` as one byte: decode the literal back the way Lua does, for the escapes we write.
    fn lua_unescape(lit: &str) -> Vec<u8> {
        let inner = lit
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .expect("quoted");
        let b = inner.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' {
                match b[i + 1] {
                    b'"' | b'\\' => {
                        out.push(b[i + 1]);
                        i += 2;
                    }
                    d if d.is_ascii_digit() => {
                        let n: u16 = inner[i + 1..i + 4].parse().expect("three digits");
                        out.push(u8::try_from(n).expect("byte"));
                        i += 4;
                    }
                    other => panic!("unexpected escape {other}"),
                }
            } else {
                assert!((0x20..=0x7e).contains(&b[i]), "raw byte {}", b[i]);
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn lua_strings_escape_quotes_backslashes_and_control_bytes() {
        assert_eq!(lua_string(b"abc"), "\"abc\"");
        assert_eq!(lua_string(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        // A control byte followed by a digit: always three digits, so "\0131" cannot be misread.
        assert_eq!(lua_string(b"\r1\n\x00\xff"), "\"\\0131\\010\\000\\255\"");
        let all: Vec<u8> = (0..=255u8).collect();
        let lit = lua_string(&all);
        assert!(!lit[1..lit.len() - 1].contains('\n'));
        assert_eq!(lua_unescape(&lit), all);
        // Form bodies and signatures have '=', '&', '%', '/', '+', ';', ' ': kept as they are.
        let body = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr";
        assert_eq!(lua_string(body.as_bytes()), format!("\"{body}\""));
    }

    fn creds(token: Option<&str>) -> Creds {
        Creds {
            access_key_id: "ASIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(Into::into),
        }
    }

    #[test]
    fn script_carries_the_signed_post() {
        let body = form_body(&[("Action", "GetSessionToken"), ("Version", "2011-06-15")]);
        let signed = sign(
            "127.0.0.1:8754",
            &creds(Some("to\"k\\en+/=")),
            "sts",
            body.clone(),
            1_700_000_000,
        )
        .expect("signs");
        let req = WrkRequest::from_wire(signed.wire()).expect("parses");
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/");
        assert_eq!(req.body, body.as_bytes());
        assert!(
            !req.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-length")),
            "wrk adds Content-Length itself"
        );
        let s = script(&req, "gst\nsecond line");
        assert!(s.starts_with("-- gst\n-- second line\n"), "{s}");
        assert!(s.contains("wrk.method = \"POST\"\n"), "{s}");
        assert!(s.contains("wrk.path = \"/\"\n"), "{s}");
        assert!(
            s.contains("wrk.headers[\"Host\"] = \"127.0.0.1:8754\"\n"),
            "{s}"
        );
        assert!(
            s.contains("wrk.headers[\"x-amz-security-token\"] = \"to\\\"k\\\\en+/=\"\n"),
            "{s}"
        );
        assert!(
            s.contains(&format!(
                "wrk.body = \"{body}\" -- wrk adds Content-Length\n"
            )),
            "{s}"
        );
        // Every header of the signed request is in the script, with its exact value.
        for (name, value) in signed.request().headers() {
            if name == "content-length" {
                continue;
            }
            let n = if name == "host" {
                "Host"
            } else {
                name.as_str()
            };
            let want = format!(
                "wrk.headers[{}] = {}\n",
                lua_string(n.as_bytes()),
                lua_string(value.as_bytes())
            );
            assert!(s.contains(&want), "missing {want} in {s}");
        }
        assert!(s.contains("function done(summary, latency, requests)"));
        assert!(s.contains(DONE_PREFIX));
    }

    #[test]
    fn script_carries_the_authorizer_get() {
        let signed = sign_authz(&creds(Some("tok")), 1_700_000_000).expect("signs");
        let req = WrkRequest::from_wire(signed.wire()).expect("parses");
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/_stsd/authorize");
        assert!(req.body.is_empty());
        let s = script(&req, "authz");
        assert!(s.contains("wrk.method = \"GET\"\n"));
        assert!(s.contains("wrk.headers[\"Host\"] = \"orders.internal\"\n"));
        assert!(s.contains("wrk.headers[\"x-original-uri\"] = \"/orders/42\"\n"));
        assert!(s.contains("wrk.body = nil\n"));
    }

    #[test]
    fn wire_with_a_wrong_length_is_refused() {
        assert!(WrkRequest::from_wire(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab").is_err());
        assert!(WrkRequest::from_wire(b"POST / HTTP/1.1\r\nHost: x\r\n").is_err());
    }

    /// Real wrk 4.1.0 (Debian) output: `wrk -t 2 -c 64 -d 3s --latency -s gst.lua` against stsd.
    const FIXTURE_CLEAN: &str = include_str!("../tests/fixtures/wrk-gst-64.txt");
    /// Real wrk output of a run where stsd refused the request (403: signed with a wrong secret).
    const FIXTURE_ERRORS: &str = include_str!("../tests/fixtures/wrk-gst-403.txt");

    #[test]
    fn parses_real_wrk_output() {
        let r = parse_output(FIXTURE_CLEAN).expect("parses");
        assert!(r.from_done_line);
        assert!(r.requests > 0 && r.duration_s > 2.5, "{r:?}");
        assert_eq!(r.status_errors, 0);
        assert_eq!(r.transport_errors(), 0);
        assert!(r.p50_us > 0 && r.p99_us >= r.p50_us, "{r:?}");
        // The done() line and the human summary agree.
        let summary_only: String = FIXTURE_CLEAN
            .lines()
            .filter(|l| !l.starts_with(DONE_PREFIX))
            .map(|l| format!("{l}\n"))
            .collect();
        let s = parse_output(&summary_only).expect("parses the summary alone");
        assert!(!s.from_done_line);
        assert_eq!(s.requests, r.requests);
        assert!((s.rps - r.rps).abs() / r.rps < 0.01, "{s:?} vs {r:?}");
        // wrk prints latencies with two decimals in a unit: within 1 %.
        assert!(f64::from(s.p50_us.abs_diff(r.p50_us)) <= f64::from(r.p50_us) * 0.01 + 1.0);
        assert!(f64::from(s.p99_us.abs_diff(r.p99_us)) <= f64::from(r.p99_us) * 0.01 + 1.0);
    }

    #[test]
    fn parses_errors_of_real_wrk_output() {
        let r = parse_output(FIXTURE_ERRORS).expect("parses");
        assert!(r.status_errors > 0, "{r:?}");
        assert_eq!(r.status_errors, r.requests, "every answer was a 403: {r:?}");
    }

    #[test]
    fn parses_socket_errors_and_units() {
        let text = "Running 1s test @ http://127.0.0.1:1/\n  1 threads and 1 connections\n  Latency Distribution\n     50%  566.00us\n     75%  1.00ms\n     90%  1.20s\n     99%    1.50ms\n  10 requests in 1.00m, 3.00KB read\n  Socket errors: connect 1, read 2, write 3, timeout 4\n  Non-2xx or 3xx responses: 5\nRequests/sec:      0.17\n";
        let r = parse_output(text).expect("parses");
        assert_eq!(r.requests, 10);
        assert!((r.duration_s - 60.0).abs() < 1e-9);
        assert_eq!((r.p50_us, r.p99_us), (566, 1500));
        assert_eq!(r.socket_errors, [1, 2, 3, 4]);
        assert_eq!(r.transport_errors(), 10);
        assert_eq!(r.status_errors, 5);
        assert!(parse_output("unable to connect to 127.0.0.1:1 Connection refused\n").is_err());
        assert!(parse_output(&format!("{DONE_PREFIX} requests=1\n")).is_err());
    }
}
