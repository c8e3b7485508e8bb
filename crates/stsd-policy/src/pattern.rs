//! Compiled string patterns: literals, `*`/`?` wildcards and policy variables (`${aws:username}`,
//! `${key, 'default'}`, escapes `${*}` `${?}` `${$}`), matched without building strings. Also the
//! per-segment ARN patterns used by `Resource`/`NotResource` and the `Arn*` operators.

use crate::value::Context;
use std::borrow::Cow;

#[derive(Clone, Debug)]
pub(crate) enum Tok {
    Lit(Box<str>),
    Star,
    One,
    Var {
        key: Box<str>,
        default: Option<Box<str>>,
    },
}

/// A compiled glob / literal with optional variables.
#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    toks: Box<[Tok]>,
}

/// Is `key` plausible as a condition key inside `${…}`?
fn valid_var_key(key: &str) -> bool {
    !key.is_empty()
        && key.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b':' | b'/' | b'_' | b'-' | b'.' | b'@' | b'+' | b'=')
        })
}

fn parse_var(inner: &str) -> Option<Tok> {
    let (key, default) = match inner.split_once(',') {
        Some((k, d)) => {
            let d = d.trim();
            let d = d.strip_prefix('\'')?.strip_suffix('\'')?;
            (k.trim(), Some(d.into()))
        }
        None => (inner.trim(), None),
    };
    valid_var_key(key).then(|| Tok::Var {
        key: key.into(),
        default,
    })
}

impl Pattern {
    /// Compiles `s`. `wild`: `*`/`?` are wildcards; `vars`: `${…}` are policy variables.
    pub fn new(s: &str, wild: bool, vars: bool) -> Pattern {
        let mut toks: Vec<Tok> = Vec::new();
        let mut lit = String::new();
        let flush = |lit: &mut String, toks: &mut Vec<Tok>| {
            if !lit.is_empty() {
                toks.push(Tok::Lit(std::mem::take(lit).into_boxed_str()));
            }
        };
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            if vars
                && rest.starts_with("${")
                && let Some(end) = rest.get(2..).and_then(|r| r.find('}'))
            {
                let inner = rest.get(2..2 + end).unwrap_or_default();
                let after = rest.get(3 + end..).unwrap_or_default();
                if matches!(inner, "*" | "?" | "$") {
                    lit.push_str(inner);
                    rest = after;
                    continue;
                }
                if let Some(v) = parse_var(inner) {
                    flush(&mut lit, &mut toks);
                    toks.push(v);
                    rest = after;
                    continue;
                }
            }
            if wild && c == '*' {
                flush(&mut lit, &mut toks);
                if !matches!(toks.last(), Some(Tok::Star)) {
                    toks.push(Tok::Star);
                }
            } else if wild && c == '?' {
                flush(&mut lit, &mut toks);
                toks.push(Tok::One);
            } else {
                lit.push(c);
            }
            rest = rest.get(c.len_utf8()..).unwrap_or_default();
        }
        flush(&mut lit, &mut toks);
        Pattern {
            toks: toks.into_boxed_slice(),
        }
    }

    /// Keys of the variables used (as written).
    pub fn var_keys(&self) -> impl Iterator<Item = &str> {
        self.toks.iter().filter_map(|t| match t {
            Tok::Var { key, .. } => Some(&**key),
            _ => None,
        })
    }

    /// Matches the whole of `s`. `None` or `Some(false)` when a variable has no value (and no
    /// default): either way the pattern does not match, which is what AWS does (a Resource matches
    /// nothing, `StringEquals` is false, `StringNotEquals` true).
    pub fn matches(&self, s: &str, ci: bool, ctx: &Context) -> Option<bool> {
        // Fast paths for the common shapes; no variable involved.
        match &*self.toks {
            [] => return Some(s.is_empty()),
            [Tok::Star] => return Some(true),
            [Tok::Lit(l)] => {
                return Some(if ci && !l.is_ascii() {
                    prefix_len(s, l, true) == Some(s.len())
                } else if ci {
                    s.eq_ignore_ascii_case(l)
                } else {
                    s == &**l
                });
            }
            _ => {}
        }
        Some(glob(&self.toks, s, ci, ctx))
    }
}

