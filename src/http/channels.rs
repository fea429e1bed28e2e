//! A user's channels (issue 19): contact details and their verification, channel preferences
//! and language, the user's email/SMS messages; and the SMS gateway's delivery reports
//! (`POST /callbacks/sms/{client_id}`, signed like Twilio's).
//!
//! Who: reading needs what reading the user needs (`users.read`, or oneself); changing an
//! address or preferences is the user or whoever may administer them (`users.manage`);
//! verifying is the user alone (the code went to them). Each change is audited.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::auth::peer_ip;
use super::error::ApiError;
use super::extract::{Auth, Page};
use super::openapi::{BadBody, BadCredentials, Conflict, Invalid, Secured, Unavailable, Unknown};
use super::user_admin::manageable_user;
use super::users::{reachable_user, readable_user};
use super::views;
use crate::audit::Event;
use crate::auth::Caller;
use crate::channels::{self, contacts, templates};
use crate::domain::{Category, Channel, DeliveryState, rfc3339_ms};
use crate::state::AppState;
use crate::store::{ContactRow, MessageRow, UserRow};

/// A contact address and whether it is verified.
#[derive(Serialize, ToSchema)]
pub struct Contact {
    /// email or sms
    channel: String,
    address: String,
    verified: bool,
    /// RFC 3339
    verified_at: Option<String>,
    /// RFC 3339: until when the pending code is valid
    code_expires_at: Option<String>,
}

/// Whether the user takes each kind of message on one channel.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct ChannelPrefs {
    /// account and money messages (default true)
    transactional: Option<bool>,
    /// admin broadcasts (default false)
    marketing: Option<bool>,
}

/// A user's contact details, preferences and language.
#[derive(Serialize, ToSchema)]
pub struct Contacts {
    user_id: String,
    contacts: Vec<Contact>,
    email: ChannelPrefs,
    sms: ChannelPrefs,
    /// preferred message language (absent: the client's default)
    language: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutContact {
    /// an email address, or an E.164 phone number for sms
    address: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyContact {
    /// the six-digit code sent to the address
    code: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPreferences {
    email: Option<ChannelPrefs>,
    sms: Option<ChannelPrefs>,
    /// `en`, `de`, `pt-BR`, ...
    language: Option<String>,
}

/// An email or SMS message in the outbox.
#[derive(Serialize, ToSchema)]
pub struct Message {
    id: String,
    client_id: String,
    user_id: Option<String>,
    channel: String,
    template: String,
    /// transactional or marketing
    category: String,
    recipient: String,
    language: String,
    subject: String,
    text: String,
    /// queued, sending, sent, delivered, failed (the dead-letter list) or suppressed
    state: String,
    /// why it is suppressed, waiting or failed
    reason: Option<String>,
    attempts: i64,
    /// RFC 3339
    next_attempt_at: String,
    /// the SMTP Message-ID or the gateway's message id
    provider_ref: Option<String>,
    /// RFC 3339
    created_at: String,
    sent_at: Option<String>,
    delivered_at: Option<String>,
}

pub fn message_view(m: &MessageRow) -> Message {
    Message {
        id: m.id.clone(),
        client_id: m.client_id.clone(),
        user_id: m.user_id.clone(),
        channel: m.channel.to_string(),
        template: m.template.clone(),
        category: m.category.to_string(),
        recipient: m.recipient.clone(),
        language: m.language.clone(),
        subject: m.subject.clone(),
        text: m.text_body.clone(),
        state: m.state.to_string(),
        reason: m.reason.clone(),
        attempts: m.attempts,
        next_attempt_at: rfc3339_ms(m.next_attempt_at),
        provider_ref: m.provider_ref.clone(),
        created_at: rfc3339_ms(m.created_at),
        sent_at: m.sent_at.map(rfc3339_ms),
        delivered_at: m.delivered_at.map(rfc3339_ms),
    }
}

fn contact_view(c: &ContactRow) -> Contact {
    Contact {
        channel: c.channel.to_string(),
        address: c.address.clone(),
        verified: c.verified_at.is_some(),
        verified_at: c.verified_at.map(rfc3339_ms),
        code_expires_at: c.code_hash.as_ref().map(|_| rfc3339_ms(c.code_expires_at)),
    }
}

fn channel(raw: &str) -> Result<Channel, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("channel"))
}

/// The user, if the caller may change their contact details: themselves, or an administrator
/// of theirs. Platform users have none (422).
async fn changeable(state: &AppState, caller: &Caller, id: &str) -> Result<UserRow, ApiError> {
    let user = reachable_user(state, caller, id).await?;
    let user = if user.id == caller.user_id {
        user
    } else {
        manageable_user(state, caller, id).await?
    };
    if user.client_id.is_none() {
        return Err(ApiError::validation(
            "platform users have no contact details",
        ));
    }
    Ok(user)
}

async fn contacts_view(state: &AppState, user_id: &str) -> Result<Contacts, ApiError> {
    let rows = state.store.contacts(user_id).await?;
    let prefs = state.store.preferences(user_id).await?;
    let of = |ch| ChannelPrefs {
        transactional: Some(channels::opted_in(&prefs, ch, Category::Transactional)),
        marketing: Some(channels::opted_in(&prefs, ch, Category::Marketing)),
    };
    Ok(Contacts {
        user_id: user_id.to_owned(),
        contacts: rows.iter().map(contact_view).collect(),
        email: of(Channel::Email),
        sms: of(Channel::Sms),
        language: state.store.user_language(user_id).await?,
    })
}

/// A user's contact details, channel preferences and language
#[utoipa::path(get, path = "/api/v1/users/{id}/contacts", tag = "channels",
    security(("bearer" = [])),
    responses((status = 200, description = "success", body = Contacts), Secured, Unknown, Unavailable))]
