//! Settlements (issue 20): a client's settlements, newest period first, one settlement with
//! its commission lines and revenue share, and the lines' approve / hold / pay actions. Super
//! admins also settle a period (a money form: its idempotency key is made when the form is
//! rendered). Every read and action is the API's handler (`http::settlements`,
//! `http::commission`), so who may read, settle or pay is decided there.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::domain::Role;
use crate::http::extract::{IdempotencyKey, Page};
use crate::state::AppState;
use crate::web::csrf::Protected;
use crate::web::error::WebError;
use crate::web::page::{self, Chrome};
use crate::web::{WebCaller, api, idempotency};

fn text(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn blank(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(|s| s.trim().is_empty())
}

#[derive(Deserialize, Serialize, IntoParams, Default, Clone)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// super admins: the client (a client's admins: their own)
    #[serde(default, skip_serializing_if = "blank")]
    client_id: Option<String>,
    /// the next page's cursor
    #[serde(default, skip_serializing_if = "blank")]
    cursor: Option<String>,
}

/// The client a page is about: the caller's own, or (platform) the one asked for.
fn client_of(caller: &WebCaller, asked: Option<&str>) -> Option<String> {
    caller.caller.client_id.clone().or_else(|| {
        asked
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    })
}

/// The settle form's fields (days or RFC 3339 instants).
#[derive(Deserialize, ToSchema, Default, Clone)]
pub struct SettleFields {
    #[serde(default)]
    client_id: String,
    /// YYYY-MM-DD (UTC midnight) or RFC 3339
    #[serde(default)]
    period_start: String,
    /// YYYY-MM-DD (UTC midnight) or RFC 3339
    #[serde(default)]
    period_end: String,
    /// checked: pay the commission at once; else the lines wait for approval
    #[serde(default)]
    pay: Option<String>,
    /// made when the form was rendered: a resubmission replays, never settles twice
    #[serde(default)]
    idempotency_key: String,
}

#[derive(Template)]
#[template(path = "console/settlements.html")]
struct ListPage {
    chrome: Chrome,
    client_id: String,
    is_platform: bool,
    /// `[id, period_start, period_end, ngr, currency, state, origin]`
    rows: Vec<[String; 7]>,
    next_link: String,
    form: SettleFields,
    settle_key: String,
    settle_error: String,
}

/// A day becomes its UTC midnight; anything else goes to the API as typed.
fn instant(text: &str) -> String {
    let t = text.trim();
    if t.len() == 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-' {
        format!("{t}T00:00:00Z")
    } else {
        t.to_owned()
    }
}

async fn list_page(
    state: &web::Data<AppState>,
    caller: &WebCaller,
    q: ListQuery,
    form: SettleFields,
    settle_error: String,
) -> Result<ListPage, WebError> {
    let chrome = super::home::chrome(state, caller, "nav.settlements", "/settlements")?;
    let client_id = client_of(caller, q.client_id.as_deref()).unwrap_or_default();
    let (rows, next_link) = if client_id.is_empty() {
        // A super admin picks a client first.
        (Vec::new(), String::new())
    } else {
        let answer = api::answer(
            crate::http::settlements::list(
                state.clone(),
                caller.auth(),
                web::Path::from(client_id.clone()),
                Page::new(q.cursor.clone(), Some(50)),
            )
            .await,
        )?;
        let rows = answer["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                [
                    text(s, "id"),
                    text(s, "period_start"),
                    text(s, "period_end"),
                    text(s, "ngr"),
                    text(s, "currency"),
                    text(s, "state"),
                    text(s, "origin"),
                ]
            })
            .collect();
        let next = match answer["next_cursor"].as_str() {
            Some(c) => format!(
                "/console/settlements?{}",
                serde_urlencoded::to_string(ListQuery {
                    client_id: Some(client_id.clone()),
                    cursor: Some(c.to_owned()),
                })
                .unwrap_or_default()
            ),
            None => String::new(),
        };
        (rows, next)
    };
    Ok(ListPage {
        chrome,
        client_id,
        is_platform: caller.caller.role == Role::SuperAdmin,
        rows,
        next_link,
        form,
        settle_key: idempotency::new_key(),
        settle_error,
    })
}

