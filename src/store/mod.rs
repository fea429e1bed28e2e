//! Storage: everything the hub keeps durably, behind one `Store` type.
//!
//! The SQL lives once, in `sql*.rs`, and is compiled twice: `sqlite.rs` and `mysql.rs` each
//! `include!` it with their own `Db` type and dialect constants, so both backends run the same
//! statements and the service code never names a backend (DESIGN section 3).
//!
//! Money is written by one algorithm, `ledger::write::write`: lock the touched accounts in id
//! order, look up the idempotency keys, decide every entry in `ledger::batch_plan::plan` (pure), write
//! the rows it describes, and update each changed account once `WHERE version = <read> AND
//! closed = 0`, so no caller can overdraw an account or lose an update, whichever node or actor
//! sends them. Backends only execute its statements: sqlx (`ledger/sql.rs`, MySQL batches and
//! the provider path on both) and the SQLite writer thread (`ledger/sqlite_writer.rs`).

pub mod audit_chain;
mod ledger;
mod mysql;
mod read_cache;
mod sql_text;
mod sqlite;
mod types;

// `cargo fmt` formats the files it reaches through `mod`; these SQL files are `include!`d into
// `sqlite.rs` and `mysql.rs`, so they are named here too, for rustfmt only: `cfg(any())` is
// never true, the compiler skips them (and rustfmt, which ignores `cfg`, formats them).
#[cfg(any())]
#[path = "sql.rs"]
mod fmt_sql;
#[cfg(any())]
#[path = "sql_channels.rs"]
mod fmt_sql_channels;
#[cfg(any())]
#[path = "sql_commission.rs"]
mod fmt_sql_commission;
#[cfg(any())]
#[path = "sql_games.rs"]
mod fmt_sql_games;
#[cfg(any())]
#[path = "sql_identity.rs"]
mod fmt_sql_identity;
#[cfg(any())]
#[path = "ledger/sql.rs"]
mod fmt_sql_ledger;
#[cfg(any())]
#[path = "sql_notifications.rs"]
mod fmt_sql_notifications;
#[cfg(any())]
#[path = "sql_payments.rs"]
mod fmt_sql_payments;
#[cfg(any())]
#[path = "sql_protection.rs"]
mod fmt_sql_protection;
#[cfg(any())]
#[path = "sql_providers.rs"]
mod fmt_sql_providers;
#[cfg(any())]
#[path = "sql_reads.rs"]
mod fmt_sql_reads;
#[cfg(any())]
#[path = "sql_report_agents.rs"]
mod fmt_sql_report_agents;
#[cfg(any())]
#[path = "sql_report_spans.rs"]
mod fmt_sql_report_spans;
#[cfg(any())]
#[path = "sql_reports.rs"]
mod fmt_sql_reports;
#[cfg(any())]
#[path = "sql_settlements.rs"]
mod fmt_sql_settlements;

pub use identity::{AuditRow, NewAudit, SealedValue, SecretRow, UserFilter};
pub use ledger::group_commit::{AfterCommit, GroupCommitOptions};
pub use ledger::sqlite_wal_sync::WalSyncFaults;
pub use types::*;

/// Which database a URL points at, and how to reach it.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    /// Connections for reads (and, on MySQL, writes).
    pub max_connections: u32,
    /// How long an acquire (and the first connection) waits.
    pub acquire_timeout: std::time::Duration,
    pub group_commit: GroupCommitOptions,
    /// Injected WAL sync faults (SQLite; drills and tests only).
    pub wal_sync_faults: WalSyncFaults,
}

#[derive(Clone)]
pub struct Store {
    backend: Backend,
    committer: ledger::group_commit::GroupCommitter,
    cache: std::sync::Arc<read_cache::ReadCache>,
    /// Keys the audit hash chain (see `audit::chain`); set from the secrets key at start-up.
    audit_key: std::sync::Arc<[u8; 32]>,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::Backend),
    MySql(mysql::Backend),
}

/// Runs the same expression against whichever backend this store uses.
macro_rules! dispatch {
    ($self:ident, $b:ident => $e:expr) => {
        dispatch_backend!(&$self.backend, $b => $e)
    };
}

