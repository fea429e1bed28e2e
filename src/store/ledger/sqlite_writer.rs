//! The SQLite ledger writer: group-commit batches run on a dedicated thread that owns its own
//! connection and keeps every statement prepared. Through sqlx each statement of a batch is a
//! hop to sqlx's worker thread and back (about a dozen per batch, each a wake-up on a busy box);
//! here the whole batch is one hop, and the statements are the plain single-row ones.
//!
//! The batch runs while the caller holds the sqlx write connection (see
//! `sqlite::Backend::post_batch`), so in this process the two writers take turns in the pool's
//! fair queue instead of meeting `SQLITE_BUSY`. Other processes on the same file are met by
//! `BEGIN IMMEDIATE` and the busy timeout, as before.
//!
//! The algorithm is `write::write`, the same as every other money write; this file only
//! executes its statements (`RusqliteLedger`) inside one `BEGIN IMMEDIATE` transaction.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::batch_plan::{AccountChange, LockedAccount, UsedKey};
use super::write::{self as ledger_write, Rows, Value};
use crate::otel::TraceParent;
use crate::store::identity::NewAudit;
use crate::store::sql_text::{STORED_ENTRY_LINES, STORED_ENTRY_TIME};
use crate::store::types::{
    CommittedBatch, NewEntry, PostOutcome, PostedEntry, PostedLine, StoreError, StoreResult,
};

pub type BatchResult = StoreResult<Vec<StoreResult<PostOutcome>>>;

/// Runs on the writer thread once a batch is committed and on disk (or failed as a whole).
pub type Answer = Box<dyn FnOnce(BatchResult) + Send>;

struct Job {
    entries: Vec<Arc<NewEntry>>,
    audit_key: Arc<[u8; 32]>,
    reply: Reply,
    /// The batch's trace position (empty while traces are off): this thread's span continues it.
    trace: TraceParent,
}

enum Reply {
    /// The committer answers the callers; the batch's sync may still be running.
    Committer {
        /// Entries queued at the committer, not in a batch (0: nothing to overlap a sync with).
        waiting: Arc<AtomicUsize>,
        reply: oneshot::Sender<StoreResult<CommittedBatch>>,
    },
    /// This thread answers (a lone entry at an idle committer): the committer's thread is not
    /// woken at all for it (issue 22).
    Here(Answer),
}

pub struct SqliteWriter {
    jobs: std::sync::mpsc::Sender<Job>,
    _checkpointer: super::sqlite_checkpointer::Checkpointer,
}