/// A statement's `Action`/`NotAction` list, lower-cased at compile time: exact names compared
/// byte-wise with the lower-cased request action, globs matched on it.
#[derive(Clone, Debug, Default)]
pub(crate) struct ActionSet {
    any: bool,
    exact: Box<[Box<str>]>,
    globs: Box<[Pattern]>,
}

impl ActionSet {
    pub fn new<'a>(actions: impl Iterator<Item = &'a str>) -> ActionSet {
        let (mut any, mut exact, mut globs) = (false, Vec::new(), Vec::new());
        for a in actions {
            let a = a.to_lowercase();
            if a == "*" {
                any = true;
            } else if a.contains(['*', '?']) {
                globs.push(Pattern::new(&a, true, false));
            } else {
                exact.push(a.into_boxed_str());
            }
        }
        ActionSet {
            any,
            exact: exact.into_boxed_slice(),
            globs: globs.into_boxed_slice(),
        }
    }

    /// `action` must be lower-cased.
    pub fn matches(&self, action: &str, ctx: &Context) -> bool {
        self.any
            || self.exact.iter().any(|e| **e == *action)
            || self
                .globs
                .iter()
                .any(|g| g.matches(action, false, ctx) == Some(true))
    }
}

/// The text of a variable: the key's single value, else its default.
fn resolve<'c>(key: &str, default: Option<&'c str>, ctx: &'c Context) -> Option<Cow<'c, str>> {
    match ctx.present(key) {
        Some([v]) => Some(v.as_text()),
        _ => default.map(Cow::Borrowed),
    }
}

/// Byte length of the prefix of `s` equal to `lit` (case-insensitively if `ci`).
fn prefix_len(s: &str, lit: &str, ci: bool) -> Option<usize> {
    if !ci || lit.is_ascii() {
        let b = s.as_bytes().get(..lit.len())?;
        let ok = if ci {
            b.eq_ignore_ascii_case(lit.as_bytes())
        } else {
            b == lit.as_bytes()
        };
        return ok.then_some(lit.len());
    }
    let mut it = s.char_indices();
    let mut consumed = 0;
    for lc in lit.chars() {
        let (i, c) = it.next()?;
        if !c.to_lowercase().eq(lc.to_lowercase()) {
            return None;
        }
        consumed = i + c.len_utf8();
    }
    Some(consumed)
}

/// Glob match over tokens: the classic greedy algorithm with one backtrack point (the last `*`),
/// linear in practice and never recursive.
fn glob(toks: &[Tok], s: &str, ci: bool, ctx: &Context) -> bool {
    let (mut ti, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if let Some(t) = toks.get(ti) {
            let rest = s.get(si..).unwrap_or_default();
            let step = match t {
                Tok::Star => {
                    star = Some((ti + 1, si));
                    ti += 1;
                    continue;
                }
                Tok::One => rest.chars().next().map(char::len_utf8),
                Tok::Lit(l) => prefix_len(rest, l, ci),
                Tok::Var { key, default } => {
                    resolve(key, default.as_deref(), ctx).and_then(|v| prefix_len(rest, &v, ci))
                }
            };
            if let Some(n) = step {
                si += n;
                ti += 1;
                continue;
            }
        } else if si == s.len() {
            return true;
        }
        match star {
            Some((sti, ssi)) => match s.get(ssi..).and_then(|r| r.chars().next()) {
                Some(c) => {
                    let n = ssi + c.len_utf8();
                    star = Some((sti, n));
                    ti = sti;
                    si = n;
                }
                None => return false,
            },
            None => return false,
        }
    }
}

/// Splits an ARN into its six parts (the last one keeps any further colons).
pub(crate) fn arn_parts(s: &str) -> Option<[&str; 6]> {
    // A byte loop: `splitn` costs more than the rest of a typical evaluation.
    let mut cuts = [0usize; 5];
    let mut n = 0;
    for (i, &c) in s.as_bytes().iter().enumerate() {
        if c == b':' {
            if let Some(slot) = cuts.get_mut(n) {
                *slot = i;
            }
            n += 1;
            if n == 5 {
                break;
            }
        }
    }
    if n < 5 {
        return None;
    }
    let [a, b, c, d, e] = cuts;
    Some([
        s.get(..a)?,
        s.get(a + 1..b)?,
        s.get(b + 1..c)?,
        s.get(c + 1..d)?,
        s.get(d + 1..e)?,
        s.get(e + 1..)?,
    ])
}

