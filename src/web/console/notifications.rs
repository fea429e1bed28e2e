//! Sending a notice to one user or to a whole client (the API's `POST /api/v1/notifications`:
//! stored, then pushed live to the user's or the client's room).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::state::AppState;
use crate::web::csrf::Protected;
use crate::web::error::WebError;
use crate::web::page::{self, Chrome};
use crate::web::{WebCaller, api};

#[derive(Template)]
#[template(path = "console/notifications.html")]
struct NotifyPage {
    chrome: Chrome,
    form: NoticeFields,
    error: String,
    notice: String,
    is_platform: bool,
}

/// The form's fields: a user id, or none for the whole client.
#[derive(Deserialize, ToSchema, Default)]
pub struct NoticeFields {
    /// one user (empty: the whole client)
    #[serde(default)]
    user_id: String,
    /// super admins sending to a whole client: its id
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SentQuery {
    /// `1` after a notice was sent
    done: Option<String>,
    /// prefill: the user to write to
    user_id: Option<String>,
}

fn render(
    state: &AppState,
    caller: &WebCaller,
    form: NoticeFields,
    error: String,
    notice: String,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let chrome = super::home::chrome(state, caller, "nav.notifications", "/notifications")?;
    page::render_status(
        status,
        &NotifyPage {
            chrome,
            form,
            error,
            notice,
            is_platform: caller.caller.client_id.is_none(),
        },
    )
}

/// Send a notice: the form
#[utoipa::path(get, path = "/console/notifications", tag = "console", params(SentQuery),
    responses(
        (status = 200, description = "the form", content_type = "text/html", body = String),
        (status = 303, description = "no session: to the login page"),
        (status = 400, description = "a query that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "a player", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn form(
    state: web::Data<AppState>,
    caller: WebCaller,
    q: web::Query<SentQuery>,
) -> Result<HttpResponse, WebError> {
    let t = crate::web::i18n::english();
    let notice = if q.done.as_deref() == Some("1") {
        t.get("notify.sent").to_owned()
    } else {
        String::new()
    };
    let form = NoticeFields {
        user_id: q.user_id.clone().unwrap_or_default(),
        ..NoticeFields::default()
    };
    render(&state, &caller, form, String::new(), notice, StatusCode::OK)
}

/// Send a notice to a user or a whole client (the API's handler)
#[utoipa::path(post, path = "/console/notifications", tag = "console",
    request_body(content = NoticeFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "sent: the form again with a notice"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing CSRF token, another origin, or not allowed", content_type = "text/html", body = String),
        (status = 404, description = "no such user or client in reach", content_type = "text/html", body = String),
        (status = 409, description = "refused (the form again)", content_type = "text/html", body = String),
        (status = 422, description = "invalid fields (the form again)", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn send(
    state: web::Data<AppState>,
    Protected { caller, form }: Protected<NoticeFields>,
) -> Result<HttpResponse, WebError> {
    let user = form.user_id.trim();
    let client = caller
        .caller
        .client_id
        .clone()
        .unwrap_or_else(|| form.client_id.trim().to_owned());
    let body = if user.is_empty() {
        json!({ "room": format!("client:{client}"), "title": form.title, "body": form.body })
    } else {
        json!({ "user_id": user, "title": form.title, "body": form.body })
    };
    let result = match api::body(body) {
        Ok(body) => {
            api::answer(crate::http::notifications::send(state.clone(), caller.auth(), body).await)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(page::see_other("/console/notifications?done=1")),
        Err(e)
            if matches!(
                e.status,
                StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
            ) =>
        {
            let status = e.status;
            render(&state, &caller, form, e.message, String::new(), status)
        }
        Err(e) => Err(e.into()),
    }
}
