//! What payments tell the player on their other channels (issue 19's email/SMS): called once
//! per payment and terminal state, after its money moved. Player protection is checked in
//! `service.rs` itself (a deposit request is refused before anything is stored).

use crate::channels::{self, Template};
use crate::domain::{PaymentKind, PaymentState};
use crate::store::{PaymentRow, Store};

/// Queues "deposit confirmed", "withdrawal paid" or "withdrawal rejected" (a failed payout
/// too: the money is back in the wallet); keyed by payment and state, so a replayed webhook or
/// a reconciler pass after a crash queues nothing twice. Best effort: the money is safe
/// whatever happens here, so a failure is logged, not returned.
pub async fn payment_settled(store: &Store, payment: &PaymentRow) {
    let template = match (payment.kind, payment.state) {
        (PaymentKind::Deposit, PaymentState::Paid) => Template::DepositConfirmed,
        (PaymentKind::Withdrawal, PaymentState::Paid) => Template::WithdrawalPaid,
        (PaymentKind::Withdrawal, PaymentState::Rejected | PaymentState::Failed) => {
            Template::WithdrawalRejected
        }
        // The player ended it (cancelled) or never paid (expired, failed checkout).
        _ => return,
    };
    let currency = match store.client(&payment.client_id).await {
        Ok(Some(client)) => client.currency,
        other => {
            tracing::warn!(payment_id = %payment.id, ?other, "payment message not queued: no client");
            return;
        }
    };
    let amount = currency.format(payment.paid_amount.unwrap_or(payment.amount));
    let reason = payment.reason.clone().unwrap_or_default();
    let key = format!("payment:{}:{}", payment.id, payment.state.as_str());
    let vars = [
        ("amount", amount.as_str()),
        ("currency", currency.code.as_str()),
        ("reference", payment.id.as_str()),
        ("reason", reason.as_str()),
    ];
    if let Err(e) = channels::send_keyed(store, &payment.user_id, template, &vars, Some(&key)).await
    {
        tracing::warn!(payment_id = %payment.id, error = %e, "payment message not queued");
    }
}
