//! A client's channels, for its administrators (issue 19): template overrides, the default
//! message language, the outbox with its dead-letter list (`state=failed`) and retry, admin
//! broadcasts; and, for super admins, the client's SMTP server and SMS gateway account (sealed
//! like provider credentials, never returned).
//!
//! Who: the client's admins and super admins with `notifications.send` (other client 404, a
//! member below admin 403); transports: super admins with `clients.manage`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::auth::peer_ip;
use super::channels::{Message, message_view};
use super::client_settings::writable;
use super::error::ApiError;
use super::extract::{Auth, Page};
use super::openapi::{BadBody, Conflict, Invalid, Secured, Unavailable, Unknown};
use super::views;
use crate::access::{self, Reach};
use crate::audit::Event;
use crate::auth::Caller;
use crate::auth::permissions as perm;
use crate::channels::templates::{self, Parts, Template};
use crate::channels::transport_settings::{SmsSettings, SmtpSettings, secret_name};
use crate::domain::{Channel, DeliveryState, Role, new_id, rfc3339_ms};
use crate::secrets::Sealed;
use crate::state::AppState;
use crate::store::{ClientRow, SecretRow, TemplateRow, UserFilter};

/// The client, if the caller administers its channels.
async fn administered(state: &AppState, caller: &Caller, id: &str) -> Result<ClientRow, ApiError> {
    match access::client_reach(caller, id) {
        Reach::OtherClient => return Err(ApiError::not_found("client")),
        Reach::Outside => return Err(ApiError::forbidden()),
        Reach::Within => {}
    }
    if !caller.can(perm::NOTIFICATIONS_SEND) {
        return Err(ApiError::forbidden());
    }
    Ok(access::client(&state.store, id).await?)
}

/// A template in one language: the client's override, or the built-in text.
#[derive(Serialize, ToSchema)]
pub struct TemplateView {
    template: String,
    language: String,
    subject: String,
    text: String,
    /// absent: made from the text
    html: Option<String>,
    /// the variables it may use as {{name}}
    variables: Vec<String>,
    /// true: the client's own; false: built in
    custom: bool,
    updated_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateList {
    /// the client's default language (absent: en)
    default_language: Option<String>,
    items: Vec<TemplateView>,
}

fn builtin_view(t: Template) -> TemplateView {
    let parts = t.builtin();
    TemplateView {
        template: t.to_string(),
        language: templates::FALLBACK_LANGUAGE.into(),
        subject: parts.subject,
        text: parts.text,
        html: parts.html,
        variables: t.variables().iter().map(|v| (*v).to_owned()).collect(),
        custom: false,
        updated_at: None,
    }
}

/// Every template: the built-in English ones and the client's overrides
#[utoipa::path(get, path = "/api/v1/clients/{id}/channel-templates", tag = "channels",
    security(("bearer" = [])),
    responses((status = 200, description = "success", body = TemplateList), Secured, Unknown, Unavailable))]
