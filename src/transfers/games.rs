//! The game side of `Providers`: provider balance and launch (a game session starts; the
//! catalogue is `catalog.rs`, ending sessions `sessions.rs`),
//! and game results from providers' records, by callback or by pull, applied once per round
//! version between `held_at_provider` and `game_results`, then pushed to the player's room.

use super::service::{ProviderAccount, ProviderError, Providers, call_failed, provider_failure};
use crate::clients::settings;
use crate::domain::{Currency, new_id, now_ms};
use crate::ledger::accounts::{game_results, held_at_provider, house_id, wallet_id};
use crate::ledger::{JournalKind, NewEntry, NewPosting};
use crate::providers::{self, CallError, CallbackEnvelope, CallbackError, units};
use crate::realtime::bus::{Event, EventKind};
use crate::store::{ClientRow, GameSessionRow, RoundOutcome, RoundUpdate};

/// How a round report arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Callback,
    Pull,
}

/// Pages of round changes pulled per account per pass.
const PULL_PAGES_MAX: usize = 10;

impl Providers {
    pub async fn balance(
        &self,
        client: &ClientRow,
        currency: &Currency,
        user_id: &str,
        provider: &str,
    ) -> Result<i64, ProviderError> {
        let account = self.account_for(client, provider).await?;
        if !account.breaker.allow() {
            return Err(ProviderError::Unavailable("circuit breaker open".into()));
        }
        let uid = self.ensure_player(&account, client, user_id).await?;
        let mut result = account.adapter.balance(&uid, currency.exponent).await;
        account.record(!matches!(result, Err(CallError::Unavailable(_))));
        if let Err(CallError::UnknownPlayer { code }) = &result {
            // Lost by the provider: register again and ask once more (`Providers::drive`).
            provider_failure(provider, code, None, "unknown_player");
            self.register_again(&account, &client.id, user_id, &uid, &currency.code)
                .await?;
            result = account.adapter.balance(&uid, currency.exponent).await;
            account.record(!matches!(result, Err(CallError::Unavailable(_))));
        }
        result.map_err(|e| call_failed(provider, e))
    }

    /// Starts a game session and returns (session id, the provider's launch URL).
    pub async fn launch(
        &self,
        client: &ClientRow,
        user_id: &str,
        provider: &str,
        game: &str,
        lang: &str,
    ) -> Result<(String, String), ProviderError> {
        let account = self.account_for(client, provider).await?;
        self.check_active(provider)?;
        self.check_enabled(client, provider, Some(game)).await?;
        if !account.breaker.allow() {
            return Err(ProviderError::Unavailable("circuit breaker open".into()));
        }
        let uid = self.ensure_player(&account, client, user_id).await?;
        let mut result = account.adapter.launch(&uid, game, lang).await;
        account.record(!matches!(result, Err(CallError::Unavailable(_))));
        if let Err(CallError::UnknownPlayer { code }) = &result {
            provider_failure(provider, code, None, "unknown_player");
            self.register_again(&account, &client.id, user_id, &uid, &client.currency.code)
                .await?;
            result = account.adapter.launch(&uid, game, lang).await;
            account.record(!matches!(result, Err(CallError::Unavailable(_))));
        }
        let url = result.map_err(|e| call_failed(provider, e))?;
        let session = GameSessionRow {
            id: new_id(),
            client_id: client.id.clone(),
            user_id: user_id.to_owned(),
            provider: provider.to_owned(),
            game_code: game.to_owned(),
            state: "open".into(),
            started_at: now_ms(),
        };
        self.inner.store.insert_game_session(&session).await?;
        metrics::counter!(
            crate::metrics::GAME_SESSIONS,
            "client_id" => crate::metrics::client_label(&client.id),
            "game_type" => crate::metrics::game_type(provider, game)
        )
        .increment(1);
        Ok((session.id, url))
    }

    /// A provider callback: authenticated by the account it names, applied once per round
    /// version (a late, older version changes nothing), then pushed to the player's room.
    pub async fn callback(
        &self,
        provider: &str,
        headers: &actix_web::http::header::HeaderMap,
        body: &[u8],
    ) -> Result<bool, ProviderError> {
        self.provider_row(provider)?;
        let env = CallbackEnvelope {
            headers,
            body,
            now_ms: now_ms(),
        };
        let registry = &self.inner.accounts;
        registry.refresh(&self.inner.store).await;
        let own: Vec<_> = registry
            .own_accounts()
            .into_iter()
            .filter(|a| a.settings.provider == provider)
            .collect();
        let configured: Vec<_> = registry
            .configured
            .iter()
            .filter(|a| a.settings.provider == provider)
            .cloned()
            .collect();
        let operator = own
            .iter()
            .chain(&configured)
            .next()
            .and_then(|a| a.adapter.callback_operator(&env))
            .ok_or(CallbackError::Unauthenticated)?;
        // An operator id that a client's own account uses is that client's: only its secret
        // authenticates the callback (never the shared account's, nor another client's), and
        // the verifying account tells whose players the report may touch. Two clients may name
        // the same operator id; their secrets then tell them apart.
        let own: Vec<_> = own
            .into_iter()
            .filter(|a| a.settings.operator == operator)
            .collect();
        let candidates = if own.is_empty() {
            configured
                .into_iter()
                .filter(|a| a.settings.operator == operator)
                .collect()
        } else {
            own
        };
        let mut refusal = CallbackError::Unauthenticated;
        for account in &candidates {
            match account.adapter.verify_callback(&env) {
                Ok(report) => return self.apply_report(account, &report, Via::Callback).await,
                // A signature that fails for one account may verify for the next.
                Err(e) => {
                    if refusal == CallbackError::Unauthenticated {
                        refusal = e;
                    }
                }
            }
        }
        Err(refusal.into())
    }

