//! Rows and commands exchanged with the store. Plain data; validation happens before.
//!
//! What a money movement is (`NewEntry`, its postings and posted lines) lives in `ledger`, the
//! account to create in `ledger::accounts`: the store imports them, never the reverse. They are
//! re-exported here so `crate::store::NewEntry` paths keep working.

pub use crate::ledger::accounts::NewAccount;
pub use crate::ledger::journal::{JournalKind, NewEntry, NewPosting, PostedEntry, PostedLine};

use crate::domain::{ClientStatus, Currency, Role, UserStatus};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the SQLite ledger writer (`sqlite_writer.rs`), which does not go through sqlx.
    #[error("database error: {0}")]
    Sqlite(String, Option<rusqlite::ErrorCode>),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("storage configuration: {0}")]
    Config(String),
    /// A unique constraint named by the caller's domain (`client_code_taken`, `username_taken`).
    #[error("{0}")]
    Duplicate(&'static str),
    #[error("insufficient funds in account {account_id}")]
    InsufficientFunds { account_id: String },
    #[error("account {0} does not exist")]
    UnknownAccount(String),
    #[error("the movement would overflow account {0}")]
    BalanceOverflow(String),
    #[error("idempotency key reused with a different request")]
    IdempotencyConflict,
    /// The account belongs to a closed user: nothing moves into or out of it, ever.
    #[error("account {0} is closed")]
    AccountClosed(String),
    /// A user cannot be closed yet (`balance_not_zero`, `transfers_in_flight`).
    #[error("{0}")]
    NotClosable(&'static str),
    /// A guarded write found a row changed under it; the transaction was rolled back.
    #[error("concurrent change detected; retry")]
    Conflict,
}

pub type StoreResult<T> = Result<T, StoreError>;

// Rows hold types, not column text: the row mappers (`client_from_row`, `user_from_row`, ...)
// decode each column once, and a stored text no variant matches is a column decode error
// (`StoreError::Database`), never a panic.

#[derive(Debug, Clone)]
pub struct ClientRow {
    pub id: String,
    pub code: String,
    pub name: String,
    /// The `currency` and `currency_exponent` columns.
    pub currency: Currency,
    pub status: ClientStatus,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub client_id: Option<String>,
    /// The client id, or `platform` for platform users: usernames are unique per scope.
    pub login_scope: String,
    pub parent_id: Option<String>,
    /// `/<root id>/.../<own id>/`: a subtree is every path with this prefix.
    pub path: String,
    pub depth: i64,
    pub role: Role,
    pub username: String,
    pub password_hash: String,
    pub status: UserStatus,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub client_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    Rotated {
        session_id: String,
        user_id: String,
    },
    /// A used token came back: its whole session (refresh family) is now revoked.
    Reused,
    Invalid,
}

#[derive(Debug, Clone)]
pub struct AccountRow {
    pub id: String,
    pub client_id: String,
    pub balance: i64,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    /// Committed now.
    Committed(PostedEntry),
    /// The same idempotency key and request were committed before: that first result.
    Replayed(PostedEntry),
}

impl PostOutcome {
    pub fn entry(&self) -> &PostedEntry {
        match self {
            PostOutcome::Committed(e) | PostOutcome::Replayed(e) => e,
        }
    }
}

/// Resolves once a committed batch is on disk (the SQLite ledger writer's WAL sync, see
/// `sqlite_wal_sync.rs`); closed unresolved if the sync thread is gone.
pub type Durable = tokio::sync::oneshot::Receiver<()>;

/// What one batch transaction produced. Its callers may be answered only after `durable`
/// (if any) resolved.
pub struct CommittedBatch {
    /// Each entry's own outcome, in order (a failure of the whole batch is the error around
    /// this struct, and then nothing was written).
    pub results: Vec<StoreResult<PostOutcome>>,
    pub durable: Option<Durable>,
}

#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Return postings with a lower account version than this (newest first).
    pub before_version: Option<i64>,
    pub limit: i64,
    pub kind: Option<JournalKind>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Bounds on the size of the movement (absolute minor units), inclusive.
    pub min_abs_amount: Option<i64>,
    pub max_abs_amount: Option<i64>,
    /// A transaction id or the memo, exactly.
    pub reference: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HistoryItem {
    pub journal_id: String,
    pub kind: JournalKind,
    pub amount: i64,
    pub balance_after: i64,
    pub version: i64,
    pub created_at: i64,
    pub memo: Option<String>,
}

/// A client's journal entry with every posting, for the per-client transaction listing.
#[derive(Debug, Clone)]
pub struct JournalItem {
    pub id: String,
    pub kind: JournalKind,
    pub actor_id: Option<String>,
    pub subject_account_id: String,
    pub memo: Option<String>,
    pub created_at: i64,
    pub postings: Vec<JournalLine>,
}

#[derive(Debug, Clone)]
pub struct JournalLine {
    pub account_id: String,
    pub amount: i64,
    pub balance_after: i64,
}

#[derive(Debug, Clone, Default)]
pub struct JournalQuery {
    /// Entries with a smaller id than this (newest first).
    pub before_id: Option<String>,
    pub limit: i64,
    /// As the request gave it: a text that names no kind matches nothing.
    pub kind: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}
