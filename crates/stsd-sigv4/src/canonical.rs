//! The SigV4 canonical request, hashed as it is produced (no intermediate string in the verify path).
//!
//! ```text
//! METHOD \n CANONICAL_URI \n CANONICAL_QUERY \n
//! name1:value1 \n ... nameN:valueN \n
//! \n
//! name1;...;nameN \n
//! hex(sha256(body))
//! ```

use sha2::{Digest, Sha256};

use crate::encoding::{canonical_query, split_ascii};

/// Where canonical header values come from.
pub(crate) trait HeaderSource {
    /// Calls `f` with each raw value of header `name` (lowercase), in order.
    fn for_each_value(&self, name: &str, f: &mut dyn FnMut(&[u8]));
}

impl HeaderSource for http::HeaderMap {
    fn for_each_value(&self, name: &str, f: &mut dyn FnMut(&[u8])) {
        // An invalid header name simply finds nothing.
        for v in self.get_all(name) {
            f(v.as_bytes());
        }
    }
}

impl HeaderSource for [(&str, &str)] {
    fn for_each_value(&self, name: &str, f: &mut dyn FnMut(&[u8])) {
        for (n, v) in self {
            if n.eq_ignore_ascii_case(name) {
                f(v.as_bytes());
            }
        }
    }
}

/// Hands `value` to `sink` with leading/trailing spaces removed and inner runs of spaces collapsed to one.
pub(crate) fn trimmed_value(value: &[u8], sink: &mut impl FnMut(&[u8])) {
    let start = value.iter().position(|&b| b != b' ');
    let Some(start) = start else { return };
    let end = value
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |e| e + 1);
    let value = &value[start..end];
    if !value.windows(2).any(|w| w == b"  ") {
        sink(value);
        return;
    }
    let mut first = true;
    for word in value.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
        if !first {
            sink(b" ");
        }
        sink(word);
        first = false;
    }
}

/// Lowercase hex of `bytes` into a fixed buffer.
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0x0f)];
    }
    out
}

/// Hex SHA-256 of a payload.
pub(crate) fn payload_hash(body: &[u8]) -> [u8; 64] {
    hex32(&Sha256::digest(body).into())
}

/// The inputs of a canonical request.
pub(crate) struct CanonicalInput<'a, H: HeaderSource + ?Sized> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Drop `X-Amz-Signature` from the canonical query (presigned requests).
    pub skip_signature_param: bool,
    pub headers: &'a H,
    /// Lowercase signed header names, `;`-separated in the order they are listed (as the canonical
    /// request's signed-headers line).
    pub signed_headers: &'a str,
    /// The payload hash as it appears in the canonical request (hex SHA-256 or a literal such as
    /// `UNSIGNED-PAYLOAD`).
    pub payload_hash: &'a [u8],
}

/// Feeds the canonical request to `sink`.
pub(crate) fn write_canonical_request<H: HeaderSource + ?Sized>(
    input: &CanonicalInput<'_, H>,
    mut sink: impl FnMut(&[u8]),
) {
    sink(input.method.as_bytes());
    sink(b"\n");
    sink(if input.path.is_empty() {
        b"/"
    } else {
        input.path.as_bytes()
    });
    sink(b"\n");
    canonical_query(input.query, input.skip_signature_param, &mut sink);
    sink(b"\n");
    let names = (!input.signed_headers.is_empty())
        .then(|| split_ascii(input.signed_headers, b';'))
        .into_iter()
        .flatten();
    for name in names {
        sink(name.as_bytes());
        sink(b":");
        let mut first = true;
        input.headers.for_each_value(name, &mut |v| {
            if !first {
                sink(b",");
            }
            first = false;
            trimmed_value(v, &mut sink);
        });
        sink(b"\n");
    }
    sink(b"\n");
    sink(input.signed_headers.as_bytes());
    sink(b"\n");
    sink(input.payload_hash);
}

/// Hex SHA-256 of the canonical request.
pub(crate) fn canonical_request_hash<H: HeaderSource + ?Sized>(
    input: &CanonicalInput<'_, H>,
) -> [u8; 64] {
    let mut hasher = Sha256::new();
    write_canonical_request(input, |b| hasher.update(b));
    hex32(&hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trimmed(v: &str) -> String {
        let mut out = Vec::new();
        trimmed_value(v.as_bytes(), &mut |b: &[u8]| out.extend_from_slice(b));
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn trimming() {
        assert_eq!(trimmed("abc"), "abc");
        assert_eq!(trimmed("  a  b   c  "), "a b c");
        assert_eq!(trimmed("a b"), "a b");
        assert_eq!(trimmed("   "), "");
        assert_eq!(trimmed(""), "");
        // only spaces are collapsed, as aws-sigv4 and the Go SDK do
        assert_eq!(trimmed("a\t\tb"), "a\t\tb");
    }

    #[test]
    fn hex() {
        assert_eq!(
            &payload_hash(b"")[..],
            b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn canonical_request_text() {
        let headers: &[(&str, &str)] = &[
            ("Host", "iam.amazonaws.com"),
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("X-Amz-Date", "20150830T123600Z"),
            ("My-Header", "  a   b  "),
            ("my-header", "c"),
        ];
        let signed = "content-type;host;my-header;x-amz-date";
        let payload = payload_hash(b"");
        let input = CanonicalInput {
            method: "GET",
            path: "",
            query: "Version=2010-05-08&Action=ListUsers",
            skip_signature_param: false,
            headers,
            signed_headers: signed,
            payload_hash: &payload,
        };
        let mut text = Vec::new();
        write_canonical_request(&input, |b| text.extend_from_slice(b));
        assert_eq!(
            String::from_utf8(text).unwrap_or_default(),
            "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
             content-type:application/x-www-form-urlencoded; charset=utf-8\n\
             host:iam.amazonaws.com\nmy-header:a b,c\nx-amz-date:20150830T123600Z\n\n\
             content-type;host;my-header;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
