//! Turns a bearer token into a [`Caller`]: signature and claims first, then the session must
//! still be live (logout and suspension end it). Live sessions are cached for a few seconds
//! so the check costs no query on the hot path; this node's own revocations evict at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use super::{AccessClaims, TokenError, TokenService};
use crate::domain::Role;
use crate::store::{Store, StoreError};

/// How long a positive session check is trusted before the database is asked again.
const SESSION_CACHE_TTL: Duration = Duration::from_secs(5);
const SESSION_CACHE_MAX: usize = 100_000;

/// The authenticated user behind a request; identity comes from the token only.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub client_id: Option<String>,
    pub role: Role,
    pub session_id: String,
    /// When the access token expires (Unix seconds).
    pub expires_at: i64,
}

impl Caller {
    fn from_claims(c: AccessClaims) -> Self {
        Self {
            user_id: c.sub,
            client_id: c.cid,
            role: c.role,
            session_id: c.sid,
            expires_at: c.exp,
        }
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
    live: DashMap<String, Instant>,
}

impl Authenticator {
    pub fn new(tokens: Arc<TokenService>, store: Store) -> Self {
        Self {
            tokens,
            store,
            live: DashMap::new(),
        }
    }

    pub async fn authenticate(&self, token: &str) -> Result<Caller, AuthError> {
        let claims = self.tokens.verify_access(token)?;
        let fresh = self
            .live
            .get(&claims.sid)
            .is_some_and(|checked| checked.elapsed() < SESSION_CACHE_TTL);
        if !fresh {
            if !self
                .store
                .session_active(&claims.sid, crate::domain::now_ms())
                .await?
            {
                self.live.remove(&claims.sid);
                return Err(AuthError::SessionEnded);
            }
            if self.live.len() >= SESSION_CACHE_MAX {
                self.live
                    .retain(|_, checked| checked.elapsed() < SESSION_CACHE_TTL);
            }
            self.live.insert(claims.sid.clone(), Instant::now());
        }
        Ok(Caller::from_claims(claims))
    }

    /// Ends a session everywhere (the database) and in this node's cache at once.
    pub async fn end_session(&self, session_id: &str) -> Result<(), StoreError> {
        self.store.revoke_session(session_id).await?;
        self.live.remove(session_id);
        Ok(())
    }
}
