//! The withdrawal approval queue (issue 18's payments): requested withdrawals in reach, each
//! with approve and reject (with a reason) through the API's handlers; the page reloads itself
//! when a `payment_update` arrives on the client's `payments:<client>` room.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::state::AppState;
use crate::web::csrf::Protected;
use crate::web::error::WebError;
use crate::web::login_pages::CsrfOnly;
use crate::web::page::{self, Chrome};
use crate::web::{WebCaller, api};

pub struct PaymentLine {
    pub id: String,
    pub user_id: String,
    pub amount: String,
    pub currency: String,
    pub gateway: String,
    pub destination: String,
    pub created_at: String,
    pub flagged: bool,
}

#[derive(Template)]
#[template(path = "console/payments.html")]
struct QueuePage {
    chrome: Chrome,
    payments: Vec<PaymentLine>,
    rooms: String,
    client_id: String,
    is_platform: bool,
    /// `(payment id, message)` of a refused decision, shown beside it.
    error: (String, String),
    notice: String,
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// super admins: the client
    client_id: Option<String>,
    /// the decision that just succeeded (a notice)
    done: Option<String>,
}

async fn queue_page(
    state: &web::Data<AppState>,
    caller: &WebCaller,
    q: &QueueQuery,
    error: (String, String),
) -> Result<QueuePage, WebError> {
    let t = crate::web::i18n::english();
    let chrome = super::home::chrome(state, caller, "nav.payments", "/payments")?;
    let client_id = caller
        .caller
        .client_id
        .clone()
        .or_else(|| q.client_id.clone().filter(|c| !c.trim().is_empty()));
    let mut pairs = vec![
        ("kind", "withdrawal".to_owned()),
        ("state", "requested".to_owned()),
        ("limit", "200".to_owned()),
    ];
    if caller.caller.client_id.is_none()
        && let Some(c) = &client_id
    {
        pairs.push(("client_id", c.clone()));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let answer = api::answer(
        crate::http::payments::list(
            state.clone(),
            caller.auth(),
            web::Query::from_query(&query).map_err(|e| WebError::BadForm(e.to_string()))?,
        )
        .await,
    );
    let answer = match answer {
        Ok(a) => a,
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => json!({ "items": [] }),
        Err(e) => return Err(e.into()),
    };
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let payments = answer["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| PaymentLine {
            id: s(p, "id"),
            user_id: s(p, "user_id"),
            amount: s(p, "amount"),
            currency: s(p, "currency"),
            gateway: s(p, "gateway"),
            destination: s(p, "destination"),
            created_at: s(p, "created_at"),
            flagged: p["flagged"].as_bool().unwrap_or(false),
        })
        .collect();
    let notice = match q.done.as_deref() {
        Some("approve") => t.get("payments.approved").to_owned(),
        Some("reject") => t.get("payments.rejected").to_owned(),
        _ => String::new(),
    };
    Ok(QueuePage {
        chrome,
        payments,
        rooms: client_id
            .as_deref()
            .map(|c| format!("payments:{c}"))
            .unwrap_or_default(),
        client_id: client_id.unwrap_or_default(),
        is_platform: caller.caller.client_id.is_none(),
        error,
        notice,
    })
}

/// The withdrawal approval queue
#[utoipa::path(get, path = "/console/payments", tag = "console", params(QueueQuery),
    responses(
        (status = 200, description = "requested withdrawals in reach", content_type = "text/html", body = String),
        (status = 303, description = "no session: to the login page"),
        (status = 400, description = "a query that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "not allowed (players)", content_type = "text/html", body = String),
        (status = 404, description = "another client", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn queue(
    state: web::Data<AppState>,
    caller: WebCaller,
    q: web::Query<QueueQuery>,
) -> Result<HttpResponse, WebError> {
    let page = queue_page(&state, &caller, &q, Default::default()).await?;
    page::render(&page)
}

/// A rejection's field.
#[derive(Deserialize, ToSchema)]
pub struct RejectFields {
    /// 1 to 250 characters, shown to the player
    #[serde(default)]
    reason: String,
}

async fn decided(
    state: &web::Data<AppState>,
    caller: &WebCaller,
    id: &str,
    action: &str,
    result: Result<HttpResponse, crate::http::ApiError>,
) -> Result<HttpResponse, WebError> {
    match api::answer(result) {
        Ok(_) => Ok(page::see_other(&format!("/console/payments?done={action}"))),
        Err(e)
            if matches!(
                e.status,
                StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
            ) =>
        {
            let q = QueueQuery::default();
            let page = queue_page(state, caller, &q, (id.to_owned(), e.message)).await?;
            page::render_status(e.status, &page)
        }
        Err(e) => Err(e.into()),
    }
}

/// Approve a requested withdrawal (the API's handler)
#[utoipa::path(post, path = "/console/payments/{id}/approve", tag = "console",
    params(("id" = String, Path, description = "payment id")),
    request_body(content = CsrfOnly, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "approved: back to the queue"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing CSRF token, another origin, or not allowed", content_type = "text/html", body = String),
        (status = 404, description = "no such payment in reach", content_type = "text/html", body = String),
        (status = 409, description = "already decided: the queue with the error in place", content_type = "text/html", body = String),
        (status = 422, description = "not a withdrawal: the queue with the error in place", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 502, description = "the gateway refused", content_type = "text/html", body = String),
        (status = 503, description = "storage or gateway unavailable", content_type = "text/html", body = String),
    ))]
pub async fn approve(
    state: web::Data<AppState>,
    id: web::Path<String>,
    Protected { caller, .. }: Protected<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    let result = crate::http::payments::approve(
        state.clone(),
        caller.auth(),
        web::Path::from(id.to_string()),
    )
    .await;
    decided(&state, &caller, &id, "approve", result).await
}

/// Reject a requested withdrawal with a reason (the API's handler)
#[utoipa::path(post, path = "/console/payments/{id}/reject", tag = "console",
    params(("id" = String, Path, description = "payment id")),
    request_body(content = RejectFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "rejected (money back in the wallet): back to the queue"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing CSRF token, another origin, or not allowed", content_type = "text/html", body = String),
        (status = 404, description = "no such payment in reach", content_type = "text/html", body = String),
        (status = 409, description = "already decided: the queue with the error in place", content_type = "text/html", body = String),
        (status = 422, description = "no reason: the queue with the error in place", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn reject(
    state: web::Data<AppState>,
    id: web::Path<String>,
    Protected { caller, form }: Protected<RejectFields>,
) -> Result<HttpResponse, WebError> {
    let result = match api::body(json!({ "reason": form.reason.trim() })) {
        Ok(body) => {
            crate::http::payments::reject(
                state.clone(),
                caller.auth(),
                web::Path::from(id.to_string()),
                body,
            )
            .await
        }
        Err(e) => Err(e),
    };
    decided(&state, &caller, &id, "reject", result).await
}
