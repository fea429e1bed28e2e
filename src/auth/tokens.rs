//! Access tokens (HS256 JWT, algorithm pinned, `typ`/`iss`/`aud`/`exp` checked) and opaque
//! refresh tokens (256 random bits, stored only as a SHA-256 hash).

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::Role;

pub const ISSUER: &str = "nashub";
pub const AUDIENCE: &str = "nashub-api";
const ACCESS_TYPE: &str = "access";

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

pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl_secs: i64,
}

impl TokenService {
    pub fn new(secret: &[u8], access_ttl_secs: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl_secs,
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
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with a valid key cannot fail")
    }

    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
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
}
