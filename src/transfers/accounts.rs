//! The provider account registry: which operator account serves a client at a provider.
//!
//! Two kinds of account. **Configured** ones (`[[providers]]`, or the embedded simulators) serve
//! the clients they list (all by default). A client's **own** account is built from the sealed
//! credential document stored for it (`client_secrets`, see `providers::credentials`) and takes
//! precedence for that client. Each account has its own adapter (HTTP client), circuit breaker,
//! in-flight semaphore and metrics label (`{provider}:{client code}` for a client's own).
//!
//! Freshness: a trigger moves the credentials epoch (`cache_epoch` row 2) on every change of
//! `client_secrets`; each node's read-cache poller reads it with the cache epoch (one query per
//! 50 ms) and moves `Store::credentials_generation`, which this node also moves at once after
//! its own writes. When the generation moved, the next lookup lists `(client, provider,
//! version)` of every stored secret and rebuilds only the accounts whose version changed, so
//! breakers and registrations of unchanged accounts survive.
//!
//! Versions: every replacement of a document is a new version and the replaced one stays
//! stored (`client_secret_versions`). Transfer rows record `{provider}:{client code}@{version}`,
//! so a transfer left open keeps resolving against the account it was sent to, on any node and
//! after a restart; the replaced account is rebuilt on demand for that.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use dashmap::DashMap;
use tokio::sync::Semaphore;

use crate::config::ProviderAccountSettings;
use crate::providers::breaker::Breaker;
use crate::providers::credentials::ClientCredentials;
use crate::providers::{self, ProviderAdapter};
use crate::secrets::{Sealed, SecretBox};
use crate::store::{ClientRow, Store, StoreError};

/// A client's own account, as far as it is needed to find it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub client_id: String,
    pub version: i64,
}

/// One operator account at one provider.
pub struct ProviderAccount {
    /// `name` is the account's label: metrics, breaker, `provider_players.account`. For a
    /// client's own account: `{provider}:{client code}`.
    pub settings: ProviderAccountSettings,
    pub adapter: Arc<dyn ProviderAdapter>,
    pub breaker: Breaker,
    pub(super) limiter: Semaphore,
    /// Set for a client's own account.
    pub owner: Option<Owner>,
    /// What a transfer row records: the configured name, or `{label}@{version}`.
    pub transfer_name: String,
}

impl ProviderAccount {
    pub fn build(settings: ProviderAccountSettings, owner: Option<Owner>) -> anyhow::Result<Self> {
        let transfer_name = match &owner {
            Some(o) => format!("{}@{}", settings.name, o.version),
            None => settings.name.clone(),
        };
        let account = Self {
            adapter: providers::build_adapter(&settings)?,
            breaker: Breaker::new(settings.breaker_failures, settings.breaker_open_ms),
            limiter: Semaphore::new(settings.max_in_flight.max(1)),
            owner,
            transfer_name,
            settings,
        };
        account.publish_breaker();
        let _ = metrics::histogram!(crate::metrics::PROVIDER_CALL_DURATION, "provider" => account.adapter.provider(), "account" => account.settings.name.clone(), "method" => "transfer");
        Ok(account)
    }

    pub(super) fn serves(&self, client: &ClientRow) -> bool {
        if let Some(owner) = &self.owner {
            return owner.client_id == client.id;
        }
        self.settings.clients.is_empty()
            || self
                .settings
                .clients
                .iter()
                .any(|c| c == "*" || *c == client.code || *c == client.id)
    }

    fn publish_breaker(&self) {
        metrics::gauge!(crate::metrics::PROVIDER_BREAKER, "account" => self.settings.name.clone())
            .set(self.breaker.state().gauge());
    }

    pub(super) fn record(&self, reachable: bool) {
        if reachable {
            self.breaker.record_success();
        } else {
            self.breaker.record_failure();
        }
        self.publish_breaker();
    }
}

