//! The report feed (issues 17 and 22): journal entries reach the `report_money` rollup after
//! their money commits, not inside its transaction. The money path writes each journal row with
//! `rolled_up = 0` and nothing else; the feed takes such rows in bulk and, in one transaction,
//! adds them to their rollup rows and sets `rolled_up = 1`, so an entry is counted exactly once
//! whatever crashes (on MySQL `FOR UPDATE SKIP LOCKED` lets every node feed at once). A
//! deposit at ordinary rates thus costs no rollup statement; the feed's cost is spread over
//! hundreds of entries. Reports catch the feed up before they read (`Store::feed_reports`), so
//! they still show every committed entry.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono_tz::Tz;

use crate::domain::calendar::{Granularity, bucket_start};

/// Off only in load tests measuring the feed's cost (`bench_report_rollups`): the periodic job
/// stops; reports still catch up when asked.
pub(crate) static FEED_JOB: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(true);

/// Entries per feed transaction.
pub const FEED_BATCH: i64 = 2000;

pub use crate::domain::calendar::{HOUR_MS, hour_of};

/// A journal entry as the feed reads it.
#[derive(Debug, Clone)]
pub(crate) struct FedEntry {
    pub id: String,
    pub client_id: String,
    pub kind: String,
    pub subject_account_id: String,
    pub created_at: i64,
    /// The entry's `report_money` amount ([`money_rollup_of`]): the journal row's
    /// `rollup_amount`, written by the money path (older rows: from their postings).
    pub amount: i64,
}

/// The money rollup's key and amount of one journal entry (the definition `nashub
/// check-reports` recomputes in SQL): the user owning the subject account if it is a wallet
/// (else ''), and the subject account's leg, or the `held_at_provider` leg when the subject
/// has none (a game result names the player's wallet: the player's net win).
pub fn money_rollup_of<'a, 'p>(
    subject: &'a str,
    postings: impl Iterator<Item = (&'p str, i64)> + Clone,
) -> (&'a str, i64) {
    let user = subject.strip_prefix("w:").unwrap_or("");
    let on = |f: &dyn Fn(&str) -> bool| -> Option<i64> {
        postings
            .clone()
            .filter(|(a, _)| f(a))
            .map(|(_, amount)| amount)
            .reduce(|a, b| a + b)
    };
    let amount = on(&|a| a == subject)
        .or_else(|| on(&|a| a.contains(":held_at_provider:")))
        .unwrap_or(0);
    (user, amount)
}

/// (client, hour, kind, user) of a `report_money` row.
pub(crate) type MoneyKey = (String, i64, String, String);

/// What `entries` add to `report_money`: (count, amount) per row, in key order (two feeds
/// meet the same rows in the same order: no deadlock between nodes).
pub(crate) fn money_rows(entries: &[FedEntry]) -> BTreeMap<MoneyKey, (i64, i64)> {
    let mut sums: BTreeMap<MoneyKey, (i64, i64)> = BTreeMap::new();
    for e in entries {
        let user = e.subject_account_id.strip_prefix("w:").unwrap_or("");
        let amount = e.amount;
        let key = (
            e.client_id.clone(),
            hour_of(e.created_at),
            e.kind.clone(),
            user.to_owned(),
        );
        let sum = sums.entry(key).or_default();
        sum.0 += 1;
        sum.1 += amount;
    }
    sums
}

/// A round first applied since the last feed (its player was active in its hour).
#[derive(Debug, Clone)]
pub(crate) struct FedRound {
    pub client_id: String,
    pub provider: String,
    pub game: String,
    pub round_id: String,
    pub user_id: String,
    pub created_at: i64,
}

/// (client, series, bucket, user): a user counted once in a series' bucket (`report_marks`).
pub(crate) type Mark = (String, String, i64, String);

/// (client, what, user, quarter hour, zone): a user's `what` in a quarter hour of its client's
/// zone. Every instant of the quarter has the same marks, so a touch the feed has stored
/// needs no marks built or looked up again: a busy player's entries after its first in a
/// quarter cost the feed no mark work.
pub(crate) type Touch = (String, String, String, i64, Tz);

const QUARTER_MS: i64 = 15 * 60_000;

/// The quarter hour holding `at` if every instant of it is in one local day of `zone` (then
/// in one hour, day, week and month: the marks of `at` are those of the quarter's start);
/// None for a quarter a local midnight cuts (no zone's is, today).
fn quarter_of(at: i64, zone: Tz) -> Option<i64> {
    use crate::domain::calendar::local_date;
    let q = at - at.rem_euclid(QUARTER_MS);
    (zone == Tz::UTC || local_date(q, zone) == local_date(q + QUARTER_MS - 1, zone)).then_some(q)
}

/// Whether a series (`players:jdb:0-8001:h`, `players:jdb:0-8001:d:UTC`) counts a game's
/// players, not a provider's (`players:jdb:h`): game codes and zone names hold no `:`.
pub fn is_game_series(series: &str) -> bool {
    let colons = series.matches(':').count();
    series.starts_with("players:") && colons == if series.ends_with(":h") { 3 } else { 4 }
}

/// The `what` of a provider's distinct players (`players:<provider>`), or of one of its games
/// (`players:<provider>:<game>`): the feed writes these marks, game and provider stats read them.
pub fn players_what(provider: &str, game: Option<&str>) -> String {
    match game {
        Some(game) => format!("players:{provider}:{game}"),
        None => format!("players:{provider}"),
    }
}

/// The series of distinct `what` (`active`, `depositing`, `players:<provider>`,
/// `players:<provider>:<game>`) users by `g`: UTC hours (whole for
/// every whole-hour zone), or days, weeks and months in `zone`.
pub fn series(what: &str, g: Granularity, zone: Tz) -> String {
    match g {
        Granularity::Hour => format!("{what}:h"),
        Granularity::Day => format!("{what}:d:{}", zone.name()),
        Granularity::Week => format!("{what}:w:{}", zone.name()),
        Granularity::Month => format!("{what}:m:{}", zone.name()),
    }
}

/// The zone of a client's report series: its settings' `timezone` (UTC when unset or not a
/// zone name: the settings API refuses those, this only reads).
pub fn zone_of(settings: Option<&str>) -> Tz {
    settings
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|v| v["timezone"].as_str().and_then(|z| z.parse().ok()))
        .unwrap_or(Tz::UTC)
}

