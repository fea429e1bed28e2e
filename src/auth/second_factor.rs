//! The staff second factor (issue 19): TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, one step
//! of skew) through `totp-rs`, the enrolment QR code (SVG data URI), recovery codes (80 random
//! bits each, kept as SHA-256 hashes: high entropy makes a slow hash unnecessary), and the
//! short-lived challenge tokens between password and code.

use base64::Engine;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, TOTP};

/// Seconds per TOTP step.
pub const STEP_SECS: u64 = 30;
/// Recovery codes issued at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// Lifetime of a login or enrolment challenge.
pub const CHALLENGE_TTL_MS: i64 = 5 * 60_000;

fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> Option<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP_SECS,
        secret,
        Some(issuer.replace(':', " ")),
        account.replace(':', " "),
    )
    .ok()
}

/// A new random secret (160 bits, RFC 4226's recommendation).
pub fn new_secret() -> Vec<u8> {
    let mut bytes = vec![0_u8; 20];
    rand::fill(&mut bytes[..]);
    bytes
}

/// What an authenticator app needs: the base32 secret, the `otpauth://` URL and that URL as a
/// QR code (`data:image/svg+xml;base64,...`).
pub fn enrolment(secret: &[u8], issuer: &str, account: &str) -> Option<(String, String, String)> {
    let t = totp(secret.to_vec(), issuer, account)?;
    let url = t.get_url();
    let svg = qrcode::QrCode::new(url.as_bytes())
        .ok()?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let uri = format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    );
    Some((t.get_secret_base32(), url, uri))
}

/// The step `code` belongs to at `now_secs` (one step of skew either way), if it is valid.
pub fn matching_step(secret: &[u8], code: &str, now_secs: u64) -> Option<i64> {
    let t = totp(secret.to_vec(), "nashub", "check")?;
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_step = now_secs / STEP_SECS;
    [now_step.saturating_sub(1), now_step, now_step + 1]
        .into_iter()
        .find(|&step| constant_time_eq(t.generate(step * STEP_SECS).as_bytes(), code.as_bytes()))
        .map(|s| s as i64)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `RECOVERY_CODES` new codes (`xxxx-xxxx-xxxx-xxxx`, base32) and their hashes.
pub fn new_recovery_codes() -> Vec<(String, String)> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0_u8; 10];
            rand::fill(&mut bytes);
            let text = base32_lower(&bytes);
            let code = text
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-");
            let hash = recovery_code_hash(&code);
            (code, hash)
        })
        .collect()
}

/// The stored form of a recovery code (dashes, spaces and case ignored).
pub fn recovery_code_hash(code: &str) -> String {
    let canonical: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0_u32, 0);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// A new challenge token and its stored hash.
pub fn new_challenge() -> (String, String) {
    let token = super::tokens::new_refresh_token();
    let hash = super::tokens::refresh_token_hash(&token);
    (token, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vector_and_skew() {
        // RFC 6238 appendix B, SHA-1, T = 59: 94287082 (8 digits); its last 6 digits.
        let secret = b"12345678901234567890".to_vec();
        assert_eq!(matching_step(&secret, "287082", 59), Some(1));
        assert_eq!(matching_step(&secret, "287082", 59 + 30), Some(1));
        assert_eq!(matching_step(&secret, "287082", 59 + 90), None);
        assert_eq!(matching_step(&secret, "28708", 59), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_canonically() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let (code, hash) = &codes[0];
        assert_eq!(code.len(), 19);
        assert_eq!(
            &recovery_code_hash(&code.to_uppercase().replace('-', " ")),
            hash
        );
        let mut hashes: Vec<_> = codes.iter().map(|c| &c.1).collect();
        hashes.sort();
        hashes.dedup();
        assert_eq!(hashes.len(), RECOVERY_CODES);
    }
}