pub async fn list_templates(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let client = administered(&state, &caller, &id).await?;
    let mut items: Vec<TemplateView> = Template::ALL.into_iter().map(builtin_view).collect();
    for row in state.store.channel_templates(&client.id).await? {
        let Ok(t) = row.template.parse::<Template>() else {
            continue;
        };
        items.push(TemplateView {
            template: row.template,
            language: row.language,
            subject: row.subject,
            text: row.text_body,
            html: row.html_body,
            variables: t.variables().iter().map(|v| (*v).to_owned()).collect(),
            custom: true,
            updated_at: Some(rfc3339_ms(row.updated_at)),
        });
    }
    Ok(HttpResponse::Ok().json(TemplateList {
        default_language: state.store.client_default_language(&client.id).await?,
        items,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutTemplate {
    /// 1 to 200 characters
    subject: String,
    /// 1 to 4000 characters; the SMS text and the email's plain part
    text: String,
    /// the email's HTML part (at most 20000 characters); absent: made from the text
    html: Option<String>,
}

fn parse_template_path(template: &str, language: &str) -> Result<Template, ApiError> {
    let t: Template = template
        .parse()
        .map_err(|_| ApiError::not_found("template"))?;
    if !templates::valid_language(language) {
        return Err(ApiError::validation(
            "language must be a tag like en, de or pt-BR",
        ));
    }
    Ok(t)
}

/// Override a template in one language
#[utoipa::path(put, path = "/api/v1/clients/{id}/channel-templates/{template}/{language}", tag = "channels",
    security(("bearer" = [])), request_body = PutTemplate,
    responses((status = 200, description = "success", body = TemplateView),
        Secured, Unknown, Invalid, BadBody, Unavailable))]
pub async fn put_template(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String, String)>,
    body: web::Json<PutTemplate>,
) -> Result<HttpResponse, ApiError> {
    let (id, template, language) = path.into_inner();
    let client = administered(&state, &caller, &id).await?;
    let t = parse_template_path(&template, &language)?;
    let within = |field: &str, text: &str, max: usize| {
        let n = text.chars().count();
        if n == 0 || n > max {
            Err(
                ApiError::validation(format!("{field} must be 1 to {max} characters"))
                    .with_field(field.to_owned()),
            )
        } else {
            Ok(())
        }
    };
    within("subject", &body.subject, 200)?;
    within("text", &body.text, 4000)?;
    if let Some(html) = &body.html {
        within("html", html, 20_000)?;
    }
    let parts = Parts {
        subject: body.subject.clone(),
        text: body.text.clone(),
        html: body.html.clone(),
    };
    let unknown = templates::unknown_placeholders(t, &parts);
    if !unknown.is_empty() {
        return Err(ApiError::validation(format!(
            "unknown variables {}: this template has {}",
            unknown.join(", "),
            t.variables().join(", ")
        )));
    }
    let now = state.channels.clock.now_ms();
    let row = TemplateRow {
        client_id: client.id.clone(),
        template: t.to_string(),
        language: language.clone(),
        subject: parts.subject,
        text_body: parts.text,
        html_body: parts.html,
        updated_at: now,
    };
    let before = state
        .store
        .channel_template(&client.id, t.as_str(), &language)
        .await?;
    state.store.put_channel_template(&row).await?;
    Event::new("client.channel_template")
        .by(&caller)
        .client(Some(&client.id))
        .target("channel_template", &format!("{}:{language}", t.as_str()))
        .before(json!(before.map(
            |b| json!({ "subject": b.subject, "text": b.text_body, "html": b.html_body })
        )))
        .after(json!({ "subject": row.subject, "text": row.text_body, "html": row.html_body }))
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(TemplateView {
        template: row.template,
        language: row.language,
        subject: row.subject,
        text: row.text_body,
        html: row.html_body,
        variables: t.variables().iter().map(|v| (*v).to_owned()).collect(),
        custom: true,
        updated_at: Some(rfc3339_ms(now)),
    }))
}

/// Remove a template override (the built-in text or another language applies again)
#[utoipa::path(delete, path = "/api/v1/clients/{id}/channel-templates/{template}/{language}", tag = "channels",
    security(("bearer" = [])),
    responses((status = 204, description = "removed"), Secured, Unknown, Invalid, Unavailable))]
pub async fn delete_template(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, template, language) = path.into_inner();
    let client = administered(&state, &caller, &id).await?;
    let t = parse_template_path(&template, &language)?;
    if !state
        .store
        .delete_channel_template(&client.id, t.as_str(), &language)
        .await?
    {
        return Err(ApiError::not_found("template"));
    }
    Event::new("client.channel_template_removed")
        .by(&caller)
        .client(Some(&client.id))
        .target("channel_template", &format!("{}:{language}", t.as_str()))
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutChannelSettings {
    /// the language messages fall back to before English (`en`, `de`, `pt-BR`, ...)
    default_language: String,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelSettings {
    client_id: String,
    default_language: String,
}

/// Set the client's default message language
#[utoipa::path(put, path = "/api/v1/clients/{id}/channel-settings", tag = "channels",
    security(("bearer" = [])), request_body = PutChannelSettings,
    responses((status = 200, description = "success", body = ChannelSettings),
        Secured, Unknown, Invalid, BadBody, Unavailable))]
pub async fn put_channel_settings(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    id: web::Path<String>,
    body: web::Json<PutChannelSettings>,
) -> Result<HttpResponse, ApiError> {
    let client = administered(&state, &caller, &id).await?;
    if !templates::valid_language(&body.default_language) {
        return Err(
            ApiError::validation("default_language must be a tag like en, de or pt-BR")
                .with_field("default_language"),
        );
    }
    let before = state.store.client_default_language(&client.id).await?;
    state
        .store
        .put_client_default_language(
            &client.id,
            &body.default_language,
            state.channels.clock.now_ms(),
        )
        .await?;
    Event::new("client.channel_settings")
        .by(&caller)
        .client(Some(&client.id))
        .target("client", &client.id)
        .before(json!({ "default_language": before }))
        .after(json!({ "default_language": body.default_language }))
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(ChannelSettings {
        client_id: client.id,
        default_language: body.default_language.clone(),
    }))
}

