// Agent-level rollup SQL (issue 17, `report_agents.rs`), included into `sqlite.rs` and
// `mysql.rs` after `sql_reports.rs`.

/// The owners (role, parent) of `users` as the agent rollups key them.
async fn agent_owners(
    conn: &mut <Db as sqlx::Database>::Connection,
    users: &[&str],
) -> StoreResult<std::collections::HashMap<String, super::report_agents::Owner>> {
    let mut out = std::collections::HashMap::new();
    for chunk in users.chunks(500) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, role, parent_id FROM users WHERE id IN ({})",
            marks(chunk.len())
        )));
        for u in chunk {
            q = q.bind(*u);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let role: String = r.try_get("role")?;
            out.insert(
                r.try_get("id")?,
                super::report_agents::Owner {
                    is_player: role == "player",
                    parent_id: r.try_get("parent_id")?,
                },
            );
        }
    }
    Ok(out)
}

impl Backend {
    /// [`agent_owners`] through this node's cache (a user's role and parent never change: no
    /// API moves a user), so the feed asks only about users it has not met.
    async fn owners_cached(
        &self,
        conn: &mut <Db as sqlx::Database>::Connection,
        users: &[&str],
    ) -> StoreResult<std::collections::HashMap<String, super::report_agents::Owner>> {
        let mut out = std::collections::HashMap::new();
        let unknown: Vec<&str> = {
            let seen = self.owners_seen.lock().unwrap_or_else(|e| e.into_inner());
            users
                .iter()
                .filter(|u| match seen.get(**u) {
                    Some(o) => {
                        out.insert((**u).to_owned(), o.clone());
                        false
                    }
                    None => true,
                })
                .copied()
                .collect()
        };
        if !unknown.is_empty() {
            let found = agent_owners(conn, &unknown).await?;
            let mut seen = self.owners_seen.lock().unwrap_or_else(|e| e.into_inner());
            // Bounded: a forgotten owner is only asked again.
            if seen.len() > 1_000_000 {
                seen.clear();
            }
            seen.extend(found.iter().map(|(id, o)| (id.clone(), o.clone())));
            drop(seen);
            out.extend(found);
        }
        Ok(out)
    }
}

