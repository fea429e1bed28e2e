// Report rollup SQL (issue 17), included into `sqlite.rs` and `mysql.rs` after `sql.rs`.

use std::collections::BTreeMap;

use super::reports::{HistoryRow, MoneyRollup, ReportUser, ReportUsers, RoundRollup};

/// The money rollup recomputed from the journal: the definition of
/// `report_feed::money_rollup_of` (and of migration 0050's backfill) in SQL, over the entries
/// the feed has taken (`rolled_up = 1`) or over all (`GAME_RESULTS`). Sums as text: both
/// backends decode them alike.
macro_rules! money_from_journal {
    ($filter:literal) => {
        concat!(
            "SELECT client_id, hour, kind, user_id, COUNT(*) AS n, \
             CAST(SUM(amount) AS CHAR) AS amount FROM ( \
               SELECT j.client_id AS client_id, j.created_at - j.created_at % 3600000 AS hour, j.kind AS kind, \
                 CASE WHEN j.subject_account_id LIKE 'w:%' THEN SUBSTR(j.subject_account_id, 3) ELSE '' END AS user_id, \
                 COALESCE(SUM(CASE WHEN p.account_id = j.subject_account_id THEN p.amount END), \
                          SUM(CASE WHEN p.account_id LIKE '%:held_at_provider:%' THEN p.amount END), 0) AS amount \
               FROM journal j JOIN postings p ON p.journal_id = j.id ",
            $filter,
            " GROUP BY j.id, j.client_id, j.created_at, j.kind, j.subject_account_id \
             ) e GROUP BY client_id, hour, kind, user_id"
        )
    };
}
const MONEY_FROM_JOURNAL: &str = money_from_journal!("WHERE j.rolled_up = 1");
const GAME_RESULTS_FROM_JOURNAL: &str = money_from_journal!("WHERE j.kind = 'game_result'");

const ROUNDS_FROM_GAME_ROUNDS: &str = "SELECT client_id, created_at - created_at % 3600000 AS hour, \
     provider, user_id, COUNT(*) AS rounds, CAST(SUM(stake) AS CHAR) AS stake, CAST(SUM(net) AS CHAR) AS net \
     FROM game_rounds GROUP BY client_id, created_at - created_at % 3600000, provider, user_id";

type RollupKey = (String, i64, String, String);

fn text_i64(row: &DbRow, column: &str) -> Result<i64, sqlx::Error> {
    let text: String = row.try_get(column)?;
    text.parse().map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}

/// The first key (in key order) whose values differ between `stored` and `recomputed`.
fn first_difference(
    table: &str,
    dimension: &str,
    stored: &BTreeMap<RollupKey, Vec<i64>>,
    recomputed: &BTreeMap<RollupKey, Vec<i64>>,
) -> Option<String> {
    let keys: std::collections::BTreeSet<&RollupKey> =
        stored.keys().chain(recomputed.keys()).collect();
    for key in keys {
        let (a, b) = (stored.get(key), recomputed.get(key));
        if a != b {
            let (client, hour, what, user) = key;
            return Some(format!(
                "{table} bucket client={client} hour={} {dimension}={what} user={user:?}: \
                 rollup {a:?}, recomputed {b:?}",
                crate::domain::rfc3339_ms(*hour)
            ));
        }
    }
    None
}

/// The join and condition restricting rollup rows (alias `r`) to `users`, and their binds
/// (the join's first, the condition's after the caller's own).
fn users_clause(users: &ReportUsers) -> (&'static str, &'static str, Vec<String>, Vec<String>) {
    match users {
        ReportUsers::Client => ("", "", vec![], vec![]),
        ReportUsers::Subtree(path) => (
            " JOIN users u ON u.id = r.user_id AND u.path >= ? AND u.path < ?",
            "",
            vec![path.clone(), path_upper(path)],
            vec![],
        ),
        ReportUsers::User(id) => ("", " AND r.user_id = ?", vec![], vec![id.clone()]),
    }
}