/// The transport of a channel. email (SMTP): host, port, security (none, starttls, tls),
/// username, password, from, from_name, timeout_ms. sms (Twilio protocol): base_url,
/// account_sid, auth_token, from, timeout_ms.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutTransport {
    /// sealed as one JSON document, never returned; validated first (422 naming error.field)
    #[schema(value_type = Object)]
    settings: serde_json::Map<String, serde_json::Value>,
}

/// A stored transport, as metadata only.
#[derive(Serialize, ToSchema)]
pub struct TransportInfo {
    channel: String,
    configured: bool,
    key_id: String,
    version: i64,
    updated_at: String,
}

/// Set the client's SMTP server or SMS gateway account (super admins)
#[utoipa::path(put, path = "/api/v1/clients/{id}/channels/{channel}", tag = "channels",
    security(("bearer" = [])), request_body = PutTransport,
    params(("channel" = String, Path, description = "email or sms")),
    responses((status = 200, description = "success", body = TransportInfo),
        Secured, Unknown, Invalid, BadBody, Unavailable))]
pub async fn put_transport(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
    body: web::Json<PutTransport>,
) -> Result<HttpResponse, ApiError> {
    let (id, ch) = path.into_inner();
    let client = writable(&state, &caller, &id).await?;
    let ch: Channel = ch.parse().map_err(|_| ApiError::not_found("channel"))?;
    let checked = match ch {
        Channel::Email => SmtpSettings::parse(&body.settings).map(|_| ()),
        Channel::Sms => SmsSettings::parse(&body.settings).map(|_| ()),
    };
    checked.map_err(|e| {
        ApiError::validation(format!("{} {}", e.field, e.message)).with_field(e.field)
    })?;
    let plain = serde_json::to_vec(&body.settings).map_err(|_| ApiError::internal())?;
    let now = crate::domain::now_ms();
    let name = secret_name(ch);
    let existing = state.store.client_secret(&client.id, name).await?;
    let (record_id, created_at) = existing
        .as_ref()
        .map_or_else(|| (new_id(), now), |s| (s.id.clone(), s.created_at));
    let Sealed {
        key_id,
        nonce,
        ciphertext,
    } = state.secrets.seal(&record_id, &plain);
    let row = SecretRow {
        id: record_id,
        client_id: client.id.clone(),
        name: name.to_owned(),
        key_id,
        nonce,
        ciphertext,
        created_at,
        updated_at: now,
        version: 0,
    };
    let version = state.store.put_client_secret(&row).await?;
    let fields: Vec<&String> = body.settings.keys().collect();
    Event::new("client.channel_transport")
        .by(&caller)
        .client(Some(&client.id))
        .target("client_secret", &row.id)
        .before(json!({ "configured": existing.is_some() }))
        .after(json!({ "channel": ch, "fields": fields, "key_id": row.key_id, "version": version }))
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(TransportInfo {
        channel: ch.to_string(),
        configured: true,
        key_id: row.key_id,
        version,
        updated_at: rfc3339_ms(now),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClientMessagesQuery {
    /// only this state (`failed`: the dead-letter list)
    state: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
}

/// The client's email and SMS messages, newest first (`state=failed`: the dead-letter list)
#[utoipa::path(get, path = "/api/v1/clients/{id}/messages", tag = "channels",
    security(("bearer" = [])), params(ClientMessagesQuery),
    responses((status = 200, description = "success", body = views::Page<Message>),
        Secured, Unknown, Invalid, Unavailable))]
pub async fn client_messages(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    q: web::Query<ClientMessagesQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::new(q.cursor.clone(), q.limit);
    let limit = page.limit()?;
    let client = administered(&state, &caller, &id).await?;
    let filter = q
        .state
        .as_deref()
        .map(str::parse::<DeliveryState>)
        .transpose()
        .map_err(|_| {
            ApiError::validation(format!(
                "state must be one of {}",
                DeliveryState::NAMES.join(", ")
            ))
        })?;
    let rows = state
        .store
        .client_messages(&client.id, filter, page.cursor(), limit.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(limit.page(rows, |m| m.id.clone(), message_view)))
}

/// Queue a dead-lettered (failed) message again, with fresh attempts
#[utoipa::path(post, path = "/api/v1/clients/{id}/messages/{message_id}/retry", tag = "channels",
    security(("bearer" = [])),
    responses((status = 200, description = "queued again", body = Message),
        Secured, Unknown, Conflict, Unavailable))]