pub async fn get_contacts(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = readable_user(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(contacts_view(&state, &user.id).await?))
}

/// Set a contact address (email or sms); it is unverified until the code sent to it is given
#[utoipa::path(put, path = "/api/v1/users/{id}/contacts/{channel}", tag = "channels",
    security(("bearer" = [])), request_body = PutContact,
    params(("channel" = String, Path, description = "email or sms")),
    responses((status = 200, description = "success; a code was queued to the address", body = Contact),
        Secured, Unknown, Invalid, BadBody, Unavailable))]
pub async fn put_contact(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
    body: web::Json<PutContact>,
) -> Result<HttpResponse, ApiError> {
    let (id, ch) = path.into_inner();
    let ch = channel(&ch)?;
    let user = changeable(&state, &caller, &id).await?;
    let address = contacts::parse_address(ch, &body.address)
        .map_err(|m| ApiError::validation(m).with_field("address"))?;
    let before = state.store.contact(&user.id, ch).await?;
    let now = state.channels.clock.now_ms();
    let code = contacts::new_code();
    let ttl = state.channels.code_ttl_minutes;
    let row = ContactRow {
        user_id: user.id.clone(),
        channel: ch,
        client_id: user.client_id.clone().unwrap_or_default(),
        address: address.clone(),
        verified_at: None,
        code_hash: Some(contacts::code_hash(&user.id, ch, &address, &code)),
        code_expires_at: now + i64::from(ttl) * 60_000,
        code_attempts: 0,
        updated_at: now,
    };
    state.store.put_contact(&row).await?;
    channels::send_verification(&state.store, &row, &code, ttl)
        .await
        .map_err(|e| match e {
            channels::ChannelError::Store(e) => ApiError::from(e),
            channels::ChannelError::UnknownUser => ApiError::not_found("user"),
        })?;
    Event::new("user.contact_set")
        .by(&caller)
        .client(user.client_id.as_deref())
        .target("user", &user.id)
        .before(json!({ "channel": ch, "address": before.as_ref().map(|c| &c.address), "verified": before.as_ref().is_some_and(|c| c.verified_at.is_some()) }))
        .after(json!({ "channel": ch, "address": address, "verified": false }))
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(contact_view(&row)))
}

