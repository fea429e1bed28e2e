//! Reports (issue 17): typed query functions over the hourly rollups (`store::reports`), each
//! for a [`Period`] and a [`Scope`] resolved from the caller's reach. REST (`http/reports.rs`)
//! renders them as JSON or CSV; the GraphQL API can call the same functions.
//!
//! Money is i64 minor units here; rendering formats it in the client's currency.

pub mod feed;
pub mod period;
pub mod presence;

use std::collections::{BTreeMap, HashMap, HashSet};

pub use period::{Granularity, Period};

use crate::access::{self, Denied, Reach};
use crate::auth::Caller;
use crate::domain::Role;
use crate::store::reports::{HOUR_MS, MoneyRollup, ReportUser, ReportUsers, RoundRollup};
use crate::store::{ClientRow, Store, StoreError};

/// Whose figures a report shows: a client, narrowed to a subtree or one player.
#[derive(Debug, Clone)]
pub struct Scope {
    pub client: ClientRow,
    pub users: ReportUsers,
}

/// The scope of a report for `caller`: `client_id` (the platform must name one; others may
/// name only their own: another is 404) and optionally `user_id` (an agent's subtree or a
/// player; outside the caller's reach 403, in another client 404). Without `user_id`: the
/// whole client for admins, an agent's own subtree, a player's own play.
pub async fn scope(
    store: &Store,
    caller: &Caller,
    client_id: Option<&str>,
    user_id: Option<&str>,
) -> Result<Scope, Denied> {
    let client_id = match access::listed_client(caller, client_id)? {
        Some(id) => id,
        None => {
            // The platform without a client: the named user's client, else nothing to show.
            let user = match user_id {
                Some(id) => store.user(id).await?.ok_or(Denied::NotFound("user"))?,
                None => return Err(Denied::NotFound("client")),
            };
            user.client_id.ok_or(Denied::NotFound("user"))?
        }
    };
    let client = access::client(store, &client_id).await?;
    let users = match user_id {
        Some(id) => {
            let target = store.user(id).await?.ok_or(Denied::NotFound("user"))?;
            if target.client_id.as_deref() != Some(client.id.as_str()) {
                return Err(Denied::NotFound("user"));
            }
            access::reach(store, caller, &target)
                .await?
                .require("user")?;
            match target.role {
                Role::Player => ReportUsers::User(target.id),
                Role::ClientAdmin => ReportUsers::Client,
                _ => ReportUsers::Subtree(target.path),
            }
        }
        None => match caller.role {
            Role::SuperAdmin | Role::ClientAdmin => ReportUsers::Client,
            Role::Agent => {
                let me = store
                    .user(&caller.user_id)
                    .await?
                    .ok_or(Denied::Forbidden)?;
                ReportUsers::Subtree(me.path)
            }
            Role::Player => ReportUsers::User(caller.user_id.clone()),
        },
    };
    Ok(Scope { client, users })
}

/// Reports that only a client's admins and the platform read (the client's own books).
pub fn require_client_wide(caller: &Caller, scope: &Scope) -> Result<(), Denied> {
    access::client_reach(caller, &scope.client.id).require("client")?;
    if scope.users != ReportUsers::Client {
        return Err(Denied::Forbidden);
    }
    Ok(())
}

fn hours(period: &Period) -> (i64, i64) {
    (period.from, period.to)
}

/// One bucket of the client metrics report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsRow {
    pub start: i64,
    pub end: i64,
    /// Players registered before the bucket's end.
    pub registered: i64,
    pub new_players: i64,
    /// Players with a movement or a round in the bucket.
    pub active_players: i64,
    pub depositing_players: i64,
    pub deposits: i64,
    pub deposits_sum: i64,
    pub first_time_depositors: i64,
    pub withdrawals: i64,
    pub withdrawals_sum: i64,
    pub rounds: i64,
    /// Stakes.
    pub turnover: i64,
    /// Payouts (stake + net of each round).
    pub wins: i64,
    /// Turnover - wins.
    pub ggr: i64,
    /// Admin adjustments credited to players (net; negative when taken back).
    pub adjustments: i64,
    /// GGR - adjustments.
    pub ngr: i64,
    /// Users with a live websocket: the most at once (minute samples summed over nodes) and
    /// the mean over the bucket's elapsed minutes in hundredths (client-wide reports only).
    pub peak_ws_users: i64,
    pub avg_ws_users_centi: i64,
}

impl MetricsRow {
    /// The average websocket users as a decimal string with two places.
    pub fn avg_ws_users(&self) -> String {
        format!(
            "{}.{:02}",
            self.avg_ws_users_centi / 100,
            self.avg_ws_users_centi % 100
        )
    }
}

