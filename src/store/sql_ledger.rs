// Group commit, the SQL half (included into each backend like `sql.rs`; needs `FOR_UPDATE`).
// One transaction per batch: lock every touched account in id order, read the used keys, let
// `batch_plan::plan` decide each entry, then write journal rows and postings as multi-row
// inserts and every changed account once, guarded by the version read under the lock.

use std::collections::HashMap;

use super::batch_plan::{self, AccountChange, LockedAccount, UsedKey, Verdict};

/// Rows per multi-row statement: well under both backends' bind-parameter limits.
const ROWS_PER_STATEMENT: usize = 128;

/// Rows per statement come in a few fixed sizes (every size up to 8, then multiples of 8), so
/// the statements built from them stay prepared in the connection's statement cache.
/// (Unprepared one-off statements cost a close round trip each, and on MySQL that meets
/// Nagle's algorithm: ~40 ms per statement.) Fine steps keep a batch to one or two statements
/// per table: on MySQL every statement is a round trip inside the transaction.
const SIZE_STEP: usize = 8;

/// The largest statement size not above `n` (n ≥ 1).
fn size_at_most(n: usize) -> usize {
    let n = n.min(ROWS_PER_STATEMENT);
    if n <= SIZE_STEP { n } else { n / SIZE_STEP * SIZE_STEP }
}

/// The smallest statement size not below `n` (1 ≤ n ≤ `ROWS_PER_STATEMENT`).
fn size_at_least(n: usize) -> usize {
    if n <= SIZE_STEP { n } else { n.div_ceil(SIZE_STEP) * SIZE_STEP }
}

/// Splits rows to insert into chunks of statement sizes (an insert cannot be padded).
fn shaped_chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let (chunk, rest) = items.split_at(size_at_most(items.len()));
        items = rest;
        Some(chunk)
    })
}

/// Splits keys to look up (or rows to update) into chunks of at most `ROWS_PER_STATEMENT`,
/// each padded by repeating its last item up to a statement size: one statement per chunk,
/// and a repeated key matches the same row.
fn padded_chunks<T>(items: &[T]) -> impl Iterator<Item = (&[T], usize)> {
    items
        .chunks(ROWS_PER_STATEMENT)
        .map(|chunk| (chunk, size_at_least(chunk.len())))
}

/// `chunk` followed by its last item until `len` items.
fn padded<T>(chunk: &[T], len: usize) -> impl Iterator<Item = &T> {
    let last = chunk.last();
    chunk
        .iter()
        .chain(std::iter::repeat_n(last, len - chunk.len()).flatten())
}

fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

fn rows_of(n: usize, per_row: &str) -> String {
    vec![per_row; n].join(", ")
}

impl Backend {
    /// Whether batches run under the write turn (SQLite, with its ledger writer thread).
    pub fn uses_write_turn(&self) -> bool {
        self.ledger_writer.is_some()
    }

    /// With a ledger writer thread (SQLite): the sqlx write connection, whose holder is this
    /// process's writer, so other writes wait their turn in the pool's queue instead of
    /// meeting `SQLITE_BUSY`. `post_batch` expects the committer to hold it.
    pub async fn write_turn(&self) -> StoreResult<super::WriteTurn> {
        Ok(Box::new(self.write.acquire().await?))
    }

    /// Commits what it can of `entries` in one transaction. The outer error fails the whole
    /// batch (nothing written); inner results are each entry's own outcome.
    pub async fn post_batch(
        &self,
        entries: &[std::sync::Arc<NewEntry>],
        audit_key: &std::sync::Arc<[u8; 32]>,
    ) -> StoreResult<super::types::CommittedBatch> {
        if let Some(writer) = &self.ledger_writer {
            return writer.post(entries.to_vec(), audit_key.clone()).await;
        }
        let link = |prev: &str, seq: i64, row: &NewAudit| {
            super::audit_chain::link_hash(audit_key, prev, seq, row)
        };
        let entries: Vec<&NewEntry> = entries.iter().map(|e| &**e).collect();
        let results = self.post_batch_sqlx(&entries, &link).await?;
        // Durable once COMMIT returned (MySQL's redo flush, or sqlx's FULL connection).
        Ok(super::types::CommittedBatch {
            results,
            durable: None,
        })
    }

