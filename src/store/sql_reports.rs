// Report rollup SQL (issue 17), included into `sqlite.rs` and `mysql.rs` after `sql.rs`.

use std::collections::BTreeMap;

use super::reports::{HistoryRow, MoneyRollup, ReportUser, ReportUsers, RoundRollup};

/// The money rollup recomputed from the journal: the definition of
/// `report_feed::money_rollup_of` (and of migration 0050's backfill) in SQL, over the entries
/// the feed has taken (`rolled_up = 1`, or up to the SQLite cursor) or over all (`GAME_RESULTS`). Sums as text: both
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
const MONEY_FROM_JOURNAL: &str = if FEED_BY_ROWID {
    // Entries fed before the cursor existed were marked; since, the cursor says.
    money_from_journal!(
        "WHERE (j.rolled_up = 1 OR j.rowid <= (SELECT journal_rowid FROM report_feed_cursor))"
    )
} else {
    money_from_journal!("WHERE j.rolled_up = 1")
};
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

/// A `report_money(_client)` row (the client table selects `'' AS user_id`).
fn money_rollup(r: &DbRow) -> Result<MoneyRollup, sqlx::Error> {
    Ok(MoneyRollup {
        hour: r.try_get("hour")?,
        kind: r.try_get("kind")?,
        user_id: r.try_get("user_id")?,
        n: r.try_get("n")?,
        amount: r.try_get("amount")?,
    })
}

/// A `report_rounds(_client)` row (the client table selects `'' AS user_id`).
fn round_rollup(r: &DbRow) -> Result<RoundRollup, sqlx::Error> {
    Ok(RoundRollup {
        hour: r.try_get("hour")?,
        provider: r.try_get("provider")?,
        user_id: r.try_get("user_id")?,
        rounds: r.try_get("rounds")?,
        stake: r.try_get("stake")?,
        net: r.try_get("net")?,
    })
}