/// Adds the fed `entries` to `report_money_agent` (the report feed's transaction), each in
/// its client's day of `zones`; `owners` holds every wallet user of the entries.
async fn feed_agent_money(
    conn: &mut <Db as sqlx::Database>::Connection,
    entries: &[super::report_feed::FedEntry],
    owners: &std::collections::HashMap<String, super::report_agents::Owner>,
    zones: &std::collections::HashMap<String, chrono_tz::Tz>,
) -> StoreResult<()> {
    let rows: Vec<_> = super::report_agents::agent_money_rows(entries, owners, zones)
        .into_iter()
        .collect();
    for chunk in rows.chunks(300) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO report_money_agent (client_id, day, agent_id, player, kind, n, amount) \
             VALUES {}{}",
            vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", "),
            if NAME == "mysql" {
                " ON DUPLICATE KEY UPDATE n = n + VALUES(n), amount = amount + VALUES(amount)"
            } else {
                " ON CONFLICT (client_id, day, agent_id, player, kind) DO UPDATE SET \
                 n = n + excluded.n, amount = amount + excluded.amount"
            }
        )));
        for ((client, day, agent, player, kind), (n, amount)) in chunk {
            q = q
                .bind(client)
                .bind(*day)
                .bind(agent)
                .bind(*player)
                .bind(kind)
                .bind(*n)
                .bind(*amount);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The zone of a client's agent days: its series' zone (the feed keeps it to the settings),
/// else its settings' (the feed starts the series with it).
async fn agent_zone(
    conn: &mut <Db as sqlx::Database>::Connection,
    client_id: &str,
) -> StoreResult<chrono_tz::Tz> {
    let zone: Option<String> =
        sqlx::query_scalar("SELECT zone FROM report_zone_series WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(zone) = zone {
        return Ok(zone.parse().unwrap_or(chrono_tz::Tz::UTC));
    }
    let settings: Option<String> =
        sqlx::query_scalar("SELECT settings FROM client_settings WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(super::report_feed::zone_of(settings.as_deref()))
}

/// Adds a round's change (the one `apply_round` adds to `report_rounds`) to its player's
/// agent's day.
#[allow(clippy::too_many_arguments)]
async fn round_agent_rollup(
    conn: &mut <Db as sqlx::Database>::Connection,
    client_id: &str,
    user_id: &str,
    hour: i64,
    provider: &str,
    rounds: i64,
    stake: i64,
    net: i64,
) -> StoreResult<()> {
    let owners = agent_owners(conn, &[user_id]).await?;
    let Some((agent, _)) = owners.get(user_id).and_then(|o| o.agent_key(user_id)) else {
        return Ok(());
    };
    let zone = agent_zone(conn, client_id).await?;
    let day = super::report_agents::day_of(hour, zone);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO report_rounds_agent (client_id, day, agent_id, provider, rounds, stake, net) \
         VALUES (?, ?, ?, ?, ?, ?, ?){}",
        if NAME == "mysql" {
            " ON DUPLICATE KEY UPDATE rounds = rounds + VALUES(rounds), \
             stake = stake + VALUES(stake), net = net + VALUES(net)"
        } else {
            " ON CONFLICT (client_id, day, agent_id, provider) DO UPDATE SET \
             rounds = rounds + excluded.rounds, stake = stake + excluded.stake, \
             net = net + excluded.net"
        }
    )))
    .bind(client_id)
    .bind(day)
    .bind(agent)
    .bind(provider)
    .bind(rounds)
    .bind(stake)
    .bind(net)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The agent rollups against the per-user rows they summarize (themselves checked against the
/// journal and the rounds), in the caller's snapshot: per client with a series, every day from
/// the first local midnight its rows are whole, by the users' current parents. Earlier days
/// hold entries fed before the series (or a zone change) began: not comparable, never read.
async fn agent_rollup_violation(tx: &mut sqlx::Transaction<'_, Db>) -> StoreResult<Option<String>> {
    use super::report_agents::{AgentSeries, Owner, day_of};
    let series = sqlx::query("SELECT client_id, zone, since, agents_since FROM report_zone_series")
        .fetch_all(&mut **tx)
        .await?;
    for s in series {
        let client: String = s.try_get("client_id")?;
        let zone: String = s.try_get("zone")?;
        let since: i64 = s.try_get("since")?;
        let agents_since: i64 = s.try_get("agents_since")?;
        let series = AgentSeries {
            zone: zone.parse().unwrap_or(chrono_tz::Tz::UTC),
            whole_from: since.max(agents_since),
        };
        let a = series.first_whole_day(series.whole_from);
        let owner = |r: &DbRow| -> Result<(String, Owner), sqlx::Error> {
            let role: String = r.try_get("role")?;
            Ok((
                r.try_get("id")?,
                Owner {
                    is_player: role == "player",
                    parent_id: r.try_get("parent_id")?,
                },
            ))
        };
        // Money.
        let mut stored: BTreeMap<RollupKey, Vec<i64>> = BTreeMap::new();
        for r in sqlx::query(
            "SELECT day, agent_id, player, kind, n, amount FROM report_money_agent \
             WHERE client_id = ? AND day >= ?",
        )
        .bind(&client)
        .bind(a)
        .fetch_all(&mut **tx)
        .await?
        {
            let agent: String = r.try_get("agent_id")?;
            let player: i64 = r.try_get("player")?;
            stored.insert(
                (
                    client.clone(),
                    r.try_get("day")?,
                    r.try_get("kind")?,
                    format!("{agent}/{player}"),
                ),
                vec![r.try_get::<i64, _>("n")?, r.try_get("amount")?],
            );
        }
        let mut recomputed: BTreeMap<RollupKey, Vec<i64>> = BTreeMap::new();
        for r in sqlx::query(
            "SELECT m.hour, m.kind, m.n, m.amount, u.id, u.role, u.parent_id FROM report_money m \
             JOIN users u ON u.id = m.user_id WHERE m.client_id = ? AND m.hour >= ?",
        )
        .bind(&client)
        .bind(a)
        .fetch_all(&mut **tx)
        .await?
        {
            let (id, o) = owner(&r)?;
            let Some((agent, player)) = o.agent_key(&id) else {
                continue;
            };
            let hour: i64 = r.try_get("hour")?;
            let v = recomputed
                .entry((
                    client.clone(),
                    day_of(hour, series.zone),
                    r.try_get("kind")?,
                    format!("{agent}/{player}"),
                ))
                .or_insert_with(|| vec![0, 0]);
            v[0] += r.try_get::<i64, _>("n")?;
            v[1] += r.try_get::<i64, _>("amount")?;
        }
        if let Some(d) = first_difference("report_money_agent", "kind", &stored, &recomputed) {
            return Ok(Some(d));
        }
        // Rounds.
        let mut stored: BTreeMap<RollupKey, Vec<i64>> = BTreeMap::new();
        for r in sqlx::query(
            "SELECT day, agent_id, provider, rounds, stake, net FROM report_rounds_agent \
             WHERE client_id = ? AND day >= ?",
        )
        .bind(&client)
        .bind(a)
        .fetch_all(&mut **tx)
        .await?
        {
            stored.insert(
                (
                    client.clone(),
                    r.try_get("day")?,
                    r.try_get("provider")?,
                    r.try_get("agent_id")?,
                ),
                vec![
                    r.try_get::<i64, _>("rounds")?,
                    r.try_get("stake")?,
                    r.try_get("net")?,
                ],
            );
        }
        let mut recomputed: BTreeMap<RollupKey, Vec<i64>> = BTreeMap::new();
        for r in sqlx::query(
            "SELECT m.hour, m.provider, m.rounds, m.stake, m.net, u.id, u.role, u.parent_id \
             FROM report_rounds m JOIN users u ON u.id = m.user_id \
             WHERE m.client_id = ? AND m.hour >= ?",
        )
        .bind(&client)
        .bind(a)
        .fetch_all(&mut **tx)
        .await?
        {
            let (id, o) = owner(&r)?;
            let Some((agent, _)) = o.agent_key(&id) else {
                continue;
            };
            let hour: i64 = r.try_get("hour")?;
            let v = recomputed
                .entry((
                    client.clone(),
                    day_of(hour, series.zone),
                    r.try_get("provider")?,
                    agent,
                ))
                .or_insert_with(|| vec![0, 0, 0]);
            v[0] += r.try_get::<i64, _>("rounds")?;
            v[1] += r.try_get::<i64, _>("stake")?;
            v[2] += r.try_get::<i64, _>("net")?;
        }
        if let Some(d) = first_difference("report_rounds_agent", "provider", &stored, &recomputed) {
            return Ok(Some(d));
        }
    }
    if let Some(d) = agent_counts_violation(tx).await? {
        return Ok(Some(d));
    }
    agent_players_violation(tx).await
}

impl Backend {
    pub async fn agent_money(
        &self,
        client_id: &str,
        from_day: i64,
        to_day: i64,
        read: &super::report_agents::AgentRead,
    ) -> StoreResult<Vec<super::report_agents::AgentMoney>> {
        use super::report_agents::{AgentMoney, AgentRead};
        // The rows themselves, summed here: MariaDB grouped them in a temporary table, several
        // times slower than reading them (issue 17: most of the agents report's time).
        let mut sums: std::collections::HashMap<(i64, String, i64, String), (i64, i64)> =
            std::collections::HashMap::new();
        let mut add = |rows: Vec<DbRow>, per_agent: bool| -> Result<(), sqlx::Error> {
            for r in &rows {
                let day: i64 = r.try_get(0)?;
                let agent: String = r.try_get(1)?;
                let key = if per_agent {
                    (0, agent, r.try_get(2)?, r.try_get(3)?)
                } else {
                    (day, String::new(), r.try_get(2)?, r.try_get(3)?)
                };
                let sum = sums.entry(key).or_default();
                sum.0 += r.try_get::<i64, _>(4)?;
                sum.1 += r.try_get::<i64, _>(5)?;
            }
            Ok(())
        };
        const COLUMNS: &str =
            "SELECT day, agent_id, player, kind, n, amount FROM report_money_agent";
        match read {
            AgentRead::PerAgent { kinds } => {
                if kinds.is_empty() {
                    return Ok(Vec::new());
                }
                // Grouped by SQLite: decoding each day's row through sqlx was most of the
                // agents report's time (9k rows over 30 days, ~50 ms; SQLite sums them in ~8).
                let select = if NAME == "mysql" {
                    format!("{COLUMNS} WHERE")
                } else {
                    "SELECT 0, agent_id, player, kind, SUM(n), SUM(amount) \
                     FROM report_money_agent WHERE"
                        .to_owned()
                };
                let group = if NAME == "mysql" {
                    ""
                } else {
                    " GROUP BY agent_id, player, kind"
                };
                let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{select} client_id = ? AND day >= ? AND day < ? AND kind IN ({}){group}",
                    marks(kinds.len())
                )))
                .bind(client_id)
                .bind(from_day)
                .bind(to_day);
                for k in *kinds {
                    q = q.bind(*k);
                }
                add(q.fetch_all(&self.read).await?, true)?;
            }
            // Each agent's days through the (client, agent, day) index (migration 0140): a
            // subtree reads its agents' rows only.
            AgentRead::SubtreePerDay { agents } => {
                let rows =
                    agents_day_rows(&self.read, COLUMNS, client_id, agents, from_day, to_day)
                        .await?;
                add(rows, false)?;
            }
        }
        Ok(sums
            .into_iter()
            .map(|((day, agent_id, player, kind), (n, amount))| AgentMoney {
                day,
                agent_id,
                player,
                kind,
                n,
                amount,
            })
            .collect())
    }

    pub async fn agent_rounds(
        &self,
        client_id: &str,
        from_day: i64,
        to_day: i64,
        read: &super::report_agents::AgentRead,
    ) -> StoreResult<Vec<super::report_agents::AgentRounds>> {
        use super::report_agents::{AgentRead, AgentRounds};
        // Summed here, as in `agent_money`.
        let mut sums: std::collections::HashMap<(i64, String), (i64, i64, i64)> =
            std::collections::HashMap::new();
        let mut add = |rows: Vec<DbRow>, per_agent: bool| -> Result<(), sqlx::Error> {
            for r in &rows {
                let day: i64 = r.try_get(0)?;
                let agent: String = r.try_get(1)?;
                let key = if per_agent {
                    (0, agent)
                } else {
                    (day, String::new())
                };
                let sum = sums.entry(key).or_default();
                sum.0 += r.try_get::<i64, _>(2)?;
                sum.1 += r.try_get::<i64, _>(3)?;
                sum.2 += r.try_get::<i64, _>(4)?;
            }
            Ok(())
        };
        const COLUMNS: &str = "SELECT day, agent_id, rounds, stake, net FROM report_rounds_agent";
        match read {
            AgentRead::PerAgent { .. } => {
                // Grouped by SQLite, as in `agent_money`.
                let sql = if NAME == "mysql" {
                    format!("{COLUMNS} WHERE client_id = ? AND day >= ? AND day < ?")
                } else {
                    "SELECT 0, agent_id, SUM(rounds), SUM(stake), SUM(net) \
                     FROM report_rounds_agent WHERE client_id = ? AND day >= ? AND day < ? \
                     GROUP BY agent_id"
                        .to_owned()
                };
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(client_id)
                    .bind(from_day)
                    .bind(to_day)
                    .fetch_all(&self.read)
                    .await?;
                add(rows, true)?;
            }
            AgentRead::SubtreePerDay { agents } => {
                let rows =
                    agents_day_rows(&self.read, COLUMNS, client_id, agents, from_day, to_day)
                        .await?;
                add(rows, false)?;
            }
        }
        Ok(sums
            .into_iter()
            .map(|((day, agent_id), (rounds, stake, net))| AgentRounds {
                day,
                agent_id,
                rounds,
                stake,
                net,
            })
            .collect())
    }

    /// The agents (any user but a player) of `client_id` whose path is in `[lo, hi)`, through
    /// the role index (a path range would visit every player of the subtree too).
    pub async fn subtree_agents(
        &self,
        client_id: &str,
        lo: &str,
        hi: &str,
    ) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM users WHERE client_id = ? \
             AND role IN ('super_admin', 'client_admin', 'agent') AND path >= ? AND path < ?",
        )
        .bind(client_id)
        .bind(lo)
        .bind(hi)
        .fetch_all(&self.read)
        .await?)
    }

    pub async fn report_agents(
        &self,
        client_id: &str,
        lo: &str,
        hi: &str,
    ) -> StoreResult<(Vec<ReportUser>, std::collections::HashMap<String, i64>)> {
        let rows = sqlx::query(
            "SELECT id, parent_id, path, role, username, created_at FROM users \
             WHERE client_id = ? AND role = 'agent' AND path >= ? AND path < ?",
        )
        .bind(client_id)
        .bind(lo)
        .bind(hi)
        .fetch_all(&self.read)
        .await?;
        let agents: Vec<ReportUser> = rows
            .iter()
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
            .collect::<Result<_, sqlx::Error>>()?;
        // Players per agent: the kept counts (migration 0145), one row per agent.
        let mut players = std::collections::HashMap::new();
        for r in sqlx::query("SELECT agent_id, n FROM report_players_agent WHERE client_id = ?")
            .bind(client_id)
            .fetch_all(&self.read)
            .await?
        {
            players.insert(
                r.try_get::<String, _>("agent_id")?,
                r.try_get::<i64, _>("n")?,
            );
        }
        Ok((agents, players))
    }
}

