//! The ledger write algorithm, written once for every path that moves money: the group-commit
//! batch on MySQL (sqlx, `sql_ledger.rs`), the SQLite ledger writer thread (rusqlite,
//! `sqlite_writer.rs`) and the provider path (`post_in_tx` in `sql_providers.rs`, a batch of one
//! inside the caller's transaction). The audit-chain append is here too, used by those and by
//! `audit_append`.
//!
//! [`write`] is the algorithm: lock every touched account (ascending id order), look up the
//! idempotency keys, let [`batch_plan::plan`] decide each entry, describe the rows that follow
//! ([`LedgerRows::of`]), write them, then answer each entry. A backend only executes statements
//! ([`LedgerStatements`]): sqlx batches rows into multi-row statements of fixed sizes, the
//! SQLite writer runs cached single-row prepared statements.

use std::collections::HashMap;

use super::batch_plan::{self, AccountChange, LockedAccount, UsedKey, Verdict};
use crate::store::identity::NewAudit;
use crate::store::sql_text::{audit_columns, journal_columns, posting_columns};
use crate::store::types::{NewEntry, PostOutcome, PostedEntry, PostedLine, StoreResult};

/// Computes an audit row's hash from the previous hash and its seq (`audit::chain::link_hash`
/// with the store's key).
pub(crate) type AuditLink<'a> = &'a (dyn Fn(&str, i64, &NewAudit) -> String + Sync);

/// One bound value of a row, in column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Int(i64),
    Text(&'a str),
    OptText(Option<&'a str>),
}

/// A table the ledger inserts into. Its column list is `sql_text.rs`'s; the values of each row
/// are built in that order by [`LedgerRows`] (and nowhere else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Journal,
    Postings,
    AuditLog,
    /// Issue 17's money rollup: an upsert adding to the hour's counters (written by the report
    /// feed, `store/report_feed.rs`, not by the money transaction).
    ReportMoney,
}

impl Table {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Table::Journal => "journal",
            Table::Postings => "postings",
            Table::AuditLog => "audit_log",
            Table::ReportMoney => "report_money",
        }
    }

    pub(crate) const fn columns(self) -> &'static str {
        match self {
            Table::Journal => concat!(journal_columns!(), ", rolled_up, rollup_amount"),
            Table::Postings => posting_columns!(),
            Table::AuditLog => audit_columns!(),
            Table::ReportMoney => "client_id, hour, kind, user_id, n, amount",
        }
    }

    /// Values per row.
    pub(crate) const fn width(self) -> usize {
        match self {
            Table::Journal => 11,
            Table::Postings => 7,
            Table::AuditLog => 12,
            Table::ReportMoney => 6,
        }
    }

    /// The single-row insert (kept prepared by the SQLite writer).
    pub(crate) const fn insert_one(self) -> &'static str {
        match self {
            Table::Journal => concat!(
                "INSERT INTO journal (",
                journal_columns!(),
                ", rolled_up, rollup_amount) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            Table::Postings => concat!(
                "INSERT INTO postings (",
                posting_columns!(),
                ") VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            Table::AuditLog => concat!(
                "INSERT INTO audit_log (",
                audit_columns!(),
                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            Table::ReportMoney => concat!(
                "INSERT INTO report_money (client_id, hour, kind, user_id, n, amount) ",
                "VALUES (?, ?, ?, ?, ?, ?)",
                " ON CONFLICT (client_id, hour, kind, user_id) DO UPDATE SET ",
                "n = n + excluded.n, amount = amount + excluded.amount"
            ),
        }
    }

    /// What follows a multi-row `INSERT ... VALUES` (sqlx): the rollup adds to an existing row.
    pub(crate) const fn on_conflict(self, mysql: bool) -> &'static str {
        match self {
            Table::ReportMoney if mysql => {
                " ON DUPLICATE KEY UPDATE n = n + VALUES(n), amount = amount + VALUES(amount)"
            }
            Table::ReportMoney => {
                " ON CONFLICT (client_id, hour, kind, user_id) DO UPDATE SET \
                 n = n + excluded.n, amount = amount + excluded.amount"
            }
            _ => "",
        }
    }
}

