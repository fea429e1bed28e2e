//! Payment storage (issue 18): the `payments` outbox, verified webhook events, per-client payment
//! settings. SQL in `sql_payments.rs`, compiled per backend.

use super::{Backend, NewEntry, PostedEntry, Store, StoreResult};
use crate::domain::{PaymentKind, PaymentState};

/// One payment through a gateway, as stored.
#[derive(Debug, Clone)]
pub struct PaymentRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub kind: PaymentKind,
    pub gateway: String,
    /// The gateway account it was made with (a client's own: with its credentials version).
    pub account: String,
    /// Requested, minor units.
    pub amount: i64,
    /// What the gateway reports paid (deposits), when known.
    pub paid_amount: Option<i64>,
    pub fee: i64,
    pub state: PaymentState,
    /// The gateway's id (checkout session, payout).
    pub gateway_ref: Option<String>,
    /// The id the gateway's statement names (Stripe: the payment intent, the payout).
    pub settlement_ref: Option<String>,
    pub checkout_url: Option<String>,
    /// Withdrawals: where the gateway pays out.
    pub destination: Option<String>,
    /// Paid an amount different from the request.
    pub flagged: bool,
    pub reason: Option<String>,
    pub idempotency_key: String,
    pub request_hash: String,
    pub requested_by: String,
    pub decided_by: Option<String>,
    pub attempts: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the money moved for good (deposit credited, payout paid).
    pub settled_at: Option<i64>,
}

/// Checks made inside the transaction that creates a payment (the wallet actor serializes a
/// player's requests, so two cannot both pass a cap).
#[derive(Debug, Clone, Default)]
pub struct PaymentCaps {
    /// Start of the current day (ms): the daily total counts payments created since.
    pub day_start_ms: i64,
    pub daily_max: Option<i64>,
    /// Open withdrawals the player may have (this one included).
    pub pending_max: Option<i64>,
    /// A deposit credited after this refuses a withdrawal.
    pub deposits_settled_before_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapRefusal {
    /// The day's total (with this one) would pass the cap; `used` is what was counted.
    DailyTotal {
        used: i64,
    },
    PendingWithdrawals {
        open: i64,
    },
    DepositNotSettled,
}

#[derive(Debug, Clone)]
pub enum PaymentBegin {
    /// Row (and hold, for a withdrawal) committed now.
    Created(Option<PostedEntry>),
    /// The idempotency key was used before for the same request: that payment.
    Existing(Box<PaymentRow>),
    Refused(CapRefusal),
}

/// What a transition writes besides the state (`None`: keep the stored value).
#[derive(Debug, Clone, Default)]
pub struct PaymentChange {
    pub gateway_ref: Option<String>,
    pub settlement_ref: Option<String>,
    pub checkout_url: Option<String>,
    pub paid_amount: Option<i64>,
    pub fee: Option<i64>,
    pub flagged: Option<bool>,
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub settled_at: Option<i64>,
}

/// A listing's filters.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    /// Only players under this path (an agent's subtree).
    pub path_prefix: Option<String>,
    pub kind: Option<PaymentKind>,
    pub state: Option<PaymentState>,
    /// Ids below this (the cursor; ids are time-ordered, newest first).
    pub before_id: Option<String>,
    pub limit: i64,
}

/// A stored webhook delivery.
#[derive(Debug, Clone)]
pub struct PaymentEventRow {
    pub gateway: String,
    pub event_id: String,
    pub payment_id: Option<String>,
    pub event_type: String,
    pub payload: String,
    pub received_at: i64,
}

impl Store {
    pub async fn begin_payment(
        &self,
        row: &PaymentRow,
        hold: Option<&NewEntry>,
        caps: Option<&PaymentCaps>,
    ) -> StoreResult<PaymentBegin> {
        dispatch!(self, b => b.begin_payment(row, hold, caps, &self.audit_key).await)
    }

    /// `Some(posted)` if the payment moved from one of `from` to `to` (with `entry` posted);
    /// `None` if it had already left those states.
    pub async fn transition_payment(
        &self,
        id: &str,
        from: &[PaymentState],
        to: PaymentState,
        change: &PaymentChange,
        entry: Option<&NewEntry>,
    ) -> StoreResult<Option<Option<PostedEntry>>> {
        dispatch!(self, b => b.transition_payment(id, from, to, change, entry, &self.audit_key).await)
    }

    /// Counts one more gateway call and moves `updated_at` (the reconciler's clock).
    pub async fn mark_payment_attempt(&self, id: &str, reason: Option<&str>) -> StoreResult<()> {
        dispatch!(self, b => b.mark_payment_attempt(id, reason).await)
    }

    pub async fn payment(&self, id: &str) -> StoreResult<Option<PaymentRow>> {
        dispatch!(self, b => b.payment(id).await)
    }

    pub async fn payment_by_ref(
        &self,
        gateway: &str,
        gateway_ref: &str,
    ) -> StoreResult<Option<PaymentRow>> {
        dispatch!(self, b => b.payment_by_ref(gateway, gateway_ref).await)
    }

    /// Non-terminal payments last touched before `before_ms`, oldest first.
    pub async fn open_payments(&self, before_ms: i64, limit: i64) -> StoreResult<Vec<PaymentRow>> {
        dispatch!(self, b => b.open_payments(before_ms, limit).await)
    }

    pub async fn payments(&self, f: &PaymentFilter) -> StoreResult<Vec<PaymentRow>> {
        dispatch!(self, b => b.payments(f).await)
    }

    /// Paid payments of a client at a gateway settled in `[from_ms, to_ms)` (statements).
    pub async fn settled_payments(
        &self,
        client_id: &str,
        gateway: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<PaymentRow>> {
        dispatch!(self, b => b.settled_payments(client_id, gateway, from_ms, to_ms).await)
    }

    /// Stores a verified delivery; false when this event id was stored before.
    pub async fn insert_payment_event(&self, e: &PaymentEventRow) -> StoreResult<bool> {
        dispatch!(self, b => b.insert_payment_event(e).await)
    }

    pub async fn unprocessed_payment_events(
        &self,
        before_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<PaymentEventRow>> {
        dispatch!(self, b => b.unprocessed_payment_events(before_ms, limit).await)
    }

    pub async fn mark_payment_event_processed(
        &self,
        gateway: &str,
        event_id: &str,
    ) -> StoreResult<()> {
        dispatch!(self, b => b.mark_payment_event_processed(gateway, event_id).await)
    }

    pub async fn payment_settings(&self, client_id: &str) -> StoreResult<Option<String>> {
        dispatch!(self, b => b.payment_settings(client_id).await)
    }

    pub async fn put_payment_settings(&self, client_id: &str, text: &str) -> StoreResult<()> {
        dispatch!(self, b => b.put_payment_settings(client_id, text).await)
    }
}
