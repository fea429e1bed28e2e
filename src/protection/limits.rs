//! A player's limits as pure decisions: which limits exist, what a change does (lower at once,
//! raise after the cooling-off), what counts against each, and whether a movement fits.
//!
//! Counted (rolling windows of 24 h, 7 days, 30 days, on the wallet's journal):
//! - deposit: money into the wallet from outside it: admin deposits and agent credits;
//! - wager: transfers into providers (holds, minus holds released by a failed transfer);
//! - loss: wager minus transfers back out of providers (net loss; winnings taken out make room).
//!
//! `session_minutes` caps one play session (`protection::PLAY_GAP_MS`).

use crate::domain::text_enum::text_enum;
use crate::ledger::JournalKind;
use crate::store::{LimitRow, WalletFlow};

text_enum! {
    /// A limit a player can set: `player_limits.name` and the API's names.
    pub enum LimitName("limit") {
        DepositDaily = "deposit_daily",
        DepositWeekly = "deposit_weekly",
        DepositMonthly = "deposit_monthly",
        LossDaily = "loss_daily",
        LossWeekly = "loss_weekly",
        LossMonthly = "loss_monthly",
        WagerDaily = "wager_daily",
        WagerWeekly = "wager_weekly",
        WagerMonthly = "wager_monthly",
        /// Minutes, not money.
        SessionMinutes = "session_minutes",
    }
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// The longest window: how far back the journal is read.
pub const LONGEST_WINDOW_MS: i64 = 30 * DAY_MS;

/// What a limit measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Deposit,
    Wager,
    Loss,
    Session,
}

impl LimitName {
    pub fn measure(self) -> Measure {
        use LimitName::*;
        match self {
            DepositDaily | DepositWeekly | DepositMonthly => Measure::Deposit,
            LossDaily | LossWeekly | LossMonthly => Measure::Loss,
            WagerDaily | WagerWeekly | WagerMonthly => Measure::Wager,
            SessionMinutes => Measure::Session,
        }
    }

    /// The rolling window a money limit counts over (none for the session limit).
    pub fn window_ms(self) -> Option<i64> {
        use LimitName::*;
        match self {
            DepositDaily | LossDaily | WagerDaily => Some(DAY_MS),
            DepositWeekly | LossWeekly | WagerWeekly => Some(7 * DAY_MS),
            DepositMonthly | LossMonthly | WagerMonthly => Some(30 * DAY_MS),
            SessionMinutes => None,
        }
    }

    /// A money limit (a decimal in the client's currency), or minutes.
    pub fn is_money(self) -> bool {
        self.measure() != Measure::Session
    }
}

/// The value in force at `now`: the pending one once its time has come.
pub fn effective(row: &LimitRow, now: i64) -> Option<i64> {
    match (row.pending_set, row.pending_at) {
        (true, Some(at)) if now >= at => row.pending_value,
        _ => row.current_value,
    }
}

/// The row after the player asks for `value` (None: no limit) at `now`. Stricter applies at
/// once (and drops a waiting raise); looser waits `cooloff_ms` from now; the same value as in
/// force drops a waiting change.
pub fn change(
    old: Option<&LimitRow>,
    name: LimitName,
    value: Option<i64>,
    now: i64,
    cooloff_ms: i64,
) -> LimitRow {
    let in_force = old.and_then(|o| effective(o, now));
    let stricter = match (value, in_force) {
        (Some(v), Some(f)) => v < f,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let base = LimitRow {
        name: name.as_str().to_owned(),
        current_value: in_force,
        pending_set: false,
        pending_value: None,
        pending_at: None,
        updated_at: now,
    };
    if stricter {
        LimitRow {
            current_value: value,
            ..base
        }
    } else if value == in_force {
        base
    } else {
        LimitRow {
            pending_set: true,
            pending_value: value,
            pending_at: Some(now + cooloff_ms),
            ..base
        }
    }
}

/// How much of one money limit's window is used at `now`, and when the oldest counted
/// movement leaves the window (the first moment room frees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub used: i64,
    pub frees_at: Option<i64>,
}

