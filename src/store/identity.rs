//! Identity and audit storage (issue 3): rows and the `Store` methods that dispatch to the
//! SQL in `sql_identity.rs`.

use super::{Backend, Store, StoreResult, UserRow};

pub use crate::domain::NewAudit;

/// A stored audit row: its chain position and links.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub entry: NewAudit,
}

/// Filters of a user listing; every set field narrows it.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub client_id: Option<String>,
    /// Only users whose path starts with this (a subtree, the root included).
    pub under_path: Option<String>,
    pub role: Option<crate::domain::Role>,
    pub status: Option<crate::domain::UserStatus>,
    pub parent_id: Option<String>,
    pub username_prefix: Option<String>,
    pub after_id: Option<String>,
    pub limit: i64,
}

/// An encrypted secret as stored: never holds the clear text.
#[derive(Debug, Clone)]
pub struct SecretRow {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// 1 for the first document, one more on every replacement (replaced ones are kept).
    pub version: i64,
}

/// How a row's hash is made from the key, the previous hash, its seq and its content.
pub type AuditLink = fn(&[u8; 32], &str, i64, &NewAudit) -> String;

impl Store {
    /// The same store whose audit chain is keyed with `key`.
    pub fn with_audit_key(mut self, key: [u8; 32]) -> Self {
        self.audit_key = std::sync::Arc::new(key);
        self
    }

    pub fn audit_key(&self) -> &[u8; 32] {
        &self.audit_key
    }

    /// Appends one row; a deadlock or lock timeout (appenders queue on the chain head) is
    /// retried like a money write.
    pub async fn audit_append(&self, entry: &NewAudit, link: AuditLink) -> StoreResult<i64> {
        let key = self.audit_key.clone();
        let link = move |prev: &str, seq: i64, e: &NewAudit| link(&key, prev, seq, e);
        let mut attempt = 0;
        loop {
            match dispatch!(self, b => b.audit_append(entry, &link).await) {
                Err(e) if attempt < super::TRANSIENT_RETRIES && self.backend.is_transient(&e) => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(2 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    pub async fn audit_page(
        &self,
        client_id: Option<&str>,
        before_seq: Option<i64>,
        action: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<AuditRow>> {
        dispatch!(self, b => b.audit_page(client_id, before_seq, action, limit).await)
    }

    pub async fn audit_chain(&self, after_seq: i64, limit: i64) -> StoreResult<Vec<AuditRow>> {
        dispatch!(self, b => b.audit_chain(after_seq, limit).await)
    }

    pub async fn audit_head(&self) -> StoreResult<(i64, String)> {
        dispatch!(self, b => b.audit_head().await)
    }

    pub async fn list_users(&self, filter: &UserFilter) -> StoreResult<Vec<UserRow>> {
        dispatch!(self, b => b.list_users(filter).await)
    }

    pub async fn subtree(
        &self,
        path: &str,
        after_path: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<UserRow>> {
        dispatch!(self, b => b.subtree(path, after_path, limit).await)
    }

    pub async fn subtree_count(&self, path: &str) -> StoreResult<i64> {
        dispatch!(self, b => b.subtree_count(path).await)
    }

    pub async fn set_user_status(
        &self,
        id: &str,
        status: crate::domain::UserStatus,
        now_ms: i64,
    ) -> StoreResult<bool> {
        {
            let result = dispatch!(self, b => b.set_user_status(id, status, now_ms).await);
            self.changed();
            result
        }
    }

    pub async fn rename_user(&self, id: &str, username: &str, now_ms: i64) -> StoreResult<()> {
        {
            let result = dispatch!(self, b => b.rename_user(id, username, now_ms).await);
            self.changed();
            result
        }
    }

    pub async fn set_password(
        &self,
        id: &str,
        hash: &str,
        keep_session: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<()> {
        {
            let result = dispatch!(self, b => b.set_password(id, hash, keep_session, now_ms).await);
            self.changed();
            result
        }
    }

    pub async fn revoke_client_sessions(&self, client_id: &str) -> StoreResult<()> {
        {
            let result = dispatch!(self, b => b.revoke_client_sessions(client_id).await);
            self.changed();
            result
        }
    }

    pub async fn insert_users_bulk(&self, users: &[UserRow]) -> StoreResult<()> {
        dispatch!(self, b => b.insert_users_bulk(users).await)
    }

    pub async fn permission_overrides(&self, user_id: &str) -> StoreResult<Vec<(String, String)>> {
        if let Some(hit) = self.cache.overrides.get(user_id) {
            return Ok(hit.clone());
        }
        let generation = self.cache.generation();
        let rows = dispatch!(self, b => b.permission_overrides(user_id).await)?;
        self.cache
            .put(generation, &self.cache.overrides, user_id, rows.clone());
        Ok(rows)
    }

    pub async fn set_permission(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        permission: &str,
        effect: Option<&str>,
        by: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        {
            let result = dispatch!(self, b => b.set_permission(user_id, client_id, permission, effect, by, now_ms).await);
            self.changed();
            result
        }
    }

    pub async fn login_failures(
        &self,
        key: &str,
        since_ms: i64,
    ) -> StoreResult<(i64, Option<i64>)> {
        dispatch!(self, b => b.login_failures(key, since_ms).await)
    }

    pub async fn record_login_failure(
        &self,
        keys: &[&str],
        client_id: Option<&str>,
        now_ms: i64,
        prune_before: i64,
    ) -> StoreResult<()> {
        dispatch!(self, b => b.record_login_failure(keys, client_id, now_ms, prune_before).await)
    }

    pub async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        dispatch!(self, b => b.clear_login_failures(key).await)
    }

    pub async fn client_settings(&self, client_id: &str) -> StoreResult<Option<String>> {
        dispatch!(self, b => b.client_settings(client_id).await)
    }

    pub async fn put_client_settings(
        &self,
        client_id: &str,
        settings: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        dispatch!(self, b => b.put_client_settings(client_id, settings, now_ms).await)
    }

    pub async fn client_secret(
        &self,
        client_id: &str,
        name: &str,
    ) -> StoreResult<Option<SecretRow>> {
        dispatch!(self, b => b.client_secret(client_id, name).await)
    }

    pub async fn client_secrets(&self, client_id: &str) -> StoreResult<Vec<SecretRow>> {
        dispatch!(self, b => b.client_secrets(client_id).await)
    }

    /// Stores (or replaces) a sealed secret; returns its version. This node's provider
    /// registry sees the change at once, other nodes within one epoch poll.
    pub async fn put_client_secret(&self, secret: &SecretRow) -> StoreResult<i64> {
        let result = dispatch!(self, b => b.put_client_secret(secret).await);
        self.cache.credentials_changed();
        result
    }

    /// `(client_id, name, version)` of every stored secret.
    pub async fn secret_versions(&self) -> StoreResult<Vec<(String, String, i64)>> {
        dispatch!(self, b => b.secret_versions().await)
    }

    /// One version of a secret, current or replaced.
    pub async fn client_secret_version(
        &self,
        client_id: &str,
        name: &str,
        version: i64,
    ) -> StoreResult<Option<SecretRow>> {
        dispatch!(self, b => b.client_secret_version(client_id, name, version).await)
    }

    /// Moves whenever provider credentials may have changed (here or on another node): the
    /// provider registry rebuilds what changed when it sees a new value.
    pub fn credentials_generation(&self) -> u64 {
        self.cache.credentials_generation()
    }
}
