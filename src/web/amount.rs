//! Amounts typed in forms: decimal strings in the currency's exponent, parsed at the edge with
//! the domain's parser (strictly positive, within the platform limit); the error is a message
//! to show beside the field.

use crate::domain::{Amount, format_minor};

/// Parses `text` (e.g. `12.50`) for a currency with `exponent` decimals.
pub fn parse(text: &str, exponent: u32) -> Result<Amount, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(super::i18n::english().get("amount.required").to_owned());
    }
    Amount::parse(text, exponent).map_err(|e| e.to_string())
}

/// The decimal string of an amount (what the API's JSON takes).
pub fn to_decimal(amount: Amount, exponent: u32) -> String {
    format_minor(amount.minor(), exponent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_in_the_currency_exponent() {
        assert_eq!(parse("12.50", 2).unwrap().minor(), 1250);
        assert_eq!(parse(" 7 ", 0).unwrap().minor(), 7);
        assert_eq!(to_decimal(parse("3.5", 2).unwrap(), 2), "3.50");
        assert!(parse("1.234", 2).is_err());
        assert!(parse("0", 2).is_err());
        assert!(parse("-1", 2).is_err());
        assert!(parse("abc", 2).is_err());
        assert!(parse("", 2).is_err());
    }
}
