//! `/api/v1/users/{id}/permissions`: a user's role defaults, overrides and effective set;
//! grant (`PUT .../{permission}`) and revoke (`DELETE .../{permission}`). A caller can only
//! grant what it holds itself, within what the target's role may hold.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::auth::peer_ip;
use super::error::ApiError;
use super::extract::Auth;
use super::openapi::{Conflict, Invalid, Secured, Unavailable, Unknown};
use super::user_admin::manageable_user;
use super::users::readable_user;
use crate::audit::Event;
use crate::auth::permissions as perm;
use crate::domain::{Role, now_ms};
use crate::state::AppState;
use crate::store::UserRow;

/// A user's permissions: the role's defaults, the user's overrides, and the effective set.
#[derive(Serialize, ToSchema)]
pub struct Permissions {
    user_id: String,
    role: Role,
    #[schema(value_type = Vec<String>)]
    defaults: Vec<&'static str>,
    overrides: Vec<Override>,
    effective: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Override {
    permission: String,
    /// grant or revoke
    #[schema(pattern = "^(grant|revoke)$")]
    effect: String,
}

async fn describe(state: &AppState, user: &UserRow) -> Result<serde_json::Value, ApiError> {
    let role = user.role;
    let overrides = state.store.permission_overrides(&user.id).await?;
    Ok(super::views::to_value(Permissions {
        user_id: user.id.clone(),
        role,
        defaults: perm::defaults(role).to_vec(),
        overrides: overrides
            .iter()
            .map(|(p, e)| Override {
                permission: p.clone(),
                effect: e.clone(),
            })
            .collect(),
        effective: perm::effective(role, &overrides),
    }))
}

/// Defaults, overrides and effective permissions
#[utoipa::path(get, path = "/api/v1/users/{id}/permissions", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = Permissions),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn get(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = readable_user(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(describe(&state, &user).await?))
}

async fn change(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: crate::auth::Caller,
    (id, permission): (String, String),
    grant: bool,
) -> Result<HttpResponse, ApiError> {
    let user = manageable_user(&state, &caller, &id).await?;
    if !caller.can(perm::PERMISSIONS_MANAGE) {
        return Err(ApiError::forbidden());
    }
    let Some(permission) = perm::ALL.iter().find(|p| **p == permission) else {
        return Err(ApiError::validation("unknown permission"));
    };
    // No escalation: only what the caller holds can be handed on (the platform holds all).
    if grant && caller.role != Role::SuperAdmin && !caller.can(permission) {
        return Err(ApiError::forbidden());
    }
    let role = user.role;
    let is_default = perm::defaults(role).contains(permission);
    if grant && !is_default && !perm::grantable(role, permission) {
        return Err(ApiError::validation(format!(
            "{permission} cannot be granted to a {role}"
        )));
    }
    let before = describe(&state, &user).await?;
    let effect = match (grant, is_default) {
        (true, true) | (false, false) => None,
        (true, false) => Some("grant"),
        (false, true) => Some("revoke"),
    };
    state
        .store
        .set_permission(
            &user.id,
            user.client_id.as_deref(),
            permission,
            effect,
            &caller.user_id,
            now_ms(),
        )
        .await?;
    let after = describe(&state, &user).await?;
    Event::new(if grant {
        "permission.grant"
    } else {
        "permission.revoke"
    })
    .by(&caller)
    .client(user.client_id.as_deref())
    .target("user", &user.id)
    .before(json!({ "effective": before["effective"] }))
    .after(json!({ "permission": permission, "effective": after["effective"] }))
    .ip(peer_ip(&req))
    .record(&state.store)
    .await?;
    Ok(HttpResponse::Ok().json(after))
}

/// Grant a permission
///
/// Only what the caller holds itself, within what the target's role may hold.
#[utoipa::path(put, path = "/api/v1/users/{id}/permissions/{permission}", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = Permissions),
        Secured, Unknown, Invalid, Conflict, Unavailable,
    ))]
pub async fn grant(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    change(state, req, caller, path.into_inner(), true).await
}

/// Revoke a permission
#[utoipa::path(delete, path = "/api/v1/users/{id}/permissions/{permission}", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = Permissions),
        Secured, Unknown, Invalid, Conflict, Unavailable,
    ))]
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    change(state, req, caller, path.into_inner(), false).await
}
