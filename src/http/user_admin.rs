//! `/api/v1/users` administration: listing with filters and cursor, whole subtrees, rename,
//! and the lifecycle (suspend, reactivate, close). Leaving `active` ends every session of the
//! user at once; `closed` is final.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::auth::peer_ip;
use super::error::ApiError;
use super::extract::{Auth, Page};
use super::openapi::{BadBody, Conflict, Invalid, Secured, Unavailable, Unknown};
use super::users::{reachable_user, readable_user};
use super::views::{self, User};
use crate::access;
use crate::audit::Event;
use crate::auth::Caller;
use crate::auth::permissions as perm;
use crate::domain::{Role, UserStatus, names, now_ms};
use crate::state::AppState;
use crate::store::{UserFilter, UserRow};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Platform callers: one client's users.
    client_id: Option<String>,
    /// client_admin, agent or player
    role: Option<String>,
    /// active, suspended or closed
    status: Option<String>,
    parent_id: Option<String>,
    /// Usernames starting with this.
    username: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// 3 to 64 of a-z 0-9 _ . - (stored lower-case)
    #[schema(pattern = "^[A-Za-z0-9_.-]{3,64}$")]
    username: Option<String>,
}

/// A user the caller may administer: in reach, with `users.manage`, never oneself, never a
/// platform user, and a client admin only by the platform.
pub async fn manageable_user(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<UserRow, ApiError> {
    let user = reachable_user(state, caller, id).await?;
    let role = user.role;
    let allowed = caller.can(perm::USERS_MANAGE)
        && user.id != caller.user_id
        && role != Role::SuperAdmin
        && (role != Role::ClientAdmin || caller.role == Role::SuperAdmin);
    if allowed {
        Ok(user)
    } else {
        Err(ApiError::forbidden())
    }
}

/// Who a user listing may cover (`users.read`, else 403): the platform any client (or all),
/// others their own client (another named: 404), an agent only its subtree. The filter's
/// other fields are left empty for the caller to fill.
pub async fn listing_scope(
    state: &AppState,
    caller: &Caller,
    client_id: Option<&str>,
) -> Result<UserFilter, ApiError> {
    if !caller.can(perm::USERS_READ) {
        return Err(ApiError::forbidden());
    }
    let client_id = access::listed_client(caller, client_id)?;
    let under_path = if caller.role == Role::Agent {
        let me = state
            .store
            .user(&caller.user_id)
            .await?
            .ok_or_else(ApiError::internal)?;
        Some(me.path)
    } else {
        None
    };
    Ok(UserFilter {
        client_id,
        under_path,
        ..UserFilter::default()
    })
}

/// List users (an agent: its subtree)
///
/// A client's users (an agent: its subtree), filtered, by id.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "success", body = views::Page<User>),
        Secured, Invalid, Unavailable,
    ))]
pub async fn list(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let scope = listing_scope(&state, &caller, q.client_id.as_deref()).await?;
    let limit = Page::new(q.cursor.clone(), q.limit).limit()?;
    let role = q.role.as_deref().map(str::parse::<Role>).transpose();
    let role = role.map_err(ApiError::validation)?;
    let status = q
        .status
        .as_deref()
        .map(str::parse::<UserStatus>)
        .transpose();
    let status =
        status.map_err(|_| ApiError::validation("status must be active, suspended or closed"))?;
    let filter = UserFilter {
        role,
        status,
        parent_id: q.parent_id.clone(),
        username_prefix: q.username.as_ref().map(|u| u.trim().to_ascii_lowercase()),
        after_id: q.cursor.clone(),
        limit: limit.fetch(),
        ..scope
    };
    let rows = state.store.list_users(&filter).await?;
    Ok(HttpResponse::Ok().json(limit.page(rows, |u| u.id.clone(), views::user)))
}

/// Everyone below the user, in tree order
///
/// The cursor is the last user id of the previous page.
#[utoipa::path(get, path = "/api/v1/users/{id}/subtree", tag = "users",
    security(("bearer" = [])), params(Page),
    responses(
        (status = 200, description = "success", body = views::Page<User>),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn subtree(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    page: Page,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit()?;
    let root = readable_user(&state, &caller, &id).await?;
    let after_path = match page.cursor() {
        None => None,
        Some(cursor) => match state.store.user(cursor).await? {
            Some(u) if u.path.starts_with(&root.path) && u.id != root.id => Some(u.path),
            _ => return Err(ApiError::validation("cursor is not one this server issued")),
        },
    };
    let rows = state
        .store
        .subtree(&root.path, after_path.as_deref(), limit.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(limit.page(rows, |u| u.id.clone(), views::user)))
}

/// Rename a user
///
/// Only `username`; role, client, parent and balance are not fields of this body (unknown
/// fields are refused).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "success", body = User),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    id: web::Path<String>,
    body: web::Json<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    let user = manageable_user(&state, &caller, &id).await?;
    if let Some(raw) = &body.username {
        let name = names::username(raw).map_err(ApiError::validation)?;
        if name != user.username {
            state.store.rename_user(&user.id, &name, now_ms()).await?;
            let change = (
                json!({ "username": user.username }),
                json!({ "username": name }),
            );
            audit_change(&state, &req, &caller, &user, "user.update", change).await?;
        }
    }
    current(&state, &user.id).await
}

