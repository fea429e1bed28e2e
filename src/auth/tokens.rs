//! Access tokens (HS256 JWT, algorithm pinned, `typ`/`iss`/`aud`/`exp` checked) and opaque
//! refresh tokens (256 random bits, stored only as a SHA-256 hash).
//!
//! Key rotation: the current key signs and names itself in the header's `kid`; previous keys
//! (`jwt_previous_secrets`) only verify, so tokens signed before a rotation keep working until
//! their key is removed. A `kid` naming no configured key is refused; a token with no `kid`
//! (signed before key ids existed) is tried against every configured key.

use std::sync::Arc;

use base64::Engine;
use dashmap::DashMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::Role;

pub const ISSUER: &str = "nashub";
pub const AUDIENCE: &str = "nashub-api";
const ACCESS_TYPE: &str = "access";
/// Seconds of clock skew allowed on `exp`.
const LEEWAY_SECS: i64 = 5;
/// Verified tokens kept before the map is simply emptied (a bound, not an LRU). Each entry is
/// under 1 KB; a hub holds one token per live session, so this covers the busy ones.
const VERIFIED_MAX: usize = 16_384;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    /// The user's client; absent for platform users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    pub role: Role,
    pub perms: Vec<String>,
    pub sid: String,
    pub typ: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
}

/// The `kid` of a signing secret: derived, so every node with the same secret names it the
/// same way and no setting can disagree with the key. Domain-separated, truncated SHA-256: it
/// names the key without helping anyone guess it.
pub fn key_id(secret: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"nashub jwt kid\0");
    hasher.update(secret);
    hex::encode(&hasher.finalize()[..8])
}

pub struct TokenService {
    encoding: EncodingKey,
    /// Header of every token signed here (HS256, the current key's `kid`).
    header: Header,
    /// The current key first, then the previous ones, by `kid`.
    decoding: Vec<(String, DecodingKey)>,
    validation: Validation,
    access_ttl_secs: i64,
    /// Tokens whose signature and claims checked out, by their exact text. Every request
    /// carries its token; decoding and verifying it again was a sixth of the HTTP workers' CPU
    /// per deposit. The signature cannot change for the same text, so only `exp` is checked
    /// again on a hit; whether the session is still live is the authenticator's question,
    /// asked every time.
    verified: DashMap<String, Arc<AccessClaims>>,
}

impl TokenService {
    pub fn new(secret: &[u8], access_ttl_secs: i64) -> Self {
        Self::with_previous(secret, &[], access_ttl_secs)
    }

    /// `secret` signs; it and each of `previous` verify.
    pub fn with_previous(secret: &[u8], previous: &[Vec<u8>], access_ttl_secs: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS as u64;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key_id(secret));
        let mut decoding: Vec<(String, DecodingKey)> = Vec::new();
        for key in std::iter::once(secret).chain(previous.iter().map(Vec::as_slice)) {
            let kid = key_id(key);
            if !decoding.iter().any(|(k, _)| *k == kid) {
                decoding.push((kid, DecodingKey::from_secret(key)));
            }
        }
        Self {
            encoding: EncodingKey::from_secret(secret),
            header,
            decoding,
            validation,
            access_ttl_secs,
            verified: DashMap::new(),
        }
    }

    pub fn access_ttl_secs(&self) -> i64 {
        self.access_ttl_secs
    }

    pub fn issue_access(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        role: Role,
        session_id: &str,
    ) -> String {
        let perms = super::permissions::effective(role, &[]);
        self.issue_access_with(user_id, client_id, role, session_id, perms)
    }

    /// An access token whose `perms` claim is the given set (informational: the server loads
    /// the current set on every request).
    pub fn issue_access_with(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        role: Role,
        session_id: &str,
        perms: Vec<String>,
    ) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            cid: client_id.map(str::to_owned),
            role,
            perms,
            sid: session_id.to_owned(),
            typ: ACCESS_TYPE.to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + self.access_ttl_secs,
        };
        jsonwebtoken::encode(&self.header, &claims, &self.encoding)
            .expect("HS256 signing with a valid key cannot fail")
    }

    /// Shared, not copied: a hit costs no allocation.
    pub fn verify_access(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        self.verify_access_at(token, chrono::Utc::now().timestamp())
    }

    /// `verify_access` as of `now` (Unix seconds) for tokens already verified once.
    fn verify_access_at(&self, token: &str, now: i64) -> Result<Arc<AccessClaims>, TokenError> {
        if let Some(claims) = self.verified.get(token) {
            return if claims.exp < now - LEEWAY_SECS {
                drop(claims);
                self.verified.remove(token);
                Err(TokenError::Expired)
            } else {
                Ok(claims.clone())
            };
        }
        let claims = Arc::new(self.decode_access(token)?);
        if self.verified.len() >= VERIFIED_MAX {
            self.verified.clear();
        }
        self.verified.insert(token.to_owned(), Arc::clone(&claims));
        Ok(claims)
    }

    fn decode_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let mut result = Err(TokenError::Invalid);
        for (kid, key) in &self.decoding {
            if header.kid.as_ref().is_some_and(|k| k != kid) {
                continue;
            }
            result = self.decode_with(token, key);
            // Expired means the signature checked out (it is verified first): this key.
            if header.kid.is_some() || !matches!(result, Err(TokenError::Invalid)) {
                break;
            }
        }
        result
    }

    fn decode_with(&self, token: &str, key: &DecodingKey) -> Result<AccessClaims, TokenError> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            },
        )?;
        if data.claims.typ != ACCESS_TYPE {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }
}

