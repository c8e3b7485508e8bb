//! AWS's JSON rendering of awsQuery responses, selected by `Accept: application/json` (what
//! aws-iam-authenticator asks for): the XML document's nesting, element for element —
//! `{"GetCallerIdentityResponse":{"GetCallerIdentityResult":{"Arn":…},"ResponseMetadata":{"RequestId":…}}}`,
//! and `{"ErrorResponse":{"Error":{"Code":…,"Message":…,"Type":…},"RequestId":…}}` for errors. Leaves are
//! strings; repeated siblings become arrays.

use crate::xml::{self, Element};

/// Renders an awsQuery XML document (as stsd writes it) as JSON. `None` when it does not parse.
pub fn from_xml(doc: &str) -> Option<String> {
    let root = xml::parse(doc).ok()?;
    let mut out = String::with_capacity(doc.len());
    out.push('{');
    write_key(&mut out, &root.name);
    write_value(&mut out, &root);
    out.push('}');
    Some(out)
}

fn write_value(out: &mut String, e: &Element) {
    if e.children.is_empty() {
        write_str(out, &e.text);
        return;
    }
    out.push('{');
    let mut seen: Vec<&str> = Vec::new();
    for c in &e.children {
        if seen.contains(&c.name.as_str()) {
            continue;
        }
        seen.push(&c.name);
        if seen.len() > 1 {
            out.push(',');
        }
        write_key(out, &c.name);
        let same: Vec<&Element> = e.children_named(&c.name).collect();
        if same.len() == 1 {
            write_value(out, c);
        } else {
            out.push('[');
            for (i, s) in same.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, s);
            }
            out.push(']');
        }
    }
    out.push('}');
}

fn write_key(out: &mut String, k: &str) {
    write_str(out, k);
    out.push(':');
}

/// Appends `s` as a JSON string.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether an `Accept` header asks for JSON (`application/json` listed before or without XML).
pub fn wants_json(accept: &str) -> bool {
    for part in accept.split(',') {
        let media = part.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/json") {
            return true;
        }
        if media.eq_ignore_ascii_case("text/xml") || media.eq_ignore_ascii_case("application/xml") {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_identity_and_errors_nest_like_the_xml() {
        let body = crate::sts::get_caller_identity_body(
            "arn:aws:iam::123456789012:user/a\"b",
            "AIDAEXAMPLE",
            "123456789012",
            "rid",
        );
        assert_eq!(
            from_xml(&body).unwrap(),
            "{\"GetCallerIdentityResponse\":{\"GetCallerIdentityResult\":{\"Arn\":\"arn:aws:iam::123456789012:user/a\\\"b\",\"UserId\":\"AIDAEXAMPLE\",\"Account\":\"123456789012\"},\"ResponseMetadata\":{\"RequestId\":\"rid\"}}}"
        );
        let err = crate::xml::error_body(
            &crate::ApiError::expired_token(),
            crate::request::STS_NS,
            "rid",
        );
        assert_eq!(
            from_xml(&err).unwrap(),
            "{\"ErrorResponse\":{\"Error\":{\"Type\":\"Sender\",\"Code\":\"ExpiredToken\",\"Message\":\"The security token included in the request is expired\"},\"RequestId\":\"rid\"}}"
        );
        assert!(wants_json("application/json"));
        assert!(wants_json("application/json, text/plain"));
        assert!(!wants_json("text/xml, application/json"));
        assert!(!wants_json("*/*"));
    }
}
