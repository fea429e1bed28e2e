//! Provider registration as data, and the games catalogue (issue 21).
//!
//! **Providers.** The `providers` table says which providers exist (code, protocol, name,
//! default base URL, status); each node reads it at start-up and every
//! [`REGISTRY_RELOAD`] (at once after its own change), and keeps it in memory. The compiled
//! list (`domain::PROVIDER_NAMES`) says which *protocols* exist: adapter modules implementing
//! `ProviderAdapter`. A row is served only when its protocol is compiled and its code is that
//! protocol's name: house accounts (`held_at_provider:<code>`), settlement and metric labels are
//! keyed by the compiled names, so a second account of one protocol under another code is not
//! supported yet (it would need those to iterate the table). A third provider is a new adapter
//! module, its name in `PROVIDER_NAMES`, a line in `build_adapter`, and a row.
//! A `disabled` row refuses new money in and launches (403 `provider_inactive`); transfers out,
//! balances and results keep working: money held there is real.
//!
//! **Catalogue.** The `games` table holds each provider's game list as last fetched (code,
//! name, type, `active`/`removed`), refreshed at start-up, every [`CATALOGUE_EVERY`] and on
//! `POST /api/v1/providers/{provider}/games/refresh`; the listings read it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::service::{ProviderAccount, ProviderError, Providers, call_failed};
use crate::domain::now_ms;
use crate::providers::{self, CallError, GameInfo};
use crate::store::{CatalogueChange, ClientRow, GameQuery, GameRow, ListedGame, ProviderRow};

/// How often each node re-reads the provider rows (another node's `PATCH`).
pub const REGISTRY_RELOAD: Duration = Duration::from_secs(5);
/// How often the catalogue is fetched again from every active provider.
pub const CATALOGUE_EVERY: Duration = Duration::from_secs(3600);

pub const PROVIDER_ACTIVE: &str = "active";
pub const PROVIDER_DISABLED: &str = "disabled";

/// The provider rows this node serves (see the module text for which rows qualify).
#[derive(Default)]
pub struct ProviderCatalog {
    /// `None` until the table was read: the compiled providers, all active.
    rows: RwLock<Option<Arc<Vec<ProviderRow>>>>,
}

impl ProviderCatalog {
    /// Keeps the rows whose protocol is compiled and whose code is that protocol's name.
    pub fn set(&self, rows: Vec<ProviderRow>) {
        let usable = rows
            .into_iter()
            .filter(|r| {
                let ok = providers::PROVIDER_NAMES.contains(&r.protocol.as_str())
                    && r.code == r.protocol;
                if !ok {
                    tracing::warn!(code = %r.code, protocol = %r.protocol, "provider row ignored: its protocol is not compiled in, or its code is not the protocol's name");
                }
                ok
            })
            .collect();
        *self.rows.write().expect("provider rows lock") = Some(Arc::new(usable));
    }

    /// Every served provider row, by code.
    pub fn rows(&self) -> Vec<ProviderRow> {
        match &*self.rows.read().expect("provider rows lock") {
            Some(rows) => rows.as_ref().clone(),
            None => providers::PROVIDER_NAMES
                .iter()
                .map(|p| ProviderRow {
                    code: (*p).to_owned(),
                    protocol: (*p).to_owned(),
                    name: (*p).to_owned(),
                    base_url: None,
                    status: PROVIDER_ACTIVE.into(),
                    created_at: 0,
                    updated_at: 0,
                })
                .collect(),
        }
    }

    pub fn get(&self, code: &str) -> Option<ProviderRow> {
        self.rows().into_iter().find(|r| r.code == code)
    }
}

/// Fills the base URL of configured accounts that give none from their provider's row.
pub fn default_base_urls(
    accounts: &mut [crate::config::ProviderAccountSettings],
    rows: &[ProviderRow],
) {
    for account in accounts.iter_mut().filter(|a| a.base_url.is_empty()) {
        if let Some(url) = rows
            .iter()
            .find(|r| r.code == account.provider)
            .and_then(|r| r.base_url.clone())
        {
            account.base_url = url;
        }
    }
}

