//! `YYYYMMDDTHHMMSSZ` <-> unix seconds, with our own proleptic-Gregorian civil-date arithmetic
//! (H. Hinnant's `days_from_civil` / `civil_from_days`), so no date crate is needed.

const SECS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of the proleptic Gregorian date `y-m-d` (`m` in 1..=12, `d` in 1..=31).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month, day)` of a day count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    // `m` and `d` are in tiny ranges by construction; the fallbacks are unreachable.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

pub(crate) fn is_leap_year(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

pub(crate) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(y) => 29,
        2 => 28,
        _ => 0,
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

/// Parses an ISO-8601 basic UTC timestamp, `YYYYMMDDTHHMMSSZ` exactly (16 ASCII characters), into unix
/// seconds. Rejects impossible dates (month 13, February 30, hour 24, second 60...).
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let year = i64::from(digits(&b[0..4])?);
    let month = digits(&b[4..6])?;
    let day = digits(&b[6..8])?;
    let hour = i64::from(digits(&b[9..11])?);
    let minute = i64::from(digits(&b[11..13])?);
    let second = i64::from(digits(&b[13..15])?);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + minute * 60 + second)
}

/// Formats unix seconds as `YYYYMMDDTHHMMSSZ` (UTC). Years outside 0..=9999 are printed as they are.
pub fn format_amz_date(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(SECS_PER_DAY);
    let secs = unix_secs.rem_euclid(SECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1970, 1, 2), 1);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 1, 1), 10_957);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2020, 2, 29), 18_321);
        assert_eq!(days_from_civil(2038, 1, 19), 24_855);
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-719_162), (1, 1, 1));
    }

    #[test]
    fn round_trip_every_day_1900_2500() {
        let start = days_from_civil(1900, 1, 1);
        let end = days_from_civil(2500, 12, 31);
        let mut expected = (1900i64, 1u32, 1u32);
        for z in start..=end {
            let civil = civil_from_days(z);
            assert_eq!(civil, expected, "day {z}");
            assert_eq!(days_from_civil(civil.0, civil.1, civil.2), z);
            // advance `expected` by one day, independently of the functions under test
            let (y, m, d) = expected;
            expected = if d < days_in_month(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    #[test]
    fn leap_years() {
        assert!(is_leap_year(2000));
        assert!(is_leap_year(2024));
        assert!(!is_leap_year(1900));
        assert!(!is_leap_year(2100));
        assert!(!is_leap_year(2023));
    }

    #[test]
    fn parse_known_timestamps() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20380119T031407Z"), Some(2_147_483_647));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_amz_date("20220127T001427Z"), Some(1_643_242_467));
        assert_eq!(parse_amz_date("20200229T235959Z"), Some(1_583_020_799));
        assert_eq!(parse_amz_date("99991231T235959Z"), Some(253_402_300_799));
        assert_eq!(parse_amz_date("00000101T000000Z"), Some(-62_167_219_200));
    }

    #[test]
    fn parse_rejects_malformed() {
        for bad in [
            "",
            "201",
            "20200101T000000",
            "20200101T000000z",
            "20200101t000000Z",
            "2020-01-01T00:00:00Z",
            "20200101 000000Z",
            "20201301T000000Z",
            "20200001T000000Z",
            "20200100T000000Z",
            "20200230T000000Z",
            "20210229T000000Z",
            "21000229T000000Z",
            "20200431T000000Z",
            "20200101T240000Z",
            "20200101T006000Z",
            "20200101T000060Z",
            "2020010aT000000Z",
            "+0200101T000000Z",
            "20200101T000000Z ",
            "Tue, 01 Jan 2020 00:00:00 GMT",
            "２0200101T000000Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn format_known_timestamps() {
        assert_eq!(format_amz_date(0), "19700101T000000Z");
        assert_eq!(format_amz_date(-1), "19691231T235959Z");
        assert_eq!(format_amz_date(1_643_242_467), "20220127T001427Z");
        assert_eq!(format_amz_date(1_643_247_868), "20220127T014428Z");
        assert_eq!(format_amz_date(2_147_483_647), "20380119T031407Z");
        assert_eq!(format_amz_date(253_402_300_799), "99991231T235959Z");
        // extreme inputs format without panicking
        let _ = format_amz_date(i64::MAX);
        let _ = format_amz_date(i64::MIN);
    }

    #[test]
    fn format_parse_round_trip_sampled() {
        // every 7919 seconds over ~2 centuries (includes leap days and year boundaries)
        let mut t = parse_amz_date("19000101T000000Z").unwrap_or_default();
        let end = parse_amz_date("21010101T000000Z").unwrap_or_default();
        while t < end {
            assert_eq!(parse_amz_date(&format_amz_date(t)), Some(t), "{t}");
            t += 7919;
        }
    }
}
