//! `/api/v1/users/{id}/providers/{provider}/...` and `/api/v1/providers/{provider}/games`:
//! transfers between a player's wallet and a provider, the provider balance, game launch and
//! catalog. Handlers parse and authorize, then hand the work to `transfers::service`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::{Auth, IdempotencyKey};
use super::users::reachable_user;
use crate::access;
use crate::auth::Caller;
use crate::domain::{Amount, Currency, Role};
use crate::ledger::accounts::wallet_id;
use crate::providers::Direction;
use crate::state::AppState;
use crate::store::{ClientRow, UserRow};
use crate::transfers::{ProviderError, SUCCEEDED, TransferRequest};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// A decimal string, kept raw so a JSON number gets a clear 422.
    amount: serde_json::Value,
    /// The key may come in the body instead of the `Idempotency-Key` header.
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchBody {
    game: String,
    lang: Option<String>,
}

impl From<ProviderError> for ApiError {
    fn from(e: ProviderError) -> Self {
        use actix_web::http::StatusCode;
        match e {
            ProviderError::UnknownProvider => ApiError::not_found("provider"),
            ProviderError::NotEnabled => ApiError::not_found("provider"),
            ProviderError::Unavailable(_) => ApiError::unavailable(
                "provider_unavailable",
                "the game provider is unavailable; try again later",
            ),
            ProviderError::InsufficientFunds => ApiError::conflict(
                "insufficient_funds",
                "the balance is too low for this amount",
            ),
            ProviderError::Refused(m) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "provider_refused", m)
            }
            ProviderError::Callback(c) => {
                use crate::providers::CallbackError as C;
                match c {
                    C::Unsupported => ApiError::not_found("callback endpoint"),
                    C::Unauthenticated => ApiError::unauthorized("unauthenticated", c.to_string()),
                    C::BadSignature => ApiError::unauthorized("invalid_signature", c.to_string()),
                    C::Stale => ApiError::unauthorized("stale_timestamp", c.to_string()),
                    C::Malformed(m) => ApiError::validation(m),
                }
            }
            ProviderError::ForeignPlayer => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this operator account does not serve that player",
            ),
            ProviderError::ProviderDisabled => ApiError::new(
                StatusCode::FORBIDDEN,
                "provider_disabled",
                "this game provider is switched off for your casino",
            ),
            ProviderError::GameDisabled => ApiError::new(
                StatusCode::FORBIDDEN,
                "game_disabled",
                "this game is switched off for your casino",
            ),
            ProviderError::ProviderInactive => ApiError::new(
                StatusCode::FORBIDDEN,
                "provider_inactive",
                "this game provider is disabled on the platform: no new transfers in or launches; money can still be transferred out",
            ),
            ProviderError::Busy => {
                ApiError::unavailable("busy", "the record is being updated; retry")
            }
            ProviderError::Store(e) => e.into(),
            ProviderError::Wallet(e) => e.into(),
        }
    }
}

/// The target player, their client and currency, if the caller may act on their games:
/// the player themself, an agent above them, or their client's admin (DESIGN section 6).
async fn target(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(UserRow, ClientRow, Currency), ApiError> {
    if caller.role == Role::SuperAdmin {
        return Err(ApiError::forbidden());
    }
    let user = reachable_user(state, caller, id).await?;
    let (client, currency) = access::wallet_client(&state.store, &user).await?;
    Ok((user, client, currency))
}

async fn transfer(
    state: web::Data<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    path: (String, String),
    body: TransferBody,
    direction: Direction,
) -> Result<HttpResponse, ApiError> {
    let key = key.or_body(body.idempotency_key)?;
    let (user_id, provider) = path;
    let (user, client, currency) = target(&state, &caller, &user_id).await?;
    state.providers.account_for(&client, &provider).await?;
    let amount = match &body.amount {
        serde_json::Value::String(text) => Amount::parse(text, currency.exponent)?,
        _ => return Err(crate::domain::AmountError::NotADecimal.into()),
    };
    if amount.minor() <= 0 {
        return Err(ApiError::validation("amount must be positive"));
    }
    let status = state
        .providers
        .transfer(TransferRequest {
            client,
            currency: currency.clone(),
            user_id: user.id.clone(),
            actor_id: caller.user_id.clone(),
            idempotency_key: key,
            provider,
            direction,
            amount,
        })
        .await?;
    if status.player_in_game {
        return Err(ApiError::conflict(
            "player_in_game",
            "the player was in a game; they have been taken out of it, try again in a few seconds",
        ));
    }
    if status.insufficient_funds {
        return Err(ApiError::conflict(
            "insufficient_funds",
            "the balance at the provider is too low for this amount",
        ));
    }
    let balance = state
        .store
        .account(&wallet_id(&user.id))
        .await?
        .map(|a| currency.format(a.balance));
    let body = json!({
        "transfer_id": status.transfer_id,
        "state": status.state,
        "balance": balance,
        "currency": currency.code,
    });
    Ok(match status.state.as_str() {
        SUCCEEDED => HttpResponse::Ok().json(body),
        "failed" => HttpResponse::BadGateway().json(json!({
            "error": { "code": "provider_refused", "message": "the provider refused the transfer; nothing moved" },
            "transfer_id": body["transfer_id"], "state": "failed", "balance": body["balance"],
        })),
        _ => HttpResponse::Accepted().json(body),
    })
}

macro_rules! transfer_handler {
    ($name:ident, $direction:expr) => {
        pub async fn $name(
            state: web::Data<AppState>,
            Auth(caller): Auth,
            key: IdempotencyKey,
            path: web::Path<(String, String)>,
            body: web::Json<TransferBody>,
        ) -> Result<HttpResponse, ApiError> {
            transfer(
                state,
                caller,
                key,
                path.into_inner(),
                body.into_inner(),
                $direction,
            )
            .await
        }
    };
}

transfer_handler!(transfer_in, Direction::In);
transfer_handler!(transfer_out, Direction::Out);

pub async fn balance(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, provider) = path.into_inner();
    let (user, client, currency) = target(&state, &caller, &user_id).await?;
    let minor = state
        .providers
        .balance(&client, &currency, &user.id, &provider)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "user_id": user.id,
        "provider": provider,
        "balance": currency.format(minor),
        "currency": currency.code,
    })))
}

