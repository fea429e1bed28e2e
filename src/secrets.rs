//! Secrets at rest (provider credentials, gateway keys): AES-256-GCM with a fresh random 96-bit
//! nonce per encryption, the owning record's id as associated data (a ciphertext copied onto
//! another record does not open), and a key id so keys can rotate: a sealed value names the
//! key that opens it, and older keys can be kept for opening only.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use sha2::{Digest, Sha256};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A sealed value as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    /// Base64 of the 12-byte nonce.
    pub nonce: String,
    /// Base64 of ciphertext followed by the 16-byte tag.
    pub ciphertext: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("no key with id {0}")]
    UnknownKey(String),
    #[error("secret cannot be opened (altered, or sealed for another record)")]
    Open,
}

pub struct SecretBox {
    /// The first key seals; every key opens what names it.
    keys: Vec<(String, Aes256Gcm)>,
}

/// A key's public name: the first 16 hex digits of SHA-256 over a label and the key.
pub fn key_id(key: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"nashub secrets key id");
    h.update(key);
    hex::encode(h.finalize())[..16].to_owned()
}

impl SecretBox {
    pub fn new(key: &[u8; 32]) -> Self {
        Self::with_previous(key, &[])
    }

    /// `current` seals; `previous` keys still open values sealed before a rotation.
    pub fn with_previous(current: &[u8; 32], previous: &[[u8; 32]]) -> Self {
        let keys = std::iter::once(current)
            .chain(previous)
            .map(|k| (key_id(k), Aes256Gcm::new(&Key::<Aes256Gcm>::from(*k))))
            .collect();
        Self { keys }
    }

    /// Whether one of this box's keys has this id (it can open what names it).
    pub fn knows(&self, key_id: &str) -> bool {
        self.keys.iter().any(|(id, _)| id == key_id)
    }

    pub fn current_key_id(&self) -> &str {
        &self.keys[0].0
    }

    pub fn seal(&self, record_id: &str, plaintext: &[u8]) -> Sealed {
        let (key_id, cipher) = &self.keys[0];
        let mut nonce = [0_u8; 12];
        rand::fill(&mut nonce);
        let ciphertext = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: record_id.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a bounded message cannot fail");
        Sealed {
            key_id: key_id.clone(),
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(ciphertext),
        }
    }

    pub fn open(&self, record_id: &str, sealed: &Sealed) -> Result<Vec<u8>, SecretError> {
        let cipher = self
            .keys
            .iter()
            .find(|(id, _)| *id == sealed.key_id)
            .map(|(_, c)| c)
            .ok_or_else(|| SecretError::UnknownKey(sealed.key_id.clone()))?;
        let nonce: [u8; 12] = B64
            .decode(&sealed.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or(SecretError::Open)?;
        let ciphertext = B64
            .decode(&sealed.ciphertext)
            .map_err(|_| SecretError::Open)?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &ciphertext,
                    aad: record_id.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flip(b64: &str, at: usize) -> String {
        let mut bytes = B64.decode(b64).unwrap();
        bytes[at] ^= 1;
        B64.encode(bytes)
    }

    #[test]
    fn round_trip_and_every_tampering_fails() {
        let sb = SecretBox::new(&[7; 32]);
        let sealed = sb.seal("rec-1", b"api-key-123");
        assert_eq!(sb.open("rec-1", &sealed).unwrap(), b"api-key-123");
        assert_ne!(
            B64.decode(&sealed.ciphertext).unwrap()[..11],
            b"api-key-123"[..]
        );

        // Ciphertext body, nonce, tag (the last 16 bytes), associated data.
        let mut c = sealed.clone();
        c.ciphertext = flip(&sealed.ciphertext, 0);
        assert_eq!(sb.open("rec-1", &c), Err(SecretError::Open));
        let mut n = sealed.clone();
        n.nonce = flip(&sealed.nonce, 5);
        assert_eq!(sb.open("rec-1", &n), Err(SecretError::Open));
        let len = B64.decode(&sealed.ciphertext).unwrap().len();
        let mut t = sealed.clone();
        t.ciphertext = flip(&sealed.ciphertext, len - 1);
        assert_eq!(sb.open("rec-1", &t), Err(SecretError::Open));
        assert_eq!(sb.open("rec-2", &sealed), Err(SecretError::Open));
        // Another key cannot open it; the key id says which key is missing.
        let other = SecretBox::new(&[8; 32]);
        assert!(matches!(
            other.open("rec-1", &sealed),
            Err(SecretError::UnknownKey(_))
        ));
        let mut forged = sealed.clone();
        forged.key_id = other.current_key_id().to_owned();
        assert_eq!(other.open("rec-1", &forged), Err(SecretError::Open));
    }

    #[test]
    fn rotation_opens_old_values_and_seals_with_the_new_key() {
        let old = SecretBox::new(&[1; 32]);
        let sealed = old.seal("r", b"x");
        let rotated = SecretBox::with_previous(&[2; 32], &[[1; 32]]);
        assert_eq!(rotated.open("r", &sealed).unwrap(), b"x");
        assert_ne!(rotated.seal("r", b"x").key_id, sealed.key_id);
    }

    #[test]
    fn nonces_never_repeat() {
        let sb = SecretBox::new(&[3; 32]);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100_000 {
            assert!(seen.insert(sb.seal("r", b"same").nonce), "nonce repeated");
        }
    }
}
