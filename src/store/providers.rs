//! Provider storage (DESIGN section 5): the `provider_transfers` outbox, players registered at
//! provider accounts, game rounds and sessions. SQL in `sql_providers.rs`, compiled per backend.

use tracing::Instrument;

use super::{Backend, NewAccount, NewEntry, PostedEntry, Store, StoreResult};
use crate::domain::{TransferDirection, TransferState};

/// One transfer intent between a wallet and a provider account.
#[derive(Debug, Clone)]
pub struct TransferRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub provider: String,
    pub account: String,
    pub direction: TransferDirection,
    pub amount: i64,
    /// The number the provider sees; the same on every retry and status query.
    pub serial: String,
    pub idempotency_key: String,
    pub request_hash: String,
    pub state: TransferState,
    pub provider_balance: Option<i64>,
    pub attempts: i64,
    pub last_sent_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Why the last send or the failure happened (`insufficient_funds ...` for that refusal).
    pub last_error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum BeginOutcome {
    /// Row (and hold, for transfer-in) committed now.
    Created(Option<PostedEntry>),
    /// The idempotency key was used before for the same request: that transfer.
    Existing(Box<TransferRow>),
}

#[derive(Debug, Clone)]
pub struct ProviderPlayer {
    pub provider: String,
    pub account: String,
    pub uid: String,
    pub client_id: String,
    pub user_id: String,
}

/// One reported version of a round (bet) and its net result for the player.
#[derive(Debug, Clone)]
pub struct RoundUpdate {
    pub client_id: String,
    pub provider: String,
    pub round_id: String,
    /// The game played (`providers::game_code`; '' unknown). A round keeps the game it was
    /// first applied with: its rollup rows are keyed by it.
    pub game: String,
    pub user_id: String,
    pub version: i64,
    pub status: String,
    /// Payout minus stake, minor units.
    pub net: i64,
    /// The stake (turnover, ≥ 0), minor units.
    pub stake: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoundOutcome {
    /// Applied; the house moved `delta` (the change of the round's net result).
    Applied { delta: i64 },
    /// This version or a later one was applied before: nothing moved.
    Stale,
    /// Another writer changed the round meanwhile: nothing moved; read it again.
    Raced,
}

#[derive(Debug, Clone)]
pub struct GameSessionRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub provider: String,
    pub game_code: String,
    pub state: String,
    pub started_at: i64,
}

/// Times a round version is re-read after losing a race to another writer of the same round.
const ROUND_RACE_RETRIES: usize = 5;

impl Store {
    pub async fn ensure_accounts(&self, accounts: &[NewAccount]) -> StoreResult<()> {
        dispatch!(self, b => b.ensure_accounts(accounts).await)
    }

    pub async fn begin_transfer(
        &self,
        row: &TransferRow,
        hold: Option<&NewEntry>,
    ) -> StoreResult<BeginOutcome> {
        // The trace's span of the write (disabled, so free, while traces are off).
        let span = tracing::info_span!(target: crate::otel::TARGET, "ledger.transfer_write", step = "begin");
        async { dispatch!(self, b => b.begin_transfer(row, hold, &self.audit_key).await) }
            .instrument(span)
            .await
    }

    /// `Some(posted)` if the row moved from one of `from` to `to` (with `entry` posted);
    /// `None` if it had already left those states.
    pub async fn transition_transfer(
        &self,
        id: &str,
        from: &[TransferState],
        to: TransferState,
        provider_balance: Option<i64>,
        last_error: Option<&str>,
        entry: Option<&NewEntry>,
    ) -> StoreResult<Option<Option<PostedEntry>>> {
        let span = tracing::info_span!(target: crate::otel::TARGET, "ledger.transfer_write", step = "transition", to = to.as_str());
        async {
            dispatch!(self, b => b.transition_transfer(id, from, to, provider_balance, last_error, entry, &self.audit_key).await)
        }
        .instrument(span)
        .await
    }

    pub async fn mark_transfer_sent(&self, id: &str, now_ms: i64) -> StoreResult<()> {
        dispatch!(self, b => b.mark_transfer_sent(id, now_ms).await)
    }

    pub async fn transfer(&self, id: &str) -> StoreResult<Option<TransferRow>> {
        dispatch!(self, b => b.transfer(id).await)
    }

    pub async fn open_transfers(
        &self,
        before_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<TransferRow>> {
        dispatch!(self, b => b.open_transfers(before_ms, limit).await)
    }

    /// (provider, state, count) for the transfers-by-state metric.
    pub async fn count_transfers_by_state(&self) -> StoreResult<Vec<(String, TransferState, i64)>> {
        dispatch!(self, b => b.count_transfers_by_state().await)
    }

    pub async fn record_provider_player(&self, p: &ProviderPlayer) -> StoreResult<bool> {
        dispatch!(self, b => b.record_provider_player(p).await)
    }

    pub async fn provider_player(
        &self,
        provider: &str,
        account: &str,
        uid: &str,
    ) -> StoreResult<Option<ProviderPlayer>> {
        dispatch!(self, b => b.provider_player(provider, account, uid).await)
    }

    /// Applies a round version once; `entry_for(delta)` builds the journal entry for a change.
    pub async fn apply_round(
        &self,
        round: &RoundUpdate,
        entry_for: &(dyn Fn(i64) -> Option<NewEntry> + Sync),
    ) -> StoreResult<RoundOutcome> {
        for _ in 0..ROUND_RACE_RETRIES {
            let outcome =
                dispatch!(self, b => b.apply_round(round, entry_for, &self.audit_key).await)?;
            if outcome != RoundOutcome::Raced {
                return Ok(outcome);
            }
        }
        Ok(RoundOutcome::Raced)
    }

    /// Switches a provider (`game` = `*`) or one of its games on or off for a client.
    pub async fn set_client_game(
        &self,
        client_id: &str,
        provider: &str,
        game: &str,
        enabled: bool,
    ) -> StoreResult<()> {
        dispatch!(self, b => b.set_client_game(client_id, provider, game, enabled).await)
    }

    pub async fn disabled_games(
        &self,
        client_id: &str,
        provider: &str,
    ) -> StoreResult<Vec<String>> {
        dispatch!(self, b => b.disabled_games(client_id, provider).await)
    }

    pub async fn insert_game_session(&self, s: &GameSessionRow) -> StoreResult<()> {
        dispatch!(self, b => b.insert_game_session(s).await)
    }
}
