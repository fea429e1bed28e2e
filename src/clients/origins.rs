//! Which browser origins may call the API (CORS): the platform's list (`cors_origins`) and every
//! client's `allowed_origins`. Preflights carry no token, so the answer cannot depend on the
//! caller: an origin is allowed when the platform or any client lists it. Each node reloads the
//! clients' lists at most once a second, so a settings change is honoured within about that.
//! The same reload keeps the clients' `site_hosts` (the player site on a brand's own host).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::settings::{Settings, parse_origin};
use crate::store::Store;

const RELOAD_AFTER: Duration = Duration::from_secs(1);

pub struct AllowedOrigins {
    platform: HashSet<String>,
    clients: RwLock<Loaded>,
}

#[derive(Clone, Default)]
struct Loaded {
    at: Option<Instant>,
    origins: Arc<HashSet<String>>,
    /// `site_hosts` entry → client id.
    hosts: Arc<HashMap<String, String>>,
}

impl AllowedOrigins {
    /// `platform`: comma-separated origins from the configuration; invalid ones are refused.
    pub fn new(platform: &str) -> Result<Self, String> {
        let mut set = HashSet::new();
        for text in platform.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            set.insert(parse_origin(text).ok_or_else(|| {
                format!("cors_origins: {text:?} is not an origin (scheme://host[:port])")
            })?);
        }
        Ok(Self {
            platform: set,
            clients: RwLock::new(Loaded::default()),
        })
    }

    /// Whether `origin` (the request's `Origin` header) may read the API's answers.
    pub async fn allows(&self, store: &Store, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        if self.platform.contains(&origin) {
            return true;
        }
        self.clients(store).await.origins.contains(&origin)
    }

    /// The client whose `site_hosts` lists `host` (a `Host` header, any case), if one does.
    pub async fn site_host_client(&self, store: &Store, host: &str) -> Option<String> {
        let host = super::settings::parse_site_host(host)?;
        self.clients(store).await.hosts.get(&host).cloned()
    }

    async fn clients(&self, store: &Store) -> Loaded {
        {
            let loaded = self.clients.read().expect("origins lock");
            if loaded.at.is_some_and(|at| at.elapsed() < RELOAD_AFTER) {
                return loaded.clone();
            }
        }
        let Ok(rows) = store.all_client_settings().await else {
            // Keep what was known: a database hiccup must not open or close every origin.
            return self.clients.read().expect("origins lock").clone();
        };
        let mut origins = HashSet::new();
        let mut hosts = HashMap::new();
        for (client_id, text) in &rows {
            if let Ok(s) = serde_json::from_str::<Settings>(text) {
                origins.extend(s.allowed_origins);
                hosts.extend(s.site_hosts.into_iter().map(|h| (h, client_id.clone())));
            }
        }
        let loaded = Loaded {
            at: Some(Instant::now()),
            origins: Arc::new(origins),
            hosts: Arc::new(hosts),
        };
        *self.clients.write().expect("origins lock") = loaded.clone();
        loaded
    }
}
