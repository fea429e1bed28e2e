//! Player protection (issue 19, responsible gaming): limits with cooling-off, time-outs and
//! self-exclusions, the play session (session limit, reality checks), and the check the money
//! path runs before money enters a wallet or goes to a provider.
//!
//! Where the decision is made: inside the player's wallet actor (`actors::wallet::Guarded`,
//! and the transfer-in step `transfers::wallet_steps`), which runs one guarded movement at a
//! time from check to commit, so two concurrent deposits on one node cannot both pass a limit.
//! Across nodes (MySQL) the check also holds the player's `player_protection` row `FOR UPDATE`
//! until the movement is committed (`Store::protection_lock`). Players with no protection row
//! (never set a limit or exclusion) cost one primary-key read and take the ordinary path.
//!
//! Time: every rule reads [`Clock`], the wall clock plus an offset that only a test hub can
//! move (`test_clock`, `POST /api/v1/test/clock`), so cooling-off, windows and exclusions are
//! tested without sleeping.

pub mod limits;
pub mod notices;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::json;

use crate::audit::Event;
use crate::domain::{format_minor, now_ms, rfc3339_ms};
use crate::ledger::accounts::wallet_id;
use crate::store::{LimitRow, ProtectionLock, ProtectionRow, Store, StoreError};
use limits::{LONGEST_WINDOW_MS, LimitName, Measure};

/// A play session ends after this long without a transfer-in; the next one starts a new one
/// (the session limit's clock and reality checks restart).
pub const PLAY_GAP_MS: i64 = 30 * 60_000;
/// Time-out: 24 hours to 6 weeks.
pub const TIMEOUT_HOURS: std::ops::RangeInclusive<i64> = 24..=1008;
/// Self-exclusion: 6 months to 5 years (or permanent).
pub const EXCLUSION_MONTHS: std::ops::RangeInclusive<i64> = 6..=60;
/// Reality-check interval a player may choose (minutes).
pub const REALITY_CHECK_MINUTES: std::ops::RangeInclusive<i64> = 5..=240;
pub const TIMEOUT: &str = "timeout";
pub const SELF_EXCLUSION: &str = "self_exclusion";

/// The wall clock plus an offset only tests move (one per hub, shared by its handlers).
#[derive(Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        now_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// The wall-clock time (journal timestamps) of protection time `ms`.
    pub fn to_wall(&self, ms: i64) -> i64 {
        ms - self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves this hub's protection time forward (tests, via `POST /api/v1/test/clock`).
    pub fn advance(&self, ms: i64) -> i64 {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed) + ms
    }
}

/// What enters the money path: a deposit (admin deposit, agent credit, payment) or a
/// transfer-in to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Deposit,
    TransferIn,
}

/// One movement to admit.
#[derive(Debug, Clone)]
pub struct Check {
    pub user_id: String,
    pub client_id: String,
    pub flow: Flow,
    /// Minor units, positive.
    pub amount: i64,
    pub exponent: u32,
}

/// Why a movement was refused: the API's code, the limit named, when it resets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `limit_exceeded` (422) or `player_excluded` (403).
    pub code: &'static str,
    /// The limit (`deposit_daily`, ...) or `exclusion`.
    pub field: String,
    pub message: String,
    /// When the movement could fit again (None: never by waiting, e.g. permanent).
    pub resets_at: Option<i64>,
    /// A money limit's amount, as a decimal string in the client's currency.
    pub limit: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("{}", .0.message)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An exclusion in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    pub kind: String,
    pub since: i64,
    /// None: permanent.
    pub until: Option<i64>,
}

impl Exclusion {
    fn refusal(&self) -> Refusal {
        let what = if self.kind == TIMEOUT {
            "on a time-out"
        } else {
            "self-excluded"
        };
        let message = match self.until {
            Some(t) => format!("this player is {what} until {}", rfc3339_ms(t)),
            None => format!("this player is {what} permanently"),
        };
        Refusal {
            code: "player_excluded",
            field: "exclusion".into(),
            message,
            resets_at: self.until,
            limit: None,
        }
    }
}