/// Client metrics per bucket: players, money in and out, play (rounds by the hour they were
/// first applied), GGR and NGR.
pub async fn client_metrics(
    store: &Store,
    scope: &Scope,
    period: &Period,
) -> Result<Vec<MetricsRow>, StoreError> {
    store.feed_reports().await?;
    match &scope.users {
        ReportUsers::Client => client_wide_metrics(store, &scope.client.id, period).await,
        ReportUsers::Subtree(_) => subtree_metrics(store, scope, period).await,
        ReportUsers::User(_) => client_metrics_per_user(store, scope, period).await,
    }
}

fn add_money(row: &mut MetricsRow, kind: &str, n: i64, amount: i64) {
    match kind {
        "deposit" => {
            row.deposits += n;
            row.deposits_sum += amount;
        }
        "withdrawal" => {
            row.withdrawals += n;
            row.withdrawals_sum -= amount;
        }
        "adjustment" => row.adjustments += amount,
        _ => {}
    }
}

fn add_rounds(row: &mut MetricsRow, rounds: i64, stake: i64, net: i64) {
    row.rounds += rounds;
    row.turnover += stake;
    row.wins += stake + net;
    row.ggr -= net;
}

/// Client metrics from the scope's users' hourly rows (every user's: one player's scope here;
/// for a subtree, the reference its rollups are tested against). The caller feeds first.
#[doc(hidden)]
pub async fn client_metrics_per_user(
    store: &Store,
    scope: &Scope,
    period: &Period,
) -> Result<Vec<MetricsRow>, StoreError> {
    let (from, to) = hours(period);
    let cid = &scope.client.id;
    let users = store.report_users(cid, &scope.users).await?;
    let players: HashSet<&str> = users
        .iter()
        .filter(|u| u.role == Role::Player)
        .map(|u| u.id.as_str())
        .collect();
    let money = store.report_money(cid, from, to, &scope.users).await?;
    let rounds = store.report_rounds(cid, from, to, &scope.users).await?;
    let firsts = store.first_deposits(cid, from, to, &scope.users).await?;
    let mut rows = empty_rows(period);
    let mut active: Vec<HashSet<&str>> = vec![HashSet::new(); rows.len()];
    let mut depositing: Vec<HashSet<&str>> = vec![HashSet::new(); rows.len()];
    for u in users.iter().filter(|u| u.role == Role::Player) {
        for row in rows.iter_mut() {
            if u.created_at < row.end {
                row.registered += 1;
                if u.created_at >= row.start {
                    row.new_players += 1;
                }
            }
        }
    }
    for m in &money {
        let Some(i) = period.bucket_of(m.hour) else {
            continue;
        };
        if players.contains(m.user_id.as_str()) {
            active[i].insert(&m.user_id);
        }
        if m.kind == "deposit" {
            depositing[i].insert(&m.user_id);
        }
        add_money(&mut rows[i], &m.kind, m.n, m.amount);
    }
    for r in &rounds {
        let Some(i) = period.bucket_of(r.hour) else {
            continue;
        };
        active[i].insert(&r.user_id);
        add_rounds(&mut rows[i], r.rounds, r.stake, r.net);
    }
    for (_, hour) in &firsts {
        if let Some(i) = period.bucket_of(*hour) {
            rows[i].first_time_depositors += 1;
        }
    }
    for (i, row) in rows.iter_mut().enumerate() {
        row.active_players = active[i].len() as i64;
        row.depositing_players = depositing[i].len() as i64;
        row.ngr = row.ggr - row.adjustments;
    }
    Ok(rows)
}

/// New players per bucket from registrations per hour, and the running total on `before`.
fn add_registrations(
    rows: &mut [MetricsRow],
    period: &Period,
    before: i64,
    per_hour: Vec<(i64, i64)>,
) {
    for (hour, n) in per_hour {
        if let Some(i) = period.bucket_of(hour) {
            rows[i].new_players += n;
        }
    }
    let mut registered = before;
    for row in rows.iter_mut() {
        registered += row.new_players;
        row.registered = registered;
    }
}

fn empty_rows(period: &Period) -> Vec<MetricsRow> {
    period
        .buckets
        .iter()
        .map(|&(start, end)| MetricsRow {
            start,
            end,
            ..MetricsRow::default()
        })
        .collect()
}

