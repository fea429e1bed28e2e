//! `/api/v1/users/{id}/providers/{provider}/...` and `/api/v1/providers/{provider}/games`:
//! transfers between a player's wallet and a provider, the provider balance, game launch and
//! catalog. Handlers parse and authorize, then hand the work to `transfers::service`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorDetail};
use super::extract::{Auth, IdempotencyKey};
use super::openapi::{BadBody, Conflict, Invalid, Secured, Unavailable, Unknown};
use super::users::reachable_user;
use crate::access;
use crate::auth::Caller;
use crate::domain::{Amount, Currency, Role, TransferState};
use crate::ledger::accounts::wallet_id;
use crate::providers::{Direction, GameInfo};
use crate::state::AppState;
use crate::store::{ClientRow, UserRow};
use crate::transfers::{ProviderError, TransferRequest};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProviderTransferBody)]
pub struct TransferBody {
    /// A decimal string in the currency's exponent, kept raw so a JSON number gets a clear 422.
    #[schema(value_type = String, example = "150.00")]
    amount: serde_json::Value,
    /// The key may come in the body instead of the `Idempotency-Key` header: 1 to 128
    /// printable ASCII characters (both: they must agree).
    #[schema(min_length = 1, max_length = 128, pattern = "^[\\x21-\\x7E]+$")]
    idempotency_key: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchBody {
    /// the provider's game code, 1 to 64 characters
    game: String,
    /// en (default) or cn
    #[schema(pattern = "^(en|cn)$")]
    lang: Option<String>,
}

/// A transfer between the wallet and a provider, as it stands.
#[derive(Serialize, ToSchema)]
pub struct ProviderTransfer {
    transfer_id: String,
    /// pending, unknown, succeeded or failed
    #[schema(
        pattern = "^(pending|unknown|succeeded|failed)$",
        example = "succeeded"
    )]
    state: String,
    /// the wallet's balance now, decimal string
    #[schema(example = "150.00")]
    balance: Option<String>,
    currency: String,
}

/// 502: the provider refused the transfer and nothing moved.
#[derive(Serialize, ToSchema)]
pub struct TransferRefused {
    error: ErrorDetail,
    transfer_id: String,
    /// failed
    state: String,
    balance: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderBalance {
    user_id: String,
    provider: String,
    /// decimal string
    #[schema(example = "150.00")]
    balance: String,
    currency: String,
}

#[derive(Serialize, ToSchema)]
pub struct Launch {
    session_id: String,
    provider: String,
    /// the provider's game URL for the player's browser
    url: String,
}

#[derive(Serialize, ToSchema)]
pub struct Games {
    provider: String,
    games: Vec<GameInfo>,
}

/// One transfer's record.
#[derive(Serialize, ToSchema)]
pub struct TransferRecord {
    transfer_id: String,
    provider: String,
    /// in (wallet to provider) or out
    #[schema(pattern = "^(in|out)$")]
    direction: String,
    /// decimal string
    amount: String,
    /// pending, unknown, succeeded or failed
    #[schema(
        pattern = "^(pending|unknown|succeeded|failed)$",
        example = "succeeded"
    )]
    state: String,
    currency: String,
}

/// A provider or game switched for a client.
#[derive(Serialize, ToSchema)]
pub struct Switched {
    client_id: String,
    provider: String,
    /// the game, or `*` for the provider itself
    game: String,
    enabled: bool,
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
            ProviderError::Settings(e) => e.into(),
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
    let state = status.state;
    let body = ProviderTransfer {
        transfer_id: status.transfer_id,
        state: state.as_str().to_owned(),
        balance,
        currency: currency.code,
    };
    Ok(match state {
        TransferState::Succeeded => HttpResponse::Ok().json(body),
        TransferState::Failed => HttpResponse::BadGateway().json(TransferRefused {
            error: ErrorDetail {
                code: "provider_refused",
                message: "the provider refused the transfer; nothing moved".into(),
                field: None,
                resets_at: None,
            },
            transfer_id: body.transfer_id,
            state: state.as_str().to_owned(),
            balance: body.balance,
        }),
        TransferState::Pending | TransferState::Unknown => HttpResponse::Accepted().json(body),
    })
}

