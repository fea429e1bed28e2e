//! Responsible gaming in the store (issue 19): a player's limits, exclusion and play session
//! (`player_limits`, `player_protection`), and the wallet movements limits are measured on.
//! SQL in `sql_protection.rs`; the row lock of the money path per backend (`protection_lock`).

use super::{Backend, Store, StoreResult};
use crate::ledger::JournalKind;

/// One limit of one player. `pending_set`: a raise (or removal, `pending_value` None) waits
/// for `pending_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRow {
    pub name: String,
    pub current_value: Option<i64>,
    pub pending_set: bool,
    pub pending_value: Option<i64>,
    pub pending_at: Option<i64>,
    pub updated_at: i64,
}

/// A player's exclusion and play-session state (a row exists once they set anything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtectionRow {
    pub user_id: String,
    pub client_id: String,
    /// `timeout` or `self_exclusion`.
    pub exclusion_kind: Option<String>,
    pub excluded_at: Option<i64>,
    /// None with a kind: permanent.
    pub excluded_until: Option<i64>,
    pub reality_check_minutes: Option<i64>,
    pub play_started_at: Option<i64>,
    pub play_last_at: Option<i64>,
    pub reality_checked_at: Option<i64>,
    pub updated_at: i64,
}

impl ProtectionRow {
    /// Whether an exclusion (time-out or self-exclusion) is in force at `now`.
    pub fn excluded_at(&self, now: i64) -> bool {
        self.exclusion_kind.is_some() && self.excluded_until.is_none_or(|u| u > now)
    }
}

/// One wallet movement that limits count: its kind, signed amount on the wallet, time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletFlow {
    pub kind: JournalKind,
    pub amount: i64,
    pub at: i64,
}

