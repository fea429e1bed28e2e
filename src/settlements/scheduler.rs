//! Scheduled settlement (issue 21): every node runs [`run`]; each tick, whoever takes the
//! `settlement_scheduler` lease (a row in `job_leases`, one conditional `UPDATE`) settles, for
//! every active client with a `settlement_schedule`, each period of the schedule (midnight to
//! midnight in the client's `timezone`; weeks from Monday; months from the 1st) that ended at
//! least `settlement_grace_secs` ago and is not settled yet. Periods continue from the client's
//! newest settlement (manual ones included); a client without one starts with the last closed
//! period. The lease makes one node do the work; the settlement's key (`schedule:<start>`) and
//! its period (unique per client) make a second run of the same period, by any node, answer the
//! first settlement instead of paying again. Scheduled settlements leave their commission lines
//! `calculated` for operators to approve and pay; the revenue share is posted at once.

use std::time::Duration;

use chrono::{Datelike, NaiveDate, TimeZone};
use chrono_tz::Tz;

use super::service::{self, SettleRequest};
use crate::actors::wallet_registry::WalletRegistry;
use crate::clients::settings::Settings;
use crate::domain::{new_id, now_ms};
use crate::store::Store;

pub const LEASE: &str = "settlement_scheduler";
/// The most periods one client catches up in one tick.
const MAX_PERIODS_PER_TICK: usize = 62;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    Daily,
    Weekly,
    Monthly,
}

impl Schedule {
    pub fn parse(text: &str) -> Option<Schedule> {
        match text {
            "daily" => Some(Schedule::Daily),
            "weekly" => Some(Schedule::Weekly),
            "monthly" => Some(Schedule::Monthly),
            _ => None,
        }
    }

    /// The first local day of the period holding `day`.
    fn first_day(self, day: NaiveDate) -> NaiveDate {
        match self {
            Schedule::Daily => day,
            Schedule::Weekly => {
                day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday()))
            }
            Schedule::Monthly => day.with_day(1).unwrap_or(day),
        }
    }

    /// The first local day of the next period.
    fn next_first_day(self, first: NaiveDate) -> NaiveDate {
        match self {
            Schedule::Daily => first + chrono::Days::new(1),
            Schedule::Weekly => first + chrono::Days::new(7),
            Schedule::Monthly => first + chrono::Months::new(1),
        }
    }
}

/// Local midnight of `day` in `tz` (ms). A midnight skipped by a DST change is the first
/// instant of the day that exists.
fn midnight(tz: Tz, day: NaiveDate) -> i64 {
    let mut local = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return t.timestamp_millis();
        }
        local += chrono::Duration::minutes(30);
    }
    tz.from_utc_datetime(&local).timestamp_millis()
}

fn local_day(tz: Tz, ms: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&tz)
        .date_naive()
}

/// The period `[start, end)` holding instant `ms`.
pub fn period_of(schedule: Schedule, tz: Tz, ms: i64) -> (i64, i64) {
    let first = schedule.first_day(local_day(tz, ms));
    (
        midnight(tz, first),
        midnight(tz, schedule.next_first_day(first)),
    )
}

/// The periods to settle now: from `last_end` (the client's newest settlement's end) or, with
/// none, the last closed period, up to the last period ending at or before `closed_before`.
pub fn due_periods(
    schedule: Schedule,
    tz: Tz,
    last_end: Option<i64>,
    closed_before: i64,
) -> Vec<(i64, i64)> {
    // The end of the last closed period: the start of the period holding `closed_before`,
    // unless `closed_before` is exactly a boundary.
    let (holding_start, _) = period_of(schedule, tz, closed_before);
    let last_closed_end = holding_start;
    let mut start = match last_end {
        Some(end) if end >= last_closed_end => return Vec::new(),
        Some(end) => end,
        None => period_of(schedule, tz, last_closed_end - 1).0,
    };
    let mut out = Vec::new();
    while start < last_closed_end && out.len() < MAX_PERIODS_PER_TICK {
        let (_, end) = period_of(schedule, tz, start);
        let end = end.min(last_closed_end);
        out.push((start, end));
        start = end;
    }
    out
}

