//! The periodic report feed (`store/report_feed.rs` holds the why): every interval, the
//! journal entries committed since are added to the rollups in bulk, so reports find little to
//! catch up when they are asked.

use std::time::Duration;

use crate::store::Store;
use crate::store::reports::feed_job_on;

/// How many times the interval an idle feed waits at most: each run that found nothing doubles
/// the wait up to this (an idle node asked the database for waiting entries four times a second;
/// issue 22), and a run that fed anything returns to the interval. Reports catch the feed up
/// before they read, so a longer wait is never visible in them.
const IDLE_BACKOFF_MAX: u32 = 8;

pub async fn run(store: Store, every: Duration, batch: i64) {
    let mut wait = 1;
    loop {
        tokio::time::sleep(every * wait).await;
        if !feed_job_on() {
            continue;
        }
        match store.feed_reports_by(batch).await {
            Ok(0) => wait = (wait * 2).min(IDLE_BACKOFF_MAX),
            Ok(_) => wait = 1,
            // Two nodes marking the same user at once: one transaction yields, retried.
            Err(e) => tracing::warn!(error = %e, "report feed failed; retried next tick"),
        }
    }
}