/// The same, given a `&Backend`.
macro_rules! dispatch_backend {
    ($backend:expr, $b:ident => $e:expr) => {
        match $backend {
            Backend::Sqlite($b) => $e,
            Backend::MySql($b) => $e,
        }
    };
}
pub(crate) use dispatch_backend;

/// Proof of holding this process's SQLite write connection (see `Backend::write_turn`).
pub(crate) type WriteTurn = Box<dyn std::any::Any + Send>;

/// A deadlocked or busy transaction is retried this many times before the caller sees it.
const TRANSIENT_RETRIES: u32 = 5;

impl Store {
    /// A feed transaction that lost to another feed (a mark's key, a deadlock, a moved cursor).
    pub(crate) fn is_feed_race(&self, e: &StoreError) -> bool {
        let unique = matches!(e, StoreError::Database(d) if d.as_database_error().is_some_and(|d| d.is_unique_violation()));
        unique || self.backend.is_transient(e)
    }
}

impl Backend {
    fn is_transient(&self, e: &StoreError) -> bool {
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
        let StoreError::Database(e) = e else {
            return matches!(
                e,
                StoreError::Conflict | StoreError::Sqlite(_, Some(DatabaseBusy | DatabaseLocked))
            );
        };
        match self {
            Backend::Sqlite(_) => sqlite::is_transient(e),
            Backend::MySql(_) => mysql::is_transient(e),
        }
    }
}

// After `dispatch!` so the submodule can use it.
mod providers;
pub use providers::*;
// After `dispatch!`, so the identity methods can use it.
mod identity;

mod notifications;
pub use notifications::{NotificationQuery, NotificationRow};
mod channels;
pub use channels::{ContactRow, MessageOutcome, MessageRow, TemplateRow};
mod settlements;
pub use settlements::*;
mod games;
pub use games::*;
mod commission;
pub use commission::*;
mod protection;
mod reads;
pub mod report_agents;
pub mod report_feed;
pub mod report_spans;
pub mod reports;
pub use protection::*;
mod payments;
pub use payments::*;

