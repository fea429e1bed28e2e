//! Batched and paged reads for the GraphQL read model (issue 17): rows by many ids at once, so
//! a list of N items costs one query per relation, not N. SQL in `sql_reads.rs`.

use super::{AccountRow, Backend, ClientRow, JournalLine, Store, StoreResult, TransferRow};

impl Store {
    /// The clients with these ids (unknown ids are left out), in no order.
    pub async fn clients_by_ids(&self, ids: &[&str]) -> StoreResult<Vec<ClientRow>> {
        dispatch!(self, b => b.clients_by_ids(ids).await)
    }

    /// The accounts with these ids (unknown ids are left out), in no order.
    pub async fn accounts_by_ids(&self, ids: &[&str]) -> StoreResult<Vec<AccountRow>> {
        dispatch!(self, b => b.accounts_by_ids(ids).await)
    }

    /// Every posting of these journal entries, as `(journal id, line)`, in account order.
    pub async fn postings_of(
        &self,
        journal_ids: &[&str],
    ) -> StoreResult<Vec<(String, JournalLine)>> {
        dispatch!(self, b => b.postings_of(journal_ids).await)
    }

    /// A user's provider transfers, newest first, before the cursor (a transfer id: ids are
    /// time-ordered).
    pub async fn user_transfers(
        &self,
        user_id: &str,
        before_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<TransferRow>> {
        dispatch!(self, b => b.user_transfers(user_id, before_id, limit).await)
    }
}