/// The exclusion of `row` in force at `now`, if any.
pub fn exclusion_of(row: &ProtectionRow, now: i64) -> Option<Exclusion> {
    if !row.excluded_at(now) {
        return None;
    }
    let kind = row.exclusion_kind.clone()?;
    Some(Exclusion {
        kind,
        since: row.excluded_at.unwrap_or_default(),
        until: row.excluded_until,
    })
}

/// The limits in force at `now`, by name.
pub fn in_force(rows: &[LimitRow], now: i64) -> Vec<(LimitName, i64)> {
    rows.iter()
        .filter_map(|r| {
            let name = r.name.parse::<LimitName>().ok()?;
            Some((name, limits::effective(r, now)?))
        })
        .collect()
}

/// The protection service: the store and this hub's clock.
#[derive(Clone)]
pub struct Protection {
    store: Store,
    clock: Clock,
}

impl Protection {
    pub fn new(store: Store, clock: Clock) -> Self {
        Self { store, clock }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The player's exclusion in force now, if any (login, launch, refresh).
    pub async fn exclusion(&self, user_id: &str) -> Result<Option<Exclusion>, StoreError> {
        let now = self.now_ms();
        Ok(self
            .store
            .player_protection(user_id)
            .await?
            .and_then(|r| exclusion_of(&r, now)))
    }

    /// Whether the player has anything to check (a limit or exclusion was ever set): the money
    /// path takes the guarded, one-at-a-time route only then, and batches everyone else's.
    pub async fn guards(&self, user_id: &str) -> Result<bool, StoreError> {
        self.store.has_protection(user_id).await
    }

    /// Refuses with [`Refusal`] when the player is excluded.
    pub async fn require_not_excluded(&self, user_id: &str) -> Result<(), GuardError> {
        match self.exclusion(user_id).await? {
            Some(e) => Err(GuardError::Refused(e.refusal())),
            None => Ok(()),
        }
    }

    /// Whether marketing may be sent to the player (none while excluded). Hook for the
    /// channels (email/SMS) outbox: call before queueing a marketing message.
    pub async fn marketing_allowed(&self, user_id: &str) -> Result<bool, StoreError> {
        Ok(self.exclusion(user_id).await?.is_none())
    }

    /// For the payments service (issue 18): would a deposit of `amount` be admitted now?
    /// Advisory (no lock): the credit itself is checked again, under the lock, when it posts
    /// through the wallet actor (`WalletRegistry::mutate_guarded`).
    pub async fn check_deposit(
        &self,
        user_id: &str,
        client_id: &str,
        amount: i64,
        exponent: u32,
    ) -> Result<(), GuardError> {
        let check = Check {
            user_id: user_id.to_owned(),
            client_id: client_id.to_owned(),
            flow: Flow::Deposit,
            amount,
            exponent,
        };
        self.decide(&check).await
    }

    /// Admits `check` or refuses it; the answer must be held until the movement is committed.
    /// Runs inside the player's wallet actor (one at a time per player on a node).
    pub async fn admit(&self, check: &Check) -> Result<ProtectionLock, GuardError> {
        if self
            .store
            .player_protection(&check.user_id)
            .await?
            .is_none()
        {
            return Ok(ProtectionLock::none());
        }
        let lock = self.store.protection_lock(&check.user_id).await?;
        self.decide(check).await?;
        Ok(lock)
    }

    async fn decide(&self, check: &Check) -> Result<(), GuardError> {
        let Some(row) = self.store.player_protection(&check.user_id).await? else {
            return Ok(());
        };
        let now = self.now_ms();
        let refusal = match self.refusal(check, &row, now).await? {
            Some(r) => r,
            None => return Ok(()),
        };
        metrics::counter!(crate::metrics::PROTECTION_REFUSALS, "kind" => refusal_kind(&refusal.field))
            .increment(1);
        Event::new("protection.refused")
            .client(Some(&check.client_id))
            .target("user", &check.user_id)
            .after(json!({
                "flow": match check.flow { Flow::Deposit => "deposit", Flow::TransferIn => "transfer_in" },
                "amount": format_minor(check.amount, check.exponent),
                "limit": refusal.field,
                "resets_at": refusal.resets_at.map(rfc3339_ms),
            }))
            .record(&self.store)
            .await?;
        if refusal.code == "limit_exceeded" {
            notices::limit_reached(&self.store, &check.client_id, &check.user_id, &refusal).await?;
        }
        Err(GuardError::Refused(refusal))
    }

    async fn refusal(
        &self,
        check: &Check,
        row: &ProtectionRow,
        now: i64,
    ) -> Result<Option<Refusal>, StoreError> {
        if let Some(e) = exclusion_of(row, now) {
            return Ok(Some(e.refusal()));
        }
        let limits = in_force(&self.store.player_limits(&check.user_id).await?, now);
        if check.flow == Flow::TransferIn
            && let Some(r) = session_refusal(&limits, row, now)
        {
            return Ok(Some(r));
        }
        let measures: &[Measure] = match check.flow {
            Flow::Deposit => &[Measure::Deposit],
            Flow::TransferIn => &[Measure::Wager, Measure::Loss],
        };
        if !limits.iter().any(|(n, _)| measures.contains(&n.measure())) {
            return Ok(None);
        }
        let flows = self
            .store
            .wallet_flows(&wallet_id(&check.user_id), now - LONGEST_WINDOW_MS)
            .await?;
        for &m in measures {
            if let Some((name, max, usage)) =
                limits::first_breach(&limits, &flows, m, check.amount, now)
            {
                let fmt = |v: i64| format_minor(v, check.exponent);
                let resets = usage
                    .frees_at
                    .map(|t| format!("; it resets from {}", rfc3339_ms(t)))
                    .unwrap_or_default();
                return Ok(Some(Refusal {
                    code: "limit_exceeded",
                    field: name.as_str().to_owned(),
                    message: format!(
                        "{} would take the player's {} limit of {} past it ({} used){resets}",
                        fmt(check.amount),
                        name.as_str(),
                        fmt(max),
                        fmt(usage.used.max(0)),
                    ),
                    resets_at: usage.frees_at,
                    limit: Some(fmt(max)),
                }));
            }
        }
        Ok(None)
    }

    /// After a transfer-in was taken (decided at `at`, before its hold was written): the play
    /// session goes on, or starts then.
    pub async fn played(&self, user_id: &str, at: i64) -> Result<(), StoreError> {
        self.store.touch_play(user_id, at, PLAY_GAP_MS).await
    }
}

/// The session limit reached: the play session is open and has lasted the limit.
pub fn session_refusal(
    limits: &[(LimitName, i64)],
    row: &ProtectionRow,
    now: i64,
) -> Option<Refusal> {
    let minutes = limits
        .iter()
        .find(|(n, _)| *n == LimitName::SessionMinutes)?
        .1;
    let (started, last) = (row.play_started_at?, row.play_last_at?);
    if last < now - PLAY_GAP_MS || now - started < minutes * 60_000 {
        return None;
    }
    let resets = last + PLAY_GAP_MS;
    Some(Refusal {
        code: "limit_exceeded",
        field: LimitName::SessionMinutes.as_str().into(),
        message: format!(
            "the player's session limit of {minutes} minutes is reached; a new session can start at {}",
            rfc3339_ms(resets)
        ),
        resets_at: Some(resets),
        limit: None,
    })
}

/// The metric label of a refusal (`metrics::PROTECTION_REFUSAL_KINDS`).
fn refusal_kind(field: &str) -> &'static str {
    match field.parse::<LimitName>().map(LimitName::measure) {
        Ok(Measure::Deposit) => "deposit",
        Ok(Measure::Wager) => "wager",
        Ok(Measure::Loss) => "loss",
        Ok(Measure::Session) => "session",
        Err(_) => "exclusion",
    }
}