/// Remove a contact address
#[utoipa::path(delete, path = "/api/v1/users/{id}/contacts/{channel}", tag = "channels",
    security(("bearer" = [])),
    params(("channel" = String, Path, description = "email or sms")),
    responses((status = 204, description = "removed"), Secured, Unknown, Unavailable))]
pub async fn delete_contact(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, ch) = path.into_inner();
    let ch = channel(&ch)?;
    let user = changeable(&state, &caller, &id).await?;
    let Some(before) = state.store.contact(&user.id, ch).await? else {
        return Err(ApiError::not_found("contact"));
    };
    state.store.delete_contact(&user.id, ch).await?;
    Event::new("user.contact_removed")
        .by(&caller)
        .client(user.client_id.as_deref())
        .target("user", &user.id)
        .before(json!({ "channel": ch, "address": before.address }))
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Verify a contact address with the code sent to it (the user only)
#[utoipa::path(post, path = "/api/v1/users/{id}/contacts/{channel}/verify", tag = "channels",
    security(("bearer" = [])), request_body = VerifyContact,
    params(("channel" = String, Path, description = "email or sms")),
    responses((status = 200, description = "verified", body = Contact),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable))]
pub async fn verify_contact(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
    body: web::Json<VerifyContact>,
) -> Result<HttpResponse, ApiError> {
    let (id, ch) = path.into_inner();
    let ch = channel(&ch)?;
    let user = reachable_user(&state, &caller, &id).await?;
    if user.id != caller.user_id {
        return Err(ApiError::forbidden());
    }
    let mut contact = state
        .store
        .contact(&user.id, ch)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    if contact.verified_at.is_some() {
        return Ok(HttpResponse::Ok().json(contact_view(&contact)));
    }
    let Some(pending) = contact.code_hash.clone() else {
        return Err(ApiError::conflict(
            "no_pending_code",
            "set the address again to get a code",
        ));
    };
    let now = state.channels.clock.now_ms();
    if now > contact.code_expires_at {
        return Err(ApiError::conflict(
            "code_expired",
            "the code expired: set the address again to get a new one",
        ));
    }
    if contact.code_attempts >= contacts::MAX_CODE_ATTEMPTS {
        return Err(ApiError::conflict(
            "code_attempts_exhausted",
            "too many wrong codes: set the address again to get a new one",
        ));
    }
    let given = contacts::code_hash(&user.id, ch, &contact.address, &body.code);
    if !channels::sms::signature_matches(&pending, &given) {
        state.store.count_code_attempt(&user.id, ch).await?;
        return Err(ApiError::validation("the code is wrong").with_field("code"));
    }
    if !state
        .store
        .verify_contact(&user.id, ch, &pending, now)
        .await?
    {
        return Err(ApiError::conflict(
            "no_pending_code",
            "the address changed meanwhile",
        ));
    }
    contact.verified_at = Some(now);
    contact.code_hash = None;
    Event::new("user.contact_verified")
        .by(&caller)
        .target("user", &user.id)
        .after(json!({ "channel": ch, "address": contact.address }))
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(contact_view(&contact)))
}

/// Set channel preferences (opt in or out per channel and kind) and the message language
#[utoipa::path(put, path = "/api/v1/users/{id}/channel-preferences", tag = "channels",
    security(("bearer" = [])), request_body = PutPreferences,
    responses((status = 200, description = "success", body = Contacts),
        Secured, Unknown, Invalid, BadBody, Unavailable))]
pub async fn put_preferences(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    id: web::Path<String>,
    body: web::Json<PutPreferences>,
) -> Result<HttpResponse, ApiError> {
    let user = changeable(&state, &caller, &id).await?;
    if let Some(lang) = &body.language
        && !templates::valid_language(lang)
    {
        return Err(
            ApiError::validation("language must be a tag like en, de or pt-BR")
                .with_field("language"),
        );
    }
    let before = contacts_view(&state, &user.id).await?;
    let now = state.channels.clock.now_ms();
    for (ch, prefs) in [(Channel::Email, body.email), (Channel::Sms, body.sms)] {
        let Some(prefs) = prefs else { continue };
        for (cat, value) in [
            (Category::Transactional, prefs.transactional),
            (Category::Marketing, prefs.marketing),
        ] {
            if let Some(on) = value {
                state
                    .store
                    .put_preference(&user.id, ch, cat, on, now)
                    .await?;
            }
        }
    }
    if let Some(lang) = &body.language {
        state.store.put_user_language(&user.id, lang, now).await?;
    }
    let after = contacts_view(&state, &user.id).await?;
    Event::new("user.channel_preferences")
        .by(&caller)
        .client(user.client_id.as_deref())
        .target("user", &user.id)
        .before(json!({ "email": before.email, "sms": before.sms, "language": before.language }))
        .after(json!({ "email": after.email, "sms": after.sms, "language": after.language }))
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(after))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
}

