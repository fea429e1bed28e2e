//! The payment steps that touch a wallet, run by the player's WalletActor: serialized with
//! every other mutation of that wallet (so caps read in a step hold for it) and publishing
//! `balance_update` after commit.

use actix::prelude::*;
use tracing::Instrument;

use crate::actors::wallet::{WalletActor, publish_balance};
use crate::domain::{Currency, PaymentState};
use crate::ledger::accounts::wallet_id;
use crate::ledger::{NewEntry, PostedEntry};
use crate::otel::TraceParent;
use crate::realtime::bus::Bus;
use crate::store::{PaymentBegin, PaymentCaps, PaymentChange, PaymentRow, Store, StoreError};

#[derive(Debug, Clone)]
pub enum PaymentOp {
    /// Insert the row (with the hold, for a withdrawal) after checking `caps`, in one
    /// transaction.
    Begin {
        row: Box<PaymentRow>,
        hold: Option<NewEntry>,
        caps: Option<PaymentCaps>,
    },
    /// Move the row from one of `from` to `to`, posting `entry`, in one transaction.
    Transition {
        id: String,
        from: Vec<PaymentState>,
        to: PaymentState,
        change: Box<PaymentChange>,
        entry: Option<NewEntry>,
    },
}

#[derive(Debug, Clone)]
pub enum PaymentMoved {
    Begun(PaymentBegin),
    /// `None`: the row had already left the `from` states; nothing was posted.
    Transitioned(Option<Option<PostedEntry>>),
}

/// Safe to resend: `Begin` is keyed by the idempotency key, `Transition` is conditional.
#[derive(Clone, Message)]
#[rtype(result = "Result<PaymentMoved, StoreError>")]
pub struct PaymentMove {
    pub store: Store,
    pub bus: Bus,
    pub op: PaymentOp,
    pub user_id: String,
    pub currency: Currency,
    /// The sender's trace position (empty while traces are off).
    pub trace: TraceParent,
}

impl Handler<PaymentMove> for WalletActor {
    type Result = AtomicResponse<Self, Result<PaymentMoved, StoreError>>;

    fn handle(&mut self, msg: PaymentMove, _ctx: &mut Self::Context) -> Self::Result {
        let PaymentMove {
            store,
            bus,
            op,
            user_id,
            currency,
            trace,
        } = msg;
        // The trace's span of this message (disabled, so free, while traces are off).
        let span = tracing::info_span!(target: crate::otel::TARGET, "wallet.payment_move", user_id = %user_id);
        trace.adopt(&span);
        AtomicResponse::new(Box::pin(
            crate::rt::InRuntime::new(
                async move {
                    let (moved, posted, kind) = match op {
                        PaymentOp::Begin { row, hold, caps } => {
                            let kind = hold
                                .as_ref()
                                .map(|h| (h.kind.as_str(), h.client_id.clone()));
                            let outcome = store
                                .begin_payment(&row, hold.as_ref(), caps.as_ref())
                                .await?;
                            let posted = match &outcome {
                                PaymentBegin::Created(p) => p.clone(),
                                _ => None,
                            };
                            (PaymentMoved::Begun(outcome), posted, kind)
                        }
                        PaymentOp::Transition {
                            id,
                            from,
                            to,
                            change,
                            entry,
                        } => {
                            let kind = entry
                                .as_ref()
                                .map(|e| (e.kind.as_str(), e.client_id.clone()));
                            let moved = store
                                .transition_payment(&id, &from, to, &change, entry.as_ref())
                                .await?;
                            let posted = moved.clone().flatten();
                            (PaymentMoved::Transitioned(moved), posted, kind)
                        }
                    };
                    if let (Some(posted), Some((kind, client))) = (posted, kind) {
                        metrics::counter!(
                            crate::metrics::BALANCE_TRANSFERS,
                            "client_id" => crate::metrics::client_label(&client),
                            "transfer_type" => kind
                        )
                        .increment(1);
                        publish_balance(&bus, &posted, &user_id, &wallet_id(&user_id), &currency);
                    }
                    Ok(moved)
                }
                .instrument(span),
            )
            .into_actor(self),
        ))
    }
}