/// Rows to insert into one table: `table.width()` values per row, rows in order.
#[derive(Debug)]
pub(crate) struct Rows<'a> {
    pub table: Table,
    pub values: Vec<Value<'a>>,
}

impl<'a> Rows<'a> {
    fn new(table: Table) -> Self {
        Self {
            table,
            values: Vec::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Each row's values.
    pub(crate) fn rows(&self) -> std::slice::Chunks<'_, Value<'a>> {
        self.values.chunks(self.table.width())
    }

    fn push(&mut self, row: &[Value<'a>]) {
        debug_assert_eq!(row.len(), self.table.width());
        self.values.extend_from_slice(row);
    }

    fn push_journal(&mut self, e: &'a NewEntry) {
        use Value::{Int, OptText, Text};
        self.push(&[
            Text(&e.id),
            Text(&e.client_id),
            Text(&e.idempotency_key),
            Text(&e.request_hash),
            Text(e.kind.as_str()),
            OptText(e.actor_id.as_deref()),
            Text(&e.subject_account_id),
            OptText(e.memo.as_deref()),
            Int(e.created_at),
            // Not yet in the report rollups: `store/report_feed.rs` folds it in later.
            Int(0),
            // What the feed adds to `report_money`, so it reads no postings (issue 17).
            Int(crate::store::report_feed::money_rollup_of(
                &e.subject_account_id,
                e.postings.iter().map(|p| (p.account_id.as_str(), p.amount)),
            )
            .1),
        ]);
    }

    fn push_posting(&mut self, e: &'a NewEntry, line: &'a PostedLine) {
        use Value::{Int, Text};
        self.push(&[
            Text(&e.id),
            Text(&line.account_id),
            Text(&e.client_id),
            Int(line.amount),
            Int(line.balance_after),
            Int(line.version),
            Int(e.created_at),
        ]);
    }

    fn push_audit(&mut self, linked: &'a LinkedAudit<'a>) {
        use Value::{Int, OptText, Text};
        let e = linked.row;
        self.push(&[
            Int(linked.seq),
            OptText(e.client_id.as_deref()),
            OptText(e.actor_id.as_deref()),
            Text(&e.action),
            OptText(e.target_type.as_deref()),
            OptText(e.target_id.as_deref()),
            OptText(e.before.as_deref()),
            OptText(e.after.as_deref()),
            OptText(e.ip.as_deref()),
            Int(e.created_at),
            Text(&linked.prev_hash),
            Text(&linked.hash),
        ]);
    }
}

/// What a batch reads before it decides: the accounts to lock, in ascending id order (no
/// deadlock between batches), and the idempotency keys to look up, per client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LedgerReads<'a> {
    pub account_ids: Vec<&'a str>,
    pub keys: Vec<(&'a str, Vec<&'a str>)>,
}

impl<'a> LedgerReads<'a> {
    pub(crate) fn of(entries: &[&'a NewEntry]) -> Self {
        let mut account_ids: Vec<&str> = entries
            .iter()
            .flat_map(|e| e.postings.iter().map(|p| p.account_id.as_str()))
            .collect();
        account_ids.sort_unstable();
        account_ids.dedup();
        let mut by_client: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in entries {
            by_client
                .entry(e.client_id.as_str())
                .or_default()
                .push(e.idempotency_key.as_str());
        }
        let mut keys: Vec<(&str, Vec<&str>)> = by_client.into_iter().collect();
        keys.sort_unstable();
        for (_, list) in &mut keys {
            list.sort_unstable();
            list.dedup();
        }
        Self { account_ids, keys }
    }
}

/// What a batch writes once `batch_plan::plan` decided: journal rows and postings of the
/// committed entries, the changed accounts (each written once, guarded by the version read under
/// the lock and `closed = 0`), and the audit rows riding with committed entries.
#[derive(Debug)]
pub(crate) struct LedgerRows<'a> {
    pub journal: Rows<'a>,
    pub postings: Rows<'a>,
    pub accounts: &'a [AccountChange],
    pub audits: Vec<&'a NewAudit>,
}

impl<'a> LedgerRows<'a> {
    pub(crate) fn of(entries: &[&'a NewEntry], plan: &'a batch_plan::Plan) -> Self {
        let mut rows = Self {
            journal: Rows::new(Table::Journal),
            postings: Rows::new(Table::Postings),
            accounts: &plan.changes,
            audits: Vec::new(),
        };
        for (e, verdict) in entries.iter().zip(&plan.verdicts) {
            if let Verdict::Commit(posted) = verdict {
                rows.journal.push_journal(e);
                for line in &posted.lines {
                    rows.postings.push_posting(e, line);
                }
                rows.audits.extend(e.audit.as_ref());
            }
        }
        rows
    }
}

/// An audit row with its place in the chain.
#[derive(Debug)]
pub(crate) struct LinkedAudit<'a> {
    pub seq: i64,
    pub row: &'a NewAudit,
    pub prev_hash: String,
    pub hash: String,
}

/// Executes the ledger's statements inside one open transaction. No decisions here: only how a
/// backend runs each step of [`write`] and [`append_audit`].
pub(crate) trait LedgerStatements {
    /// Reads `ids` (sorted, distinct) under the transaction's lock, in that order; missing
    /// accounts are absent from the answer.
    async fn lock_accounts(&mut self, ids: &[&str]) -> StoreResult<HashMap<String, LockedAccount>>;

    /// The journal rows holding any of `keys` for `client_id`, by key.
    async fn used_keys(
        &mut self,
        client_id: &str,
        keys: &[&str],
    ) -> StoreResult<Vec<(String, UsedKey)>>;

    async fn insert(&mut self, rows: &Rows<'_>) -> StoreResult<()>;

    /// Writes each account's final balance and version, `WHERE id = ? AND version = <read>
    /// AND closed = 0`; a row not matched fails with `StoreError::Conflict` (the caller's
    /// transaction then rolls back).
    async fn update_accounts(&mut self, changes: &[AccountChange]) -> StoreResult<()>;

    /// Takes the audit head's lock (for the rest of the transaction) before `appending` rows:
    /// the head's seq and hash before them.
    async fn lock_audit_head(&mut self, appending: i64) -> StoreResult<(i64, String)>;

    async fn set_audit_head(&mut self, seq: i64, hash: &str) -> StoreResult<()>;

    /// The stored answer of an idempotency key's first request.
    async fn stored_entry(&mut self, journal_id: &str) -> StoreResult<PostedEntry>;
}

/// Commits what it can of `entries` inside the executor's transaction (the caller commits it).
/// The outer error fails the whole batch (the caller must roll back); inner results are each
/// entry's own outcome, in order.
pub(crate) async fn write<S: LedgerStatements>(
    s: &mut S,
    entries: &[&NewEntry],
    link: AuditLink<'_>,
) -> StoreResult<Vec<StoreResult<PostOutcome>>> {
    let reads = LedgerReads::of(entries);
    let accounts = s.lock_accounts(&reads.account_ids).await?;
    let mut used = HashMap::new();
    for (client_id, keys) in &reads.keys {
        for (key, found) in s.used_keys(client_id, keys).await? {
            used.insert(((*client_id).to_owned(), key), found);
        }
    }

    let plan = batch_plan::plan(entries, accounts, &used);
    {
        let rows = LedgerRows::of(entries, &plan);
        if !rows.journal.is_empty() {
            s.insert(&rows.journal).await?;
            s.insert(&rows.postings).await?;
        }
        if !rows.accounts.is_empty() {
            s.update_accounts(rows.accounts).await?;
        }
        append_audit(s, &rows.audits, link).await?;
    }

    let mut results = Vec::with_capacity(entries.len());
    for verdict in plan.verdicts {
        results.push(match verdict {
            Verdict::Commit(posted) => Ok(PostOutcome::Committed(posted)),
            Verdict::ReplayBatch(posted) => Ok(PostOutcome::Replayed(posted)),
            Verdict::ReplayStored { journal_id } => {
                Ok(PostOutcome::Replayed(s.stored_entry(&journal_id).await?))
            }
            Verdict::Refused(e) => Err(e),
        });
    }
    Ok(results)
}

/// Links `rows` onto the audit chain: the head is locked once for all of them (appenders on any
/// node queue up, so each row links to the true previous one), the links computed in order, the
/// rows inserted and the head set once. The seq of the last row (`None`: nothing to append).
pub(crate) async fn append_audit<S: LedgerStatements>(
    s: &mut S,
    rows: &[&NewAudit],
    link: AuditLink<'_>,
) -> StoreResult<Option<i64>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let count = rows.len() as i64;
    let (head_seq, mut prev) = s.lock_audit_head(count).await?;
    let mut linked = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let seq = head_seq + 1 + i as i64;
        let hash = link(&prev, seq, row);
        linked.push(LinkedAudit {
            seq,
            row,
            prev_hash: std::mem::replace(&mut prev, hash.clone()),
            hash,
        });
    }
    let mut insert = Rows::new(Table::AuditLog);
    for l in &linked {
        insert.push_audit(l);
    }
    s.insert(&insert).await?;
    let last = head_seq + count;
    s.set_audit_head(last, &prev).await?;
    Ok(Some(last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::types::NewPosting;

    fn entry(id: &str, client: &str, key: &str, legs: &[(&str, i64)]) -> NewEntry {
        NewEntry {
            id: id.into(),
            client_id: client.into(),
            idempotency_key: key.into(),
            request_hash: "h".into(),
            kind: crate::ledger::JournalKind::Deposit,
            actor_id: None,
            subject_account_id: legs[0].0.into(),
            memo: Some("m".into()),
            created_at: 7,
            postings: legs
                .iter()
                .map(|(a, amount)| NewPosting {
                    account_id: (*a).into(),
                    amount: *amount,
                })
                .collect(),
            audit: None,
        }
    }

    #[test]
    fn reads_are_sorted_and_distinct() {
        let a = entry("1", "c2", "k2", &[("w", -1), ("h", 1)]);
        let b = entry("2", "c1", "k1", &[("x", -1), ("h", 1)]);
        let c = entry("3", "c2", "k1", &[("w", -1), ("a", 1)]);
        let d = entry("4", "c2", "k2", &[("w", -1), ("a", 1)]);
        let reads = LedgerReads::of(&[&a, &b, &c, &d]);
        assert_eq!(reads.account_ids, vec!["a", "h", "w", "x"]);
        assert_eq!(
            reads.keys,
            vec![("c1", vec!["k1"]), ("c2", vec!["k1", "k2"])]
        );
    }

    #[test]
    fn rows_follow_the_column_lists() {
        for table in [
            Table::Journal,
            Table::Postings,
            Table::AuditLog,
            Table::ReportMoney,
        ] {
            assert_eq!(table.columns().split(", ").count(), table.width());
            assert_eq!(table.insert_one().matches('?').count(), table.width());
        }
        let mut audited = entry("1", "c", "k", &[("w", 5), ("h", -5)]);
        audited.audit = Some(NewAudit {
            action: "wallet.deposit".into(),
            ..NewAudit::default()
        });
        let refused = entry("2", "c", "k2", &[("w", -500), ("h", 500)]);
        let accounts = [("w", false), ("h", true)]
            .into_iter()
            .map(|(id, neg)| {
                (
                    id.to_owned(),
                    LockedAccount {
                        client_id: "c".into(),
                        balance: 0,
                        version: 0,
                        allow_negative: neg,
                        closed: false,
                    },
                )
            })
            .collect();
        let entries = [&audited, &refused];
        let plan = batch_plan::plan(&entries, accounts, &HashMap::new());
        let rows = LedgerRows::of(&entries, &plan);
        assert_eq!(rows.journal.rows().count(), 1);
        assert_eq!(rows.journal.values[0], Value::Text("1"));
        assert_eq!(rows.postings.rows().count(), 2);
        // Postings in account order, with balance after and version.
        assert_eq!(
            rows.postings.rows().next().unwrap(),
            &[
                Value::Text("1"),
                Value::Text("h"),
                Value::Text("c"),
                Value::Int(-5),
                Value::Int(-5),
                Value::Int(1),
                Value::Int(7)
            ]
        );
        assert_eq!(rows.accounts.len(), 2);
        assert_eq!(rows.audits.len(), 1);
    }
}
