//! The provider state machine's wallet-touching steps, run by the player's WalletActor so they
//! are serialized with every other mutation of that wallet and publish `balance_update`.
//!
//! Handles: [`ProviderMove`] — either the outbox step (transfer row + hold in one transaction)
//! or a conditional transition of a transfer row with the journal entry it implies.

use actix::prelude::*;
use tracing::Instrument;

use crate::actors::wallet::{WalletActor, publish_balance};
use crate::actors::wallet_registry::WalletError;
use crate::domain::{Currency, TransferState};
use crate::ledger::accounts::wallet_id;
use crate::ledger::{NewEntry, PostedEntry};
use crate::otel::TraceParent;
use crate::protection::{Check, Protection};
use crate::realtime::bus::Bus;
use crate::store::{BeginOutcome, Store, TransferRow};

#[derive(Debug, Clone)]
pub enum ProviderOp {
    /// Insert the `pending` row, and post the hold if any, in one transaction.
    Begin {
        row: Box<TransferRow>,
        hold: Option<NewEntry>,
    },
    /// Move the row from one of `from` to `to`, posting `entry`, in one transaction.
    Transition {
        id: String,
        from: Vec<TransferState>,
        to: TransferState,
        provider_balance: Option<i64>,
        error: Option<String>,
        entry: Option<NewEntry>,
    },
}

#[derive(Debug, Clone)]
pub enum ProviderMoved {
    Begun(BeginOutcome),
    /// `None`: the row had already left the `from` states; nothing was posted.
    Transitioned(Option<Option<PostedEntry>>),
}

/// Safe to resend: `Begin` is keyed by the idempotency key, `Transition` is conditional.
#[derive(Clone, Message)]
#[rtype(result = "Result<ProviderMoved, WalletError>")]
pub struct ProviderMove {
    pub store: Store,
    pub bus: Bus,
    pub op: ProviderOp,
    pub user_id: String,
    pub currency: Currency,
    /// The sender's trace position (empty while traces are off).
    pub trace: TraceParent,
    /// A transfer-in the player's protection must admit before its hold is posted (checked
    /// here, in the actor, so concurrent transfers-in of one player are decided one by one).
    pub guard: Option<(Check, Protection)>,
}

impl Handler<ProviderMove> for WalletActor {
    type Result = AtomicResponse<Self, Result<ProviderMoved, WalletError>>;

    fn handle(&mut self, msg: ProviderMove, _ctx: &mut Self::Context) -> Self::Result {
        let ProviderMove {
            store,
            bus,
            op,
            user_id,
            currency,
            trace,
            guard,
        } = msg;
        // The trace's span of this message (disabled, so free, while traces are off).
        let span = tracing::info_span!(target: crate::otel::TARGET, "wallet.provider_move", user_id = %user_id);
        trace.adopt(&span);
        AtomicResponse::new(Box::pin(
            crate::rt::InRuntime::new(
                async move {
                    let (moved, posted, kind) = match op {
                        ProviderOp::Begin { row, hold } => {
                            let kind = hold
                                .as_ref()
                                .map(|h| (h.kind.as_str(), h.client_id.clone()));
                            let decided_at = guard.as_ref().map(|(_, p)| p.now_ms());
                            let held = match &guard {
                                Some((check, protection)) => Some(protection.admit(check).await?),
                                None => None,
                            };
                            let outcome = store.begin_transfer(&row, hold.as_ref()).await?;
                            drop(held);
                            let posted = match &outcome {
                                BeginOutcome::Created(p) => p.clone(),
                                BeginOutcome::Existing(_) => None,
                            };
                            if let (BeginOutcome::Created(_), Some((_, protection))) =
                                (&outcome, &guard)
                            {
                                protection
                                    .played(&user_id, decided_at.unwrap_or_default())
                                    .await?;
                            }
                            (ProviderMoved::Begun(outcome), posted, kind)
                        }
                        ProviderOp::Transition {
                            id,
                            from,
                            to,
                            provider_balance,
                            error,
                            entry,
                        } => {
                            let kind = entry
                                .as_ref()
                                .map(|e| (e.kind.as_str(), e.client_id.clone()));
                            let moved = store
                                .transition_transfer(
                                    &id,
                                    &from,
                                    to,
                                    provider_balance,
                                    error.as_deref(),
                                    entry.as_ref(),
                                )
                                .await?;
                            let posted = moved.clone().flatten();
                            (ProviderMoved::Transitioned(moved), posted, kind)
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
