// The ledger's statements through sqlx (included into each backend like `sql.rs`; needs
// `FOR_UPDATE` and `BEGIN_WRITE`): how `write::write`, the one write algorithm, runs on
// MySQL (group-commit batches) and inside provider transactions on both backends. Journal rows,
// postings and audit rows go in multi-row inserts, every changed account is written once,
// guarded by the version read under the lock. Then the ledger's reads.

use std::collections::HashMap;

use super::ledger::batch_plan::{AccountChange, LockedAccount, UsedKey};

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
    if n <= SIZE_STEP {
        n
    } else {
        n / SIZE_STEP * SIZE_STEP
    }
}

/// The smallest statement size not below `n` (1 ≤ n ≤ `ROWS_PER_STATEMENT`).
fn size_at_least(n: usize) -> usize {
    if n <= SIZE_STEP {
        n
    } else {
        n.div_ceil(SIZE_STEP) * SIZE_STEP
    }
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

    /// SQLite: the writer thread commits `entries` and runs `answer` itself once they are
    /// durable. Only for backends with a writer thread (`uses_write_turn`).
    pub fn post_and_answer(
        &self,
        entries: Vec<std::sync::Arc<NewEntry>>,
        audit_key: std::sync::Arc<[u8; 32]>,
        answer: super::ledger::sqlite_writer::Answer,
    ) {
        match &self.ledger_writer {
            Some(writer) => writer.post_and_answer(entries, audit_key, answer),
            None => answer(Err(StoreError::Config(
                "this backend has no ledger writer thread".into(),
            ))),
        }
    }

    /// Commits what it can of `entries` in one transaction. The outer error fails the whole
    /// batch (nothing written); inner results are each entry's own outcome. `waiting`: entries
    /// queued behind this batch (the SQLite writer syncs inline when there are none).
    pub async fn post_batch(
        &self,
        entries: &[std::sync::Arc<NewEntry>],
        audit_key: &std::sync::Arc<[u8; 32]>,
        waiting: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) -> StoreResult<super::types::CommittedBatch> {
        if let Some(writer) = &self.ledger_writer {
            return writer
                .post(entries.to_vec(), audit_key.clone(), waiting.clone())
                .await;
        }
        let _ = waiting;
        let link = |prev: &str, seq: i64, row: &NewAudit| {
            super::audit_chain::link_hash(audit_key, prev, seq, row)
        };
        let entries: Vec<&NewEntry> = entries.iter().map(|e| &**e).collect();
        // Only the node's committer posts batches, one at a time: the lock is never contended.
        let mut held = self.ledger_conn.lock().await;
        let conn = match held.as_mut() {
            Some(conn) => conn,
            None => held.insert(self.write.acquire().await?),
        };
        let attempt = async {
            let mut tx = sqlx::Connection::begin_with(&mut **conn, BEGIN_WRITE).await?;
            let results =
                super::ledger::write::write(&mut SqlxLedger(&mut tx), &entries, &link).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(results)
        };
        let results = match attempt.await {
            Ok(results) => results,
            Err(e) => {
                // An answer from the server (a refused statement, a deadlock, a moved row)
                // leaves the connection usable once the dropped transaction's ROLLBACK, which
                // sqlx only queued, has run: at once, or it would hold its locks until the
                // next batch. Anything else (I/O, protocol), or a failed rollback: a fresh one.
                let server_answered = match &e {
                    StoreError::Database(db) => db.as_database_error().is_some(),
                    StoreError::Conflict => true,
                    _ => false,
                };
                let usable = server_answered
                    && match held.as_mut() {
                        Some(conn) => sqlx::Connection::ping(&mut **conn).await.is_ok(),
                        None => false,
                    };
                if !usable && let Some(conn) = held.take() {
                    let _ = conn.detach();
                }
                return Err(e);
            }
        };
        // Durable once COMMIT returned (MySQL's redo flush, or sqlx's FULL connection).
        Ok(super::types::CommittedBatch {
            results,
            durable: None,
        })
    }
}

/// The ledger's statements (`write::LedgerStatements`) through sqlx, inside the caller's
/// transaction: rows go in multi-row statements of fixed sizes, lookups and the account update
/// are padded to one statement per chunk (on MySQL every statement is a round trip).
struct SqlxLedger<'t, 'c>(&'t mut sqlx::Transaction<'c, Db>);