/// Client metrics of an agent's subtree from the agent rollups (issue 17): money and rounds of
/// the whole days of the client's agent series within the period (when the period's zone is
/// the series'; hours outside them from the per-user rows), distinct and first-time users from
/// the per-agent counts (whole zone-series buckets and hours; other buckets count the distinct
/// users of the subtree's hourly marks), registrations counted in SQL. Equal to
/// [`client_metrics_per_user`]: a player's rows are its parent's, and every player of the
/// subtree has its parent in it.
async fn subtree_metrics(
    store: &Store,
    scope: &Scope,
    period: &Period,
) -> Result<Vec<MetricsRow>, StoreError> {
    use crate::store::report_agents::AgentRead;
    let (from, to) = hours(period);
    let cid = &scope.client.id;
    let Some((lo, hi)) = path_range(&scope.users) else {
        return client_metrics_per_user(store, scope, period).await;
    };
    let range = (lo.as_str(), hi.as_str());
    let mut rows = empty_rows(period);
    // Independent reads, in parallel: the report waits for the slowest, not their sum.
    let ((before, per_hour), series, agents) = tokio::try_join!(
        store.subtree_registrations(cid, range, from, to),
        store.agent_series(cid),
        store.subtree_agents(cid, range),
    )?;
    add_registrations(&mut rows, period, before, per_hour);
    // Agent days fall in one bucket only in the series' zone, and hours are finer.
    let days = match series {
        Some(s) if period.granularity != Granularity::Hour && s.zone == period.tz => {
            s.days_within(from, to)
        }
        _ => None,
    };
    let read = AgentRead::SubtreePerDay { agents };
    let rollups = store.agent_day_rollups(cid, days, &read);
    let whats = ["active".to_owned(), "depositing".to_owned()];
    let first = ["first_deposit".to_owned()];
    let (rollups, firsts, distinct) = tokio::try_join!(
        rollups,
        store.agent_counts(cid, &first, from, to, range),
        distinct_per_bucket(store, cid, period, &whats, Some(range)),
    )?;
    let rest = match (days, rollups) {
        (Some((a, b)), Some((money, rounds))) => {
            for m in money {
                if let Some(i) = period.bucket_of(m.day) {
                    add_money(&mut rows[i], &m.kind, m.n, m.amount);
                }
            }
            for r in rounds {
                if let Some(i) = period.bucket_of(r.day) {
                    add_rounds(&mut rows[i], r.rounds, r.stake, r.net);
                }
            }
            vec![(from, a), (b, to)]
        }
        _ => vec![(from, to)],
    };
    for (a, b) in rest.into_iter().filter(|(a, b)| a < b) {
        for m in store.report_money(cid, a, b, &scope.users).await? {
            if let Some(i) = period.bucket_of(m.hour) {
                add_money(&mut rows[i], &m.kind, m.n, m.amount);
            }
        }
        for r in store.report_rounds(cid, a, b, &scope.users).await? {
            if let Some(i) = period.bucket_of(r.hour) {
                add_rounds(&mut rows[i], r.rounds, r.stake, r.net);
            }
        }
    }
    for (_, hour, n) in firsts {
        if let Some(i) = period.bucket_of(hour) {
            rows[i].first_time_depositors += n;
        }
    }
    for (i, row) in rows.iter_mut().enumerate() {
        row.active_players = distinct[0][i];
        row.depositing_players = distinct[1][i];
        row.ngr = row.ggr - row.adjustments;
    }
    Ok(rows)
}

