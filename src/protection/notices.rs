//! Messages to players about their protection: an inbox notification ([`send`], the one call
//! site), and for a money limit reached or an exclusion, the same on the player's email/SMS
//! channels (`channels::send_keyed`, best effort: the refusal or exclusion stands whatever).

use crate::domain::{new_id, now_ms, rfc3339_ms};
use crate::store::{NotificationRow, Store, StoreError};

use super::Refusal;
use crate::channels::Template;

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
    .await?;
    // Money limits only (a session limit is minutes); once per limit and window.
    let (Some(amount), Some((limit, period))) = (&refusal.limit, refusal.field.rsplit_once('_'))
    else {
        return Ok(());
    };
    let currency = match store.client(client_id).await? {
        Some(client) => client.currency.code,
        None => return Ok(()),
    };
    let key = format!(
        "{}:{}",
        refusal.field,
        refusal.resets_at.unwrap_or_default()
    );
    let vars = [
        ("limit", limit),
        ("amount", amount.as_str()),
        ("currency", currency.as_str()),
        ("period", period),
    ];
    channel(store, user_id, Template::LimitReached, &vars, &key).await;
    Ok(())
}

async fn channel(
    store: &Store,
    user_id: &str,
    template: Template,
    vars: &[(&str, &str)],
    key: &str,
) {
    if let Err(e) = crate::channels::send_keyed(store, user_id, template, vars, Some(key)).await {
        tracing::warn!(%user_id, error = %e, template = template.as_str(), "protection message not queued on channels");
    }
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
    send(store, client_id, user_id, "Exclusion confirmed", body).await?;
    let until_text = until.map_or_else(|| "permanently".to_owned(), rfc3339_ms);
    let key = format!("exclusion:{kind}:{}", until.unwrap_or_default());
    channel(
        store,
        user_id,
        Template::SelfExclusionConfirmed,
        &[("until", until_text.as_str())],
        &key,
    )
    .await;
    Ok(())
}
