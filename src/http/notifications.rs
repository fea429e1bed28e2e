//! `/api/v1/notifications` and `/api/v1/users/{id}/notifications` (issue 5): admins send a
//! notice to one user or to a whole client; it is stored, then pushed live on the bus as a
//! `notification` frame in room `user:<id>` or `client:<cid>`.
//!
//! Read state is per reader: a user notice is read by its user; a client-wide notice is read by
//! each member of that client on their own (marking it read hides it from that member's
//! `unread=true` listing only). Members see every notice of their client, including those sent
//! before they joined.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::{Auth, Page};
use super::openapi::{BadBody, Conflict, Invalid, Secured, Unavailable, Unknown};
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

/// Exactly one of `room` and `user_id`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SendNotification)]
pub struct SendBody {
    /// client:<id> or user:<id>; or give user_id
    #[schema(example = "client:0190b7c2")]
    room: Option<String>,
    user_id: Option<String>,
    /// 1 to 200 characters
    title: String,
    /// 1 to 4000 characters
    body: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only notices the user has not read.
    unread: Option<bool>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<i64>,
}

/// A notice, with the reader's read state.
#[derive(Serialize, ToSchema)]
pub struct Notification {
    id: String,
    /// user:<id> or client:<id>
    room: String,
    client_id: String,
    user_id: Option<String>,
    sender_id: String,
    title: String,
    body: String,
    /// RFC 3339
    created_at: String,
    read: bool,
    read_at: Option<String>,
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
pub fn view(n: &NotificationRow) -> Notification {
    Notification {
        id: n.id.clone(),
        room: n.room(),
        client_id: n.client_id.clone(),
        user_id: n.user_id.clone(),
        sender_id: n.sender_id.clone(),
        title: n.title.clone(),
        body: n.body.clone(),
        created_at: rfc3339_ms(n.created_at),
        read: n.read_at.is_some(),
        read_at: n.read_at.map(rfc3339_ms),
    }
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

/// Send a notice to a user or a client room (admins); stored and pushed live
#[utoipa::path(post, path = "/api/v1/notifications", tag = "realtime",
    security(("bearer" = [])), request_body = SendBody,
    responses(
        (status = 201, description = "success", body = Notification),
        Secured, Invalid, BadBody, Conflict, Unknown, Unavailable,
    ))]
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
            "created_at": shown.created_at,
        }),
    ));
    metrics::counter!(crate::metrics::NOTIFICATIONS_SENT).increment(1);
    Ok(HttpResponse::Created().json(shown))
}

/// A user's notices and its client's, newest first, with its read state
#[utoipa::path(get, path = "/api/v1/users/{id}/notifications", tag = "realtime",
    security(("bearer" = [])), params(ListQuery),
    responses(
        (status = 200, description = "success", body = views::Page<Notification>),
        Secured, Unknown, Invalid, Unavailable,
    ))]
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
        return Ok(HttpResponse::Ok().json(views::page(Vec::<Notification>::new(), None)));
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

/// Mark a notice read for the caller (its recipient)
///
/// The recipient is a user notice's user, or a member of a client notice's client; anyone
/// else gets 404.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "realtime",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = Notification),
        Secured, Unknown, Invalid, Conflict, Unavailable,
    ))]
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
