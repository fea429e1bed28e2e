//! `/api/v1/notifications` and `/api/v1/users/{id}/notifications` (issue 5): admins send a
//! notice to one user or to a whole client; it is stored, then pushed live on the bus as a
//! `notification` frame in room `user:<id>` or `client:<cid>`.
//!
//! Read state is per reader: a user notice is read by its user; a client-wide notice is read by
//! each member of that client on their own (marking it read hides it from that member's
//! `unread=true` listing only). Members see every notice of their client, including those sent
//! before they joined.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{Auth, Page};
use super::users::reachable_user;
use super::views;
use crate::access;
use crate::auth::permissions;
use crate::domain::{new_id, now_ms, rfc3339_ms};
use crate::realtime::bus::{Event, EventKind};
use crate::state::AppState;
use crate::store::{NotificationQuery, NotificationRow};

pub const TITLE_MAX_CHARS: usize = 200;
pub const BODY_MAX_CHARS: usize = 4000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    room: Option<String>,
    user_id: Option<String>,
    title: String,
    body: String,
}

#[derive(Deserialize)]
pub struct ListQuery {
    unread: Option<bool>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// Who a notice goes to, once authorized.
enum Target {
    User { user_id: String, client_id: String },
    Client { client_id: String },
}

fn text(field: &str, raw: &str, max_chars: usize) -> Result<String, ApiError> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars == 0 || chars > max_chars {
        return Err(ApiError::validation(format!(
            "{field} must be 1 to {max_chars} characters"
        )));
    }
    Ok(trimmed.to_owned())
}

/// The notice as the API shows it.
pub fn view(n: &NotificationRow) -> Value {
    json!({
        "id": n.id,
        "room": n.room(),
        "client_id": n.client_id,
        "user_id": n.user_id,
        "sender_id": n.sender_id,
        "title": n.title,
        "body": n.body,
        "created_at": rfc3339_ms(n.created_at),
        "read": n.read_at.is_some(),
        "read_at": n.read_at.map(rfc3339_ms),
    })
}

async fn target(
    state: &AppState,
    caller: &crate::auth::Caller,
    body: &SendBody,
) -> Result<Target, ApiError> {
    let user_id = match (&body.room, &body.user_id) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::validation("send exactly one of room and user_id"));
        }
        (None, Some(user_id)) => user_id.clone(),
        (Some(room), None) => {
            if let Some(user_id) = room.strip_prefix("user:") {
                user_id.to_owned()
            } else if let Some(client_id) = room.strip_prefix("client:") {
                // Another client's room is answered as if it did not exist; client-wide
                // notices are for the client's administrators, whatever grants say.
                access::client_reach(caller, client_id).require("client")?;
                if state.store.client(client_id).await?.is_none() {
                    return Err(ApiError::not_found("client"));
                }
                return Ok(Target::Client {
                    client_id: client_id.to_owned(),
                });
            } else {
                return Err(ApiError::validation(
                    "room must be user:<id> or client:<id>",
                ));
            }
        }
    };
    let user = reachable_user(state, caller, &user_id).await?;
    let client_id = user
        .client_id
        .ok_or_else(|| ApiError::validation("platform users do not receive notifications"))?;
    Ok(Target::User {
        user_id: user.id,
        client_id,
    })
}

pub async fn send(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    body: web::Json<SendBody>,
) -> Result<HttpResponse, ApiError> {
    if !caller.can(permissions::NOTIFICATIONS_SEND) {
        return Err(ApiError::forbidden());
    }
    let title = text("title", &body.title, TITLE_MAX_CHARS)?;
    let text_body = text("body", &body.body, BODY_MAX_CHARS)?;
    let (client_id, user_id) = match target(&state, &caller, &body).await? {
        Target::User { user_id, client_id } => (client_id, Some(user_id)),
        Target::Client { client_id } => (client_id, None),
    };
    let row = NotificationRow {
        id: new_id(),
        client_id,
        user_id,
        sender_id: caller.user_id.clone(),
        title,
        body: text_body,
        created_at: now_ms(),
        read_at: None,
    };
    // Stored first: a listing never misses a notice that was pushed.
    state.store.insert_notification(&row).await?;
    let shown = view(&row);
    state.bus.publish(Event::new(
        row.room(),
        EventKind::Notification,
        json!({
            "id": row.id,
            "client_id": row.client_id,
            "user_id": row.user_id,
            "title": row.title,
            "body": row.body,
            "created_at": shown["created_at"],
        }),
    ));
    metrics::counter!(crate::metrics::NOTIFICATIONS_SENT).increment(1);
    Ok(HttpResponse::Created().json(shown))
}

pub async fn list(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::new(q.cursor.clone(), q.limit);
    let limit = page.limit()?;
    let user = reachable_user(&state, &caller, &id).await?;
    let Some(client_id) = user.client_id.as_deref() else {
        return Ok(HttpResponse::Ok().json(views::page(Vec::new(), None)));
    };
    let rows = state
        .store
        .notifications_for(&NotificationQuery {
            user_id: &user.id,
            client_id,
            unread_only: q.unread.unwrap_or(false),
            before: page.cursor(),
            limit: limit.fetch(),
        })
        .await?;
    Ok(HttpResponse::Ok().json(limit.page(rows, |n| n.id.clone(), view)))
}

/// Marks a notice read for the caller, who must be its recipient (a user notice's user, or a
/// member of a client notice's client); anyone else gets 404.
pub async fn mark_read(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut row = state
        .store
        .notification(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("notification"))?;
    let recipient = match &row.user_id {
        Some(user_id) => *user_id == caller.user_id,
        None => caller.client_id.as_deref() == Some(row.client_id.as_str()),
    };
    if !recipient {
        return Err(ApiError::not_found("notification"));
    }
    let read_at = state
        .store
        .mark_notification_read(&row.id, &caller.user_id, &row.client_id, now_ms())
        .await?;
    row.read_at = Some(read_at);
    Ok(HttpResponse::Ok().json(view(&row)))
}
