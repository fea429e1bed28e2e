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
    pub perms: Arc<[String]>,
}

impl Caller {
    /// The token's `perms` claim is informational; the caller's permissions are given.
    fn from_claims(c: &AccessClaims, perms: Arc<[String]>) -> Self {
        Self {
            user_id: c.sub.clone(),
            client_id: c.cid.clone(),
            role: c.role,
            session_id: c.sid.clone(),
            expires_at: c.exp,
            perms,
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
        // Asked on every request, even for a remembered token: the store's read cache forgets
        // an ended session within one epoch poll (50 ms) on every node, so logout ends it.
        if !self
            .store
            .session_active(&claims.sid, crate::domain::now_ms())
            .await?
        {
            return Err(AuthError::SessionEnded);
        }
        let overrides = self.store.permission_overrides(&claims.sub).await?;
        let perms = super::permissions::effective_shared(claims.role, &overrides);
        Ok(Caller::from_claims(&claims, perms))
    }

    /// Ends a session and its refresh family.
    pub async fn end_session(&self, session_id: &str) -> Result<(), StoreError> {
        self.store.revoke_session(session_id).await
    }
}
