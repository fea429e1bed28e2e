//! Report rollups in the store (issue 17): hourly rows fed from the journal after the money
//! commits (`report_money`, `report_feed.rs`) and kept with the rounds (`report_rounds`,
//! `apply_round`), read by
//! the reports service (`src/reports/`); `nashub check-reports` recomputes them. SQL in `sql_reports.rs`.

use super::{Backend, Store, StoreResult};
use crate::domain::Role;

pub use super::report_feed::{HOUR_MS, hour_of};

/// Whose rows a report reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportUsers {
    /// The whole client (house rows, user `''`, included).
    Client,
    /// Users whose path starts with this one (an agent and its subtree).
    Subtree(String),
    /// One user.
    User(String),
}

/// A client's `report_zone_series` row: the zone of its day/week/month series, the hour from
/// which they are whole, and the hours from which its agent and per-game series are.
#[derive(Debug, Clone)]
pub struct ZoneSeries {
    pub zone: String,
    pub since: i64,
    pub agents_since: i64,
    pub games_since: i64,
}

/// One `report_money` row: a client's journal entries of one kind in one hour, for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyRollup {
    pub hour: i64,
    pub kind: String,
    /// `''`: entries whose subject is a house account.
    pub user_id: String,
    pub n: i64,
    pub amount: i64,
}

/// One `report_rounds` row: a player's rounds of a game at a provider first applied in one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundRollup {
    pub hour: i64,
    pub provider: String,
    /// The game code ('' for rounds without one).
    pub game: String,
    pub user_id: String,
    pub rounds: i64,
    pub stake: i64,
    /// Payout minus stake (the player's view).
    pub net: i64,
}

/// A user as reports see it.
#[derive(Debug, Clone)]
pub struct ReportUser {
    pub id: String,
    pub parent_id: Option<String>,
    pub path: String,
    pub role: Role,
    pub username: String,
    pub created_at: i64,
}

/// A player's history line (rounds, transfers, sessions), newest first.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    /// `round`, `transfer` or `session`.
    pub kind: &'static str,
    pub at: i64,
    pub id: String,
    pub provider: String,
    /// Round status, transfer `in`/`out` + state, session state.
    pub detail: String,
    /// Round stake, transfer amount, session: 0.
    pub amount: i64,
    /// Round net, else 0.
    pub net: i64,
}

/// Where a player's history lines come from.
#[derive(Debug, Clone, Copy)]
pub enum HistorySource {
    Rounds,
    Transfers,
    Sessions,
}

/// A time slice of one history source.
#[derive(Debug, Clone, Copy)]
pub enum HistorySlice {
    /// The newest `limit` rows at or before `upto` (epoch ms).
    Upto { upto: i64, limit: i64 },
    /// Every row at this millisecond.
    At(i64),
}

/// A player's history read newest first by (at, id), in batches: each source is paged by its
/// own time bound and merged here, so a row is fetched once however many batches are taken.
/// A source's batch holds whole milliseconds only (ties are ordered by id here, whatever
/// order the database returns them in), so memory stays within about `batch` rows a source.
pub struct HistoryScan {
    client_id: String,
    user_id: String,
    before: Option<(i64, String)>,
    batch: i64,
    sources: [SourceScan; 3],
}

struct SourceScan {
    source: HistorySource,
    /// Fetched rows not yet taken, oldest first.
    rows: Vec<HistoryRow>,
    /// Rows at or before this time are still to fetch; `None` once the source is read out.
    upto: Option<i64>,
}

impl HistoryScan {
    /// The rows before `before` (exclusive, by (at, id)), fetched `batch` (at least 1) at a
    /// time from each source.
    pub fn new(client_id: &str, user_id: &str, before: Option<(i64, String)>, batch: i64) -> Self {
        let upto = Some(before.as_ref().map_or(i64::MAX, |(at, _)| *at));
        let source = |source| SourceScan {
            source,
            rows: Vec::new(),
            upto,
        };
        Self {
            client_id: client_id.to_owned(),
            user_id: user_id.to_owned(),
            before,
            batch: batch.max(1),
            sources: [
                source(HistorySource::Rounds),
                source(HistorySource::Transfers),
                source(HistorySource::Sessions),
            ],
        }
    }