/// Adds the players among `users` (inserted in `tx`) to their parents' `report_players_agent`
/// counts (migration 0145), in key order (concurrent registrations lock rows in one order).
async fn add_agent_players(
    tx: &mut sqlx::Transaction<'_, Db>,
    users: &[UserRow],
) -> StoreResult<()> {
    let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for u in users.iter().filter(|u| u.role.as_str() == "player") {
        if let (Some(client), Some(parent)) = (&u.client_id, &u.parent_id) {
            *counts.entry((client, parent)).or_default() += 1;
        }
    }
    let counts: Vec<_> = counts.into_iter().collect();
    for chunk in counts.chunks(300) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO report_players_agent (client_id, agent_id, n) VALUES {}{}",
            vec!["(?, ?, ?)"; chunk.len()].join(", "),
            if NAME == "mysql" {
                " ON DUPLICATE KEY UPDATE n = n + VALUES(n)"
            } else {
                " ON CONFLICT (client_id, agent_id) DO UPDATE SET n = n + excluded.n"
            }
        )));
        for ((client, agent), n) in chunk {
            q = q.bind(*client).bind(*agent).bind(*n);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// `report_players_agent` against a count of the players under each parent, in the caller's
/// snapshot: the first (client, agent) that differs.
async fn agent_players_violation(
    tx: &mut sqlx::Transaction<'_, Db>,
) -> StoreResult<Option<String>> {
    let mut stored: BTreeMap<(String, String), i64> = BTreeMap::new();
    for r in sqlx::query("SELECT client_id, agent_id, n FROM report_players_agent WHERE n <> 0")
        .fetch_all(&mut **tx)
        .await?
    {
        stored.insert((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?);
    }
    let mut counted: BTreeMap<(String, String), i64> = BTreeMap::new();
    for r in sqlx::query(
        "SELECT client_id, parent_id, COUNT(*) FROM users WHERE role = 'player' \
         AND client_id IS NOT NULL AND parent_id IS NOT NULL GROUP BY client_id, parent_id",
    )
    .fetch_all(&mut **tx)
    .await?
    {
        counted.insert((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?);
    }
    let keys: std::collections::BTreeSet<&(String, String)> =
        stored.keys().chain(counted.keys()).collect();
    Ok(keys.into_iter().find_map(|key| {
        let (a, b) = (stored.get(key), counted.get(key));
        (a != b).then(|| {
            format!(
                "report_players_agent client={} agent={}: kept {a:?}, counted {b:?}",
                key.0, key.1
            )
        })
    }))
}

/// `columns` (a `SELECT ... FROM <agent table>`) of `agents`' rows with `from_day <= day <
/// to_day`, through the (client, agent, day) index (migration 0140), in chunks.
async fn agents_day_rows(
    pool: &sqlx::Pool<Db>,
    columns: &str,
    client_id: &str,
    agents: &[String],
    from_day: i64,
    to_day: i64,
) -> StoreResult<Vec<DbRow>> {
    let mut out = Vec::new();
    for chunk in agents.chunks(300) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{columns} WHERE client_id = ? AND agent_id IN ({}) AND day >= ? AND day < ?",
            marks(chunk.len())
        )))
        .bind(client_id);
        for a in chunk {
            q = q.bind(a);
        }
        out.extend(q.bind(from_day).bind(to_day).fetch_all(pool).await?);
    }
    Ok(out)
}

