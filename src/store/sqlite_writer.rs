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
//! Same rules as the portable path in `sql_ledger.rs`: lock (read under the write lock) every
//! touched account, read used keys, let `batch_plan::plan` decide, write journal rows, postings,
//! version-guarded balances and the audit chain, commit once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::batch_plan::{self, LockedAccount, UsedKey, Verdict};
use super::identity::NewAudit;
use super::sql_text::{
    STORED_ENTRY_LINES, STORED_ENTRY_TIME, audit_columns, journal_columns, posting_columns,
};
use super::types::{
    CommittedBatch, NewEntry, PostOutcome, PostedEntry, PostedLine, StoreError, StoreResult,
};

pub type BatchResult = StoreResult<Vec<StoreResult<PostOutcome>>>;

struct Job {
    entries: Vec<Arc<NewEntry>>,
    audit_key: Arc<[u8; 32]>,
    reply: oneshot::Sender<StoreResult<CommittedBatch>>,
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
        faults: super::WalSyncFaults,
    ) -> StoreResult<Self> {
        let conn = open(&path, pipelined).map_err(sqlite_error)?;
        let checkpointer = super::sqlite_checkpointer::Checkpointer::start(&path)?;
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
                    let result =
                        post_batch(&mut conn, &job.entries, &job.audit_key).map(|results| {
                            CommittedBatch {
                                results,
                                // Asked only now that COMMIT has written the frames.
                                durable: syncer.as_ref().map(|s| s.after_commit()),
                            }
                        });
                    let _ = job.reply.send(result);
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
    ) -> StoreResult<CommittedBatch> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Config("the ledger writer has stopped".into());
        self.jobs
            .send(Job {
                entries,
                audit_key,
                reply,
            })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The settings of the sqlx connections (`sqlite::Backend::connect`) but the cache size and,
/// when pipelined, `synchronous`.
fn open(path: &std::path::Path, pipelined: bool) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
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

pub fn sqlite_error(e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite(e.to_string(), e.sqlite_error_code())
}

fn post_batch(
    conn: &mut Connection,
    entries: &[Arc<NewEntry>],
    audit_key: &[u8; 32],
) -> BatchResult {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    let entries: Vec<&NewEntry> = entries.iter().map(|e| &**e).collect();
    // On any error the transaction rolls back when dropped.
    let results = write_batch(&tx, &entries, audit_key).map_err(sqlite_error)??;
    tx.commit().map_err(sqlite_error)?;
    Ok(results)
}

