//! The ledger writer's durability stage. The writer's connection runs `synchronous = NORMAL`:
//! its COMMIT writes the batch's WAL frames but does not wait for the disk. This thread then
//! `fdatasync`s the WAL file and only then lets the batch's callers be answered. That is what
//! `synchronous = FULL` does (FULL is NORMAL plus a WAL sync at every commit), but the sync
//! runs here, while the writer already executes the next batch: on this disk the sync was
//! about as long as the batch's statements (ARCHITECTURE.md, "a pipelined WAL sync").
//!
//! Safe because the WAL is a log: frames are appended in commit order and recovery keeps a
//! commit only if every frame before it checks out, so a sync that covers batch N's frames
//! covers every earlier commit too, and a later batch cannot survive a crash without N. Syncs
//! queued together are served by one `fdatasync` (FIFO, so a batch is never answered before
//! an earlier one). The other connections of the hub keep `synchronous = FULL`; checkpoints
//! sync the WAL before copying it back, as they always do. A failed sync stops the process
//! (`fail_stop`).
//!
//! With nothing queued behind a batch (ordinary rates) there is nothing to overlap: the writer
//! then syncs on its own thread (`sync_now`, same file, same faults, same fail-stop) before it
//! answers the committer, which saves the hand-off to this thread and back (issue 22).

use std::fs::File;
use std::num::NonZeroU64;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::store::types::{Durable, StoreError, StoreResult};

pub struct WalSyncer {
    waiters: mpsc::Sender<oneshot::Sender<()>>,
    /// Shared by this thread and `sync_now`: one sync at a time, one fault count.
    state: Arc<Mutex<SyncState>>,
}

struct SyncState {
    wal: WalFile,
    done: u64,
    faults: WalSyncFaults,
}

impl SyncState {
    /// One sync of the WAL; a failure stops the process.
    fn sync(&mut self) {
        if let Err(e) = self
            .faults
            .before_sync(self.done)
            .and_then(|()| self.wal.sync())
        {
            fail_stop(&e);
        }
        self.done += 1;
        metrics::counter!(crate::metrics::SQLITE_WAL_SYNCS).increment(1);
    }
}

/// Disk faults injected into the sync stage, for drills and tests (`test_wal_sync_*`
/// settings): a slow disk, and a disk whose sync fails.
#[derive(Clone, Copy, Debug, Default)]
pub struct WalSyncFaults {
    /// Slept before every sync.
    pub delay: Duration,
    /// This many syncs succeed; the next one fails.
    pub fail_after: Option<NonZeroU64>,
}

impl WalSyncFaults {
    fn before_sync(&self, done: u64) -> std::io::Result<()> {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        match self.fail_after {
            Some(n) if done >= n.get() => Err(std::io::Error::other("injected WAL sync failure")),
            _ => Ok(()),
        }
    }
}

impl WalSyncer {
    pub fn start(db_path: &Path, faults: WalSyncFaults) -> StoreResult<Self> {
        let state = Arc::new(Mutex::new(SyncState {
            wal: WalFile::new(db_path),
            done: 0,
            faults,
        }));
        let (waiters, queue) = mpsc::channel::<oneshot::Sender<()>>();
        let shared = state.clone();
        std::thread::Builder::new()
            .name("ledger-wal-sync".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    batch.extend(queue.try_iter());
                    lock(&shared).sync();
                    for waiter in batch {
                        let _ = waiter.send(());
                    }
                }
            })
            .map_err(|e| StoreError::Config(format!("cannot start the WAL sync thread: {e}")))?;
        Ok(Self { waiters, state })
    }

    /// Call after the commit returned, when no batch waits to run: syncs on the caller's
    /// thread and returns a `Durable` that is already resolved.
    pub fn sync_now(&self) -> Durable {
        self.sync_here();
        let (done, durable) = oneshot::channel();
        let _ = done.send(());
        durable
    }

    /// Syncs on the caller's thread (after the commit returned); stops the process on failure.
    pub fn sync_here(&self) {
        lock(&self.state).sync();
    }

    /// Call after the commit returned: the future resolves once its frames are on disk.
    pub fn after_commit(&self) -> Durable {
        let (waiter, durable) = oneshot::channel();
        // If the thread is gone the waiter is dropped, and the batch is answered with an error.
        let _ = self.waiters.send(waiter);
        durable
    }
}

/// A panic while holding the lock can only come from `fail_stop`'s neighbours (it aborts);
/// the state stays usable.
fn lock(state: &Mutex<SyncState>) -> std::sync::MutexGuard<'_, SyncState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A failed sync leaves committed batches that other connections may already have read and
/// built on, and after a failed `fdatasync` Linux may report later ones as fine although
/// earlier pages never reached the disk. Nothing written since the last good sync can be
/// trusted, so the process stops at once, before any of it is acknowledged (as PostgreSQL
/// does); on restart SQLite's WAL recovery keeps exactly the commits whose frames are whole,
/// and clients retry with their idempotency keys.
fn fail_stop(error: &std::io::Error) -> ! {
    tracing::error!(error = %error, "the ledger WAL could not be synced; stopping the hub");
    eprintln!("nashub: the ledger WAL could not be synced ({error}); stopping");
    std::process::abort()
}

/// `<db>-wal`, opened on first use (it exists once a commit has happened) and reopened if the
/// file at that path is no longer the one held (SQLite deletes it only when the last
/// connection closes, and the writer's stays open; checked anyway, at most every
/// `CHECK_EVERY`: a `stat` per sync was 2% of the writer's thread at ordinary rates).
struct WalFile {
    path: PathBuf,
    file: Option<(File, u64, u64)>,
    checked: Option<std::time::Instant>,
    check_every: Duration,
}

const CHECK_EVERY: Duration = Duration::from_secs(1);

impl WalFile {
    fn new(db_path: &Path) -> Self {
        let mut path = db_path.as_os_str().to_owned();
        path.push("-wal");
        Self {
            path: path.into(),
            file: None,
            checked: None,
            check_every: CHECK_EVERY,
        }
    }

    fn sync(&mut self) -> std::io::Result<()> {
        let due = self
            .checked
            .is_none_or(|at| at.elapsed() >= self.check_every);
        if due || self.file.is_none() {
            let now = std::fs::metadata(&self.path)?;
            let current =
                matches!(&self.file, Some((_, dev, ino)) if *dev == now.dev() && *ino == now.ino());
            if !current {
                let file = File::open(&self.path)?;
                let meta = file.metadata()?;
                self.file = Some((file, meta.dev(), meta.ino()));
            }
            self.checked = Some(std::time::Instant::now());
        }
        let (file, _, _) = self.file.as_ref().expect("opened above");
        file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_follows_the_wal_file_at_its_path_even_when_it_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let mut wal = WalFile::new(&db);
        wal.check_every = Duration::ZERO;
        assert!(
            wal.sync().is_err(),
            "no WAL yet: nothing to sync is an error"
        );
        std::fs::write(dir.path().join("x.db-wal"), b"one").unwrap();
        wal.sync().unwrap();
        let first = wal.file.as_ref().unwrap().2;
        std::fs::remove_file(dir.path().join("x.db-wal")).unwrap();
        std::fs::write(dir.path().join("x.db-wal"), b"two").unwrap();
        wal.sync().unwrap();
        assert_ne!(wal.file.as_ref().unwrap().2, first, "reopened the new file");
    }
}