/// Client metrics of a whole client from its client-level rollups: money and rounds per hour,
/// registrations from the users index, first deposits and distinct users from the feed's
/// counts. A bucket of the client's zone series (day, week or month in its `timezone`, whole
/// since the series began) reads one count; an hour reads the hourly count; any other bucket
/// (another zone, a partial bucket, before the series) counts the distinct users of its hourly
/// marks.
async fn client_wide_metrics(
    store: &Store,
    cid: &str,
    period: &Period,
) -> Result<Vec<MetricsRow>, StoreError> {
    let (from, to) = hours(period);
    let mut rows: Vec<MetricsRow> = period
        .buckets
        .iter()
        .map(|&(start, end)| MetricsRow {
            start,
            end,
            ..MetricsRow::default()
        })
        .collect();
    // One bucket (the platform overview): summed in SQL.
    let one = period.buckets.len() == 1;
    let sum_into = period.sum_starts();
    let (before, per_hour) = store.player_registrations(cid, from, to, one).await?;
    add_registrations(&mut rows, period, before, per_hour);
    for m in store.report_money_client(cid, from, to, &sum_into).await? {
        let Some(i) = period.bucket_of(m.hour) else {
            continue;
        };
        let row = &mut rows[i];
        match m.kind.as_str() {
            "deposit" => {
                row.deposits += m.n;
                row.deposits_sum += m.amount;
            }
            "withdrawal" => {
                row.withdrawals += m.n;
                row.withdrawals_sum -= m.amount;
            }
            "adjustment" => row.adjustments += m.amount,
            _ => {}
        }
    }
    for r in store.report_rounds_client(cid, from, to, &sum_into).await? {
        let Some(i) = period.bucket_of(r.hour) else {
            continue;
        };
        let row = &mut rows[i];
        row.rounds += r.rounds;
        row.turnover += r.stake;
        row.wins += r.stake + r.net;
        row.ggr -= r.net;
    }
    for (hour, n) in store
        .report_counts(cid, &["first_deposit".to_owned()], from, to)
        .await?
        .into_iter()
        .map(|(_, bucket, n)| (bucket, n))
    {
        if let Some(i) = period.bucket_of(hour) {
            rows[i].first_time_depositors += n;
        }
    }
    let whats = ["active".to_owned(), "depositing".to_owned()];
    let distinct = distinct_per_bucket(store, cid, period, &whats, None).await?;
    let now = crate::domain::now_ms();
    let mut minutes: Vec<(i64, i64)> = vec![(0, 0); rows.len()];
    for (minute, users) in store.ws_users(cid, from, to).await? {
        if let Some(i) = period.bucket_of(minute) {
            rows[i].peak_ws_users = rows[i].peak_ws_users.max(users);
            minutes[i].0 += users;
        }
    }
    for (i, row) in rows.iter_mut().enumerate() {
        // Minutes of the bucket that have begun (a minute without a sample had no users).
        let elapsed = (row.end.min(now - now.rem_euclid(60_000) + 60_000) - row.start) / 60_000;
        minutes[i].1 = elapsed.max(0);
        if minutes[i].1 > 0 {
            row.avg_ws_users_centi = minutes[i].0 * 100 / minutes[i].1;
        }
    }
    for (i, row) in rows.iter_mut().enumerate() {
        row.active_players = distinct[0][i];
        row.depositing_players = distinct[1][i];
        row.ngr = row.ggr - row.adjustments;
    }
    Ok(rows)
}

/// Distinct users of each series `whats` (`active`, `depositing`, `players:<provider>`) per
/// bucket of `period`, client-wide or of the subtree of paths `[lo, hi)` (`active` and
/// `depositing` only: the per-agent counts): a bucket of the client's zone series (a whole
/// day, week or month of its `timezone`, since the series began) reads one count, an hour the
/// hourly count; client-wide, any other run of whole days of the client's zone since then the
/// day spans (`active` and `depositing`, `store::report_spans`); any other bucket counts the
/// distinct users of its hourly marks.
async fn distinct_per_bucket(
    store: &Store,
    cid: &str,
    period: &Period,
    whats: &[String],
    subtree: Option<(&str, &str)>,
) -> Result<Vec<Vec<i64>>, StoreError> {
    use crate::domain::calendar::{bucket_start, next_edge};
    use crate::store::report_feed::series;
    let (g, tz) = (period.granularity, period.tz);
    let zone_series = store.report_zone_series(cid).await?;
    let since = match &zone_series {
        Some(z) if g != Granularity::Hour && z.zone == tz.name() => Some(z.since),
        _ => None,
    };
    // Per-game series are whole only from `games_since` (migration 0160).
    let games_since = zone_series.as_ref().map_or(0, |z| z.games_since);
    let client_days = zone_series.and_then(|z| {
        Some(crate::store::report_agents::AgentSeries {
            zone: z.zone.parse().ok()?,
            whole_from: z.since,
        })
    });
    let names: Vec<String> = whats.iter().map(|w| series(w, g, tz)).collect();
    let mut counts: HashMap<(String, i64), i64> = HashMap::new();
    if g == Granularity::Hour || since.is_some() {
        let found = match subtree {
            None => {
                store
                    .report_counts(cid, &names, period.from, period.to)
                    .await?
            }
            Some(range) => {
                store
                    .agent_counts(cid, &names, period.from, period.to, range)
                    .await?
            }
        };
        for (s, bucket, n) in found {
            counts.insert((s, bucket), n);
        }
    }
    let mut out = vec![vec![0; period.buckets.len()]; whats.len()];
    for (i, &(start, end)) in period.buckets.iter().enumerate() {
        let zone_whole = |from: i64| match since {
            _ if g == Granularity::Hour => true,
            Some(since) => {
                start >= since.max(from)
                    && bucket_start(start, tz, g) == start
                    && next_edge(start, tz, g) == end
            }
            None => false,
        };
        let (whole, whole_game) = (zone_whole(0), zone_whole(games_since));
        // The day spans are client-wide.
        let days = client_days
            .filter(|_| !whole && subtree.is_none())
            .and_then(|s| Some((s.zone, s.days_within(start, end)?)))
            .filter(|(_, days)| *days == (start, end));
        for (w, what) in whats.iter().enumerate() {
            let whole = if crate::store::report_feed::is_game_series(&names[w]) {
                whole_game
            } else {
                whole
            };
            let spans = days
                .map(|(zone, run)| (series(what, Granularity::Day, zone), run))
                .filter(|(s, _)| crate::store::report_spans::tracked(s));
            out[w][i] = if whole {
                counts.get(&(names[w].clone(), start)).copied().unwrap_or(0)
            } else if let Some((day_series, (a, b))) = spans {
                store.report_span_distinct(cid, &day_series, a, b).await?
            } else {
                let series = format!("{what}:h");
                match subtree {
                    None => store.report_distinct(cid, &series, start, end).await?,
                    Some(range) => {
                        store
                            .subtree_distinct(cid, &series, start, end, range)
                            .await?
                    }
                }
            };
        }
    }
    Ok(out)
}

