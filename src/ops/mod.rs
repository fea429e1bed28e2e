//! Maintenance commands that read the same configuration as `serve`.

/// `nashub check-ledger`: the first broken ledger invariant, or `Ok` when the books balance:
/// every journal entry sums to zero with at least two postings, every client's accounts sum
/// to zero, every balance equals its postings and its `balance_after` chain, no user below zero.
pub async fn check_ledger(store: &crate::store::Store) -> anyhow::Result<Result<(), String>> {
    let violation = store.ledger_violation().await?;
    metrics::gauge!(crate::metrics::LEDGER_IMBALANCE).set(if violation.is_some() {
        1.0
    } else {
        0.0
    });
    Ok(violation.map_or(Ok(()), Err))
}
