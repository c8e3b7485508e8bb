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
            buf: String::with_capacity(1024),
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
        self.indent();
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push_str(" xmlns=\"");
        escape_into(&mut self.buf, namespace);
        self.buf.push_str("\">\n");
        self.depth += 1;
    }

    /// Opens an element.
    pub fn open(&mut self, name: &str) {
        self.indent();
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push_str(">\n");
        self.depth += 1;
    }

    /// Closes an element opened with [`Self::open`] or [`Self::root`].
    pub fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push_str(">\n");
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

/// Escapes `&`, `<`, `>`, `"` and `'` (other characters are written as they are, newlines literally).
pub fn escape_into(out: &mut String, text: &str) {
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
    let response = format!("{action}Response");
    w.root(&response, namespace);
    if let Some(result) = result {
        let name = format!("{action}Result");
        w.open(&name);
        result(&mut w);
        w.close(&name);
    }
    w.element("ResponseMetadata", |w| w.leaf("RequestId", request_id));
    w.close(&response);
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