/// One bucket of the revenue report (journal money by the hour it was posted: the figures
/// settlements count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevenueRow {
    pub start: i64,
    pub end: i64,
    /// Game results posted (the house's side): what settlements call NGR.
    pub ggr: i64,
    pub adjustments: i64,
    pub ngr: i64,
    /// Of `ggr`, what falls in hours a settlement covers whole, and what does not (yet).
    pub settled_ggr: i64,
    pub unsettled_ggr: i64,
    /// The NGR the client's settlements starting in the bucket fixed (what was posted on).
    pub settlements_ngr: i64,
    /// Commissions paid to agents' wallets.
    pub commissions: i64,
    /// The platform's revenue share posted: what the client owes the platform.
    pub revenue_share: i64,
    /// `ngr - commissions - revenue_share`: what stays with the client.
    pub client_net: i64,
}

/// Client revenue per bucket: GGR → NGR → commissions → revenue share, split into settled and
/// not yet settled by the client's settlement periods.
pub async fn client_revenue(
    store: &Store,
    scope: &Scope,
    period: &Period,
) -> Result<Vec<RevenueRow>, StoreError> {
    store.feed_reports().await?;
    revenue_of_fed(store, &scope.client.id, period).await
}

/// [`client_revenue`] of a client once the feed has caught up.
async fn revenue_of_fed(
    store: &Store,
    cid: &str,
    period: &Period,
) -> Result<Vec<RevenueRow>, StoreError> {
    let (from, to) = hours(period);
    let settlements: Vec<_> = store
        .settlements(cid, Some(to), 10_000)
        .await?
        .into_iter()
        .filter(|s| s.period_end > from)
        .collect();
    let settled: Vec<(i64, i64)> = settlements
        .iter()
        .map(|s| (s.period_start, s.period_end))
        .collect();
    // No settlement to split a bucket by hour: summed in SQL.
    let sum_into = if settled.is_empty() {
        period.sum_starts()
    } else {
        Vec::new()
    };
    let money = store.report_money_client(cid, from, to, &sum_into).await?;
    let mut rows: Vec<RevenueRow> = period
        .buckets
        .iter()
        .map(|&(start, end)| RevenueRow {
            start,
            end,
            ..RevenueRow::default()
        })
        .collect();
    for s in &settlements {
        if let Some(i) = period.bucket_of(s.period_start) {
            rows[i].settlements_ngr += s.ngr;
        }
    }
    for m in &money {
        let Some(i) = period.bucket_of(m.hour) else {
            continue;
        };
        let row = &mut rows[i];
        match m.kind.as_str() {
            "game_result" => {
                row.ggr -= m.amount;
                let covered = settled
                    .iter()
                    .any(|&(s, e)| s <= m.hour && m.hour + HOUR_MS <= e);
                if covered {
                    row.settled_ggr -= m.amount;
                } else {
                    row.unsettled_ggr -= m.amount;
                }
            }
            "adjustment" => row.adjustments += m.amount,
            "commission" => row.commissions += m.amount,
            "revenue_share" => row.revenue_share += m.amount,
            _ => {}
        }
    }
    for row in &mut rows {
        row.ngr = row.ggr - row.adjustments;
        row.client_net = row.ngr - row.commissions - row.revenue_share;
    }
    Ok(rows)
}

