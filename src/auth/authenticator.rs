//! Turns a bearer token into a [`Caller`]: signature and claims first, then the session must
//! still be live (logout, refresh-token reuse and suspension end it, on every node at once).

use std::sync::Arc;

use super::{AccessClaims, TokenError, TokenService};
use crate::domain::{Role, UserStatus};
use crate::store::{Store, StoreError, UserRow};

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
    /// Identity from the verified token; role and client from the server's own user row (a
    /// token's claims are only as trustworthy as the signing key), permissions given.
    fn new(c: &AccessClaims, user: &UserRow, role: Role, perms: Arc<[String]>) -> Self {
        Self {
            user_id: user.id.clone(),
            client_id: user.client_id.clone(),
            role,
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
        let owner = self
            .store
            .session_owner(&claims.sid, crate::domain::now_ms())
            .await?;
        // Defence in depth: a token signed with the real key must still name a session of its
        // own subject, and the rights come from the user's row, never from `role`/`cid`/`perms`
        // claims, so a leaked key cannot turn a player's session into a super admin.
        if owner.as_deref() != Some(claims.sub.as_str()) {
            return Err(AuthError::SessionEnded);
        }
        let user = self
            .store
            .user(&claims.sub)
            .await?
            .filter(|u| u.status == UserStatus::Active)
            .ok_or(AuthError::SessionEnded)?;
        let role = user.role;
        if role != claims.role || user.client_id != claims.cid {
            return Err(AuthError::SessionEnded);
        }
        let overrides = self.store.permission_overrides(&user.id).await?;
        let perms = super::permissions::effective_shared(role, &overrides);
        Ok(Caller::new(&claims, &user, role, perms))
    }

    /// Ends a session and its refresh family.
    pub async fn end_session(&self, session_id: &str) -> Result<(), StoreError> {
        self.store.revoke_session(session_id).await
    }
}
