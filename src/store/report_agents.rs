//! Agent-level rollups (issue 17, migration 0113): money per (client, day in the client's
//! report zone, agent, kind) and rounds per (client, day, agent, provider), so the agents report
//! and an agent's subtree metrics read O(agents × days) rows instead of every player's hours.
//!
//! A row's agent is a player's direct parent (`player` = 1) or, for any other wallet user (an
//! agent's own wallet: commissions, its own deposits), the user itself (`player` = 0). An
//! agent's subtree is then the rows of the agents in it: a player belongs to exactly one
//! parent. The money rows are added by the report feed from the entries it takes, the rounds'
//! by `apply_round` with the per-user rows. Days are whole from [`AgentSeries::whole_from`];
//! reports read earlier hours (and any hour outside whole days) from the per-user rows.
//!
//! Distinct users per agent (migration 0131, `report_counts_agent`): the feed counts each new
//! `active`/`depositing` mark and each first deposit to the user's agent, so a subtree's
//! distinct users in a bucket are a sum over its agents; whole wherever `report_counts` is.

use std::collections::{BTreeMap, HashMap};

use chrono_tz::Tz;

use super::report_feed::{FedEntry, hour_of};
use super::{Backend, Store, StoreResult};
use crate::domain::calendar::{Granularity, HOUR_MS, bucket_start, next_edge};

/// A wallet user as the agent rollups key it: its parent when it is a player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub is_player: bool,
    pub parent_id: Option<String>,
}

impl Owner {
    /// The row's (agent, player) for this user `id`; None for a player without a parent.
    pub fn agent_key(&self, id: &str) -> Option<(String, i64)> {
        if self.is_player {
            self.parent_id.clone().map(|p| (p, 1))
        } else {
            Some((id.to_owned(), 0))
        }
    }
}

/// (client, day, agent, player, kind) of a `report_money_agent` row.
pub type AgentMoneyKey = (String, i64, String, i64, String);

/// The local midnight in `zone` of the day holding `hour` (the row's `day`).
pub fn day_of(hour: i64, zone: Tz) -> i64 {
    bucket_start(hour, zone, Granularity::Day)
}

/// What `entries` add to `report_money_agent`: entries whose subject is a wallet of a user in
/// `owners`, in the zone of their client (UTC when absent), in key order.
pub(crate) fn agent_money_rows(
    entries: &[FedEntry],
    owners: &HashMap<String, Owner>,
    zones: &HashMap<String, Tz>,
) -> BTreeMap<AgentMoneyKey, (i64, i64)> {
    let mut out: BTreeMap<AgentMoneyKey, (i64, i64)> = BTreeMap::new();
    for e in entries {
        let (user, amount) = (
            e.subject_account_id.strip_prefix("w:").unwrap_or(""),
            e.amount,
        );
        let Some((agent, player)) = owners.get(user).and_then(|o| o.agent_key(user)) else {
            continue;
        };
        let zone = zones.get(&e.client_id).copied().unwrap_or(Tz::UTC);
        let key = (
            e.client_id.clone(),
            day_of(hour_of(e.created_at), zone),
            agent,
            player,
            e.kind.clone(),
        );
        let sum = out.entry(key).or_default();
        sum.0 += 1;
        sum.1 += amount;
    }
    out
}

/// A client's agent series: the zone of its days and the first hour from which every entry
/// and round is in them.
#[derive(Debug, Clone, Copy)]
pub struct AgentSeries {
    pub zone: Tz,
    pub whole_from: i64,
}

impl AgentSeries {
    /// The whole days within `[from, to)`: `[a, b)` from the first local midnight at or after
    /// `max(from, whole_from)` to the last at or before `to`; None when there is none, or when
    /// the zone's midnights are not whole UTC hours (rows are summed from hours).
    pub fn days_within(&self, from: i64, to: i64) -> Option<(i64, i64)> {
        let a = self.first_whole_day(from);
        let b = day_of(to, self.zone);
        let aligned = a % HOUR_MS == 0 && b % HOUR_MS == 0;
        (aligned && a < b).then_some((a, b))
    }
}