/// Records a change of `user` (before, after) in the audit chain.
async fn audit_change(
    state: &AppState,
    req: &HttpRequest,
    caller: &Caller,
    user: &UserRow,
    action: &str,
    (before, after): (serde_json::Value, serde_json::Value),
) -> Result<(), ApiError> {
    Event::new(action)
        .by(caller)
        .client(user.client_id.as_deref())
        .target("user", &user.id)
        .before(before)
        .after(after)
        .ip(peer_ip(req))
        .record(&state.store)
        .await?;
    Ok(())
}

/// The user as stored now (after a change).
async fn current(state: &AppState, id: &str) -> Result<HttpResponse, ApiError> {
    let user = state
        .store
        .user(id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(HttpResponse::Ok().json(views::user(&user)))
}

async fn set_status(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    id: String,
    status: UserStatus,
) -> Result<HttpResponse, ApiError> {
    let user = manageable_user(&state, &caller, &id).await?;
    if user.status == UserStatus::Closed && status != UserStatus::Closed {
        return Err(ApiError::conflict(
            "user_closed",
            "this user is closed for good",
        ));
    }
    // Closing needs an empty wallet and no transfer in flight; the store checks both in the
    // transaction that freezes the accounts (409 `balance_not_zero` / `transfers_in_flight`).
    if user.status != status {
        state
            .store
            .set_user_status(&user.id, status, now_ms())
            .await?;
        let action = match status {
            UserStatus::Active => "user.reactivate",
            UserStatus::Suspended => "user.suspend",
            UserStatus::Closed => "user.close",
        };
        let change = (
            json!({ "status": user.status }),
            json!({ "status": status }),
        );
        audit_change(&state, &req, &caller, &user, action, change).await?;
    }
    current(&state, &user.id).await
}

/// End every session of the user (logoutUser)
///
/// Their refresh tokens stop working and their access tokens are refused at once. The user
/// themself, or a caller who may manage them (suspending or closing does it too).
#[utoipa::path(post, path = "/api/v1/users/{id}/logout", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = LoggedOut),
        Secured, Unknown, Unavailable,
    ))]
pub async fn logout_all(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = if *id == caller.user_id {
        reachable_user(&state, &caller, &id).await?
    } else {
        manageable_user(&state, &caller, &id).await?
    };
    let ended = state.store.revoke_user_sessions(&user.id).await?;
    audit_change(
        &state,
        &req,
        &caller,
        &user,
        "user.logout_all",
        (json!(null), json!({ "sessions_ended": ended })),
    )
    .await?;
    Ok(HttpResponse::Ok().json(LoggedOut {
        user_id: user.id,
        sessions_ended: ended,
    }))
}

/// What `logoutUser` ended.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct LoggedOut {
    user_id: String,
    sessions_ended: u64,
}

macro_rules! status_handler {
    ($(#[$attr:meta])* $name:ident, $status:expr) => {
        $(#[$attr])*
        pub async fn $name(
            state: web::Data<AppState>,
            req: HttpRequest,
            Auth(caller): Auth,
            id: web::Path<String>,
        ) -> Result<HttpResponse, ApiError> {
            set_status(state, req, caller, id.into_inner(), $status).await
        }
    };
}

status_handler!(
    /// Suspend; every session ends at once
    #[utoipa::path(post, path = "/api/v1/users/{id}/suspend", tag = "users",
        security(("bearer" = [])),
        responses(
            (status = 200, description = "success", body = User),
            Secured, Unknown, Invalid, Conflict, Unavailable,
        ))]
    suspend,
    UserStatus::Suspended
);
status_handler!(
    /// Reactivate a suspended user
    #[utoipa::path(post, path = "/api/v1/users/{id}/reactivate", tag = "users",
        security(("bearer" = [])),
        responses(
            (status = 200, description = "success", body = User),
            Secured, Unknown, Invalid, Conflict, Unavailable,
        ))]
    reactivate,
    UserStatus::Active
);
status_handler!(
    /// Close for good; every session ends
    ///
    /// Needs an empty wallet and no provider transfer in flight (409 `balance_not_zero`,
    /// `transfers_in_flight`).
    #[utoipa::path(post, path = "/api/v1/users/{id}/close", tag = "users",
        security(("bearer" = [])),
        responses(
            (status = 200, description = "success", body = User),
            Secured, Unknown, Invalid, Conflict, Unavailable,
        ))]
    close,
    UserStatus::Closed
);
