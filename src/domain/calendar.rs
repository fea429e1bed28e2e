//! Calendar buckets of report periods: hours, and days, weeks (from Monday) and months in an
//! IANA time zone, as epoch-ms edges. The reports cut periods with them (`reports::period`) and
//! the report feed files activity under the same edges (`store::report_feed`), so a bucket the
//! feed counted is exactly a bucket a report asks for.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// One hour in epoch ms: report rollups are kept per UTC hour.
pub const HOUR_MS: i64 = 3_600_000;

/// The hour bucket (its start, epoch ms) of a time.
pub const fn hour_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Granularity {
    Hour,
    Day,
    Week,
    Month,
}

impl Granularity {
    pub fn parse(text: Option<&str>) -> Result<Self, String> {
        match text.unwrap_or("day") {
            "hour" => Ok(Self::Hour),
            "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            other => Err(format!(
                "granularity {other:?}: expected hour, day, week or month"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }
}

/// Midnight of `date` in `tz` (if the zone skips midnight, the first instant of the day).
pub fn local_midnight(date: NaiveDate, tz: Tz) -> Option<i64> {
    let midnight: NaiveDateTime = date.and_hms_opt(0, 0, 0)?;
    (0..4)
        .find_map(|h| {
            tz.from_local_datetime(&(midnight + Duration::hours(h)))
                .earliest()
        })
        .map(|t| t.timestamp_millis())
}

pub fn local_date(t: i64, tz: Tz) -> NaiveDate {
    Utc.timestamp_millis_opt(t)
        .single()
        .expect("in range")
        .with_timezone(&tz)
        .date_naive()
}

/// The first day of the bucket of granularity `g` holding local date `d`.
fn first_day(d: NaiveDate, g: Granularity) -> NaiveDate {
    match g {
        Granularity::Hour | Granularity::Day => d,
        Granularity::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
        Granularity::Month => d.with_day(1).unwrap_or(d),
    }
}

/// The first bucket edge after `t`.
pub fn next_edge(t: i64, tz: Tz, g: Granularity) -> i64 {
    if g == Granularity::Hour {
        return hour_of(t) + HOUR_MS;
    }
    let local = local_date(t, tz);
    let next = match g {
        Granularity::Hour => unreachable!(),
        Granularity::Day => local.succ_opt(),
        Granularity::Week => {
            let days = 7 - local.weekday().num_days_from_monday();
            local.checked_add_signed(Duration::days(i64::from(days)))
        }
        Granularity::Month => {
            let (y, m) = if local.month() == 12 {
                (local.year() + 1, 1)
            } else {
                (local.year(), local.month() + 1)
            };
            NaiveDate::from_ymd_opt(y, m, 1)
        }
    };
    next.and_then(|d| local_midnight(d, tz))
        .filter(|&e| e > t)
        .unwrap_or(t + HOUR_MS)
}

/// The start of the bucket of granularity `g` in `tz` holding `t`: the last edge at or before it.
pub fn bucket_start(t: i64, tz: Tz, g: Granularity) -> i64 {
    if g == Granularity::Hour {
        return hour_of(t);
    }
    let start = local_midnight(first_day(local_date(t, tz), g), tz).unwrap_or(hour_of(t));
    if start <= t { start } else { hour_of(t) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_start_is_the_edge_before_and_the_next_edge_after() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 2026-03-04 (a Wednesday) 12:00 UTC.
        let t = 1_772_625_600_000;
        let day = bucket_start(t, berlin, Granularity::Day);
        assert_eq!(day, 1_772_578_800_000); // 2026-03-03T23:00Z, Berlin midnight
        assert_eq!(next_edge(day, berlin, Granularity::Day), day + 24 * HOUR_MS);
        let week = bucket_start(t, berlin, Granularity::Week);
        assert_eq!(week, day - 2 * 24 * HOUR_MS); // Monday 2 March
        let month = bucket_start(t, berlin, Granularity::Month);
        assert_eq!(month, 1_772_319_600_000); // 1 March, 2026-02-28T23:00Z
        assert_eq!(bucket_start(t + 1, berlin, Granularity::Hour), t);
        // Every hour of three months falls in the bucket whose edges surround it.
        for g in [Granularity::Day, Granularity::Week, Granularity::Month] {
            for h in 0..24 * 92 {
                let at = month + h * HOUR_MS;
                let s = bucket_start(at, berlin, g);
                assert!(s <= at && at < next_edge(s, berlin, g), "{g:?} {at}");
            }
        }
    }
}
