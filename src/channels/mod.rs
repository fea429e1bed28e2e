//! Channels (issue 19): email and SMS beside the websocket. Users' verified contact details and
//! per-channel preferences decide where a message goes; templates (built-in English, per-client
//! overrides, a language fallback) render it once, into the outbox (`channel_messages`); each
//! node's dispatcher sends due rows under a lease, with retries, backoff, rate limits and a
//! dead-letter list (`failed`).
//!
//! The one entry point for other parts of the hub is [`send`] (and [`send_keyed`] for an event
//! that may be reported twice): `channels::send(&store, user_id, Template::DepositConfirmed,
//! &[("amount", "10.00"), ("currency", "USD"), ("reference", id)])`.

pub mod contacts;
pub mod dispatcher;
pub mod email;
pub mod security;
pub mod sim;
pub mod sms;
pub mod templates;
pub mod transport_settings;

use std::sync::LazyLock;

use tokio::sync::Notify;

pub use templates::Template;

use crate::domain::{Category, Channel, DeliveryState, new_id, now_ms};
use crate::store::{ContactRow, MessageRow, Store, StoreError};

/// A send attempt that failed; `permanent` ones are not retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub permanent: bool,
    pub reason: String,
}

impl SendError {
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            permanent: true,
            reason: reason.into(),
        }
    }

    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            permanent: false,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("unknown user")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Wakes this process's dispatchers when a message is queued.
pub(crate) static WAKE: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Queues `template` for a user on every channel they have an address on: `queued` when the
/// address is verified and the user takes this category there, else recorded `suppressed`
/// (reason `unverified` or `preference`). Returns the queued and suppressed rows' ids. Platform
/// users and users without addresses get nothing. `brand` (the client's name) is added to
/// `vars`.
pub async fn send(
    store: &Store,
    user_id: &str,
    template: Template,
    vars: &[(&str, &str)],
) -> Result<Vec<String>, ChannelError> {
    send_keyed(store, user_id, template, vars, None).await
}

/// [`send`] once per `key` (per client): a caller that may report one event twice (a retried
/// webhook, a restart) passes the event's id, and the second call queues nothing.
pub async fn send_keyed(
    store: &Store,
    user_id: &str,
    template: Template,
    vars: &[(&str, &str)],
    key: Option<&str>,
) -> Result<Vec<String>, ChannelError> {
    let user = store
        .user(user_id)
        .await?
        .ok_or(ChannelError::UnknownUser)?;
    let Some(client_id) = user.client_id.as_deref() else {
        return Ok(Vec::new());
    };
    let contacts = store.contacts(user_id).await?;
    if contacts.is_empty() {
        return Ok(Vec::new());
    }
    let preferences = store.preferences(user_id).await?;
    let category = template.category();
    // A player on a time-out or self-excluded gets no marketing, whatever they opted into.
    let excluded = category == crate::domain::Category::Marketing
        && store
            .player_protection(user_id)
            .await?
            .is_some_and(|p| p.excluded_at(crate::domain::now_ms()));
    let mut rows = Vec::new();
    for contact in &contacts {
        let (state, reason) = if contact.verified_at.is_none() {
            (DeliveryState::Suppressed, Some("unverified"))
        } else if excluded {
            (DeliveryState::Suppressed, Some("excluded"))
        } else if !opted_in(&preferences, contact.channel, category) {
            (DeliveryState::Suppressed, Some("preference"))
        } else {
            (DeliveryState::Queued, None)
        };
        let mut row = render_row(store, client_id, user_id, contact, template, vars).await?;
        row.state = state;
        row.reason = reason.map(str::to_owned);
        row.dedupe_key = key.map(|k| format!("{}:{k}:{}", template.as_str(), contact.channel));
        rows.push(row);
    }
    queue(store, rows).await
}

/// Queues the verification code for a just-set address (whatever its preferences say: it is
/// how the address becomes usable).
pub(crate) async fn send_verification(
    store: &Store,
    contact: &ContactRow,
    code: &str,
    minutes: u32,
) -> Result<String, ChannelError> {
    let minutes = minutes.to_string();
    let row = render_row(
        store,
        &contact.client_id,
        &contact.user_id,
        contact,
        Template::VerifyContact,
        &[("code", code), ("minutes", &minutes)],
    )
    .await?;
    let id = row.id.clone();
    queue(store, vec![row]).await?;
    Ok(id)
}