/// Adds to `report_counts_agent` (migration 0131) in the report feed's transaction: each of
/// the feed's `new_marks` of an `active` or `depositing` series to its user's agent, and each
/// first deposit the feed stores or moves earlier (`firsts`: (client, user), the hour, the
/// hour stored before if any) from the old hour to the new. `owners` holds every user of them.
async fn feed_agent_counts(
    conn: &mut <Db as sqlx::Database>::Connection,
    new_marks: &[super::report_feed::Mark],
    firsts: &[((String, String), i64, Option<i64>)],
    owners: &std::collections::HashMap<String, super::report_agents::Owner>,
) -> StoreResult<()> {
    let agent = |user: &str| {
        owners
            .get(user)
            .and_then(|o| o.agent_key(user))
            .map(|a| a.0)
    };
    // (client, series, agent, bucket) -> change of n.
    let mut deltas: BTreeMap<(String, String, String, i64), i64> = BTreeMap::new();
    for (client, series, bucket, user) in new_marks
        .iter()
        .filter(|(_, s, _, _)| s.starts_with("active:") || s.starts_with("depositing:"))
    {
        if let Some(a) = agent(user) {
            *deltas
                .entry((client.clone(), series.clone(), a, *bucket))
                .or_default() += 1;
        }
    }
    for ((client, user), hour, was) in firsts {
        let Some(a) = agent(user) else { continue };
        if let Some(k) = was {
            *deltas
                .entry((client.clone(), "first_deposit".into(), a.clone(), *k))
                .or_default() -= 1;
        }
        *deltas
            .entry((client.clone(), "first_deposit".into(), a, *hour))
            .or_default() += 1;
    }
    let deltas: Vec<_> = deltas.into_iter().filter(|(_, n)| *n != 0).collect();
    for chunk in deltas.chunks(300) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO report_counts_agent (client_id, series, agent_id, bucket, n) \
             VALUES {}{}",
            vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", "),
            if NAME == "mysql" {
                " ON DUPLICATE KEY UPDATE n = n + VALUES(n)"
            } else {
                " ON CONFLICT (client_id, series, agent_id, bucket) DO UPDATE SET \
                 n = n + excluded.n"
            }
        )));
        for ((client, series, agent, bucket), n) in chunk {
            q = q
                .bind(client)
                .bind(series)
                .bind(agent)
                .bind(*bucket)
                .bind(*n);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

impl Backend {
    /// `report_counts_agent` of `series` with `from <= bucket < to`, summed over the agents
    /// (any user but a player) whose path is in `[lo, hi)`: (series, bucket, n).
    pub async fn agent_counts(
        &self,
        client_id: &str,
        series: &[String],
        from: i64,
        to: i64,
        lo: &str,
        hi: &str,
    ) -> StoreResult<Vec<(String, i64, i64)>> {
        if series.is_empty() {
            return Ok(Vec::new());
        }
        // The client's agents through the role index (a path range would visit every player
        // of the subtree too).
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT series, bucket, CAST(SUM(n) AS CHAR) AS n FROM report_counts_agent \
             WHERE client_id = ? AND series IN ({}) AND agent_id IN (SELECT id FROM users \
               WHERE client_id = ? AND role IN ('super_admin', 'client_admin', 'agent') \
               AND path >= ? AND path < ?) \
             AND bucket >= ? AND bucket < ? GROUP BY series, bucket",
            marks(series.len())
        )))
        .bind(client_id);
        for s in series {
            q = q.bind(s);
        }
        let rows = q
            .bind(client_id)
            .bind(lo)
            .bind(hi)
            .bind(from)
            .bind(to)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("series")?,
                    r.try_get("bucket")?,
                    text_i64(r, "n")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Distinct users of the hourly `series` marked in `[from, to)` whose path is in `[lo, hi)`.
    pub async fn subtree_distinct(
        &self,
        client_id: &str,
        series: &str,
        from: i64,
        to: i64,
        lo: &str,
        hi: &str,
    ) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(DISTINCT m.user_id) FROM report_marks m \
             JOIN users u ON u.id = m.user_id AND u.path >= ? AND u.path < ? \
             WHERE m.client_id = ? AND m.series = ? AND m.bucket >= ? AND m.bucket < ?",
        )
        .bind(lo)
        .bind(hi)
        .bind(client_id)
        .bind(series)
        .bind(from)
        .bind(to)
        .fetch_one(&self.read)
        .await?)
    }

    /// Players whose path is in `[lo, hi)`: how many registered before `from`, and per UTC
    /// hour how many in `[from, to)`.
    pub async fn subtree_registrations(
        &self,
        client_id: &str,
        lo: &str,
        hi: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<(i64, Vec<(i64, i64)>)> {
        let before: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE client_id = ? AND role = 'player' \
             AND path >= ? AND path < ? AND created_at < ?",
        )
        .bind(client_id)
        .bind(lo)
        .bind(hi)
        .bind(from)
        .fetch_one(&self.read)
        .await?;
        let rows = sqlx::query(
            "SELECT created_at - created_at % 3600000 AS hour, COUNT(*) AS n FROM users \
             WHERE client_id = ? AND role = 'player' AND path >= ? AND path < ? \
             AND created_at >= ? AND created_at < ? \
             GROUP BY created_at - created_at % 3600000",
        )
        .bind(client_id)
        .bind(lo)
        .bind(hi)
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
}