    /// Pulls every account's round changes since its cursor (from 0 after a start: applying is
    /// idempotent per round version) and applies them. Returns how many changed something.
    pub async fn pull_pass(&self) -> usize {
        let mut applied = 0;
        for account in &self.all_accounts().await {
            for _page in 0..PULL_PAGES_MAX {
                let since = self
                    .inner
                    .cursors
                    .get(&account.transfer_name)
                    .map_or(0, |c| *c);
                if !account.breaker.allow() {
                    break;
                }
                let pulled = account.adapter.pull_rounds(since).await;
                account.record(!matches!(pulled, Err(CallError::Unavailable(_))));
                let Ok((reports, next)) = pulled else { break };
                let mut complete = true;
                for report in &reports {
                    match self.apply_report(account, report, Via::Pull).await {
                        Ok(true) => applied += 1,
                        Ok(false) => {}
                        Err(ProviderError::ForeignPlayer) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, round = %report.round_id, "pulled round not applied");
                            complete = false;
                        }
                    }
                }
                // The cursor only moves past a page whose every round was applied (or foreign).
                if !complete || next <= since {
                    break;
                }
                self.inner
                    .cursors
                    .insert(account.transfer_name.clone(), next);
            }
        }
        applied
    }

    /// Applies one round report from `account` (callback or pull) to the player's client.
    async fn apply_report(
        &self,
        account: &ProviderAccount,
        report: &providers::RoundReport,
        via: Via,
    ) -> Result<bool, ProviderError> {
        let provider = account.settings.provider.as_str();
        let player = self
            .inner
            .store
            .provider_player(provider, &account.settings.name, &report.uid)
            .await?
            .ok_or(ProviderError::ForeignPlayer)?;
        let client = self
            .inner
            .store
            .client(&player.client_id)
            .await?
            .ok_or(ProviderError::ForeignPlayer)?;
        // A provider the client does not enable may not report to it. Pulled records are still
        // kept: they are the provider's account of rounds already played, and the books must
        // hold every one of them.
        if via == Via::Callback {
            settings::load(&self.inner.store, &client.id)
                .await?
                .require_provider(provider)?;
        }
        let currency = &client.currency;
        let net = units::rescale(report.net_wire, report.wire_exponent, currency.exponent)
            .ok_or_else(|| CallbackError::Malformed("amount does not convert exactly".into()))?;
        // The turnover, converted as exactly as the net: a stake that does not is refused.
        let stake = units::rescale(report.stake_wire, report.wire_exponent, currency.exponent)
            .filter(|s| *s >= 0)
            .ok_or_else(|| CallbackError::Malformed("stake does not convert exactly".into()))?;
        self.ensure_house(&client).await?;
        let round = RoundUpdate {
            client_id: client.id.clone(),
            provider: provider.to_owned(),
            round_id: report.round_id.clone(),
            game: providers::game_code(&report.game),
            user_id: player.user_id.clone(),
            version: report.version,
            status: report.status.clone(),
            net,
            stake,
        };
        let held = house_id(&client.id, &held_at_provider(provider));
        let results = house_id(&client.id, &game_results(provider));
        let key = format!("round:{provider}:{}:v{}", report.round_id, report.version);
        let entry_for = |delta: i64| -> Option<NewEntry> {
            (delta != 0).then(|| NewEntry {
                id: new_id(),
                client_id: client.id.clone(),
                idempotency_key: key.clone(),
                request_hash: key.clone(),
                kind: JournalKind::GameResult,
                actor_id: None,
                // The player whose round it is: settlements attribute NGR by it.
                subject_account_id: wallet_id(&player.user_id),
                memo: Some(format!("{provider} round {}", report.round_id)),
                created_at: now_ms(),
                audit: None,
                postings: vec![
                    NewPosting {
                        account_id: held.clone(),
                        amount: delta,
                    },
                    NewPosting {
                        account_id: results.clone(),
                        amount: -delta,
                    },
                ],
            })
        };
        let outcome = self.inner.store.apply_round(&round, &entry_for).await?;
        if outcome == RoundOutcome::Raced {
            // Still contended: not applied now; the provider resends, or the next pull has it.
            return Err(ProviderError::Busy);
        }
        let applied = matches!(outcome, RoundOutcome::Applied { .. });
        metrics::counter!(crate::metrics::PROVIDER_CALLBACKS, "provider" => provider.to_owned(), "outcome" => if applied { "applied" } else { "duplicate" }).increment(1);
        if applied {
            if report.final_state {
                self.end_sessions_by_provider(&client.id, &player.user_id, provider)
                    .await?;
            }
            self.inner.bus.publish(Event::new(
                format!("user:{}", player.user_id),
                EventKind::GameUpdate,
                serde_json::json!({
                    "user_id": player.user_id,
                    "provider": provider,
                    "round_id": report.round_id,
                    "version": report.version,
                    "status": report.status,
                    "net": currency.format(net),
                    "currency": currency.code,
                }),
            ));
        }
        Ok(applied)
    }
}