impl SqliteWriter {
    /// Opens the connection (the database exists and is migrated by now) and starts the thread,
    /// which ends when the writer is dropped. `pipelined`: commits run `synchronous = NORMAL`
    /// and `sqlite_wal_sync.rs` makes each durable beside the next batch; otherwise each
    /// commit waits for its own sync (`synchronous = FULL`).
    pub fn start(
        path: PathBuf,
        pipelined: bool,
        faults: super::sqlite_wal_sync::WalSyncFaults,
    ) -> StoreResult<Self> {
        let conn = open(&path, pipelined).map_err(sqlite_error)?;
        let committed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let checkpointer =
            super::sqlite_checkpointer::Checkpointer::start(&path, committed.clone())?;
        let syncer = if pipelined {
            Some(super::sqlite_wal_sync::WalSyncer::start(&path, faults)?)
        } else {
            None
        };
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || {
                let mut conn = conn;
                for job in queue {
                    // Disabled, so free, while traces are off.
                    let span = tracing::info_span!(target: crate::otel::TARGET, "ledger.sqlite_write", entries = job.entries.len());
                    job.trace.adopt(&span);
                    let _in_span = span.enter();
                    let mut result = post_batch(&mut conn, &job.entries, &job.audit_key);
                    if result.is_ok() {
                        committed.fetch_add(job.entries.len() as u64, Ordering::Relaxed);
                    }
                    match job.reply {
                        Reply::Committer { waiting, reply } => {
                            let result = result.map(|results| CommittedBatch {
                                results,
                                // Asked only now that COMMIT has written the frames; with no
                                // batch waiting, synced here rather than beside it.
                                durable: syncer.as_ref().map(|s| {
                                    if waiting.load(Ordering::Acquire) == 0 {
                                        s.sync_now()
                                    } else {
                                        s.after_commit()
                                    }
                                }),
                            });
                            let _ = reply.send(result);
                        }
                        Reply::Here(answer) => {
                            // The committer's retries, here: a row moved by another process or
                            // its lock outlasting the busy handler.
                            for attempt in 1..=crate::store::TRANSIENT_RETRIES {
                                if !matches!(&result, Err(e) if transient(e)) {
                                    break;
                                }
                                std::thread::sleep(Duration::from_millis(1 << attempt));
                                result = post_batch(&mut conn, &job.entries, &job.audit_key);
                                if result.is_ok() {
                                    committed
                                        .fetch_add(job.entries.len() as u64, Ordering::Relaxed);
                                }
                            }
                            if result.is_ok()
                                && let Some(s) = &syncer
                            {
                                s.sync_here();
                            }
                            answer(result);
                        }
                    }
                }
            })
            .map_err(|e| StoreError::Config(format!("cannot start the ledger writer: {e}")))?;
        Ok(Self {
            jobs,
            _checkpointer: checkpointer,
        })
    }

    pub async fn post(
        &self,
        entries: Vec<Arc<NewEntry>>,
        audit_key: Arc<[u8; 32]>,
        waiting: Arc<AtomicUsize>,
    ) -> StoreResult<CommittedBatch> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Config("the ledger writer has stopped".into());
        self.jobs
            .send(Job {
                entries,
                audit_key,
                reply: Reply::Committer { waiting, reply },
                trace: TraceParent::current(),
            })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Commits `entries` and runs `answer` on this thread once they are durable, or with the
    /// error. Jobs run in the order sent, so answers keep commit order.
    pub fn post_and_answer(
        &self,
        entries: Vec<Arc<NewEntry>>,
        audit_key: Arc<[u8; 32]>,
        answer: Answer,
    ) {
        let job = Job {
            entries,
            audit_key,
            reply: Reply::Here(answer),
            trace: TraceParent::current(),
        };
        if let Err(std::sync::mpsc::SendError(job)) = self.jobs.send(job)
            && let Reply::Here(answer) = job.reply
        {
            answer(Err(StoreError::Config(
                "the ledger writer has stopped".into(),
            )));
        }
    }
}

/// The settings of the sqlx connections (`sqlite::Backend::connect`) but the cache size and,
/// when pipelined, `synchronous`.
fn open(path: &std::path::Path, pipelined: bool) -> rusqlite::Result<Connection> {
    let vfs = super::sqlite_wal_vfs::register().map_err(|e| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(e),
        )
    })?;
    let conn = Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), vfs)?;
    conn.busy_handler(Some(wait_for_lock))?;
    // WAL is a property of the file, set when sqlx created it. NORMAL: the commit does not
    // wait for the disk; `sqlite_wal_sync.rs` syncs the WAL before any caller is answered.
    let synchronous = if pipelined { "NORMAL" } else { "FULL" };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // 16 MB, not the 64 MB of the sqlx connections: SQLite walks the whole page-cache hash at
    // every transaction end (`pcache1TruncateUnsafe`, 4% of this thread at 64 MB), and this
    // thread ends a transaction per batch. Measured: 4,600 -> 5,600-6,100 mutations/s.
    conn.pragma_update(None, "cache_size", -16384)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Checkpoints run on their own thread (`sqlite_checkpointer.rs`), not inside a commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Another connection holds the write lock (another process on the same file, a tool). SQLite's
/// own busy timeout sleeps in growing steps (up to 100 ms each, 328 ms in the first dozen),
/// so a lock held for a millisecond can stall every mutation queued behind the batch for a
/// third of a second; short sleeps retry within a millisecond of the lock's release. Gives up
/// after about 10 s, like the sqlx connections.
fn wait_for_lock(attempt: i32) -> bool {
    let sleep = if attempt < 100 { 100 } else { 1_000 };
    std::thread::sleep(Duration::from_micros(sleep));
    attempt < 100 + 9_990
}

