//! Finding and parsing the authentication data of a request (header or presigned query), in Coral's check
//! order: element syntax → missing elements/date → date format → `host` signed → algorithm → credential
//! shape → terminator → scope date.

use std::borrow::Cow;

use http::HeaderName;

use crate::encoding::{form_decode, key_is, raw_pairs, split_ascii};
use crate::key::{ALGORITHM, Signature, TERMINATOR};
use crate::{
    Auth, AuthKind, Request, SigError, X_AMZ_ALGORITHM, X_AMZ_CREDENTIAL, X_AMZ_DATE,
    X_AMZ_SECURITY_TOKEN, X_AMZ_SIGNATURE, X_AMZ_SIGNED_HEADERS, amz_date::parse_amz_date,
};

/// Finds header auth or presigned query auth and parses it. See [`crate::parse`].
pub(crate) fn parse(req: &Request<'_>) -> Result<Auth, SigError> {
    let authorization = req.headers.get(http::header::AUTHORIZATION);
    let presigned = raw_pairs(req.query).any(|(k, _)| key_is(k, X_AMZ_ALGORITHM));
    match (authorization, presigned) {
        (Some(_), true) => Err(SigError::BothAuthMethods),
        (Some(value), false) => parse_header(req, value.as_bytes()),
        (None, true) => parse_presigned(req),
        (None, false) => Err(SigError::MissingAuthentication),
    }
}

const X_AMZ_DATE_HEADER: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_SECURITY_TOKEN_HEADER: HeaderName = HeaderName::from_static("x-amz-security-token");

/// True when `s` has an ASCII whitespace byte (`\t`, `\n`, `\x0C`, `\r`, space), looked for eight
/// bytes at a time: whitespace is below 0x21, and `(w - 0x2121…) & !w & 0x8080…` is non-zero exactly
/// when some byte of `w` is below 0x21 (only such words are checked byte by byte).
fn has_ascii_whitespace(s: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut words = s.chunks_exact(8);
    for word in &mut words {
        if let Some(w) = word.first_chunk::<8>() {
            let w = u64::from_le_bytes(*w);
            if w.wrapping_sub(LO * 0x21) & !w & HI != 0 && word.iter().any(u8::is_ascii_whitespace)
            {
                return true;
            }
        }
    }
    words.remainder().iter().any(u8::is_ascii_whitespace)
}

/// Removes ASCII whitespace; allocates only for whitespace inside the element (rare).
fn without_whitespace(s: &str) -> Cow<'_, str> {
    let s = s.trim_ascii();
    if has_ascii_whitespace(s.as_bytes()) {
        Cow::Owned(s.split_ascii_whitespace().collect())
    } else {
        Cow::Borrowed(s)
    }
}

fn lossy(raw: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(raw),
    }
}

fn first_header<'h>(headers: &'h http::HeaderMap, name: &HeaderName) -> Option<&'h [u8]> {
    headers
        .get(name)
        .map(http::HeaderValue::as_bytes)
        .filter(|v| !v.is_empty())
}

