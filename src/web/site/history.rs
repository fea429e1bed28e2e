//! The player's own history (wallet movements and game sessions) and stored notifications,
//! read through the API's handlers with the player's own id: nothing here takes an id from the
//! URL, so there is no one else's data to reach.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use super::brand::{Brand, BrandView};
use super::lobby::{Wallet, wallet};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{self, Chrome};
use crate::web::{WebCaller, api};

#[derive(Template)]
#[template(path = "site/history.html")]
struct HistoryPage {
    chrome: Chrome,
    brand: BrandView,
    wallet: Wallet,
    movements: Vec<Row>,
    sessions: Vec<Row>,
    /// The next (older) page of movements, if any.
    older: String,
}

#[derive(Template)]
#[template(path = "site/notifications.html")]
struct NotificationsPage {
    chrome: Chrome,
    brand: BrandView,
    wallet: Wallet,
    notices: Vec<Row>,
}

/// A table row: its cells, already text.
struct Row {
    cells: Vec<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CursorQuery {
    /// the previous page's cursor (older movements)
    cursor: Option<String>,
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn items(answer: &Value) -> Vec<Value> {
    answer
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn rows(answer: &Value, keys: &[&str]) -> Vec<Row> {
    items(answer)
        .iter()
        .map(|item| Row {
            cells: keys.iter().map(|k| text(item, k)).collect(),
        })
        .collect()
}

fn query<T: serde::de::DeserializeOwned>(
    pairs: &[(&str, &str)],
) -> Result<web::Query<T>, WebError> {
    let qs = serde_urlencoded::to_string(pairs).map_err(|e| WebError::BadForm(e.to_string()))?;
    web::Query::from_query(&qs).map_err(|e| WebError::BadForm(e.to_string()))
}

async fn own(
    state: &AppState,
    req: &HttpRequest,
    code: &str,
) -> Result<(Brand, WebCaller), WebError> {
    let brand = Brand::load(state, code).await?;
    let caller = brand.player(req).await?;
    Ok((brand, caller))
}

/// The player's wallet movements and game sessions
#[utoipa::path(get, path = "/play/{code}/history", tag = "site", params(
        ("code" = String, Path, description = "the brand's client code"), CursorQuery),
    responses(
        (status = 200, description = "the history", content_type = "text/html", body = String),
        (status = 303, description = "no session of this brand: to its login page"),
        (status = 400, description = "a query that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "not a player of this brand", content_type = "text/html", body = String),
        (status = 404, description = "no such brand", content_type = "text/html", body = String),
        (status = 422, description = "a cursor this server did not issue", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn history(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: web::Path<String>,
    q: web::Query<CursorQuery>,
) -> Result<HttpResponse, WebError> {
    let (brand, caller) = own(&state, &req, &code).await?;
    let me = web::Path::from(caller.caller.user_id.clone());
    let mut pairs = vec![("limit", "50")];
    if let Some(c) = q.cursor.as_deref() {
        pairs.push(("cursor", c));
    }
    let movements = api::answer(
        crate::http::wallets::history(state.clone(), caller.auth(), me, query(&pairs)?).await,
    )?;
    let sessions = api::answer(
        crate::http::games::list_sessions(
            state.clone(),
            caller.auth(),
            web::Path::from(caller.caller.user_id.clone()),
            query(&[("limit", "20")])?,
        )
        .await,
    )?;
    let older = movements
        .get("next_cursor")
        .and_then(Value::as_str)
        .map(|c| {
            format!(
                "{}?cursor={}",
                brand.path("/history"),
                crate::web::session::encode_next(c)
            )
        })
        .unwrap_or_default();
    page::render(&HistoryPage {
        chrome: brand.chrome(&state, Some(&caller), "site.history.title", "/history"),
        brand: brand.view(),
        wallet: wallet(&state, &caller).await?,
        movements: rows(
            &movements,
            &["created_at", "kind", "amount", "balance_after"],
        ),
        sessions: rows(
            &sessions,
            &["started_at", "provider", "game_code", "status"],
        ),
        older,
    })
}

/// The player's stored notifications (their own and the brand's)
#[utoipa::path(get, path = "/play/{code}/notifications", tag = "site",
    params(("code" = String, Path, description = "the brand's client code")),
    responses(
        (status = 200, description = "the notifications", content_type = "text/html", body = String),
        (status = 303, description = "no session of this brand: to its login page"),
        (status = 403, description = "not a player of this brand", content_type = "text/html", body = String),
        (status = 404, description = "no such brand", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn notifications(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let (brand, caller) = own(&state, &req, &code).await?;
    let answer = api::answer(
        crate::http::notifications::list(
            state.clone(),
            caller.auth(),
            web::Path::from(caller.caller.user_id.clone()),
            query(&[("limit", "50")])?,
        )
        .await,
    )?;
    page::render(&NotificationsPage {
        chrome: brand.chrome(
            &state,
            Some(&caller),
            "site.notifications.title",
            "/notifications",
        ),
        brand: brand.view(),
        wallet: wallet(&state, &caller).await?,
        notices: rows(&answer, &["created_at", "title", "body", "read"]),
    })
}