/// Splits at `:` except inside `${…}` (when `vars`), into at most `max` parts.
fn split_outside_vars(s: &str, max: usize, vars: bool) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut in_var) = (0, false);
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if out.len() + 1 >= max {
            break;
        }
        if vars && c == b'$' && b.get(i + 1) == Some(&b'{') {
            in_var = true;
        } else if in_var && c == b'}' {
            in_var = false;
        } else if !in_var && c == b':' {
            out.push(s.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    out.push(s.get(start..).unwrap_or_default());
    out
}

/// [`arn_parts`] for a pattern whose variables (`${aws:username}`) may hold colons.
fn pattern_parts(s: &str) -> Option<[&str; 6]> {
    let v = split_outside_vars(s, 6, true);
    let mut it = v.into_iter();
    Some([
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    ])
}

/// An ARN pattern matched segment by segment.
#[derive(Clone, Debug)]
pub(crate) enum ArnPattern {
    /// `*`: matches anything.
    Any,
    /// Six segments; variables only in the last one (`resource`) for `Resource`, anywhere for `Arn*`.
    Segs(Box<[Pattern; 6]>),
    /// Fewer than six segments: matches ARNs with as many segments, segment by segment.
    Short(Box<[Pattern]>),
}

impl ArnPattern {
    /// `vars_everywhere`: variables in every segment (Arn* condition values) or only in the
    /// resource segment (`Resource`). `vars`: policy version allows variables at all.
    pub fn new(s: &str, vars: bool, vars_everywhere: bool) -> ArnPattern {
        if s == "*" {
            return ArnPattern::Any;
        }
        let split = if vars && vars_everywhere {
            pattern_parts(s)
        } else {
            arn_parts(s)
        };
        match split {
            Some(p) => {
                let v = vars && vars_everywhere;
                ArnPattern::Segs(Box::new([
                    Pattern::new(p[0], true, v),
                    Pattern::new(p[1], true, v),
                    Pattern::new(p[2], true, v),
                    Pattern::new(p[3], true, v),
                    Pattern::new(p[4], true, v),
                    Pattern::new(p[5], true, vars),
                ]))
            }
            None => ArnPattern::Short(
                split_outside_vars(s, usize::MAX, vars && vars_everywhere)
                    .into_iter()
                    .map(|p| Pattern::new(p, true, vars && vars_everywhere))
                    .collect(),
            ),
        }
    }

    pub fn var_keys(&self) -> Vec<&str> {
        match self {
            ArnPattern::Any => Vec::new(),
            ArnPattern::Segs(p) => p.iter().flat_map(|p| p.var_keys()).collect(),
            ArnPattern::Short(p) => p.iter().flat_map(|p| p.var_keys()).collect(),
        }
    }

    /// `None` (or `false`) when a variable has no value.
    pub fn matches(&self, arn: &str, ctx: &Context) -> Option<bool> {
        self.matches_split(arn, arn_parts(arn).as_ref(), ctx)
    }

    /// [`ArnPattern::matches`] with the ARN already split by [`arn_parts`].
    pub fn matches_split(
        &self,
        arn: &str,
        parts: Option<&[&str; 6]>,
        ctx: &Context,
    ) -> Option<bool> {
        match self {
            ArnPattern::Any => Some(true),
            ArnPattern::Short(pats) => {
                if arn.splitn(6, ':').count() != pats.len() {
                    return Some(false);
                }
                for (p, s) in pats.iter().zip(arn.split(':')) {
                    if !p.matches(s, false, ctx)? {
                        return Some(false);
                    }
                }
                Some(true)
            }
            ArnPattern::Segs(pats) => {
                let Some(parts) = parts else {
                    return Some(false);
                };
                for (p, s) in pats.iter().zip(parts) {
                    if !p.matches(s, false, ctx)? {
                        return Some(false);
                    }
                }
                Some(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn m(p: &str, s: &str) -> bool {
        Pattern::new(p, true, true).matches(s, false, &Context::new()) == Some(true)
    }

    #[test]
    fn globs() {
        assert!(m("*", ""));
        assert!(m("*", "abc"));
        assert!(m("a*c", "abbbc"));
        assert!(m("a*c", "ac"));
        assert!(!m("a*c", "acb"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("a?c", "aéc"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b*", "xxbxxaxx"));
        assert!(m("a**b", "ab"));
        assert!(m("${*}", "*"));
        assert!(!m("${*}", "x"));
        assert!(m("a${?}", "a?"));
        assert!(m("${$}{x}", "${x}"));
        assert!(
            !Pattern::new("a*", false, false)
                .matches("ab", false, &Context::new())
                .unwrap_or(true)
        );
        assert!(
            Pattern::new("IAM:Get*", true, false)
                .matches("iam:getuser", true, &Context::new())
                .unwrap_or(false)
        );
        assert!(
            Pattern::new("ÉTÉ", false, false)
                .matches("été", true, &Context::new())
                .unwrap_or(false)
        );
    }

    #[test]
    fn variables() {
        let mut ctx = Context::new();
        ctx.set("aws:username", Value::Str("alice".into()));
        let p = Pattern::new("user/${aws:username}", true, true);
        assert_eq!(p.matches("user/alice", false, &ctx), Some(true));
        assert_eq!(p.matches("user/bob", false, &ctx), Some(false));
        assert_ne!(p.matches("user/alice", false, &Context::new()), Some(true));
        let d = Pattern::new("team/${aws:PrincipalTag/team, 'company-wide'}", true, true);
        assert_eq!(
            d.matches("team/company-wide", false, &Context::new()),
            Some(true)
        );
        // Variable text is literal, never a wildcard.
        ctx.set("aws:username", Value::Str("*".into()));
        assert_eq!(p.matches("user/bob", false, &ctx), Some(false));
        // Without variables enabled the text is literal.
        let lit = Pattern::new("user/${aws:username}", true, false);
        assert_eq!(lit.matches("user/${aws:username}", false, &ctx), Some(true));
        // Malformed variable: literal.
        assert!(m("${not valid}", "${not valid}"));
        assert!(m("${open", "${open"));
    }

    #[test]
    fn arns() {
        let ctx = Context::new();
        let p = ArnPattern::new("arn:aws:iam::*:user/*", true, false);
        assert_eq!(
            p.matches("arn:aws:iam::123456789012:user/a/b", &ctx),
            Some(true)
        );
        assert_eq!(
            p.matches("arn:aws:iam::123456789012:role/a", &ctx),
            Some(false)
        );
        assert_eq!(p.matches("*", &ctx), Some(false));
        // `*` does not cross a segment's colon.
        let q = ArnPattern::new("arn:aws:*::123456789012:x", true, false);
        assert_eq!(
            q.matches("arn:aws:iam:us-east-1:123456789012:x", &ctx),
            Some(false)
        );
        assert_eq!(q.matches("arn:aws:iam::123456789012:x", &ctx), Some(true));
        // … but may cross `/` and `:` in the resource part.
        let r = ArnPattern::new("arn:aws:s3:::b/*", true, false);
        assert_eq!(r.matches("arn:aws:s3:::b/x/y:z", &ctx), Some(true));
        // Variables keep their colons in any segment of an Arn* condition value.
        let mut c = Context::new();
        c.set("aws:PrincipalAccount", Value::Str("123".into()));
        let v = ArnPattern::new("arn:aws:iam::${aws:PrincipalAccount}:role/*", true, true);
        assert_eq!(v.matches("arn:aws:iam::123:role/x", &c), Some(true));
        assert_eq!(v.matches("arn:aws:iam::124:role/x", &c), Some(false));
        assert!(matches!(
            ArnPattern::new("arn:*", true, false),
            ArnPattern::Short(_)
        ));
        assert_eq!(
            ArnPattern::new("arn:*", true, false).matches("arn:x", &ctx),
            Some(true)
        );
        assert_eq!(
            ArnPattern::new("arn:*", true, false).matches("arn:aws:iam::1:root", &ctx),
            Some(false)
        );
    }
}
