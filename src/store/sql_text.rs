//! SQL text shared by the sqlx statements (`sql*.rs`) and the SQLite ledger writer
//! (`ledger/sqlite_writer.rs`): one spelling of each column list, so a new column cannot be missed in
//! one of them. Column lists are macros so `concat!` can build whole statements at compile time.

macro_rules! journal_columns {
    () => {
        "id, client_id, idempotency_key, request_hash, kind, actor_id, subject_account_id, memo, \
         created_at"
    };
}
macro_rules! posting_columns {
    () => {
        "journal_id, account_id, client_id, amount, balance_after, account_version, created_at"
    };
}
macro_rules! audit_columns {
    () => {
        "seq, client_id, actor_id, action, target_type, target_id, before_json, after_json, ip, \
         created_at, prev_hash, hash"
    };
}
pub(super) use {audit_columns, journal_columns, posting_columns};

/// A stored entry's time, by journal id (an idempotency replay answers with the first result).
pub(super) const STORED_ENTRY_TIME: &str = "SELECT created_at FROM journal WHERE id = ?";
/// A stored entry's lines, by journal id, in account order.
pub(super) const STORED_ENTRY_LINES: &str = "SELECT account_id, amount, balance_after, \
     account_version FROM postings WHERE journal_id = ? ORDER BY account_id";
