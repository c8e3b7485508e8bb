//! A minimal XML writer producing AWS's layout: no declaration, 2-space indent, `\n` line ends, a trailing
//! newline after the root, text escaped.

use crate::error::ApiError;

/// Pretty-printing element writer. Elements are written in call order.
pub struct XmlWriter {
    buf: String,
    depth: usize,
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlWriter {
    /// An empty document.
    pub fn new() -> Self {
        XmlWriter {
            // Sized for the largest common body (GetSessionToken with a padded token stays under 2 KiB).
            buf: String::with_capacity(2048),
            depth: 0,
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.buf.push_str("  ");
        }
    }

    /// Opens the root element with its namespace.
    pub fn root(&mut self, name: &str, namespace: &str) {
        self.raw_open(&[name], Some(namespace));
    }

    /// Opens an element whose name is the concatenation of `name` (so `{Action}Response` needs no
    /// `format!`), with a namespace for the root.
    fn raw_open(&mut self, name: &[&str], namespace: Option<&str>) {
        self.indent();
        self.buf.push('<');
        name.iter().for_each(|p| self.buf.push_str(p));
        if let Some(ns) = namespace {
            self.buf.push_str(" xmlns=\"");
            escape_into(&mut self.buf, ns);
            self.buf.push('"');
        }
        self.buf.push_str(">\n");
        self.depth += 1;
    }

    /// Closes an element opened with [`Self::raw_open`].
    fn raw_close(&mut self, name: &[&str]) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.buf.push_str("</");
        name.iter().for_each(|p| self.buf.push_str(p));
        self.buf.push_str(">\n");
    }

    /// Opens an element.
    pub fn open(&mut self, name: &str) {
        self.raw_open(&[name], None);
    }

    /// Closes an element opened with [`Self::open`] or [`Self::root`].
    pub fn close(&mut self, name: &str) {
        self.raw_close(&[name]);
    }

    /// Writes `<name>text</name>` with `text` escaped.
    pub fn leaf(&mut self, name: &str, text: &str) {
        self.indent();
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
        escape_into(&mut self.buf, text);
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push_str(">\n");
    }

    /// Writes `<name>n</name>` (the digits written straight into the document).
    pub fn leaf_uint(&mut self, name: &str, n: usize) {
        self.leaf(name, itoa::Buffer::new().format(n));
    }

    /// Writes an element around whatever `f` writes.
    pub fn element(&mut self, name: &str, f: impl FnOnce(&mut Self)) {
        self.open(name);
        f(self);
        self.close(name);
    }

    /// The finished document.
    pub fn finish(self) -> String {
        self.buf
    }
}

/// Bytes examined at a time by [`escape_into`].
const CHUNK: usize = 16;

/// True when any byte of `chunk` is one of `&<>"'`. Written as a loop over a fixed-size array that ORs
/// comparisons without an early exit, so the compiler turns it into a few vector comparisons (SSE2 on
/// x86-64: about twenty instructions for the sixteen bytes).
fn chunk_has_special(chunk: &[u8; CHUNK]) -> bool {
    let mut found = false;
    for &b in chunk {
        found |= (b == b'&') | (b == b'<') | (b == b'>') | (b == b'"') | (b == b'\'');
    }
    found
}

/// Escapes `&`, `<`, `>`, `"` and `'` (other characters are written as they are, newlines literally).
///
/// Runs without special characters are copied at once, found sixteen bytes at a time: tokens, keys and
/// ids (most of a response's bytes) have none.
pub fn escape_into(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes[i..].first_chunk::<CHUNK>()
            && !chunk_has_special(chunk)
        {
            i += CHUNK;
            continue;
        }
        let end = (i + CHUNK).min(bytes.len());
        while i < end {
            let entity = match bytes[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&apos;",
                _ => {
                    i += 1;
                    continue;
                }
            };
            // The special characters are ASCII, so `i` is always a character boundary.
            out.push_str(&text[start..i]);
            out.push_str(entity);
            i += 1;
            start = i;
        }
    }
    out.push_str(&text[start..]);
}

