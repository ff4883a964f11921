//! Durations as templates and launchers write them: `30m`, `2h`, `1h30m`, `7d`.
//!
//! Whole numbers of days, hours, minutes and seconds, largest unit first, each unit at most once;
//! that is all a cluster lifetime or an idle timeout needs, and it leaves no ambiguity about
//! `1.5h` or `90m30m`. A bare `0` is zero.

use std::time::Duration;

const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

/// Why a text is not an acceptable duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurationError {
    /// Not like `30m`, `2h` or `1h30m`.
    Syntax,
    /// Well formed, but too long to add to a date.
    OutOfRange,
}

/// Parses a duration such as `30m`, `2h`, `1h30m` or `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(DurationError::Syntax);
    }
    let mut seconds: u64 = 0;
    let mut rest = text;
    // Units must come in the order of UNITS, so each one is searched for after the last one used.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let unit = rest[digits..].chars().next().ok_or(DurationError::Syntax)?;
        let position =
            UNITS[next_unit..].iter().position(|(u, _)| *u == unit).ok_or(DurationError::Syntax)?;
        if digits == 0 {
            return Err(DurationError::Syntax);
        }
        let count: u64 = rest[..digits].parse().map_err(|_| DurationError::OutOfRange)?;
        let (_, unit_seconds) = UNITS[next_unit + position];
        seconds = count
            .checked_mul(unit_seconds)
            .and_then(|s| s.checked_add(seconds))
            .ok_or(DurationError::OutOfRange)?;
        next_unit += position + 1;
        rest = &rest[digits + 1..];
    }
    // Dates end at year 9999; anything longer than a century is a mistake, not a lifetime.
    if seconds > 100 * 365 * 86_400 {
        return Err(DurationError::OutOfRange);
    }
    Ok(Duration::from_secs(seconds))
}

/// Writes a duration in the form [`parse_duration`] reads (`1h30m`; `0s` for zero), dropping
/// fractions of a second.
pub fn format_duration(duration: Duration) -> String {
    let mut left = duration.as_secs();
    if left == 0 {
        return "0s".to_owned();
    }
    let mut text = String::new();
    for (unit, unit_seconds) in UNITS {
        if left >= unit_seconds {
            text.push_str(&(left / unit_seconds).to_string());
            text.push(unit);
            left %= unit_seconds;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> Result<u64, DurationError> {
        parse_duration(text).map(|d| d.as_secs())
    }

    #[test]
    fn reads_units_largest_first() {
        assert_eq!(secs("30m"), Ok(1800));
        assert_eq!(secs("2h"), Ok(7200));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("7d"), Ok(604_800));
        assert_eq!(secs("1d2h3m4s"), Ok(93_784));
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("0"), Ok(0));
        assert_eq!(secs("0s"), Ok(0));
    }

    #[test]
    fn rejects_everything_else() {
        for text in [
            "", "1", "h", "1.5h", "30m1h", "1h1h", "-1h", "+1h", "1 h", "1H", "NaN", "1h30", "1hm",
            "１h",
        ] {
            assert_eq!(secs(text), Err(DurationError::Syntax), "{text:?}");
        }
        for text in ["99999999999999999999999s", "36600d", "18446744073709551615d"] {
            assert_eq!(secs(text), Err(DurationError::OutOfRange), "{text:?}");
        }
    }

    #[test]
    fn formats_what_it_reads() {
        for text in ["0s", "1s", "30m", "1h30m", "1d2h3m4s", "2d"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
