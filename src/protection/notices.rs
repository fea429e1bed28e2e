//! Messages to players about their protection, stored as inbox notifications. The email/SMS
//! channels (issue 19, other half) hook in here: every message a player should also receive
//! by another channel goes through [`send`], the one call site.

use crate::domain::{new_id, now_ms, rfc3339_ms};
use crate::store::{NotificationRow, Store, StoreError};

use super::Refusal;

/// Sender of protection notices.
pub const SENDER: &str = "system:protection";

/// THE call site for protection messages (limit reached, exclusion confirmed, TOTP
/// enrolment/reset): an inbox notification now; channels may fan it out from here.
pub async fn send(
    store: &Store,
    client_id: &str,
    user_id: &str,
    title: &str,
    body: String,
) -> Result<(), StoreError> {
    store
        .insert_notification(&NotificationRow {
            id: new_id(),
            client_id: client_id.to_owned(),
            user_id: Some(user_id.to_owned()),
            sender_id: SENDER.to_owned(),
            title: title.to_owned(),
            body,
            created_at: now_ms(),
            read_at: None,
        })
        .await
}

pub async fn limit_reached(
    store: &Store,
    client_id: &str,
    user_id: &str,
    refusal: &Refusal,
) -> Result<(), StoreError> {
    send(
        store,
        client_id,
        user_id,
        "Limit reached",
        refusal.message.clone(),
    )
    .await
}

pub async fn exclusion_confirmed(
    store: &Store,
    client_id: &str,
    user_id: &str,
    kind: &str,
    until: Option<i64>,
) -> Result<(), StoreError> {
    let body = match until {
        Some(t) => format!("Your {kind} is in force until {}.", rfc3339_ms(t)),
        None => format!("Your {kind} is in force permanently."),
    };
    send(store, client_id, user_id, "Exclusion confirmed", body).await
}
