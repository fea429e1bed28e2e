//! The lobby: the player's live balance and the games of the providers enabled for the brand
//! (the API's `GET /games`, which applies the brand's settings and switches), searched by name
//! and filtered by provider.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use super::brand::{Brand, BrandView};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{self, Chrome};
use crate::web::{WebCaller, api};

/// Games read for one lobby (pages of 200); a search looks at these.
const GAMES_MAX: usize = 1000;

#[derive(Template)]
#[template(path = "site/lobby.html")]
struct Lobby {
    chrome: Chrome,
    brand: BrandView,
    wallet: Wallet,
    q: String,
    provider: String,
    providers: Vec<String>,
    games: Vec<GameLink>,
}

/// The player's balance as the page was rendered, and the seq of their room at that moment
/// (read first: `site.js` asks the socket to resume after it, so no change is missed).
pub struct Wallet {
    pub user_id: String,
    pub balance: String,
    pub currency: String,
    pub seq: u64,
}

struct GameLink {
    provider: String,
    name: String,
    game_type: String,
    href: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LobbyQuery {
    /// part of a game's name or code
    #[serde(default)]
    q: String,
    /// one provider's games
    #[serde(default)]
    provider: String,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

/// The caller's wallet through the API's balance handler, with the room seq read before it.
pub async fn wallet(state: &web::Data<AppState>, caller: &WebCaller) -> Result<Wallet, WebError> {
    let user_id = caller.caller.user_id.clone();
    let seq = state
        .bus
        .latest_seq(&format!("user:{user_id}"))
        .await
        .unwrap_or(0);
    let answer = api::answer(
        crate::http::wallets::balance(
            state.clone(),
            caller.auth(),
            web::Path::from(user_id.clone()),
            web::Query::from_query("").map_err(|_| WebError::NotFound)?,
        )
        .await,
    )?;
    Ok(Wallet {
        user_id,
        balance: text(&answer, "balance"),
        currency: text(&answer, "currency"),
        seq,
    })
}

/// The games the API lists for the caller (its client's), `provider` only when given.
pub async fn games(
    state: &web::Data<AppState>,
    caller: &WebCaller,
    provider: Option<&str>,
) -> Result<Vec<Value>, WebError> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "200".to_owned())];
        if let Some(p) = provider {
            query.push(("provider", p.to_owned()));
        }
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let qs =
            serde_urlencoded::to_string(&query).map_err(|e| WebError::BadForm(e.to_string()))?;
        let answer = api::answer(
            crate::http::games::list_games(
                state.clone(),
                caller.auth(),
                web::Query::from_query(&qs).map_err(|e| WebError::BadForm(e.to_string()))?,
            )
            .await,
        )?;
        if let Some(items) = answer.get("items").and_then(Value::as_array) {
            all.extend(items.iter().cloned());
        }
        cursor = answer
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() || all.len() >= GAMES_MAX {
            return Ok(all);
        }
    }
}

/// A brand's lobby (logged-in players)
#[utoipa::path(get, path = "/play/{code}", tag = "site", params(
        ("code" = String, Path, description = "the brand's client code"), LobbyQuery),
    responses(
        (status = 200, description = "the lobby", content_type = "text/html", body = String),
        (status = 303, description = "no session of this brand: to its login page"),
        (status = 400, description = "a query that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "not a player of this brand", content_type = "text/html", body = String),
        (status = 404, description = "no such brand", content_type = "text/html", body = String),
        (status = 422, description = "an unknown provider", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: web::Path<String>,
    q: web::Query<LobbyQuery>,
) -> Result<HttpResponse, WebError> {
    let brand = Brand::load(&state, &code).await?;
    let caller = brand.caller(&req).await?;
    if caller.caller.role != crate::domain::Role::Player {
        // Agents' page on the site is the shop.
        return Ok(page::see_other(&brand.path("/shop")));
    }
    let wallet = wallet(&state, &caller).await?;
    let all = games(&state, &caller, None).await?;
    let mut providers: Vec<String> = all.iter().map(|g| text(g, "provider")).collect();
    providers.dedup();
    let q = q.into_inner();
    let needle = q.q.trim().to_lowercase();
    let provider = q.provider.trim().to_owned();
    let games = all
        .iter()
        .filter(|g| provider.is_empty() || text(g, "provider") == provider)
        .filter(|g| {
            needle.is_empty()
                || text(g, "name").to_lowercase().contains(&needle)
                || text(g, "code").to_lowercase().contains(&needle)
        })
        .map(|g| GameLink {
            provider: text(g, "provider"),
            name: text(g, "name"),
            game_type: text(g, "type"),
            href: brand.path(&format!(
                "/games/{}/{}",
                text(g, "provider"),
                super::play::encode_segment(&text(g, "code"))
            )),
        })
        .collect();
    page::render(&Lobby {
        chrome: brand.chrome(&state, Some(&caller), "site.lobby.title", ""),
        brand: brand.view(),
        wallet,
        q: q.q,
        provider,
        providers,
        games,
    })
}
