//! The payment reconciler: every non-terminal payment untouched for longer than the threshold
//! is settled from the gateway's view (checkout or payout by reference, or the create request
//! sent again under its idempotency key), and stored webhook events not yet applied (a crash
//! between answering and applying) are applied. Runs at start-up (every open row) and then every
//! interval; each step is conditional, so it is safe beside live requests and other nodes.
//! `statement` compares the ledger with the gateway's report for a day.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use super::service::{PaymentError, Payments};
use crate::domain::{PaymentKind, now_ms};

/// Rows looked at per batch.
const BATCH_MAX: i64 = 500;
/// Concurrent gateway queries per batch.
const PARALLEL_MAX: usize = 32;

/// Runs forever on the current runtime.
pub async fn run(payments: Payments, interval: Duration, settle_after: Duration) {
    pass(&payments, now_ms()).await;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        pass(&payments, now_ms() - settle_after.as_millis() as i64).await;
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct PassReport {
    /// open payments looked at
    pub examined: usize,
    /// of those, now terminal
    pub settled: usize,
    /// stored webhook events applied
    pub events: usize,
}

/// One pass over payments last touched before `cutoff_ms` (until none is left that this pass
/// has not seen) and events received before it.
pub async fn pass(payments: &Payments, cutoff_ms: i64) -> PassReport {
    let mut report = PassReport::default();
    let store = payments.store();
    if let Ok(events) = store
        .unprocessed_payment_events(cutoff_ms.min(now_ms() - 1000), BATCH_MAX)
        .await
    {
        for e in &events {
            payments.process_event(e).await;
        }
        report.events = events.len();
    }
    // Each row examined is touched (`updated_at` moves past the cutoff), so the loop ends.
    let started = now_ms();
    loop {
        let rows = match store.open_payments(cutoff_ms.min(started), BATCH_MAX).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "payment reconciler cannot read open payments");
                break;
            }
        };
        metrics::gauge!(crate::metrics::PAYMENT_RECONCILER_BACKLOG).set(rows.len() as f64);
        if rows.is_empty() {
            break;
        }
        for chunk in rows.chunks(PARALLEL_MAX) {
            let results =
                futures_util::future::join_all(chunk.iter().map(|row| payments.reconcile(row)))
                    .await;
            for (row, result) in chunk.iter().zip(results) {
                report.examined += 1;
                match result {
                    Ok(now) if now.state.is_terminal() => report.settled += 1,
                    Ok(now) if now.updated_at == row.updated_at => {
                        // Nothing moved it: touch it so this pass does not take it again.
                        let _ = store.mark_payment_attempt(&row.id, None).await;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(payment = %row.id, error = %e, "payment reconcile step failed");
                        let _ = store.mark_payment_attempt(&row.id, None).await;
                    }
                }
            }
        }
        if (rows.len() as i64) < BATCH_MAX {
            break;
        }
    }
    report
}

/// One difference between the ledger and the gateway's report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Difference {
    /// missing_at_gateway, missing_in_ledger, amount_differs, fee_differs
    pub issue: &'static str,
    /// the gateway's reference (payment intent, payout)
    pub reference: String,
    pub payment_id: Option<String>,
    /// ours, minor units, signed (in positive)
    pub ledger_amount: Option<i64>,
    pub gateway_amount: Option<i64>,
    pub ledger_fee: Option<i64>,
    pub gateway_fee: Option<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Statement {
    pub gateway: String,
    /// Unix seconds, inclusive
    pub from: i64,
    /// Unix seconds, exclusive
    pub to: i64,
    pub ledger_lines: usize,
    pub gateway_lines: usize,
    pub differences: Vec<Difference>,
}

/// Compares the client's settled payments at `gateway` in `[from, to)` (Unix seconds) with the
/// gateway's balance transactions in the same window, line by line.
pub async fn statement(
    payments: &Payments,
    client_id: &str,
    gateway: &str,
    from: i64,
    to: i64,
) -> Result<Statement, PaymentError> {
    let account = payments
        .gateways()
        .account_for(payments.store(), client_id, gateway)
        .await?;
    let ours = payments
        .store()
        .settled_payments(client_id, gateway, from * 1000, to * 1000)
        .await?;
    let theirs = account
        .gateway
        .statement(from, to)
        .await
        .map_err(|e| PaymentError::Unavailable(e.to_string()))?;
    let mut by_ref: HashMap<String, &crate::store::PaymentRow> = HashMap::new();
    for p in &ours {
        if let Some(r) = &p.settlement_ref {
            by_ref.insert(r.clone(), p);
        }
    }
    let mut differences = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for line in &theirs {
        if line.kind != "charge" && line.kind != "payout" {
            continue;
        }
        let Some(p) = by_ref.get(&line.source) else {
            differences.push(Difference {
                issue: "missing_in_ledger",
                reference: line.source.clone(),
                payment_id: None,
                ledger_amount: None,
                gateway_amount: Some(line.amount),
                ledger_fee: None,
                gateway_fee: Some(line.fee),
            });
            continue;
        };
        seen.insert(line.source.clone());
        let ours_signed = match p.kind {
            PaymentKind::Deposit => p.paid_amount.unwrap_or(p.amount),
            PaymentKind::Withdrawal => -p.amount,
        };
        let issue = if ours_signed != line.amount {
            Some("amount_differs")
        } else if p.fee != line.fee {
            Some("fee_differs")
        } else {
            None
        };
        if let Some(issue) = issue {
            differences.push(Difference {
                issue,
                reference: line.source.clone(),
                payment_id: Some(p.id.clone()),
                ledger_amount: Some(ours_signed),
                gateway_amount: Some(line.amount),
                ledger_fee: Some(p.fee),
                gateway_fee: Some(line.fee),
            });
        }
    }
    for p in &ours {
        let reference = p.settlement_ref.clone().unwrap_or_default();
        if !seen.contains(&reference) {
            differences.push(Difference {
                issue: "missing_at_gateway",
                reference,
                payment_id: Some(p.id.clone()),
                ledger_amount: Some(match p.kind {
                    PaymentKind::Deposit => p.paid_amount.unwrap_or(p.amount),
                    PaymentKind::Withdrawal => -p.amount,
                }),
                gateway_amount: None,
                ledger_fee: Some(p.fee),
                gateway_fee: None,
            });
        }
    }
    Ok(Statement {
        gateway: gateway.to_owned(),
        from,
        to,
        ledger_lines: ours.len(),
        gateway_lines: theirs.len(),
        differences,
    })
}