/// Everything a feed transaction adds besides `report_money`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct FeedPlan {
    /// (client, hour, kind) -> (count, amount): `report_money_client`.
    pub money_client: BTreeMap<(String, i64, String), (i64, i64)>,
    /// Marks the entries and rounds may add (those already stored add nothing).
    pub marks: BTreeSet<Mark>,
    /// The touches the marks are of (stored once the feed commits).
    pub touches: HashSet<Touch>,
    /// (client, user) -> the earliest hour of a deposit among the entries.
    pub first_deposits: BTreeMap<(String, String), i64>,
}

/// What `entries` and `rounds` add to the client-level rollups: a player with money or a
/// round is active, any wallet user with a deposit is depositing (the definitions of
/// `reports::client_metrics`), each in its hour and in its client zone's day, week and month.
/// Touches in `seen` are stored: they add no marks.
pub(crate) fn plan(
    entries: &[FedEntry],
    rounds: &[FedRound],
    players: &HashSet<String>,
    zones: &HashMap<String, Tz>,
    seen: &HashSet<Touch>,
) -> FeedPlan {
    let mut out = FeedPlan::default();
    let grains = [
        Granularity::Hour,
        Granularity::Day,
        Granularity::Week,
        Granularity::Month,
    ];
    let mut mark = |client: &str, what: &str, at: i64, user: &str| {
        let zone = zones.get(client).copied().unwrap_or(Tz::UTC);
        let quarter = quarter_of(at, zone);
        let touch = quarter.map(|q| (client.to_owned(), what.to_owned(), user.to_owned(), q, zone));
        if let Some(t) = &touch
            && (seen.contains(t) || out.touches.contains(t))
        {
            return;
        }
        let at = quarter.unwrap_or(at);
        for g in grains {
            out.marks.insert((
                client.to_owned(),
                series(what, g, zone),
                bucket_start(at, zone, g),
                user.to_owned(),
            ));
        }
        if let Some(t) = touch {
            out.touches.insert(t);
        }
    };
    for e in entries {
        let user = e.subject_account_id.strip_prefix("w:");
        if let Some(user) = user {
            if players.contains(user) {
                mark(&e.client_id, "active", e.created_at, user);
            }
            if e.kind == "deposit" {
                mark(&e.client_id, "depositing", e.created_at, user);
            }
        }
    }
    for r in rounds {
        mark(&r.client_id, "active", r.created_at, &r.user_id);
        mark(
            &r.client_id,
            &players_what(&r.provider, None),
            r.created_at,
            &r.user_id,
        );
        mark(
            &r.client_id,
            &players_what(&r.provider, Some(&r.game)),
            r.created_at,
            &r.user_id,
        );
    }
    for e in entries {
        let amount = e.amount;
        let sum = out
            .money_client
            .entry((e.client_id.clone(), hour_of(e.created_at), e.kind.clone()))
            .or_default();
        sum.0 += 1;
        sum.1 += amount;
        if e.kind == "deposit"
            && let Some(user) = e.subject_account_id.strip_prefix("w:")
        {
            let hour = hour_of(e.created_at);
            out.first_deposits
                .entry((e.client_id.clone(), user.to_owned()))
                .and_modify(|h| *h = (*h).min(hour))
                .or_insert(hour);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, at: i64, kind: &str, subject: &str, legs: &[(&str, i64)]) -> FedEntry {
        FedEntry {
            id: id.into(),
            client_id: "c".into(),
            kind: kind.into(),
            subject_account_id: subject.into(),
            created_at: at,
            amount: money_rollup_of(subject, legs.iter().copied()).1,
        }
    }

    #[test]
    fn a_quarter_hour_has_the_marks_of_each_instant_in_it_and_a_stored_touch_adds_none() {
        let players: HashSet<String> = ["u".to_owned()].into();
        for zone in ["UTC", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu"] {
            let zone: Tz = zone.parse().unwrap();
            let zones: HashMap<String, Tz> = [("c".to_owned(), zone)].into();
            // Every minute of two days around a local midnight, one entry per minute.
            let start = 1_772_409_600_000 - 24 * HOUR_MS;
            let mut all_marks = BTreeSet::new();
            for m in 0..(48 * 60) {
                let at = start + m * 60_000 + 59_999;
                let one = [entry("e", at, "deposit", "w:u", &[("w:u", 1)])];
                let alone = plan(&one, &[], &players, &zones, &HashSet::new());
                // The marks from the quarter equal the marks computed for the instant.
                for g in [
                    Granularity::Hour,
                    Granularity::Day,
                    Granularity::Week,
                    Granularity::Month,
                ] {
                    for what in ["active", "depositing"] {
                        let want = (
                            "c".to_owned(),
                            series(what, g, zone),
                            bucket_start(at, zone, g),
                            "u".to_owned(),
                        );
                        assert!(alone.marks.contains(&want), "{zone:?} {at} {g:?}");
                    }
                }
                assert_eq!(alone.marks.len(), 8);
                // Once stored, the same quarter adds nothing.
                let again = plan(&one, &[], &players, &zones, &alone.touches);
                assert!(again.marks.is_empty() && again.touches.is_empty());
                all_marks.extend(alone.marks);
            }
            // One plan over all the entries has the same marks, with one touch per quarter.
            let entries: Vec<FedEntry> = (0..(48 * 60))
                .map(|m| {
                    entry(
                        "e",
                        start + m * 60_000 + 59_999,
                        "deposit",
                        "w:u",
                        &[("w:u", 1)],
                    )
                })
                .collect();
            let whole = plan(&entries, &[], &players, &zones, &HashSet::new());
            assert_eq!(whole.marks, all_marks, "{zone:?}");
            assert_eq!(whole.touches.len(), 2 * 48 * 4, "{zone:?}");
        }
    }

    #[test]
    fn game_series_are_told_from_provider_series() {
        for s in ["players:jdb:0-8001:h", "players:jdb::h", "players:jdb:h:h"] {
            assert!(is_game_series(s), "{s}");
        }
        for s in ["players:jdb:0-8001:d:UTC", "players:jdb:d:m:Europe/Berlin"] {
            assert!(is_game_series(s), "{s}");
        }
        for s in [
            "players:jdb:h",
            "players:jdb:d:UTC",
            "active:h",
            "active:d:UTC",
        ] {
            assert!(!is_game_series(s), "{s}");
        }
    }

    #[test]
    fn rollups_aggregate_per_hour_bucket_with_the_boundary_exact() {
        // 2026-03-01T23:59:59.999Z and 2026-03-02T00:00:00.000Z: different hours (and days).
        let midnight = 1_772_409_600_000;
        let entries = [
            entry(
                "1",
                midnight - 1,
                "deposit",
                "w:u",
                &[("w:u", 5), ("h:c:cash", -5)],
            ),
            entry(
                "2",
                midnight - 3_599_999,
                "deposit",
                "w:u",
                &[("w:u", 7), ("h:c:cash", -7)],
            ),
            entry(
                "3",
                midnight,
                "deposit",
                "w:u",
                &[("w:u", 11), ("h:c:cash", -11)],
            ),
            // A game result names the player's wallet but moves house accounts only.
            entry(
                "4",
                midnight,
                "game_result",
                "w:u",
                &[
                    ("h:c:held_at_provider:jdb", -3),
                    ("h:c:game_results:jdb", 3),
                ],
            ),
            entry(
                "5",
                midnight,
                "fee",
                "h:c:fees",
                &[("h:c:fees", 2), ("h:c:cash", -2)],
            ),
        ];
        let key = |hour: i64, kind: &str, user: &str| {
            ("c".to_owned(), hour, kind.to_owned(), user.to_owned())
        };
        let got: Vec<(MoneyKey, (i64, i64))> = money_rows(&entries).into_iter().collect();
        assert_eq!(
            got,
            vec![
                (key(midnight - HOUR_MS, "deposit", "u"), (2, 12)),
                (key(midnight, "deposit", "u"), (1, 11)),
                (key(midnight, "fee", ""), (1, 2)),
                (key(midnight, "game_result", "u"), (1, -3)),
            ]
        );
        assert_eq!(hour_of(midnight - 1), midnight - HOUR_MS);
        assert_eq!(hour_of(midnight), midnight);
    }
}
