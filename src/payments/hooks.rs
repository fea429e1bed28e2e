//! Call sites left for the parts built beside payments (issue 19). Each is called once, at the
//! one place its event happens; they do nothing yet.

use crate::store::{PaymentRow, Store};

/// Player protection: may this player deposit `amount` (minor units) now? Called on every
/// deposit request before anything is stored; `Err(message)` refuses it (422
/// `deposit_limit_exceeded`).
pub async fn check_deposit_allowed(
    _store: &Store,
    _client_id: &str,
    _user_id: &str,
    _amount: i64,
) -> Result<(), String> {
    Ok(())
}

/// Channels (email/SMS): the payment reached a state the player hears about ("deposit
/// confirmed", "withdrawal paid", "withdrawal rejected", failures). Called once per payment and
/// terminal state, after its money moved; best effort (the money is already safe).
pub async fn payment_settled(_store: &Store, _payment: &PaymentRow) {}