    /// The next rows, at most `max`; fewer only at the end.
    pub async fn next(&mut self, store: &Store, max: usize) -> StoreResult<Vec<HistoryRow>> {
        let mut out = Vec::with_capacity(max.min(self.batch as usize));
        while out.len() < max {
            let mut newest: Option<usize> = None;
            for i in 0..self.sources.len() {
                if self.sources[i].rows.is_empty() {
                    self.fill(store, i).await?;
                }
                let Some(head) = self.sources[i].rows.last() else {
                    continue;
                };
                let newer = newest.is_none_or(|n| {
                    let best = self.sources[n].rows.last().expect("filled");
                    (head.at, &head.id) > (best.at, &best.id)
                });
                if newer {
                    newest = Some(i);
                }
            }
            let Some(i) = newest else { break };
            out.extend(self.sources[i].rows.pop());
        }
        Ok(out)
    }

    /// Refills an emptied source with its next whole milliseconds, if it has any.
    async fn fill(&mut self, store: &Store, i: usize) -> StoreResult<()> {
        let s = &mut self.sources[i];
        while s.rows.is_empty() {
            let Some(upto) = s.upto else { return Ok(()) };
            let (cid, uid, limit) = (&self.client_id, &self.user_id, self.batch);
            let slice = HistorySlice::Upto { upto, limit };
            let mut rows = store.history_source(s.source, cid, uid, slice).await?;
            match rows.iter().map(|r| r.at).min() {
                Some(oldest) if rows.len() as i64 >= limit => {
                    if rows.iter().all(|r| r.at == oldest) {
                        // A millisecond with a batch or more of rows: all of it at once.
                        rows = store
                            .history_source(s.source, cid, uid, HistorySlice::At(oldest))
                            .await?;
                        s.upto = oldest.checked_sub(1);
                    } else {
                        // The oldest millisecond may go on past the limit: next time.
                        rows.retain(|r| r.at != oldest);
                        s.upto = Some(oldest);
                    }
                }
                _ => s.upto = None,
            }
            if let Some((at, id)) = &self.before {
                rows.retain(|r| (r.at, &r.id) < (*at, id));
            }
            rows.sort_unstable_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
            s.rows = rows;
        }
        Ok(())
    }
}