/// SQLite's feed cursor: the rowid of the last journal entry fed, checked against the entry's
/// id (a copy of the database that renumbered rowids would otherwise be fed wrong, silently;
/// `VACUUM INTO`, the backup, keeps them).
async fn feed_cursor(tx: &mut sqlx::Transaction<'_, Db>) -> StoreResult<i64> {
    let (rowid, id): (i64, String) =
        sqlx::query_as("SELECT journal_rowid, journal_id FROM report_feed_cursor WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?;
    if id.is_empty() {
        return Ok(rowid);
    }
    let at: Option<String> = sqlx::query_scalar("SELECT id FROM journal WHERE rowid = ?")
        .bind(rowid)
        .fetch_optional(&mut **tx)
        .await?;
    if at.as_deref() != Some(id.as_str()) {
        return Err(StoreError::Config(format!(
            "the report feed's cursor (journal rowid {rowid}) no longer names entry {id}: \
             the journal's rowids changed; restore the database file as it was copied"
        )));
    }
    Ok(rowid)
}

/// `?, ?, ...` for `n` values.
fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl Backend {
    /// One report-feed transaction (`report_feed.rs`): up to `max` journal entries and `max`
    /// new rounds not yet in the rollups are added to them and marked (SQLite: the cursor moves
    /// past the entries, `FEED_BY_ROWID`); how many. `wait`: for rows another feed holds
    /// (MySQL; else they are skipped). On MySQL the
    /// transaction reads committed (no gap locks on the journal's index: the money path's
    /// inserts never wait for it) and skips rows another node's feed holds. Two feeds adding
    /// the same mark at once: the second fails on the key and its whole transaction is retried
    /// by the next run.
    pub async fn feed_reports_once(&self, max: i64, wait: bool) -> StoreResult<usize> {
        use super::report_feed::{FedEntry, FedRound, money_rows, plan};
        let mysql = NAME == "mysql";
        // SQLite: the write connection, i.e. this process's write turn (a second writing
        // connection made other writes meet SQLITE_BUSY; tried in session 19).
        let mut conn = self.write.acquire().await?;
        if mysql {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                .execute(&mut *conn)
                .await?;
        }
        let mut tx = sqlx::Connection::begin_with(&mut *conn, BEGIN_WRITE).await?;
        let lock = match (mysql, wait) {
            (true, true) => " FOR UPDATE",
            (true, false) => " FOR UPDATE SKIP LOCKED",
            (false, _) => "",
        };
        let cursor = if FEED_BY_ROWID {
            Some(feed_cursor(&mut tx).await?)
        } else {
            None
        };
        let rows = match cursor {
            // Rows after the cursor still marked 1 were fed before it existed.
            Some(after) => sqlx::query(
                "SELECT rowid AS seq, id, client_id, kind, subject_account_id, created_at \
                 FROM journal WHERE rowid > ? AND rolled_up = 0 ORDER BY rowid LIMIT ?",
            )
            .bind(after)
            .bind(max),
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT id, client_id, kind, subject_account_id, created_at FROM journal \
                 WHERE rolled_up = 0 LIMIT ?{lock}"
            )))
            .bind(max),
        }
        .fetch_all(&mut *tx)
        .await?;
        let round_rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT client_id, provider, round_id, user_id, created_at FROM game_rounds \
             WHERE fed = 0 LIMIT ?{lock}"
        )))
        .bind(max)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() && round_rows.is_empty() {
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
        let rounds: Vec<FedRound> = round_rows
            .iter()
            .map(|r| {
                Ok(FedRound {
                    client_id: r.try_get("client_id")?,
                    provider: r.try_get("provider")?,
                    round_id: r.try_get("round_id")?,
                    user_id: r.try_get("user_id")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        if !ids.is_empty() {
            let index: std::collections::HashMap<String, usize> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect();
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
        }

        // Whose wallets are players', and each client's report zone.
        let users: std::collections::BTreeSet<&str> = entries
            .iter()
            .filter_map(|e| e.subject_account_id.strip_prefix("w:"))
            .collect();
        let users: Vec<&str> = users.into_iter().collect();
        let owners = self.owners_cached(&mut tx, &users).await?;
        let players: std::collections::HashSet<String> = owners
            .iter()
            .filter(|(_, o)| o.is_player)
            .map(|(id, _)| id.clone())
            .collect();
        let clients: std::collections::BTreeSet<&str> = entries
            .iter()
            .map(|e| e.client_id.as_str())
            .chain(rounds.iter().map(|r| r.client_id.as_str()))
            .collect();
        let mut zones = std::collections::HashMap::new();
        let next_hour =
            super::report_feed::hour_of(crate::domain::now_ms()) + super::report_feed::HOUR_MS;
        for client in clients {
            let settings: Option<String> =
                sqlx::query_scalar("SELECT settings FROM client_settings WHERE client_id = ?")
                    .bind(client)
                    .fetch_optional(&mut *tx)
                    .await?;
            let zone = super::report_feed::zone_of(settings.as_deref());
            let current: Option<String> =
                sqlx::query_scalar("SELECT zone FROM report_zone_series WHERE client_id = ?")
                    .bind(client)
                    .fetch_optional(&mut *tx)
                    .await?;
            if current.as_deref() != Some(zone.name()) {
                // A client's first series is whole from the start (every entry of it is fed
                // with zone marks; migration 0111 gave older clients a placeholder); a changed
                // zone's starts whole at the next hour (earlier buckets lack entries fed before).
                let since = if current.is_none() { 0 } else { next_hour };
                sqlx::query("DELETE FROM report_zone_series WHERE client_id = ?")
                    .bind(client)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO report_zone_series (client_id, zone, since) VALUES (?, ?, ?)",
                )
                .bind(client)
                .bind(zone.name())
                .bind(since)
                .execute(&mut *tx)
                .await?;
            }
            zones.insert(client.to_owned(), zone);
        }
        let feed = plan(&entries, &rounds, &players, &zones);

        // Marks: the candidates this node has not seen stored, less those stored.
        let candidates: Vec<super::report_feed::Mark> = {
            let seen = self.marks_seen.lock().unwrap_or_else(|e| e.into_inner());
            feed.marks
                .iter()
                .filter(|m| !seen.contains(*m))
                .cloned()
                .collect()
        };
        let mut stored = std::collections::HashSet::new();
        for chunk in candidates.chunks(100) {
            let cond =
                vec!["(client_id = ? AND series = ? AND bucket = ? AND user_id = ?)"; chunk.len()]
                    .join(" OR ");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT client_id, series, bucket, user_id FROM report_marks WHERE {cond}"
            )));
            for (c, series, bucket, u) in chunk {
                q = q.bind(c).bind(series).bind(*bucket).bind(u);
            }
            for r in q.fetch_all(&mut *tx).await? {
                stored.insert((
                    r.try_get::<String, _>("client_id")?,
                    r.try_get::<String, _>("series")?,
                    r.try_get::<i64, _>("bucket")?,
                    r.try_get::<String, _>("user_id")?,
                ));
            }
        }
        let new_marks: Vec<&super::report_feed::Mark> =
            candidates.iter().filter(|m| !stored.contains(*m)).collect();
        for chunk in new_marks.chunks(200) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO report_marks (client_id, series, bucket, user_id) VALUES {}",
                vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
            )));
            for (c, series, bucket, u) in chunk {
                q = q.bind(c).bind(series).bind(*bucket).bind(u);
            }
            q.execute(&mut *tx).await?;
        }
        feed_day_spans(&mut tx, &new_marks).await?;
        let mut counts: BTreeMap<(String, String, i64), i64> = BTreeMap::new();
        for (c, series, bucket, _) in &new_marks {
            *counts
                .entry((c.clone(), series.clone(), *bucket))
                .or_default() += 1;
        }

        // First deposits: a user's earliest deposit hour, moved earlier if an entry fed late
        // was. Users this node knows have one at or before the hour are skipped; the rest are
        // read in one statement per client.
        let first_unknown: Vec<(&(String, String), &i64)> = {
            let known = self
                .first_deposits_seen
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            feed.first_deposits
                .iter()
                .filter(|(key, hour)| known.get(*key).is_none_or(|k| k > *hour))
                .collect()
        };
        let mut stored_first: std::collections::HashMap<(String, String), i64> =
            std::collections::HashMap::new();
        let mut by_client: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for ((client, user), _) in &first_unknown {
            by_client
                .entry(client.as_str())
                .or_default()
                .push(user.as_str());
        }
        for (client, users) in &by_client {
            for chunk in users.chunks(500) {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT user_id, hour FROM report_first_deposits WHERE client_id = ? \
                     AND user_id IN ({})",
                    marks(chunk.len())
                )))
                .bind(*client);
                for u in chunk {
                    q = q.bind(*u);
                }
                for r in q.fetch_all(&mut *tx).await? {
                    stored_first.insert(
                        ((*client).to_owned(), r.try_get("user_id")?),
                        r.try_get("hour")?,
                    );
                }
            }
        }
        for ((client, user), hour) in first_unknown {
            match stored_first.get(&(client.clone(), user.clone())).copied() {
                Some(k) if k <= *hour => {}
                Some(k) => {
                    sqlx::query(
                        "UPDATE report_first_deposits SET hour = ? WHERE client_id = ? AND user_id = ?",
                    )
                    .bind(*hour)
                    .bind(client)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
                    *counts
                        .entry((client.clone(), "first_deposit".into(), k))
                        .or_default() -= 1;
                    *counts
                        .entry((client.clone(), "first_deposit".into(), *hour))
                        .or_default() += 1;
                }
                None => {
                    sqlx::query(
                        "INSERT INTO report_first_deposits (client_id, user_id, hour) VALUES (?, ?, ?)",
                    )
                    .bind(client)
                    .bind(user)
                    .bind(*hour)
                    .execute(&mut *tx)
                    .await?;
                    *counts
                        .entry((client.clone(), "first_deposit".into(), *hour))
                        .or_default() += 1;
                }
            }
        }
        let counts: Vec<_> = counts.into_iter().filter(|(_, n)| *n != 0).collect();
        for chunk in counts.chunks(300) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO report_counts (client_id, series, bucket, n) VALUES {}{}",
                vec!["(?, ?, ?, ?)"; chunk.len()].join(", "),
                if mysql {
                    " ON DUPLICATE KEY UPDATE n = n + VALUES(n)"
                } else {
                    " ON CONFLICT (client_id, series, bucket) DO UPDATE SET n = n + excluded.n"
                }
            )));
            for ((c, series, bucket), n) in chunk {
                q = q.bind(c).bind(series).bind(*bucket).bind(*n);
            }
            q.execute(&mut *tx).await?;
        }

        let money_client: Vec<_> = feed.money_client.iter().collect();
        for chunk in money_client.chunks(300) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO report_money_client (client_id, hour, kind, n, amount) VALUES {}{}",
                vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", "),
                if mysql {
                    " ON DUPLICATE KEY UPDATE n = n + VALUES(n), amount = amount + VALUES(amount)"
                } else {
                    " ON CONFLICT (client_id, hour, kind) DO UPDATE SET n = n + excluded.n, \
                     amount = amount + excluded.amount"
                }
            )));
            for ((c, hour, kind), (n, amount)) in chunk {
                q = q.bind(c).bind(*hour).bind(kind).bind(*n).bind(*amount);
            }
            q.execute(&mut *tx).await?;
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
        feed_agent_money(&mut tx, &entries, &owners, &zones).await?;
        if let (Some(after), Some(last)) = (cursor, rows.last()) {
            let seq: i64 = last.try_get("seq")?;
            let id: String = last.try_get("id")?;
            let moved = sqlx::query(
                "UPDATE report_feed_cursor SET journal_rowid = ?, journal_id = ? \
                 WHERE id = 1 AND journal_rowid = ?",
            )
            .bind(seq)
            .bind(id)
            .bind(after)
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() != 1 {
                return Err(StoreError::Conflict);
            }
        } else if !ids.is_empty() {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE journal SET rolled_up = 1 WHERE rolled_up = 0 AND id IN ({})",
                marks(ids.len())
            )));
            for id in &ids {
                q = q.bind(id);
            }
            // Every entry read was waiting and is held by this transaction.
            if q.execute(&mut *tx).await?.rows_affected() != ids.len() as u64 {
                return Err(StoreError::Conflict);
            }
        }
        for chunk in rounds.chunks(200) {
            let cond =
                vec!["(client_id = ? AND provider = ? AND round_id = ?)"; chunk.len()].join(" OR ");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE game_rounds SET fed = 1 WHERE fed = 0 AND ({cond})"
            )));
            for r in chunk {
                q = q.bind(&r.client_id).bind(&r.provider).bind(&r.round_id);
            }
            if q.execute(&mut *tx).await?.rows_affected() != chunk.len() as u64 {
                return Err(StoreError::Conflict);
            }
        }
        tx.commit().await?;
        let mut seen = self.marks_seen.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: forgotten marks are only asked again.
        if seen.len() > 1_000_000 {
            seen.clear();
        }
        seen.extend(feed.marks);
        drop(seen);
        let mut known = self
            .first_deposits_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if known.len() > 1_000_000 {
            known.clear();
        }
        for (key, hour) in feed.first_deposits {
            let k = known.entry(key).or_insert(hour);
            *k = (*k).min(hour);
        }
        Ok(ids.len() + rounds.len())
    }

    pub async fn record_ws_users(
        &self,
        node: &str,
        minute: i64,
        counts: &[(String, usize)],
    ) -> StoreResult<()> {
        for chunk in counts.chunks(300) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO report_ws_samples (client_id, minute, node_id, users) VALUES {}{}",
                vec!["(?, ?, ?, ?)"; chunk.len()].join(", "),
                if NAME == "mysql" {
                    " ON DUPLICATE KEY UPDATE users = VALUES(users)"
                } else {
                    " ON CONFLICT (client_id, minute, node_id) DO UPDATE SET users = excluded.users"
                }
            )));
            for (client, users) in chunk {
                q = q.bind(client).bind(minute).bind(node).bind(*users as i64);
            }
            q.execute(&self.write).await?;
        }
        Ok(())
    }

    pub async fn ws_users(
        &self,
        client_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT minute, CAST(SUM(users) AS CHAR) AS users FROM report_ws_samples \
             WHERE client_id = ? AND minute >= ? AND minute < ? GROUP BY minute",
        )
        .bind(client_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("minute")?, text_i64(r, "users")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn report_money_client(
        &self,
        client_id: &str,
        from_hour: i64,
        to_hour: i64,
        summed: bool,
    ) -> StoreResult<Vec<MoneyRollup>> {
        let rows = sqlx::query(if summed {
            "SELECT MIN(hour) AS hour, kind, '' AS user_id, CAST(SUM(n) AS SIGNED) AS n, \
             CAST(SUM(amount) AS SIGNED) AS amount FROM report_money_client \
             WHERE client_id = ? AND hour >= ? AND hour < ? GROUP BY kind"
        } else {
            "SELECT hour, kind, '' AS user_id, n, amount FROM report_money_client \
             WHERE client_id = ? AND hour >= ? AND hour < ?"
        })
        .bind(client_id)
        .bind(from_hour)
        .bind(to_hour)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(money_rollup)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn report_rounds_client(
        &self,
        client_id: &str,
        from_hour: i64,
        to_hour: i64,
        summed: bool,
    ) -> StoreResult<Vec<RoundRollup>> {
        let rows = sqlx::query(if summed {
            "SELECT MIN(hour) AS hour, provider, '' AS user_id, CAST(SUM(rounds) AS SIGNED) AS rounds, \
             CAST(SUM(stake) AS SIGNED) AS stake, CAST(SUM(net) AS SIGNED) AS net \
             FROM report_rounds_client WHERE client_id = ? AND hour >= ? AND hour < ? GROUP BY provider"
        } else {
            "SELECT hour, provider, '' AS user_id, rounds, stake, net FROM report_rounds_client \
             WHERE client_id = ? AND hour >= ? AND hour < ?"
        })
        .bind(client_id)
        .bind(from_hour)
        .bind(to_hour)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(round_rollup)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn report_counts(
        &self,
        client_id: &str,
        series: &[String],
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<(String, i64, i64)>> {
        if series.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT series, bucket, n FROM report_counts WHERE client_id = ? AND series IN ({}) \
             AND bucket >= ? AND bucket < ?",
            marks(series.len())
        )))
        .bind(client_id);
        for s in series {
            q = q.bind(s);
        }
        let rows = q.bind(from).bind(to).fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("series")?, r.try_get("bucket")?, r.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn report_distinct(
        &self,
        client_id: &str,
        series: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(DISTINCT user_id) FROM report_marks \
             WHERE client_id = ? AND series = ? AND bucket >= ? AND bucket < ?",
        )
        .bind(client_id)
        .bind(series)
        .bind(from)
        .bind(to)
        .fetch_one(&self.read)
        .await?)
    }

    pub async fn report_zone_series(&self, client_id: &str) -> StoreResult<Option<(String, i64)>> {
        let row = sqlx::query("SELECT zone, since FROM report_zone_series WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| Ok((r.try_get("zone")?, r.try_get("since")?)))
            .transpose()
            .map_err(|e: sqlx::Error| e.into())
    }

    pub async fn player_registrations(
        &self,
        client_id: &str,
        from: i64,
        to: i64,
        summed: bool,
    ) -> StoreResult<(i64, Vec<(i64, i64)>)> {
        let before: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE client_id = ? AND role = 'player' AND created_at < ?",
        )
        .bind(client_id)
        .bind(from)
        .fetch_one(&self.read)
        .await?;
        if summed {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM users WHERE client_id = ? AND role = 'player' \
                 AND created_at >= ? AND created_at < ?",
            )
            .bind(client_id)
            .bind(from)
            .bind(to)
            .fetch_one(&self.read)
            .await?;
            return Ok((before, vec![(from, n)]));
        }
        let rows = sqlx::query(
            "SELECT created_at - created_at % 3600000 AS hour, COUNT(*) AS n FROM users \
             WHERE client_id = ? AND role = 'player' AND created_at >= ? AND created_at < ? \
             GROUP BY created_at - created_at % 3600000",
        )
        .bind(client_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.read)
        .await?;
        let per_hour = rows
            .iter()
            .map(|r| Ok((r.try_get("hour")?, r.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        Ok((before, per_hour))
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
            .map(money_rollup)
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
            .map(round_rollup)
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
        if let Some(d) = client_rollup_violation(&mut tx).await? {
            return Ok(Some(d));
        }
        if let Some(d) = day_span_violation(&mut tx).await? {
            return Ok(Some(d));
        }
        agent_rollup_violation(&mut tx).await
    }
}

/// Rows of `sql` keyed by its first four columns (the fourth as text), valued by the rest.
async fn keyed(
    tx: &mut sqlx::Transaction<'_, Db>,
    sql: &str,
    values: &[&str],
) -> StoreResult<BTreeMap<RollupKey, Vec<i64>>> {
    let mut out = BTreeMap::new();
    for r in sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut **tx)
        .await?
    {
        let key: RollupKey = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
        let mut v = Vec::new();
        for c in values {
            v.push(text_i64(&r, c)?);
        }
        out.insert(key, v);
    }
    Ok(out)
}