/// Every node's loop: try the lease, settle what is due while holding it.
pub async fn run(store: Store, wallets: WalletRegistry, every: Duration, grace_secs: i64) {
    let node = new_id();
    let ttl = i64::try_from(every.as_millis().saturating_mul(3))
        .unwrap_or(i64::MAX)
        .max(3_000);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match store.take_lease(LEASE, &node, now_ms(), ttl).await {
            Ok(true) => tick(&store, &wallets, grace_secs).await,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "settlement scheduler: lease not taken"),
        }
    }
}

/// One pass over the clients (public for tests and the lease holder).
pub async fn tick(store: &Store, wallets: &WalletRegistry, grace_secs: i64) {
    let clients = match store.clients_with_settings().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "settlement scheduler: clients not read");
            return;
        }
    };
    for (client_id, text) in clients {
        let settings: Settings = match text {
            Some(t) => match serde_json::from_str(&t) {
                Ok(s) => s,
                Err(_) => continue,
            },
            None => continue,
        };
        let (Some(schedule), Ok(tz)) = (
            Schedule::parse(&settings.settlement_schedule),
            settings.timezone.parse::<Tz>(),
        ) else {
            continue;
        };
        if let Err(e) = settle_client(
            store, wallets, &client_id, &settings, schedule, tz, grace_secs,
        )
        .await
        {
            tracing::warn!(client = %client_id, error = %e, "scheduled settlement failed");
        }
    }
}

async fn settle_client(
    store: &Store,
    wallets: &WalletRegistry,
    client_id: &str,
    settings: &Settings,
    schedule: Schedule,
    tz: Tz,
    grace_secs: i64,
) -> anyhow::Result<()> {
    let Some(client) = store.client(client_id).await? else {
        return Ok(());
    };
    let last_end = store
        .settlements(client_id, None, 1)
        .await?
        .first()
        .map(|s| s.period_end);
    let closed_before = now_ms() - grace_secs.max(0) * 1000;
    for (start, end) in due_periods(schedule, tz, last_end, closed_before) {
        let settled = service::settle(
            store,
            wallets,
            SettleRequest {
                created_by: "scheduler",
                client: &client,
                period_start: start,
                period_end: end,
                idempotency_key: format!("schedule:{start}"),
                ip: None,
                commission_rate: &settings.commission_rate,
                revenue_share_rate: &settings.revenue_share_rate,
                commission_basis: &settings.commission_basis,
                grace_secs,
                carry_over: settings.commission_negative_carryover,
                origin: "scheduled",
                pay_now: false,
            },
        )
        .await?;
        tracing::info!(client = %client_id, settlement = %settled.settlement.header.id, "scheduled settlement");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn periods_follow_the_client_time_zone() {
        let manila: Tz = "Asia/Manila".parse().unwrap();
        assert_eq!(
            period_of(Schedule::Daily, manila, at("2026-03-10T17:00:00Z")),
            (at("2026-03-10T16:00:00Z"), at("2026-03-11T16:00:00Z"))
        );
        assert_eq!(
            period_of(Schedule::Weekly, Tz::UTC, at("2026-03-12T10:00:00Z")),
            (at("2026-03-09T00:00:00Z"), at("2026-03-16T00:00:00Z"))
        );
        assert_eq!(
            period_of(Schedule::Monthly, Tz::UTC, at("2026-02-12T10:00:00Z")),
            (at("2026-02-01T00:00:00Z"), at("2026-03-01T00:00:00Z"))
        );
        // A DST day is 23 hours long.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let (s, e) = period_of(Schedule::Daily, berlin, at("2026-03-29T12:00:00Z"));
        assert_eq!(e - s, 23 * 3600 * 1000);
    }

    #[test]
    fn due_periods_continue_from_the_last_settlement() {
        let now = at("2026-03-12T10:00:00Z");
        assert_eq!(
            due_periods(Schedule::Daily, Tz::UTC, None, now),
            vec![(at("2026-03-11T00:00:00Z"), at("2026-03-12T00:00:00Z"))]
        );
        let from = at("2026-03-09T12:00:00Z");
        assert_eq!(
            due_periods(Schedule::Daily, Tz::UTC, Some(from), now),
            vec![
                (from, at("2026-03-10T00:00:00Z")),
                (at("2026-03-10T00:00:00Z"), at("2026-03-11T00:00:00Z")),
                (at("2026-03-11T00:00:00Z"), at("2026-03-12T00:00:00Z")),
            ]
        );
        assert!(
            due_periods(
                Schedule::Daily,
                Tz::UTC,
                Some(at("2026-03-12T00:00:00Z")),
                now
            )
            .is_empty()
        );
    }
}