/// `Backend::is_transient` for what this thread meets.
fn transient(e: &StoreError) -> bool {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
    matches!(
        e,
        StoreError::Conflict | StoreError::Sqlite(_, Some(DatabaseBusy | DatabaseLocked))
    )
}

pub fn sqlite_error(e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite(e.to_string(), e.sqlite_error_code())
}

fn post_batch(
    conn: &mut Connection,
    entries: &[Arc<NewEntry>],
    audit_key: &[u8; 32],
) -> BatchResult {
    let tx = Immediate::begin(conn).map_err(sqlite_error)?;
    let entries: Vec<&NewEntry> = entries.iter().map(|e| &**e).collect();
    let link = |prev: &str, seq: i64, row: &NewAudit| {
        crate::store::audit_chain::link_hash(audit_key, prev, seq, row)
    };
    // On any error the transaction rolls back when dropped.
    let results = ready(ledger_write::write(
        &mut RusqliteLedger(tx.0),
        &entries,
        &link,
    ))?;
    tx.commit().map_err(sqlite_error)?;
    Ok(results)
}

/// A `BEGIN IMMEDIATE` transaction through cached statements: rusqlite's own transaction
/// parses `BEGIN` and `COMMIT` again for every batch (`execute_batch`), 3% of this thread
/// at ordinary rates, where every batch is one entry (issue 22). Rolls back when dropped
/// uncommitted.
struct Immediate<'c>(&'c Connection, bool);

impl<'c> Immediate<'c> {
    fn begin(conn: &'c Connection) -> rusqlite::Result<Self> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(Self(conn, false))
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.0.prepare_cached("COMMIT")?.execute([])?;
        self.1 = true;
        Ok(())
    }
}

impl Drop for Immediate<'_> {
    fn drop(&mut self) {
        if !self.1 && !self.0.is_autocommit() {
            let rolled_back = self
                .0
                .prepare_cached("ROLLBACK")
                .and_then(|mut s| s.execute([]));
            if let Err(e) = rolled_back {
                tracing::error!(error = %e, "the ledger writer could not roll a batch back");
            }
        }
    }
}