/// An agent's figures over the period: its own (players directly under it) and with its
/// whole subtree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentRow {
    pub agent_id: String,
    pub username: String,
    pub parent_id: Option<String>,
    pub depth: usize,
    pub own: AgentFigures,
    pub total: AgentFigures,
    /// Commission lines of settlements starting in the period.
    pub commission_earned: i64,
    /// Commission paid into the agent's wallet in the period.
    pub commission_paid: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentFigures {
    pub players: i64,
    pub deposits: i64,
    pub turnover: i64,
    pub ggr: i64,
    pub ngr: i64,
}

impl AgentFigures {
    fn add(&mut self, o: &AgentFigures) {
        self.players += o.players;
        self.deposits += o.deposits;
        self.turnover += o.turnover;
        self.ggr += o.ggr;
        self.ngr += o.ngr;
    }
}

/// Every agent in the scope, in tree order, with its own and rolled-up figures: the agent
/// rollups for the whole days of the client's series within the period, the per-user rows for
/// any hour outside them (an unaligned edge, days before the series began).
pub async fn agents(
    store: &Store,
    scope: &Scope,
    period: &Period,
) -> Result<Vec<AgentRow>, StoreError> {
    use crate::store::report_agents::AgentRead;
    let (from, to) = hours(period);
    let cid = &scope.client.id;
    store.feed_reports().await?;
    let Some((lo, hi)) = path_range(&scope.users) else {
        // A player's scope holds no agent.
        return Ok(Vec::new());
    };
    let days = store
        .agent_series(cid)
        .await?
        .and_then(|s| s.days_within(from, to));
    // The kinds the rows below add.
    let read = AgentRead::PerAgent {
        kinds: &["deposit", "adjustment", "commission"],
    };
    // Independent reads, in parallel: the report waits for the slowest, not their sum.
    let rollups = store.agent_day_rollups(cid, days, &read);
    let ((mut agents, players), rollups, earned) = tokio::try_join!(
        store.report_agents(cid, &lo, &hi),
        rollups,
        store.commissions_earned(cid, from, to),
    )?;
    agents.sort_by(|a, b| a.path.cmp(&b.path));
    let index: HashMap<&str, usize> = agents
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.as_str(), i))
        .collect();
    let mut rows: Vec<AgentRow> = agents
        .iter()
        .map(|a| AgentRow {
            agent_id: a.id.clone(),
            username: a.username.clone(),
            parent_id: a.parent_id.clone(),
            depth: a.path.matches('/').count().saturating_sub(2),
            own: AgentFigures {
                players: players.get(&a.id).copied().unwrap_or(0),
                ..AgentFigures::default()
            },
            ..AgentRow::default()
        })
        .collect();
    let rest = match (days, rollups) {
        (Some((a, b)), Some((money, rounds))) => {
            for m in money {
                let Some(&i) = index.get(m.agent_id.as_str()) else {
                    continue;
                };
                let row = &mut rows[i];
                match (m.player, m.kind.as_str()) {
                    (1, "deposit") => row.own.deposits += m.amount,
                    (1, "adjustment") => row.own.ngr -= m.amount,
                    (0, "commission") => row.commission_paid += m.amount,
                    _ => {}
                }
            }
            for r in rounds {
                if let Some(&i) = index.get(r.agent_id.as_str()) {
                    let own = &mut rows[i].own;
                    own.turnover += r.stake;
                    own.ggr -= r.net;
                    own.ngr -= r.net;
                }
            }
            vec![(from, a), (b, to)]
        }
        _ => vec![(from, to)],
    };
    let rest: Vec<(i64, i64)> = rest.into_iter().filter(|(a, b)| a < b).collect();
    if !rest.is_empty() {
        // Hours outside whole days: the per-user rows, each player's to its parent.
        let users = store.report_users(cid, &scope.users).await?;
        let parent: HashMap<&str, &str> = users
            .iter()
            .filter(|u| u.role == Role::Player)
            .filter_map(|u| Some((u.id.as_str(), u.parent_id.as_deref()?)))
            .collect();
        for (a, b) in rest {
            let money = store.report_money(cid, a, b, &scope.users).await?;
            let rounds = store.report_rounds(cid, a, b, &scope.users).await?;
            for (user, f) in per_user_figures(&users, &money, &rounds) {
                if let Some(&i) = parent.get(user).and_then(|p| index.get(p)) {
                    rows[i].own.add(&f);
                }
            }
            for m in money.iter().filter(|m| m.kind == "commission") {
                if let Some(&i) = index.get(m.user_id.as_str()) {
                    rows[i].commission_paid += m.amount;
                }
            }
        }
    }
    // Each agent's total: its own and every agent's below it (in scope).
    for i in 0..rows.len() {
        let own = rows[i].own.clone();
        for ancestor in agents[i].path.split('/').filter(|s| !s.is_empty()) {
            if let Some(&j) = index.get(ancestor) {
                rows[j].total.add(&own);
            }
        }
    }
    for (agent, amount) in earned {
        if let Some(&i) = index.get(agent.as_str()) {
            rows[i].commission_earned += amount;
        }
    }
    Ok(rows)
}

