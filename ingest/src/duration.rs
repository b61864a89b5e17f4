//! Durations as users write them in flags and in `tunnelwatch.toml`: `500ms`, `10s`, `5m`,
//! `6h`, `2d`, or sums such as `1h30m`. One parser for the simulator's flags and every source's
//! settings.

/// Parses `500ms`, `90s`, `90m`, `6h`, `2d` or a sum such as `1h30m` into milliseconds (zero
/// allowed: callers that need a positive duration check it).
pub fn parse_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "bad duration {s:?}: expected a number, e.g. 6h, 90m, 2d"
            ));
        }
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad duration {s:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("bad duration {s:?}: missing unit (s, m, h or d)")),
            u => {
                return Err(format!(
                    "bad duration {s:?}: unknown unit {u:?} (s, m, h or d)"
                ));
            }
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(unit_ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("bad duration {s:?}: too large"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn units_sums_and_zero() {
        assert_eq!(parse_ms("500ms"), Ok(500));
        assert_eq!(parse_ms(" 10s "), Ok(10_000));
        assert_eq!(parse_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_ms("0s"), Ok(0));
        assert!(parse_ms("10").is_err());
        assert!(parse_ms("5y").is_err());
        assert!(parse_ms("").is_err());
    }
}
