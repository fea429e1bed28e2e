//! Provider accounts and the transfer-wallet state machine (DESIGN section 5). The game side
//! (launch, catalog, game results) is `transfers::games`.
//!
//! Owns, per provider account: the adapter (HTTP client, protocol), a circuit breaker and a
//! concurrency limit. Drives every transfer: outbox row (+ hold) committed through the player's
//! WalletActor before any network call; one serial number per intent, reused on every retry and
//! status query; success, definite failure or `unknown` as conditional transitions that post
//! their journal entry in the same transaction. The reconciler (`transfers::reconciler`) finishes
//! what is left `pending` or `unknown`.
//!
//! Not an actix actor: transfers of different players run concurrently (bounded by a semaphore
//! per account), while everything that touches a wallet is serialized by that wallet's actor.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use dashmap::DashSet;
use sha2::{Digest, Sha256};

use super::accounts::Registry;
pub use super::accounts::{Owner, ProviderAccount};
use super::wallet_steps::{ProviderMove, ProviderMoved, ProviderOp};
use crate::actors::wallet_registry::{WalletError, WalletRegistry};
use crate::clients::settings::{self, LimitKind, Settings, SettingsError};
use crate::config::ProviderAccountSettings;
use crate::domain::{Amount, Currency, TransferState, new_id, now_ms};
use crate::ledger::accounts::{
    IN_FLIGHT, held_at_provider, house_id, provider_house_accounts, wallet_id,
};
use crate::ledger::{JournalKind, NewEntry, NewPosting};
use crate::protection::{Check, Flow};
use crate::providers::breaker::BreakerState;
use crate::providers::sim::{self, SimKind};
use crate::providers::{
    self, CallError, CallbackError, CheckAnswer, Direction, TransferAnswer, TransferCall,
};
use crate::realtime::bus::Bus;
use crate::store::{BeginOutcome, ClientRow, ProviderPlayer, Store, StoreError, TransferRow};

/// Sends of one transfer before it is left `unknown` for the reconciler.
const SENDS_MAX: u32 = 3;
/// Age past which a provider's "no such transfer" is no longer proof (JDB looks back 3 months).
const NOT_FOUND_PROOF_MAX_AGE_MS: i64 = 80 * 24 * 3600 * 1000;
/// How much later than recorded with its row a first send may go out (well under any
/// provider's clock-skew margin); beyond that the send time is recorded again.
const FIRST_SEND_SLACK_MS: i64 = 200;
/// Base of the jittered backoff between sends.
const BACKOFF_BASE_MS: u64 = 50;

