// Day-span SQL (issue 17, `report_spans.rs`), included into `sqlite.rs` and `mysql.rs` after
// `sql_reports.rs`.

/// The spans of the tracked day marks, recomputed (the definition `check-reports` holds the
/// table to, and migration 0135's backfill).
const SPANS_FROM_MARKS: &str = "SELECT client_id, series, day, prev_day, COUNT(*) AS n FROM ( \
       SELECT client_id, series, bucket AS day, COALESCE(LAG(bucket) OVER \
         (PARTITION BY client_id, series, user_id ORDER BY bucket), -1) AS prev_day \
       FROM report_marks WHERE series LIKE 'active:d:%' OR series LIKE 'depositing:d:%' \
     ) s GROUP BY client_id, series, day, prev_day";

/// `[from, to)`'s bucket starts of granularity `g` (`from` is one).
fn edges_within(
    from: i64,
    to: i64,
    zone: chrono_tz::Tz,
    g: crate::domain::calendar::Granularity,
) -> Vec<i64> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        out.push(at);
        at = crate::domain::calendar::next_edge(at, zone, g);
    }
    out
}

/// Which of `buckets` of `series` hold a mark of `user` (primary-key lookups), ascending.
async fn marked_among(
    tx: &mut <Db as sqlx::Database>::Connection,
    client: &str,
    series: &str,
    user: &str,
    buckets: &[i64],
) -> StoreResult<Vec<i64>> {
    let mut out = Vec::new();
    for chunk in buckets.chunks(400) {
        let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT bucket FROM report_marks WHERE client_id = ? AND series = ? \
             AND bucket IN ({}) AND user_id = ?",
            marks(chunk.len())
        )))
        .bind(client)
        .bind(series);
        for b in chunk {
            q = q.bind(*b);
        }
        out.extend(q.bind(user).fetch_all(&mut *tx).await?);
    }
    out.sort_unstable();
    Ok(out)
}

/// The stored day of `user` in day series `series` nearest before `d`, or (`up_to`: the user's
/// last day, after `d`) after it; days in `new` (this transaction's) are not stored yet.
/// `report_marks` is keyed by day before user, so days are looked up one by one: those of
/// `d`'s month, then the months the user has marks in (the month series), nearest first.
async fn stored_neighbour(
    tx: &mut <Db as sqlx::Database>::Connection,
    (client, series, user): (&str, &str, &str),
    d: i64,
    new: &[i64],
    up_to: Option<i64>,
) -> StoreResult<Option<i64>> {
    use crate::domain::calendar::{Granularity, bucket_start, next_edge};
    let Some((zone, months)) = super::report_spans::zone_and_months(series) else {
        return Err(StoreError::Config(format!(
            "report series {series:?} names no time zone"
        )));
    };
    let old =
        |found: Vec<i64>| -> Vec<i64> { found.into_iter().filter(|b| !new.contains(b)).collect() };
    let month = bucket_start(d, zone, Granularity::Month);
    let next_month = next_edge(month, zone, Granularity::Month);
    let (days, month_range) = match up_to {
        None => {
            let first: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(bucket) FROM report_marks WHERE client_id = ? AND series = ?",
            )
            .bind(client)
            .bind(&months)
            .fetch_one(&mut *tx)
            .await?;
            (
                edges_within(month, d, zone, Granularity::Day),
                first.map(|f| edges_within(f, month, zone, Granularity::Month)),
            )
        }
        Some(last) => (
            edges_within(
                next_edge(d, zone, Granularity::Day),
                next_month,
                zone,
                Granularity::Day,
            ),
            Some(edges_within(next_month, last + 1, zone, Granularity::Month)),
        ),
    };
    let nearest = |found: Vec<i64>| -> Option<i64> {
        let found = old(found);
        if up_to.is_none() {
            found.last().copied()
        } else {
            found.first().copied()
        }
    };
    if let Some(day) = nearest(marked_among(tx, client, series, user, &days).await?) {
        return Ok(Some(day));
    }
    let mut marked =
        marked_among(tx, client, &months, user, &month_range.unwrap_or_default()).await?;
    if up_to.is_none() {
        marked.reverse();
    }
    for m in marked {
        let days = edges_within(
            m,
            next_edge(m, zone, Granularity::Month),
            zone,
            Granularity::Day,
        );
        if let Some(day) = nearest(marked_among(tx, client, series, user, &days).await?) {
            return Ok(Some(day));
        }
    }
    Ok(None)
}