/// Whether the periodic report feed runs (on unless a load test measures its cost).
pub fn set_money_rollup(on: bool) {
    super::report_feed::FEED_JOB.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the periodic report feed runs.
pub fn feed_job_on() -> bool {
    super::report_feed::FEED_JOB.load(std::sync::atomic::Ordering::Relaxed)
}

impl Store {
    /// Feeds every journal entry waiting for the rollups into them (`report_feed.rs`); how
    /// many. Reports call it first, so they show every entry committed before the request: on
    /// MySQL it waits for entries another feed holds (skipping them, a report could read before
    /// that feed commits them).
    pub async fn feed_reports(&self) -> StoreResult<usize> {
        self.feed(super::report_feed::FEED_BATCH, true).await
    }

    /// The periodic job: [`Store::feed_reports`] in transactions of at most `batch` entries,
    /// skipping the entries another node's feed holds.
    pub async fn feed_reports_by(&self, batch: i64) -> StoreResult<usize> {
        self.feed(batch, false).await
    }

    async fn feed(&self, batch: i64, wait: bool) -> StoreResult<usize> {
        let batch = batch.max(1);
        let mut total = 0;
        let mut retries = 0;
        loop {
            let n = match dispatch!(self, b => b.feed_reports_once(batch, wait).await) {
                Ok(n) => n,
                // Another feed stored a mark this one meant to add, or a deadlock: the
                // transaction was undone whole. A report's catch-up runs it again; the job
                // retries at its next tick.
                Err(e) if wait && retries < 5 && self.is_feed_race(&e) => {
                    retries += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            // Counted per transaction: a later one failing leaves these fed.
            metrics::counter!(crate::metrics::REPORT_FEED_ENTRIES).increment(n as u64);
            total += n;
            if (n as i64) < batch {
                return Ok(total);
            }
        }
    }

    /// Writes this node's websocket users per client for `minute` (epoch ms).
    pub async fn record_ws_users(
        &self,
        node: &str,
        minute: i64,
        counts: &[(String, usize)],
    ) -> StoreResult<()> {
        dispatch!(self, b => b.record_ws_users(node, minute, counts).await)
    }

    /// Per minute in `[from, to)`: the client's websocket users summed over nodes.
    pub async fn ws_users(
        &self,
        client_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<(i64, i64)>> {
        dispatch!(self, b => b.ws_users(client_id, from, to).await)
    }

    /// `report_money_client` rows (user `''`) of `client_id` in `[from_hour, to_hour)`: each
    /// hour's, or with `sum_into` (`Period::sum_starts`) one per bucket and kind, at the
    /// bucket's start.
    pub async fn report_money_client(
        &self,
        client_id: &str,
        from_hour: i64,
        to_hour: i64,
        sum_into: &[i64],
    ) -> StoreResult<Vec<MoneyRollup>> {
        dispatch!(self, b => b.report_money_client(client_id, from_hour, to_hour, sum_into).await)
    }

    /// `report_rounds_client` rows (user `''`) of `client_id` in `[from_hour, to_hour)`: each
    /// hour's, or with `sum_into` one per bucket, provider and game, at the bucket's start.
    pub async fn report_rounds_client(
        &self,
        client_id: &str,
        from_hour: i64,
        to_hour: i64,
        sum_into: &[i64],
    ) -> StoreResult<Vec<RoundRollup>> {
        dispatch!(self, b => b.report_rounds_client(client_id, from_hour, to_hour, sum_into).await)
    }

    /// `report_counts` rows `(series, bucket, n)` of `series` with buckets in `[from, to)`.
    pub async fn report_counts(
        &self,
        client_id: &str,
        series: &[String],
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<(String, i64, i64)>> {
        dispatch!(self, b => b.report_counts(client_id, series, from, to).await)
    }

    /// Distinct users marked in an hourly series (`active:h`, ...) in `[from, to)`.
    pub async fn report_distinct(
        &self,
        client_id: &str,
        series: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<i64> {
        dispatch!(self, b => b.report_distinct(client_id, series, from, to).await)
    }

    /// The client's zone series (None before the feed has started it).
    pub async fn report_zone_series(&self, client_id: &str) -> StoreResult<Option<ZoneSeries>> {
        dispatch!(self, b => b.report_zone_series(client_id).await)
    }

    /// Players registered before `from`, and per hour in `[from, to)` (`summed`: all of
    /// them at `from`).
    pub async fn player_registrations(
        &self,
        client_id: &str,
        from: i64,
        to: i64,
        summed: bool,
    ) -> StoreResult<(i64, Vec<(i64, i64)>)> {
        dispatch!(self, b => b.player_registrations(client_id, from, to, summed).await)
    }

    /// `report_money` rows of `client_id` with `from_hour <= hour < to_hour`.
    pub async fn report_money(
        &self,
        client_id: &str,
        from_hour: i64,
        to_hour: i64,
        users: &ReportUsers,
    ) -> StoreResult<Vec<MoneyRollup>> {
        dispatch!(self, b => b.report_money(client_id, from_hour, to_hour, users).await)
    }

    pub async fn report_rounds(
        &self,
        client_id: &str,
        from_hour: i64,
        to_hour: i64,
        users: &ReportUsers,
    ) -> StoreResult<Vec<RoundRollup>> {
        dispatch!(self, b => b.report_rounds(client_id, from_hour, to_hour, users).await)
    }

    /// The users whose first deposit ever falls in `[from_hour, to_hour)`, with its hour.
    pub async fn first_deposits(
        &self,
        client_id: &str,
        from_hour: i64,
        to_hour: i64,
        users: &ReportUsers,
    ) -> StoreResult<Vec<(String, i64)>> {
        dispatch!(self, b => b.first_deposits(client_id, from_hour, to_hour, users).await)
    }

    /// The client's users (all roles) that `users` covers.
    pub async fn report_users(
        &self,
        client_id: &str,
        users: &ReportUsers,
    ) -> StoreResult<Vec<ReportUser>> {
        dispatch!(self, b => b.report_users(client_id, users).await)
    }

    /// A player's rounds, transfers and sessions before `before` (epoch ms, exclusive; with
    /// `before_id` breaking ties), newest first, at most `limit`.
    pub async fn player_history(
        &self,
        client_id: &str,
        user_id: &str,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<Vec<HistoryRow>> {
        // A margin over the page: a source's batch stops before its oldest millisecond.
        let mut scan = HistoryScan::new(client_id, user_id, before, limit + 64);
        scan.next(self, usize::try_from(limit).unwrap_or(0)).await
    }

    /// One source's slice of a player's history (`HistoryScan` merges them).
    pub async fn history_source(
        &self,
        source: HistorySource,
        client_id: &str,
        user_id: &str,
        slice: HistorySlice,
    ) -> StoreResult<Vec<HistoryRow>> {
        dispatch!(self, b => b.history_source(source, client_id, user_id, slice).await)
    }

    /// `nashub check-reports`: every rollup recomputed from the journal and `game_rounds`; the
    /// first bucket that differs, if any.
    pub async fn report_rollup_violation(&self) -> StoreResult<Option<String>> {
        dispatch!(self, b => b.report_rollup_violation().await)
    }
}
