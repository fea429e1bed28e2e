// Report rollup SQL (issue 17), included into `sqlite.rs` and `mysql.rs` after `sql.rs`.

use std::collections::BTreeMap;

use super::reports::{
    HistoryRow, HistorySlice, HistorySource, MoneyRollup, ReportUser, ReportUsers, RoundRollup,
};

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
     provider, game, user_id, COUNT(*) AS rounds, CAST(SUM(stake) AS CHAR) AS stake, CAST(SUM(net) AS CHAR) AS net \
     FROM game_rounds GROUP BY client_id, created_at - created_at % 3600000, provider, game, user_id";

/// A round rollup's provider and game as one key part (`jdb game=0-8001`): a bucket that
/// differs is named with both.
fn provider_game(provider: &str, game: &str) -> String {
    format!("{provider} game={game}")
}

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
        game: r.try_get("game")?,
        user_id: r.try_get("user_id")?,
        rounds: r.try_get("rounds")?,
        stake: r.try_get("stake")?,
        net: r.try_get("net")?,
    })
}

/// An `hour` column put into the start of its bucket, `starts` being the starts of contiguous
/// buckets that cover the rows read (`Period::sum_starts`): the hourly rows are summed in SQL
/// (sqlx hands SQLite's rows over one at a time: 4,320 hourly money rows were most of a
/// 30-day client-metrics request). Binds: [`bind_bucket_case`].
fn bucket_case(starts: &[i64]) -> String {
    let mut case = String::from("CAST(CASE");
    for _ in 1..starts.len() {
        case.push_str(" WHEN hour < ? THEN ?");
    }
    // A lone `ELSE` is no `CASE`.
    case.push_str(" WHEN 0 = 1 THEN 0 ELSE ? END AS SIGNED)");
    case
}

fn bind_bucket_case<'q>(
    mut q: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>,
    starts: &[i64],
) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments> {
    for w in starts.windows(2) {
        q = q.bind(w[1]).bind(w[0]);
    }
    if let Some(last) = starts.last() {
        q = q.bind(*last);
    }
    q
}

