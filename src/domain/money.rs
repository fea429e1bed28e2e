//! Money at the edge: decimal strings in, `i64` minor units inside, decimal strings out.
//!
//! Parsing is strict so that nothing ambiguous reaches the ledger: digits with an optional
//! fraction, no sign, no exponent, no more decimals than the currency has, no zero, nothing
//! past [`MAX_AMOUNT_MINOR`].

use std::fmt;

/// Largest amount one movement may carry (10^15 minor units): far beyond any real payment, and
/// small enough that no balance can overflow `i64` through a few thousand of them.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

/// Longest decimal string accepted; longer input is refused before any arithmetic.
const MAX_AMOUNT_CHARS: usize = 40;

/// Highest currency exponent the platform supports.
pub const MAX_CURRENCY_EXPONENT: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount must be a decimal string such as \"12.34\"")]
    NotADecimal,
    #[error("amount has more than {max} decimal places")]
    TooManyDecimals { max: u32 },
    #[error("amount must be greater than zero")]
    NotPositive,
    #[error("amount is larger than the platform allows")]
    TooLarge,
}

/// A strictly positive amount in minor units, already checked against the platform limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i64);

impl Amount {
    pub fn from_minor(minor: i64) -> Result<Self, AmountError> {
        if minor <= 0 {
            return Err(AmountError::NotPositive);
        }
        if minor > MAX_AMOUNT_MINOR {
            return Err(AmountError::TooLarge);
        }
        Ok(Self(minor))
    }

    /// Parses `"12.34"` for a currency with `exponent` decimals.
    pub fn parse(text: &str, exponent: u32) -> Result<Self, AmountError> {
        assert!(
            exponent <= MAX_CURRENCY_EXPONENT,
            "exponent validated at client creation"
        );
        if text.is_empty() || text.len() > MAX_AMOUNT_CHARS {
            return Err(if text.is_empty() {
                AmountError::NotADecimal
            } else {
                AmountError::TooLarge
            });
        }
        let (int_part, frac_part) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int_part) || frac_part.is_some_and(|f| !all_digits(f)) {
            return Err(AmountError::NotADecimal);
        }
        let frac = frac_part.unwrap_or("");
        if frac.len() as u32 > exponent {
            return Err(AmountError::TooManyDecimals { max: exponent });
        }
        let mut minor: i64 = 0;
        for digit in int_part.bytes().chain(frac.bytes()) {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(digit - b'0')))
                .ok_or(AmountError::TooLarge)?;
        }
        let scale = 10_i64.pow(exponent - frac.len() as u32);
        let minor = minor.checked_mul(scale).ok_or(AmountError::TooLarge)?;
        Self::from_minor(minor)
    }

    pub fn minor(self) -> i64 {
        self.0
    }
}

/// Renders signed minor units with exactly `exponent` decimals: `15000, 2` → `"150.00"`.
pub fn format_minor(minor: i64, exponent: u32) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{abs}");
    }
    let scale = 10_u64.pow(exponent);
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = exponent as usize
    )
}

/// A client's currency: ISO-style code and its number of decimals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency {
    pub code: String,
    pub exponent: u32,
}

impl Currency {
    pub fn parse(code: &str, exponent: i64) -> Result<Self, String> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err("currency must be three upper-case letters, such as \"USD\"".into());
        }
        if !(0..=i64::from(MAX_CURRENCY_EXPONENT)).contains(&exponent) {
            return Err(format!(
                "currency_exponent must be between 0 and {MAX_CURRENCY_EXPONENT}"
            ));
        }
        Ok(Self {
            code: code.to_owned(),
            exponent: exponent as u32,
        })
    }

    pub fn format(&self, minor: i64) -> String {
        format_minor(minor, self.exponent)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(Amount::parse("150", 2).unwrap().minor(), 15000);
        assert_eq!(Amount::parse("1.5", 2).unwrap().minor(), 150);
        assert_eq!(Amount::parse("0.01", 2).unwrap().minor(), 1);
        assert_eq!(Amount::parse("7", 0).unwrap().minor(), 7);
        for bad in [
            "", "-1", "+1", "1e3", "NaN", "1.", ".5", " 1", "1,0", "0x10", "1.2.3", "inf",
        ] {
            assert_eq!(
                Amount::parse(bad, 2),
                Err(AmountError::NotADecimal),
                "{bad:?}"
            );
        }
        assert_eq!(
            Amount::parse("1.001", 2),
            Err(AmountError::TooManyDecimals { max: 2 })
        );
        assert_eq!(
            Amount::parse("1.5", 0),
            Err(AmountError::TooManyDecimals { max: 0 })
        );
        assert_eq!(Amount::parse("0", 2), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse("0.00", 2), Err(AmountError::NotPositive));
        assert_eq!(
            Amount::parse("99999999999999999999", 2),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            Amount::parse("92233720368547758.07", 2),
            Err(AmountError::TooLarge)
        );
    }

    #[test]
    fn formats_with_exact_decimals() {
        assert_eq!(format_minor(15000, 2), "150.00");
        assert_eq!(format_minor(0, 2), "0.00");
        assert_eq!(format_minor(-5, 2), "-0.05");
        assert_eq!(format_minor(42, 0), "42");
        assert_eq!(format_minor(i64::MIN, 2), "-92233720368547758.08");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(minor in 1..=MAX_AMOUNT_MINOR, exponent in 0u32..=8) {
            let text = format_minor(minor, exponent);
            prop_assert_eq!(Amount::parse(&text, exponent).unwrap().minor(), minor);
        }
    }
}
