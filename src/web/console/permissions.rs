//! A user's permissions (issue 20): the role's defaults, the overrides and the effective set,
//! with a grant or revoke button per permission. The API's handlers read and change them
//! (`http::user_permissions`), so reach, `permissions.manage` and "no escalation" (a caller
//! hands on only what it holds) are decided there, and each change is audited there.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::permissions as perm;
use crate::state::AppState;
use crate::web::csrf::Protected;
use crate::web::error::WebError;
use crate::web::page::{self, Chrome};
use crate::web::{WebCaller, api};

pub struct PermissionLine {
    pub name: &'static str,
    pub default: bool,
    /// grant, revoke or empty
    pub overridden: String,
    pub effective: bool,
}

#[derive(Template)]
#[template(path = "console/permissions.html")]
struct PermissionsPage {
    chrome: Chrome,
    user_id: String,
    username: String,
    role: String,
    lines: Vec<PermissionLine>,
    can_manage: bool,
    notice: String,
    /// `(permission, message)` of a refused change
    error: (String, String),
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct Done {
    /// the change that just succeeded (a notice)
    done: Option<String>,
}

async fn permissions_page(
    state: &web::Data<AppState>,
    caller: &WebCaller,
    id: &str,
    done: bool,
    error: (String, String),
) -> Result<PermissionsPage, WebError> {
    let t = crate::web::i18n::english();
    let mut chrome = super::home::chrome(state, caller, "perm.title", "/users")?;
    let described = api::answer(
        crate::http::user_permissions::get(
            state.clone(),
            caller.auth(),
            web::Path::from(id.to_owned()),
        )
        .await,
    )?;
    let row = crate::http::users::readable_user(state, &caller.caller, id).await?;
    chrome.title = format!("{} {}", t.get("perm.title"), row.username);
    let has = |list: &str, p: &str| {
        described[list]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(p)))
    };
    let overrides: Vec<(String, String)> = described["overrides"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            let s = |k: &str| o[k].as_str().unwrap_or("").to_owned();
            (s("permission"), s("effect"))
        })
        .collect();
    let lines = perm::ALL
        .iter()
        .map(|p| PermissionLine {
            name: p,
            default: has("defaults", p),
            overridden: overrides
                .iter()
                .find(|(name, _)| name == p)
                .map(|(_, e)| e.clone())
                .unwrap_or_default(),
            effective: has("effective", p),
        })
        .collect();
    Ok(PermissionsPage {
        chrome,
        user_id: row.id.clone(),
        username: row.username.clone(),
        role: described["role"].as_str().unwrap_or("").to_owned(),
        lines,
        can_manage: caller.caller.can(perm::PERMISSIONS_MANAGE) && row.id != caller.caller.user_id,
        notice: if done {
            t.get("perm.done").to_owned()
        } else {
            String::new()
        },
        error,
    })
}

/// A user's permissions: defaults, overrides, effective; grant and revoke
#[utoipa::path(get, path = "/console/users/{id}/permissions", tag = "console",
    params(("id" = String, Path, description = "user id"), Done),
    responses(
        (status = 200, description = "the user's permissions", content_type = "text/html", body = String),
        (status = 303, description = "no session: to the login page"),
        (status = 400, description = "a query that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "outside the caller's subtree, or not allowed", content_type = "text/html", body = String),
        (status = 404, description = "no such user, or another client's", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn show(
    state: web::Data<AppState>,
    caller: WebCaller,
    id: web::Path<String>,
    q: web::Query<Done>,
) -> Result<HttpResponse, WebError> {
    let page = permissions_page(&state, &caller, &id, q.done.is_some(), Default::default()).await?;
    page::render(&page)
}

/// A change's fields.
#[derive(Deserialize, ToSchema)]
pub struct ChangeFields {
    /// one of the platform's permissions
    permission: String,
    /// grant or revoke
    effect: String,
}

/// Grant or revoke one permission (the API's `PUT`/`DELETE .../permissions/{permission}`)
#[utoipa::path(post, path = "/console/users/{id}/permissions", tag = "console",
    params(("id" = String, Path, description = "user id")),
    request_body(content = ChangeFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "changed: back to the user's permissions"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing CSRF token, another origin, outside the subtree, no permissions.manage, or a permission the caller does not hold", content_type = "text/html", body = String),
        (status = 404, description = "no such user or effect, or another client's", content_type = "text/html", body = String),
        (status = 409, description = "refused: the page with the error in place", content_type = "text/html", body = String),
        (status = 422, description = "unknown permission, or one the role cannot hold: the page with the error in place", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn change(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    Protected { caller, form }: Protected<ChangeFields>,
) -> Result<HttpResponse, WebError> {
    let id = id.into_inner();
    let target = web::Path::from((id.clone(), form.permission.clone()));
    let (s, a) = (state.clone(), caller.auth());
    let result = match form.effect.as_str() {
        "grant" => crate::http::user_permissions::grant(s, req, a, target).await,
        "revoke" => crate::http::user_permissions::revoke(s, req, a, target).await,
        _ => return Err(WebError::NotFound),
    };
    match api::answer(result) {
        Ok(_) => Ok(page::see_other(&format!(
            "/console/users/{id}/permissions?done=1"
        ))),
        Err(e)
            if matches!(
                e.status,
                StatusCode::BAD_REQUEST | StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
            ) =>
        {
            let status = e.status;
            let page =
                permissions_page(&state, &caller, &id, false, (form.permission, e.message)).await?;
            page::render_status(status, &page)
        }
        Err(e) => Err(e.into()),
    }
}