/// `?, ?, ...` for `n` values.
fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl Backend {
    /// One report-feed transaction (`report_feed.rs`): up to `max` journal entries not yet in
    /// `report_money` are added to it and marked; how many. On MySQL the transaction reads
    /// committed (no gap locks on the journal's index: the money path's inserts never wait for
    /// it) and skips entries another node's feed holds.
    pub async fn feed_reports_once(&self, max: i64) -> StoreResult<usize> {
        use super::report_feed::{FedEntry, money_rows};
        let mysql = NAME == "mysql";
        let mut conn = self.write.acquire().await?;
        if mysql {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                .execute(&mut *conn)
                .await?;
        }
        let mut tx = sqlx::Connection::begin_with(&mut *conn, BEGIN_WRITE).await?;
        let lock = if mysql { " FOR UPDATE SKIP LOCKED" } else { "" };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, client_id, kind, subject_account_id, created_at FROM journal \
             WHERE rolled_up = 0 LIMIT ?{lock}"
        )))
        .bind(max)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut entries: Vec<FedEntry> = rows
            .iter()
            .map(|r| {
                Ok(FedEntry {
                    id: r.try_get("id")?,
                    client_id: r.try_get("client_id")?,
                    kind: r.try_get("kind")?,
                    subject_account_id: r.try_get("subject_account_id")?,
                    created_at: r.try_get("created_at")?,
                    postings: Vec::new(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        let index: std::collections::HashMap<String, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.clone(), i))
            .collect();
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT journal_id, account_id, amount FROM postings WHERE journal_id IN ({})",
            marks(ids.len())
        )));
        for id in &ids {
            q = q.bind(id);
        }
        for r in q.fetch_all(&mut *tx).await? {
            let journal_id: String = r.try_get("journal_id")?;
            if let Some(&i) = index.get(&journal_id) {
                entries[i]
                    .postings
                    .push((r.try_get("account_id")?, r.try_get("amount")?));
            }
        }
        let sums: Vec<_> = money_rows(&entries).into_iter().collect();
        let table = super::ledger::write::Table::ReportMoney;
        for chunk in sums.chunks(500) {
            let row = format!("({})", marks(table.width()));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO report_money ({}) VALUES {}{}",
                table.columns(),
                vec![row.as_str(); chunk.len()].join(", "),
                table.on_conflict(mysql)
            )));
            for ((client, hour, kind, user), (n, amount)) in chunk {
                q = q
                    .bind(client)
                    .bind(*hour)
                    .bind(kind)
                    .bind(user)
                    .bind(*n)
                    .bind(*amount);
            }
            q.execute(&mut *tx).await?;
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE journal SET rolled_up = 1 WHERE rolled_up = 0 AND id IN ({})",
            marks(ids.len())
        )));
        for id in &ids {
            q = q.bind(id);
        }
        let marked = q.execute(&mut *tx).await?.rows_affected();
        // Every entry read was unmarked and held by this transaction.
        if marked != ids.len() as u64 {
            return Err(StoreError::Conflict);
        }
        tx.commit().await?;
        Ok(ids.len())
    }

    pub async fn report_money(
        &self,
        client_id: &str,
        from_hour: i64,
        to_hour: i64,
        users: &ReportUsers,
    ) -> StoreResult<Vec<MoneyRollup>> {
        let (join, cond, before, after) = users_clause(users);
        let sql = format!(
            "SELECT r.hour, r.kind, r.user_id, r.n, r.amount FROM report_money r{join} \
             WHERE r.client_id = ? AND r.hour >= ? AND r.hour < ?{cond}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in &before {
            q = q.bind(b);
        }
        q = q.bind(client_id).bind(from_hour).bind(to_hour);
        for b in &after {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                Ok(MoneyRollup {
                    hour: r.try_get("hour")?,
                    kind: r.try_get("kind")?,
                    user_id: r.try_get("user_id")?,
                    n: r.try_get("n")?,
                    amount: r.try_get("amount")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn report_rounds(
        &self,
        client_id: &str,
        from_hour: i64,
        to_hour: i64,
        users: &ReportUsers,
    ) -> StoreResult<Vec<RoundRollup>> {
        let (join, cond, before, after) = users_clause(users);
        let sql = format!(
            "SELECT r.hour, r.provider, r.user_id, r.rounds, r.stake, r.net FROM report_rounds r{join} \
             WHERE r.client_id = ? AND r.hour >= ? AND r.hour < ?{cond}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in &before {
            q = q.bind(b);
        }
        q = q.bind(client_id).bind(from_hour).bind(to_hour);
        for b in &after {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                Ok(RoundRollup {
                    hour: r.try_get("hour")?,
                    provider: r.try_get("provider")?,
                    user_id: r.try_get("user_id")?,
                    rounds: r.try_get("rounds")?,
                    stake: r.try_get("stake")?,
                    net: r.try_get("net")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn first_deposits(
        &self,
        client_id: &str,
        from_hour: i64,
        to_hour: i64,
        users: &ReportUsers,
    ) -> StoreResult<Vec<(String, i64)>> {
        let (join, cond, before, after) = users_clause(users);
        let sql = format!(
            "SELECT r.user_id AS user_id, MIN(r.hour) AS first_hour FROM report_money r{join} \
             WHERE r.client_id = ? AND r.kind = 'deposit' AND r.user_id <> ''{cond} \
             GROUP BY r.user_id HAVING MIN(r.hour) >= ? AND MIN(r.hour) < ?"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in &before {
            q = q.bind(b);
        }
        q = q.bind(client_id);
        for b in &after {
            q = q.bind(b);
        }
        q = q.bind(from_hour).bind(to_hour);
        let rows = q.fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("user_id")?, r.try_get("first_hour")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn report_users(
        &self,
        client_id: &str,
        users: &ReportUsers,
    ) -> StoreResult<Vec<ReportUser>> {
        let (lo, hi, only) = match users {
            ReportUsers::Client => (String::new(), "\u{7f}".to_owned(), None),
            ReportUsers::Subtree(p) => (p.clone(), path_upper(p), None),
            ReportUsers::User(id) => (String::new(), "\u{7f}".to_owned(), Some(id.clone())),
        };
        let rows = sqlx::query(
            "SELECT id, parent_id, path, role, username, created_at FROM users \
             WHERE client_id = ? AND path >= ? AND path < ? AND (? IS NULL OR id = ?)",
        )
        .bind(client_id)
        .bind(&lo)
        .bind(&hi)
        .bind(&only)
        .bind(&only)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReportUser {
                    id: r.try_get("id")?,
                    parent_id: r.try_get("parent_id")?,
                    path: r.try_get("path")?,
                    role: decode_text(r, "role")?,
                    username: r.try_get("username")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn player_history(
        &self,
        client_id: &str,
        user_id: &str,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<Vec<HistoryRow>> {
        // Each source gives its newest at or before the cursor's time; rows at that very
        // millisecond are cut by id below (a margin covers ties).
        let at = before.as_ref().map_or(i64::MAX, |(at, _)| *at);
        let fetch = limit + 64;
        let mut out = Vec::new();
        let rounds = sqlx::query(
            "SELECT provider, round_id, status, stake, net, created_at FROM game_rounds \
             WHERE client_id = ? AND user_id = ? AND created_at <= ? ORDER BY created_at DESC LIMIT ?",
        )
        .bind(client_id)
        .bind(user_id)
        .bind(at)
        .bind(fetch)
        .fetch_all(&self.read)
        .await?;
        for r in &rounds {
            let provider: String = r.try_get("provider")?;
            let round: String = r.try_get("round_id")?;
            out.push(HistoryRow {
                kind: "round",
                at: r.try_get("created_at")?,
                id: format!("round:{provider}:{round}"),
                provider,
                detail: r.try_get("status")?,
                amount: r.try_get("stake")?,
                net: r.try_get("net")?,
            });
        }
        let transfers = sqlx::query(
            "SELECT id, provider, direction, state, amount, created_at FROM provider_transfers \
             WHERE user_id = ? AND client_id = ? AND created_at <= ? ORDER BY created_at DESC LIMIT ?",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(at)
        .bind(fetch)
        .fetch_all(&self.read)
        .await?;
        for r in &transfers {
            let id: String = r.try_get("id")?;
            let direction: String = r.try_get("direction")?;
            let state: String = r.try_get("state")?;
            out.push(HistoryRow {
                kind: "transfer",
                at: r.try_get("created_at")?,
                id: format!("transfer:{id}"),
                provider: r.try_get("provider")?,
                detail: format!("{direction} {state}"),
                amount: r.try_get("amount")?,
                net: 0,
            });
        }
        let sessions = sqlx::query(
            "SELECT id, provider, game_code, state, started_at FROM game_sessions \
             WHERE client_id = ? AND user_id = ? AND started_at <= ? ORDER BY started_at DESC LIMIT ?",
        )
        .bind(client_id)
        .bind(user_id)
        .bind(at)
        .bind(fetch)
        .fetch_all(&self.read)
        .await?;
        for r in &sessions {
            let id: String = r.try_get("id")?;
            let game: String = r.try_get("game_code")?;
            let state: String = r.try_get("state")?;
            out.push(HistoryRow {
                kind: "session",
                at: r.try_get("started_at")?,
                id: format!("session:{id}"),
                provider: r.try_get("provider")?,
                detail: format!("{game} {state}"),
                amount: 0,
                net: 0,
            });
        }
        out.retain(|h| match &before {
            Some((at, id)) => (h.at, &h.id) < (*at, id),
            None => true,
        });
        out.sort_by(|a, b| (b.at, &b.id).cmp(&(a.at, &a.id)));
        out.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(out)
    }

    pub async fn report_rollup_violation(&self) -> StoreResult<Option<String>> {
        // One snapshot: the rollups and the journal as of the same moment (a running hub's
        // feed may take more entries meanwhile).
        let mut tx = self.read.begin().await?;
        let mut stored = BTreeMap::new();
        for r in sqlx::query("SELECT client_id, hour, kind, user_id, n, amount FROM report_money")
            .fetch_all(&mut *tx)
            .await?
        {
            stored.insert(
                (
                    r.try_get("client_id")?,
                    r.try_get("hour")?,
                    r.try_get("kind")?,
                    r.try_get("user_id")?,
                ),
                vec![r.try_get::<i64, _>("n")?, r.try_get("amount")?],
            );
        }
        let mut recomputed = BTreeMap::new();
        for r in sqlx::query(MONEY_FROM_JOURNAL).fetch_all(&mut *tx).await? {
            recomputed.insert(
                (
                    r.try_get("client_id")?,
                    r.try_get("hour")?,
                    r.try_get("kind")?,
                    r.try_get("user_id")?,
                ),
                vec![r.try_get::<i64, _>("n")?, text_i64(&r, "amount")?],
            );
        }
        if let Some(d) = first_difference("report_money", "kind", &stored, &recomputed) {
            return Ok(Some(d));
        }
        // Per client: the rounds' net results are the game-result money of the journal (all
        // of it: `report_rounds` is kept with the rounds, not fed).
        let mut results: BTreeMap<String, i64> = BTreeMap::new();
        for r in sqlx::query(GAME_RESULTS_FROM_JOURNAL)
            .fetch_all(&mut *tx)
            .await?
        {
            *results.entry(r.try_get("client_id")?).or_default() += text_i64(&r, "amount")?;
        }
        let mut stored = BTreeMap::new();
        for r in sqlx::query(
            "SELECT client_id, hour, provider, user_id, rounds, stake, net FROM report_rounds",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            stored.insert(
                (
                    r.try_get("client_id")?,
                    r.try_get("hour")?,
                    r.try_get("provider")?,
                    r.try_get("user_id")?,
                ),
                vec![
                    r.try_get::<i64, _>("rounds")?,
                    r.try_get("stake")?,
                    r.try_get("net")?,
                ],
            );
        }
        let mut recomputed = BTreeMap::new();
        let mut nets: BTreeMap<String, i64> = BTreeMap::new();
        for r in sqlx::query(ROUNDS_FROM_GAME_ROUNDS)
            .fetch_all(&mut *tx)
            .await?
        {
            let key: RollupKey = (
                r.try_get("client_id")?,
                r.try_get("hour")?,
                r.try_get("provider")?,
                r.try_get("user_id")?,
            );
            let net = text_i64(&r, "net")?;
            *nets.entry(key.0.clone()).or_default() += net;
            recomputed.insert(
                key,
                vec![r.try_get::<i64, _>("rounds")?, text_i64(&r, "stake")?, net],
            );
        }
        if let Some(d) = first_difference("report_rounds", "provider", &stored, &recomputed) {
            return Ok(Some(d));
        }
        for client in results.keys().chain(nets.keys()) {
            let (money, rounds) = (
                results.get(client).copied().unwrap_or(0),
                nets.get(client).copied().unwrap_or(0),
            );
            if money != rounds {
                return Ok(Some(format!(
                    "client {client}: rounds' net results {rounds} differ from game-result money {money}"
                )));
            }
        }
        Ok(None)
    }
}
