//! `/api/v1/users`: the user tree of each client. Lifecycle (suspend, reactivate, close),
//! listing and per-user permissions live in `user_admin.rs`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{Auth, Page};
use super::openapi::{BadBody, Conflict, Invalid, Secured, Unavailable, Unknown};
use super::views::{self, User};
use crate::access::{self, Reach, reach};
use crate::audit::Event;
use crate::auth::Caller;
use crate::auth::permissions as perm;
use crate::domain::{Role, names};
use crate::state::AppState;
use crate::store::UserRow;
use crate::users::{CreateUserError, NewUser, create_user};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// platform callers only
    client_id: Option<String>,
    /// default: the caller (a client admin or agent)
    parent_id: Option<String>,
    /// client_admin, agent or player
    #[schema(pattern = "^(client_admin|agent|player)$", example = "player")]
    role: String,
    /// 3 to 64 of a-z 0-9 _ . - (stored lower-case)
    #[schema(pattern = "^[A-Za-z0-9_.-]{3,64}$")]
    username: String,
    #[schema(min_length = 8, max_length = 128)]
    password: String,
}

impl From<CreateUserError> for ApiError {
    fn from(e: CreateUserError) -> Self {
        match e {
            CreateUserError::TooDeep => ApiError::validation(e.to_string()),
            CreateUserError::Hash => ApiError::internal(),
            CreateUserError::Store(e) => e.into(),
        }
    }
}

/// A user the caller may read: reach first (404 other client, 403 outside), then the
/// permission (`users.read`, or `users.read_self` for oneself).
pub async fn readable_user(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<UserRow, ApiError> {
    let user = reachable_user(state, caller, id).await?;
    may_read(caller, &user)?;
    Ok(user)
}

/// The permission half of [`readable_user`], for a user already in reach (GraphQL checks the
/// rows it loaded in batches with the same rules).
pub fn may_read(caller: &Caller, user: &UserRow) -> Result<(), ApiError> {
    let own = user.id == caller.user_id;
    if caller.can(perm::USERS_READ) || (own && caller.can(perm::USERS_READ_SELF)) {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// [`readable_user`] for a row already loaded: reach, then the permission.
pub async fn may_read_row(
    state: &AppState,
    caller: &Caller,
    user: &UserRow,
) -> Result<(), ApiError> {
    reach(&state.store, caller, user).await?.require("user")?;
    may_read(caller, user)
}

/// Loads a user the caller may see: another client's user is 404, one outside reach is 403.
pub async fn reachable_user(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<UserRow, ApiError> {
    let user = state
        .store
        .user(id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    reach(&state.store, caller, &user).await?.require("user")?;
    Ok(user)
}

/// Create a user under a parent
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, description = "success", body = User),
        Secured, Invalid, BadBody, Conflict, Unknown, Unavailable,
    ))]
pub async fn create(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    body: web::Json<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if !caller.can(perm::USERS_CREATE) {
        return Err(ApiError::forbidden());
    }
    let role: Role = body.role.parse().map_err(ApiError::validation)?;
    let username = names::username(&body.username).map_err(ApiError::validation)?;
    names::password(&body.password).map_err(ApiError::validation)?;
    let client_id = match (caller.role, &body.client_id) {
        (Role::Player, _) => return Err(ApiError::forbidden()),
        (Role::SuperAdmin, Some(cid)) => cid.clone(),
        (Role::SuperAdmin, None) => {
            return Err(ApiError::validation(
                "client_id is required for platform callers",
            ));
        }
        // Same answer for any foreign value, existing or not: it reveals nothing.
        (_, Some(cid)) if Some(cid) != caller.client_id.as_ref() => {
            return Err(ApiError::validation(
                "client_id is set by platform callers only",
            ));
        }
        (_, _) => caller.client_id.clone().ok_or_else(ApiError::internal)?,
    };
    let client = access::client(&state.store, &client_id).await?;
    if client.status != crate::domain::ClientStatus::Active {
        return Err(ApiError::conflict(
            "client_suspended",
            "this client is suspended",
        ));
    }
    let parent = match role {
        Role::SuperAdmin => {
            return Err(ApiError::validation(
                "platform users are not created through this endpoint",
            ));
        }
        Role::ClientAdmin => {
            if caller.role != Role::SuperAdmin {
                return Err(ApiError::forbidden());
            }
            if body.parent_id.is_some() {
                return Err(ApiError::validation(
                    "a client admin is the root of its client's tree: omit parent_id",
                ));
            }
            None
        }
        Role::Agent | Role::Player => {
            let parent_id = match (&body.parent_id, caller.role) {
                (Some(p), _) => p.clone(),
                (None, Role::ClientAdmin | Role::Agent) => caller.user_id.clone(),
                (None, _) => return Err(ApiError::validation("parent_id is required")),
            };
            let parent = reachable_user(&state, &caller, &parent_id).await?;
            if parent.client_id.as_deref() != Some(client_id.as_str()) {
                return Err(ApiError::validation(
                    "parent_id must be a user of the same client",
                ));
            }
            let parent_role = parent.role;
            if !parent_role.can_parent() {
                return Err(ApiError::validation(
                    "parent must be a client admin or an agent",
                ));
            }
            Some(parent)
        }
    };
    let user = create_user(
        &state.store,
        state.config.settings.password_hash_memory_kib,
        NewUser {
            role,
            username,
            password: body.password,
            client: Some(&client),
            parent: parent.as_ref(),
        },
    )
    .await?;
    Event::new("user.create")
        .by(&caller)
        .client(user.client_id.as_deref())
        .target("user", &user.id)
        .after(json!({ "role": user.role, "username": user.username, "parent_id": user.parent_id, "status": user.status }))
        .record(&state.store)
        .await?;
    tracing::info!(user_id = %user.id, role = %user.role, by = %caller.user_id, "user created");
    Ok(HttpResponse::Created().json(views::user(&user)))
}

/// Get a user
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = User),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn get(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = readable_user(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(views::user(&user)))
}

/// Direct children
#[utoipa::path(get, path = "/api/v1/users/{id}/children", tag = "users",
    security(("bearer" = [])), params(Page),
    responses(
        (status = 200, description = "success", body = views::Page<User>),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn children(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    page: Page,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit()?;
    let parent = readable_user(&state, &caller, &id).await?;
    let rows = state
        .store
        .children(&parent.id, page.cursor(), limit.fetch())
        .await?;
    Ok(HttpResponse::Ok().json(limit.page(rows, |u| u.id.clone(), views::user)))
}

/// Ancestors the caller may see, root first
///
/// The chain from the root down to the user's parent, limited to what the caller may see.
#[utoipa::path(get, path = "/api/v1/users/{id}/ancestors", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = views::Page<User>),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn ancestors(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = readable_user(&state, &caller, &id).await?;
    let ids: Vec<&str> = user
        .path
        .split('/')
        .filter(|s| !s.is_empty() && *s != user.id)
        .collect();
    let rows = state.store.users_by_ids(&ids).await?;
    let mut visible = Vec::new();
    for row in rows {
        if reach(&state.store, &caller, &row).await? == Reach::Within {
            visible.push(row);
        }
    }
    visible.sort_by_key(|u| u.depth);
    Ok(HttpResponse::Ok().json(views::page(visible.iter().map(views::user).collect(), None)))
}