/// `?, ?, ...` for `n` values.
fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl Backend {
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
        sum_into: &[i64],
    ) -> StoreResult<Vec<MoneyRollup>> {
        let rows = self
            .client_hour_rows(
                "report_money_client",
                "kind",
                &["n", "amount"],
                (client_id, from_hour, to_hour),
                sum_into,
            )
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
        sum_into: &[i64],
    ) -> StoreResult<Vec<RoundRollup>> {
        let rows = self
            .client_hour_rows(
                "report_rounds_client",
                "provider, game",
                &["rounds", "stake", "net"],
                (client_id, from_hour, to_hour),
                sum_into,
            )
            .await?;
        rows.iter()
            .map(round_rollup)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// `hour, <keys>, '' AS user_id, <values>` of a client-level hourly `table` for
    /// `(client, from_hour, to_hour)`: each hour's row, or summed per bucket of `sum_into`.
    async fn client_hour_rows(
        &self,
        table: &str,
        keys: &str,
        values: &[&str],
        (client_id, from_hour, to_hour): (&str, i64, i64),
        sum_into: &[i64],
    ) -> StoreResult<Vec<DbRow>> {
        let range = "WHERE client_id = ? AND hour >= ? AND hour < ?";
        let sql = if sum_into.is_empty() {
            format!(
                "SELECT hour, {keys}, '' AS user_id, {} FROM {table} {range}",
                values.join(", ")
            )
        } else {
            let sums: Vec<String> = values
                .iter()
                .map(|v| format!("CAST(SUM({v}) AS SIGNED) AS {v}"))
                .collect();
            format!(
                "SELECT {} AS hour, {keys}, '' AS user_id, {} FROM {table} {range} \
                 GROUP BY 1, {keys}",
                bucket_case(sum_into),
                sums.join(", ")
            )
        };
        Ok(
            bind_bucket_case(sqlx::query(sqlx::AssertSqlSafe(sql)), sum_into)
                .bind(client_id)
                .bind(from_hour)
                .bind(to_hour)
                .fetch_all(&self.read)
                .await?,
        )
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

    pub async fn report_zone_series(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<super::reports::ZoneSeries>> {
        let row = sqlx::query(
            "SELECT zone, since, agents_since, games_since FROM report_zone_series WHERE client_id = ?",
        )
        .bind(client_id)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(super::reports::ZoneSeries {
                zone: r.try_get("zone")?,
                since: r.try_get("since")?,
                agents_since: r.try_get("agents_since")?,
                games_since: r.try_get("games_since")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| e.into())
    }

    /// Players registered before `from`, and per hour of `[from, to)` (one row at `from` if
    /// `summed`), from the `registered` counts (migration 0170).
    pub async fn player_registrations(
        &self,
        client_id: &str,
        from: i64,
        to: i64,
        summed: bool,
    ) -> StoreResult<(i64, Vec<(i64, i64)>)> {
        const SUM: &str = "SELECT CAST(COALESCE(SUM(n), 0) AS CHAR) AS n FROM report_counts \
             WHERE client_id = ? AND series = 'registered' AND bucket >= ? AND bucket < ?";
        let sum = |a: i64, b: i64| async move {
            let row = sqlx::query(SUM)
                .bind(client_id)
                .bind(a)
                .bind(b)
                .fetch_one(&self.read)
                .await?;
            Ok::<_, StoreError>(text_i64(&row, "n")?)
        };
        let before = sum(i64::MIN, from).await?;
        if summed {
            return Ok((before, vec![(from, sum(from, to).await?)]));
        }
        let per_hour = self
            .report_counts(client_id, &["registered".to_owned()], from, to)
            .await?
            .into_iter()
            .map(|(_, hour, n)| (hour, n))
            .collect();
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
            "SELECT r.hour, r.provider, r.game, r.user_id, r.rounds, r.stake, r.net FROM report_rounds r{join} \
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

    /// One source of a player's history, newest first by time (ties in no order: the scan
    /// sorts them): its rows at or before a time, at most a limit, or all rows at one time.
    pub async fn history_source(
        &self,
        source: HistorySource,
        client_id: &str,
        user_id: &str,
        slice: HistorySlice,
    ) -> StoreResult<Vec<HistoryRow>> {
        let (table, columns, at) = match source {
            HistorySource::Rounds => (
                HISTORY_TABLES[0],
                "provider, round_id, status, stake, net, created_at AS at",
                "created_at",
            ),
            HistorySource::Transfers => (
                HISTORY_TABLES[1],
                "id, provider, direction, state, amount, created_at AS at",
                "created_at",
            ),
            HistorySource::Sessions => (
                HISTORY_TABLES[2],
                "id, provider, game_code, state, started_at AS at",
                "started_at",
            ),
        };
        let (range, time, limit) = match slice {
            HistorySlice::Upto { upto, limit } => (
                format!("{at} <= ? ORDER BY {at} DESC LIMIT ?"),
                upto,
                Some(limit),
            ),
            HistorySlice::At(time) => (format!("{at} = ?"), time, None),
        };
        let sql = format!(
            "SELECT {columns} FROM {table} WHERE client_id = ? AND user_id = ? AND {range}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_id)
            .bind(user_id)
            .bind(time);
        if let Some(limit) = limit {
            q = q.bind(limit);
        }
        let rows = q.fetch_all(&self.read).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let at: i64 = r.try_get("at")?;
            let provider: String = r.try_get("provider")?;
            out.push(match source {
                HistorySource::Rounds => {
                    let round: String = r.try_get("round_id")?;
                    HistoryRow {
                        kind: "round",
                        at,
                        id: format!("round:{provider}:{round}"),
                        provider,
                        detail: r.try_get("status")?,
                        amount: r.try_get("stake")?,
                        net: r.try_get("net")?,
                    }
                }
                HistorySource::Transfers => {
                    let id: String = r.try_get("id")?;
                    let direction: String = r.try_get("direction")?;
                    let state: String = r.try_get("state")?;
                    HistoryRow {
                        kind: "transfer",
                        at,
                        id: format!("transfer:{id}"),
                        provider,
                        detail: format!("{direction} {state}"),
                        amount: r.try_get("amount")?,
                        net: 0,
                    }
                }
                HistorySource::Sessions => {
                    let id: String = r.try_get("id")?;
                    let game: String = r.try_get("game_code")?;
                    let state: String = r.try_get("state")?;
                    HistoryRow {
                        kind: "session",
                        at,
                        id: format!("session:{id}"),
                        provider,
                        detail: format!("{game} {state}"),
                        amount: 0,
                        net: 0,
                    }
                }
            });
        }
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
            "SELECT client_id, hour, provider, game, user_id, rounds, stake, net FROM report_rounds",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            stored.insert(
                (
                    r.try_get("client_id")?,
                    r.try_get("hour")?,
                    provider_game(&r.try_get::<String, _>("provider")?, &r.try_get::<String, _>("game")?),
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
                provider_game(
                    &r.try_get::<String, _>("provider")?,
                    &r.try_get::<String, _>("game")?,
                ),
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

/// Counts the players among `users` (inserted in `tx`): per parent (`report_players_agent`)
/// and per client and hour of registration (`report_counts` series `registered`, migration
/// 0170), in key order (concurrent registrations lock rows in one order).
async fn count_new_players(
    tx: &mut sqlx::Transaction<'_, Db>,
    users: &[UserRow],
) -> StoreResult<()> {
    add_agent_players(tx, users).await?;
    let mut hours: BTreeMap<(&str, i64), i64> = BTreeMap::new();
    for u in users.iter().filter(|u| u.role.as_str() == "player") {
        if let Some(client) = &u.client_id {
            *hours
                .entry((client, super::report_feed::hour_of(u.created_at)))
                .or_default() += 1;
        }
    }
    let hours: Vec<_> = hours.into_iter().collect();
    for chunk in hours.chunks(300) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO report_counts (client_id, series, bucket, n) VALUES {}{}",
            vec!["(?, 'registered', ?, ?)"; chunk.len()].join(", "),
            if NAME == "mysql" {
                " ON DUPLICATE KEY UPDATE n = n + VALUES(n)"
            } else {
                " ON CONFLICT (client_id, series, bucket) DO UPDATE SET n = n + excluded.n"
            }
        )));
        for ((client, hour), n) in chunk {
            q = q.bind(*client).bind(*hour).bind(*n);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
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
    let (provider_series, game_series, provider_game) = if NAME == "mysql" {
        (
            "CONCAT('players:', provider, ':h')",
            "CONCAT('players:', provider, ':', game, ':h')",
            "CONCAT(provider, ' game=', game)",
        )
    } else {
        (
            "'players:' || provider || ':h'",
            "'players:' || provider || ':' || game || ':h'",
            "provider || ' game=' || game",
        )
    };
    let hourly_marks = format!(
        "SELECT m.client_id, m.hour, 'active:h', m.user_id, '1' AS one FROM report_money m \
           JOIN users u ON u.id = m.user_id AND u.role = 'player' \
         UNION SELECT client_id, created_at - created_at % 3600000, 'active:h', user_id, '1' \
           FROM game_rounds WHERE fed = 1 \
         UNION SELECT client_id, created_at - created_at % 3600000, {provider_series}, user_id, '1' \
           FROM game_rounds WHERE fed = 1 \
         UNION SELECT client_id, created_at - created_at % 3600000, {game_series}, user_id, '1' \
           FROM game_rounds WHERE fed = 1 \
         UNION SELECT client_id, hour, 'depositing:h', user_id, '1' FROM report_money \
           WHERE kind = 'deposit' AND user_id <> ''"
    );
    let rounds_client = format!(
        "SELECT client_id, hour, {provider_game} AS pg, '' AS k, CAST(rounds AS CHAR) AS rounds, \
         CAST(stake AS CHAR) AS stake, CAST(net AS CHAR) AS net FROM report_rounds_client"
    );
    let rounds_client_recomputed = format!(
        "SELECT client_id, hour, {provider_game} AS pg, '' AS k, CAST(SUM(rounds) AS CHAR) AS rounds, \
         CAST(SUM(stake) AS CHAR) AS stake, CAST(SUM(net) AS CHAR) AS net FROM report_rounds \
         GROUP BY client_id, hour, provider, game"
    );
    let checks: [(&str, &str, &str, &str, &[&str]); 7] = [
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
            &rounds_client,
            &rounds_client_recomputed,
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
             WHERE series NOT IN ('first_deposit', 'registered') AND n <> 0",
            "SELECT client_id, bucket, series, '' AS k, CAST(COUNT(*) AS CHAR) AS n FROM report_marks \
             GROUP BY client_id, bucket, series",
            &["n"],
        ),
        (
            "report_counts",
            "series",
            "SELECT client_id, bucket, series, '' AS k, CAST(n AS CHAR) AS n FROM report_counts \
             WHERE series = 'registered' AND n <> 0",
            "SELECT client_id, created_at - created_at % 3600000, 'registered', '' AS k, \
             CAST(COUNT(*) AS CHAR) AS n FROM users WHERE role = 'player' AND client_id IS NOT NULL \
             GROUP BY client_id, created_at - created_at % 3600000",
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
    let zones = sqlx::query(
        "SELECT client_id, zone, since, games_since FROM report_zone_series WHERE zone <> ''",
    )
    .fetch_all(&mut **tx)
    .await?;
    for z in zones {
        let (client, zone, since): (String, String, i64) = (
            z.try_get("client_id")?,
            z.try_get("zone")?,
            z.try_get("since")?,
        );
        // Per-game series are whole from `games_since` (migration 0160) on.
        let games_since = since.max(z.try_get("games_since")?);
        let whole_from = |series: &str| {
            if super::report_feed::is_game_series(series) {
                games_since
            } else {
                since
            }
        };
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
            let what = series.strip_suffix(":h").unwrap_or(&series);
            let from = whole_from(&series);
            for g in [
                crate::domain::calendar::Granularity::Day,
                crate::domain::calendar::Granularity::Week,
                crate::domain::calendar::Granularity::Month,
            ] {
                let start = crate::domain::calendar::bucket_start(hour, tz, g);
                if start >= from {
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
            // Only this zone's series are whole from `since` (per-game: `games_since`).
            if key.0.ends_with(zone.as_str()) && key.1 >= whole_from(&key.0) {
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
