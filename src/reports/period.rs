//! A report's period: `[from, to)` cut into buckets of a granularity in a time zone. Reports
//! are summed from hourly UTC rollups, so every bucket edge must be a whole UTC hour: any zone
//! whose offset is whole hours works; a half- or quarter-hour zone (Asia/Kolkata, ...) is
//! refused at day, week and month granularity rather than approximated.

use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;

pub use crate::domain::calendar::Granularity;
use crate::domain::calendar::{HOUR_MS, local_midnight, next_edge};

/// The longest period a report covers (and so at most 9,504 hourly buckets).
pub const MAX_DAYS: i64 = 396;

/// A parsed period with its buckets (epoch ms, `[start, end)`, in order, covering it).
#[derive(Debug, Clone)]
pub struct Period {
    pub from: i64,
    pub to: i64,
    pub tz: Tz,
    pub granularity: Granularity,
    pub buckets: Vec<(i64, i64)>,
}

impl Period {
    /// `from`/`to`: RFC 3339 instants or `YYYY-MM-DD` (midnight in `tz`); `tz`: an IANA name
    /// (default UTC); `granularity` default `day`. Errors are for a 422 naming the parameter.
    pub fn parse(
        from: &str,
        to: &str,
        tz: Option<&str>,
        granularity: Option<&str>,
    ) -> Result<Self, (&'static str, String)> {
        let tz: Tz = tz
            .unwrap_or("UTC")
            .parse()
            .map_err(|_| ("tz", "tz: not an IANA time zone name".to_owned()))?;
        let granularity = Granularity::parse(granularity).map_err(|m| ("granularity", m))?;
        let from = instant(from, tz).ok_or(("from", "from: RFC 3339 or YYYY-MM-DD".to_owned()))?;
        let to = instant(to, tz).ok_or(("to", "to: RFC 3339 or YYYY-MM-DD".to_owned()))?;
        if to <= from {
            return Err(("to", "to must be after from".into()));
        }
        if to - from > MAX_DAYS * 24 * HOUR_MS {
            return Err(("to", format!("a report covers at most {MAX_DAYS} days")));
        }
        let mut buckets = Vec::new();
        let mut start = from;
        while start < to {
            let end = next_edge(start, tz, granularity).min(to);
            buckets.push((start, end));
            start = end;
        }
        for &(start, end) in &buckets {
            for edge in [start, end] {
                if edge % HOUR_MS != 0 {
                    return Err((
                        if edge == from {
                            "from"
                        } else if edge == to {
                            "to"
                        } else {
                            "tz"
                        },
                        format!(
                            "{} is not a whole UTC hour: reports are summed from hourly \
                             rollups (a half-hour time zone cannot be cut by day)",
                            crate::domain::rfc3339_ms(edge)
                        ),
                    ));
                }
            }
        }
        Ok(Self {
            from,
            to,
            tz,
            granularity,
            buckets,
        })
    }

    /// The bucket starts hourly rows can be summed into in SQL (`[from, to)` cut in
    /// contiguous buckets), or none: hour buckets already are the rows, and a few hundred
    /// buckets at most make one statement.
    pub fn sum_starts(&self) -> Vec<i64> {
        let whole = self.buckets.first().is_some_and(|b| b.0 == self.from)
            && self.buckets.last().is_some_and(|b| b.1 == self.to)
            && self.buckets.windows(2).all(|w| w[0].1 == w[1].0);
        let few = self.buckets.len() == 1
            || (self.granularity != Granularity::Hour && self.buckets.len() <= 400);
        if whole && few {
            self.buckets.iter().map(|b| b.0).collect()
        } else {
            Vec::new()
        }
    }

    /// The bucket holding `hour` (epoch ms), by index.
    pub fn bucket_of(&self, hour: i64) -> Option<usize> {
        let i = self.buckets.partition_point(|&(_, end)| end <= hour);
        (i < self.buckets.len() && self.buckets[i].0 <= hour).then_some(i)
    }
}

fn instant(text: &str, tz: Tz) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    local_midnight(date, tz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hourly_rows_are_summed_into_whole_buckets_only() {
        let p = Period::parse("2026-03-28", "2026-03-31", Some("Europe/Berlin"), None).unwrap();
        let starts: Vec<i64> = p.buckets.iter().map(|b| b.0).collect();
        assert_eq!(p.sum_starts(), starts);
        let hours = Period::parse("2026-03-28", "2026-03-29", None, Some("hour")).unwrap();
        assert_eq!(hours.buckets.len(), 24);
        assert!(hours.sum_starts().is_empty());
        let one = Period::parse(
            "2026-03-28T05:00:00Z",
            "2026-03-28T06:00:00Z",
            None,
            Some("hour"),
        )
        .unwrap();
        assert_eq!(one.sum_starts(), vec![one.from]);
        let mut gap = p.clone();
        gap.buckets.remove(1);
        assert!(gap.sum_starts().is_empty());
    }

    #[test]
    fn days_in_a_whole_hour_zone_and_refusal_of_half_hours() {
        let p = Period::parse("2026-03-01", "2026-03-03", Some("Europe/Berlin"), None).unwrap();
        assert_eq!(p.buckets.len(), 2);
        // Berlin midnight is 23:00 UTC the day before in winter.
        assert_eq!(p.from, 1_772_319_600_000);
        assert_eq!(p.buckets[0].1 - p.buckets[0].0, 24 * HOUR_MS);
        // The DST change (29 March 2026) gives a 23-hour day.
        let p = Period::parse("2026-03-29", "2026-03-30", Some("Europe/Berlin"), None).unwrap();
        assert_eq!(p.buckets[0].1 - p.buckets[0].0, 23 * HOUR_MS);
        assert_eq!(
            Period::parse("2026-03-01", "2026-03-03", Some("Asia/Kolkata"), None)
                .unwrap_err()
                .0,
            "from"
        );
        let p = Period::parse(
            "2026-01-30T00:00:00Z",
            "2026-03-02T00:00:00Z",
            None,
            Some("month"),
        )
        .unwrap();
        assert_eq!(p.buckets.len(), 3);
        let p = Period::parse("2026-03-04", "2026-03-17", None, Some("week")).unwrap();
        // Wednesday to the next Monday, a whole week, then to Tuesday.
        assert_eq!(p.buckets.len(), 3);
        assert_eq!(p.bucket_of(p.buckets[1].0 + HOUR_MS), Some(1));
        assert_eq!(p.bucket_of(p.to), None);
        assert!(Period::parse("2026-03-04", "2026-03-04", None, None).is_err());
    }
}
