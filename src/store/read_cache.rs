//! A node-local cache of the rows every request reads (its session, its permission overrides,
//! the target user and client, the client's settings), so the hot path costs no query for them.
//!
//! Invalidation is by epoch: database triggers bump `cache_epoch` whenever a session, user,
//! client, client settings or permission row changes (whichever node or tool changes it), a task on each node
//! polls that one row every `POLL` and drops everything when it moved, and this node's own
//! writes drop everything at once. A change made on another node is therefore seen here within
//! one poll (50 ms), not only after a cache lifetime.
//!
//! The same poll reads a second epoch, moved by triggers on `client_secrets`: the provider
//! registry (`transfers::service`) rebuilds per-client accounts when it changes. It has its own
//! counter because sessions move the first epoch all the time while credentials rarely change.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;

use super::types::{ClientRow, UserRow};

pub const POLL: Duration = Duration::from_millis(50);
/// Entries per map before it is simply emptied (a bound, not an LRU: refills are cheap).
const MAX_ENTRIES: usize = 200_000;

#[derive(Default)]
pub struct ReadCache {
    /// Counts clears, for those who re-check what they hold when a cached kind of row moved
    /// (websocket sessions) instead of polling for it.
    changes: Changes,
    epoch: AtomicI64,
    /// Bumped by every clear: a read that started before a clear must not refill the cache.
    generation: AtomicU64,
    pub(super) users: DashMap<String, UserRow>,
    pub(super) clients: DashMap<String, ClientRow>,
    /// Live session id → (its user, its expiry in ms).
    pub(super) sessions: DashMap<String, (String, i64)>,
    pub(super) overrides: DashMap<String, Vec<(String, String)>>,
    /// User id → whether the player has a protection row (issue 19; rows are created rarely,
    /// and creating one bumps the epoch: migration 0072).
    pub(super) protected: DashMap<String, bool>,
    /// Client id → its stored settings document (`None`: none stored, the defaults apply).
    pub(super) client_settings: DashMap<String, Option<Arc<str>>>,
    /// The credentials epoch last read from the database.
    credentials_epoch: AtomicI64,
    /// Bumped when that epoch moves or this node changed credentials itself.
    credentials_generation: AtomicU64,
}

impl ReadCache {
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.changes.0.send_modify(|n| *n = n.wrapping_add(1));
        self.users.clear();
        self.clients.clear();
        self.sessions.clear();
        self.overrides.clear();
        self.protected.clear();
        self.client_settings.clear();
    }

    /// Adopts the database's epochs; a change of the first empties the cache, of the second
    /// (credentials) moves the credentials generation.
    pub fn observe(&self, (epoch, credentials): (i64, i64)) {
        if self.epoch.swap(epoch, Ordering::AcqRel) != epoch {
            self.clear();
        }
        if self.credentials_epoch.swap(credentials, Ordering::AcqRel) != credentials {
            self.credentials_changed();
        }
    }

    /// Marks a change each time the cache is cleared (a session, user, client, setting or
    /// permission row moved somewhere, or this node wrote one).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.0.subscribe()
    }

    pub fn credentials_changed(&self) {
        self.credentials_generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn credentials_generation(&self) -> u64 {
        self.credentials_generation.load(Ordering::Acquire)
    }

    /// Taken before a database read whose result may be cached.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches a value read since `generation`, unless the cache was cleared meanwhile.
    pub(super) fn put<V>(&self, generation: u64, map: &DashMap<String, V>, key: &str, value: V) {
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key.to_owned(), value);
        // A clear that raced the insert may have missed it: undo rather than keep it stale.
        if self.generation() != generation {
            map.remove(key);
        }
    }
}

/// SQLite: whether the database files may have moved since the last look (mtime and size of
/// the file and its `-wal`), so an idle node skips the epoch query (a trip to sqlx's thread
/// and back, 20 times a second: most of an idle hub's CPU, issue 22). An unchanged stamp is
/// trusted only if it was taken well after its mtime: file times are kernel ticks, so a write
/// in the same tick as the last look could leave them as they were.
pub struct FileWatch {
    paths: [std::path::PathBuf; 2],
    /// The last stamp, and whether it was settled when taken.
    last: Option<(Stamp, bool)>,
    last_query: std::time::Instant,
}

/// Per file: its mtime and length (`None`: absent).
type Stamp = [Option<(std::time::SystemTime, u64)>; 2];

const SETTLED_AFTER: Duration = Duration::from_millis(100);
/// Queried at least this often whatever the files say.
const QUERY_AT_LEAST_EVERY: Duration = Duration::from_secs(5);

impl FileWatch {
    pub fn new(db: &std::path::Path) -> Self {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        Self {
            paths: [db.to_path_buf(), wal.into()],
            last: None,
            last_query: std::time::Instant::now(),
        }
    }

    /// `true`: read the epoch (something may have been written).
    pub fn moved(&mut self) -> bool {
        let now = std::time::SystemTime::now();
        let stamp = self.paths.clone().map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        });
        let settled = stamp.iter().flatten().all(|(mtime, _)| {
            now.duration_since(*mtime)
                .is_ok_and(|age| age >= SETTLED_AFTER)
        });
        let unchanged = matches!(&self.last, Some((last, true)) if *last == stamp);
        self.last = Some((stamp, settled));
        if unchanged && self.last_query.elapsed() < QUERY_AT_LEAST_EVERY {
            return false;
        }
        self.last_query = std::time::Instant::now();
        true
    }
}

struct Changes(tokio::sync::watch::Sender<u64>);

impl Default for Changes {
    fn default() -> Self {
        Self(tokio::sync::watch::Sender::new(0))
    }
}

/// Polls the epoch until the cache is dropped.
pub fn spawn_poller<F, Fut>(cache: &Arc<ReadCache>, read_epoch: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Option<(i64, i64)>> + Send,
{
    let weak = Arc::downgrade(cache);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(cache) = weak.upgrade() else { return };
            match read_epoch().await {
                Some(epoch) => cache.observe(epoch),
                // Cannot tell what changed: trust nothing cached.
                None => cache.clear(),
            }
        }
    });
}
