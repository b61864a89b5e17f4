//! Timestamps: epoch values of either unit, the readable forms AWS and CloudWatch write, and
//! the RFC 3339 rendering used on output. Everything is epoch milliseconds, UTC.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// Values at or above this are milliseconds, below it seconds (reference §2.3).
pub const MS_THRESHOLD: f64 = 1e11;

/// Epoch seconds or milliseconds (or fractional seconds) to epoch milliseconds.
/// `None` for negative, non-finite or absurd values (beyond year 9999).
pub fn epoch_to_ms(value: f64) -> Option<i64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let ms = if value >= MS_THRESHOLD {
        value
    } else {
        value * 1000.0
    };
    (ms < 253_402_300_800_000.0).then(|| ms.round() as i64)
}

/// Parses the readable timestamps seen in VPN logs and their envelopes:
/// `2025-11-08 05:40:29.641Z`, `2025-11-08T05:40:29.641Z`, `2025-11-08T05:40:29Z`,
/// `2025-11-08T05:40:29.641+00:00`, and the same without a zone (taken as UTC).
pub fn parse_readable(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || !matches!(b[10], b' ' | b'T' | b't') {
        return None;
    }
    let date = NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").ok()?;
    let rest = &s[11..];
    // Split the time part from the zone designator.
    let zone_at = rest
        .get(8..)?
        .find(['Z', 'z', '+', '-'])
        .map(|i| i + 8)
        .unwrap_or(rest.len());
    let time = NaiveTime::parse_from_str(&rest[..zone_at], "%H:%M:%S%.f").ok()?;
    let naive = NaiveDateTime::new(date, time);
    let zone = &rest[zone_at..];
    let offset_s: i64 = match zone {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let digits: String = zone[1..].chars().filter(|c| c.is_ascii_digit()).collect();
            if digits.len() != 4 {
                return None;
            }
            let h: i64 = digits[..2].parse().ok()?;
            let m: i64 = digits[2..].parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    Some(naive.and_utc().timestamp_millis() - offset_s * 1000)
}

/// The times AWS Health writes: RFC 1123 (`Sat, 11 Jun 2022 00:00:00 GMT`, in EventBridge's
/// `detail`) or ISO 8601 (`2022-06-11T00:00:00Z`, `2022-06-11T00:00:00.000000+00:00`).
pub fn parse_health_time(s: &str) -> Option<i64> {
    let s = s.trim();
    chrono::DateTime::parse_from_rfc2822(s)
        .map(|t| t.timestamp_millis())
        .ok()
        .or_else(|| parse_readable(s))
}

/// How many bytes at the start of `s` form a readable timestamp (`YYYY-MM-DD[ T]HH:MM:SS[.f][zone]`),
/// with its value. Used to peel timestamps off text lines.
pub fn readable_prefix(s: &str) -> Option<(usize, i64)> {
    let b = s.as_bytes();
    if b.len() < 19
        || !b[..4].iter().all(u8::is_ascii_digit)
        || b[4] != b'-'
        || b[7] != b'-'
        || b[13] != b':'
    {
        return None;
    }
    let mut end = 19;
    if end < b.len() && (b[end] == b'.' || b[end] == b',') {
        end += 1;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
    }
    if end < b.len() && matches!(b[end], b'Z' | b'z') {
        end += 1;
    } else if end + 6 <= b.len()
        && matches!(b[end], b'+' | b'-')
        && b[end + 1..end + 3].iter().all(u8::is_ascii_digit)
        && b[end + 3] == b':'
    {
        end += 6;
    }
    let text = s.get(..end)?.replace(',', ".");
    parse_readable(&text).map(|ms| (end, ms))
}

/// RFC 3339 with milliseconds and `Z`, e.g. `2025-11-08T05:40:29.641Z`.
pub fn format_ms(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_units() {
        assert_eq!(epoch_to_ms(1762580429641.0), Some(1762580429641));
        assert_eq!(epoch_to_ms(1762580429.0), Some(1762580429000));
        assert_eq!(epoch_to_ms(1762580429.5), Some(1762580429500));
        assert_eq!(epoch_to_ms(-1.0), None);
        assert_eq!(epoch_to_ms(f64::NAN), None);
        assert_eq!(epoch_to_ms(1e20), None);
    }

    #[test]
    fn readable_forms() {
        let want = Some(1762580429641);
        assert_eq!(parse_readable("2025-11-08 05:40:29.641Z"), want);
        assert_eq!(parse_readable("2025-11-08T05:40:29.641Z"), want);
        assert_eq!(parse_readable("2025-11-08T05:40:29.641+00:00"), want);
        assert_eq!(parse_readable("2025-11-08T06:40:29.641+01:00"), want);
        assert_eq!(parse_readable("2025-11-08T05:40:29.641"), want);
        assert_eq!(parse_readable("2025-11-08T05:40:29Z"), Some(1762580429000));
        assert_eq!(parse_readable("2025-13-08T05:40:29Z"), None);
        assert_eq!(parse_readable("yesterday"), None);
        assert_eq!(format_ms(1762580429641), "2025-11-08T05:40:29.641Z");
    }

    #[test]
    fn prefix() {
        assert_eq!(
            readable_prefix("2025-11-08T05:40:29.641Z rest"),
            Some((24, 1762580429641))
        );
        assert_eq!(
            readable_prefix("2025-11-08 05:40:29.641Z rest"),
            Some((24, 1762580429641))
        );
        assert_eq!(
            readable_prefix("2025-11-08T05:40:29+00:00 x"),
            Some((25, 1762580429000))
        );
        assert_eq!(readable_prefix("2025-11-08"), None);
    }
}