/// `last_error` of a transfer the provider refused for lack of funds (replayed as 409).
const INSUFFICIENT_PREFIX: &str = "insufficient_funds";
/// `last_error` of a withdrawal refused while the player was in a game.
const IN_GAME_REASON: &str = "player_in_game";

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("unknown provider")]
    UnknownProvider,
    #[error("provider not enabled for this client")]
    NotEnabled,
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    #[error("insufficient funds")]
    InsufficientFunds,
    #[error("provider refused: {0}")]
    Refused(String),
    #[error("callback refused: {0}")]
    Callback(#[from] CallbackError),
    #[error("the callback names a player this operator account does not serve")]
    ForeignPlayer,
    #[error("the round is being updated by another delivery; retry")]
    Busy,
    #[error("this provider is switched off for the client")]
    ProviderDisabled,
    #[error("this game is switched off for the client")]
    GameDisabled,
    /// The provider's row is disabled: no new money in, no launch (money out still works).
    #[error("this provider is disabled on the platform")]
    ProviderInactive,
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

/// What `check_enabled` found: the client's settings and its switched-off games.
pub struct Enabled {
    pub settings: Arc<Settings>,
    pub disabled_games: Vec<String>,
}

impl std::ops::Deref for Enabled {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

/// A transfer as the HTTP layer asks for it.
pub struct TransferRequest {
    pub client: ClientRow,
    pub currency: Currency,
    pub user_id: String,
    pub actor_id: String,
    pub idempotency_key: String,
    pub provider: String,
    pub direction: Direction,
    pub amount: Amount,
}

#[derive(Debug, Clone)]
pub struct TransferStatus {
    pub transfer_id: String,
    pub state: TransferState,
    pub insufficient_funds: bool,
    /// Refused because the player is in a game (now kicked): retry in a few seconds.
    pub player_in_game: bool,
}

/// One provider account's health as this node sees it ([`Providers::account_health`]).
#[derive(Debug, Clone)]
pub struct AccountHealth {
    pub account: String,
    pub provider: String,
    pub breaker: BreakerState,
    pub calls_in_flight: usize,
    pub max_in_flight: usize,
    /// A client's own account (built from its stored credentials).
    pub own: bool,
}

/// Every provider account (configured and per client, see `provider_accounts`), and what the
/// state machine needs around them.
#[derive(Clone)]
pub struct Providers {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) accounts: Registry,
    pub(super) store: Store,
    wallets: WalletRegistry,
    pub(super) bus: Bus,
    /// (account's transfer name, uid) known to be registered at the provider.
    players: DashSet<(String, String)>,
    /// Clients whose provider house accounts are known to exist.
    house_ready: DashSet<String>,
    /// Round-pull cursor per account (in memory: a restart pulls again, harmlessly).
    pub(super) cursors: dashmap::DashMap<String, i64>,
    /// Embedded simulators (no provider configuration): stopped with the hub.
    _sims: Vec<sim::Embedded>,
    /// The `providers` rows this node serves (`transfers::catalog`).
    pub(super) catalog: super::catalog::ProviderCatalog,
}

/// A provider refused or failed: one WARN line naming the provider, its code and the transfer
/// (audit rows alone were easy to miss), and `provider_failures_total{provider,outcome}`.
pub(super) fn provider_failure(
    provider: &str,
    code: &str,
    transfer_id: Option<&str>,
    outcome: &'static str,
) {
    tracing::warn!(
        provider,
        code,
        transfer_id = transfer_id.unwrap_or("-"),
        outcome,
        "provider refused or failed"
    );
    // Only known provider names reach here (`account_for` refuses others).
    let provider = providers::PROVIDER_NAMES
        .iter()
        .find(|p| **p == provider)
        .copied()
        .unwrap_or("other");
    metrics::counter!(crate::metrics::PROVIDER_FAILURES, "provider" => provider, "outcome" => outcome)
        .increment(1);
}

/// A failed provider call (balance, launch, catalog, registration) as the API's error, logged
/// and counted on the way.
pub(super) fn call_failed(provider: &str, e: CallError) -> ProviderError {
    let (code, outcome) = match &e {
        CallError::Unavailable(m) => (m.as_str(), "unavailable"),
        CallError::Refused { code, .. } => (code.as_str(), "refused"),
        CallError::UnknownPlayer { code } => (code.as_str(), "unknown_player"),
        CallError::Invalid(m) => (m.as_str(), "refused"),
    };
    provider_failure(provider, code, None, outcome);
    match e {
        CallError::Unavailable(e) => ProviderError::Unavailable(e),
        other => ProviderError::Refused(other.to_string()),
    }
}

fn is_unreachable(reason: &str) -> bool {
    reason.starts_with("provider unavailable")
}

impl Providers {
    /// Builds every configured account; with none configured, starts both simulators on
    /// loopback, their state durable in `sims_dir` (so players' money there survives a restart
    /// of the hub), and one account on each for every client. Clients' own accounts are built
    /// from their sealed credentials (opened with `secrets`) at first use.
    pub fn start(
        settings: &[ProviderAccountSettings],
        sims_dir: &std::path::Path,
        store: Store,
        wallets: WalletRegistry,
        bus: Bus,
        secrets: Arc<crate::secrets::SecretBox>,
    ) -> anyhow::Result<Self> {
        let mut configured = settings.to_vec();
        let mut sims = Vec::new();
        if configured.is_empty() {
            for kind in [SimKind::Jdb, SimKind::LuckySports] {
                let embedded = sim::embedded(kind, sims_dir).with_context(|| {
                    format!("cannot start the embedded {} simulator", kind.name())
                })?;
                // The address is not stored anywhere: accounts are rebuilt at every start.
                let config = sim::default_config(kind);
                configured.push(sim::account_for(kind, &config, &embedded.base_url));
                sims.push(embedded);
            }
        }
        let mut accounts = Vec::new();
        for s in configured {
            anyhow::ensure!(
                !s.name.contains('@'),
                "provider account name {:?} must not contain '@' (reserved for clients' own accounts)",
                s.name
            );
            accounts.push(Arc::new(ProviderAccount::build(s, None)?));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                accounts: Registry::new(accounts, secrets),
                store,
                wallets,
                bus,
                players: DashSet::new(),
                house_ready: DashSet::new(),
                cursors: dashmap::DashMap::new(),
                _sims: sims,
                catalog: Default::default(),
            }),
        })
    }

    /// Base URLs of the embedded simulators (for callbacks and `cargo run` users).
    pub fn embedded_sims(&self) -> Vec<(SimKind, String)> {
        self.inner
            ._sims
            .iter()
            .map(|s| (s.kind, s.base_url.clone()))
            .collect()
    }

    /// Tells embedded simulators this process serves where the hub's callbacks are.
    pub fn set_callback_base(&self, hub_base: &str) {
        for s in &self.inner._sims {
            if let Some(handle) = &s.handle
                && s.kind == SimKind::LuckySports
            {
                handle.set_callback_url(&format!("{hub_base}/callbacks/luckysports"));
            }
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Every account this node holds (configured, then clients' own), with its breaker and
    /// calls in flight: a read for the console's provider health page.
    pub fn account_health(&self) -> Vec<AccountHealth> {
        let accounts = &self.inner.accounts;
        accounts
            .configured
            .iter()
            .cloned()
            .chain(accounts.own_accounts())
            .map(|a| AccountHealth {
                account: a.settings.name.clone(),
                provider: a.settings.provider.clone(),
                breaker: a.breaker.state(),
                calls_in_flight: a
                    .settings
                    .max_in_flight
                    .max(1)
                    .saturating_sub(a.limiter.available_permits()),
                max_in_flight: a.settings.max_in_flight.max(1),
                own: a.owner.is_some(),
            })
            .collect()
    }

    /// The account serving `client` at `provider`: the client's own (built from its sealed
    /// credentials) when it has one, else the configured account serving it.
    pub async fn account_for(
        &self,
        client: &ClientRow,
        provider: &str,
    ) -> Result<Arc<ProviderAccount>, ProviderError> {
        self.provider_row(provider)?;
        let registry = &self.inner.accounts;
        registry.refresh(&self.inner.store).await;
        match registry.own(&client.id, provider) {
            Some(Some(account)) => return Ok(account),
            Some(None) => {
                return Err(ProviderError::Unavailable(
                    "the client's provider credentials are unusable".into(),
                ));
            }
            None => {}
        }
        registry
            .configured
            .iter()
            .find(|a| a.settings.provider == provider && a.serves(client))
            .cloned()
            .ok_or(ProviderError::NotEnabled)
    }

    /// Every account in use now: configured ones and clients' own (current versions).
    pub(super) async fn all_accounts(&self) -> Vec<Arc<ProviderAccount>> {
        let registry = &self.inner.accounts;
        registry.refresh(&self.inner.store).await;
        let mut all = registry.own_accounts();
        all.extend(registry.configured.iter().cloned());
        all
    }

    /// Refuses a provider the client's settings do not enable, or one switched off for it (or,
    /// with `game`, a switched-off game); answers the settings and the switched-off games.
    pub(super) async fn check_enabled(
        &self,
        client: &ClientRow,
        provider: &str,
        game: Option<&str>,
    ) -> Result<Enabled, ProviderError> {
        let settings = settings::load(&self.inner.store, &client.id).await?;
        settings.require_provider(provider)?;
        let disabled = self
            .inner
            .store
            .disabled_games(&client.id, provider)
            .await?;
        if disabled.iter().any(|g| g == "*") {
            return Err(ProviderError::ProviderDisabled);
        }
        if game.is_some_and(|g| disabled.iter().any(|d| d == g)) {
            return Err(ProviderError::GameDisabled);
        }
        Ok(Enabled {
            settings,
            disabled_games: disabled,
        })
    }

    pub(super) async fn ensure_house(&self, client: &ClientRow) -> Result<(), ProviderError> {
        if self.inner.house_ready.contains(&client.id) {
            return Ok(());
        }
        self.inner
            .store
            .ensure_accounts(&provider_house_accounts(&client.id, &client.currency.code))
            .await?;
        self.inner.house_ready.insert(client.id.clone());
        Ok(())
    }

    pub(super) async fn ensure_player(
        &self,
        account: &ProviderAccount,
        client: &ClientRow,
        user_id: &str,
    ) -> Result<String, ProviderError> {
        let uid = providers::provider_uid(user_id);
        let key = (account.transfer_name.clone(), uid.clone());
        if self.inner.players.contains(&key) {
            return Ok(uid);
        }
        // A client's own account may point at another operator after each change of its
        // credentials: its players are registered again (once per node and version; an
        // existing player is success), while their rows keep the stable account label.
        let known = if account.owner.is_some() {
            None
        } else {
            self.inner
                .store
                .provider_player(&account.settings.provider, &account.settings.name, &uid)
                .await?
        };
        if known.is_none() {
            if !account.breaker.allow() {
                return Err(ProviderError::Unavailable("circuit breaker open".into()));
            }
            self.register(account, &client.id, user_id, &uid, &client.currency.code)
                .await?;
        }
        self.inner.players.insert(key);
        Ok(uid)
    }

    /// Registers a player again whom the provider says it does not know, whatever this node's
    /// cache and `provider_players` say (they record what we did, not what the provider kept).
    pub(super) async fn register_again(
        &self,
        account: &ProviderAccount,
        client_id: &str,
        user_id: &str,
        uid: &str,
        currency: &str,
    ) -> Result<(), ProviderError> {
        let key = (account.transfer_name.clone(), uid.to_owned());
        self.inner.players.remove(&key);
        // The WARN line and the count are the caller's (`provider_failure`, with the code).
        tracing::info!(
            provider = account.settings.provider,
            account = account.settings.name,
            uid,
            "the provider does not know a player the hub registered; registering again"
        );
        self.register(account, client_id, user_id, uid, currency)
            .await?;
        self.inner.players.insert(key);
        Ok(())
    }

    /// Asks the provider to create the player (an existing one is success) and records it.
    async fn register(
        &self,
        account: &ProviderAccount,
        client_id: &str,
        user_id: &str,
        uid: &str,
        currency: &str,
    ) -> Result<(), ProviderError> {
        let registered = account.adapter.ensure_player(uid, currency).await;
        account.record(!matches!(registered, Err(CallError::Unavailable(_))));
        if let Err(e) = registered {
            return Err(call_failed(&account.settings.provider, e));
        }
        self.inner
            .store
            .record_provider_player(&ProviderPlayer {
                provider: account.settings.provider.clone(),
                account: account.settings.name.clone(),
                uid: uid.to_owned(),
                client_id: client_id.to_owned(),
                user_id: user_id.to_owned(),
            })
            .await?;
        Ok(())
    }

    /// Transfer in or out: the whole state machine up to a definite answer or `unknown`.
    pub async fn transfer(&self, req: TransferRequest) -> Result<TransferStatus, ProviderError> {
        let account = self.account_for(&req.client, &req.provider).await?;
        if account.breaker.state() == BreakerState::Open {
            return Err(ProviderError::Unavailable("circuit breaker open".into()));
        }
        // A switched-off provider takes no new money; what players hold there may come back.
        if req.direction == Direction::In {
            self.check_active(&req.provider)?;
            let settings = self.check_enabled(&req.client, &req.provider, None).await?;
            settings.check_limit(
                LimitKind::Transfer,
                req.amount.minor(),
                req.currency.exponent,
            )?;
        }
        self.ensure_house(&req.client).await?;
        let uid = self
            .ensure_player(&account, &req.client, &req.user_id)
            .await?;
        let amount = req.amount.minor();
        let now = now_ms();
        let id = new_id();
        let request_hash = hex::encode(Sha256::digest(
            format!(
                "provider_transfer\n{}\n{}\n{}\n{}",
                req.provider,
                req.direction.as_str(),
                req.user_id,
                amount
            )
            .as_bytes(),
        ));
        let row = TransferRow {
            id: id.clone(),
            client_id: req.client.id.clone(),
            user_id: req.user_id.clone(),
            provider: req.provider.clone(),
            // The exact account (a client's own: its credentials version), so the transfer
            // resolves against it even after the credentials change.
            account: account.transfer_name.clone(),
            direction: req.direction,
            amount,
            serial: providers::new_serial(),
            idempotency_key: format!("{}:{}", req.actor_id, req.idempotency_key),
            request_hash,
            state: TransferState::Pending,
            provider_balance: None,
            // The first send follows the commit at once: recorded with the row, saving a write.
            attempts: 1,
            last_sent_at: Some(now),
            created_at: now,
            updated_at: now,
            last_error: None,
        };
        let hold = (req.direction == Direction::In).then(|| {
            entry(
                &row,
                "hold",
                JournalKind::ProviderHold,
                Some(&req.actor_id),
                &wallet_id(&row.user_id),
                house_id(&row.client_id, IN_FLIGHT),
                amount,
            )
        });
        // The concurrency permit comes first, so the send follows the commit without waiting
        // (the row records that moment as its first send).
        let _permit = account
            .limiter
            .acquire()
            .await
            .expect("limiter never closes");
        // The breaker's permit (one probe when half-open) is claimed before money is held.
        if !account.breaker.allow() {
            return Err(ProviderError::Unavailable("circuit breaker open".into()));
        }
        let guard = (req.direction == Direction::In).then(|| {
            let check = Check {
                user_id: row.user_id.clone(),
                client_id: row.client_id.clone(),
                flow: Flow::TransferIn,
                amount,
                exponent: req.currency.exponent,
            };
            (check, self.inner.wallets.protection().clone())
        });
        let begun = self
            .wallet_step_guarded(
                &row.user_id,
                &req.currency,
                ProviderOp::Begin {
                    row: Box::new(row.clone()),
                    hold,
                },
                guard,
            )
            .await;
        let begun = match begun {
            Ok(ProviderMoved::Begun(b)) => b,
            Ok(ProviderMoved::Transitioned(_)) => unreachable!("Begin answers Begun"),
            Err(ProviderError::Store(StoreError::InsufficientFunds { .. })) => {
                account.breaker.release();
                return Err(ProviderError::InsufficientFunds);
            }
            Err(e) => {
                account.breaker.release();
                if let ProviderError::Wallet(WalletError::Refused(r)) = &e
                    && r.field == crate::protection::limits::LimitName::SessionMinutes.as_str()
                {
                    self.inner.bus.publish(crate::realtime::bus::Event::new(
                        format!("user:{}", row.user_id),
                        crate::realtime::bus::EventKind::SessionLimit,
                        serde_json::json!({
                            "user_id": row.user_id,
                            "message": r.message,
                            "resets_at": r.resets_at.map(crate::domain::rfc3339_ms),
                        }),
                    ));
                }
                return Err(e);
            }
        };
        let row = match begun {
            BeginOutcome::Created(_) => {
                metrics::counter!(crate::metrics::PROVIDER_TRANSFERS, "provider" => row.provider.clone(), "state" => TransferState::Pending.as_str()).increment(1);
                row
            }
            BeginOutcome::Existing(existing) => {
                // A retried request: report the first one, never send a second intent.
                account.breaker.release();
                let insufficient_funds = existing.state == TransferState::Failed
                    && existing
                        .last_error
                        .as_deref()
                        .is_some_and(|e| e.starts_with(INSUFFICIENT_PREFIX));
                let player_in_game = existing.state == TransferState::Failed
                    && existing.last_error.as_deref() == Some(IN_GAME_REASON);
                return Ok(TransferStatus {
                    transfer_id: existing.id,
                    state: existing.state,
                    insufficient_funds,
                    player_in_game,
                });
            }
        };
        Ok(self.drive(&account, &row, &uid, &req.currency).await)
    }

    async fn wallet_step(
        &self,
        user_id: &str,
        currency: &Currency,
        op: ProviderOp,
    ) -> Result<ProviderMoved, ProviderError> {
        self.wallet_step_guarded(user_id, currency, op, None).await
    }

    async fn wallet_step_guarded(
        &self,
        user_id: &str,
        currency: &Currency,
        op: ProviderOp,
        guard: Option<(Check, crate::protection::Protection)>,
    ) -> Result<ProviderMoved, ProviderError> {
        let msg = ProviderMove {
            store: self.inner.store.clone(),
            bus: self.inner.bus.clone(),
            op,
            user_id: user_id.to_owned(),
            currency: currency.clone(),
            trace: crate::otel::TraceParent::current(),
            guard,
        };
        match self.inner.wallets.send(user_id, msg).await? {
            Ok(moved) => Ok(moved),
            Err(WalletError::Store(e)) => Err(ProviderError::Store(e)),
            Err(e) => Err(ProviderError::Wallet(e)),
        }
    }

    /// Sends the transfer (same serial on every send) until a definite answer or the budget
    /// is spent; then asks once by serial. What stays unclear is left `unknown`.
    async fn drive(
        &self,
        account: &ProviderAccount,
        row: &TransferRow,
        uid: &str,
        currency: &Currency,
    ) -> TransferStatus {
        let call = TransferCall {
            serial: row.serial.clone(),
            uid: uid.to_owned(),
            direction: row.direction,
            amount_minor: row.amount,
            exponent: currency.exponent,
        };
        let mut last = String::new();
        let mut sends = 0_u32;
        // An earlier send of this serial got no definite answer: a refusal now proves nothing.
        let mut unanswered = false;
        let mut registered_again = false;
        while sends < SENDS_MAX {
            if unanswered {
                let jitter = rand::random::<u64>() % (BACKOFF_BASE_MS * u64::from(sends));
                tokio::time::sleep(Duration::from_millis(
                    BACKOFF_BASE_MS * u64::from(sends) + jitter,
                ))
                .await;
                if !account.breaker.allow() {
                    break;
                }
            }
            // The row holds the time of the first send; if the commit took long, record it anew
            // so "not found" is never taken as proof too early.
            let recorded = row.last_sent_at.unwrap_or(0);
            let stale_record = sends == 0 && now_ms() - recorded > FIRST_SEND_SLACK_MS;
            if (sends > 0 || stale_record)
                && let Err(e) = self.inner.store.mark_transfer_sent(&row.id, now_ms()).await
            {
                last = e.to_string();
                break;
            }
            sends += 1;
            let answer = match account.adapter.transfer(&call).await {
                // Still unknown after registering again: a refusal like any other.
                TransferAnswer::UnknownPlayer { code } if registered_again => {
                    TransferAnswer::Rejected {
                        code,
                        insufficient_funds: false,
                    }
                }
                other => other,
            };
            match answer {
                TransferAnswer::Applied { balance_minor } => {
                    account.record(true);
                    return self.succeed(row, balance_minor, currency).await;
                }
                TransferAnswer::AlreadyApplied => {
                    account.record(true);
                    break;
                }
                TransferAnswer::UnknownPlayer { code } => {
                    // The provider lost a player we registered (its records were reset, or the
                    // account now points elsewhere). This send was refused, so nothing applied:
                    // register again and resend the same serial once (a provider applies a
                    // serial at most once, so an earlier unanswered send cannot double it).
                    account.record(true);
                    registered_again = true;
                    let again = self
                        .register_again(account, &row.client_id, &row.user_id, uid, &currency.code)
                        .await;
                    provider_failure(&row.provider, &code, Some(&row.id), "unknown_player");
                    if let Err(e) = again {
                        last = format!("{code}; registering the player again failed: {e}");
                        if unanswered {
                            break;
                        }
                        return self.fail(row, &code, currency).await;
                    }
                }
                TransferAnswer::PlayerInGame if !unanswered => {
                    account.record(true);
                    let mut status = self.fail(row, IN_GAME_REASON, currency).await;
                    // Best effort: the player's next withdrawal finds them out of the game.
                    let kicked = account.adapter.kick(uid).await;
                    account.record(!matches!(kicked, Err(CallError::Unavailable(_))));
                    status.player_in_game = true;
                    return status;
                }
                TransferAnswer::PlayerInGame => {
                    account.record(true);
                    last = "player in game after an unanswered send".into();
                    break;
                }
                TransferAnswer::Rejected { code, .. } if unanswered => {
                    // This send was refused, but an earlier, unanswered one may still have
                    // applied: only a status query (and its window rule) can tell.
                    account.record(true);
                    last = format!("refused {code} after an unanswered send");
                    break;
                }
                TransferAnswer::Rejected {
                    code,
                    insufficient_funds,
                } => {
                    account.record(true);
                    let reason = if insufficient_funds {
                        format!("{INSUFFICIENT_PREFIX} {code}")
                    } else {
                        code
                    };
                    let mut status = self.fail(row, &reason, currency).await;
                    status.insufficient_funds = insufficient_funds;
                    return status;
                }
                TransferAnswer::Unknown(reason) => {
                    account.record(!is_unreachable(&reason));
                    unanswered = true;
                    last = reason;
                }
            }
        }
        match self.resolve(account, row, currency).await {
            Some(status) => status,
            None => self.mark_unknown(row, &last).await,
        }
    }

    /// Asks the provider about a transfer by serial and applies a definite answer.
    /// `None` when the answer is still unclear.
    pub async fn resolve(
        &self,
        account: &ProviderAccount,
        row: &TransferRow,
        currency: &Currency,
    ) -> Option<TransferStatus> {
        let answer = account.adapter.check(&row.serial, currency.exponent).await;
        match answer {
            CheckAnswer::Applied { balance_minor } => {
                account.record(true);
                Some(self.succeed(row, balance_minor, currency).await)
            }
            CheckAnswer::Failed => {
                account.record(true);
                Some(self.fail(row, "provider reports failed", currency).await)
            }
            CheckAnswer::NotFound => {
                account.record(true);
                // Proof only once no send of ours can still apply (its validity window passed).
                let last_send = self
                    .inner
                    .store
                    .transfer(&row.id)
                    .await
                    .ok()
                    .flatten()?
                    .last_sent_at;
                // Providers keep status records for a limited time (JDB: 3 months): past that,
                // "not found" proves nothing and the row waits for an operator.
                let too_old = now_ms() - row.created_at > NOT_FOUND_PROOF_MAX_AGE_MS;
                let proven = !too_old
                    && match last_send {
                        None => true,
                        Some(at) => now_ms() - at > account.adapter.request_window_ms(),
                    };
                if proven {
                    Some(self.fail(row, "provider has no record", currency).await)
                } else {
                    None
                }
            }
            CheckAnswer::Unknown(reason) => {
                account.record(!is_unreachable(&reason));
                None
            }
        }
    }

    async fn succeed(
        &self,
        row: &TransferRow,
        provider_balance: Option<i64>,
        currency: &Currency,
    ) -> TransferStatus {
        let held = house_id(&row.client_id, &held_at_provider(&row.provider));
        let succeeded = TransferState::Succeeded;
        let result = match row.direction {
            Direction::In => {
                // No wallet changes: in_flight → held_at_provider.
                let e = entry(
                    row,
                    "settle",
                    JournalKind::ProviderSettle,
                    None,
                    &house_id(&row.client_id, IN_FLIGHT),
                    held,
                    row.amount,
                );
                self.inner
                    .store
                    .transition_transfer(
                        &row.id,
                        &TransferState::OPEN,
                        succeeded,
                        provider_balance,
                        None,
                        Some(&e),
                    )
                    .await
                    .map_err(ProviderError::from)
            }
            Direction::Out => {
                let e = entry(
                    row,
                    "credit",
                    JournalKind::ProviderCredit,
                    None,
                    &held,
                    wallet_id(&row.user_id),
                    row.amount,
                );
                self.transition_via_wallet(
                    row,
                    succeeded,
                    provider_balance,
                    None,
                    Some(e),
                    currency,
                )
                .await
            }
        };
        self.finish(row, succeeded, result).await
    }

    async fn fail(&self, row: &TransferRow, reason: &str, currency: &Currency) -> TransferStatus {
        let failed = TransferState::Failed;
        let result = match row.direction {
            Direction::In => {
                let e = entry(
                    row,
                    "release",
                    JournalKind::ProviderRelease,
                    None,
                    &house_id(&row.client_id, IN_FLIGHT),
                    wallet_id(&row.user_id),
                    row.amount,
                );
                self.transition_via_wallet(row, failed, None, Some(reason), Some(e), currency)
                    .await
            }
            Direction::Out => self
                .inner
                .store
                .transition_transfer(
                    &row.id,
                    &TransferState::OPEN,
                    failed,
                    None,
                    Some(reason),
                    None,
                )
                .await
                .map_err(ProviderError::from),
        };
        self.finish(row, failed, result).await
    }

    async fn transition_via_wallet(
        &self,
        row: &TransferRow,
        to: TransferState,
        provider_balance: Option<i64>,
        error: Option<&str>,
        e: Option<NewEntry>,
        currency: &Currency,
    ) -> Result<Option<Option<crate::ledger::PostedEntry>>, ProviderError> {
        let op = ProviderOp::Transition {
            id: row.id.clone(),
            from: TransferState::OPEN.to_vec(),
            to,
            provider_balance,
            error: error.map(str::to_owned),
            entry: e,
        };
        match self.wallet_step(&row.user_id, currency, op).await? {
            ProviderMoved::Transitioned(moved) => Ok(moved),
            ProviderMoved::Begun(_) => unreachable!("Transition answers Transitioned"),
        }
    }

    /// Reports the state a transfer reached; if another path moved it first, its state.
    async fn finish(
        &self,
        row: &TransferRow,
        to: TransferState,
        result: Result<Option<Option<crate::ledger::PostedEntry>>, ProviderError>,
    ) -> TransferStatus {
        match result {
            Ok(Some(_)) => {
                metrics::counter!(crate::metrics::PROVIDER_TRANSFERS, "provider" => row.provider.clone(), "state" => to.as_str()).increment(1);
                if to == TransferState::Failed {
                    self.audit_provider_error(row, "provider.transfer_failed")
                        .await;
                }
                self.status_of(row, to)
            }
            Ok(None) => {
                let state = self
                    .inner
                    .store
                    .transfer(&row.id)
                    .await
                    .ok()
                    .flatten()
                    .map_or(TransferState::Unknown, |r| r.state);
                TransferStatus {
                    transfer_id: row.id.clone(),
                    state,
                    insufficient_funds: false,
                    player_in_game: false,
                }
            }
            Err(e) => {
                // The database refused the step: the row stays open for the reconciler.
                tracing::error!(transfer = %row.id, error = %e, "provider transfer step failed");
                self.status_of(row, TransferState::Unknown)
            }
        }
    }

    /// Provider errors are significant events (DESIGN section 6): one audit row each, with the
    /// reason as stored on the transfer. Best effort: the money is already safe.
    async fn audit_provider_error(&self, row: &TransferRow, action: &str) {
        let reason = match self.inner.store.transfer(&row.id).await {
            Ok(Some(t)) => t.last_error,
            _ => None,
        };
        // A player's refusals (no funds, in a game) are operating outcomes, not provider errors.
        if reason
            .as_deref()
            .is_some_and(|r| r.starts_with(INSUFFICIENT_PREFIX) || r == IN_GAME_REASON)
        {
            return;
        }
        provider_failure(
            &row.provider,
            reason.as_deref().unwrap_or_default(),
            Some(&row.id),
            if action == "provider.transfer_unknown" {
                "unknown"
            } else {
                "refused"
            },
        );
        let recorded = crate::audit::Event::new(action)
            .actor(None)
            .client(Some(&row.client_id))
            .target("provider_transfer", &row.id)
            .after(serde_json::json!({
                "provider": row.provider, "account": row.account, "direction": row.direction,
                "serial": row.serial, "reason": reason,
            }))
            .record(&self.inner.store)
            .await;
        if let Err(e) = recorded {
            tracing::warn!(transfer = %row.id, error = %e, "provider error not audited");
        }
    }

    fn status_of(&self, row: &TransferRow, state: TransferState) -> TransferStatus {
        TransferStatus {
            transfer_id: row.id.clone(),
            state,
            insufficient_funds: false,
            player_in_game: false,
        }
    }

    async fn mark_unknown(&self, row: &TransferRow, reason: &str) -> TransferStatus {
        let reason: String = reason.chars().take(200).collect();
        let moved = self
            .inner
            .store
            .transition_transfer(
                &row.id,
                &[TransferState::Pending],
                TransferState::Unknown,
                None,
                Some(&reason),
                None,
            )
            .await;
        if let Ok(Some(_)) = moved {
            metrics::counter!(crate::metrics::PROVIDER_TRANSFERS, "provider" => row.provider.clone(), "state" => TransferState::Unknown.as_str()).increment(1);
            self.audit_provider_error(row, "provider.transfer_unknown")
                .await;
        }
        let state = self
            .inner
            .store
            .transfer(&row.id)
            .await
            .ok()
            .flatten()
            .map_or(TransferState::Unknown, |r| r.state);
        self.status_of(row, state)
    }

    /// The reconciler's step for one open transfer.
    pub async fn reconcile(
        &self,
        row: &TransferRow,
    ) -> Result<Option<TransferStatus>, ProviderError> {
        self.inner.accounts.refresh(&self.inner.store).await;
        let account = self
            .inner
            .accounts
            .for_transfer(
                &self.inner.store,
                &row.client_id,
                &row.provider,
                &row.account,
            )
            .await?;
        let Some(account) = account else {
            return Ok(None);
        };
        let Some(client) = self.inner.store.client(&row.client_id).await? else {
            return Ok(None);
        };
        if !account.breaker.allow() {
            return Ok(None);
        }
        let _permit = account
            .limiter
            .acquire()
            .await
            .expect("limiter never closes");
        Ok(self.resolve(&account, row, &client.currency).await)
    }
}

/// A two-leg entry for step `step` of transfer `row`: `from` pays `amount` to `to`.
fn entry(
    row: &TransferRow,
    step: &str,
    kind: JournalKind,
    actor: Option<&str>,
    from: &str,
    to: String,
    amount: i64,
) -> NewEntry {
    let key = format!("pt:{}:{step}", row.id);
    let e = NewEntry {
        id: new_id(),
        client_id: row.client_id.clone(),
        idempotency_key: key.clone(),
        request_hash: key,
        kind,
        actor_id: actor.map(str::to_owned),
        subject_account_id: if to.starts_with("w:") {
            to.clone()
        } else {
            from.to_owned()
        },
        memo: Some(format!("{} {} {}", row.provider, row.direction, row.id)),
        created_at: now_ms(),
        audit: None,
        postings: vec![
            NewPosting {
                account_id: from.to_owned(),
                amount: -amount,
            },
            NewPosting {
                account_id: to,
                amount,
            },
        ],
    };
    e.assert_balanced();
    e
}