/// The client-level rollups (migration 0111) against what they summarize, in the caller's
/// snapshot: money and rounds per client against the per-user rows, hourly marks against the
/// fed journal and rounds, every count against its marks, first deposits against the deposits,
/// and each zone series' whole buckets against the hourly marks.
async fn client_rollup_violation(
    tx: &mut sqlx::Transaction<'_, Db>,
) -> StoreResult<Option<String>> {
    let provider_series = if NAME == "mysql" {
        "CONCAT('players:', provider, ':h')"
    } else {
        "'players:' || provider || ':h'"
    };
    let hourly_marks = format!(
        "SELECT m.client_id, m.hour, 'active:h', m.user_id, '1' AS one FROM report_money m \
           JOIN users u ON u.id = m.user_id AND u.role = 'player' \
         UNION SELECT client_id, created_at - created_at % 3600000, 'active:h', user_id, '1' \
           FROM game_rounds WHERE fed = 1 \
         UNION SELECT client_id, created_at - created_at % 3600000, {provider_series}, user_id, '1' \
           FROM game_rounds WHERE fed = 1 \
         UNION SELECT client_id, hour, 'depositing:h', user_id, '1' FROM report_money \
           WHERE kind = 'deposit' AND user_id <> ''"
    );
    let checks: [(&str, &str, &str, &str, &[&str]); 6] = [
        (
            "report_money_client",
            "kind",
            "SELECT client_id, hour, kind, '' AS k, CAST(n AS CHAR) AS n, CAST(amount AS CHAR) AS amount FROM report_money_client",
            "SELECT client_id, hour, kind, '' AS k, CAST(SUM(n) AS CHAR) AS n, CAST(SUM(amount) AS CHAR) AS amount \
             FROM report_money GROUP BY client_id, hour, kind",
            &["n", "amount"],
        ),
        (
            "report_rounds_client",
            "provider",
            "SELECT client_id, hour, provider, '' AS k, CAST(rounds AS CHAR) AS rounds, CAST(stake AS CHAR) AS stake, \
             CAST(net AS CHAR) AS net FROM report_rounds_client",
            "SELECT client_id, hour, provider, '' AS k, CAST(SUM(rounds) AS CHAR) AS rounds, CAST(SUM(stake) AS CHAR) AS stake, \
             CAST(SUM(net) AS CHAR) AS net FROM report_rounds GROUP BY client_id, hour, provider",
            &["rounds", "stake", "net"],
        ),
        (
            "report_marks",
            "series",
            "SELECT client_id, bucket, series, user_id, '1' AS one FROM report_marks \
             WHERE series LIKE '%:h'",
            &hourly_marks,
            &["one"],
        ),
        (
            "report_counts",
            "series",
            "SELECT client_id, bucket, series, '' AS k, CAST(n AS CHAR) AS n FROM report_counts \
             WHERE series <> 'first_deposit' AND n <> 0",
            "SELECT client_id, bucket, series, '' AS k, CAST(COUNT(*) AS CHAR) AS n FROM report_marks \
             GROUP BY client_id, bucket, series",
            &["n"],
        ),
        (
            "report_counts",
            "series",
            "SELECT client_id, bucket, series, '' AS k, CAST(n AS CHAR) AS n FROM report_counts \
             WHERE series = 'first_deposit' AND n <> 0",
            "SELECT client_id, hour, 'first_deposit', '' AS k, CAST(COUNT(*) AS CHAR) AS n \
             FROM report_first_deposits GROUP BY client_id, hour",
            &["n"],
        ),
        (
            "report_first_deposits",
            "user",
            "SELECT client_id, hour, 'first', user_id, '1' AS one FROM report_first_deposits",
            "SELECT client_id, MIN(hour), 'first', user_id, '1' AS one FROM report_money \
             WHERE kind = 'deposit' AND user_id <> '' GROUP BY client_id, user_id",
            &["one"],
        ),
    ];
    for (table, dimension, stored, recomputed, values) in checks {
        let stored = keyed(tx, stored, values).await?;
        let recomputed = keyed(tx, recomputed, values).await?;
        if let Some(d) = first_difference(table, dimension, &stored, &recomputed) {
            return Ok(Some(d));
        }
    }
    // Zone series: a whole bucket's marks are the users marked in its hours.
    let zones =
        sqlx::query("SELECT client_id, zone, since FROM report_zone_series WHERE zone <> ''")
            .fetch_all(&mut **tx)
            .await?;
    for z in zones {
        let (client, zone, since): (String, String, i64) = (
            z.try_get("client_id")?,
            z.try_get("zone")?,
            z.try_get("since")?,
        );
        let Ok(tz) = zone.parse::<chrono_tz::Tz>() else {
            return Ok(Some(format!(
                "report_zone_series client={client}: zone {zone:?}"
            )));
        };
        let hourly = sqlx::query(
            "SELECT series, bucket, user_id FROM report_marks WHERE client_id = ? \
             AND series LIKE '%:h' AND bucket >= ?",
        )
        .bind(&client)
        .bind(since)
        .fetch_all(&mut **tx)
        .await?;
        let mut expected: std::collections::BTreeSet<(String, i64, String)> = Default::default();
        for r in hourly {
            let series: String = r.try_get("series")?;
            let hour: i64 = r.try_get("bucket")?;
            let user: String = r.try_get("user_id")?;
            let what = series.trim_end_matches(":h");
            for g in [
                crate::domain::calendar::Granularity::Day,
                crate::domain::calendar::Granularity::Week,
                crate::domain::calendar::Granularity::Month,
            ] {
                let start = crate::domain::calendar::bucket_start(hour, tz, g);
                if start >= since {
                    let s = super::report_feed::series(what, g, tz);
                    expected.insert((s, start, user.clone()));
                }
            }
        }
        let stored = sqlx::query(
            "SELECT series, bucket, user_id FROM report_marks WHERE client_id = ? \
             AND series NOT LIKE '%:h' AND bucket >= ?",
        )
        .bind(&client)
        .bind(since)
        .fetch_all(&mut **tx)
        .await?;
        let mut got: std::collections::BTreeSet<(String, i64, String)> = Default::default();
        for r in stored {
            let key: (String, i64, String) = (
                r.try_get("series")?,
                r.try_get("bucket")?,
                r.try_get("user_id")?,
            );
            // Only this zone's series are whole from `since`.
            if key.0.ends_with(zone.as_str()) {
                got.insert(key);
            }
        }
        if let Some(d) = expected.symmetric_difference(&got).next() {
            return Ok(Some(format!(
                "report_marks client={client} series={} bucket={}: user {} {}",
                d.0,
                crate::domain::rfc3339_ms(d.1),
                d.2,
                if got.contains(d) {
                    "marked but not active in the bucket's hours"
                } else {
                    "active in the bucket's hours but not marked"
                }
            )));
        }
    }
    Ok(None)
}
