//! Checkpoints off the commit path. SQLite's automatic checkpoint runs inside the commit that
//! crosses the threshold: that commit copies every page of the WAL back into the database and
//! fsyncs the file (tens of milliseconds at 10,000 frames), and every mutation queued behind
//! it waits. Here a thread of its own copies the WAL back with PASSIVE checkpoints, which run
//! beside the writer, and once the WAL is long, ends with a RESTART checkpoint: it holds
//! writers back only while it copies what the passive pass had not reached yet, so the next
//! write starts the WAL again from its beginning and the file stays bounded.
//!
//! Every connection of the hub turns automatic checkpoints off (`wal_autocheckpoint = 0`).
//!
//! A pass runs every 20 ms only while the ledger is busy (≥ `PASS_AFTER_ENTRIES` committed
//! since the last one), else at most every `PASS_AT_LEAST_EVERY`: at a few hundred deposits a
//! second a pass every 20 ms copied the same hot pages (audit head, account rows, index leaves)
//! and synced the database file for every few batches, and woke an idle hub 50 times a second
//! (issue 22).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::sqlite_writer::sqlite_error;
use crate::store::types::{StoreError, StoreResult};

/// How often the thread looks at the ledger's progress (a pass runs at most this often).
const LOOK_EVERY: Duration = Duration::from_millis(20);
/// Entries committed by the ledger writer since the last pass that make the next look a pass.
/// 256, not 64: at 500 lone deposits a second this thread's CPU per deposit fell from 14 to 8
/// µs in three pairs (hot pages are copied once per pass); the WAL then holds up to ~16 MB
/// between passes (load-tests/RESULTS.md, session 26).
const PASS_AFTER_ENTRIES: u64 = 256;
/// Longest between passes (other connections' writes, a quiet ledger).
const PASS_AT_LEAST_EVERY: Duration = Duration::from_millis(500);
/// WAL length (frames) past which a pass ends with a RESTART checkpoint.
const RESTART_AT_FRAMES: i64 = 8_000;

pub struct Checkpointer {
    /// Dropping it stops the thread.
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// `committed`: entries the ledger writer has committed so far.
    pub fn start(path: &Path, committed: Arc<AtomicU64>) -> StoreResult<Self> {
        let conn = open(path).map_err(sqlite_error)?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("ledger-checkpoint".into())
            .spawn(move || {
                let (mut last_count, mut last_pass) = (0, Instant::now());
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(LOOK_EVERY) {
                    let count = committed.load(Ordering::Relaxed);
                    if count - last_count < PASS_AFTER_ENTRIES
                        && last_pass.elapsed() < PASS_AT_LEAST_EVERY
                    {
                        continue;
                    }
                    (last_count, last_pass) = (count, Instant::now());
                    if let Err(e) = pass(&conn) {
                        // Another process's checkpoint, most likely; the next pass retries.
                        tracing::debug!(error = %e, "checkpoint pass failed");
                    }
                }
            })
            .map_err(|e| StoreError::Config(format!("cannot start the checkpointer: {e}")))?;
        Ok(Self { _stop: stop })
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_handler(Some(short_wait))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

/// A RESTART checkpoint holds new writers back while it waits for the writer and the readers
/// it needs gone; past ~5 ms it gives up waiting and copies what it can (as PASSIVE does), and
/// the next pass tries again. (PASSIVE never waits.)
fn short_wait(attempt: i32) -> bool {
    std::thread::sleep(Duration::from_micros(100));
    attempt < 50
}

/// One pass: copy back what the WAL holds, and restart it once it is long.
fn pass(conn: &Connection) -> rusqlite::Result<()> {
    let (_, frames, _) = checkpoint(conn, "PASSIVE")?;
    if frames >= RESTART_AT_FRAMES {
        let (busy, frames, copied) = checkpoint(conn, "RESTART")?;
        metrics::counter!(crate::metrics::SQLITE_WAL_RESTARTS).increment(1);
        if busy != 0 {
            tracing::debug!(frames, copied, "WAL restart met a busy writer or reader");
        }
    }
    Ok(())
}

/// (busy, WAL frames, frames copied back), as `PRAGMA wal_checkpoint` reports them.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}
