//! The game service (issue 21): a player's game sessions (`/api/v1/users/{id}/game-sessions`,
//! ending one), and the games catalogue across providers (`GET /api/v1/games`). The work is in
//! `transfers::{sessions, catalog}`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::{Auth, Page};
use super::openapi::{Invalid, Secured, Unavailable, Unknown};
use super::users::reachable_user;
use super::views::Page as PageOf;
use crate::access;
use crate::domain::rfc3339_ms;
use crate::state::AppState;
use crate::store::{GameRow, GameSessionInfo, SESSION_ENDED, SESSION_OPEN};
use crate::transfers::catalog::GAME_TYPES;

/// A game session: opened by a launch, ended by the player, whoever reaches them, or the
/// provider's report of a finished round.
#[derive(Serialize, ToSchema)]
pub struct GameSession {
    id: String,
    user_id: String,
    client_id: String,
    provider: String,
    game_code: String,
    /// open or ended
    #[schema(pattern = "^(open|ended)$", example = "open")]
    status: String,
    /// RFC 3339
    started_at: String,
    /// RFC 3339
    ended_at: Option<String>,
    /// the user who ended it, or `provider`
    ended_by: Option<String>,
}

/// A game of the catalogue.
#[derive(Serialize, ToSchema)]
pub struct Game {
    provider: String,
    code: String,
    name: String,
    /// slot, fishing, arcade, card, lottery, sports or other
    #[serde(rename = "type")]
    #[schema(
        pattern = "^(slot|fishing|arcade|card|lottery|sports|other)$",
        example = "slot"
    )]
    game_type: String,
}

pub fn session_view(s: &GameSessionInfo) -> GameSession {
    GameSession {
        id: s.id.clone(),
        user_id: s.user_id.clone(),
        client_id: s.client_id.clone(),
        provider: s.provider.clone(),
        game_code: s.game_code.clone(),
        status: s.status.clone(),
        started_at: rfc3339_ms(s.started_at),
        ended_at: s.ended_at.map(rfc3339_ms),
        ended_by: s.ended_by.clone(),
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    /// open or ended (default: both)
    #[param(pattern = "^(open|ended)$")]
    status: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<i64>,
}

/// The user's game sessions, newest first
///
/// For whoever reaches the user (the player, agents above them, their client's admins, the
/// platform).
#[utoipa::path(get, path = "/api/v1/users/{id}/game-sessions", tag = "games",
    security(("bearer" = [])), params(SessionQuery),
    responses(
        (status = 200, description = "success", body = PageOf<GameSession>),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn list_sessions(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    query: web::Query<SessionQuery>,
) -> Result<HttpResponse, ApiError> {
    let user = reachable_user(&state, &caller, &id).await?;
    let query = query.into_inner();
    if let Some(s) = &query.status
        && s != SESSION_OPEN
        && s != SESSION_ENDED
    {
        return Err(ApiError::validation("status must be open or ended"));
    }
    let page = Page::new(query.cursor, query.limit);
    let limit = page.limit()?;
    let rows = state
        .store
        .user_game_sessions(
            &user.id,
            query.status.as_deref(),
            page.cursor(),
            limit.fetch(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(limit.page(rows, |s| s.id.clone(), session_view)))
}

/// End a game session
///
/// By the player, or whoever reaches them. Idempotent: an ended session is answered as it is
/// (200, the same body). Another client's user is 404, one outside the caller's reach 403, a
/// session not the user's 404. Rounds still running at the provider keep being settled.
#[utoipa::path(post, path = "/api/v1/users/{id}/game-sessions/{session_id}/end", tag = "games",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success (also when already ended)", body = GameSession),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn end_session(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, session_id) = path.into_inner();
    let user = reachable_user(&state, &caller, &user_id).await?;
    let session = state
        .store
        .game_session(&session_id)
        .await?
        .filter(|s| s.user_id == user.id)
        .ok_or_else(|| ApiError::not_found("game session"))?;
    let client = access::client(&state.store, &session.client_id).await?;
    let operator = caller.user_id != user.id;
    let (row, ended) = state
        .providers
        .end_session(&client, session, &caller.user_id, operator)
        .await?;
    if ended && operator {
        crate::audit::Event::new("game_session.end")
            .by(&caller)
            .client(Some(&row.client_id))
            .target("game_session", &row.id)
            .after(
                json!({ "user_id": row.user_id, "provider": row.provider, "status": row.status }),
            )
            .record(&state.store)
            .await?;
    }
    Ok(HttpResponse::Ok().json(session_view(&row)))
}

fn game_view(g: &GameRow) -> Game {
    Game {
        provider: g.provider.clone(),
        code: g.code.clone(),
        name: g.name.clone(),
        game_type: g.game_type.clone(),
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GamesQuery {
    /// One provider's games.
    provider: Option<String>,
    /// slot, fishing, arcade, card, lottery, sports or other
    #[serde(rename = "type")]
    #[param(pattern = "^(slot|fishing|arcade|card|lottery|sports|other)$")]
    game_type: Option<String>,
    /// Platform callers only: list as this client sees it (else the whole catalogue).
    client_id: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<i64>,
}

/// Games across every provider the caller's client may use
///
/// Active providers in the client's `enabled_providers` with an account serving them, without
/// the games or providers the client switched off; ordered by provider and code.
#[utoipa::path(get, path = "/api/v1/games", tag = "games", security(("bearer" = [])),
    params(GamesQuery),
    responses(
        (status = 200, description = "success", body = PageOf<Game>),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn list_games(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    query: web::Query<GamesQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let client_id = access::listed_client(&caller, query.client_id.as_deref())?;
    if let Some(t) = &query.game_type
        && !GAME_TYPES.contains(&t.as_str())
    {
        return Err(ApiError::validation(format!(
            "type must be one of {}",
            GAME_TYPES.join(", ")
        )));
    }
    let page = Page::new(query.cursor, query.limit);
    let limit = page.limit()?;
    let after = match page.cursor() {
        Some(c) => Some(
            c.split_once(':')
                .map(|(p, g)| (p.to_owned(), g.to_owned()))
                .ok_or_else(|| ApiError::validation("cursor is not one this server issued"))?,
        ),
        None => None,
    };
    let client = match &client_id {
        Some(id) => Some(access::client(&state.store, id).await?),
        None => None,
    };
    let rows = state
        .providers
        .list_games(
            client.as_ref(),
            query.provider.as_deref(),
            query.game_type.as_deref(),
            after,
            limit.fetch(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(limit.page(
        rows,
        |g| format!("{}:{}", g.provider, g.code),
        game_view,
    )))
}
