//! Request-context values, the [`Context`] map, and the value parsers shared by policy compilation
//! and evaluation (W3C dates, CIDRs, booleans).

use std::borrow::Cow;
use std::net::IpAddr;

/// One value of a request-context key.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string (`aws:username`, `aws:UserAgent`, …). Other operator families parse it when needed
    /// (`"3600"` for Numeric, `"2024-01-01T00:00:00Z"` for Date, `"true"` for Bool, an address for IP,
    /// base64 for Binary).
    Str(String),
    /// A boolean (`aws:MultiFactorAuthPresent`, `aws:SecureTransport`).
    Bool(bool),
    /// A number (`aws:MultiFactorAuthAge`, `aws:EpochTime`).
    Num(f64),
    /// A time as Unix seconds (`aws:CurrentTime`, `aws:TokenIssueTime`).
    Date(i64),
    /// An IP address (`aws:SourceIp`).
    Ip(IpAddr),
    /// Raw bytes (BinaryEquals compares them with the policy's base64-decoded value).
    Binary(Vec<u8>),
}

impl Value {
    /// The value as text for String/ARN operators and policy variables; borrowed for `Str`.
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            Value::Str(s) => Cow::Borrowed(s),
            Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Value::Num(n) => Cow::Owned(format_num(*n)),
            Value::Date(d) => Cow::Owned(format_date(*d)),
            Value::Ip(ip) => Cow::Owned(ip.to_string()),
            Value::Binary(b) => {
                use base64::Engine as _;
                Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }

    pub(crate) fn as_num(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Str(s) => parse_num(s),
            Value::Date(d) => Some(*d as f64),
            _ => None,
        }
    }

    pub(crate) fn as_date(&self) -> Option<(i64, u32)> {
        match self {
            Value::Date(d) => Some((*d, 0)),
            Value::Str(s) => parse_date(s),
            Value::Num(n) if n.is_finite() && n.fract() == 0.0 => Some((*n as i64, 0)),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Str(s) => parse_bool(s),
            _ => None,
        }
    }

    pub(crate) fn as_ip(&self) -> Option<IpAddr> {
        match self {
            Value::Ip(ip) => Some(*ip),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

fn format_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn format_date(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Request context: condition keys (case-insensitive) to one or several values.
///
/// The caller builds it with AWS's presence rules (reference §5.1): e.g. leave
/// `aws:MultiFactorAuthPresent` **absent** for long-term keys, set it to `false` for
/// GetSessionToken credentials without MFA; `aws:username` only for IAM users.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Keys as they were set (looked up without regard to case), values. A handful of keys: a linear
    /// scan beats hashing and needs no allocation for lookups with any case. The authorizer builds a
    /// context of a dozen keys for every request, so a key given as a `&'static str` is kept without a
    /// copy and a single value without a vector of its own.
    entries: Vec<(Cow<'static, str>, Values)>,
}

/// The values of one key.
#[derive(Clone, Debug)]
enum Values {
    One([Value; 1]),
    Many(Vec<Value>),
}

impl Values {
    fn as_slice(&self) -> &[Value] {
        match self {
            Values::One(v) => v,
            Values::Many(v) => v,
        }
    }
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a single-valued key (replacing any previous value).
    pub fn set(&mut self, key: &str, v: Value) {
        self.put(key, || Cow::Owned(key.to_owned()), Values::One([v]));
    }

    /// [`Self::set`] for a key known when compiling (the global keys `aws:…`): kept without a copy.
    pub fn set_static(&mut self, key: &'static str, v: Value) {
        self.put(key, || Cow::Borrowed(key), Values::One([v]));
    }

    /// Sets a multivalued key (for `ForAnyValue:`/`ForAllValues:`); an empty list counts as absent.
    pub fn set_list(&mut self, key: &str, v: Vec<Value>) {
        self.put(key, || Cow::Owned(key.to_owned()), Values::Many(v));
    }

    fn put(&mut self, key: &str, owned: impl FnOnce() -> Cow<'static, str>, v: Values) {
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
        {
            e.1 = v;
        } else {
            self.entries.push((owned(), v));
        }
    }

    /// The values of `key` (any case), or `None` when absent.
    pub fn get(&self, key: &str) -> Option<&[Value]> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_slice())
    }

    /// Removes `key` (any case).
    pub fn remove(&mut self, key: &str) {
        self.entries.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }

    /// The keys present, as they were first set.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_ref())
    }

    /// Values of a non-empty key (an empty list counts as absent).
    pub(crate) fn present(&self, key: &str) -> Option<&[Value]> {
        self.get(key).filter(|v| !v.is_empty())
    }
}

pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

