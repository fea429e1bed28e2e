//! The report feed (issues 17 and 22): journal entries reach the `report_money` rollup after
//! their money commits, not inside its transaction. The money path writes each journal row with
//! `rolled_up = 0` and nothing else; the feed takes such rows in bulk and, in one transaction,
//! adds them to their rollup rows and sets `rolled_up = 1`, so an entry is counted exactly once
//! whatever crashes (on MySQL `FOR UPDATE SKIP LOCKED` lets every node feed at once). A
//! deposit at ordinary rates thus costs no rollup statement; the feed's cost is spread over
//! hundreds of entries. Reports catch the feed up before they read (`Store::feed_reports`), so
//! they still show every committed entry.

use std::collections::BTreeMap;

/// Off only in load tests measuring the feed's cost (`bench_report_rollups`): the periodic job
/// stops; reports still catch up when asked.
pub(crate) static FEED_JOB: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(true);

/// Entries per feed transaction.
pub const FEED_BATCH: i64 = 2000;

/// One hour in epoch ms: report rollups are kept per UTC hour.
pub const HOUR_MS: i64 = 3_600_000;

/// The hour bucket (its start, epoch ms) of a time.
pub const fn hour_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

/// A journal entry as the feed reads it.
#[derive(Debug, Clone)]
pub(crate) struct FedEntry {
    pub id: String,
    pub client_id: String,
    pub kind: String,
    pub subject_account_id: String,
    pub created_at: i64,
    /// (account, amount) of each posting.
    pub postings: Vec<(String, i64)>,
}

/// The money rollup's key and amount of one journal entry (the definition `nashub
/// check-reports` recomputes in SQL): the user owning the subject account if it is a wallet
/// (else ''), and the subject account's leg, or the `held_at_provider` leg when the subject
/// has none (a game result names the player's wallet: the player's net win).
pub fn money_rollup_of<'a>(subject: &'a str, postings: &[(String, i64)]) -> (&'a str, i64) {
    let user = subject.strip_prefix("w:").unwrap_or("");
    let on = |f: &dyn Fn(&str) -> bool| -> Option<i64> {
        postings
            .iter()
            .filter(|(a, _)| f(a))
            .map(|(_, amount)| *amount)
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
        let (user, amount) = money_rollup_of(&e.subject_account_id, &e.postings);
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
            postings: legs.iter().map(|(a, n)| ((*a).to_owned(), *n)).collect(),
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