/// Reloads the provider rows every [`REGISTRY_RELOAD`] and refreshes the catalogue at once
/// and every [`CATALOGUE_EVERY`]. Runs forever on the current runtime.
pub async fn run(providers: Providers) {
    let mut last_refresh: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(REGISTRY_RELOAD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = providers.reload_provider_rows().await {
            tracing::warn!(error = %e, "cannot read the provider rows");
        }
        if last_refresh.is_none_or(|at| at.elapsed() >= CATALOGUE_EVERY) {
            providers.refresh_all_games().await;
            last_refresh = Some(tokio::time::Instant::now());
        }
    }
}

fn listed(games: &[GameInfo]) -> Vec<ListedGame> {
    games
        .iter()
        .map(|g| ListedGame {
            code: g.code.clone(),
            name: g.name.clone(),
            game_type: g.game_type.to_owned(),
        })
        .collect()
}

impl Providers {
    /// The rows read at start-up (before any account is used).
    pub fn set_provider_rows(&self, rows: Vec<ProviderRow>) {
        self.inner.catalog.set(rows);
    }

    pub async fn reload_provider_rows(&self) -> Result<(), ProviderError> {
        let rows = self.inner.store.provider_rows().await?;
        self.inner.catalog.set(rows);
        Ok(())
    }

    /// The provider rows this node serves.
    pub fn provider_rows(&self) -> Vec<ProviderRow> {
        self.inner.catalog.rows()
    }

    /// A registered provider with a compiled protocol (else 404 `provider`).
    pub fn provider_row(&self, code: &str) -> Result<ProviderRow, ProviderError> {
        self.inner
            .catalog
            .get(code)
            .ok_or(ProviderError::UnknownProvider)
    }

    /// Refuses new money in and launches at a provider whose row is disabled.
    pub(super) fn check_active(&self, code: &str) -> Result<(), ProviderError> {
        match self.provider_row(code)?.status.as_str() {
            PROVIDER_ACTIVE => Ok(()),
            _ => Err(ProviderError::ProviderInactive),
        }
    }

    /// An account to ask for a provider's game list: a configured one, else any client's own.
    async fn catalogue_account(&self, provider: &str) -> Option<Arc<ProviderAccount>> {
        let accounts = self.all_accounts().await;
        accounts
            .iter()
            .find(|a| a.settings.provider == provider && a.owner.is_none())
            .or_else(|| accounts.iter().find(|a| a.settings.provider == provider))
            .cloned()
    }

    /// Asks `account` for its provider's game list (breaker and metrics as for other calls).
    async fn fetch_games(&self, account: &ProviderAccount) -> Result<Vec<GameInfo>, ProviderError> {
        let provider = account.settings.provider.as_str();
        if !account.breaker.allow() {
            return Err(ProviderError::Unavailable("circuit breaker open".into()));
        }
        let result = account.adapter.games().await;
        account.record(!matches!(result, Err(CallError::Unavailable(_))));
        result.map_err(|e| call_failed(provider, e))
    }

    /// Fetches one provider's game list and stores it in the catalogue.
    pub async fn refresh_games(&self, provider: &str) -> Result<CatalogueChange, ProviderError> {
        let row = self.provider_row(provider)?;
        let Some(account) = self.catalogue_account(&row.code).await else {
            return Err(ProviderError::NotEnabled);
        };
        let outcome = self.store_fetched(&account).await;
        let label = if outcome.is_ok() { "ok" } else { "failed" };
        metrics::counter!(crate::metrics::CATALOGUE_REFRESHES, "provider" => providers::PROVIDER_NAMES.iter().find(|p| **p == row.code).copied().unwrap_or("other"), "outcome" => label).increment(1);
        outcome
    }

    async fn store_fetched(
        &self,
        account: &ProviderAccount,
    ) -> Result<CatalogueChange, ProviderError> {
        let games = self.fetch_games(account).await?;
        let provider = account.settings.provider.as_str();
        let change = self
            .inner
            .store
            .replace_games(provider, &listed(&games), now_ms())
            .await?;
        tracing::info!(
            provider,
            games = games.len(),
            added = change.added,
            updated = change.updated,
            removed = change.removed,
            "games catalogue refreshed"
        );
        Ok(change)
    }