/// `report_counts_agent` against the marks and first deposits it summarizes, by the users'
/// current parents, in the caller's snapshot.
async fn agent_counts_violation(tx: &mut sqlx::Transaction<'_, Db>) -> StoreResult<Option<String>> {
    const AGENT: &str = "CASE WHEN u.role = 'player' THEN u.parent_id ELSE u.id END";
    let stored = keyed(
        tx,
        "SELECT client_id, bucket, series, agent_id, CAST(n AS CHAR) AS n \
         FROM report_counts_agent WHERE n <> 0",
        &["n"],
    )
    .await?;
    let mut recomputed = keyed(
        tx,
        &format!(
            "SELECT client_id, bucket, series, agent_id, CAST(COUNT(*) AS CHAR) AS n FROM ( \
               SELECT m.client_id AS client_id, m.bucket AS bucket, m.series AS series, \
                 {AGENT} AS agent_id FROM report_marks m JOIN users u ON u.id = m.user_id \
               WHERE m.series LIKE 'active:%' OR m.series LIKE 'depositing:%' \
             ) x WHERE agent_id IS NOT NULL GROUP BY client_id, bucket, series, agent_id"
        ),
        &["n"],
    )
    .await?;
    recomputed.extend(
        keyed(
            tx,
            &format!(
                "SELECT client_id, hour, 'first_deposit' AS series, agent_id, \
                 CAST(COUNT(*) AS CHAR) AS n FROM ( \
                   SELECT f.client_id AS client_id, f.hour AS hour, {AGENT} AS agent_id \
                   FROM report_first_deposits f JOIN users u ON u.id = f.user_id \
                 ) x WHERE agent_id IS NOT NULL GROUP BY client_id, hour, agent_id"
            ),
            &["n"],
        )
        .await?,
    );
    Ok(first_difference(
        "report_counts_agent",
        "series",
        &stored,
        &recomputed,
    ))
}