pub async fn launch(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
    body: web::Json<LaunchBody>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, provider) = path.into_inner();
    let (user, client, _) = target(&state, &caller, &user_id).await?;
    let game = body.game.trim();
    if game.is_empty() || game.len() > 64 {
        return Err(ApiError::validation("game must be 1 to 64 characters"));
    }
    let lang = body.lang.as_deref().unwrap_or("en");
    if !matches!(lang, "en" | "cn") {
        return Err(ApiError::validation("lang must be en or cn"));
    }
    let (session_id, url) = state
        .providers
        .launch(&client, &user.id, &provider, game, lang)
        .await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "session_id": session_id, "provider": provider, "url": url })))
}

/// The provider's catalog, for a caller whose client has the provider enabled.
pub async fn games(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    provider: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let client_id = caller.client_id.clone().ok_or_else(ApiError::forbidden)?;
    let client = access::client(&state.store, &client_id).await?;
    let games = state.providers.games(&client, &provider).await?;
    Ok(HttpResponse::Ok().json(json!({ "provider": provider.as_str(), "games": games })))
}

/// One transfer's state, for a client that got 202 and does not watch the websocket.
pub async fn transfer_status(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, provider, transfer_id) = path.into_inner();
    let (user, client, currency) = target(&state, &caller, &user_id).await?;
    let row = state
        .store
        .transfer(&transfer_id)
        .await?
        .filter(|t| t.client_id == client.id && t.user_id == user.id && t.provider == provider)
        .ok_or_else(|| ApiError::not_found("transfer"))?;
    Ok(HttpResponse::Ok().json(json!({
        "transfer_id": row.id,
        "provider": row.provider,
        "direction": row.direction,
        "amount": currency.format(row.amount),
        "state": row.state,
        "currency": currency.code,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchBody {
    enabled: bool,
}

/// `PUT /api/v1/clients/{id}/providers/{provider}[/games/{game}]`: a client's admins (or a
/// super admin) switch a provider or one of its games on or off for that client.
async fn switch(
    state: &AppState,
    caller: &Caller,
    client_id: &str,
    provider: &str,
    game: &str,
    enabled: bool,
) -> Result<HttpResponse, ApiError> {
    access::client_reach(caller, client_id).require("client")?;
    let client = access::client(&state.store, client_id).await?;
    state.providers.account_for(&client, provider).await?;
    if game.is_empty() || game.len() > 64 {
        return Err(ApiError::validation("game must be 1 to 64 characters"));
    }
    state
        .store
        .set_client_game(&client.id, provider, game, enabled)
        .await?;
    crate::audit::Event::new("client.provider_switch")
        .by(caller)
        .client(Some(&client.id))
        .target("client", &client.id)
        .after(json!({ "provider": provider, "game": game, "enabled": enabled }))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "client_id": client.id, "provider": provider, "game": game, "enabled": enabled,
    })))
}

pub async fn switch_provider(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
    body: web::Json<SwitchBody>,
) -> Result<HttpResponse, ApiError> {
    let (client_id, provider) = path.into_inner();
    switch(&state, &caller, &client_id, &provider, "*", body.enabled).await
}

pub async fn switch_game(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String, String)>,
    body: web::Json<SwitchBody>,
) -> Result<HttpResponse, ApiError> {
    let (client_id, provider, game) = path.into_inner();
    if game == "*" {
        return Err(ApiError::validation(
            "name a game, or switch the provider itself",
        ));
    }
    switch(&state, &caller, &client_id, &provider, &game, body.enabled).await
}
