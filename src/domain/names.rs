//! Validation of the short identifiers people type: usernames, client codes, idempotency keys.

/// Lower-cases and checks a username: 3 to 64 of `a-z 0-9 _ . -`.
pub fn username(raw: &str) -> Result<String, String> {
    let name = raw.trim().to_ascii_lowercase();
    let ok = (3..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if ok {
        Ok(name)
    } else {
        Err("username must be 3 to 64 characters of a-z, 0-9, '_', '.', '-'".into())
    }
}

/// Checks a client code: 2 to 32 of `a-z 0-9 _ -`.
pub fn client_code(raw: &str) -> Result<String, String> {
    let code = raw.trim().to_ascii_lowercase();
    let ok = (2..=32).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
    if ok {
        Ok(code)
    } else {
        Err("code must be 2 to 32 characters of a-z, 0-9, '_', '-'".into())
    }
}

/// Checks a password's length (8 to 128 characters, as `/openapi.json` declares it: JSON
/// Schema counts characters, not bytes); strength policy is the client's business.
pub fn password(raw: &str) -> Result<(), String> {
    if (8..=128).contains(&raw.chars().count()) {
        Ok(())
    } else {
        Err("password must be 8 to 128 characters".into())
    }
}

/// Checks an `Idempotency-Key`: 1 to 128 printable ASCII characters.
pub fn idempotency_key(raw: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err("Idempotency-Key must be 1 to 128 printable ASCII characters".into())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn usernames() {
        assert_eq!(super::username(" Alice_1 ").unwrap(), "alice_1");
        assert!(super::username("ab").is_err());
        assert!(super::username("a b c").is_err());
    }
}
