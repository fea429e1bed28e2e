//! A game's page: transfer a chosen amount in (decimal string in the brand's currency, the
//! idempotency key generated when the form rendered), follow the transfer until it is
//! terminal, launch (the provider's URL), transfer out. Every step is the API's handler, so
//! limits, exclusions, provider switches and reach are the API's.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::brand::{Brand, BrandView};
use super::lobby::{Wallet, wallet};
use crate::http::extract::IdempotencyKey;
use crate::state::AppState;
use crate::web::csrf::Protected;
use crate::web::error::WebError;
use crate::web::login_pages::CsrfOnly;
use crate::web::page::{self, Chrome};
use crate::web::{WebCaller, amount, api, idempotency};

#[derive(Template)]
#[template(path = "site/game.html")]
struct GamePage {
    chrome: Chrome,
    brand: BrandView,
    wallet: Wallet,
    provider: String,
    name: String,
    base: String,
    /// The player's balance at the provider (empty when the provider did not answer).
    held: String,
    key_in: String,
    key_out: String,
    amount_in: String,
    amount_out: String,
    /// The refusal of the last step, shown above the forms (`error_of` names the form).
    error: String,
    error_of: &'static str,
}

#[derive(Template)]
#[template(path = "site/transfer.html")]
struct TransferPage {
    chrome: Chrome,
    brand: BrandView,
    wallet: Wallet,
    base: String,
    direction: String,
    amount: String,
    currency: String,
    state: String,
    terminal: bool,
}

#[derive(Template)]
#[template(path = "site/launch.html")]
struct LaunchPage {
    chrome: Chrome,
    brand: BrandView,
    wallet: Wallet,
    base: String,
    name: String,
    url: String,
}

/// A money form's fields.
#[derive(Deserialize, ToSchema)]
pub struct TransferFields {
    /// the session's CSRF token
    pub csrf: String,
    /// a decimal string in the brand's currency
    pub amount: String,
    /// generated when the form rendered
    pub idempotency_key: String,
}

/// A path segment, percent-encoded (game codes are the provider's).
pub fn encode_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

/// The game as the lobby lists it for the caller (not listed: 404, as for any unknown game).
async fn listed_game(
    state: &web::Data<AppState>,
    caller: &WebCaller,
    provider: &str,
    game: &str,
) -> Result<String, WebError> {
    if !crate::domain::PROVIDER_NAMES.contains(&provider) {
        return Err(WebError::NotFound);
    }
    super::lobby::games(state, caller, Some(provider))
        .await?
        .iter()
        .find(|g| text(g, "code") == game)
        .map(|g| text(g, "name"))
        .ok_or(WebError::NotFound)
}

struct Ctx {
    brand: Brand,
    caller: WebCaller,
    provider: String,
    game: String,
    name: String,
}

impl Ctx {
    /// `posted`: the caller a form's `Protected` extractor authenticated (else the session's).
    async fn load(
        state: &web::Data<AppState>,
        req: &HttpRequest,
        path: (String, String, String),
        posted: Option<WebCaller>,
    ) -> Result<Self, WebError> {
        let (code, provider, game) = path;
        let brand = Brand::load(state, &code).await?;
        let caller = match posted {
            Some(caller) => brand.admit_player(caller, req)?,
            None => brand.player(req).await?,
        };
        let name = listed_game(state, &caller, &provider, &game).await?;
        Ok(Self {
            brand,
            caller,
            provider,
            game,
            name,
        })
    }

    fn base(&self) -> String {
        self.brand.path(&format!(
            "/games/{}/{}",
            self.provider,
            encode_segment(&self.game)
        ))
    }

