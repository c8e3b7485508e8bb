//! awsQuery parameters: `application/x-www-form-urlencoded` pairs from the query string and the body.

/// Decoded request parameters, in wire order. Lookups return the first occurrence of a name.
#[derive(Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl std::fmt::Debug for Params {
    // Parameters can carry secrets (TOTP codes, tokens in presigned URLs): print names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.pairs.iter().map(|(k, _)| k))
            .finish()
    }
}

impl Params {
    /// Decodes `a=b&c=d` form data (`+` is a space, `%XX` escapes are decoded, invalid UTF-8 is replaced).
    pub fn parse(input: &[u8]) -> Self {
        let mut p = Params::default();
        p.extend_from(input);
        p
    }

    /// Parameters from already decoded pairs.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Params { pairs }
    }

    /// Appends the pairs decoded from `input`.
    ///
    /// A pair without `%` or `+` in valid UTF-8 decodes to itself and is copied as it is (SDKs send
    /// `Action=GetSessionToken&Version=2011-06-15` that way); any other pair goes through
    /// `form_urlencoded`, which splits on `&` too, so the result is the same as decoding `input` whole.
    pub fn extend_from(&mut self, input: &[u8]) {
        for pair in input.split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let plain = !pair.iter().any(|&b| b == b'%' || b == b'+');
            match std::str::from_utf8(pair) {
                Ok(text) if plain => {
                    let (k, v) = text.split_once('=').unwrap_or((text, ""));
                    if !k.is_empty() {
                        self.pairs.push((k.to_owned(), v.to_owned()));
                    }
                }
                _ => self.pairs.extend(
                    form_urlencoded::parse(pair)
                        .filter(|(k, _)| !k.is_empty())
                        .map(|(k, v)| (k.into_owned(), v.into_owned())),
                ),
            }
        }
    }

    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All pairs in wire order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent() {
        let p = Params::parse(
            b"Action=GetSessionToken&SerialNumber=arn%3Aaws%3Aiam%3A%3A1%3Amfa%2Fa+b&X=",
        );
        assert_eq!(p.get("Action"), Some("GetSessionToken"));
        assert_eq!(p.get("SerialNumber"), Some("arn:aws:iam::1:mfa/a b"));
        assert_eq!(p.get("X"), Some(""));
        assert_eq!(p.get("Missing"), None);
    }

    #[test]
    fn first_occurrence_wins_and_debug_hides_values() {
        let p = Params::parse(b"TokenCode=123456&TokenCode=654321");
        assert_eq!(p.get("TokenCode"), Some("123456"));
        let dbg = format!("{p:?}");
        assert!(!dbg.contains("123456"), "{dbg}");
        assert!(dbg.contains("TokenCode"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let p = Params::parse(&input);
            for (k, _) in p.pairs() { proptest::prop_assert!(!k.is_empty()); }
        }

        #[test]
        fn decodes_as_form_urlencoded_does(
            input in proptest::collection::vec(
                proptest::sample::select(b"ab=&%+2F0\xc3\xa9\xff ".to_vec()),
                0..64,
            )
        ) {
            let got: Vec<(String, String)> = Params::parse(&input).pairs().to_vec();
            let want: Vec<(String, String)> = form_urlencoded::parse(&input)
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            proptest::prop_assert_eq!(got, want);
        }

        #[test]
        fn round_trips(pairs in proptest::collection::vec(("[A-Za-z][A-Za-z0-9.]{0,12}", "\\PC{0,24}"), 0..8)) {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &pairs { ser.append_pair(k, v); }
            let encoded = ser.finish();
            let p = Params::parse(encoded.as_bytes());
            let got: Vec<(String, String)> = p.pairs().to_vec();
            proptest::prop_assert_eq!(got, pairs);
        }
    }
}
