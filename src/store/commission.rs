//! Issue 21 in the store: agents' own commission rates, commission line statuses, the job
//! lease the settlement scheduler runs under, and the platform's
//! revenue collections (SQL in `sql_commission.rs`).

use super::{Backend, Store, StoreResult};

/// One collection (or reversal) of a settlement's revenue share.
#[derive(Debug, Clone)]
pub struct CollectionRow {
    pub id: String,
    pub client_id: String,
    pub settlement_id: String,
    /// `collect` or `reverse`.
    pub direction: String,
    pub amount: i64,
    pub memo: Option<String>,
    pub idempotency_key: String,
    pub request_hash: String,
    pub journal_id: Option<String>,
    pub created_by: String,
    pub created_at: i64,
}

/// What fixing a collection found.
#[derive(Debug)]
pub enum CollectionFix {
    /// Stored (new), or the same key and request again: the row to post.
    Fixed(Box<CollectionRow>, bool),
    /// The same key with another request.
    KeyConflict,
    /// More than is outstanding (collect) or collected (reverse): what is.
    Exceeds(i64),
    /// The settlement is not the client's.
    NoSettlement,
}

impl Store {
    /// Every agent's own rate in a client: (user id, rate text).
    pub async fn agent_rates(&self, client_id: &str) -> StoreResult<Vec<(String, String)>> {
        dispatch!(self, b => b.agent_rates(client_id).await)
    }

    pub async fn put_agent_rate(
        &self,
        user_id: &str,
        client_id: &str,
        rate: &str,
        by: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        dispatch!(self, b => b.put_agent_rate(user_id, client_id, rate, by, now_ms).await)
    }

    /// An agent's carried negative result (≤ 0).
    pub async fn commission_carry(&self, client_id: &str, agent_id: &str) -> StoreResult<i64> {
        dispatch!(self, b => b.commission_carry(client_id, agent_id).await)
    }

    pub async fn commission_carries(&self, client_id: &str) -> StoreResult<Vec<(String, i64)>> {
        dispatch!(self, b => b.commission_carries(client_id).await)
    }

    /// Moves a commission line from one of `from` to `to` (recording `journal_id` if given):
    /// false when the line was not in `from`.
    pub async fn transition_commission(
        &self,
        settlement_id: &str,
        agent_id: &str,
        from: &[&str],
        to: &str,
        journal_id: Option<&str>,
    ) -> StoreResult<bool> {
        dispatch!(self, b => b.transition_commission(settlement_id, agent_id, from, to, journal_id).await)
    }

    /// Takes or renews the lease `name` for `holder` until `now + ttl` if it is free, expired
    /// or already `holder`'s (one conditional update: exactly one node wins).
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, b => b.take_lease(name, holder, now_ms, ttl_ms).await)
    }

    /// Active clients' ids and stored settings documents (the scheduler's work list).
    pub async fn clients_with_settings(&self) -> StoreResult<Vec<(String, Option<String>)>> {
        dispatch!(self, b => b.clients_with_settings().await)
    }

    /// Stores a collection under the client's lock unless it would take more than the
    /// settlement's outstanding share (or reverse more than was collected).
    pub async fn fix_collection(
        &self,
        row: &CollectionRow,
        share: i64,
    ) -> StoreResult<CollectionFix> {
        dispatch!(self, b => b.fix_collection(row, share).await)
    }

    pub async fn record_collection_posted(&self, id: &str, journal_id: &str) -> StoreResult<()> {
        dispatch!(self, b => b.record_collection_posted(id, journal_id).await)
    }

    /// A client's collections, oldest first, optionally of one settlement.
    pub async fn collections(
        &self,
        client_id: &str,
        settlement_id: Option<&str>,
    ) -> StoreResult<Vec<CollectionRow>> {
        dispatch!(self, b => b.collections(client_id, settlement_id).await)
    }
}
