//! Turns a bearer token into a [`Caller`]: signature and claims first, then the session must
//! still be live (logout, refresh-token reuse and suspension end it, on every node at once).

use std::sync::Arc;

use super::{AccessClaims, TokenError, TokenService};
use crate::domain::Role;
use crate::store::{Store, StoreError};

/// The authenticated user behind a request; identity comes from the token only.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub client_id: Option<String>,
    pub role: Role,
    pub session_id: String,
    /// When the access token expires (Unix seconds).
    pub expires_at: i64,
    /// Effective permissions, loaded per request (role defaults and per-user overrides).
    pub perms: Vec<String>,
}

impl Caller {
    fn from_claims(c: AccessClaims) -> Self {
        Self {
            user_id: c.sub,
            client_id: c.cid,
            role: c.role,
            session_id: c.sid,
            expires_at: c.exp,
            perms: c.perms,
        }
    }

    /// Whether the caller holds a named permission (see `permissions`).
    pub fn can(&self, permission: &str) -> bool {
        self.perms.iter().any(|p| p == permission)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("session ended")]
    SessionEnded,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Authenticator {
    pub tokens: Arc<TokenService>,
    store: Store,
}

impl Authenticator {
    pub fn new(tokens: Arc<TokenService>, store: Store) -> Self {
        Self { tokens, store }
    }

    pub async fn authenticate(&self, token: &str) -> Result<Caller, AuthError> {
        let claims = self.tokens.verify_access(token)?;
        // One primary-key read per request: a cache here would let a revoked session live on
        // other nodes until it expired, and DESIGN asks that logout ends sessions at once.
        if !self
            .store
            .session_active(&claims.sid, crate::domain::now_ms())
            .await?
        {
            return Err(AuthError::SessionEnded);
        }
        let overrides = self.store.permission_overrides(&claims.sub).await?;
        let role = claims.role;
        let mut caller = Caller::from_claims(claims);
        caller.perms = super::permissions::effective(role, &overrides);
        Ok(caller)
    }

    /// Ends a session and its refresh family.
    pub async fn end_session(&self, session_id: &str) -> Result<(), StoreError> {
        self.store.revoke_session(session_id).await
    }
}