/// The outer result is SQLite failing; the inner one a guard that fails the batch as a whole.
fn write_batch(
    tx: &rusqlite::Transaction<'_>,
    entries: &[&NewEntry],
    audit_key: &[u8; 32],
) -> rusqlite::Result<BatchResult> {
    let mut ids: Vec<&str> = entries
        .iter()
        .flat_map(|e| e.postings.iter().map(|p| p.account_id.as_str()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut accounts = HashMap::with_capacity(ids.len());
    {
        let mut read = tx.prepare_cached(
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
                accounts.insert(id.to_owned(), account);
            }
        }
    }

    let mut used = HashMap::new();
    {
        let mut read = tx.prepare_cached(
            "SELECT id, request_hash FROM journal WHERE client_id = ? AND idempotency_key = ?",
        )?;
        for e in entries {
            let key = (e.client_id.clone(), e.idempotency_key.clone());
            if used.contains_key(&key) {
                continue;
            }
            let row = read
                .query_row([&e.client_id, &e.idempotency_key], |r| {
                    Ok(UsedKey {
                        journal_id: r.get(0)?,
                        request_hash: r.get(1)?,
                    })
                })
                .optional()?;
            if let Some(found) = row {
                used.insert(key, found);
            }
        }
    }

    let plan = batch_plan::plan(entries, accounts, &used);
    let committed: Vec<(&NewEntry, &PostedEntry)> = entries
        .iter()
        .zip(&plan.verdicts)
        .filter_map(|(e, v)| match v {
            Verdict::Commit(posted) => Some((*e, posted)),
            _ => None,
        })
        .collect();

    {
        let mut journal = tx.prepare_cached(concat!(
            "INSERT INTO journal (",
            journal_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))?;
        let mut posting = tx.prepare_cached(concat!(
            "INSERT INTO postings (",
            posting_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?)"
        ))?;
        for (e, posted) in &committed {
            journal.execute(params![
                e.id,
                e.client_id,
                e.idempotency_key,
                e.request_hash,
                e.kind,
                e.actor_id,
                e.subject_account_id,
                e.memo,
                e.created_at
            ])?;
            for line in &posted.lines {
                posting.execute(params![
                    e.id,
                    line.account_id,
                    e.client_id,
                    line.amount,
                    line.balance_after,
                    line.version,
                    e.created_at
                ])?;
            }
        }
    }

    {
        // Guarded by the version read under the lock: a row changed meanwhile (another
        // process, say) fails the whole batch, which rolls back.
        let mut update = tx.prepare_cached(
            "UPDATE accounts SET balance = ?, version = ? WHERE id = ? AND version = ?",
        )?;
        for c in &plan.changes {
            if update.execute(params![c.balance, c.version, c.id, c.read_version])? != 1 {
                return Ok(Err(StoreError::Conflict));
            }
        }
    }

    let audits: Vec<&NewAudit> = committed
        .iter()
        .filter_map(|(e, _)| e.audit.as_ref())
        .collect();
    append_audit_rows(tx, &audits, audit_key)?;

    let mut results = Vec::with_capacity(entries.len());
    for verdict in plan.verdicts {
        results.push(match verdict {
            Verdict::Commit(posted) => Ok(PostOutcome::Committed(posted)),
            Verdict::ReplayBatch(posted) => Ok(PostOutcome::Replayed(posted)),
            Verdict::ReplayStored { journal_id } => {
                Ok(PostOutcome::Replayed(stored_entry(tx, journal_id)?))
            }
            Verdict::Refused(e) => Err(e),
        });
    }
    Ok(Ok(results))
}

/// Links the batch's audit rows onto the chain; the head is bumped once for all of them.
fn append_audit_rows(
    tx: &rusqlite::Transaction<'_>,
    rows: &[&NewAudit],
    audit_key: &[u8; 32],
) -> rusqlite::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    tx.prepare_cached("UPDATE audit_head SET seq = seq + ? WHERE id = 1")?
        .execute([rows.len() as i64])?;
    let (last_seq, mut prev): (i64, String) = tx
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut insert = tx.prepare_cached(concat!(
        "INSERT INTO audit_log (",
        audit_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))?;
    for (i, e) in rows.iter().enumerate() {
        let seq = last_seq - rows.len() as i64 + 1 + i as i64;
        let hash = super::audit_chain::link_hash(audit_key, &prev, seq, e);
        insert.execute(params![
            seq,
            e.client_id,
            e.actor_id,
            e.action,
            e.target_type,
            e.target_id,
            e.before,
            e.after,
            e.ip,
            e.created_at,
            prev,
            hash
        ])?;
        prev = hash;
    }
    tx.prepare_cached("UPDATE audit_head SET hash = ? WHERE id = 1")?
        .execute([&prev])?;
    Ok(())
}

/// The stored answer of an idempotency key's first request.
fn stored_entry(
    tx: &rusqlite::Transaction<'_>,
    journal_id: String,
) -> rusqlite::Result<PostedEntry> {
    let created_at: i64 = tx
        .prepare_cached(STORED_ENTRY_TIME)?
        .query_row([&journal_id], |r| r.get(0))?;
    let mut lines = tx.prepare_cached(STORED_ENTRY_LINES)?;
    let lines = lines
        .query_map([&journal_id], |r| {
            Ok(PostedLine {
                account_id: r.get(0)?,
                amount: r.get(1)?,
                balance_after: r.get(2)?,
                version: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(PostedEntry {
        journal_id,
        created_at,
        lines,
    })
}