pub async fn retry_message(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, message_id) = path.into_inner();
    let client = administered(&state, &caller, &id).await?;
    let message = state
        .store
        .message(&message_id)
        .await?
        .filter(|m| m.client_id == client.id)
        .ok_or_else(|| ApiError::not_found("message"))?;
    let now = state.channels.clock.now_ms();
    if !state.store.retry_message(&message.id, now).await? {
        return Err(ApiError::conflict(
            "message_not_failed",
            "only failed (dead-lettered) messages can be retried",
        ));
    }
    crate::channels::count(message.channel, DeliveryState::Queued);
    crate::channels::wake();
    Event::new("channel.message_retry")
        .by(&caller)
        .client(Some(&client.id))
        .target("channel_message", &message.id)
        .before(json!({ "state": message.state, "reason": message.reason, "attempts": message.attempts }))
        .after(json!({ "state": "queued" }))
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    // As retried (the dispatcher may already be sending it).
    let mut now_row = message;
    now_row.state = DeliveryState::Queued;
    now_row.attempts = 0;
    now_row.reason = None;
    now_row.next_attempt_at = now;
    Ok(HttpResponse::Ok().json(message_view(&now_row)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Broadcast {
    /// 1 to 200 characters
    subject: String,
    /// 1 to 4000 characters
    body: String,
}

#[derive(Serialize, ToSchema)]
pub struct BroadcastResult {
    /// players reached on at least one channel (queued or suppressed rows)
    players: usize,
    /// messages queued or recorded suppressed
    messages: usize,
}

/// Broadcast a marketing message to the client's players over email and SMS
///
/// Goes to players who opted in to marketing on a verified address; others get a
/// `suppressed` row.
#[utoipa::path(post, path = "/api/v1/clients/{id}/broadcasts", tag = "channels",
    security(("bearer" = [])), request_body = Broadcast,
    responses((status = 202, description = "queued", body = BroadcastResult),
        Secured, Unknown, Invalid, BadBody, Unavailable))]
pub async fn broadcast(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    id: web::Path<String>,
    body: web::Json<Broadcast>,
) -> Result<HttpResponse, ApiError> {
    let client = administered(&state, &caller, &id).await?;
    for (field, text, max) in [("subject", &body.subject, 200), ("body", &body.body, 4000)] {
        let n = text.trim().chars().count();
        if n == 0 || n > max {
            return Err(
                ApiError::validation(format!("{field} must be 1 to {max} characters"))
                    .with_field(field),
            );
        }
    }
    let broadcast_id = new_id();
    let (mut players, mut messages) = (0, 0);
    let mut after: Option<String> = None;
    loop {
        let page = state
            .store
            .list_users(&UserFilter {
                client_id: Some(client.id.clone()),
                role: Some(Role::Player),
                after_id: after.clone(),
                limit: 500,
                ..UserFilter::default()
            })
            .await?;
        for user in &page {
            let ids = crate::channels::send_keyed(
                &state.store,
                &user.id,
                Template::AdminBroadcast,
                &[("subject", body.subject.trim()), ("body", body.body.trim())],
                Some(&broadcast_id),
            )
            .await
            .map_err(|e| match e {
                crate::channels::ChannelError::Store(e) => ApiError::from(e),
                crate::channels::ChannelError::UnknownUser => ApiError::internal(),
            })?;
            if !ids.is_empty() {
                players += 1;
                messages += ids.len();
            }
        }
        if page.len() < 500 {
            break;
        }
        after = page.last().map(|u| u.id.clone());
    }
    Event::new("channel.broadcast")
        .by(&caller)
        .client(Some(&client.id))
        .target("broadcast", &broadcast_id)
        .after(json!({ "subject": body.subject, "players": players, "messages": messages }))
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Accepted().json(BroadcastResult { players, messages }))
}
