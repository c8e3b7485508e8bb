//! The harness of the cargo-fuzz target `authz_headers` (`fuzz/fuzz_targets/authz_headers.rs`), replayed
//! on stable by this module's test over `fuzz/corpus/authz_headers/`: the untrusted parts of a forward-auth
//! check — the original request as a proxy presents it, `X-Forwarded-For`, the host and path matched
//! against a fixed API table, the route table's globs — must never panic, and what they return must hold
//! together.
//!
//! Input layout: byte 0 sets the peer (bit 0: a trusted proxy; bit 1: IPv6); then a request line
//! `METHOD PATH[?QUERY]`, then header lines `name: value` (lines that HTTP cannot carry are skipped).

use super::{config, original};
use crate::authz::context::{self, Cidr, Transport};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

/// The fixed API table the inputs are matched against: exact hosts, a wildcard host, nested prefixes and a
/// route table with globs.
const APIS: &str = r#"
[[api]]
id = "orders"
stage = "prod"
hosts = ["orders.internal", "[::1]"]
path_prefix = "/"

[[api]]
id = "ordersv2"
stage = "v2"
hosts = ["orders.internal"]
path_prefix = "/v2/"

[[api]]
id = "any"
stage = "s"
hosts = ["*"]
path_prefix = "/any"
unsigned_payload = true

action_prefix = "items"

[[api.actions]]
method = "GET"
path = "items/*"
action = "Read"

[[api.actions]]
method = "*"
path = "*/admin/*"
action = "Admin"
"#;

fn apis() -> &'static [config::Api] {
    static APIS_PARSED: OnceLock<Vec<config::Api>> = OnceLock::new();
    APIS_PARSED.get_or_init(|| {
        #[derive(serde::Deserialize)]
        struct File {
            api: Vec<config::ApiTable>,
        }
        // A constant, checked by this module's test: a failure here is a bug in the harness.
        let file: File = toml::from_str(APIS).unwrap_or_else(|e| panic!("harness API table: {e}"));
        config::validate(file.api).unwrap_or_else(|e| panic!("harness API table: {e}"))
    })
}

/// One input; panics only when an invariant breaks.
pub fn fuzz_one(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let trusted_peer = flags & 1 == 1;
    let peer = match (trusted_peer, flags & 2 == 2) {
        (true, false) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        (true, true) => IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
        (false, false) => IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
        (false, true) => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
    };
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or("");
    let (method, target) = first.split_once(' ').unwrap_or((first, "/"));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = http::HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.trim().as_bytes()),
            http::HeaderValue::from_str(value.trim()),
        ) {
            headers.append(n, v);
        }
    }

    let trusted = [Cidr::parse("127.0.0.1/32").unwrap_or_else(|e| panic!("harness CIDR: {e}"))];
    let (client, _) = context::client(
        &Transport {
            peer,
            tls: false,
            headers: &headers,
        },
        &trusted,
    );
    if !trusted[0].contains(peer) {
        assert_eq!(
            client, peer,
            "an untrusted peer's X-Forwarded-For was believed"
        );
    }

    let Some(orig) = original::read(method, path, query, &headers, trusted_peer) else {
        return;
    };
    if !trusted_peer {
        assert_eq!(
            orig.shape,
            original::Shape::Envoy,
            "proxy headers were believed from an untrusted peer"
        );
    }
    if orig.shape == original::Shape::Envoy {
        assert!(orig.path.starts_with('/'), "Envoy path {:?}", orig.path);
    }
    let _ = original::ambiguous_path(orig.path);
    let host = orig
        .host_override
        .or_else(|| {
            headers
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
        })
        .unwrap_or("");
    let _ = config::strip_port(host);
    if let Some(api) = config::find(apis(), host, orig.path) {
        let rest = config::resource_path(api, orig.path);
        assert!(
            orig.path.ends_with(rest),
            "resource path {rest:?} is not the tail of {:?}",
            orig.path
        );
        assert!(
            !rest.starts_with('/'),
            "resource path {rest:?} starts with /"
        );
        let _ = api.action(orig.method, rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn harness_table_parses() {
        assert_eq!(apis().len(), 3);
    }

    #[test]
    fn seeds_reach_every_shape() {
        // A trusted nginx check, a trusted Caddy check, an Envoy check from anywhere.
        fuzz_one(b"\x01GET /_stsd/authorize\nhost: orders.internal\nx-original-uri: /v2/items/1?x=1\nx-original-method: GET\nx-forwarded-for: 10.0.0.1, 10.0.0.2");
        fuzz_one(b"\x03GET /_stsd/authorize\nhost: stsd\nx-forwarded-uri: /any/items/9\nx-forwarded-host: orders.internal:8080");
        fuzz_one(b"\x00POST /_stsd/authorize/any/a/admin/b?q\nhost: [::1]:80");
        // Trusted headers from an untrusted peer are ignored: that is an Envoy-shaped check.
        let h = http::HeaderMap::from_iter([(
            http::HeaderName::from_static("x-original-uri"),
            http::HeaderValue::from_static("/v2/x"),
        )]);
        let o = original::read("GET", "/_stsd/authorize/a", "", &h, false);
        assert_eq!(o.map(|o| o.shape), Some(original::Shape::Envoy));
    }

    #[test]
    fn fuzz_corpus_replays_without_panic() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/authz_headers");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus dir") {
            let data = std::fs::read(entry.expect("entry").path()).expect("seed");
            for cut in 0..=data.len() {
                fuzz_one(&data[..cut]);
            }
            // Cheap mutations: every byte flipped to a few values that matter to the parsers.
            for i in 0..data.len() {
                for b in [b'/', b'.', b'%', b':', b'\n', b'*', 0u8] {
                    let mut m = data.clone();
                    m[i] = b;
                    fuzz_one(&m);
                }
            }
            n += 1;
        }
        assert!(n >= 5, "expected the seed corpus in {}", dir.display());
    }
}
