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

use std::collections::{BTreeMap, HashMap};

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
    /// Issue 17's money rollup: an upsert adding to the hour's counters.
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
            Table::Journal => journal_columns!(),
            Table::Postings => posting_columns!(),
            Table::AuditLog => audit_columns!(),
            Table::ReportMoney => "client_id, hour, kind, user_id, n, amount",
        }
    }

    /// Values per row.
    pub(crate) const fn width(self) -> usize {
        match self {
            Table::Journal => 9,
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
                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
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

/// Off only in load tests measuring the rollup's cost (`bench_report_rollups`).
pub(crate) static MONEY_ROLLUP: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(true);

/// One hour in epoch ms: report rollups are kept per UTC hour.
pub const HOUR_MS: i64 = 3_600_000;

/// The money rollup's key and amount of one journal entry (the definition `nashub
/// check-reports` recomputes in SQL): the user owning the subject account if it is a wallet
/// (else ''), and the subject account's leg, or the `held_at_provider` leg when the subject
/// has none (a game result names the player's wallet: the player's net win).
pub fn money_rollup_of(e: &NewEntry) -> (&str, i64) {
    let user = e.subject_account_id.strip_prefix("w:").unwrap_or("");
    let on = |f: &dyn Fn(&str) -> bool| -> Option<i64> {
        e.postings
            .iter()
            .filter(|p| f(&p.account_id))
            .map(|p| p.amount)
            .reduce(|a, b| a + b)
    };
    let amount = on(&|a| a == e.subject_account_id)
        .or_else(|| on(&|a| a.contains(":held_at_provider:")))
        .unwrap_or(0);
    (user, amount)
}

/// The hour bucket (its start, epoch ms) of a time.
pub const fn hour_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
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
    /// One upsert per distinct (client, hour, kind, user) of the committed entries, in key
    /// order (two batches meet the same rows in the same order).
    pub rollups: Rows<'a>,
}

impl<'a> LedgerRows<'a> {
    pub(crate) fn of(entries: &[&'a NewEntry], plan: &'a batch_plan::Plan) -> Self {
        let mut rows = Self {
            journal: Rows::new(Table::Journal),
            postings: Rows::new(Table::Postings),
            accounts: &plan.changes,
            audits: Vec::new(),
            rollups: Rows::new(Table::ReportMoney),
        };
        let mut sums: BTreeMap<(&str, i64, &str, &str), (i64, i64)> = BTreeMap::new();
        let rollup = MONEY_ROLLUP.load(std::sync::atomic::Ordering::Relaxed);
        for (e, verdict) in entries.iter().zip(&plan.verdicts) {
            if let Verdict::Commit(posted) = verdict {
                rows.journal.push_journal(e);
                for line in &posted.lines {
                    rows.postings.push_posting(e, line);
                }
                rows.audits.extend(e.audit.as_ref());
                if !rollup {
                    continue;
                }
                let (user, amount) = money_rollup_of(e);
                let key = (
                    e.client_id.as_str(),
                    hour_of(e.created_at),
                    e.kind.as_str(),
                    user,
                );
                let sum = sums.entry(key).or_default();
                sum.0 += 1;
                sum.1 += amount;
            }
        }
        for ((client, hour, kind, user), (n, amount)) in sums {
            use Value::{Int, Text};
            rows.rollups.push(&[
                Text(client),
                Int(hour),
                Text(kind),
                Text(user),
                Int(n),
                Int(amount),
            ]);
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
            if !rows.rollups.is_empty() {
                s.insert(&rows.rollups).await?;
            }
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
    fn rollups_aggregate_per_hour_bucket_with_the_boundary_exact() {
        // 2026-03-01T23:59:59.999Z and 2026-03-02T00:00:00.000Z: different hours (and days).
        let midnight = 1_772_409_600_000;
        let mut late = entry("1", "c", "k1", &[("w:u", 5), ("h:c:cash", -5)]);
        late.created_at = midnight - 1;
        let mut also_late = entry("2", "c", "k2", &[("w:u", 7), ("h:c:cash", -7)]);
        also_late.created_at = midnight - 3_599_999;
        let mut next = entry("3", "c", "k3", &[("w:u", 11), ("h:c:cash", -11)]);
        next.created_at = midnight;
        let mut round = entry(
            "4",
            "c",
            "k4",
            &[
                ("h:c:held_at_provider:jdb", -3),
                ("h:c:game_results:jdb", 3),
            ],
        );
        round.kind = crate::ledger::JournalKind::GameResult;
        round.subject_account_id = "w:u".into();
        round.created_at = midnight;
        for e in [&mut late, &mut also_late, &mut next] {
            e.subject_account_id = "w:u".into();
        }
        let accounts = [
            ("w:u", false),
            ("h:c:cash", true),
            ("h:c:held_at_provider:jdb", true),
            ("h:c:game_results:jdb", true),
        ]
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
        let entries = [&late, &also_late, &next, &round];
        let plan = batch_plan::plan(&entries, accounts, &HashMap::new());
        let rows = LedgerRows::of(&entries, &plan);
        let got: Vec<&[Value<'_>]> = rows.rollups.rows().collect();
        let row = |hour: i64, kind: &'static str, n: i64, amount: i64| {
            vec![
                Value::Text("c"),
                Value::Int(hour),
                Value::Text(kind),
                Value::Text("u"),
                Value::Int(n),
                Value::Int(amount),
            ]
        };
        assert_eq!(
            got,
            vec![
                &row(midnight - HOUR_MS, "deposit", 2, 12)[..],
                &row(midnight, "deposit", 1, 11)[..],
                &row(midnight, "game_result", 1, -3)[..],
            ]
        );
        assert_eq!(hour_of(midnight - 1), midnight - HOUR_MS);
        assert_eq!(hour_of(midnight), midnight);
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