impl AgentSeries {
    /// The first local midnight at or after `max(from, whole_from)`.
    pub fn first_whole_day(&self, from: i64) -> i64 {
        let start = from.max(self.whole_from);
        let a = day_of(start, self.zone);
        if a < start {
            next_edge(a, self.zone, Granularity::Day)
        } else {
            a
        }
    }
}

/// Summed `report_money_agent` rows: per (day or 0, agent or '', player, kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentMoney {
    pub day: i64,
    pub agent_id: String,
    pub player: i64,
    pub kind: String,
    pub n: i64,
    pub amount: i64,
}

/// Summed `report_rounds_agent` rows: per (day or 0, agent or '').
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRounds {
    pub day: i64,
    pub agent_id: String,
    pub rounds: i64,
    pub stake: i64,
    pub net: i64,
}

/// Which agent rows to sum and how to group them.
#[derive(Debug, Clone)]
pub enum AgentRead {
    /// Every agent of the client, per agent over the whole range; money of `kinds` only.
    PerAgent { kinds: &'static [&'static str] },
    /// The given agents (a subtree's: [`Store::subtree_agents`]), per day, summed over them.
    SubtreePerDay { agents: Vec<String> },
}

impl Store {
    /// A client's agent series, None before the feed has started its zone series.
    pub async fn agent_series(&self, client_id: &str) -> StoreResult<Option<AgentSeries>> {
        let row = dispatch!(self, b => b.report_zone_series(client_id).await)?;
        Ok(row.map(|z| AgentSeries {
            zone: z.zone.parse().unwrap_or(Tz::UTC),
            whole_from: z.since.max(z.agents_since),
        }))
    }

    /// `report_money_agent` rows of `client_id` with `from_day <= day < to_day`, summed as
    /// `read` says.
    pub async fn agent_money(
        &self,
        client_id: &str,
        from_day: i64,
        to_day: i64,
        read: &AgentRead,
    ) -> StoreResult<Vec<AgentMoney>> {
        dispatch!(self, b => b.agent_money(client_id, from_day, to_day, read).await)
    }

    /// `report_rounds_agent` rows of `client_id` with `from_day <= day < to_day`, summed as
    /// `read` says.
    pub async fn agent_rounds(
        &self,
        client_id: &str,
        from_day: i64,
        to_day: i64,
        read: &AgentRead,
    ) -> StoreResult<Vec<AgentRounds>> {
        dispatch!(self, b => b.agent_rounds(client_id, from_day, to_day, read).await)
    }

    /// [`Store::agent_money`] and [`Store::agent_rounds`] of the whole days `days` (none:
    /// None), read in parallel: a report waits for the slower, not their sum.
    pub async fn agent_day_rollups(
        &self,
        client_id: &str,
        days: Option<(i64, i64)>,
        read: &AgentRead,
    ) -> StoreResult<Option<(Vec<AgentMoney>, Vec<AgentRounds>)>> {
        let Some((from_day, to_day)) = days else {
            return Ok(None);
        };
        Ok(Some(tokio::try_join!(
            self.agent_money(client_id, from_day, to_day, read),
            self.agent_rounds(client_id, from_day, to_day, read),
        )?))
    }

    /// The agents (any user but a player) of `client_id` whose path is in `[lo, hi)`.
    pub async fn subtree_agents(
        &self,
        client_id: &str,
        (lo, hi): (&str, &str),
    ) -> StoreResult<Vec<String>> {
        dispatch!(self, b => b.subtree_agents(client_id, lo, hi).await)
    }

    /// Per (series, bucket) in `[from, to)`: `report_counts_agent` summed over the agents whose
    /// path is in `[lo, hi)` (the distinct users of that subtree, migration 0131).
    pub async fn agent_counts(
        &self,
        client_id: &str,
        series: &[String],
        from: i64,
        to: i64,
        (lo, hi): (&str, &str),
    ) -> StoreResult<Vec<(String, i64, i64)>> {
        dispatch!(self, b => b.agent_counts(client_id, series, from, to, lo, hi).await)
    }

    /// Distinct users of the hourly `series` marked in `[from, to)` whose path is in `[lo, hi)`.
    pub async fn subtree_distinct(
        &self,
        client_id: &str,
        series: &str,
        from: i64,
        to: i64,
        (lo, hi): (&str, &str),
    ) -> StoreResult<i64> {
        dispatch!(self, b => b.subtree_distinct(client_id, series, from, to, lo, hi).await)
    }

