//! Maintenance commands that read the same configuration as `serve`.

pub mod admin;
pub mod backup;
pub mod demo;
pub mod rotate_secrets;

/// `nashub check-ledger`'s exit code when the check itself failed (0 clean, 1 imbalance,
/// 2 a start-up error such as configuration).
pub const CHECK_COULD_NOT_RUN: u8 = 3;

/// `nashub check-ledger`: the first broken ledger invariant, or `Ok` when the books balance:
/// every journal entry sums to zero with at least two postings, every client's accounts sum
/// to zero, every balance equals its postings and its `balance_after` chain, no user below zero.
/// An `Err` means the check could not run (`nashub check-ledger` exits 3 then, and
/// `ledger_check_failures_total` counts it): that is not a clean ledger.
pub async fn check_ledger(store: &crate::store::Store) -> anyhow::Result<Result<(), String>> {
    let violation = match store.ledger_violation().await {
        Ok(v) => v,
        Err(e) => {
            metrics::counter!(crate::metrics::LEDGER_CHECK_FAILURES).increment(1);
            return Err(e.into());
        }
    };
    metrics::gauge!(crate::metrics::LEDGER_IMBALANCE).set(if violation.is_some() {
        1.0
    } else {
        0.0
    });
    Ok(violation.map_or(Ok(()), Err))
}

/// Runs the ledger check every `every` for the life of the hub, so the `ledger_imbalance`
/// metric mirrors `nashub check-ledger` (it reads whole tables: keep the period long).
pub fn spawn_ledger_watch(store: crate::store::Store, every: std::time::Duration) {
    if every.is_zero() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match check_ledger(&store).await {
                Ok(Ok(())) => {}
                Ok(Err(violation)) => tracing::error!(%violation, "ledger violation"),
                Err(e) => tracing::error!(error = %e, "ledger check could not run"),
            }
        }
    });
}