/// The `[lo, hi)` of user paths in `users`' reach (None for one player).
fn path_range(users: &ReportUsers) -> Option<(String, String)> {
    match users {
        ReportUsers::Client => Some((String::new(), "\u{7f}".to_owned())),
        ReportUsers::Subtree(path) => {
            let mut hi = path.trim_end_matches('/').to_owned();
            hi.push('0');
            Some((path.clone(), hi))
        }
        ReportUsers::User(_) => None,
    }
}

fn per_user_figures<'a>(
    users: &'a [ReportUser],
    money: &[MoneyRollup],
    rounds: &[RoundRollup],
) -> HashMap<&'a str, AgentFigures> {
    let mut out: HashMap<&str, AgentFigures> = users
        .iter()
        .map(|u| (u.id.as_str(), AgentFigures::default()))
        .collect();
    for m in money {
        if let Some(f) = out.get_mut(m.user_id.as_str()) {
            match m.kind.as_str() {
                "deposit" => f.deposits += m.amount,
                "adjustment" => f.ngr -= m.amount,
                _ => {}
            }
        }
    }
    for r in rounds {
        if let Some(f) = out.get_mut(r.user_id.as_str()) {
            f.turnover += r.stake;
            f.ggr -= r.net;
            f.ngr -= r.net;
        }
    }
    out
}

/// One game of a provider in one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GameRow {
    pub start: i64,
    pub end: i64,
    pub provider: String,
    /// The game code (JDB `<gType>-<mType>`, LuckySports `sportsbook`; '' for rounds applied
    /// before rounds carried one).
    pub game: String,
    pub rounds: i64,
    pub players: i64,
    pub turnover: i64,
    pub wins: i64,
    pub ggr: i64,
}

impl GameRow {
    /// Wins / turnover as a decimal string with 4 places (empty without turnover).
    pub fn rtp(&self) -> String {
        if self.turnover == 0 {
            return String::new();
        }
        let scaled = i128::from(self.wins) * 1_000_000 / i128::from(self.turnover);
        let (int, frac) = (scaled / 1_000_000, (scaled % 1_000_000).abs());
        format!("{int}.{:04}", frac / 100)
    }
}

/// What a game-stats row is of: one game of a provider, or a whole provider (its players
/// counted once however many of its games they played).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GameSplit {
    Game,
    Provider,
}

impl GameSplit {
    /// The row key's game: '' for a provider's row.
    fn game(self, game: &str) -> &str {
        match self {
            GameSplit::Game => game,
            GameSplit::Provider => "",
        }
    }

    /// The feed's distinct-players series of a row.
    fn players_series(self, provider: &str, game: &str) -> String {
        let game = (self == GameSplit::Game).then_some(game);
        crate::store::report_feed::players_what(provider, game)
    }
}

/// Game statistics per bucket, provider and game (or provider alone), the biggest GGR first
/// within a bucket (`top`: the period's totals only, so the top games lead).
pub async fn game_stats(
    store: &Store,
    scope: &Scope,
    period: &Period,
    totals_only: bool,
    split: GameSplit,
) -> Result<Vec<GameRow>, StoreError> {
    let (from, to) = hours(period);
    if scope.users == ReportUsers::Client {
        store.feed_reports().await?;
        return client_wide_game_stats(store, &scope.client.id, period, totals_only, split).await;
    }
    let rounds = store
        .report_rounds(&scope.client.id, from, to, &scope.users)
        .await?;
    let mut rows: BTreeMap<(usize, &str, &str), (GameRow, HashSet<&str>)> = BTreeMap::new();
    for r in &rounds {
        let Some(i) = period.bucket_of(r.hour) else {
            continue;
        };
        let (i, (start, end)) = if totals_only {
            (0, (period.from, period.to))
        } else {
            (i, period.buckets[i])
        };
        let key = (i, r.provider.as_str(), split.game(&r.game));
        let (row, players) = rows.entry(key).or_insert_with(|| {
            (
                GameRow {
                    start,
                    end,
                    provider: r.provider.clone(),
                    game: split.game(&r.game).to_owned(),
                    ..GameRow::default()
                },
                HashSet::new(),
            )
        });
        players.insert(&r.user_id);
        row.rounds += r.rounds;
        row.turnover += r.stake;
        row.wins += r.stake + r.net;
        row.ggr -= r.net;
    }
    let mut out: Vec<GameRow> = rows
        .into_values()
        .map(|(mut row, players)| {
            row.players = players.len() as i64;
            row
        })
        .collect();
    sort_games(&mut out);
    Ok(out)
}