/// Held while a limited movement is decided and committed: on MySQL a transaction holding the
/// player's `player_protection` row (`FOR UPDATE`), so nodes decide one at a time; on SQLite
/// nothing (one process; its wallet actor serializes). Dropping it rolls back (it wrote nothing).
pub struct ProtectionLock(#[allow(dead_code)] Option<Box<dyn std::any::Any + Send>>);

impl ProtectionLock {
    pub fn none() -> Self {
        Self(None)
    }

    pub(super) fn held(tx: Box<dyn std::any::Any + Send>) -> Self {
        Self(Some(tx))
    }
}

impl Store {
    pub async fn player_protection(&self, user_id: &str) -> StoreResult<Option<ProtectionRow>> {
        dispatch!(self, b => b.player_protection(user_id).await)
    }

    /// Whether the player has a protection row (a limit or exclusion was ever set), from the
    /// node's read cache: every deposit to a player asks it, and a read per deposit was a trip
    /// to the database (issue 22). A new row bumps `cache_epoch`, so every node sees it within
    /// one poll; this node at once (`change_limit`, `change_protection`).
    pub async fn has_protection(&self, user_id: &str) -> StoreResult<bool> {
        if let Some(hit) = self.cache.protected.get(user_id) {
            return Ok(*hit);
        }
        let generation = self.cache.generation();
        let found = self.player_protection(user_id).await?.is_some();
        self.cache
            .put(generation, &self.cache.protected, user_id, found);
        Ok(found)
    }

    /// Locks the player's protection row until the answer is dropped (see [`ProtectionLock`]).
    pub async fn protection_lock(&self, user_id: &str) -> StoreResult<ProtectionLock> {
        match &self.backend {
            Backend::MySql(b) => b.protection_lock(user_id).await,
            Backend::Sqlite(_) => Ok(ProtectionLock::none()),
        }
    }

    pub async fn player_limits(&self, user_id: &str) -> StoreResult<Vec<LimitRow>> {
        dispatch!(self, b => b.player_limits(user_id).await)
    }

    /// Changes one limit in one transaction: `decide` gets the stored row (if any) under the
    /// row lock and answers the row to store.
    pub async fn change_limit<F>(
        &self,
        user_id: &str,
        client_id: &str,
        name: &str,
        now_ms: i64,
        decide: F,
    ) -> StoreResult<(Option<LimitRow>, LimitRow)>
    where
        F: FnOnce(Option<&LimitRow>) -> LimitRow + Send,
    {
        let changed =
            dispatch!(self, b => b.change_limit(user_id, client_id, name, now_ms, decide).await);
        self.changed();
        changed
    }

    /// Starts or extends an exclusion in one transaction: `decide` gets the stored row and
    /// answers the one to store, or None to leave it (an exclusion is never shortened).
    pub async fn change_protection<F>(
        &self,
        user_id: &str,
        client_id: &str,
        now_ms: i64,
        decide: F,
    ) -> StoreResult<(ProtectionRow, Option<ProtectionRow>)>
    where
        F: FnOnce(&ProtectionRow) -> Option<ProtectionRow> + Send,
    {
        let changed =
            dispatch!(self, b => b.change_protection(user_id, client_id, now_ms, decide).await);
        self.changed();
        changed
    }

    /// Deposits, credits and provider transfers of a wallet since `since_ms` (what limits
    /// count), oldest first.
    pub async fn wallet_flows(
        &self,
        account_id: &str,
        since_ms: i64,
    ) -> StoreResult<Vec<WalletFlow>> {
        dispatch!(self, b => b.wallet_flows(account_id, since_ms).await)
    }

    /// Records a transfer-in for the play session: a new session starts when the last one
    /// ended (`gap_ms` without a transfer-in).
    pub async fn touch_play(&self, user_id: &str, now_ms: i64, gap_ms: i64) -> StoreResult<()> {
        dispatch!(self, b => b.touch_play(user_id, now_ms, gap_ms).await)
    }

    /// Players in a play session whose reality check is due at `now_ms`.
    pub async fn reality_checks_due(
        &self,
        now_ms: i64,
        gap_ms: i64,
    ) -> StoreResult<Vec<ProtectionRow>> {
        dispatch!(self, b => b.reality_checks_due(now_ms, gap_ms).await)
    }

    /// Audit rows whose action starts with `prefix` (no wildcard characters), newest first.
    pub async fn audit_page_prefix(
        &self,
        client_id: Option<&str>,
        target_user: Option<&str>,
        before_seq: Option<i64>,
        prefix: &str,
        limit: i64,
    ) -> StoreResult<Vec<super::AuditRow>> {
        dispatch!(self, b => b.audit_page_prefix(client_id, target_user, before_seq, prefix, limit).await)
    }

    pub async fn mark_reality_checked(&self, user_id: &str, at_ms: i64) -> StoreResult<()> {
        dispatch!(self, b => b.mark_reality_checked(user_id, at_ms).await)
    }
}

/// A staff user's TOTP secret (sealed) and state.
#[derive(Debug, Clone)]
pub struct TotpRow {
    pub user_id: String,
    /// The sealed secret: key id, nonce, ciphertext (`secrets::Sealed`).
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
    pub enabled: bool,
    pub last_step: i64,
}

impl Store {
    /// A new (not yet enabled) secret; replaces any enrolment and its recovery codes.
    pub async fn put_totp(&self, row: &TotpRow, now_ms: i64) -> StoreResult<()> {
        dispatch!(self, b => b.put_totp(row, now_ms).await)
    }

    pub async fn totp(&self, user_id: &str) -> StoreResult<Option<TotpRow>> {
        dispatch!(self, b => b.totp(user_id).await)
    }

    /// Enables the pending secret with its recovery codes (hashes), in one transaction.
    pub async fn enable_totp(
        &self,
        user_id: &str,
        code_hashes: &[String],
        step: i64,
        now_ms: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, b => b.enable_totp(user_id, code_hashes, step, now_ms).await)
    }

    /// Records `step` as used; false when it (or a later one) already was: a replay.
    pub async fn use_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
        dispatch!(self, b => b.use_totp_step(user_id, step).await)
    }

    /// Marks a recovery code used; false when unknown or used before.
    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        code_hash: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, b => b.use_recovery_code(user_id, code_hash, now_ms).await)
    }

    /// Removes the enrolment and its recovery codes; true when there was one.
    pub async fn delete_totp(&self, user_id: &str) -> StoreResult<bool> {
        dispatch!(self, b => b.delete_totp(user_id).await)
    }

    pub async fn insert_challenge(
        &self,
        token_hash: &str,
        user_id: &str,
        purpose: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        dispatch!(self, b => b.insert_challenge(token_hash, user_id, purpose, expires_at).await)
    }

    /// The user of a live challenge of `purpose`.
    pub async fn challenge_user(
        &self,
        token_hash: &str,
        purpose: &str,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        dispatch!(self, b => b.challenge_user(token_hash, purpose, now_ms).await)
    }

    /// Consumes a challenge; false when another request already did.
    pub async fn drop_challenge(&self, token_hash: &str) -> StoreResult<bool> {
        dispatch!(self, b => b.drop_challenge(token_hash).await)
    }
}