/// Keeps `report_day_spans` and `report_user_last_day` with the day marks a feed transaction
/// has just stored (`new`: none was stored before it).
async fn feed_day_spans(
    tx: &mut <Db as sqlx::Database>::Connection,
    new: &[super::report_feed::Mark],
) -> StoreResult<()> {
    use super::report_spans::span_deltas;
    let mysql = NAME == "mysql";
    let mut groups: BTreeMap<(&str, &str), BTreeMap<&str, Vec<i64>>> = BTreeMap::new();
    for (client, series, day, user) in new {
        if super::report_spans::tracked(series) {
            groups
                .entry((client, series))
                .or_default()
                .entry(user)
                .or_default()
                .push(*day);
        }
    }
    let mut spans: BTreeMap<(&str, &str, i64, i64), i64> = BTreeMap::new();
    for ((client, series), users) in &mut groups {
        // Locked (MySQL): another node's feed adding a day of one of these users waits for
        // this one; two adding a user's first days both insert its row, one fails on the key
        // and is retried.
        let ids: Vec<&str> = users.keys().copied().collect();
        let mut last: std::collections::HashMap<String, i64> = Default::default();
        for chunk in ids.chunks(500) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT user_id, day FROM report_user_last_day WHERE client_id = ? AND series = ? \
                 AND user_id IN ({}){}",
                marks(chunk.len()),
                if mysql { " FOR UPDATE" } else { "" }
            )))
            .bind(*client)
            .bind(*series);
            for u in chunk {
                q = q.bind(*u);
            }
            for r in q.fetch_all(&mut *tx).await? {
                last.insert(r.try_get("user_id")?, r.try_get("day")?);
            }
        }
        let (mut firsts, mut moved) = (Vec::new(), Vec::new());
        for (user, days) in users.iter_mut() {
            days.sort_unstable();
            days.dedup();
            let stored_last = last.get(*user).copied();
            let mut known = std::collections::BTreeSet::new();
            if let Some(l) = stored_last {
                known.insert(l);
                // Fed late: the stored neighbours, from the marks.
                for &d in days.iter().filter(|d| **d < l) {
                    let key = (*client, *series, *user);
                    known.extend(stored_neighbour(tx, key, d, days, None).await?);
                    known.extend(stored_neighbour(tx, key, d, days, Some(l)).await?);
                }
            }
            for ((day, prev), n) in span_deltas(&known, days) {
                *spans.entry((client, series, day, prev)).or_default() += n;
            }
            let top = days.last().copied().unwrap_or(i64::MIN);
            match stored_last {
                None => firsts.push((*user, top)),
                Some(l) if top > l => moved.push((*user, top)),
                Some(_) => {}
            }
        }
        for (rows, upsert) in [(firsts, false), (moved, true)] {
            for chunk in rows.chunks(300) {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO report_user_last_day (client_id, series, user_id, day) VALUES {}{}",
                    vec!["(?, ?, ?, ?)"; chunk.len()].join(", "),
                    match (upsert, mysql) {
                        (false, _) => "",
                        (true, true) => " ON DUPLICATE KEY UPDATE day = VALUES(day)",
                        (true, false) => {
                            " ON CONFLICT (client_id, series, user_id) DO UPDATE SET day = excluded.day"
                        }
                    }
                )));
                for (user, day) in chunk {
                    q = q.bind(*client).bind(*series).bind(*user).bind(*day);
                }
                q.execute(&mut *tx).await?;
            }
        }
    }
    spans.retain(|_, n| *n != 0);
    let rows: Vec<_> = spans.iter().collect();
    for chunk in rows.chunks(300) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO report_day_spans (client_id, series, day, prev_day, n) VALUES {}{}",
            vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", "),
            if mysql {
                " ON DUPLICATE KEY UPDATE n = n + VALUES(n)"
            } else {
                " ON CONFLICT (client_id, series, day, prev_day) DO UPDATE SET n = n + excluded.n"
            }
        )));
        for ((client, series, day, prev), n) in chunk {
            q = q
                .bind(*client)
                .bind(*series)
                .bind(*day)
                .bind(*prev)
                .bind(**n);
        }
        q.execute(&mut *tx).await?;
    }
    // A span a late day moved away from may be left at 0.
    for ((client, series, day, prev), _) in spans.iter().filter(|(_, n)| **n < 0) {
        sqlx::query(
            "DELETE FROM report_day_spans WHERE client_id = ? AND series = ? AND day = ? \
             AND prev_day = ? AND n = 0",
        )
        .bind(*client)
        .bind(*series)
        .bind(*day)
        .bind(*prev)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// `report_day_spans` and `report_user_last_day` against the day marks, in the caller's
/// snapshot: the first row that differs.
async fn day_span_violation(tx: &mut sqlx::Transaction<'_, Db>) -> StoreResult<Option<String>> {
    type SpanKey = (String, String, i64, i64);
    let mut stored: BTreeMap<SpanKey, i64> = BTreeMap::new();
    for r in
        sqlx::query("SELECT client_id, series, day, prev_day, n FROM report_day_spans WHERE n <> 0")
            .fetch_all(&mut **tx)
            .await?
    {
        stored.insert(
            (
                r.try_get("client_id")?,
                r.try_get("series")?,
                r.try_get("day")?,
                r.try_get("prev_day")?,
            ),
            r.try_get("n")?,
        );
    }
    let mut recomputed: BTreeMap<SpanKey, i64> = BTreeMap::new();
    for r in sqlx::query(SPANS_FROM_MARKS).fetch_all(&mut **tx).await? {
        recomputed.insert(
            (
                r.try_get("client_id")?,
                r.try_get("series")?,
                r.try_get("day")?,
                r.try_get("prev_day")?,
            ),
            r.try_get("n")?,
        );
    }
    let keys: std::collections::BTreeSet<&SpanKey> =
        stored.keys().chain(recomputed.keys()).collect();
    for key in keys {
        let (a, b) = (stored.get(key), recomputed.get(key));
        if a != b {
            let (client, series, day, prev) = key;
            let prev = if *prev == super::report_spans::NO_DAY {
                "none".to_owned()
            } else {
                crate::domain::rfc3339_ms(*prev)
            };
            return Ok(Some(format!(
                "report_day_spans client={client} series={series} day={} prev_day={prev}: \
                 stored {a:?}, recomputed from report_marks {b:?}",
                crate::domain::rfc3339_ms(*day)
            )));
        }
    }
    let stored = user_last_days(
        tx,
        "SELECT client_id, series, user_id, day FROM report_user_last_day",
    )
    .await?;
    let recomputed = user_last_days(
        tx,
        "SELECT client_id, series, user_id, MAX(bucket) AS day FROM report_marks \
         WHERE series LIKE 'active:d:%' OR series LIKE 'depositing:d:%' \
         GROUP BY client_id, series, user_id",
    )
    .await?;
    let keys: std::collections::BTreeSet<_> = stored.keys().chain(recomputed.keys()).collect();
    for key in keys {
        let (a, b) = (stored.get(key), recomputed.get(key));
        if a != b {
            let (client, series, user) = key;
            let day = |d: Option<&i64>| d.map(|d| crate::domain::rfc3339_ms(*d));
            return Ok(Some(format!(
                "report_user_last_day client={client} series={series} user={user}: \
                 stored {:?}, recomputed from report_marks {:?}",
                day(a),
                day(b)
            )));
        }
    }
    Ok(None)
}

/// (client, series, user) -> day of `sql`'s rows.
async fn user_last_days(
    tx: &mut sqlx::Transaction<'_, Db>,
    sql: &'static str,
) -> StoreResult<BTreeMap<(String, String, String), i64>> {
    let mut out = BTreeMap::new();
    for r in sqlx::query(sql).fetch_all(&mut **tx).await? {
        out.insert(
            (
                r.try_get("client_id")?,
                r.try_get("series")?,
                r.try_get("user_id")?,
            ),
            r.try_get("day")?,
        );
    }
    Ok(out)
}

impl Backend {
    /// Distinct users of day series `series` in the whole days `[from_day, to_day)`.
    pub async fn report_span_distinct(
        &self,
        client_id: &str,
        series: &str,
        from_day: i64,
        to_day: i64,
    ) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(n), 0) AS CHAR) AS n FROM report_day_spans \
             WHERE client_id = ? AND series = ? AND day >= ? AND day < ? AND prev_day < ?",
        )
        .bind(client_id)
        .bind(series)
        .bind(from_day)
        .bind(to_day)
        .bind(from_day)
        .fetch_one(&self.read)
        .await?;
        Ok(text_i64(&row, "n")?)
    }
}
