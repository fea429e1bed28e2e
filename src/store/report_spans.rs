//! Distinct users over any run of whole days (issue 17, migration 0135), for the platform
//! overview and any client-wide bucket made of whole days of the client's zone.
//!
//! The users active in days `[a, b)` are counted once each at their first marked day in the
//! range, i.e. at the one day mark in it whose previous marked day (same user, same series)
//! is before `a`, or none. So `report_day_spans` keeps, per (client, day series, day, previous
//! day), how many users have that pair, and the distinct count is
//! `SUM(n) WHERE a <= day < b AND prev_day < a`: a few rows per day, whatever the players.
//!
//! The feed keeps it with the day marks it adds (`sql_report_spans.rs`): a day after the
//! user's last (`report_user_last_day`, the usual case) adds (day, last); a day fed late, with
//! stored days p before and q after it, adds (d, p) and moves q from (q, p) to (q, d).

use std::collections::{BTreeMap, BTreeSet};

use chrono_tz::Tz;

use super::{Backend, Store, StoreResult};

/// `prev_day` of a user's first marked day (days are epoch ms of local midnights, after 1970).
pub const NO_DAY: i64 = -1;

/// Day series keeping spans: the distinct figures of client metrics.
pub fn tracked(series: &str) -> bool {
    series.starts_with("active:d:") || series.starts_with("depositing:d:")
}

/// The zone of a day series (`active:d:Europe/Berlin`) and its month series, whose marks say
/// in which months a user has day marks (the feed adds both for every activity).
pub fn zone_and_months(day_series: &str) -> Option<(Tz, String)> {
    let (what, zone) = day_series.split_once(":d:")?;
    Some((zone.parse().ok()?, format!("{what}:m:{zone}")))
}

/// The `(day, prev_day)` counts that adding `new` (ascending, none stored) to one user's
/// stored days changes. `known`: stored days including, for each new day, its nearest stored
/// day on either side (all stored days do).
pub fn span_deltas(known: &BTreeSet<i64>, new: &[i64]) -> BTreeMap<(i64, i64), i64> {
    let mut days = known.clone();
    let mut out: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for &d in new {
        let p = days.range(..d).next_back().copied().unwrap_or(NO_DAY);
        *out.entry((d, p)).or_default() += 1;
        if let Some(&q) = days.range(d + 1..).next() {
            *out.entry((q, p)).or_default() -= 1;
            *out.entry((q, d)).or_default() += 1;
        }
        days.insert(d);
    }
    out.retain(|_, n| *n != 0);
    out
}

impl Store {
    /// Distinct users of tracked day series `series` (see [`tracked`]) in the whole days
    /// `[from_day, to_day)`, which its marks must cover (from the zone series' `since`).
    pub async fn report_span_distinct(
        &self,
        client_id: &str,
        series: &str,
        from_day: i64,
        to_day: i64,
    ) -> StoreResult<i64> {
        dispatch!(self, b => b.report_span_distinct(client_id, series, from_day, to_day).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spans of one user's days, counted directly.
    fn spans_of(days: &BTreeSet<i64>) -> BTreeMap<(i64, i64), i64> {
        let mut out = BTreeMap::new();
        let mut prev = NO_DAY;
        for &d in days {
            out.insert((d, prev), 1);
            prev = d;
        }
        out
    }

    fn add(into: &mut BTreeMap<(i64, i64), i64>, deltas: &BTreeMap<(i64, i64), i64>) {
        for (k, n) in deltas {
            *into.entry(*k).or_default() += n;
        }
        into.retain(|_, n| *n != 0);
    }

    /// xorshift: deterministic cases without a dependency.
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn in_order_days_chain_and_a_late_day_splits_its_neighbours() {
        let known: BTreeSet<i64> = [10].into();
        assert_eq!(
            span_deltas(&known, &[12, 13]),
            [((12, 10), 1), ((13, 12), 1)].into()
        );
        // 5 fed after 3 and 8: (8, 3) becomes (5, 3) and (8, 5).
        let known: BTreeSet<i64> = [3, 8].into();
        assert_eq!(
            span_deltas(&known, &[5]),
            [((5, 3), 1), ((8, 3), -1), ((8, 5), 1)].into()
        );
        // A first day fed after a later one.
        let known: BTreeSet<i64> = [8].into();
        assert_eq!(
            span_deltas(&known, &[2]),
            [((2, NO_DAY), 1), ((8, NO_DAY), -1), ((8, 2), 1)].into()
        );
    }

    /// Days fed in random batches in random order, each batch knowing only the stored
    /// neighbours of its days: the spans equal those counted from all days, and the distinct
    /// users of any range are the spans' sum.
    #[test]
    fn spans_kept_from_random_late_batches_equal_a_direct_count() {
        let mut seed = 0x2545_F491_4F6C_DD1D_u64;
        for _ in 0..300 {
            let users = 1 + rng(&mut seed) % 5;
            let mut all: Vec<BTreeSet<i64>> = Vec::new();
            let mut spans: BTreeMap<(i64, i64), i64> = BTreeMap::new();
            for _ in 0..users {
                let mut days: Vec<i64> = (0..rng(&mut seed) % 12)
                    .map(|_| (rng(&mut seed) % 30) as i64)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                // Random order, cut into random batches.
                for i in (1..days.len()).rev() {
                    days.swap(i, (rng(&mut seed) % (i as u64 + 1)) as usize);
                }
                let mut stored = BTreeSet::new();
                let mut rest = &days[..];
                while !rest.is_empty() {
                    let k = 1 + (rng(&mut seed) as usize) % rest.len();
                    let mut batch = rest[..k].to_vec();
                    rest = &rest[k..];
                    batch.sort_unstable();
                    let mut known = BTreeSet::new();
                    for d in &batch {
                        known.extend(stored.range(..*d).next_back());
                        known.extend(stored.range(*d..).next());
                    }
                    add(&mut spans, &span_deltas(&known, &batch));
                    stored.extend(batch);
                }
                all.push(stored);
            }
            let mut direct = BTreeMap::new();
            for days in &all {
                add(&mut direct, &spans_of(days));
            }
            assert_eq!(spans, direct);
            for a in 0..31 {
                for b in a..31 {
                    let users = all
                        .iter()
                        .filter(|days| days.range(a..b).next().is_some())
                        .count() as i64;
                    let sum: i64 = spans
                        .iter()
                        .filter(|((d, p), _)| (a..b).contains(d) && *p < a)
                        .map(|(_, n)| n)
                        .sum();
                    assert_eq!(sum, users, "[{a}, {b})");
                }
            }
        }
    }

    #[test]
    fn series_names() {
        assert!(tracked("active:d:UTC") && tracked("depositing:d:Europe/Berlin"));
        assert!(!tracked("active:h") && !tracked("players:jdb:d:UTC") && !tracked("active:m:UTC"));
        let (zone, months) = zone_and_months("depositing:d:Europe/Berlin").unwrap();
        assert_eq!(
            (zone.name(), months.as_str()),
            ("Europe/Berlin", "depositing:m:Europe/Berlin")
        );
    }
}