/// The value of a future that never waits: `RusqliteLedger`'s steps are plain blocking calls on
/// this thread, `async` only to share `write::write` with sqlx.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("the ledger writer's statements never wait"),
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match *self {
            Value::Int(v) => ToSqlOutput::Owned(v.into()),
            Value::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Value::OptText(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Value::OptText(None) => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

/// The ledger's statements (`write::LedgerStatements`) on this thread's connection:
/// plain single-row statements, each prepared once and cached. The transaction is `BEGIN
/// IMMEDIATE`, so every read is already under the write lock.
struct RusqliteLedger<'a>(&'a Connection);

impl RusqliteLedger<'_> {
    fn lock_accounts(&self, ids: &[&str]) -> rusqlite::Result<HashMap<String, LockedAccount>> {
        let mut accounts = HashMap::with_capacity(ids.len());
        let mut read = self.0.prepare_cached(
            "SELECT client_id, balance, version, allow_negative, closed FROM accounts WHERE id = ?",
        )?;
        for id in ids {
            let row = read
                .query_row([id], |r| {
                    Ok(LockedAccount {
                        client_id: r.get(0)?,
                        balance: r.get(1)?,
                        version: r.get(2)?,
                        allow_negative: r.get::<_, i64>(3)? != 0,
                        closed: r.get::<_, i64>(4)? != 0,
                    })
                })
                .optional()?;
            if let Some(account) = row {
                accounts.insert((*id).to_owned(), account);
            }
        }
        Ok(accounts)
    }

    fn used_keys(
        &self,
        client_id: &str,
        keys: &[&str],
    ) -> rusqlite::Result<Vec<(String, UsedKey)>> {
        let mut read = self.0.prepare_cached(
            "SELECT id, request_hash FROM journal WHERE client_id = ? AND idempotency_key = ?",
        )?;
        let mut used = Vec::new();
        for key in keys {
            let row = read
                .query_row([client_id, key], |r| {
                    Ok(UsedKey {
                        journal_id: r.get(0)?,
                        request_hash: r.get(1)?,
                    })
                })
                .optional()?;
            if let Some(found) = row {
                used.push(((*key).to_owned(), found));
            }
        }
        Ok(used)
    }

    fn insert(&self, rows: &Rows<'_>) -> rusqlite::Result<()> {
        let mut insert = self.0.prepare_cached(rows.table.insert_one())?;
        for row in rows.rows() {
            insert.execute(rusqlite::params_from_iter(row))?;
        }
        Ok(())
    }

    /// `Ok(false)`: a guard did not match.
    fn update_accounts(&self, changes: &[AccountChange]) -> rusqlite::Result<bool> {
        let mut update = self.0.prepare_cached(
            "UPDATE accounts SET balance = ?, version = ? \
             WHERE id = ? AND version = ? AND closed = 0",
        )?;
        for c in changes {
            if update.execute(params![c.balance, c.version, c.id, c.read_version])? != 1 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn audit_head(&self) -> rusqlite::Result<(i64, String)> {
        self.0
            .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
    }

    fn set_audit_head(&self, seq: i64, hash: &str) -> rusqlite::Result<()> {
        self.0
            .prepare_cached("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1")?
            .execute(params![seq, hash])?;
        Ok(())
    }

    fn stored_entry(&self, journal_id: &str) -> rusqlite::Result<PostedEntry> {
        let created_at: i64 = self
            .0
            .prepare_cached(STORED_ENTRY_TIME)?
            .query_row([journal_id], |r| r.get(0))?;
        let mut lines = self.0.prepare_cached(STORED_ENTRY_LINES)?;
        let lines = lines
            .query_map([journal_id], |r| {
                Ok(PostedLine {
                    account_id: r.get(0)?,
                    amount: r.get(1)?,
                    balance_after: r.get(2)?,
                    version: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(PostedEntry {
            journal_id: journal_id.to_owned(),
            created_at,
            lines,
        })
    }
}

impl ledger_write::LedgerStatements for RusqliteLedger<'_> {
    async fn lock_accounts(&mut self, ids: &[&str]) -> StoreResult<HashMap<String, LockedAccount>> {
        RusqliteLedger::lock_accounts(self, ids).map_err(sqlite_error)
    }

    async fn used_keys(
        &mut self,
        client_id: &str,
        keys: &[&str],
    ) -> StoreResult<Vec<(String, UsedKey)>> {
        RusqliteLedger::used_keys(self, client_id, keys).map_err(sqlite_error)
    }

    async fn insert(&mut self, rows: &Rows<'_>) -> StoreResult<()> {
        RusqliteLedger::insert(self, rows).map_err(sqlite_error)
    }

    async fn update_accounts(&mut self, changes: &[AccountChange]) -> StoreResult<()> {
        // Guarded by the version read under the lock: a row changed meanwhile (another
        // process, say) fails the whole batch, which rolls back.
        match RusqliteLedger::update_accounts(self, changes).map_err(sqlite_error)? {
            true => Ok(()),
            false => Err(StoreError::Conflict),
        }
    }

    async fn lock_audit_head(&mut self, _appending: i64) -> StoreResult<(i64, String)> {
        // Already locked: the transaction began IMMEDIATE.
        self.audit_head().map_err(sqlite_error)
    }

    async fn set_audit_head(&mut self, seq: i64, hash: &str) -> StoreResult<()> {
        RusqliteLedger::set_audit_head(self, seq, hash).map_err(sqlite_error)
    }

    async fn stored_entry(&mut self, journal_id: &str) -> StoreResult<PostedEntry> {
        RusqliteLedger::stored_entry(self, journal_id).map_err(sqlite_error)
    }
}