async fn queue(store: &Store, rows: Vec<MessageRow>) -> Result<Vec<String>, ChannelError> {
    if rows.is_empty() || !store.insert_messages(&rows).await? {
        return Ok(Vec::new());
    }
    for row in &rows {
        count(row.channel, row.state);
    }
    if rows.iter().any(|r| r.state == DeliveryState::Queued) {
        WAKE.notify_waiters();
    }
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// `channel_messages_total{channel,state}` one up.
pub(crate) fn count(channel: Channel, state: DeliveryState) {
    metrics::counter!(
        crate::metrics::CHANNEL_MESSAGES,
        "channel" => channel.as_str(),
        "state" => state.as_str()
    )
    .increment(1);
}

/// Whether the user takes `category` on `channel`: transactional unless opted out,
/// marketing only when opted in.
pub fn opted_in(
    preferences: &[(Channel, Category, bool)],
    channel: Channel,
    category: Category,
) -> bool {
    preferences
        .iter()
        .find(|(ch, cat, _)| *ch == channel && *cat == category)
        .map_or(category == Category::Transactional, |(_, _, on)| *on)
}

/// The template's parts in the first language of the chain that has them: the client's
/// override, else (English) the built-in text.
pub async fn resolve(
    store: &Store,
    client_id: &str,
    template: Template,
    chain: &[String],
) -> Result<(String, templates::Parts), StoreError> {
    for language in chain {
        if let Some(t) = store
            .channel_template(client_id, template.as_str(), language)
            .await?
        {
            return Ok((
                language.clone(),
                templates::Parts {
                    subject: t.subject,
                    text: t.text_body,
                    html: t.html_body,
                },
            ));
        }
        if language == templates::FALLBACK_LANGUAGE {
            break;
        }
    }
    Ok((templates::FALLBACK_LANGUAGE.to_owned(), template.builtin()))
}

async fn render_row(
    store: &Store,
    client_id: &str,
    user_id: &str,
    contact: &ContactRow,
    template: Template,
    vars: &[(&str, &str)],
) -> Result<MessageRow, StoreError> {
    let user_language = store.user_language(user_id).await?;
    let client_language = store.client_default_language(client_id).await?;
    let chain = templates::language_chain(user_language.as_deref(), client_language.as_deref());
    let (language, parts) = resolve(store, client_id, template, &chain).await?;
    let brand = store
        .client(client_id)
        .await?
        .map(|c| c.name)
        .unwrap_or_default();
    let mut all: Vec<(&str, &str)> = vars.to_vec();
    all.push(("brand", &brand));
    let rendered = templates::render(&parts, &all);
    let now = now_ms();
    Ok(MessageRow {
        id: new_id(),
        client_id: client_id.to_owned(),
        user_id: Some(user_id.to_owned()),
        channel: contact.channel,
        template: template.as_str().to_owned(),
        category: template.category(),
        recipient: contact.address.clone(),
        language,
        subject: truncate(&rendered.subject, 255),
        text_body: rendered.text,
        html_body: (contact.channel == Channel::Email).then_some(rendered.html),
        state: DeliveryState::Queued,
        reason: None,
        attempts: 0,
        next_attempt_at: now,
        lease_owner: None,
        lease_until: 0,
        provider_ref: None,
        dedupe_key: None,
        created_at: now,
        updated_at: now,
        sent_at: None,
        delivered_at: None,
    })
}

/// At most `max` characters (a column's width).
pub fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// What HTTP handlers need of the channels: their clock, the verification code lifetime and
/// the base of the URLs gateways report deliveries to.
#[derive(Debug, Default)]
pub struct Runtime {
    pub clock: crate::domain::Clock,
    pub code_ttl_minutes: u32,
    callback_base: std::sync::OnceLock<String>,
}

impl Runtime {
    pub fn new(clock: crate::domain::Clock, code_ttl_minutes: u32) -> Self {
        Self {
            clock,
            code_ttl_minutes,
            callback_base: std::sync::OnceLock::new(),
        }
    }

    /// Set once the hub knows where it listens (or from `channel_callback_base_url`).
    pub fn set_callback_base(&self, base: &str) {
        let _ = self
            .callback_base
            .set(base.trim_end_matches('/').to_owned());
    }

    pub fn callback_base(&self) -> &str {
        self.callback_base.get().map_or("", String::as_str)
    }
}

/// Wakes this process's dispatchers (a message was queued or re-queued).
pub fn wake() {
    WAKE.notify_waiters();
}