    async fn render(
        &self,
        state: &web::Data<AppState>,
        status: StatusCode,
        error: (String, &'static str),
        amounts: (String, String),
    ) -> Result<HttpResponse, WebError> {
        let held = api::answer(
            crate::http::providers::balance(
                state.clone(),
                self.caller.auth(),
                web::Path::from((self.caller.caller.user_id.clone(), self.provider.clone())),
            )
            .await,
        )
        .map(|v| text(&v, "balance"))
        .unwrap_or_default();
        page::render_status(
            status,
            &GamePage {
                chrome: self
                    .brand
                    .chrome(state, Some(&self.caller), "site.game.title", ""),
                brand: self.brand.view(),
                wallet: wallet(state, &self.caller).await?,
                provider: self.provider.clone(),
                name: self.name.clone(),
                base: self.base(),
                held,
                key_in: idempotency::new_key(),
                key_out: idempotency::new_key(),
                amount_in: amounts.0,
                amount_out: amounts.1,
                error: error.0,
                error_of: error.1,
            },
        )
    }
}

/// A game's page: transfer in, launch, transfer out
#[utoipa::path(get, path = "/play/{code}/games/{provider}/{game}", tag = "site",
    params(("code" = String, Path, description = "the brand's client code"),
           ("provider" = String, Path, description = "jdb or luckysports"),
           ("game" = String, Path, description = "the provider's game code")),
    responses(
        (status = 200, description = "the game's page", content_type = "text/html", body = String),
        (status = 303, description = "no session of this brand: to its login page"),
        (status = 403, description = "not a player of this brand", content_type = "text/html", body = String),
        (status = 404, description = "no such brand or game (for this brand)", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn game(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, WebError> {
    let ctx = Ctx::load(&state, &req, path.into_inner(), None).await?;
    ctx.render(
        &state,
        StatusCode::OK,
        (String::new(), ""),
        (String::new(), String::new()),
    )
    .await
}

async fn transfer(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: (String, String, String),
    form: Protected<TransferFields>,
    inward: bool,
) -> Result<HttpResponse, WebError> {
    let Protected { caller, form } = form;
    let ctx = Ctx::load(&state, &req, path, Some(caller)).await?;
    let which = if inward { "in" } else { "out" };
    let fields = &form;
    let amounts = if inward {
        (fields.amount.clone(), String::new())
    } else {
        (String::new(), fields.amount.clone())
    };
    let exponent = ctx.brand.currency.exponent;
    let parsed = match amount::parse(&fields.amount, exponent) {
        Ok(a) => a,
        Err(message) => {
            return ctx
                .render(
                    &state,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    (message, which),
                    amounts,
                )
                .await;
        }
    };
    let body = api::body(json!({
        "amount": amount::to_decimal(parsed, exponent),
        "idempotency_key": fields.idempotency_key,
    }))?;
    let target = web::Path::from((ctx.caller.caller.user_id.clone(), ctx.provider.clone()));
    let handler = if inward {
        crate::http::providers::transfer_in(
            state.clone(),
            ctx.caller.auth(),
            IdempotencyKey::absent(),
            target,
            body,
        )
        .await
    } else {
        crate::http::providers::transfer_out(
            state.clone(),
            ctx.caller.auth(),
            IdempotencyKey::absent(),
            target,
            body,
        )
        .await
    };
    // 200, 202 and 502 (refused, money back) all name the transfer: its page shows the state.
    match api::answer(handler) {
        Ok(answer) if !text(&answer, "transfer_id").is_empty() => Ok(page::see_other(&format!(
            "{}/transfers/{}",
            ctx.base(),
            text(&answer, "transfer_id")
        ))),
        Ok(_) => Err(WebError::Api(crate::http::ApiError::internal())),
        Err(e) => {
            ctx.render(&state, e.status, (e.message, which), amounts)
                .await
        }
    }
}

macro_rules! transfer_page {
    ($(#[$attr:meta])* $name:ident, $inward:expr) => {
        $(#[$attr])*
        pub async fn $name(
            state: web::Data<AppState>,
            req: HttpRequest,
            path: web::Path<(String, String, String)>,
            form: Protected<TransferFields>,
        ) -> Result<HttpResponse, WebError> {
            transfer(state, req, path.into_inner(), form, $inward).await
        }
    };
}

transfer_page!(
    /// Transfer money from the wallet to the game's provider
    ///
    /// 303 to the transfer's page (its state until terminal); else the game's page again with
    /// the refusal in place (the API's status: limits, exclusion, funds, provider off).
    #[utoipa::path(post, path = "/play/{code}/games/{provider}/{game}/transfer-in", tag = "site",
        params(("code" = String, Path, description = "the brand's client code"),
               ("provider" = String, Path, description = "jdb or luckysports"),
               ("game" = String, Path, description = "the provider's game code")),
        request_body(content = TransferFields, content_type = "application/x-www-form-urlencoded"),
        responses(
            (status = 303, description = "to the transfer's page, or no session: to the login page"),
            (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
            (status = 403, description = "CSRF or origin refused, not a player of this brand, or refused by a limit or exclusion (the page again)", content_type = "text/html", body = String),
            (status = 404, description = "no such brand or game", content_type = "text/html", body = String),
            (status = 409, description = "refused: funds, in game, key reused (the page again)", content_type = "text/html", body = String),
            (status = 422, description = "an amount that does not parse (the page again)", content_type = "text/html", body = String),
            (status = 429, description = "too many requests", content_type = "text/html", body = String),
            (status = 503, description = "provider or storage unavailable (the page again)", content_type = "text/html", body = String),
        ))]
    transfer_in,
    true
);

transfer_page!(
    /// Transfer money back from the game's provider to the wallet
    #[utoipa::path(post, path = "/play/{code}/games/{provider}/{game}/transfer-out", tag = "site",
        params(("code" = String, Path, description = "the brand's client code"),
               ("provider" = String, Path, description = "jdb or luckysports"),
               ("game" = String, Path, description = "the provider's game code")),
        request_body(content = TransferFields, content_type = "application/x-www-form-urlencoded"),
        responses(
            (status = 303, description = "to the transfer's page, or no session: to the login page"),
            (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
            (status = 403, description = "CSRF or origin refused, or not a player of this brand", content_type = "text/html", body = String),
            (status = 404, description = "no such brand or game", content_type = "text/html", body = String),
            (status = 409, description = "refused: funds at the provider, in game, key reused (the page again)", content_type = "text/html", body = String),
            (status = 422, description = "an amount that does not parse (the page again)", content_type = "text/html", body = String),
            (status = 429, description = "too many requests", content_type = "text/html", body = String),
            (status = 503, description = "provider or storage unavailable (the page again)", content_type = "text/html", body = String),
        ))]
    transfer_out,
    false
);

/// A transfer's state (reloads itself until terminal)
#[utoipa::path(get, path = "/play/{code}/games/{provider}/{game}/transfers/{transfer_id}", tag = "site",
    params(("code" = String, Path, description = "the brand's client code"),
           ("provider" = String, Path, description = "jdb or luckysports"),
           ("game" = String, Path, description = "the provider's game code"),
           ("transfer_id" = String, Path, description = "the transfer")),
    responses(
        (status = 200, description = "the transfer's state", content_type = "text/html", body = String),
        (status = 303, description = "no session of this brand: to its login page"),
        (status = 403, description = "not a player of this brand", content_type = "text/html", body = String),
        (status = 404, description = "no such brand, game, or transfer of this player", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn transfer_state(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String, String)>,
) -> Result<HttpResponse, WebError> {
    let (code, provider, game, transfer_id) = path.into_inner();
    let ctx = Ctx::load(&state, &req, (code, provider, game), None).await?;
    // The API's own check: a transfer of another player (or brand) is 404.
    let answer = api::answer(
        crate::http::providers::transfer_status(
            state.clone(),
            ctx.caller.auth(),
            web::Path::from((
                ctx.caller.caller.user_id.clone(),
                ctx.provider.clone(),
                transfer_id,
            )),
        )
        .await,
    )?;
    let transfer_state = text(&answer, "state");
    page::render(&TransferPage {
        chrome: ctx
            .brand
            .chrome(&state, Some(&ctx.caller), "site.transfer.title", ""),
        brand: ctx.brand.view(),
        wallet: wallet(&state, &ctx.caller).await?,
        base: ctx.base(),
        direction: text(&answer, "direction"),
        amount: text(&answer, "amount"),
        currency: text(&answer, "currency"),
        terminal: matches!(transfer_state.as_str(), "succeeded" | "failed"),
        state: transfer_state,
    })
}

/// Launch the game: a game session and the provider's URL
#[utoipa::path(post, path = "/play/{code}/games/{provider}/{game}/launch", tag = "site",
    params(("code" = String, Path, description = "the brand's client code"),
           ("provider" = String, Path, description = "jdb or luckysports"),
           ("game" = String, Path, description = "the provider's game code")),
    request_body(content = CsrfOnly, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "the launch link", content_type = "text/html", body = String),
        (status = 303, description = "no session of this brand: to its login page"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "CSRF or origin refused, not a player of this brand, or refused (excluded, provider off; the page again)", content_type = "text/html", body = String),
        (status = 404, description = "no such brand or game", content_type = "text/html", body = String),
        (status = 409, description = "refused by the provider (the page again)", content_type = "text/html", body = String),
        (status = 422, description = "refused (the page again)", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "provider or storage unavailable (the page again)", content_type = "text/html", body = String),
    ))]
pub async fn launch(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    form: Protected<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    let ctx = Ctx::load(&state, &req, path.into_inner(), Some(form.caller)).await?;
    let body = api::body(json!({ "game": ctx.game }))?;
    let answer = api::answer(
        crate::http::providers::launch(
            state.clone(),
            ctx.caller.auth(),
            web::Path::from((ctx.caller.caller.user_id.clone(), ctx.provider.clone())),
            body,
        )
        .await,
    );
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            return ctx
                .render(
                    &state,
                    e.status,
                    (e.message, "launch"),
                    (String::new(), String::new()),
                )
                .await;
        }
    };
    page::render(&LaunchPage {
        chrome: ctx
            .brand
            .chrome(&state, Some(&ctx.caller), "site.launch.title", ""),
        brand: ctx.brand.view(),
        wallet: wallet(&state, &ctx.caller).await?,
        base: ctx.base(),
        name: ctx.name,
        url: text(&answer, "url"),
    })
}
