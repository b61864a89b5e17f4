//! The times gateway log lines start with.
//!
//! Accepted, with optional fractional seconds (`.123`, `.123456`):
//! - `Dec  4 04:50:11` (syslog files, charon's `time_format = %b %e %T`): no year; the given
//!   year, else the current UTC year, is used;
//! - `2026-12-04 04:50:11`, `2026-12-04T04:50:11` with an optional `Z` / `±hh:mm` / `±hhmm`
//!   zone (BIRD, rsyslog's high-precision format, journalctl `short-iso`);
//! - `2026/12/04 04:50:11` (FRR's log file).
//!
//! Limits: a time without a zone is UTC; only these layouts are recognised.

use chrono::{Datelike, NaiveDate, Utc};

/// How the date was written (FRR's slashes tell its lines apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    Month,
    Dashes,
    Slashes,
    None,
}

pub(super) fn style(line: &str) -> Style {
    let b = line.as_bytes();
    match b.get(4) {
        _ if b.first().is_some_and(u8::is_ascii_uppercase) => Style::Month,
        Some(b'-') => Style::Dashes,
        Some(b'/') => Style::Slashes,
        _ => Style::None,
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A leading time: `(bytes it takes, epoch ms)`.
pub(super) fn prefix(line: &str, year: Option<i32>) -> Option<(usize, i64)> {
    let b = line.as_bytes();
    let first = *b.first()?;
    if first.is_ascii_uppercase() {
        let month = MONTHS.iter().position(|m| line.starts_with(m))? as u32 + 1;
        let mut i = 3;
        if b.get(i) != Some(&b' ') {
            return None;
        }
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        let (day, n) = digits(&b[i..], 1, 2)?;
        i += n;
        if b.get(i) != Some(&b' ') {
            return None;
        }
        i += 1;
        let (ms_of_day, n) = time_of_day(&b[i..])?;
        i += n;
        if !matches!(b.get(i), None | Some(b' ' | b'\t' | b':')) {
            return None;
        }
        let year = year.unwrap_or_else(|| Utc::now().year());
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        return Some((i, day_ms(date) + ms_of_day));
    }
    if !first.is_ascii_digit() {
        return None;
    }
    let (y, _) = digits(b, 4, 4)?;
    let sep = *b.get(4)?;
    if sep != b'-' && sep != b'/' {
        return None;
    }
    let (m, _) = digits(b.get(5..)?, 2, 2)?;
    if b.get(7) != Some(&sep) {
        return None;
    }
    let (d, _) = digits(b.get(8..)?, 2, 2)?;
    if !matches!(b.get(10), Some(b' ' | b'T')) {
        return None;
    }
    let (ms_of_day, n) = time_of_day(b.get(11..)?)?;
    let mut i = 11 + n;
    let date = NaiveDate::from_ymd_opt(y as i32, m, d)?;
    let mut ms = day_ms(date) + ms_of_day;
    // Zone.
    match b.get(i) {
        Some(b'Z') => i += 1,
        Some(&s @ (b'+' | b'-')) => {
            let (hh, _) = digits(b.get(i + 1..)?, 2, 2)?;
            let colon = usize::from(b.get(i + 3) == Some(&b':'));
            let (mm, _) = digits(b.get(i + 3 + colon..)?, 2, 2)?;
            let offset = i64::from(hh * 60 + mm) * 60_000;
            ms += if s == b'+' { -offset } else { offset };
            i += 5 + colon;
        }
        _ => {}
    }
    // The time must end the token.
    match b.get(i) {
        None | Some(b' ' | b'\t' | b':') => Some((i, ms)),
        _ => None,
    }
}

fn day_ms(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_millis())
}

/// `hh:mm:ss[.fraction]`: milliseconds of the day and bytes taken.
fn time_of_day(b: &[u8]) -> Option<(i64, usize)> {
    let (h, _) = digits(b, 2, 2)?;
    if b.get(2) != Some(&b':') {
        return None;
    }
    let (m, _) = digits(b.get(3..)?, 2, 2)?;
    if b.get(5) != Some(&b':') {
        return None;
    }
    let (s, _) = digits(b.get(6..)?, 2, 2)?;
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let mut ms = i64::from((h * 60 + m) * 60 + s) * 1000;
    let mut n = 8;
    if matches!(b.get(8), Some(b'.' | b',')) && b.get(9).is_some_and(u8::is_ascii_digit) {
        let frac: Vec<u8> = b[9..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .copied()
            .collect();
        let mut milli = 0i64;
        for k in 0..3 {
            milli = milli * 10 + frac.get(k).map_or(0, |c| i64::from(c - b'0'));
        }
        ms += milli;
        n = 9 + frac.len();
    }
    Some((ms, n))
}

/// `min..=max` ASCII digits at the start of `b`.
fn digits(b: &[u8], min: usize, max: usize) -> Option<(u32, usize)> {
    let n = b
        .iter()
        .take(max)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if n < min {
        return None;
    }
    let v = b[..n]
        .iter()
        .fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0'));
    Some((v, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let t = 1_796_359_811_000; // 2026-12-04T04:50:11Z
        let cases: [(&str, Option<(usize, i64)>); 11] = [
            ("Dec  4 04:50:11 09[IKE] x", Some((15, t))),
            ("Dec 4 04:50:11.250 x", Some((18, t + 250))),
            ("2026-12-04 04:50:11.123 <INFO> x", Some((23, t + 123))),
            ("2026/12/04 04:50:11 BGP: x", Some((19, t))),
            ("2026-12-04T04:50:11.123456+00:00 gw", Some((32, t + 123))),
            ("2026-12-04T06:50:11+0200 gw", Some((24, t))),
            ("2026-12-04T04:50:11Z gw", Some((20, t))),
            ("2026-12-04T04:50:11xyz", None),
            ("Dex  4 04:50:11", None),
            (
                "Dec  4 05:16:03.586550: pluto",
                Some((22, t + 25 * 60_000 + 52_586)),
            ),
            ("12:00:00 x", None),
        ];
        for (line, want) in cases {
            assert_eq!(prefix(line, Some(2026)), want, "{line}");
        }
        assert_eq!(style("2026/12/04"), Style::Slashes);
    }
}
