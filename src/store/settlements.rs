//! Settlements in the store: the period's figures fixed before anything is posted, and the
//! `Store` methods that dispatch them to the backend (SQL in `sql_settlements.rs`).

use super::{Backend, Store, StoreResult};

#[derive(Debug, Clone)]
pub struct SettlementRow {
    pub id: String,
    pub client_id: String,
    pub idempotency_key: String,
    pub period_start: i64,
    pub period_end: i64,
    pub currency: String,
    pub ngr: i64,
    /// `pending` until every entry is posted, then `posted`.
    pub state: String,
    pub created_by: String,
    pub created_at: i64,
    pub posted_at: Option<i64>,
    /// `manual` or `scheduled`.
    pub origin: String,
}

#[derive(Debug, Clone)]
pub struct CommissionRow {
    pub settlement_id: String,
    pub agent_id: String,
    pub client_id: String,
    pub players: i64,
    pub ngr: i64,
    pub rate: String,
    pub amount: i64,
    pub journal_id: Option<String>,
    /// `calculated`, `approved`, `held` or `paid` (`settlements::commission` moves it).
    pub status: String,
    /// `ngr` (what `ngr` above is a sum of).
    pub basis: String,
    /// The differential result before carry-over; `carried_in` ≤ 0 brought in, `carry_out` ≤ 0
    /// carried on.
    pub earned: i64,
    pub carried_in: i64,
    pub carry_out: i64,
}

#[derive(Debug, Clone)]
pub struct RevenueShareRow {
    pub settlement_id: String,
    pub client_id: String,
    pub base: i64,
    pub rate: String,
    pub amount: i64,
    pub journal_id: Option<String>,
}

/// A settlement with its lines.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub header: SettlementRow,
    pub commissions: Vec<CommissionRow>,
    pub revenue_share: RevenueShareRow,
}

/// What fixing a settlement found.
#[derive(Debug)]
pub enum FixOutcome {
    Created,
    /// The same idempotency key came back with the same period: a replay of that request,
    /// answered as it was first (201).
    Replayed(String),
    /// The same period was settled before under another key: that one's id (200).
    Existing(String),
    /// Another settlement covers part of the period.
    Overlaps(String),
    /// An agent's carried result changed since the figures were computed: compute again.
    CarryMoved,
}

/// NGR per journal subject over a period: `w:<user>` for a player's rounds.
#[derive(Debug, Clone)]
pub struct SubjectNgr {
    pub subject_account_id: String,
    pub ngr: i64,
}

/// A player's turnover over a period: the stakes of the rounds first applied in it.
#[derive(Debug, Clone)]
pub struct PlayerTurnover {
    pub user_id: String,
    pub turnover: i64,
}

impl Store {
    /// Turnover per player of the rounds first applied in `[start_ms, end_ms)` (each round
    /// once, at its latest version's stake); `only` = `(user, provider)` narrows it to one
    /// player's rounds at one provider.
    pub async fn turnover_by_player(
        &self,
        client_id: &str,
        start_ms: i64,
        end_ms: i64,
        only: Option<(&str, &str)>,
    ) -> StoreResult<Vec<PlayerTurnover>> {
        dispatch!(self, b => b.turnover_by_player(client_id, start_ms, end_ms, only).await)
    }

    /// The house's game results per subject in `[start_id, end_id)` of journal ids (UUIDv7,
    /// so an id range is a time range served by the `(client_id, id)` index).
    pub async fn ngr_by_subject(
        &self,
        client_id: &str,
        result_accounts: &[String],
        start_id: &str,
        end_id: &str,
    ) -> StoreResult<Vec<SubjectNgr>> {
        dispatch!(self, b => b.ngr_by_subject(client_id, result_accounts, start_id, end_id).await)
    }

    /// Stores the figures unless the key or period was settled before or the period overlaps
    /// another settlement (checked under the client's lock, so two nodes cannot both insert).
    /// With `carry_over`, each line's `carried_in` must still be the agent's stored carry
    /// (else `CarryMoved`), and its `carry_out` replaces it, in the same transaction.
    pub async fn fix_settlement(
        &self,
        s: &Settlement,
        carry_over: bool,
    ) -> StoreResult<FixOutcome> {
        dispatch!(self, b => b.fix_settlement(s, carry_over).await)
    }

    pub async fn settlement(&self, client_id: &str, id: &str) -> StoreResult<Option<Settlement>> {
        dispatch!(self, b => b.settlement(client_id, id).await)
    }

    /// Per agent, the commission lines of the client's settlements whose period starts in
    /// `[from, to)`, summed (one query for the agents report).
    pub async fn commissions_earned(
        &self,
        client_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<std::collections::HashMap<String, i64>> {
        dispatch!(self, b => b.commissions_earned(client_id, from, to).await)
    }

    /// A client's settlements, newest period first, starting before `before_start`.
    pub async fn settlements(
        &self,
        client_id: &str,
        before_start: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<SettlementRow>> {
        dispatch!(self, b => b.settlements(client_id, before_start, limit).await)
    }

    /// Every settlement not yet fully posted (start-up resumes them).
    pub async fn pending_settlements(&self) -> StoreResult<Vec<(String, String)>> {
        dispatch!(self, b => b.pending_settlements().await)
    }

    pub async fn record_commission_posted(
        &self,
        settlement_id: &str,
        agent_id: &str,
        journal_id: &str,
    ) -> StoreResult<()> {
        dispatch!(self, b => b.record_commission_posted(settlement_id, agent_id, journal_id).await)
    }

    pub async fn record_revenue_share_posted(
        &self,
        settlement_id: &str,
        journal_id: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<()> {
        dispatch!(self, b => b.record_revenue_share_posted(settlement_id, journal_id, now_ms).await)
    }
}