    async fn post_batch_sqlx(
        &self,
        entries: &[&NewEntry],
        link: &(dyn Fn(&str, i64, &NewAudit) -> String + Sync),
    ) -> StoreResult<Vec<StoreResult<PostOutcome>>> {
        let mut tx = self.write.begin_with(BEGIN_WRITE).await?;

        let mut ids: Vec<&str> = entries
            .iter()
            .flat_map(|e| e.postings.iter().map(|p| p.account_id.as_str()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut accounts = HashMap::with_capacity(ids.len());
        for (chunk, size) in padded_chunks(&ids) {
            let sql = format!(
                "SELECT id, client_id, balance, version, allow_negative, closed FROM accounts \
                 WHERE id IN ({}) ORDER BY id{FOR_UPDATE}",
                placeholders(size)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in padded(chunk, size) {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&mut *tx).await? {
                let allow_negative: i64 = row.try_get("allow_negative")?;
                let closed: i64 = row.try_get("closed")?;
                accounts.insert(
                    row.try_get::<String, _>("id")?,
                    LockedAccount {
                        client_id: row.try_get("client_id")?,
                        balance: row.try_get("balance")?,
                        version: row.try_get("version")?,
                        allow_negative: allow_negative != 0,
                        closed: closed != 0,
                    },
                );
            }
        }

        let mut keys_by_client: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in entries {
            keys_by_client
                .entry(e.client_id.as_str())
                .or_default()
                .push(e.idempotency_key.as_str());
        }
        let mut used = HashMap::new();
        for (client_id, mut keys) in keys_by_client {
            keys.sort_unstable();
            keys.dedup();
            for (chunk, size) in padded_chunks(&keys) {
                let sql = format!(
                    "SELECT id, idempotency_key, request_hash FROM journal \
                     WHERE client_id = ? AND idempotency_key IN ({})",
                    placeholders(size)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(client_id);
                for key in padded(chunk, size) {
                    q = q.bind(*key);
                }
                for row in q.fetch_all(&mut *tx).await? {
                    used.insert(
                        (client_id.to_owned(), row.try_get("idempotency_key")?),
                        UsedKey {
                            journal_id: row.try_get("id")?,
                            request_hash: row.try_get("request_hash")?,
                        },
                    );
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
        insert_journal_rows(&mut tx, &committed).await?;
        insert_postings(&mut tx, &committed).await?;
        update_accounts(&mut tx, &plan.changes).await?;
        let audits: Vec<&NewAudit> = committed.iter().filter_map(|(e, _)| e.audit.as_ref()).collect();
        append_audit_rows(&mut tx, &audits, link).await?;

        let mut results = Vec::with_capacity(entries.len());
        for verdict in plan.verdicts {
            results.push(match verdict {
                Verdict::Commit(posted) => Ok(PostOutcome::Committed(posted)),
                Verdict::ReplayBatch(posted) => Ok(PostOutcome::Replayed(posted)),
                Verdict::ReplayStored { journal_id } => {
                    Ok(PostOutcome::Replayed(stored_entry(&mut tx, &journal_id).await?))
                }
                Verdict::Refused(e) => Err(e),
            });
        }
        tx.commit().await?;
        Ok(results)
    }
}

async fn insert_journal_rows(
    tx: &mut sqlx::Transaction<'_, Db>,
    committed: &[(&NewEntry, &PostedEntry)],
) -> StoreResult<()> {
    for chunk in shaped_chunks(committed) {
        let sql = format!(
            "INSERT INTO journal ({}) VALUES {}",
            super::sql_text::journal_columns!(),
            rows_of(chunk.len(), "(?, ?, ?, ?, ?, ?, ?, ?, ?)")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (e, _) in chunk {
            q = q
                .bind(&e.id)
                .bind(&e.client_id)
                .bind(&e.idempotency_key)
                .bind(&e.request_hash)
                .bind(&e.kind)
                .bind(&e.actor_id)
                .bind(&e.subject_account_id)
                .bind(&e.memo)
                .bind(e.created_at);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_postings(
    tx: &mut sqlx::Transaction<'_, Db>,
    committed: &[(&NewEntry, &PostedEntry)],
) -> StoreResult<()> {
    let lines: Vec<(&NewEntry, &PostedLine)> = committed
        .iter()
        .flat_map(|(e, posted)| posted.lines.iter().map(move |l| (*e, l)))
        .collect();
    for chunk in shaped_chunks(&lines) {
        let sql = format!(
            "INSERT INTO postings ({}) VALUES {}",
            super::sql_text::posting_columns!(),
            rows_of(chunk.len(), "(?, ?, ?, ?, ?, ?, ?)")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (e, line) in chunk {
            q = q
                .bind(&e.id)
                .bind(&line.account_id)
                .bind(&e.client_id)
                .bind(line.amount)
                .bind(line.balance_after)
                .bind(line.version)
                .bind(e.created_at);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Writes each account's final balance once. Guarded by the version read under the lock: if
/// anything else changed a row meanwhile, the count differs and the whole batch rolls back.
async fn update_accounts(
    tx: &mut sqlx::Transaction<'_, Db>,
    changes: &[AccountChange],
) -> StoreResult<()> {
    // Padding repeats the last change: the first matching WHEN wins and a repeated guard
    // matches the same row, so the count of rows updated is unchanged.
    for (chunk, size) in padded_chunks(changes) {
        let whens = vec!["WHEN ? THEN ?"; size].join(" ");
        let guards = vec!["(id = ? AND version = ?)"; size].join(" OR ");
        let sql = format!(
            "UPDATE accounts SET balance = CASE id {whens} END, version = CASE id {whens} END \
             WHERE {guards}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for c in padded(chunk, size) {
            q = q.bind(&c.id).bind(c.balance);
        }
        for c in padded(chunk, size) {
            q = q.bind(&c.id).bind(c.version);
        }
        for c in padded(chunk, size) {
            q = q.bind(&c.id).bind(c.read_version);
        }
        let updated = q.execute(&mut **tx).await?.rows_affected();
        if updated != chunk.len() as u64 {
            return Err(StoreError::Conflict);
        }
    }
    Ok(())
}

/// Links the batch's audit rows onto the chain: the head is bumped once for all of them (which
/// takes its lock, as a single append does), the links computed in order, the rows inserted in
/// multi-row statements and the head's hash set once.
async fn append_audit_rows(
    tx: &mut sqlx::Transaction<'_, Db>,
    rows: &[&NewAudit],
    link: &(dyn Fn(&str, i64, &NewAudit) -> String + Sync),
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    // Locking read (SQLite: the transaction already holds the write lock).
    let head = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT seq, hash FROM audit_head WHERE id = 1{FOR_UPDATE}"
    )))
    .fetch_one(&mut **tx)
    .await?;
    let head_seq: i64 = head.try_get("seq")?;
    let mut prev: String = head.try_get("hash")?;
    let mut linked = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let seq = head_seq + 1 + i as i64;
        let hash = link(&prev, seq, row);
        linked.push((seq, *row, std::mem::replace(&mut prev, hash.clone()), hash));
    }
    for chunk in shaped_chunks(&linked) {
        let sql = format!(
            "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES {}",
            rows_of(chunk.len(), "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (seq, e, prev_hash, hash) in chunk {
            q = q
                .bind(*seq)
                .bind(&e.client_id)
                .bind(&e.actor_id)
                .bind(&e.action)
                .bind(&e.target_type)
                .bind(&e.target_id)
                .bind(&e.before)
                .bind(&e.after)
                .bind(&e.ip)
                .bind(e.created_at)
                .bind(prev_hash)
                .bind(hash);
        }
        q.execute(&mut **tx).await?;
    }
    sqlx::query("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1")
        .bind(head_seq + rows.len() as i64)
        .bind(&prev)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The stored answer of an idempotency key's first request.
async fn stored_entry(
    tx: &mut sqlx::Transaction<'_, Db>,
    journal_id: &str,
) -> StoreResult<PostedEntry> {
    let created_at: i64 = sqlx::query(super::sql_text::STORED_ENTRY_TIME)
        .bind(journal_id)
        .fetch_one(&mut **tx)
        .await?
        .try_get("created_at")?;
    let rows = sqlx::query(super::sql_text::STORED_ENTRY_LINES)
    .bind(journal_id)
    .fetch_all(&mut **tx)
    .await?;
    let lines = rows
        .iter()
        .map(|r| {
            Ok(PostedLine {
                account_id: r.try_get("account_id")?,
                amount: r.try_get("amount")?,
                balance_after: r.try_get("balance_after")?,
                version: r.try_get("account_version")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(PostedEntry {
        journal_id: journal_id.to_owned(),
        created_at,
        lines,
    })
}

impl Backend {
    pub async fn account_history(
        &self,
        account_id: &str,
        q: &HistoryQuery,
    ) -> StoreResult<Vec<HistoryItem>> {
        let rows = sqlx::query(
            "SELECT p.journal_id, j.kind, p.amount, p.balance_after, p.account_version, \
             p.created_at, j.memo \
             FROM postings p JOIN journal j ON j.id = p.journal_id \
             WHERE p.account_id = ? AND p.account_version < ? \
             AND (? IS NULL OR j.kind = ?) AND p.created_at >= ? AND p.created_at < ? \
             AND ABS(p.amount) >= ? AND ABS(p.amount) <= ? \
             AND (? IS NULL OR j.id = ? OR j.memo = ?) \
             ORDER BY p.account_version DESC LIMIT ?",
        )
        .bind(account_id)
        .bind(q.before_version.unwrap_or(i64::MAX))
        .bind(&q.kind)
        .bind(&q.kind)
        .bind(q.from_ms.unwrap_or(i64::MIN))
        .bind(q.to_ms.unwrap_or(i64::MAX))
        .bind(q.min_abs_amount.unwrap_or(0))
        .bind(q.max_abs_amount.unwrap_or(i64::MAX))
        .bind(&q.reference)
        .bind(&q.reference)
        .bind(&q.reference)
        .bind(q.limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryItem {
                    journal_id: r.try_get("journal_id")?,
                    kind: r.try_get("kind")?,
                    amount: r.try_get("amount")?,
                    balance_after: r.try_get("balance_after")?,
                    version: r.try_get("account_version")?,
                    created_at: r.try_get("created_at")?,
                    memo: r.try_get("memo")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The account's balance after the last posting at or before `at_ms` (0 before any).
    pub async fn balance_at(&self, account_id: &str, at_ms: i64) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT balance_after FROM postings WHERE account_id = ? AND created_at <= ? \
             ORDER BY account_version DESC LIMIT 1",
        )
        .bind(account_id)
        .bind(at_ms)
        .fetch_optional(&self.read)
        .await?;
        Ok(match row {
            Some(r) => r.try_get("balance_after")?,
            None => 0,
        })
    }

    pub async fn client_journal(
        &self,
        client_id: &str,
        q: &JournalQuery,
    ) -> StoreResult<Vec<JournalItem>> {
        let rows = sqlx::query(
            "SELECT id, kind, actor_id, subject_account_id, memo, created_at FROM journal \
             WHERE client_id = ? AND (? IS NULL OR id < ?) AND (? IS NULL OR kind = ?) \
             AND created_at >= ? AND created_at < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(client_id)
        .bind(&q.before_id)
        .bind(&q.before_id)
        .bind(&q.kind)
        .bind(&q.kind)
        .bind(q.from_ms.unwrap_or(i64::MIN))
        .bind(q.to_ms.unwrap_or(i64::MAX))
        .bind(q.limit)
        .fetch_all(&self.read)
        .await?;
        let mut items = rows
            .iter()
            .map(|r| {
                Ok(JournalItem {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    actor_id: r.try_get("actor_id")?,
                    subject_account_id: r.try_get("subject_account_id")?,
                    memo: r.try_get("memo")?,
                    created_at: r.try_get("created_at")?,
                    postings: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        let mut lines: HashMap<String, Vec<JournalLine>> = HashMap::new();
        for (chunk, size) in padded_chunks(&ids) {
            let sql = format!(
                "SELECT journal_id, account_id, amount, balance_after FROM postings \
                 WHERE journal_id IN ({}) ORDER BY account_id",
                placeholders(size)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in padded(chunk, size) {
                query = query.bind(*id);
            }
            for r in query.fetch_all(&self.read).await? {
                lines
                    .entry(r.try_get("journal_id")?)
                    .or_default()
                    .push(JournalLine {
                        account_id: r.try_get("account_id")?,
                        amount: r.try_get("amount")?,
                        balance_after: r.try_get("balance_after")?,
                    });
            }
        }
        for item in &mut items {
            item.postings = lines.remove(&item.id).unwrap_or_default();
        }
        Ok(items)
    }
}
