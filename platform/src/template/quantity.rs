//! Kubernetes resource quantities (`500m`, `8Gi`, `1e3`), parsed exactly and without panicking.
//!
//! Why not k8s-openapi's `Quantity`: it is only the text. Bounds (`min: 2Gi`) and GPU totals
//! need the value, and the browser build checks form fields with this too, without pulling in
//! the Kubernetes types.

/// Nano-units in one unit: the finest suffix Kubernetes has is `n`.
const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// Largest magnitude accepted, in units: Kubernetes keeps quantities as 64-bit integers.
const MAX_UNITS: i128 = i64::MAX as i128;

/// A quantity's value, held exactly in nano-units; parse with [`Quantity::parse`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    nanos: i128,
}

/// Why a text is not an acceptable quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantityError {
    /// Not in Kubernetes' quantity syntax (`NaN`, `1.2.3`, `8 Gi`, ``).
    Syntax,
    /// Well formed, but beyond what Kubernetes can hold (`1e100`).
    OutOfRange,
}

impl Quantity {
    /// Parses Kubernetes' quantity syntax: a signed decimal number, then a binary suffix
    /// (`Ki`..`Ei`), a decimal suffix (`n`, `u`, `m`, `k`, `M`..`E`) or an exponent (`e3`, `E-2`).
    /// Precision finer than a nano-unit rounds up, as Kubernetes does.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let number_len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        let (number, suffix) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(QuantityError::Syntax);
        }
        // Trailing zeros of the fraction add digits but no value; dropping them keeps long but
        // exact texts ("1.000000000000000000000Gi") within range.
        let fraction = fraction.trim_end_matches('0');
        let (binary_power, decimal_power) = suffix_powers(suffix)?;

        let mut mantissa: i128 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(digit - b'0')))
                .ok_or(QuantityError::OutOfRange)?;
        }
        let scaled =
            mantissa.checked_mul(1i128 << binary_power).ok_or(QuantityError::OutOfRange)?;
        // Both fit in i64: the fraction was bounded by the i128 mantissa, the exponent by
        // `suffix_powers`.
        let exponent = 9 + decimal_power - fraction.len() as i64;
        let nanos = if exponent >= 0 {
            u32::try_from(exponent)
                .ok()
                .and_then(|e| 10i128.checked_pow(e))
                .and_then(|factor| scaled.checked_mul(factor))
                .ok_or(QuantityError::OutOfRange)?
        } else {
            match u32::try_from(-exponent).ok().and_then(|e| 10i128.checked_pow(e)) {
                Some(divisor) => scaled / divisor + i128::from(scaled % divisor != 0),
                // Smaller than any nano-unit: rounds up to one, or stays zero.
                None => i128::from(scaled > 0),
            }
        };
        if nanos > MAX_UNITS * NANOS_PER_UNIT {
            return Err(QuantityError::OutOfRange);
        }
        Ok(Quantity { nanos: if negative { -nanos } else { nanos } })
    }

    /// The value in nano-units.
    pub fn nanos(self) -> i128 {
        self.nanos
    }

    /// True for values below zero.
    pub fn is_negative(self) -> bool {
        self.nanos < 0
    }

    /// The value as a whole number of units, if it is one (GPU counts must be).
    pub fn whole_units(self) -> Option<i64> {
        if self.nanos % NANOS_PER_UNIT != 0 {
            return None;
        }
        i64::try_from(self.nanos / NANOS_PER_UNIT).ok()
    }
}

/// The powers of two and of ten a suffix multiplies by.
fn suffix_powers(suffix: &str) -> Result<(u32, i64), QuantityError> {
    let powers = match suffix {
        "" => (0, 0),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        _ => return exponent_suffix(suffix).map(|e| (0, e)),
    };
    Ok(powers)
}

/// Reads `e<signed integer>` / `E<signed integer>`.
fn exponent_suffix(suffix: &str) -> Result<i64, QuantityError> {
    let Some(digits) = suffix.strip_prefix(['e', 'E']) else {
        return Err(QuantityError::Syntax);
    };
    let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QuantityError::Syntax);
    }
    // Beyond ±40 nothing is left in range except zero and round-up-to-one, and a bounded
    // exponent keeps the arithmetic above simple.
    let exponent: i64 = digits.parse().map_err(|_| QuantityError::OutOfRange)?;
    if exponent.abs() > 40 {
        return Err(QuantityError::OutOfRange);
    }
    Ok(exponent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(text: &str) -> Option<i64> {
        Quantity::parse(text).ok().and_then(Quantity::whole_units)
    }

    #[test]
    fn suffixes() {
        assert_eq!(units("8"), Some(8));
        assert_eq!(units("8Gi"), Some(8 << 30));
        assert_eq!(units("2k"), Some(2000));
        assert_eq!(units("1E"), Some(1_000_000_000_000_000_000));
        assert_eq!(units("1e3"), Some(1000));
        assert_eq!(units("1E+3"), Some(1000));
        assert_eq!(units("1.5Ki"), Some(1536));
        assert_eq!(units(".5k"), Some(500));
        assert_eq!(units("5."), Some(5));
        assert_eq!(units("+4"), Some(4));
        assert_eq!(units("-4"), Some(-4));
        assert_eq!(units("1.000000000000000000000000000000000000000Gi"), Some(1 << 30));
        assert_eq!(Quantity::parse("500m").unwrap().nanos(), 500_000_000);
        assert_eq!(Quantity::parse("1e-3").unwrap(), Quantity::parse("1m").unwrap());
        assert_eq!(units("500m"), None);
    }

    #[test]
    fn rounds_up_below_a_nano_unit() {
        assert_eq!(Quantity::parse("0.1n").unwrap().nanos(), 1);
        assert_eq!(Quantity::parse("1e-40").unwrap().nanos(), 1);
        assert_eq!(Quantity::parse("0e-40").unwrap().nanos(), 0);
    }

    #[test]
    fn rejects_garbage_and_out_of_range() {
        for text in [
            "", "NaN", "inf", "-", ".", "1.2.3", "8 Gi", " 8", "8gi", "1e", "1e+", "0x10", "1Gi ",
            "١",
        ] {
            assert_eq!(Quantity::parse(text), Err(QuantityError::Syntax), "{text:?}");
        }
        for text in [
            "1e100",
            "1e41",
            "9223372036854775808",
            "16Ei",
            "99999999999999999999999999999999999999999",
        ] {
            assert_eq!(Quantity::parse(text), Err(QuantityError::OutOfRange), "{text:?}");
        }
        assert_eq!(units("9223372036854775807"), Some(i64::MAX));
        assert!(Quantity::parse("-1").unwrap().is_negative());
    }
}