/// A client's own account at one provider, as last built.
#[derive(Clone)]
pub(super) enum ClientAccount {
    Ready(Arc<ProviderAccount>),
    /// Stored but unusable (cannot be opened, or not a valid document): the provider is
    /// unavailable to that client until the credentials are replaced. Never falls back to the
    /// shared account, whose operator the client did not choose.
    Broken {
        version: i64,
    },
}

impl ClientAccount {
    fn version(&self) -> i64 {
        match self {
            ClientAccount::Ready(a) => a.owner.as_ref().map_or(0, |o| o.version),
            ClientAccount::Broken { version } => *version,
        }
    }
}

/// Never synced: the first lookup loads every client's credentials.
const NEVER: u64 = u64::MAX;

pub(super) struct Registry {
    pub(super) configured: Vec<Arc<ProviderAccount>>,
    /// (client id, provider) → the client's own account, current version.
    clients: RwLock<Arc<HashMap<(String, String), ClientAccount>>>,
    /// Replaced versions, kept or rebuilt to resolve the transfers sent with them.
    retired: DashMap<String, Arc<ProviderAccount>>,
    synced: AtomicU64,
    sync: tokio::sync::Mutex<()>,
    secrets: Arc<SecretBox>,
}

impl Registry {
    pub(super) fn new(configured: Vec<Arc<ProviderAccount>>, secrets: Arc<SecretBox>) -> Self {
        Self {
            configured,
            clients: RwLock::new(Arc::new(HashMap::new())),
            retired: DashMap::new(),
            synced: AtomicU64::new(NEVER),
            sync: tokio::sync::Mutex::new(()),
            secrets,
        }
    }

    fn snapshot(&self) -> Arc<HashMap<(String, String), ClientAccount>> {
        self.clients.read().expect("registry lock").clone()
    }

    /// Rebuilds what changed if the credentials generation moved since the last sync. A
    /// database failure keeps the accounts built so far (and is retried at the next lookup).
    pub(super) async fn refresh(&self, store: &Store) {
        if self.synced.load(Ordering::Acquire) == store.credentials_generation() {
            return;
        }
        let _one_at_a_time = self.sync.lock().await;
        // Read before listing: a change committed after this moves it again.
        let generation = store.credentials_generation();
        if self.synced.load(Ordering::Acquire) == generation {
            return;
        }
        match self.rebuild(store).await {
            Ok(next) => {
                *self.clients.write().expect("registry lock") = Arc::new(next);
                self.synced.store(generation, Ordering::Release);
            }
            Err(e) => tracing::warn!(error = %e, "provider credentials not reloaded"),
        }
    }

    async fn rebuild(
        &self,
        store: &Store,
    ) -> Result<HashMap<(String, String), ClientAccount>, StoreError> {
        let current = self.snapshot();
        let mut next = HashMap::new();
        for (client_id, provider, version) in store.secret_versions().await? {
            let Some(provider) = providers::PROVIDER_NAMES
                .iter()
                .find(|p| **p == provider)
                .copied()
            else {
                continue;
            };
            let key = (client_id, provider.to_owned());
            if let Some(existing) = current.get(&key)
                && existing.version() == version
            {
                next.insert(key, existing.clone());
                continue;
            }
            let built = self.build(store, &key.0, provider, version).await?;
            if let Some(ClientAccount::Ready(old)) = current.get(&key) {
                // Its open transfers still resolve against it (same breaker, same limit).
                self.retired.insert(old.transfer_name.clone(), old.clone());
            }
            tracing::info!(client_id = %key.0, provider, version, usable = matches!(built, ClientAccount::Ready(_)), "client provider account built");
            next.insert(key, built);
        }
        Ok(next)
    }