pub(crate) fn parse_num(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn num_field(s: &str, len: usize) -> Option<u32> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a W3C ISO 8601 date/time (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`, `…THH:MM`, `…:SS`, `…:SS.fff`,
/// then `Z`, `±HH:MM`, `±HHMM` or `±HH`; no zone = UTC) or integer epoch seconds, as
/// (Unix seconds, nanoseconds). Fields are range-checked (month 1–12, day 1–31, hour 0–23, …).
pub(crate) fn parse_date(s: &str) -> Option<(i64, u32)> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok().map(|t| (t, 0));
    }
    let (date, time) = match s.find(['T', 't']) {
        Some(i) => (s.get(..i)?, Some(s.get(i + 1..)?)),
        None => (s, None),
    };
    let mut dp = date.split('-');
    let y = num_field(dp.next()?, 4)?;
    let m = match dp.next() {
        Some(m) => num_field(m, 2)?,
        None => 1,
    };
    let d = match dp.next() {
        Some(d) => num_field(d, 2)?,
        None => 1,
    };
    if dp.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(i64::from(y), m, d) * 86_400;
    let mut nanos = 0u32;
    if let Some(time) = time {
        // Split off the zone.
        let (clock, zone) = match time.find(['Z', 'z', '+', '-']) {
            Some(i) => (time.get(..i)?, time.get(i..)?),
            None => (time, ""),
        };
        let mut tp = clock.split(':');
        let h = num_field(tp.next()?, 2)?;
        let mi = num_field(tp.next()?, 2)?;
        let (sec, frac) = match tp.next() {
            Some(sf) => match sf.split_once('.') {
                Some((s, f)) => (num_field(s, 2)?, Some(f)),
                None => (num_field(sf, 2)?, None),
            },
            None => (0, None),
        };
        if tp.next().is_some() || h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let mut n: u32 = f.parse().ok()?;
            for _ in f.len()..9 {
                n *= 10;
            }
            nanos = n;
        }
        secs += i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(sec);
        let off = match zone {
            "" | "Z" | "z" => 0,
            z => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let rest = z.get(1..)?;
                let (zh, zm) = match rest.split_once(':') {
                    Some((a, b)) => (num_field(a, 2)?, num_field(b, 2)?),
                    None if rest.len() == 4 => {
                        (num_field(rest.get(..2)?, 2)?, num_field(rest.get(2..)?, 2)?)
                    }
                    None => (num_field(rest, 2)?, 0),
                };
                if zh > 23 || zm > 59 {
                    return None;
                }
                sign * (i64::from(zh) * 3600 + i64::from(zm) * 60)
            }
        };
        secs -= off;
    }
    Some((secs, nanos))
}

/// An IPv4 or IPv6 network (a bare address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().ok()?
            }
            Some(_) => return None,
            None => max,
        };
        if prefix > max {
            return None;
        }
        Some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            (IpAddr::V4(_), IpAddr::V6(a)) => a
                .to_ipv4_mapped()
                .is_some_and(|a| self.contains(IpAddr::V4(a))),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(parse_date("2014-05-07T23:47:00Z"), Some((1_399_506_420, 0)));
        assert_eq!(
            parse_date("2014-05-07T23:47:00.5Z"),
            Some((1_399_506_420, 500_000_000))
        );
        assert_eq!(
            parse_date("2014-05-08T01:47:00+02:00"),
            Some((1_399_506_420, 0))
        );
        assert_eq!(
            parse_date("2014-05-07T18:47:00-0500"),
            Some((1_399_506_420, 0))
        );
        assert_eq!(parse_date("2014-05-07T23:47Z"), Some((1_399_506_420, 0)));
        assert_eq!(parse_date("2014-05-07"), Some((1_399_420_800, 0)));
        assert_eq!(parse_date("1399506420"), Some((1_399_506_420, 0)));
        for bad in [
            "2014-13-01",
            "2014-05-32",
            "2014-05-07T24:00:00Z",
            "2014-05-07T23:60Z",
            "x",
            "",
            "2014-05-07T23:47:00+2",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(format_date(1_399_506_420), "2014-05-07T23:47:00Z");
        assert_eq!(format_date(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains("203.0.113.9".parse().unwrap()));
        assert!(!c.contains("203.0.114.9".parse().unwrap()));
        assert!(c.contains("::ffff:203.0.113.9".parse().unwrap()));
        let c6 = Cidr::parse("2001:DB8:1234:5678::/64").unwrap();
        assert!(c6.contains("2001:db8:1234:5678::1".parse().unwrap()));
        assert!(!c6.contains("2001:db8:1234:5679::1".parse().unwrap()));
        assert!(!c6.contains("203.0.113.9".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        assert!(
            Cidr::parse("::/0")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            Cidr::parse("1.2.3.4")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        assert!(Cidr::parse("1.2.3.4/33").is_none());
        assert!(Cidr::parse("1.2.3/8").is_none());
        assert!(Cidr::parse("::1/129").is_none());
    }

    #[test]
    fn context_case_insensitive() {
        let mut c = Context::new();
        c.set("aws:SourceIp", Value::Str("1.2.3.4".into()));
        assert!(c.get("AWS:SOURCEIP").is_some());
        c.set("AWS:sourceip", Value::Str("5.6.7.8".into()));
        assert_eq!(
            c.get("aws:sourceip"),
            Some(&[Value::Str("5.6.7.8".into())][..])
        );
        c.remove("Aws:SourceIP");
        assert!(c.get("aws:sourceip").is_none());
    }

    #[test]
    fn context_static_keys_lists_and_replacement_mix() {
        let mut c = Context::new();
        c.set_static("aws:PrincipalType", Value::Str("User".into()));
        c.set_list(
            "aws:TagKeys",
            vec![Value::Str("a".into()), Value::Str("b".into())],
        );
        // A static key replaced through a key of another case, and a list replaced by one value: one
        // entry each, the first spelling kept.
        c.set("AWS:PRINCIPALTYPE", Value::Str("AssumedRole".into()));
        c.set_static("aws:tagkeys", Value::Str("c".into()));
        assert_eq!(
            c.get("aws:principaltype"),
            Some(&[Value::Str("AssumedRole".into())][..])
        );
        assert_eq!(c.get("Aws:TagKeys"), Some(&[Value::Str("c".into())][..]));
        assert_eq!(
            c.keys().collect::<Vec<_>>(),
            ["aws:PrincipalType", "aws:TagKeys"]
        );
        c.set_list("aws:TagKeys", Vec::new());
        assert_eq!(c.get("aws:tagkeys"), Some(&[][..]));
        assert!(c.present("aws:tagkeys").is_none());
    }
}