macro_rules! transfer_handler {
    ($(#[$attr:meta])* $name:ident, $direction:expr) => {
        $(#[$attr])*
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

transfer_handler!(
    /// Wallet to a game provider (`jdb`, `luckysports`); 202 while pending/unknown
    #[utoipa::path(post, path = "/api/v1/users/{id}/providers/{provider}/transfer-in",
        tag = "providers", security(("bearer" = [])), params(IdempotencyKey),
        request_body = TransferBody,
        responses(
            (status = 200, description = "success", body = ProviderTransfer),
            (status = 202, description = "pending or unknown: the reconciler finishes it; the player sees the result on the websocket", body = ProviderTransfer),
            (status = 502, description = "the provider refused the transfer; nothing moved", body = TransferRefused),
            Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
        ))]
    transfer_in,
    Direction::In
);
transfer_handler!(
    /// Game provider back to the wallet; 202 while pending/unknown
    #[utoipa::path(post, path = "/api/v1/users/{id}/providers/{provider}/transfer-out",
        tag = "providers", security(("bearer" = [])), params(IdempotencyKey),
        request_body = TransferBody,
        responses(
            (status = 200, description = "success", body = ProviderTransfer),
            (status = 202, description = "pending or unknown: the reconciler finishes it; the player sees the result on the websocket", body = ProviderTransfer),
            (status = 502, description = "the provider refused the transfer; nothing moved", body = TransferRefused),
            Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
        ))]
    transfer_out,
    Direction::Out
);

/// The player's balance at the provider
#[utoipa::path(get, path = "/api/v1/users/{id}/providers/{provider}/balance",
    tag = "providers", security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = ProviderBalance),
        Secured, Unknown, Invalid, Unavailable,
    ))]
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
    Ok(HttpResponse::Ok().json(ProviderBalance {
        user_id: user.id,
        provider,
        balance: currency.format(minor),
        currency: currency.code,
    }))
}

/// Start a game session; the provider's game URL
#[utoipa::path(post, path = "/api/v1/users/{id}/providers/{provider}/launch",
    tag = "providers", security(("bearer" = [])), request_body = LaunchBody,
    responses(
        (status = 200, description = "success", body = Launch),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
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
    // An excluded player starts no game (issue 19).
    state
        .wallets
        .protection()
        .require_not_excluded(&user.id)
        .await?;
    let (session_id, url) = state
        .providers
        .launch(&client, &user.id, &provider, game, lang)
        .await?;
    Ok(HttpResponse::Ok().json(Launch {
        session_id,
        provider,
        url,
    }))
}

/// The provider's catalog, without games switched off for the caller's client
///
/// For a caller whose client has the provider enabled.
#[utoipa::path(get, path = "/api/v1/providers/{provider}/games", tag = "providers",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = Games),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn games(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    provider: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let client_id = caller.client_id.clone().ok_or_else(ApiError::forbidden)?;
    let client = access::client(&state.store, &client_id).await?;
    let games = state.providers.games(&client, &provider).await?;
    Ok(HttpResponse::Ok().json(Games {
        provider: provider.into_inner(),
        games,
    }))
}

/// One transfer's state
///
/// For a client that got 202 and does not watch the websocket.
#[utoipa::path(get, path = "/api/v1/users/{id}/providers/{provider}/transfers/{transfer_id}",
    tag = "providers", security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = TransferRecord),
        Secured, Unknown, Invalid, Unavailable,
    ))]
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
    Ok(HttpResponse::Ok().json(TransferRecord {
        transfer_id: row.id,
        provider: row.provider,
        direction: row.direction.as_str().to_owned(),
        amount: currency.format(row.amount),
        state: row.state.as_str().to_owned(),
        currency: currency.code,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Switch)]
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
    Ok(HttpResponse::Ok().json(Switched {
        client_id: client.id,
        provider: provider.to_owned(),
        game: game.to_owned(),
        enabled,
    }))
}

/// Switch a provider on or off for a client (client admins)
#[utoipa::path(put, path = "/api/v1/clients/{id}/providers/{provider}", tag = "providers",
    security(("bearer" = [])), request_body = SwitchBody,
    responses(
        (status = 200, description = "success", body = Switched),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn switch_provider(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
    body: web::Json<SwitchBody>,
) -> Result<HttpResponse, ApiError> {
    let (client_id, provider) = path.into_inner();
    switch(&state, &caller, &client_id, &provider, "*", body.enabled).await
}

/// Switch one game on or off for a client (client admins)
#[utoipa::path(put, path = "/api/v1/clients/{id}/providers/{provider}/games/{game}",
    tag = "providers", security(("bearer" = [])), request_body = SwitchBody,
    responses(
        (status = 200, description = "success", body = Switched),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
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
