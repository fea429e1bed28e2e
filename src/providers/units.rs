//! Exact conversion between our minor units and a provider's wire units. Anything that does not
//! convert exactly is refused, never rounded.

/// `minor` at exponent `from` expressed at exponent `to`, if exact and in range.
pub fn rescale(minor: i64, from: u32, to: u32) -> Option<i64> {
    if to >= from {
        minor.checked_mul(10_i64.checked_pow(to - from)?)
    } else {
        let div = 10_i64.checked_pow(from - to)?;
        (minor % div == 0).then_some(minor / div)
    }
}

/// Minor units as a decimal number string with `exponent` decimals (`1234`, 2 → `12.34`).
pub fn to_decimal(minor: i64, exponent: u32) -> String {
    crate::domain::format_minor(minor, exponent)
}

/// A JSON number (as the provider wrote it) in minor units, exactly, or None.
pub fn from_json_number(value: &serde_json::Value, exponent: u32) -> Option<i64> {
    let text = match value {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => return None,
    };
    parse_decimal(&text, exponent)
}

/// `"-12.5"` at exponent 2 → -1250; more decimals than `exponent` (beyond zeros) → None.
pub fn parse_decimal(text: &str, exponent: u32) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > exponent as usize {
        return None;
    }
    let scale = 10_i64.checked_pow(exponent)?;
    let mut value = int.parse::<i64>().ok()?.checked_mul(scale)?;
    if !frac.is_empty() {
        let f = frac.parse::<i64>().ok()? * 10_i64.pow(exponent - frac.len() as u32);
        value = value.checked_add(f)?;
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_are_exact_or_refused() {
        assert_eq!(rescale(1234, 2, 2), Some(1234));
        assert_eq!(rescale(12, 0, 2), Some(1200));
        assert_eq!(rescale(1230, 3, 2), Some(123));
        assert_eq!(rescale(1234, 3, 2), None);
        assert_eq!(rescale(i64::MAX, 0, 2), None);
        assert_eq!(parse_decimal("12.34", 2), Some(1234));
        assert_eq!(parse_decimal("12.3", 2), Some(1230));
        assert_eq!(parse_decimal("12.340", 2), Some(1234));
        assert_eq!(parse_decimal("12.345", 2), None);
        assert_eq!(parse_decimal("-0.5", 2), Some(-50));
        assert_eq!(parse_decimal("1e5", 2), None);
        assert_eq!(from_json_number(&serde_json::json!(12.34), 2), Some(1234));
        assert_eq!(from_json_number(&serde_json::json!(100), 2), Some(10000));
    }
}
