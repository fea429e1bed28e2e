//! Storage: everything the hub keeps durably, behind one `Store` type.
//!
//! The SQL lives once, in `sql.rs`, and is compiled twice: `sqlite.rs` and `mysql.rs` each
//! `include!` it with their own `Db` type and dialect constants, so both backends run the same
//! statements and the service code never names a backend (DESIGN section 3). Money writes are
//! guarded in SQL (`allow_negative = 1 OR balance >= -delta`), so no caller can overdraw an
//! account or lose an update, whichever node or actor sends them.

mod mysql;
mod sqlite;
mod types;

pub use types::*;

use std::time::Duration;

/// Which database a URL points at, and how to reach it.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    /// Connections for reads (and, on MySQL, writes).
    pub max_connections: u32,
}

#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::Backend),
    MySql(mysql::Backend),
}

/// Runs the same expression against whichever backend this store uses.
macro_rules! dispatch {
    ($self:ident, $b:ident => $e:expr) => {
        match &$self.backend {
            Backend::Sqlite($b) => $e,
            Backend::MySql($b) => $e,
        }
    };
}

mod notifications;
pub use notifications::{NotificationQuery, NotificationRow};

impl Store {
    /// Connects and applies pending migrations.
    pub async fn connect(options: &StoreOptions) -> StoreResult<Self> {
        let backend =
            if options.url.starts_with("mysql://") || options.url.starts_with("mariadb://") {
                Backend::MySql(mysql::Backend::connect(options).await?)
            } else if options.url.starts_with("sqlite:") {
                Backend::Sqlite(sqlite::Backend::connect(options).await?)
            } else {
                return Err(StoreError::Config(format!(
                    "database URL must start with sqlite: or mysql:// (got {:?})",
                    options.url.split(':').next().unwrap_or_default()
                )));
            };
        let store = Self { backend };
        dispatch!(store, b => b.migrate().await)?;
        Ok(store)
    }

    pub fn backend_name(&self) -> &'static str {
        dispatch!(self, b => b.name())
    }

    pub async fn ping(&self) -> StoreResult<()> {
        dispatch!(self, b => b.ping().await)
    }

    pub async fn insert_client(
        &self,
        client: &ClientRow,
        accounts: &[NewAccount],
    ) -> StoreResult<()> {
        dispatch!(self, b => b.insert_client(client, accounts).await)
    }

    pub async fn client(&self, id: &str) -> StoreResult<Option<ClientRow>> {
        dispatch!(self, b => b.client(id).await)
    }

    pub async fn client_by_code(&self, code: &str) -> StoreResult<Option<ClientRow>> {
        dispatch!(self, b => b.client_by_code(code).await)
    }

    pub async fn list_clients(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ClientRow>> {
        dispatch!(self, b => b.list_clients(after, limit).await)
    }

    pub async fn update_client(
        &self,
        id: &str,
        name: Option<&str>,
        status: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, b => b.update_client(id, name, status, now_ms).await)
    }

    pub async fn insert_user(
        &self,
        user: &UserRow,
        wallet: Option<&NewAccount>,
    ) -> StoreResult<()> {
        dispatch!(self, b => b.insert_user(user, wallet).await)
    }

    pub async fn user(&self, id: &str) -> StoreResult<Option<UserRow>> {
        dispatch!(self, b => b.user(id).await)
    }

    pub async fn user_by_login(&self, scope: &str, username: &str) -> StoreResult<Option<UserRow>> {
        dispatch!(self, b => b.user_by_login(scope, username).await)
    }

    pub async fn children(
        &self,
        parent_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<UserRow>> {
        dispatch!(self, b => b.children(parent_id, after, limit).await)
    }

    pub async fn users_by_ids(&self, ids: &[&str]) -> StoreResult<Vec<UserRow>> {
        dispatch!(self, b => b.users_by_ids(ids).await)
    }

    pub async fn insert_session(
        &self,
        session: &SessionRow,
        refresh_hash: &str,
    ) -> StoreResult<()> {
        dispatch!(self, b => b.insert_session(session, refresh_hash).await)
    }

    pub async fn session_active(&self, session_id: &str, now_ms: i64) -> StoreResult<bool> {
        dispatch!(self, b => b.session_active(session_id, now_ms).await)
    }

    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> StoreResult<RotateOutcome> {
        dispatch!(self, b => b.rotate_refresh(old_hash, new_hash, now_ms).await)
    }

    pub async fn revoke_session(&self, session_id: &str) -> StoreResult<()> {
        dispatch!(self, b => b.revoke_session(session_id).await)
    }

    pub async fn account(&self, id: &str) -> StoreResult<Option<AccountRow>> {
        dispatch!(self, b => b.account(id).await)
    }

    /// Commits one balanced journal entry, or replays the first result of its idempotency key.
    pub async fn post_entry(&self, entry: &NewEntry) -> StoreResult<PostOutcome> {
        entry.assert_balanced();
        let mut attempt = 0;
        loop {
            let result = dispatch!(self, b => b.post_entry(entry).await);
            match result {
                Err(StoreError::Database(e))
                    if attempt < TRANSIENT_RETRIES && self.is_transient(&e) =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(2 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    pub async fn account_history(
        &self,
        account_id: &str,
        query: &HistoryQuery,
    ) -> StoreResult<Vec<HistoryItem>> {
        dispatch!(self, b => b.account_history(account_id, query).await)
    }

    /// The first broken ledger invariant, if any (see `ops::check_ledger`).
    pub async fn ledger_violation(&self) -> StoreResult<Option<String>> {
        dispatch!(self, b => b.ledger_violation().await)
    }

    fn is_transient(&self, e: &sqlx::Error) -> bool {
        match &self.backend {
            Backend::Sqlite(_) => sqlite::is_transient(e),
            Backend::MySql(_) => mysql::is_transient(e),
        }
    }
}

/// Deadlocks and lock timeouts are retried this many times before the caller sees them.
const TRANSIENT_RETRIES: u32 = 5;
