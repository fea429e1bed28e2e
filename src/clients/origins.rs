//! Which browser origins may call the API (CORS): the platform's list (`cors_origins`) and every
//! client's `allowed_origins`. Preflights carry no token, so the answer cannot depend on the
//! caller: an origin is allowed when the platform or any client lists it. Each node reloads the
//! clients' lists at most once a second, so a settings change is honoured within about that.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::settings::{Settings, parse_origin};
use crate::store::Store;

const RELOAD_AFTER: Duration = Duration::from_secs(1);

pub struct AllowedOrigins {
    platform: HashSet<String>,
    clients: RwLock<Loaded>,
}

struct Loaded {
    at: Option<Instant>,
    origins: Arc<HashSet<String>>,
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
            clients: RwLock::new(Loaded {
                at: None,
                origins: Arc::default(),
            }),
        })
    }

    /// Whether `origin` (the request's `Origin` header) may read the API's answers.
    pub async fn allows(&self, store: &Store, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        if self.platform.contains(&origin) {
            return true;
        }
        self.client_origins(store).await.contains(&origin)
    }

    async fn client_origins(&self, store: &Store) -> Arc<HashSet<String>> {
        {
            let loaded = self.clients.read().expect("origins lock");
            if loaded.at.is_some_and(|at| at.elapsed() < RELOAD_AFTER) {
                return loaded.origins.clone();
            }
        }
        let Ok(rows) = store.all_client_settings().await else {
            // Keep what was known: a database hiccup must not open or close every origin.
            return self.clients.read().expect("origins lock").origins.clone();
        };
        let origins: HashSet<String> = rows
            .iter()
            .filter_map(|(_, text)| serde_json::from_str::<Settings>(text).ok())
            .flat_map(|s| s.allowed_origins)
            .collect();
        let origins = Arc::new(origins);
        *self.clients.write().expect("origins lock") = Loaded {
            at: Some(Instant::now()),
            origins: origins.clone(),
        };
        origins
    }
}