/// A success body: `<{Action}Response xmlns=..>`, an optional `<{Action}Result>` written by `result`,
/// and `<ResponseMetadata><RequestId>`.
pub fn success_body(
    action: &str,
    namespace: &str,
    request_id: &str,
    result: Option<&dyn Fn(&mut XmlWriter)>,
) -> String {
    let mut w = XmlWriter::new();
    w.raw_open(&[action, "Response"], Some(namespace));
    if let Some(result) = result {
        w.raw_open(&[action, "Result"], None);
        result(&mut w);
        w.raw_close(&[action, "Result"]);
    }
    w.element("ResponseMetadata", |w| w.leaf("RequestId", request_id));
    w.raw_close(&[action, "Response"]);
    w.finish()
}

/// An `ErrorResponse` body: `Error/{Type,Code,Message}` and a sibling `RequestId`.
pub fn error_body(err: &ApiError, namespace: &str, request_id: &str) -> String {
    let mut w = XmlWriter::new();
    w.root("ErrorResponse", namespace);
    w.element("Error", |w| {
        w.leaf("Type", err.fault().as_str());
        w.leaf("Code", &err.code);
        w.leaf("Message", &err.message);
    });
    w.leaf("RequestId", request_id);
    w.close("ErrorResponse");
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_matches_aws_capture_byte_for_byte() {
        // The byte-exact capture in the wire reference (§3.1): 305 bytes with the trailing newline.
        let expected = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>InvalidClientTokenId</Code>\n    <Message>The security token included in the request is invalid</Message>\n  </Error>\n  <RequestId>16fc956c-311e-4199-bee1-1680236e9698</RequestId>\n</ErrorResponse>\n";
        let got = error_body(
            &ApiError::invalid_session_token(),
            crate::request::STS_NS,
            "16fc956c-311e-4199-bee1-1680236e9698",
        );
        assert_eq!(got, expected);
        assert_eq!(got.len(), 305);
    }

    #[test]
    fn escaping_keeps_everything_else() {
        for (input, expected) in [
            ("", ""),
            ("plain", "plain"),
            ("&", "&amp;"),
            ("a<b>c", "a&lt;b&gt;c"),
            ("'\"", "&apos;&quot;"),
            ("é&ü", "é&amp;ü"),
            ("line\nbreak&", "line\nbreak&amp;"),
        ] {
            let mut out = String::new();
            escape_into(&mut out, input);
            assert_eq!(out, expected);
        }
    }

    /// The plain byte-by-byte escape the word-at-a-time one must equal.
    fn escape_reference(text: &str) -> String {
        let mut out = String::new();
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&apos;"),
                c => out.push(c),
            }
        }
        out
    }

    const fn is_special(b: u8) -> bool {
        matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'')
    }

    #[test]
    fn chunk_check_finds_each_special_in_each_position() {
        for b in 0..=255u8 {
            for pos in 0..CHUNK {
                let mut chunk = *b"abcdefghijklmnop";
                chunk[pos] = b;
                assert_eq!(
                    chunk_has_special(&chunk),
                    is_special(b),
                    "byte {b:#04x} at {pos}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn escaping_matches_the_reference(text in "[a-z&<>\"'é+/=\n]{0,40}") {
            let mut out = String::from("prefix");
            escape_into(&mut out, &text);
            proptest::prop_assert_eq!(out, format!("prefix{}", escape_reference(&text)));
        }

        #[test]
        fn escaping_arbitrary_text_matches_the_reference(text in proptest::prelude::any::<String>()) {
            let mut out = String::new();
            escape_into(&mut out, &text);
            proptest::prop_assert_eq!(out, escape_reference(&text));
        }
    }

    #[test]
    fn receiver_for_5xx_and_escaping() {
        let got = error_body(
            &ApiError::new(500, "InternalFailure", "a & <b>"),
            "ns",
            "id",
        );
        assert!(got.contains("<Type>Receiver</Type>"), "{got}");
        assert!(
            got.contains("<Message>a &amp; &lt;b&gt;</Message>"),
            "{got}"
        );
    }

    #[test]
    fn success_without_result_has_only_metadata() {
        let got = success_body("EnableMFADevice", "ns", "rid", None);
        assert_eq!(
            got,
            "<EnableMFADeviceResponse xmlns=\"ns\">\n  <ResponseMetadata>\n    <RequestId>rid</RequestId>\n  </ResponseMetadata>\n</EnableMFADeviceResponse>\n"
        );
    }
}

/// A parsed XML element: enough to read AWS query-protocol responses (elements and text; attributes are
/// skipped, entities decoded).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Tag name.
    pub name: String,
    /// Child elements in order.
    pub children: Vec<Element>,
    /// Concatenated text content (trimmed).
    pub text: String,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// Children named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';').ok_or("unterminated entity")? + i;
        let ent = &rest[i + 1..end];
        match ent {
            "amp" => out.push('&'),
            "lt" => out.push('<'),
            "gt" => out.push('>'),
            "quot" => out.push('"'),
            "apos" => out.push('\''),
            e if e.starts_with("#x") => out.push(
                u32::from_str_radix(&e[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or("bad character reference")?,
            ),
            e if e.starts_with('#') => out.push(
                e[1..]
                    .parse::<u32>()
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or("bad character reference")?,
            ),
            _ => return Err(format!("unknown entity &{ent};")),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses a document into its root element.
///
/// # Errors
/// A message describing the first syntax problem.
pub fn parse(doc: &str) -> Result<Element, String> {
    let mut stack: Vec<Element> = Vec::new();
    let mut rest = doc;
    let mut root: Option<Element> = None;
    while let Some(lt) = rest.find('<') {
        let text = &rest[..lt];
        if let Some(top) = stack.last_mut() {
            top.text.push_str(&unescape(text)?);
        }
        let gt = rest[lt..].find('>').ok_or("unterminated tag")? + lt;
        let tag = &rest[lt + 1..gt];
        rest = &rest[gt + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let mut done = stack.pop().ok_or("unexpected closing tag")?;
            if done.name != name.trim() {
                return Err(format!("</{}> closes <{}>", name.trim(), done.name));
            }
            done.text = done.text.trim().to_owned();
            match stack.last_mut() {
                Some(parent) => parent.children.push(done),
                None => root = Some(done),
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name = tag.split_whitespace().next().ok_or("empty tag")?.to_owned();
        let el = Element {
            name,
            ..Element::default()
        };
        if self_closing {
            match stack.last_mut() {
                Some(parent) => parent.children.push(el),
                None => root = Some(el),
            }
        } else {
            stack.push(el);
        }
    }
    if !stack.is_empty() {
        return Err("unclosed element".into());
    }
    root.ok_or_else(|| "no root element".into())
}

/// The `Code` and `Message` of an `ErrorResponse` body.
pub fn parse_error(doc: &str) -> Option<(String, String)> {
    let root = parse(doc).ok()?;
    let err = root.child("Error")?;
    Some((
        err.child_text("Code")?.to_owned(),
        err.child_text("Message").unwrap_or_default().to_owned(),
    ))
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn round_trips_our_own_documents() {
        let e = ApiError::new(400, "ValidationError", "a & b < c 'q' \"d\"");
        let body = error_body(&e, "ns", "rid");
        assert_eq!(
            parse_error(&body),
            Some(("ValidationError".into(), "a & b < c 'q' \"d\"".into()))
        );
        let doc =
            parse("<?xml version=\"1.0\"?><A x=\"1\"><B>1</B><B>&#65;&#x42;</B><C/></A>").unwrap();
        assert_eq!(
            doc.children_named("B")
                .map(|b| b.text.clone())
                .collect::<Vec<_>>(),
            ["1", "AB"]
        );
        assert!(doc.child("C").is_some());
        assert!(parse("<A><B></A>").is_err());
        assert!(parse("<A>&bogus;</A>").is_err());
        assert!(parse("").is_err());
    }
}
