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
                    // A byte scan: `split_once`'s memchr search costs more at these lengths.
                    let (k, v) = match text.bytes().position(|b| b == b'=') {
                        Some(i) => (
                            text.get(..i).unwrap_or(text),
                            text.get(i + 1..).unwrap_or(""),
                        ),
                        None => (text, ""),
                    };
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

    /// The values of the awsQuery list `name` (`name.member.1`, `name.member.2`, ...), ordered by index.
    ///
    /// Indices need not be contiguous; when an index repeats, its first occurrence wins. Keys whose index is
    /// not a positive decimal number are ignored. `None` when the request has no member of the list and no
    /// bare `name` (SDKs send `name=` for an empty list, which gives `Some(vec![])`).
    pub fn list(&self, name: &str) -> Option<Vec<&str>> {
        let mut bare = false;
        let mut found: Vec<(u32, &str)> = Vec::new();
        for (k, v) in &self.pairs {
            let Some(rest) = k.strip_prefix(name) else {
                continue;
            };
            if rest.is_empty() {
                bare = true;
            } else if let Some(n) = rest.strip_prefix(".member.").and_then(list_index) {
                found.push((n, v.as_str()));
            }
        }
        if found.is_empty() && !bare {
            return None;
        }
        // Stable: among equal indices the first occurrence stays first, and dedup keeps it.
        found.sort_by_key(|(n, _)| *n);
        found.dedup_by_key(|(n, _)| *n);
        Some(found.into_iter().map(|(_, v)| v).collect())
    }

    /// The members of the awsQuery list of structures `name` (`name.member.N.Field=...`), ascending by N,
    /// each as its index and the [`Params`] of its fields with the `name.member.N.` prefix removed (so a
    /// nested list reads as `sub.list("Values")`). One pass over the pairs, however many members there are.
    /// `None` when the request has no such parameter and no bare `name` (as for [`Params::list`]).
    pub fn list_structs(&self, name: &str) -> Option<Vec<(u32, Params)>> {
        let mut bare = false;
        let mut found: std::collections::BTreeMap<u32, Params> = std::collections::BTreeMap::new();
        for (k, v) in &self.pairs {
            let Some(rest) = k.strip_prefix(name) else {
                continue;
            };
            if rest.is_empty() {
                bare = true;
            } else if let Some((n, field)) = rest
                .strip_prefix(".member.")
                .and_then(|r| r.split_once('.'))
                .filter(|(_, field)| !field.is_empty())
                .and_then(|(n, field)| Some((list_index(n)?, field)))
            {
                found
                    .entry(n)
                    .or_default()
                    .pairs
                    .push((field.to_owned(), v.clone()));
            }
        }
        if found.is_empty() && !bare {
            return None;
        }
        Some(found.into_iter().collect())
    }

    /// The first name that occurs more than once, if any. A request with a repeated name is ambiguous
    /// (the signature covers the sorted pairs, so reordering the duplicates would change which value a
    /// first-occurrence reader acts on without breaking it): the server refuses such requests.
    /// List members (`Tags.member.1.Key`, `Tags.member.2.Key`) are distinct names.
    pub fn first_duplicate(&self) -> Option<&str> {
        let mut seen = std::collections::HashSet::with_capacity(self.pairs.len());
        self.pairs
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| !seen.insert(*k))
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

/// A list index: a positive decimal number without sign.
fn list_index(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|n| *n >= 1)
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

    #[test]
    fn lists_by_member_index() {
        let p = Params::parse(
            b"A.member.2=b&A.member.1=a&A.member.1=dup&A.member.0=zero&A.member.x=bad&AB.member.1=other&A.member.10=j",
        );
        assert_eq!(p.list("A"), Some(vec!["a", "b", "j"]));
        assert_eq!(p.list("Missing"), None);
        assert_eq!(Params::parse(b"A=").list("A"), Some(vec![]));
        let p = Params::parse(
            b"C.member.2.K=k2&C.member.1.K=k1&C.member.1.V.member.1=v&C.member.3=flat&C.member.4.=empty",
        );
        let c = p.list_structs("C").unwrap();
        assert_eq!(c.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(c[0].1.get("K"), Some("k1"));
        assert_eq!(c[0].1.list("V"), Some(vec!["v"]));
        assert_eq!(c[1].1.pairs(), [("K".to_owned(), "k2".to_owned())]);
        assert!(p.list_structs("D").is_none());
        assert_eq!(
            Params::parse(b"D=").list_structs("D").map(|l| l.len()),
            Some(0)
        );
    }

    #[test]
    fn duplicates_are_found_list_members_are_not_duplicates() {
        let dup = |q: &str| {
            Params::parse(q.as_bytes())
                .first_duplicate()
                .map(str::to_owned)
        };
        assert_eq!(dup("Action=A&Version=V&DurationSeconds=900"), None);
        assert_eq!(
            dup("Action=A&DurationSeconds=900&Version=V&DurationSeconds=3600"),
            Some("DurationSeconds".to_owned())
        );
        // Encoded and plain spellings of one name are one name.
        assert_eq!(
            dup("Token%43ode=1&TokenCode=2"),
            Some("TokenCode".to_owned())
        );
        assert_eq!(dup("A=&A="), Some("A".to_owned()));
        assert_eq!(
            dup("Tags.member.1.Key=a&Tags.member.2.Key=b&Tags.member.1.Value=c"),
            None
        );
        // Across the query string and the form body.
        let mut p = Params::parse(b"Action=GetSessionToken&DurationSeconds=900");
        p.extend_from(b"Version=2011-06-15&DurationSeconds=3600");
        assert_eq!(p.first_duplicate(), Some("DurationSeconds"));
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