/// Within a bucket the biggest GGR first; ties by provider and game (a stable order).
fn sort_games(rows: &mut [GameRow]) {
    rows.sort_by(|a, b| {
        (a.start, -a.ggr, &a.provider, &a.game).cmp(&(b.start, -b.ggr, &b.provider, &b.game))
    });
}

/// Game statistics of a whole client from its client-level rounds and the feed's distinct
/// players per game or provider (see [`distinct_per_bucket`]).
async fn client_wide_game_stats(
    store: &Store,
    cid: &str,
    period: &Period,
    totals_only: bool,
    split: GameSplit,
) -> Result<Vec<GameRow>, StoreError> {
    let whole;
    let period = if totals_only {
        whole = Period {
            buckets: vec![(period.from, period.to)],
            ..period.clone()
        };
        &whole
    } else {
        period
    };
    let mut rows: BTreeMap<(usize, String, String), GameRow> = BTreeMap::new();
    for r in store
        .report_rounds_client(cid, period.from, period.to, &period.sum_starts())
        .await?
    {
        let Some(i) = period.bucket_of(r.hour) else {
            continue;
        };
        let (start, end) = period.buckets[i];
        let game = split.game(&r.game);
        let row = rows
            .entry((i, r.provider.clone(), game.to_owned()))
            .or_insert_with(|| GameRow {
                start,
                end,
                provider: r.provider.clone(),
                game: game.to_owned(),
                ..GameRow::default()
            });
        row.rounds += r.rounds;
        row.turnover += r.stake;
        row.wins += r.stake + r.net;
        row.ggr -= r.net;
    }
    let games: Vec<(String, String)> = rows
        .keys()
        .map(|(_, p, g)| (p.clone(), g.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let whats: Vec<String> = games
        .iter()
        .map(|(p, g)| split.players_series(p, g))
        .collect();
    let players = distinct_per_bucket(store, cid, period, &whats, None).await?;
    let mut out: Vec<GameRow> = rows
        .into_iter()
        .map(|((i, provider, game), mut row)| {
            let w = games
                .binary_search(&(provider, game))
                .expect("every row's game is listed");
            row.players = players[w][i];
            row
        })
        .collect();
    sort_games(&mut out);
    Ok(out)
}

/// One client side by side with the others (platform overview): its metrics over the period.
#[derive(Debug, Clone)]
pub struct OverviewRow {
    pub client: ClientRow,
    pub totals: MetricsRow,
    pub revenue: RevenueRow,
}

/// Every client's totals for the period (the platform only).
pub async fn platform_overview(
    store: &Store,
    caller: &Caller,
    period: &Period,
) -> Result<Vec<OverviewRow>, Denied> {
    if caller.role != Role::SuperAdmin {
        return Err(Denied::Forbidden);
    }
    let whole = Period {
        buckets: vec![(period.from, period.to)],
        ..period.clone()
    };
    // One catch-up for every client.
    store.feed_reports().await?;
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_clients(after.as_deref(), 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for client in page {
            let totals = client_wide_metrics(store, &client.id, &whole)
                .await?
                .remove(0);
            let revenue = revenue_of_fed(store, &client.id, &whole).await?.remove(0);
            out.push(OverviewRow {
                client,
                totals,
                revenue,
            });
        }
    }
    Ok(out)
}

/// Reach of a player's history: the player itself, its agents above, its client's admins and
/// the platform (other client 404, outside 403).
pub async fn history_target(
    store: &Store,
    caller: &Caller,
    user_id: &str,
) -> Result<(ClientRow, String), Denied> {
    let target = store.user(user_id).await?.ok_or(Denied::NotFound("user"))?;
    match access::reach(store, caller, &target).await? {
        Reach::Within => {}
        other => other.require("user")?,
    }
    let (client, _) = access::wallet_client(store, &target).await?;
    Ok((client, target.id))
}