/// A user's email and SMS messages, newest first
#[utoipa::path(get, path = "/api/v1/users/{id}/messages", tag = "channels",
    security(("bearer" = [])), params(MessagesQuery),
    responses((status = 200, description = "success", body = views::Page<Message>),
        Secured, Unknown, Invalid, Unavailable))]
pub async fn user_messages(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    q: web::Query<MessagesQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::new(q.cursor.clone(), q.limit);
    let limit = page.limit()?;
    let user = readable_user(&state, &caller, &id).await?;
    let rows = state
        .store
        .user_messages(&user.id, page.cursor(), limit.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(limit.page(rows, |m| m.id.clone(), message_view)))
}

/// Delivery report from the SMS gateway (Twilio status callback, `X-Twilio-Signature`)
///
/// Applies `delivered`, `undelivered` or `failed` to the message with that `MessageSid`;
/// other statuses and repeats change nothing. A bad signature is 401.
#[utoipa::path(post, path = "/callbacks/sms/{client_id}", tag = "channels",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 204, description = "taken"),
        (status = 415, description = "body not sent as application/x-www-form-urlencoded", body = super::error::ErrorBody),
        BadCredentials, Unknown, Unavailable))]
pub async fn sms_report(
    state: web::Data<AppState>,
    req: HttpRequest,
    client_id: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let count = |outcome: &'static str| {
        metrics::counter!(crate::metrics::CHANNEL_CALLBACKS, "outcome" => outcome).increment(1);
    };
    let secret = state
        .store
        .client_secret(
            &client_id,
            channels::transport_settings::secret_name(Channel::Sms),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("client"))?;
    let sealed = crate::secrets::Sealed {
        key_id: secret.key_id,
        nonce: secret.nonce,
        ciphertext: secret.ciphertext,
    };
    let settings = state
        .secrets
        .open(&secret.id, &sealed)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .and_then(|doc| channels::transport_settings::SmsSettings::parse(&doc).ok())
        .ok_or_else(|| {
            ApiError::unavailable("sms_not_configured", "the client's SMS account is unusable")
        })?;
    let url = channels::dispatcher::status_callback_url(state.channels.callback_base(), &client_id);
    let expected = channels::sms::twilio_signature(&settings.auth_token, &url, &form);
    let received = req
        .headers()
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !channels::sms::signature_matches(&expected, received) {
        count("bad_signature");
        return Err(ApiError::unauthorized(
            "invalid_signature",
            "the signature does not match",
        ));
    }
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let (Some(sid), Some(status)) = (field("MessageSid"), field("MessageStatus")) else {
        return Err(ApiError::validation(
            "MessageSid and MessageStatus are required",
        ));
    };
    let (to, reason) = match status {
        "delivered" => (DeliveryState::Delivered, None),
        "undelivered" | "failed" => (
            DeliveryState::Failed,
            Some(format!(
                "gateway: {status} (error {})",
                field("ErrorCode").unwrap_or("none")
            )),
        ),
        _ => {
            count("duplicate");
            return Ok(HttpResponse::NoContent().finish());
        }
    };
    let now = state.channels.clock.now_ms();
    if state
        .store
        .message_report(&client_id, sid, to, reason.as_deref(), now)
        .await?
    {
        count("applied");
        channels::count(Channel::Sms, to);
    } else {
        count("duplicate");
    }
    Ok(HttpResponse::NoContent().finish())
}