    /// Players whose path is in `[lo, hi)`: how many registered before `from`, and per UTC
    /// hour how many in `[from, to)`.
    pub async fn subtree_registrations(
        &self,
        client_id: &str,
        (lo, hi): (&str, &str),
        from: i64,
        to: i64,
    ) -> StoreResult<(i64, Vec<(i64, i64)>)> {
        dispatch!(self, b => b.subtree_registrations(client_id, lo, hi, from, to).await)
    }

    /// The agents of `client_id` whose path is in `[lo, hi)`, and per agent of the client how
    /// many players are directly under it.
    pub async fn report_agents(
        &self,
        client_id: &str,
        lo: &str,
        hi: &str,
    ) -> StoreResult<(Vec<super::reports::ReportUser>, HashMap<String, i64>)> {
        dispatch!(self, b => b.report_agents(client_id, lo, hi).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(client: &str, at: i64, kind: &str, subject: &str, amount: i64) -> FedEntry {
        FedEntry {
            id: format!("{at}{subject}"),
            client_id: client.into(),
            kind: kind.into(),
            subject_account_id: subject.into(),
            created_at: at,
            amount,
        }
    }

    #[test]
    fn players_roll_up_to_their_parent_and_agents_to_themselves_by_local_day() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 2026-03-03T23:00Z is midnight in Berlin: 22:59:59.999Z is the day before.
        let midnight = 1_772_578_800_000;
        let owners: HashMap<String, Owner> = [
            (
                "p1".to_owned(),
                Owner {
                    is_player: true,
                    parent_id: Some("a".into()),
                },
            ),
            (
                "p2".to_owned(),
                Owner {
                    is_player: true,
                    parent_id: Some("a".into()),
                },
            ),
            (
                "a".to_owned(),
                Owner {
                    is_player: false,
                    parent_id: Some("root".into()),
                },
            ),
        ]
        .into();
        let zones: HashMap<String, Tz> = [("c".to_owned(), berlin)].into();
        let entries = [
            entry("c", midnight - 1, "deposit", "w:p1", 5),
            entry("c", midnight, "deposit", "w:p1", 7),
            entry("c", midnight + 5, "deposit", "w:p2", 11),
            entry("c", midnight, "commission", "w:a", 3),
            entry("c", midnight, "fee", "h:c:fees", 2),
            entry("c", midnight, "deposit", "w:unknown", 13),
        ];
        let got: Vec<_> = agent_money_rows(&entries, &owners, &zones)
            .into_iter()
            .collect();
        let day = 24 * HOUR_MS;
        let key = |d: i64, agent: &str, player: i64, kind: &str| {
            ("c".to_owned(), d, agent.to_owned(), player, kind.to_owned())
        };
        assert_eq!(
            got,
            vec![
                (key(midnight - day, "a", 1, "deposit"), (1, 5)),
                (key(midnight, "a", 0, "commission"), (1, 3)),
                (key(midnight, "a", 1, "deposit"), (2, 18)),
            ]
        );
    }

    #[test]
    fn whole_days_start_at_the_first_midnight_after_the_series_and_end_before_to() {
        let utc = AgentSeries {
            zone: Tz::UTC,
            whole_from: 0,
        };
        let day = 24 * HOUR_MS;
        let d0 = 1_772_582_400_000; // 2026-03-04T00:00Z
        assert_eq!(utc.days_within(d0, d0 + 3 * day), Some((d0, d0 + 3 * day)));
        assert_eq!(
            utc.days_within(d0 + HOUR_MS, d0 + 3 * day - HOUR_MS),
            Some((d0 + day, d0 + 2 * day))
        );
        assert_eq!(utc.days_within(d0 + HOUR_MS, d0 + day + HOUR_MS), None);
        let late = AgentSeries {
            zone: Tz::UTC,
            whole_from: d0 + 5 * HOUR_MS,
        };
        assert_eq!(
            late.days_within(d0, d0 + 3 * day),
            Some((d0 + day, d0 + 3 * day))
        );
    }
}