/// A client's settlements (super admins pick the client and settle periods)
#[utoipa::path(get, path = "/console/settlements", tag = "console", params(ListQuery),
    responses(
        (status = 200, description = "the settlements", content_type = "text/html", body = String),
        (status = 303, description = "no session: to the login page"),
        (status = 400, description = "a query that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "no clients.read permission", content_type = "text/html", body = String),
        (status = 404, description = "no such client, or another client", content_type = "text/html", body = String),
        (status = 422, description = "a bad cursor", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn list(
    state: web::Data<AppState>,
    caller: WebCaller,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, WebError> {
    let page = list_page(
        &state,
        &caller,
        q.into_inner(),
        SettleFields::default(),
        String::new(),
    )
    .await?;
    page::render(&page)
}

/// Refusals shown beside the form (the rest are error pages: 403, 404, 429, 5xx).
fn in_place(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_REQUEST | StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
    )
}

/// Settle a period (the API's `POST /api/v1/clients/{id}/settlements`, the form's key)
#[utoipa::path(post, path = "/console/settlements", tag = "console",
    request_body(content = SettleFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "settled (or replayed): to the settlement"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing CSRF token, another origin, or not a super admin", content_type = "text/html", body = String),
        (status = 404, description = "no such client", content_type = "text/html", body = String),
        (status = 409, description = "overlaps another settlement, or the key was used otherwise: the form with the error in place", content_type = "text/html", body = String),
        (status = 422, description = "invalid period: the form with the error in place", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn settle(
    state: web::Data<AppState>,
    req: HttpRequest,
    Protected { caller, form }: Protected<SettleFields>,
) -> Result<HttpResponse, WebError> {
    let client_id = client_of(&caller, Some(&form.client_id)).ok_or(WebError::NotFound)?;
    let body = json!({
        "period_start": instant(&form.period_start),
        "period_end": instant(&form.period_end),
        "pay": form.pay.is_some(),
        "idempotency_key": form.idempotency_key,
    });
    let result = match api::body(body) {
        Ok(body) => api::answer(
            crate::http::settlements::create(
                state.clone(),
                caller.auth(),
                IdempotencyKey::absent(),
                req,
                web::Path::from(client_id.clone()),
                body,
            )
            .await,
        ),
        Err(e) => Err(e),
    };
    match result {
        Ok(s) => Ok(page::see_other(&format!(
            "/console/settlements/{}?client_id={client_id}",
            text(&s, "id")
        ))),
        Err(e) if in_place(e.status) => {
            let status = e.status;
            let q = ListQuery {
                client_id: Some(client_id),
                cursor: None,
            };
            let page = list_page(&state, &caller, q, form, e.message).await?;
            page::render_status(status, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct DetailQuery {
    /// super admins: the settlement's client
    client_id: Option<String>,
    /// the action that just succeeded (a notice)
    done: Option<String>,
}

pub struct LineView {
    pub agent_id: String,
    pub players: String,
    pub basis: String,
    pub basis_amount: String,
    pub rate: String,
    pub amount: String,
    pub status: String,
    /// `(step, label key)` the line's status allows
    pub steps: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "console/settlement.html")]
struct DetailPage {
    chrome: Chrome,
    client_id: String,
    id: String,
    /// `(label key, value)`
    facts: Vec<(&'static str, String)>,
    lines: Vec<LineView>,
    /// `(label key, value)` of the revenue share
    share: Vec<(&'static str, String)>,
    can_run: bool,
    notice: String,
    /// `(agent, message)` of a refused action
    line_error: (String, String),
}

/// What a line's status lets an operator do next (`settlements::commission`).
fn steps_for(status: &str) -> Vec<(&'static str, &'static str)> {
    match status {
        "calculated" => vec![("approve", "settle.approve"), ("hold", "settle.hold")],
        "held" => vec![("approve", "settle.approve")],
        "approved" => vec![("pay", "settle.pay"), ("hold", "settle.hold")],
        _ => Vec::new(),
    }
}

async fn detail_page(
    state: &web::Data<AppState>,
    caller: &WebCaller,
    id: &str,
    asked: Option<&str>,
    done: Option<&str>,
    line_error: (String, String),
) -> Result<DetailPage, WebError> {
    let t = crate::web::i18n::english();
    let chrome = super::home::chrome(state, caller, "settle.title", "/settlements")?;
    let client_id = client_of(caller, asked).ok_or(WebError::NotFound)?;
    let s = api::answer(
        crate::http::settlements::get(
            state.clone(),
            caller.auth(),
            web::Path::from((client_id.clone(), id.to_owned())),
        )
        .await,
    )?;
    let currency = text(&s, "currency");
    let money = |v: &Value, k: &str| format!("{} {currency}", text(v, k));
    let facts = vec![
        ("settle.period_start", text(&s, "period_start")),
        ("settle.period_end", text(&s, "period_end")),
        ("settle.ngr", money(&s, "ngr")),
        ("settle.commission_total", money(&s, "commission_total")),
        ("users.status", text(&s, "state")),
        ("settle.origin", text(&s, "origin")),
        ("settle.created_at", text(&s, "created_at")),
        ("settle.posted_at", text(&s, "posted_at")),
    ];
    let r = &s["revenue_share"];
    let share = vec![
        ("settle.share_base", money(r, "base")),
        ("settle.rate", text(r, "rate")),
        ("money.amount", money(r, "amount")),
    ];
    let lines = s["commissions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| LineView {
            agent_id: text(l, "agent_id"),
            players: text(l, "players"),
            basis: text(l, "basis"),
            basis_amount: text(l, "basis_amount"),
            rate: text(l, "rate"),
            amount: text(l, "amount"),
            steps: steps_for(l["status"].as_str().unwrap_or("")),
            status: text(l, "status"),
        })
        .collect();
    let notice = match done {
        Some("approve" | "hold" | "pay") => t.get("settle.done").to_owned(),
        _ => String::new(),
    };
    // The API decides (`wallets.cash` admins and super admins); the buttons follow its rule.
    let can_run = match caller.caller.role {
        Role::SuperAdmin => true,
        Role::ClientAdmin => caller.caller.can(crate::auth::permissions::WALLETS_CASH),
        _ => false,
    };
    Ok(DetailPage {
        chrome,
        client_id,
        id: text(&s, "id"),
        facts,
        lines,
        share,
        can_run,
        notice,
        line_error,
    })
}

/// One settlement: its figures, commission lines and revenue share
#[utoipa::path(get, path = "/console/settlements/{id}", tag = "console",
    params(("id" = String, Path, description = "settlement id"), DetailQuery),
    responses(
        (status = 200, description = "the settlement", content_type = "text/html", body = String),
        (status = 303, description = "no session: to the login page"),
        (status = 400, description = "a query that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "no clients.read permission", content_type = "text/html", body = String),
        (status = 404, description = "no such settlement, or another client's", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn show(
    state: web::Data<AppState>,
    caller: WebCaller,
    id: web::Path<String>,
    q: web::Query<DetailQuery>,
) -> Result<HttpResponse, WebError> {
    let page = detail_page(
        &state,
        &caller,
        &id,
        q.client_id.as_deref(),
        q.done.as_deref(),
        Default::default(),
    )
    .await?;
    page::render(&page)
}

/// A line action's field.
#[derive(Deserialize, ToSchema)]
pub struct LineFields {
    /// super admins: the settlement's client
    #[serde(default)]
    client_id: String,
}

/// Approve, hold or pay an agent's commission line (the API's handlers)
#[utoipa::path(post, path = "/console/settlements/{id}/commissions/{agent_id}/{step}", tag = "console",
    params(("id" = String, Path, description = "settlement id"),
           ("agent_id" = String, Path, description = "the agent"),
           ("step" = String, Path, description = "approve, hold or pay")),
    request_body(content = LineFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "done: back to the settlement"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing CSRF token, another origin, or not allowed", content_type = "text/html", body = String),
        (status = 404, description = "no such settlement, line or step, or another client's", content_type = "text/html", body = String),
        (status = 409, description = "the line's status does not allow it (paid already): the page with the error in place", content_type = "text/html", body = String),
        (status = 422, description = "invalid: the page with the error in place", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn line_step(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    Protected { caller, form }: Protected<LineFields>,
) -> Result<HttpResponse, WebError> {
    let (id, agent, step) = path.into_inner();
    let client_id = client_of(&caller, Some(&form.client_id)).ok_or(WebError::NotFound)?;
    let target = web::Path::from((client_id.clone(), id.clone(), agent.clone()));
    let (s, a) = (state.clone(), caller.auth());
    let result = match step.as_str() {
        "approve" => crate::http::commission::approve(s, req, a, target).await,
        "hold" => crate::http::commission::hold(s, req, a, target).await,
        "pay" => crate::http::commission::pay(s, req, a, target).await,
        _ => return Err(WebError::NotFound),
    };
    match api::answer(result) {
        Ok(_) => Ok(page::see_other(&format!(
            "/console/settlements/{id}?client_id={client_id}&done={step}"
        ))),
        Err(e) if in_place(e.status) => {
            let status = e.status;
            let page = detail_page(
                &state,
                &caller,
                &id,
                Some(&client_id),
                None,
                (agent, e.message),
            )
            .await?;
            page::render_status(status, &page)
        }
        Err(e) => Err(e.into()),
    }
}