impl super::ledger::write::LedgerStatements for SqlxLedger<'_, '_> {
    async fn lock_accounts(&mut self, ids: &[&str]) -> StoreResult<HashMap<String, LockedAccount>> {
        let mut accounts = HashMap::with_capacity(ids.len());
        for (chunk, size) in padded_chunks(ids) {
            let sql = format!(
                "SELECT id, client_id, balance, version, allow_negative, closed FROM accounts \
                 WHERE id IN ({}) ORDER BY id{FOR_UPDATE}",
                placeholders(size)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in padded(chunk, size) {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&mut **self.0).await? {
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
        Ok(accounts)
    }

    async fn used_keys(
        &mut self,
        client_id: &str,
        keys: &[&str],
    ) -> StoreResult<Vec<(String, UsedKey)>> {
        let mut used = Vec::new();
        for (chunk, size) in padded_chunks(keys) {
            let sql = format!(
                "SELECT id, idempotency_key, request_hash FROM journal \
                 WHERE client_id = ? AND idempotency_key IN ({})",
                placeholders(size)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(client_id);
            for key in padded(chunk, size) {
                q = q.bind(*key);
            }
            for row in q.fetch_all(&mut **self.0).await? {
                used.push((
                    row.try_get("idempotency_key")?,
                    UsedKey {
                        journal_id: row.try_get("id")?,
                        request_hash: row.try_get("request_hash")?,
                    },
                ));
            }
        }
        Ok(used)
    }

    async fn insert(&mut self, rows: &super::ledger::write::Rows<'_>) -> StoreResult<()> {
        use super::ledger::write::Value;
        let all: Vec<&[Value<'_>]> = rows.rows().collect();
        let one_row = format!("({})", placeholders(rows.table.width()));
        for chunk in shaped_chunks(&all) {
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}{}",
                rows.table.name(),
                rows.table.columns(),
                rows_of(chunk.len(), &one_row),
                rows.table.on_conflict(NAME == "mysql")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for value in chunk.iter().flat_map(|row| row.iter()) {
                q = match *value {
                    Value::Int(v) => q.bind(v),
                    Value::Text(v) => q.bind(v),
                    Value::OptText(v) => q.bind(v),
                };
            }
            q.execute(&mut **self.0).await?;
        }
        Ok(())
    }

    async fn update_accounts(&mut self, changes: &[AccountChange]) -> StoreResult<()> {
        // Padding repeats the last change: the first matching WHEN wins and a repeated guard
        // matches the same row, so the count of rows updated is unchanged.
        for (chunk, size) in padded_chunks(changes) {
            let whens = vec!["WHEN ? THEN ?"; size].join(" ");
            let guards = vec!["(id = ? AND version = ?)"; size].join(" OR ");
            let sql = format!(
                "UPDATE accounts SET balance = CASE id {whens} END, version = CASE id {whens} END \
                 WHERE closed = 0 AND ({guards})"
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
            let updated = q.execute(&mut **self.0).await?.rows_affected();
            if updated != chunk.len() as u64 {
                return Err(StoreError::Conflict);
            }
        }
        Ok(())
    }

    async fn lock_audit_head(&mut self, appending: i64) -> StoreResult<(i64, String)> {
        let mut bumped = 0;
        if FOR_UPDATE.is_empty() {
            // SQLite: a deferred transaction (`audit_append`, the provider path) holds only a
            // read lock until it writes; writing first takes the write lock, so no other
            // appender can read the same head.
            sqlx::query("UPDATE audit_head SET seq = seq + ? WHERE id = 1")
                .bind(appending)
                .execute(&mut **self.0)
                .await?;
            bumped = appending;
        }
        let head = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT seq, hash FROM audit_head WHERE id = 1{FOR_UPDATE}"
        )))
        .fetch_one(&mut **self.0)
        .await?;
        Ok((
            head.try_get::<i64, _>("seq")? - bumped,
            head.try_get("hash")?,
        ))
    }

    async fn set_audit_head(&mut self, seq: i64, hash: &str) -> StoreResult<()> {
        sqlx::query("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1")
            .bind(seq)
            .bind(hash)
            .execute(&mut **self.0)
            .await?;
        Ok(())
    }

    async fn stored_entry(&mut self, journal_id: &str) -> StoreResult<PostedEntry> {
        let created_at: i64 = sqlx::query(super::sql_text::STORED_ENTRY_TIME)
            .bind(journal_id)
            .fetch_one(&mut **self.0)
            .await?
            .try_get("created_at")?;
        let rows = sqlx::query(super::sql_text::STORED_ENTRY_LINES)
            .bind(journal_id)
            .fetch_all(&mut **self.0)
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
        .bind(q.kind.map(JournalKind::as_str))
        .bind(q.kind.map(JournalKind::as_str))
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
                    kind: decode_text(r, "kind")?,
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
                    kind: decode_text(r, "kind")?,
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
