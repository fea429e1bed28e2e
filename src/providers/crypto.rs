//! Wire cryptography of the protocols: JDB's AES-128-CBC with NUL padding and URL-safe base64,
//! LuckySports' HMAC-SHA256 request signature. Kept together so both adapter and simulator use
//! exactly the same code.

use aes::Aes128;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const BLOCK: usize = 16;

/// AES-128-CBC over `plain` right-padded with NUL bytes to a multiple of 16 (nothing added when
/// already aligned), then URL-safe base64 without `=`.
pub fn jdb_encrypt(key: &[u8; 16], iv: &[u8; 16], plain: &[u8]) -> String {
    let cipher = Aes128::new(key.into());
    let mut data = plain.to_vec();
    let rem = data.len() % BLOCK;
    if rem != 0 || data.is_empty() {
        data.resize(data.len() + (BLOCK - rem), 0);
    }
    let mut prev = *iv;
    for chunk in data.chunks_mut(BLOCK) {
        for (b, p) in chunk.iter_mut().zip(prev.iter()) {
            *b ^= p;
        }
        let block: &mut [u8; BLOCK] = chunk.try_into().expect("chunk of 16");
        cipher.encrypt_block(block.into());
        prev = *block;
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// Inverse of [`jdb_encrypt`]: accepts `=` padding or none, strips trailing bytes 0x00–0x20
/// (NUL, blanks and PKCS#7 padders alike). None if it is not base64 of whole blocks.
pub fn jdb_decrypt(key: &[u8; 16], iv: &[u8; 16], x: &str) -> Option<Vec<u8>> {
    let mut data = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(x.trim_end_matches('='))
        .ok()?;
    if data.is_empty() || data.len() % BLOCK != 0 {
        return None;
    }
    let cipher = Aes128::new(key.into());
    let mut prev = *iv;
    for chunk in data.chunks_mut(BLOCK) {
        let block: &mut [u8; BLOCK] = chunk.try_into().expect("chunk of 16");
        let this = *block;
        cipher.decrypt_block(block.into());
        for (b, p) in block.iter_mut().zip(prev.iter()) {
            *b ^= p;
        }
        prev = this;
    }
    while data.last().is_some_and(|b| *b <= 0x20) {
        data.pop();
    }
    Some(data)
}

/// Lowercase hex HMAC-SHA256 of `timestamp + "." + body`.
pub fn luckysports_signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time check of a hex signature.
pub fn luckysports_verify(secret: &[u8], timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Ok(given) = hex::decode(signature) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// A 16-character configuration string as raw key bytes.
pub fn key16(text: &str) -> Option<[u8; 16]> {
    text.as_bytes().try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jdb_round_trip_pads_with_nul() {
        let key = key16("key1234567Sample").unwrap();
        let iv = key16("iv12345678Sample").unwrap();
        for plain in [&b"{\"action\":47}"[..], &[b'a'; 16][..], &[b'b'; 33][..]] {
            let x = jdb_encrypt(&key, &iv, plain);
            assert!(!x.contains('=') && !x.contains('+') && !x.contains('/'));
            assert_eq!(jdb_decrypt(&key, &iv, &x).unwrap(), plain);
            assert_eq!(jdb_decrypt(&key, &iv, &format!("{x}==")).unwrap(), plain);
        }
        // Aligned input gets no extra block.
        let x = jdb_encrypt(&key, &iv, &[b'a'; 16]);
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(x)
                .unwrap()
                .len(),
            16
        );
        assert!(jdb_decrypt(&key, &iv, "not base64!").is_none());
    }

    /// The sample vector of JDB's AES sample code (as copied into public integrations).
    #[test]
    fn jdb_sample_vector() {
        let key = key16("key1234567Sample").unwrap();
        let iv = key16("iv12345678Sample").unwrap();
        let x = "JYUwK_t1athMnX5mbEQ_stdBbYYgfIeC7utswa5A3Dw4vuORvpkTDWfmkFqpPtOPr_PJJA2WJLD4dBZV0qCnWAmBB7Fpuy7Rkgpbs-Xez6WlpKCApE4uY2TC0QegtWnj";
        let plain = br#"{"action":47,"ts":1632385601439,"lang":"en","gType":"0","mType":"8001","windowMode":"2"}"#;
        assert_eq!(jdb_decrypt(&key, &iv, x).unwrap(), plain);
        // Our encryption (NUL padding, no `=`) produces exactly the sample.
        assert_eq!(jdb_encrypt(&key, &iv, plain), x);
    }

    #[test]
    fn luckysports_signature_verifies_and_detects_tampering() {
        let sig = luckysports_signature(b"secret", "1700000000", b"{}");
        assert_eq!(sig.len(), 64);
        assert!(luckysports_verify(b"secret", "1700000000", b"{}", &sig));
        assert!(!luckysports_verify(b"secret", "1700000001", b"{}", &sig));
        assert!(!luckysports_verify(b"other", "1700000000", b"{}", &sig));
    }
}