    /// Refreshes every active provider's catalogue; failures are logged (the stored one stays).
    pub async fn refresh_all_games(&self) {
        for row in self.provider_rows() {
            if row.status != PROVIDER_ACTIVE {
                continue;
            }
            if let Err(e) = self.refresh_games(&row.code).await {
                tracing::warn!(provider = %row.code, error = %e, "games catalogue not refreshed");
            }
        }
    }

    /// One provider's catalogue for a client (`GET /api/v1/providers/{provider}/games`): the
    /// stored games, or, while none are stored, the provider's list fetched now (and stored);
    /// without the games the client switched off (the whole provider off: 403).
    pub async fn games(
        &self,
        client: &ClientRow,
        provider: &str,
    ) -> Result<Vec<GameInfo>, ProviderError> {
        let account = self.account_for(client, provider).await?;
        let disabled = self
            .check_enabled(client, provider, None)
            .await?
            .disabled_games;
        let stored: Vec<GameRow> = self
            .inner
            .store
            .provider_games(provider)
            .await?
            .into_iter()
            .filter(|g| g.status == "active")
            .collect();
        let mut games = if stored.is_empty() {
            let fetched = self.fetch_games(&account).await?;
            // Shared accounts list the provider's catalogue; a client's own may differ, so it
            // only answers, it does not fill the table.
            if account.owner.is_none()
                && let Err(e) = self
                    .inner
                    .store
                    .replace_games(provider, &listed(&fetched), now_ms())
                    .await
            {
                tracing::warn!(provider, error = %e, "fetched games not stored");
            }
            fetched
        } else {
            stored
                .into_iter()
                .map(|g| GameInfo {
                    game_type: static_type(&g.game_type),
                    code: g.code,
                    name: g.name,
                })
                .collect()
        };
        games.retain(|g| !disabled.contains(&g.code));
        Ok(games)
    }

    /// The providers whose games `client` may list: active rows, in the client's settings
    /// (`enabled_providers`), with an account serving the client. `None`: every active one.
    pub async fn listable_providers(
        &self,
        client: Option<&ClientRow>,
    ) -> Result<Vec<String>, ProviderError> {
        let mut out = Vec::new();
        let enabled = match client {
            Some(c) => Some(
                crate::clients::settings::load(&self.inner.store, &c.id)
                    .await?
                    .enabled_providers
                    .clone(),
            ),
            None => None,
        };
        for row in self.provider_rows() {
            if row.status != PROVIDER_ACTIVE {
                continue;
            }
            if let (Some(client), Some(enabled)) = (client, &enabled)
                && (!enabled.contains(&row.code)
                    || self.account_for(client, &row.code).await.is_err())
            {
                continue;
            }
            out.push(row.code);
        }
        Ok(out)
    }

    /// Games across providers (`GET /api/v1/games`); see [`Providers::listable_providers`].
    pub async fn list_games(
        &self,
        client: Option<&ClientRow>,
        provider: Option<&str>,
        game_type: Option<&str>,
        after: Option<(String, String)>,
        limit: i64,
    ) -> Result<Vec<GameRow>, ProviderError> {
        let mut providers = self.listable_providers(client).await?;
        if let Some(p) = provider {
            providers.retain(|code| code == p);
        }
        Ok(self
            .inner
            .store
            .list_games(&GameQuery {
                providers,
                client_id: client.map(|c| c.id.clone()),
                game_type: game_type.map(str::to_owned),
                after,
                limit,
            })
            .await?)
    }
}

/// The known game types as `'static` (what `GameInfo` carries).
pub const GAME_TYPES: &[&str] = &[
    "slot", "fishing", "arcade", "card", "lottery", "sports", "other",
];

fn static_type(t: &str) -> &'static str {
    GAME_TYPES
        .iter()
        .find(|k| **k == t)
        .copied()
        .unwrap_or("other")
}
