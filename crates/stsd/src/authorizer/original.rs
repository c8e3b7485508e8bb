//! The original request a forward-auth check is about, as each proxy presents it.
//!
//! | proxy | method | URI | host |
//! |---|---|---|---|
//! | nginx `auth_request` | `X-Original-Method` | `X-Original-URI` | `Host` (`proxy_set_header Host $http_host`) |
//! | Caddy `forward_auth`, Traefik `ForwardAuth` | `X-Forwarded-Method` | `X-Forwarded-Uri` | `X-Forwarded-Host`, else `Host` |
//! | Envoy `ext_authz` (HTTP) | the check request's | its path after `/_stsd/authorize` | `Host` |
//!
//! `X-Original-*` and `X-Forwarded-*` are believed only from trusted proxies; from any other peer only
//! the Envoy shape (the check request itself, which the client's signature covers) is read.

use super::PATH;

/// Which proxy shape the original request was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `X-Original-Method` / `X-Original-URI`.
    Original,
    /// `X-Forwarded-Method` / `X-Forwarded-Uri`.
    Forwarded,
    /// The check request's own method and path after the prefix.
    Envoy,
}

/// The original request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original<'a> {
    /// Method (uppercase as sent).
    pub method: &'a str,
    /// Raw path.
    pub path: &'a str,
    /// Raw query string (without `?`).
    pub query: &'a str,
    /// The Host the client signed, when it differs from the check request's `Host` header.
    pub host_override: Option<&'a str>,
    /// Where it came from.
    pub shape: Shape,
}

fn header<'a>(h: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn split_uri(uri: &str) -> (&str, &str) {
    let uri = uri.split('#').next().unwrap_or(uri);
    match uri.split_once('?') {
        Some((p, q)) => (p, q),
        None => (uri, ""),
    }
}

/// Reads the original request; `None` when the check request carries none that may be believed.
pub fn read<'a>(
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: &'a http::HeaderMap,
    trusted_peer: bool,
) -> Option<Original<'a>> {
    if trusted_peer {
        if let Some(uri) = header(headers, "x-original-uri") {
            let (path, query) = split_uri(uri);
            return Some(Original {
                method: header(headers, "x-original-method").unwrap_or(method),
                path,
                query,
                host_override: None,
                shape: Shape::Original,
            });
        }
        if let Some(uri) = header(headers, "x-forwarded-uri") {
            let (path, query) = split_uri(uri);
            let host = header(headers, "host");
            let fwd_host = header(headers, "x-forwarded-host")
                .map(|h| h.split(',').next().unwrap_or(h).trim());
            return Some(Original {
                method: header(headers, "x-forwarded-method").unwrap_or(method),
                path,
                query,
                host_override: fwd_host.filter(|f| Some(*f) != host),
                shape: Shape::Forwarded,
            });
        }
    }
    let rest = path.strip_prefix(PATH)?;
    if !rest.starts_with('/') {
        return None;
    }
    Some(Original {
        method,
        path: rest,
        query,
        host_override: None,
        shape: Shape::Envoy,
    })
}

/// Whether the path has a `.` or `..` segment (also percent-encoded) or an encoded `/`: such paths are
/// refused, since the proxy and the upstream may resolve them differently from the resource ARN.
pub fn ambiguous_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || path.contains('\\') {
        return true;
    }
    lower
        .replace("%2e", ".")
        .split('/')
        .any(|s| s == "." || s == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        let mut m = http::HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, http::HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn each_proxy_shape_is_read() {
        let nginx = h(&[
            ("host", "api:8080"),
            ("x-original-method", "POST"),
            ("x-original-uri", "/pets/1?a=b"),
        ]);
        let o = read("GET", PATH, "", &nginx, true).unwrap();
        assert_eq!((o.method, o.path, o.query), ("POST", "/pets/1", "a=b"));
        assert_eq!(o.shape, Shape::Original);
        let caddy = h(&[
            ("host", "api:8080"),
            ("x-forwarded-method", "DELETE"),
            ("x-forwarded-uri", "/pets"),
            ("x-forwarded-host", "api.example"),
        ]);
        let o = read("GET", PATH, "", &caddy, true).unwrap();
        assert_eq!((o.method, o.path, o.query), ("DELETE", "/pets", ""));
        assert_eq!(o.host_override, Some("api.example"));
        // From an untrusted peer the headers are ignored.
        assert!(read("GET", PATH, "", &caddy, false).is_none());
        let envoy = h(&[("host", "api")]);
        let path = "/_stsd/authorize/pets/2";
        let o = read("PUT", path, "x=1", &envoy, false).unwrap();
        assert_eq!((o.method, o.path, o.query), ("PUT", "/pets/2", "x=1"));
        assert_eq!(o.shape, Shape::Envoy);
        assert!(read("GET", "/_stsd/authorizex", "", &envoy, true).is_none());
    }

    #[test]
    fn dot_segments_are_ambiguous() {
        assert!(ambiguous_path("/a/../b"));
        assert!(ambiguous_path("/a/%2E%2e/b"));
        assert!(ambiguous_path("/a%2fb"));
        assert!(!ambiguous_path("/a/b.c/..d"));
    }
}