/// Usage of `measure` over `window_ms` ending at `now`, from the wallet's flows.
pub fn usage(flows: &[WalletFlow], measure: Measure, window_ms: i64, now: i64) -> Usage {
    let since = now - window_ms;
    let mut used: i64 = 0;
    let mut oldest: Option<i64> = None;
    for f in flows.iter().filter(|f| f.at > since) {
        let delta = match (measure, f.kind) {
            (Measure::Deposit, JournalKind::Deposit | JournalKind::Credit) if f.amount > 0 => {
                f.amount
            }
            // A hold takes money off the wallet (negative), a release gives it back.
            (Measure::Wager | Measure::Loss, JournalKind::ProviderHold) => -f.amount,
            (Measure::Wager | Measure::Loss, JournalKind::ProviderRelease) => -f.amount,
            (Measure::Loss, JournalKind::ProviderCredit) => -f.amount,
            _ => continue,
        };
        used = used.saturating_add(delta);
        if delta > 0 {
            oldest = Some(oldest.map_or(f.at, |o: i64| o.min(f.at)));
        }
    }
    Usage {
        used,
        frees_at: oldest.map(|o| o + window_ms),
    }
}

/// The first money limit `amount` more of `measure` would break: (limit, its value, usage).
pub fn first_breach(
    limits: &[(LimitName, i64)],
    flows: &[WalletFlow],
    measure: Measure,
    amount: i64,
    now: i64,
) -> Option<(LimitName, i64, Usage)> {
    limits
        .iter()
        .filter(|(name, _)| name.measure() == measure)
        .find_map(|&(name, max)| {
            let window = name.window_ms()?;
            let u = usage(flows, measure, window, now);
            (u.used.saturating_add(amount) > max).then_some((name, max, u))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn flow(kind: JournalKind, amount: i64, at: i64) -> WalletFlow {
        WalletFlow { kind, amount, at }
    }

    #[test]
    fn lowering_applies_at_once_raising_after_the_cooloff() {
        let now = 1_000 * DAY_MS;
        let set = change(None, LimitName::DepositDaily, Some(10_000), now, DAY_MS);
        assert_eq!(effective(&set, now), Some(10_000));
        let raised = change(
            Some(&set),
            LimitName::DepositDaily,
            Some(50_000),
            now + 1,
            DAY_MS,
        );
        assert_eq!(effective(&raised, now + 2), Some(10_000));
        assert_eq!(effective(&raised, now + 1 + DAY_MS), Some(50_000));
        let lowered = change(
            Some(&raised),
            LimitName::DepositDaily,
            Some(5_000),
            now + 3,
            DAY_MS,
        );
        assert_eq!(effective(&lowered, now + 3), Some(5_000));
        assert!(
            !lowered.pending_set,
            "a lower limit drops the waiting raise"
        );
        let removed = change(
            Some(&lowered),
            LimitName::DepositDaily,
            None,
            now + 4,
            DAY_MS,
        );
        assert_eq!(effective(&removed, now + 4), Some(5_000));
        assert_eq!(effective(&removed, now + 4 + DAY_MS), None);
    }

    #[test]
    fn loss_is_transfers_in_minus_out() {
        let now = 100 * DAY_MS;
        let flows = [
            flow(JournalKind::ProviderHold, -5_000, now - 10),
            flow(JournalKind::ProviderCredit, 2_000, now - 5),
            flow(JournalKind::Deposit, 9_000, now - 20),
            flow(JournalKind::ProviderHold, -1_000, now - 2 * DAY_MS),
        ];
        assert_eq!(usage(&flows, Measure::Loss, DAY_MS, now).used, 3_000);
        assert_eq!(usage(&flows, Measure::Wager, DAY_MS, now).used, 5_000);
        assert_eq!(usage(&flows, Measure::Deposit, DAY_MS, now).used, 9_000);
        assert_eq!(usage(&flows, Measure::Wager, 7 * DAY_MS, now).used, 6_000);
        assert_eq!(
            usage(&flows, Measure::Deposit, DAY_MS, now).frees_at,
            Some(now - 20 + DAY_MS)
        );
    }

    proptest! {
        /// Whatever the history, a movement that fits every limit leaves each window's usage
        /// at or below its limit once it is counted.
        #[test]
        fn an_admitted_deposit_never_takes_a_window_past_its_limit(
            past in proptest::collection::vec((1i64..50_000, 0i64..40 * DAY_MS), 0..40),
            amount in 1i64..100_000,
            daily in 1i64..200_000,
            weekly in 1i64..500_000,
        ) {
            let now = 100 * DAY_MS;
            let flows: Vec<WalletFlow> = past.iter().map(|&(a, ago)| flow(JournalKind::Deposit, a, now - ago)).collect();
            let limits = [(LimitName::DepositDaily, daily), (LimitName::DepositWeekly, weekly)];
            if first_breach(&limits, &flows, Measure::Deposit, amount, now).is_none() {
                let mut after = flows.clone();
                after.push(flow(JournalKind::Deposit, amount, now));
                for (name, max) in limits {
                    let u = usage(&after, Measure::Deposit, name.window_ms().unwrap(), now);
                    prop_assert!(u.used <= max);
                }
            }
        }
    }
}