fn parse_header(req: &Request<'_>, raw: &[u8]) -> Result<Auth, SigError> {
    let header = lossy(raw);
    let trimmed = header.trim_ascii();
    if !trimmed.starts_with("AWS4-") {
        return Err(SigError::NotAws4Authorization);
    }
    // Whitespace is ASCII, so byte positions of it are character boundaries.
    let (algorithm, rest) = match trimmed.bytes().position(|b| b.is_ascii_whitespace()) {
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (trimmed, ""),
    };

    // Coral: everything after the algorithm, whitespace removed, split on ','; each element key=value.
    let mut credential: Option<Cow<'_, str>> = None;
    let mut signed_headers: Option<Cow<'_, str>> = None;
    let mut signature: Option<Cow<'_, str>> = None;
    for element in split_ascii(rest, b',') {
        let element = without_whitespace(element);
        if element.is_empty() {
            continue;
        }
        let Some(eq) = element.bytes().position(|b| b == b'=') else {
            return Err(SigError::MalformedAuthPair {
                pair: element.into_owned(),
                authorization: (*header).to_owned(),
            });
        };
        let slot = match &element[..eq] {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        // later duplicates win, as in Coral's key/value map
        *slot = Some(match element {
            Cow::Borrowed(e) => Cow::Borrowed(&e[eq + 1..]),
            Cow::Owned(e) => Cow::Owned(e[eq + 1..].to_owned()),
        });
    }
    let credential = credential.filter(|v| !v.is_empty());
    let signed_headers = signed_headers.filter(|v| !v.is_empty());
    let signature = signature.filter(|v| !v.is_empty());
    let date = first_header(req.headers, &X_AMZ_DATE_HEADER)
        .or_else(|| first_header(req.headers, &http::header::DATE));

    let (Some(credential), Some(signed_headers), Some(signature), Some(date)) =
        (&credential, &signed_headers, &signature, date)
    else {
        return Err(SigError::IncompleteAuthorization {
            missing_credential: credential.is_none(),
            missing_signature: signature.is_none(),
            missing_signed_headers: signed_headers.is_none(),
            missing_date: date.is_none(),
            authorization: header.into_owned(),
        });
    };
    let date = lossy(date);
    let security_token = req
        .headers
        .get(&X_AMZ_SECURITY_TOKEN_HEADER)
        .map(|v| lossy(v.as_bytes()).into_owned());
    build(
        AuthKind::Header,
        algorithm,
        credential,
        signed_headers,
        signature,
        &date,
        security_token,
    )
}

fn parse_presigned(req: &Request<'_>) -> Result<Auth, SigError> {
    const NAMES: [&str; 6] = [
        X_AMZ_ALGORITHM,
        X_AMZ_CREDENTIAL,
        X_AMZ_DATE,
        X_AMZ_SIGNED_HEADERS,
        X_AMZ_SIGNATURE,
        X_AMZ_SECURITY_TOKEN,
    ];
    let mut found: [Option<&str>; 6] = [None; 6];
    for (k, v) in raw_pairs(req.query) {
        if let Some(i) = NAMES.iter().position(|n| key_is(k, n)) {
            // the first occurrence is used; every occurrence is in the signed canonical query anyway
            found[i].get_or_insert(v);
        }
    }
    let [
        algorithm,
        credential,
        date,
        signed_headers,
        signature,
        token,
    ] = found.map(|v| v.map(form_decode));
    let algorithm = algorithm.unwrap_or_default();
    let credential = required(credential, X_AMZ_CREDENTIAL)?;
    let date = required(date, X_AMZ_DATE)?;
    let signed_headers = required(signed_headers, X_AMZ_SIGNED_HEADERS)?;
    let signature = required(signature, X_AMZ_SIGNATURE)?;
    build(
        AuthKind::Presigned,
        &algorithm,
        &credential,
        &signed_headers,
        &signature,
        &date,
        token.map(Cow::into_owned),
    )
}

fn required<'a>(v: Option<Cow<'a, str>>, param: &'static str) -> Result<Cow<'a, str>, SigError> {
    v.filter(|v| !v.is_empty())
        .ok_or(SigError::MissingQueryParam { param })
}

fn build(
    kind: AuthKind,
    algorithm: &str,
    credential: &str,
    signed_headers: &str,
    signature: &str,
    date: &str,
    security_token: Option<String>,
) -> Result<Auth, SigError> {
    let Some(timestamp) = parse_amz_date(date) else {
        return Err(SigError::InvalidDate {
            value: date.to_owned(),
        });
    };
    let signed_headers = signed_headers.to_ascii_lowercase();
    if !split_ascii(&signed_headers, b';').any(|h| h == "host") {
        return Err(SigError::HostNotSigned);
    }
    if algorithm != ALGORITHM {
        return Err(SigError::UnsupportedAlgorithm {
            algorithm: algorithm.to_owned(),
        });
    }
    let scope = credential.trim_end_matches('/');
    // Where each of the first four parts ends; the fifth is the terminator and nothing may follow it.
    let mut ends = [0usize; 4];
    let mut parts = split_ascii(scope, b'/');
    let mut at = 0;
    for end in &mut ends {
        match parts.next() {
            Some(p) => {
                at += p.len();
                *end = at;
                at += 1;
            }
            None => {
                return Err(SigError::MalformedCredential {
                    credential: credential.to_owned(),
                });
            }
        }
    }
    let (Some(terminator), None) = (parts.next(), parts.next()) else {
        return Err(SigError::MalformedCredential {
            credential: credential.to_owned(),
        });
    };
    let scope_date = scope.get(ends[0] + 1..ends[1]).unwrap_or("");
    if terminator != TERMINATOR {
        return Err(SigError::InvalidTerminator {
            terminator: terminator.to_owned(),
        });
    }
    // `date` parsed, so it is 16 ASCII characters
    if date.get(..8) != Some(scope_date) {
        return Err(SigError::ScopeDateMismatch {
            scope_date: scope_date.to_owned(),
            amz_date: date.to_owned(),
        });
    }
    Ok(Auth {
        kind,
        credential: scope.to_owned(),
        ends,
        amz_date: date.to_owned(),
        timestamp,
        signed_headers,
        security_token,
        signature: Signature::from_hex(signature),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_found_at_every_position_and_nothing_else_is() {
        for len in 0..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    assert_eq!(
                        has_ascii_whitespace(&s),
                        b.is_ascii_whitespace(),
                        "byte {b:#04x} at {at} of {len}"
                    );
                }
            }
        }
        // Bytes below 0x21 that are not whitespace, next to each other in one word.
        assert!(!has_ascii_whitespace(b"\x00\x01\x0b\x1f\x21abc"));
        assert!(has_ascii_whitespace(b"\x00\x01\x0b\x1f\x21ab "));
    }
}
