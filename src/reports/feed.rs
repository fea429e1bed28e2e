//! The periodic report feed (`store/report_feed.rs` holds the why): every interval, the
//! journal entries committed since are added to the rollups in bulk, so reports find little to
//! catch up when they are asked.

use std::time::Duration;

use crate::store::Store;
use crate::store::reports::feed_job_on;

pub async fn run(store: Store, every: Duration, batch: i64) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !feed_job_on() {
            continue;
        }
        if let Err(e) = store.feed_reports_by(batch).await {
            // Two nodes marking the same user at once: one transaction yields, retried.
            tracing::warn!(error = %e, "report feed failed; retried next tick");
        }
    }
}
