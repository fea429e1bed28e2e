//! How long a lone commit waits for one more before it is sent (issue 22; MySQL).
//!
//! At ordinary rates every mutation is a batch of one, and on MySQL each pays a whole
//! transaction: its statements, round trips and log flush, about what a batch of two costs
//! (the batch's statements are multi-row). When mutations arrive every few milliseconds,
//! waiting for the next one lets two share that cost, at the price of the first one's latency
//! (at most `max`). PostgreSQL's `commit_delay` and MySQL's `binlog_group_commit_sync_delay`
//! make the same trade; here it is adaptive: it waits only when the recent arrivals say the
//! next mutation comes soon, and then until a quarter of their mean gap past when it should
//! have come (counted from the first's arrival), so at low rates (where nothing would come)
//! and at high rates (where batches form by themselves) nothing waits.
//!
//! A client that sends one mutation at a time (a script crediting players one after another)
//! never has a second one in flight: its lingers all time out, and each would only slow it
//! down. So lingering also stops while most recent lingers found no company, trying again
//! once every `PROBE_EVERY` lone commits.
//!
//! SQLite does not linger: the same wait before its writer's WAL sync halved the syncs but
//! saved no hub CPU in measurements (thread wake-ups, not the sync, dominate a lone deposit
//! there), and only added latency (load-tests/RESULTS.md, session 26).

use std::time::{Duration, Instant};

/// Arrivals more than this apart count as this far apart (an idle hour is one long gap).
const GAP_CAP: Duration = Duration::from_secs(1);
/// While lingers find no company, one lone commit in this many lingers anyway, to notice
/// when they would again.
const PROBE_EVERY: u32 = 16;

#[derive(Debug)]
pub struct Linger {
    max: Duration,
    /// Exponentially weighted mean gap between arrivals (weight 1/4 for the newest).
    mean_gap: Option<Duration>,
    last: Option<Instant>,
    /// Exponentially weighted share of lingers that found company, in 1/256ths (weight 1/4
    /// for the newest); starts hopeful.
    found: u32,
    /// Lone commits that did not linger because lingers found no company.
    skipped: u32,
}

impl Linger {
    /// `max` zero: never waits.
    pub fn new(max: Duration) -> Self {
        Self {
            max,
            mean_gap: None,
            last: None,
            found: 256,
            skipped: 0,
        }
    }

    /// A mutation was posted at `at` (arrivals are fed in queue order; one posted a little
    /// earlier than the one before it counts as a gap of zero).
    pub fn arrived(&mut self, at: Instant) {
        if let Some(last) = self.last {
            let gap = at.saturating_duration_since(last).min(GAP_CAP);
            self.mean_gap = Some(match self.mean_gap {
                Some(mean) => (mean * 3 + gap) / 4,
                None => gap,
            });
        }
        self.last = Some(self.last.map_or(at, |last| last.max(at)));
    }

    /// How long after a lone mutation's arrival its commit may wait for one more: zero when
    /// lingering is off, when the mean gap is longer than `max` (the next would most likely
    /// not come in time), or while lingers find no company (but for a probe now and then).
    /// Report how a linger went with [`Linger::lingered`].
    pub fn wait(&mut self) -> Duration {
        let gap = match self.mean_gap {
            Some(gap) if !self.max.is_zero() && gap <= self.max => gap,
            _ => return Duration::ZERO,
        };
        if self.found < 128 {
            self.skipped += 1;
            if self.skipped < PROBE_EVERY {
                return Duration::ZERO;
            }
        }
        self.skipped = 0;
        (gap * 5 / 4).min(self.max)
    }

    /// Whether the linger [`Linger::wait`] allowed found company.
    pub fn lingered(&mut self, found: bool) {
        self.found = (self.found * 3 + if found { 256 } else { 0 }) / 4;
        let found = if found { "true" } else { "false" };
        metrics::counter!(crate::metrics::LEDGER_COMMIT_LINGERS, "found" => found).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(max_ms: u64, gaps_us: &[u64]) -> Linger {
        let mut linger = Linger::new(Duration::from_millis(max_ms));
        let mut at = Instant::now();
        linger.arrived(at);
        for gap in gaps_us {
            at += Duration::from_micros(*gap);
            linger.arrived(at);
        }
        linger
    }

    #[test]
    fn waits_only_when_the_next_is_expected_in_time() {
        assert_eq!(
            fed(5, &[]).wait(),
            Duration::ZERO,
            "one arrival says nothing"
        );
        assert_eq!(
            fed(5, &[2_000; 20]).wait(),
            Duration::from_micros(2_500),
            "500/s: 1.25 gaps"
        );
        assert_eq!(
            fed(5, &[4_000; 20]).wait(),
            Duration::from_millis(5),
            "250/s: capped"
        );
        assert_eq!(
            fed(5, &[10_000; 20]).wait(),
            Duration::ZERO,
            "100/s: too sparse"
        );
        assert_eq!(fed(0, &[100; 20]).wait(), Duration::ZERO, "off");
    }

    #[test]
    fn one_mutation_at_a_time_stops_it_but_for_probes() {
        let mut linger = fed(5, &[2_000; 20]);
        let mut waits = 0;
        for _ in 0..(PROBE_EVERY * 4) {
            if !linger.wait().is_zero() {
                waits += 1;
                linger.lingered(false);
            }
        }
        assert!(
            (3..=8).contains(&waits),
            "{waits}: a few lingers, then a probe every {PROBE_EVERY}"
        );
        let mut back = false;
        for _ in 0..(PROBE_EVERY * 2) {
            if !linger.wait().is_zero() {
                linger.lingered(true);
                back = true;
            }
        }
        assert!(
            back && !linger.wait().is_zero(),
            "company found: lingering again"
        );
    }

    #[test]
    fn an_idle_spell_turns_it_off_and_a_burst_back_on() {
        let mut linger = fed(5, &[2_000; 20]);
        let mut at = linger.last.unwrap() + Duration::from_secs(60);
        linger.arrived(at);
        assert_eq!(linger.wait(), Duration::ZERO, "after a minute of silence");
        for _ in 0..16 {
            at += Duration::from_micros(1_000);
            linger.arrived(at);
        }
        assert!(!linger.wait().is_zero(), "a burst brings it back");
    }

    #[test]
    fn out_of_order_arrivals_count_as_no_gap() {
        let mut linger = fed(5, &[2_000; 4]);
        let last = linger.last.unwrap();
        linger.arrived(last - Duration::from_micros(50));
        assert_eq!(linger.last, Some(last), "the latest arrival is kept");
        assert!(linger.mean_gap.unwrap() < Duration::from_millis(2));
    }
}
