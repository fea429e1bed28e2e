//! Contact details: parsing addresses at the edge (email, E.164 phone numbers) and the
//! verification codes sent to them (six digits; only a hash bound to user and channel is
//! stored, the code itself lives only in the message).

use sha2::{Digest, Sha256};

use crate::domain::Channel;

/// Wrong verification codes allowed per code before a new one must be asked for.
pub const MAX_CODE_ATTEMPTS: i64 = 5;

/// An address in its stored form, or why it is not one.
pub fn parse_address(channel: Channel, raw: &str) -> Result<String, &'static str> {
    match channel {
        Channel::Email => parse_email(raw),
        Channel::Sms => parse_phone(raw),
    }
}

/// `local@domain`: printable ASCII, at most 254 characters, a dotted domain of letters,
/// digits and hyphens (stored lower-case).
fn parse_email(raw: &str) -> Result<String, &'static str> {
    const WHAT: &str = "address must be an email address like name@example.com";
    let text = raw.trim();
    if text.len() > 254 {
        return Err(WHAT);
    }
    let Some((local, domain)) = text.rsplit_once('@') else {
        return Err(WHAT);
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"<>()[],;:\"\\@".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if local_ok && domain_ok {
        Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
    } else {
        Err(WHAT)
    }
}

/// E.164: `+` and 8 to 15 digits, the first not 0 (spaces, dashes and dots are dropped).
fn parse_phone(raw: &str) -> Result<String, &'static str> {
    const WHAT: &str = "address must be a phone number in E.164 form, like +639171234567";
    let text: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.'))
        .collect();
    let Some(digits) = text.strip_prefix('+') else {
        return Err(WHAT);
    };
    if (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
    {
        Ok(text)
    } else {
        Err(WHAT)
    }
}

/// A fresh six-digit code.
pub fn new_code() -> String {
    format!("{:06}", rand::random::<u32>() % 1_000_000)
}

/// What is stored of a code: bound to the user, the channel and the address it was sent to.
pub fn code_hash(user_id: &str, channel: Channel, address: &str, code: &str) -> String {
    let mut h = Sha256::new();
    for part in [user_id, channel.as_str(), address, code.trim()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emails() {
        assert_eq!(
            parse_address(Channel::Email, " Ann.Lee+x@Example.COM ").unwrap(),
            "Ann.Lee+x@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.com",
            "ann@x",
            "a b@x.com",
            "ann@-x.com",
            "<a>@x.com",
            "ann@x..com",
        ] {
            assert!(parse_address(Channel::Email, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert_eq!(
            parse_address(Channel::Sms, "+63 917-123-4567").unwrap(),
            "+639171234567"
        );
        for bad in [
            "",
            "639171234567",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "+63a9171234",
        ] {
            assert!(parse_address(Channel::Sms, bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn codes_are_six_digits_and_hashes_bind_the_address(a in "[a-z]{1,8}", b in "[a-z]{1,8}") {
            let code = new_code();
            prop_assert!(code.len() == 6 && code.bytes().all(|c| c.is_ascii_digit()));
            let h = code_hash("u", Channel::Email, &a, &code);
            prop_assert_eq!(&h, &code_hash("u", Channel::Email, &a, &code));
            if a != b {
                prop_assert_ne!(h, code_hash("u", Channel::Email, &b, &code));
            }
        }
    }
}
