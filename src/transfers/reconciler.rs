//! Reconciler: finishes provider transfers left `pending` (a crash or a failed step between the
//! outbox commit and the answer) or `unknown` (timeouts, unclear answers) by asking the provider
//! by serial number. Runs at start-up (every open row, whatever its age) and then every
//! interval (with a pull of providers' round records); each resolution is a conditional transition, so it is safe beside a live request
//! or another node's reconciler.

use std::time::Duration;

use super::service::Providers;
use crate::domain::now_ms;

/// Rows looked at per pass.
const BATCH_MAX: i64 = 200;
/// Concurrent status queries per pass.
const PARALLEL_MAX: usize = 16;

/// Runs forever on the current runtime.
pub async fn run(providers: Providers, interval: Duration, settle_after: Duration) {
    // First pass at start-up: every non-terminal row is picked up again.
    pass(&providers, now_ms()).await;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let cutoff = now_ms() - settle_after.as_millis() as i64;
        pass(&providers, cutoff).await;
        // Provider records are the source of truth for game results; callbacks only come sooner.
        providers.pull_pass().await;
    }
}

/// One pass over open rows last touched before `cutoff_ms`; returns how many it resolved.
pub async fn pass(providers: &Providers, cutoff_ms: i64) -> usize {
    let rows = match providers.store().open_transfers(cutoff_ms, BATCH_MAX).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "reconciler cannot read open transfers");
            return 0;
        }
    };
    metrics::gauge!(crate::metrics::RECONCILER_BACKLOG).set(rows.len() as f64);
    let mut resolved = 0;
    for chunk in rows.chunks(PARALLEL_MAX) {
        let results =
            futures_util::future::join_all(chunk.iter().map(|row| providers.reconcile(row))).await;
        for (row, result) in chunk.iter().zip(results) {
            match result {
                Ok(Some(status)) => {
                    resolved += 1;
                    tracing::info!(transfer = %row.id, state = %status.state, "reconciled provider transfer");
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(transfer = %row.id, error = %e, "reconciler step failed"),
            }
        }
    }
    resolved
}