impl Store {
    /// Connects and applies pending migrations.
    pub async fn connect(options: &StoreOptions) -> StoreResult<Self> {
        // sqlx takes no lock around SQLite migrations: processes starting at once on a fresh
        // file (two nodes, `serve` beside `check-ledger`) would both create the tables. One at a
        // time, through a lock file beside the database (released when this returns).
        let _migrating = if options.url.starts_with("sqlite:") {
            Some(sqlite::setup_lock(&options.url).await?)
        } else {
            None
        };
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
        match &backend {
            Backend::MySql(b) => b.migrate_locked().await?,
            Backend::Sqlite(b) => b.migrate().await?,
        }
        let committer =
            ledger::group_commit::GroupCommitter::start(backend.clone(), options.group_commit);
        let cache = std::sync::Arc::new(read_cache::ReadCache::default());
        let epoch_source = backend.clone();
        let files = match &backend {
            Backend::Sqlite(_) => Some(std::sync::Mutex::new(read_cache::FileWatch::new(
                <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&options.url)?
                    .get_filename(),
            ))),
            Backend::MySql(_) => None,
        };
        let last_epochs = std::sync::Arc::new(std::sync::Mutex::new(None));
        read_cache::spawn_poller(&cache, move || {
            let backend = epoch_source.clone();
            let last_epochs = last_epochs.clone();
            // Nothing written to the SQLite files: the epochs are the last ones read.
            let known = match &files {
                Some(watch) if !watch.lock().expect("file watch").moved() => {
                    *last_epochs.lock().expect("epochs")
                }
                _ => None,
            };
            async move {
                if known.is_some() {
                    return known;
                }
                let read = dispatch_backend!(&backend, b => b.cache_epoch().await).ok();
                *last_epochs.lock().expect("epochs") = read;
                read
            }
        });
        let store = Self {
            backend,
            committer,
            cache,
            audit_key: std::sync::Arc::new([0; 32]),
        };
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
        if let Some(hit) = self.cache.clients.get(id) {
            return Ok(Some(hit.clone()));
        }
        let generation = self.cache.generation();
        let row = dispatch!(self, b => b.client(id).await)?;
        if let Some(row) = &row {
            self.cache
                .put(generation, &self.cache.clients, id, row.clone());
        }
        Ok(row)
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
        status: Option<crate::domain::ClientStatus>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        {
            let result = dispatch!(self, b => b.update_client(id, name, status, now_ms).await);
            self.changed();
            result
        }
    }

    pub async fn insert_user(
        &self,
        user: &UserRow,
        wallet: Option<&NewAccount>,
    ) -> StoreResult<()> {
        dispatch!(self, b => b.insert_user(user, wallet).await)
    }

    pub async fn user(&self, id: &str) -> StoreResult<Option<UserRow>> {
        if let Some(hit) = self.cache.users.get(id) {
            return Ok(Some(hit.clone()));
        }
        let generation = self.cache.generation();
        let row = dispatch!(self, b => b.user(id).await)?;
        if let Some(row) = &row {
            self.cache
                .put(generation, &self.cache.users, id, row.clone());
        }
        Ok(row)
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
        Ok(self.session_owner(session_id, now_ms).await?.is_some())
    }

    /// The user a live session belongs to (`None` once it ended or expired).
    pub async fn session_owner(
        &self,
        session_id: &str,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        if let Some(hit) = self.cache.sessions.get(session_id) {
            let (user_id, expires_at) = hit.value();
            return Ok((*expires_at > now_ms).then(|| user_id.clone()));
        }
        let generation = self.cache.generation();
        let live_until = dispatch!(self, b => b.session_live_until(session_id).await)?;
        if let Some(live) = &live_until {
            self.cache
                .put(generation, &self.cache.sessions, session_id, live.clone());
        }
        Ok(live_until.and_then(|(user_id, expires_at)| (expires_at > now_ms).then_some(user_id)))
    }

    /// Changes each time a session, user, client, setting or permission row may have moved.
    pub fn cache_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.cache.changes()
    }

    /// Forgets every cached row on this node (after a write that other reads must see).
    fn changed(&self) {
        self.cache.clear();
    }

    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> StoreResult<RotateOutcome> {
        {
            let result = dispatch!(self, b => b.rotate_refresh(old_hash, new_hash, now_ms).await);
            self.changed();
            result
        }
    }

    pub async fn revoke_session(&self, session_id: &str) -> StoreResult<()> {
        {
            let result = dispatch!(self, b => b.revoke_session(session_id).await);
            self.changed();
            result
        }
    }

    pub async fn account(&self, id: &str) -> StoreResult<Option<AccountRow>> {
        dispatch!(self, b => b.account(id).await)
    }

    /// Commits one balanced journal entry (durably, possibly in a batch with others), or
    /// replays the first result of its idempotency key.
    pub async fn post_entry(&self, entry: NewEntry) -> StoreResult<PostOutcome> {
        self.queue_entry(std::sync::Arc::new(entry), None).await
    }

    /// Like `post_entry`, but the entry takes its place in the commit order before this returns,
    /// and `after_commit` runs in that order once it is committed (not on replays or refusals).
    pub fn queue_entry(
        &self,
        entry: std::sync::Arc<NewEntry>,
        after_commit: Option<AfterCommit>,
    ) -> impl Future<Output = StoreResult<PostOutcome>> + use<> {
        entry.assert_balanced();
        self.committer
            .post(entry, self.audit_key.clone(), after_commit)
    }

    pub async fn account_history(
        &self,
        account_id: &str,
        query: &HistoryQuery,
    ) -> StoreResult<Vec<HistoryItem>> {
        dispatch!(self, b => b.account_history(account_id, query).await)
    }

    pub async fn balance_at(&self, account_id: &str, at_ms: i64) -> StoreResult<i64> {
        dispatch!(self, b => b.balance_at(account_id, at_ms).await)
    }

    pub async fn client_journal(
        &self,
        client_id: &str,
        query: &JournalQuery,
    ) -> StoreResult<Vec<JournalItem>> {
        dispatch!(self, b => b.client_journal(client_id, query).await)
    }

    /// The first broken ledger invariant, if any (see `ops::check_ledger`).
    pub async fn ledger_violation(&self) -> StoreResult<Option<String>> {
        dispatch!(self, b => b.ledger_violation().await)
    }
}
