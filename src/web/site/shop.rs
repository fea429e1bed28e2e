//! The agents' shop view: an agent finds a player in its downline (the API's user listing,
//! which scopes an agent to its subtree) and credits or debits them (the API's wallet credit
//! and debit: reach, permissions, limits, idempotency, audit are the API's).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::brand::{Brand, BrandView};
use super::lobby::{Wallet, wallet};
use crate::domain::Role;
use crate::http::extract::IdempotencyKey;
use crate::state::AppState;
use crate::web::csrf::Protected;
use crate::web::error::WebError;
use crate::web::page::{self, Chrome};
use crate::web::{WebCaller, amount, api, idempotency};

/// Players listed per search.
const FOUND_MAX: &str = "20";

#[derive(Template)]
#[template(path = "site/shop.html")]
struct ShopPage {
    chrome: Chrome,
    brand: BrandView,
    wallet: Wallet,
    username: String,
    players: Vec<Player>,
    /// The listed players' rooms, for live balances.
    rooms: String,
    /// The outcome of the last move (a notice) or its refusal (an error).
    notice: String,
    error: String,
}

struct Player {
    id: String,
    username: String,
    /// (balance, currency); empty when the wallet could not be read.
    balance: (String, String),
    key: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShopQuery {
    /// the start of a player's username
    #[serde(default)]
    username: String,
    /// set after a move: shown as done
    #[serde(default)]
    done: String,
}

/// A credit or debit form.
#[derive(Deserialize, ToSchema)]
pub struct ShopFields {
    /// the session's CSRF token
    pub csrf: String,
    /// a decimal string in the brand's currency
    pub amount: String,
    /// generated when the form rendered
    pub idempotency_key: String,
    /// the search to show again afterwards
    #[serde(default)]
    pub username: String,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

/// The brand and its agent: `posted` when a form's `Protected` extractor authenticated it.
async fn agent(
    state: &AppState,
    req: &HttpRequest,
    code: &str,
    posted: Option<WebCaller>,
) -> Result<(Brand, WebCaller), WebError> {
    let brand = Brand::load(state, code).await?;
    let caller = match posted {
        Some(caller) => brand.admit(caller, req)?,
        None => brand.caller(req).await?,
    };
    if caller.caller.role != Role::Agent {
        return Err(WebError::Forbidden);
    }
    Ok((brand, caller))
}

async fn render(
    state: &web::Data<AppState>,
    brand: &Brand,
    caller: &WebCaller,
    status: StatusCode,
    username: &str,
    notice: String,
    error: String,
) -> Result<HttpResponse, WebError> {
    let mut players = Vec::new();
    if !username.trim().is_empty() {
        let qs = serde_urlencoded::to_string([
            ("role", "player"),
            ("username", username.trim()),
            ("limit", FOUND_MAX),
        ])
        .map_err(|e| WebError::BadForm(e.to_string()))?;
        let found = api::answer(
            crate::http::user_admin::list(
                state.clone(),
                caller.auth(),
                web::Query::from_query(&qs).map_err(|e| WebError::BadForm(e.to_string()))?,
            )
            .await,
        )?;
        for user in found
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let id = text(&user, "id");
            let balance = api::answer(
                crate::http::wallets::balance(
                    state.clone(),
                    caller.auth(),
                    web::Path::from(id.clone()),
                    web::Query::from_query("").map_err(|_| WebError::NotFound)?,
                )
                .await,
            )
            .map(|w| (text(&w, "balance"), text(&w, "currency")))
            .unwrap_or_default();
            players.push(Player {
                id,
                username: text(&user, "username"),
                balance,
                key: idempotency::new_key(),
            });
        }
    }
    // The page watches the players' rooms (an agent may: they are its downline).
    let rooms = players
        .iter()
        .map(|p| format!("user:{}", p.id))
        .collect::<Vec<_>>()
        .join(" ");
    page::render_status(
        status,
        &ShopPage {
            rooms,
            chrome: brand.chrome(state, Some(caller), "site.shop.title", "/shop"),
            brand: brand.view(),
            wallet: wallet(state, caller).await?,
            username: username.to_owned(),
            players,
            notice,
            error,
        },
    )
}

/// The agents' shop: find a downline player, credit or debit them
#[utoipa::path(get, path = "/play/{code}/shop", tag = "site", params(
        ("code" = String, Path, description = "the brand's client code"), ShopQuery),
    responses(
        (status = 200, description = "the shop", content_type = "text/html", body = String),
        (status = 303, description = "no session of this brand: to its login page"),
        (status = 400, description = "a query that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "not an agent of this brand", content_type = "text/html", body = String),
        (status = 404, description = "no such brand", content_type = "text/html", body = String),
        (status = 422, description = "a search the API refuses", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: web::Path<String>,
    q: web::Query<ShopQuery>,
) -> Result<HttpResponse, WebError> {
    let (brand, caller) = agent(&state, &req, &code, None).await?;
    let t = crate::web::i18n::english();
    let notice = if q.done.is_empty() {
        String::new()
    } else {
        t.get("site.shop.done").to_owned()
    };
    render(
        &state,
        &brand,
        &caller,
        StatusCode::OK,
        &q.username,
        notice,
        String::new(),
    )
    .await
}

async fn move_money(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: (String, String),
    form: Protected<ShopFields>,
    credit: bool,
) -> Result<HttpResponse, WebError> {
    let (code, user_id) = path;
    let Protected { caller, form: f } = form;
    let (brand, caller) = agent(&state, &req, &code, Some(caller)).await?;
    let f = &f;
    let exponent = brand.currency.exponent;
    let parsed = match amount::parse(&f.amount, exponent) {
        Ok(a) => a,
        Err(m) => {
            return render(
                &state,
                &brand,
                &caller,
                StatusCode::UNPROCESSABLE_ENTITY,
                &f.username,
                String::new(),
                m,
            )
            .await;
        }
    };
    let body = api::body(json!({
        "amount": amount::to_decimal(parsed, exponent),
        "idempotency_key": f.idempotency_key,
    }))?;
    let target = web::Path::from(user_id);
    let answer = if credit {
        crate::http::wallets::credit(
            state.clone(),
            caller.auth(),
            IdempotencyKey::absent(),
            target,
            body,
        )
        .await
    } else {
        crate::http::wallets::debit(
            state.clone(),
            caller.auth(),
            IdempotencyKey::absent(),
            target,
            body,
        )
        .await
    };
    match api::answer(answer) {
        Ok(_) => {
            let qs =
                serde_urlencoded::to_string([("username", f.username.as_str()), ("done", "1")])
                    .unwrap_or_default();
            Ok(page::see_other(&format!("{}?{qs}", brand.path("/shop"))))
        }
        // Outside the agent's reach: the API's 403/404, as pages.
        Err(e) if matches!(e.status.as_u16(), 403 | 404) => Err(e.into()),
        Err(e) => {
            render(
                &state,
                &brand,
                &caller,
                e.status,
                &f.username,
                String::new(),
                e.message,
            )
            .await
        }
    }
}

macro_rules! shop_move {
    ($(#[$attr:meta])* $name:ident, $credit:expr) => {
        $(#[$attr])*
        pub async fn $name(
            state: web::Data<AppState>,
            req: HttpRequest,
            path: web::Path<(String, String)>,
            form: Protected<ShopFields>,
        ) -> Result<HttpResponse, WebError> {
            move_money(state, req, path.into_inner(), form, $credit).await
        }
    };
}

shop_move!(
    /// Credit a downline player from the agent's balance
    ///
    /// 303 back to the shop; else the shop again with the refusal (funds, limits, exclusion).
    #[utoipa::path(post, path = "/play/{code}/shop/{user_id}/credit", tag = "site",
        params(("code" = String, Path, description = "the brand's client code"),
               ("user_id" = String, Path, description = "the player")),
        request_body(content = ShopFields, content_type = "application/x-www-form-urlencoded"),
        responses(
            (status = 303, description = "done: back to the shop, or no session: to the login page"),
            (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
            (status = 403, description = "CSRF or origin refused, not an agent, or the player is outside its downline", content_type = "text/html", body = String),
            (status = 404, description = "no such brand or user", content_type = "text/html", body = String),
            (status = 409, description = "funds too low, or key reused (the shop again)", content_type = "text/html", body = String),
            (status = 422, description = "an amount refused (the shop again)", content_type = "text/html", body = String),
            (status = 429, description = "too many requests", content_type = "text/html", body = String),
            (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
        ))]
    credit,
    true
);

shop_move!(
    /// Debit a downline player back to the agent
    #[utoipa::path(post, path = "/play/{code}/shop/{user_id}/debit", tag = "site",
        params(("code" = String, Path, description = "the brand's client code"),
               ("user_id" = String, Path, description = "the player")),
        request_body(content = ShopFields, content_type = "application/x-www-form-urlencoded"),
        responses(
            (status = 303, description = "done: back to the shop, or no session: to the login page"),
            (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
            (status = 403, description = "CSRF or origin refused, not an agent, or the player is outside its downline", content_type = "text/html", body = String),
            (status = 404, description = "no such brand or user", content_type = "text/html", body = String),
            (status = 409, description = "funds too low, or key reused (the shop again)", content_type = "text/html", body = String),
            (status = 422, description = "an amount refused (the shop again)", content_type = "text/html", body = String),
            (status = 429, description = "too many requests", content_type = "text/html", body = String),
            (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
        ))]
    debit,
    false
);