    /// The client's account for one version of its credentials. Database failures are
    /// errors; anything wrong with the stored document makes the account `Broken`.
    async fn build(
        &self,
        store: &Store,
        client_id: &str,
        provider: &str,
        version: i64,
    ) -> Result<ClientAccount, StoreError> {
        let broken = ClientAccount::Broken { version };
        let Some(row) = store
            .client_secret_version(client_id, provider, version)
            .await?
        else {
            return Ok(broken);
        };
        let Some(client) = store.client(client_id).await? else {
            return Ok(broken);
        };
        let sealed = Sealed {
            key_id: row.key_id,
            nonce: row.nonce,
            ciphertext: row.ciphertext,
        };
        let doc = match self.secrets.open(&row.id, &sealed) {
            Ok(plain) => {
                serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&plain)
                    .map_err(|_| "not a JSON object".to_owned())
            }
            Err(e) => Err(e.to_string()),
        };
        let credentials =
            doc.and_then(|d| ClientCredentials::parse(provider, &d).map_err(|e| e.to_string()));
        let credentials = match credentials {
            Ok(c) => c,
            Err(reason) => {
                // The reason names a field or the sealing, never a value.
                tracing::error!(client_id, provider, version, %reason, "client provider credentials unusable");
                return Ok(broken);
            }
        };
        let defaults = self.defaults_for(&client, provider);
        let settings =
            credentials.settings(provider, format!("{provider}:{}", client.code), &defaults);
        let owner = Owner {
            client_id: client_id.to_owned(),
            version,
        };
        match ProviderAccount::build(settings, Some(owner)) {
            Ok(account) => Ok(ClientAccount::Ready(Arc::new(account))),
            Err(e) => {
                tracing::error!(client_id, provider, version, error = %e, "client provider account not built");
                Ok(broken)
            }
        }
    }

    /// Tuning values a client's own account takes unless its document sets them: those of the
    /// configured account serving the client, else of any configured one of the provider.
    fn defaults_for(&self, client: &ClientRow, provider: &str) -> ProviderAccountSettings {
        let of_provider = || {
            self.configured
                .iter()
                .filter(|a| a.settings.provider == provider)
        };
        of_provider()
            .find(|a| a.serves(client))
            .or_else(|| of_provider().next())
            .map(|a| a.settings.clone())
            .unwrap_or_default()
    }

    /// The client's own account at `provider`: `None` when it has none, `Some(None)` when its
    /// stored credentials are unusable.
    pub(super) fn own(
        &self,
        client_id: &str,
        provider: &str,
    ) -> Option<Option<Arc<ProviderAccount>>> {
        let snapshot = self.snapshot();
        match snapshot.get(&(client_id.to_owned(), provider.to_owned()))? {
            ClientAccount::Ready(a) => Some(Some(a.clone())),
            ClientAccount::Broken { .. } => Some(None),
        }
    }

    /// Every usable client account (for round pulls and callbacks).
    pub(super) fn own_accounts(&self) -> Vec<Arc<ProviderAccount>> {
        self.snapshot()
            .values()
            .filter_map(|a| match a {
                ClientAccount::Ready(a) => Some(a.clone()),
                ClientAccount::Broken { .. } => None,
            })
            .collect()
    }

    /// The account a transfer row was sent with (`row.account`), whatever version of the
    /// client's credentials is current now.
    pub(super) async fn for_transfer(
        &self,
        store: &Store,
        client_id: &str,
        provider: &str,
        account: &str,
    ) -> Result<Option<Arc<ProviderAccount>>, StoreError> {
        if let Some(a) = self.configured.iter().find(|a| a.transfer_name == account) {
            return Ok(Some(a.clone()));
        }
        let Some(version) = account
            .rsplit_once('@')
            .and_then(|(_, v)| v.parse::<i64>().ok())
        else {
            return Ok(None);
        };
        if let Some(Some(current)) = self.own(client_id, provider)
            && current.transfer_name == account
        {
            return Ok(Some(current));
        }
        if let Some(a) = self.retired.get(account) {
            return Ok(Some(a.clone()));
        }
        match self.build(store, client_id, provider, version).await? {
            ClientAccount::Ready(a) if a.transfer_name == account => {
                self.retired.insert(account.to_owned(), a.clone());
                Ok(Some(a))
            }
            _ => Ok(None),
        }
    }
}