/// A fresh opaque refresh token: 32 random bytes, URL-safe base64.
pub fn new_refresh_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps of a refresh token.
pub fn refresh_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_refuses_tampering() {
        let service = TokenService::new(&[7_u8; 32], 900);
        let token = service.issue_access("u1", Some("c1"), Role::Player, "s1");
        let claims = service.verify_access(&token).unwrap();
        assert_eq!(
            (
                claims.sub.as_str(),
                claims.cid.as_deref(),
                claims.sid.as_str()
            ),
            ("u1", Some("c1"), "s1")
        );
        let other = TokenService::new(&[8_u8; 32], 900);
        assert!(other.verify_access(&token).is_err(), "wrong key must fail");
        let mut parts: Vec<&str> = token.split('.').collect();
        let none_header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"none","typ":"JWT"}"#);
        parts[0] = &none_header;
        assert!(
            service
                .verify_access(&format!("{}.{}.", parts[0], parts[1]))
                .is_err(),
            "alg none must fail"
        );
        let expired =
            TokenService::new(&[7_u8; 32], -60).issue_access("u1", None, Role::Player, "s1");
        assert!(matches!(
            service.verify_access(&expired),
            Err(TokenError::Expired)
        ));
    }

    #[test]
    fn a_verified_token_is_remembered_only_until_it_expires_and_only_by_its_exact_text() {
        let service = TokenService::new(&[7_u8; 32], 900);
        let token = service.issue_access("u1", Some("c1"), Role::Player, "s1");
        let first = service.verify_access(&token).unwrap();
        assert_eq!(service.verified.len(), 1);
        let again = service.verify_access(&token).unwrap();
        assert_eq!((&again.sub, again.exp), (&first.sub, first.exp));

        // A changed signature or payload is a different text: decoded, and refused.
        let mut forged = token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert!(service.verify_access(&forged).is_err());
        let (head, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let other_claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"admin","role":"super_admin"}"#);
        assert!(
            service
                .verify_access(&format!("{head}.{other_claims}.{sig}"))
                .is_err()
        );

        // Past exp (and the leeway) the remembered token is refused and forgotten.
        let late = first.exp + LEEWAY_SECS + 1;
        assert!(matches!(
            service.verify_access_at(&token, late),
            Err(TokenError::Expired)
        ));
        assert!(service.verified.is_empty());
        assert!(service.verify_access_at(&token, first.exp).is_ok());
    }

    #[test]
    fn previous_keys_verify_by_kid_and_never_sign() {
        let (old, new) = ([1_u8; 32], [2_u8; 32]);
        let before = TokenService::new(&old, 900);
        let old_token = before.issue_access("u1", None, Role::Player, "s1");
        let rotating = TokenService::with_previous(&new, &[old.to_vec()], 900);
        assert!(rotating.verify_access(&old_token).is_ok());
        let new_token = rotating.issue_access("u1", None, Role::Player, "s1");
        let kid = jsonwebtoken::decode_header(&new_token).unwrap().kid;
        assert_eq!(kid.as_deref(), Some(key_id(&new).as_str()));
        // Nodes not yet rotated accept the new key only once it is listed with them.
        assert!(before.verify_access(&new_token).is_err());
        let after = TokenService::new(&new, 900);
        assert!(after.verify_access(&new_token).is_ok());
        assert!(after.verify_access(&old_token).is_err());
        // A token naming the right key under another kid is refused: the kid selects.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key_id(&old));
        let claims = rotating.verify_access(&new_token).unwrap();
        let mislabeled =
            jsonwebtoken::encode(&header, &*claims, &EncodingKey::from_secret(&new)).unwrap();
        assert!(rotating.verify_access(&mislabeled).is_err());
        // No kid (signed before key ids): any configured key.
        let bare = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &*claims,
            &EncodingKey::from_secret(&old),
        )
        .unwrap();
        assert!(rotating.verify_access(&bare).is_ok());
        assert!(after.verify_access(&bare).is_err());
    }
}
