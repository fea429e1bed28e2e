// The report feed's SQL (`report_feed.rs` holds the why), included into `sqlite.rs` and
// `mysql.rs` after `sql_reports.rs`.
//
// A feed transaction is gathered, then written. On MySQL both run in one transaction that
// holds the entries it reads (`FOR UPDATE [SKIP LOCKED]`). On SQLite the gathering (the
// entries after the cursor, their postings, owners, zones, the plan, which marks and first
// deposits are stored) runs on a read connection, outside the process's one write turn, and
// only the writes take the turn: the ledger writer waits for that turn, so everything done
// while holding it costs throughput (issue 17: reads and planning inside it were ~3/4 of the
// feed's hold time). What was read may be stale only if another feed committed meanwhile;
// that feed moved the cursor (the cursor update below is a compare-and-set), fed the rounds
// (their `fed = 0` update counts rows) or stored a mark (its insert fails on the key): each
// undoes this transaction whole, and it is retried.

use super::report_agents::Owner;
use super::report_feed::{FedEntry, FedRound, FeedPlan, Mark};

/// SQLite's feed cursor: the rowid of the last journal entry fed, checked against the entry's
/// id (a copy of the database that renumbered rowids would otherwise be fed wrong, silently;
/// `VACUUM INTO`, the backup, keeps them).
async fn feed_cursor(conn: &mut <Db as sqlx::Database>::Connection) -> StoreResult<i64> {
    let (rowid, id): (i64, String) =
        sqlx::query_as("SELECT journal_rowid, journal_id FROM report_feed_cursor WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
    if id.is_empty() {
        return Ok(rowid);
    }
    let at: Option<String> = sqlx::query_scalar("SELECT id FROM journal WHERE rowid = ?")
        .bind(rowid)
        .fetch_optional(&mut *conn)
        .await?;
    if at.as_deref() != Some(id.as_str()) {
        return Err(StoreError::Config(format!(
            "the report feed's cursor (journal rowid {rowid}) no longer names entry {id}: \
             the journal's rowids changed; restore the database file as it was copied"
        )));
    }
    Ok(rowid)
}

/// What one feed transaction writes, as gathered before it.
struct FeedWork {
    /// SQLite: the cursor read, and the (rowid, id) of the last entry taken.
    cursor: Option<i64>,
    last: Option<(i64, String)>,
    entries: Vec<FedEntry>,
    rounds: Vec<FedRound>,
    /// Every wallet user of the entries and every player of the rounds.
    owners: std::collections::HashMap<String, Owner>,
    zones: std::collections::HashMap<String, chrono_tz::Tz>,
    /// Zone series to (re)start: (client, zone, since).
    new_series: Vec<(String, String, i64)>,
    plan: FeedPlan,
    /// Marks of the plan not stored yet.
    new_marks: Vec<Mark>,
    /// First deposits to write: (client, user), the hour, the hour stored (later) if any.
    firsts: Vec<((String, String), i64, Option<i64>)>,
}

impl Backend {
    /// One report-feed transaction (`report_feed.rs`): up to `max` journal entries and `max`
    /// new rounds not yet in the rollups are added to them and marked (SQLite: the cursor moves
    /// past the entries, `FEED_BY_ROWID`); how many. `wait`: for rows another feed holds
    /// (MySQL; else they are skipped). On MySQL the transaction reads committed (no gap locks
    /// on the journal's index: the money path's inserts never wait for it) and skips rows
    /// another node's feed holds. Two feeds adding the same mark at once: the second fails on
    /// the key and its whole transaction is retried by the next run.
    pub async fn feed_reports_once(&self, max: i64, wait: bool) -> StoreResult<usize> {
        let _turn = self.feed_turn.lock().await;
        if NAME == "mysql" {
            let mut conn = self.write.acquire().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                .execute(&mut *conn)
                .await?;
            let mut tx = sqlx::Connection::begin_with(&mut *conn, BEGIN_WRITE).await?;
            let lock = if wait {
                " FOR UPDATE"
            } else {
                " FOR UPDATE SKIP LOCKED"
            };
            let Some(work) = self.feed_gather(&mut tx, max, lock).await? else {
                return Ok(0);
            };
            let n = self.feed_write(&mut tx, &work).await?;
            tx.commit().await?;
            self.feed_remember(work);
            return Ok(n);
        }
        let work = {
            let mut read = self.read.begin().await?;
            self.feed_gather(&mut read, max, "").await?
        };
        let Some(work) = work else { return Ok(0) };
        // The write turn (a second writing connection made other writes meet SQLITE_BUSY;
        // tried in session 19).
        let mut conn = self.write.acquire().await?;
        // Without a WAL sync at its commit: the feed's rows are derived and move with the
        // cursor in one transaction, so a crash before the next sync (any later commit of
        // the hub syncs the WAL and every frame before) loses them together and they are fed
        // again. The ledger's own syncs and every other write keep `synchronous = FULL`.
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await?;
        let written = async {
            let mut tx = sqlx::Connection::begin_with(&mut *conn, BEGIN_WRITE).await?;
            let n = self.feed_write(&mut tx, &work).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(n)
        }
        .await;
        if sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await
            .is_err()
        {
            // Never hand the pool a connection that commits without syncing.
            conn.close_on_drop();
        }
        let n = written?;
        self.feed_remember(work);
        Ok(n)
    }

    /// Reads what one feed transaction adds (None when nothing waits) and plans it.
    async fn feed_gather(
        &self,
        conn: &mut <Db as sqlx::Database>::Connection,
        max: i64,
        lock: &str,
    ) -> StoreResult<Option<FeedWork>> {
        use super::report_feed::plan;
        let cursor = if FEED_BY_ROWID {
            Some(feed_cursor(conn).await?)
        } else {
            None
        };
        let rows = match cursor {
            // Rows after the cursor still marked 1 were fed before it existed.
            Some(after) => sqlx::query(
                "SELECT rowid AS seq, id, client_id, kind, subject_account_id, created_at, \
                 rollup_amount FROM journal WHERE rowid > ? AND rolled_up = 0 ORDER BY rowid LIMIT ?",
            )
            .bind(after)
            .bind(max),
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT id, client_id, kind, subject_account_id, created_at, rollup_amount \
                 FROM journal WHERE rolled_up = 0 LIMIT ?{lock}"
            )))
            .bind(max),
        }
        .fetch_all(&mut *conn)
        .await?;
        let round_rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT client_id, provider, round_id, game, user_id, created_at FROM game_rounds \
             WHERE fed = 0 LIMIT ?{lock}"
        )))
        .bind(max)
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() && round_rows.is_empty() {
            return Ok(None);
        }
        let last = match (cursor, rows.last()) {
            (Some(_), Some(r)) => Some((r.try_get("seq")?, r.try_get("id")?)),
            _ => None,
        };
        // Entries written before the money path stored their rollup amount (migration 0150)
        // are summed from their postings.
        let mut older: Vec<(String, String)> = Vec::new();
        let mut entries: Vec<FedEntry> = rows
            .iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let subject: String = r.try_get("subject_account_id")?;
                let amount: Option<i64> = r.try_get("rollup_amount")?;
                if amount.is_none() {
                    older.push((id.clone(), subject.clone()));
                }
                Ok(FedEntry {
                    id,
                    client_id: r.try_get("client_id")?,
                    kind: r.try_get("kind")?,
                    subject_account_id: subject,
                    created_at: r.try_get("created_at")?,
                    amount: amount.unwrap_or(0),
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        let rounds: Vec<FedRound> = round_rows
            .iter()
            .map(|r| {
                Ok(FedRound {
                    client_id: r.try_get("client_id")?,
                    provider: r.try_get("provider")?,
                    game: r.try_get("game")?,
                    round_id: r.try_get("round_id")?,
                    user_id: r.try_get("user_id")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        if !older.is_empty() {
            let mut legs: std::collections::HashMap<String, Vec<(String, i64)>> =
                std::collections::HashMap::new();
            for chunk in older.chunks(500) {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT journal_id, account_id, amount FROM postings WHERE journal_id IN ({})",
                    marks(chunk.len())
                )));
                for (id, _) in chunk {
                    q = q.bind(id);
                }
                for r in q.fetch_all(&mut *conn).await? {
                    legs.entry(r.try_get("journal_id")?)
                        .or_default()
                        .push((r.try_get("account_id")?, r.try_get("amount")?));
                }
            }
            let amounts: std::collections::HashMap<&str, i64> = older
                .iter()
                .map(|(id, subject)| {
                    let of = legs.get(id).map_or(&[][..], Vec::as_slice);
                    let (_, amount) = super::report_feed::money_rollup_of(
                        subject,
                        of.iter().map(|(a, n)| (a.as_str(), *n)),
                    );
                    (id.as_str(), amount)
                })
                .collect();
            for e in &mut entries {
                if let Some(a) = amounts.get(e.id.as_str()) {
                    e.amount = *a;
                }
            }
        }

        // Whose wallets are players' (and the agents above), and each client's report zone.
        let users: std::collections::BTreeSet<&str> = entries
            .iter()
            .filter_map(|e| e.subject_account_id.strip_prefix("w:"))
            .chain(rounds.iter().map(|r| r.user_id.as_str()))
            .collect();
        let users: Vec<&str> = users.into_iter().collect();
        let owners = self.owners_cached(conn, &users).await?;
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
        let mut new_series = Vec::new();
        let next_hour =
            super::report_feed::hour_of(crate::domain::now_ms()) + super::report_feed::HOUR_MS;
        for client in clients {
            let settings: Option<String> =
                sqlx::query_scalar("SELECT settings FROM client_settings WHERE client_id = ?")
                    .bind(client)
                    .fetch_optional(&mut *conn)
                    .await?;
            let zone = super::report_feed::zone_of(settings.as_deref());
            let current: Option<String> =
                sqlx::query_scalar("SELECT zone FROM report_zone_series WHERE client_id = ?")
                    .bind(client)
                    .fetch_optional(&mut *conn)
                    .await?;
            if current.as_deref() != Some(zone.name()) {
                // A client's first series is whole from the start (every entry of it is fed
                // with zone marks; migration 0111 gave older clients a placeholder); a changed
                // zone's starts whole at the next hour (earlier buckets lack entries fed before).
                let since = if current.is_none() { 0 } else { next_hour };
                new_series.push((client.to_owned(), zone.name().to_owned(), since));
            }
            zones.insert(client.to_owned(), zone);
        }
        let plan = {
            let seen = self.touches_seen.lock().unwrap_or_else(|e| e.into_inner());
            plan(&entries, &rounds, &players, &zones, &seen)
        };

        // Marks: the candidates this node has not seen stored, less those stored.
        let candidates: Vec<Mark> = {
            let seen = self.marks_seen.lock().unwrap_or_else(|e| e.into_inner());
            plan.marks
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
            for r in q.fetch_all(&mut *conn).await? {
                stored.insert((
                    r.try_get::<String, _>("client_id")?,
                    r.try_get::<String, _>("series")?,
                    r.try_get::<i64, _>("bucket")?,
                    r.try_get::<String, _>("user_id")?,
                ));
            }
        }
        let new_marks: Vec<Mark> = candidates
            .into_iter()
            .filter(|m| !stored.contains(m))
            .collect();

        // First deposits: a user's earliest deposit hour, moved earlier if an entry fed late
        // was. Users this node knows have one at or before the hour are skipped; the rest are
        // read in one statement per client (held on MySQL: two nodes moving one user's first
        // deposit would count it twice).
        let unknown: Vec<((String, String), i64)> = {
            let known = self
                .first_deposits_seen
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            plan.first_deposits
                .iter()
                .filter(|(key, hour)| known.get(*key).is_none_or(|k| k > *hour))
                .map(|(key, hour)| (key.clone(), *hour))
                .collect()
        };
        let mut stored_first: std::collections::HashMap<(String, String), i64> =
            std::collections::HashMap::new();
        let mut by_client: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for ((client, user), _) in &unknown {
            by_client
                .entry(client.as_str())
                .or_default()
                .push(user.as_str());
        }
        for (client, users) in &by_client {
            for chunk in users.chunks(500) {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT user_id, hour FROM report_first_deposits WHERE client_id = ? \
                     AND user_id IN ({}){}",
                    marks(chunk.len()),
                    if lock.is_empty() { "" } else { " FOR UPDATE" }
                )))
                .bind(*client);
                for u in chunk {
                    q = q.bind(*u);
                }
                for r in q.fetch_all(&mut *conn).await? {
                    stored_first.insert(
                        ((*client).to_owned(), r.try_get("user_id")?),
                        r.try_get("hour")?,
                    );
                }
            }
        }
        let firsts = unknown
            .into_iter()
            .filter_map(|(key, hour)| match stored_first.get(&key).copied() {
                Some(k) if k <= hour => None,
                was => Some((key, hour, was)),
            })
            .collect();
        Ok(Some(FeedWork {
            cursor,
            last,
            entries,
            rounds,
            owners,
            zones,
            new_series,
            plan,
            new_marks,
            firsts,
        }))
    }

    /// Writes what `feed_gather` planned, in the caller's transaction; how many entries and
    /// rounds it fed.
    async fn feed_write(
        &self,
        conn: &mut <Db as sqlx::Database>::Connection,
        work: &FeedWork,
    ) -> StoreResult<usize> {
        use super::report_feed::money_rows;
        let mysql = NAME == "mysql";
        for (client, zone, since) in &work.new_series {
            sqlx::query("DELETE FROM report_zone_series WHERE client_id = ?")
                .bind(client)
                .execute(&mut *conn)
                .await?;
            sqlx::query("INSERT INTO report_zone_series (client_id, zone, since) VALUES (?, ?, ?)")
                .bind(client)
                .bind(zone)
                .bind(*since)
                .execute(&mut *conn)
                .await?;
        }
        for chunk in work.new_marks.chunks(200) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO report_marks (client_id, series, bucket, user_id) VALUES {}",
                vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
            )));
            for (c, series, bucket, u) in chunk {
                q = q.bind(c).bind(series).bind(*bucket).bind(u);
            }
            q.execute(&mut *conn).await?;
        }
        feed_day_spans(conn, &work.new_marks).await?;
        feed_agent_counts(conn, &work.new_marks, &work.firsts, &work.owners).await?;
        let mut counts: BTreeMap<(String, String, i64), i64> = BTreeMap::new();
        for (c, series, bucket, _) in &work.new_marks {
            *counts
                .entry((c.clone(), series.clone(), *bucket))
                .or_default() += 1;
        }
        for ((client, user), hour, was) in &work.firsts {
            match was {
                Some(k) => {
                    sqlx::query(
                        "UPDATE report_first_deposits SET hour = ? WHERE client_id = ? AND user_id = ?",
                    )
                    .bind(*hour)
                    .bind(client)
                    .bind(user)
                    .execute(&mut *conn)
                    .await?;
                    *counts
                        .entry((client.clone(), "first_deposit".into(), *k))
                        .or_default() -= 1;
                }
                None => {
                    sqlx::query(
                        "INSERT INTO report_first_deposits (client_id, user_id, hour) VALUES (?, ?, ?)",
                    )
                    .bind(client)
                    .bind(user)
                    .bind(*hour)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            *counts
                .entry((client.clone(), "first_deposit".into(), *hour))
                .or_default() += 1;
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
            q.execute(&mut *conn).await?;
        }

        let money_client: Vec<_> = work.plan.money_client.iter().collect();
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
            q.execute(&mut *conn).await?;
        }

        let sums: Vec<_> = money_rows(&work.entries).into_iter().collect();
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
            q.execute(&mut *conn).await?;
        }
        feed_agent_money(conn, &work.entries, &work.owners, &work.zones).await?;
        if let (Some(after), Some((seq, id))) = (work.cursor, &work.last) {
            let moved = sqlx::query(
                "UPDATE report_feed_cursor SET journal_rowid = ?, journal_id = ? \
                 WHERE id = 1 AND journal_rowid = ?",
            )
            .bind(*seq)
            .bind(id)
            .bind(after)
            .execute(&mut *conn)
            .await?;
            // Another feed took these entries since they were read.
            if moved.rows_affected() != 1 {
                return Err(StoreError::Conflict);
            }
        } else if work.cursor.is_none() && !work.entries.is_empty() {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE journal SET rolled_up = 1 WHERE rolled_up = 0 AND id IN ({})",
                marks(work.entries.len())
            )));
            for e in &work.entries {
                q = q.bind(&e.id);
            }
            // Every entry read was waiting and is held by this transaction.
            if q.execute(&mut *conn).await?.rows_affected() != work.entries.len() as u64 {
                return Err(StoreError::Conflict);
            }
        }
        for chunk in work.rounds.chunks(200) {
            let cond =
                vec!["(client_id = ? AND provider = ? AND round_id = ?)"; chunk.len()].join(" OR ");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE game_rounds SET fed = 1 WHERE fed = 0 AND ({cond})"
            )));
            for r in chunk {
                q = q.bind(&r.client_id).bind(&r.provider).bind(&r.round_id);
            }
            if q.execute(&mut *conn).await?.rows_affected() != chunk.len() as u64 {
                return Err(StoreError::Conflict);
            }
        }
        Ok(work.entries.len() + work.rounds.len())
    }

    /// After a feed transaction committed: its marks and first deposits are stored.
    fn feed_remember(&self, work: FeedWork) {
        let mut seen = self.marks_seen.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: forgotten marks are only asked again.
        if seen.len() > 1_000_000 {
            seen.clear();
        }
        seen.extend(work.plan.marks);
        drop(seen);
        let mut touched = self.touches_seen.lock().unwrap_or_else(|e| e.into_inner());
        if touched.len() > 1_000_000 {
            touched.clear();
        }
        touched.extend(work.plan.touches);
        drop(touched);
        let mut known = self
            .first_deposits_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if known.len() > 1_000_000 {
            known.clear();
        }
        for (key, hour) in work.plan.first_deposits {
            let k = known.entry(key).or_insert(hour);
            *k = (*k).min(hour);
        }
    }
}
