//! `/api/v1/auth`: login (throttled on failures), refresh (rotating), logout, password change.

use std::sync::OnceLock;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::Auth;
use super::openapi::{BadBody, BadCredentials, Conflict, Invalid, Secured, Unavailable};
use crate::audit::Event;
use crate::auth::{password, throttle, tokens};
use crate::domain::{ClientStatus, UserStatus, names, new_id, now_ms};
use crate::state::AppState;
use crate::store::{RotateOutcome, SessionRow, UserRow};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// client code; omitted for platform users
    client: Option<String>,
    username: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    access_token: String,
    refresh_token: String,
    #[schema(inline)]
    token_type: TokenType,
    /// seconds until the access token expires
    expires_in: i64,
}

#[derive(Serialize, ToSchema)]
pub enum TokenType {
    Bearer,
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "unknown user or wrong password")
}

/// A hash to verify against when the user does not exist, so both cases take the same time.
fn decoy_hash(memory_kib: u32) -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| password::hash("decoy password", memory_kib))
}

async fn token_response(
    state: &AppState,
    user: &UserRow,
    session_id: &str,
    refresh_token: String,
) -> Result<HttpResponse, ApiError> {
    let role = user.role;
    let overrides = state.store.permission_overrides(&user.id).await?;
    let access_token = state.auth.tokens.issue_access_with(
        &user.id,
        user.client_id.as_deref(),
        role,
        session_id,
        crate::auth::permissions::effective(role, &overrides),
    );
    Ok(HttpResponse::Ok().json(TokenResponse {
        access_token,
        refresh_token,
        token_type: TokenType::Bearer,
        expires_in: state.auth.tokens.access_ttl_secs(),
    }))
}

/// The peer address; a proxy in front should be the only peer (forwarded headers are not
/// trusted, or any client could pick its own throttling key).
pub fn peer_ip(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

/// The per-IP limit of login and refresh (429 `rate_limited` with `Retry-After`).
fn limit_by_ip(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let ip = peer_ip(req).unwrap_or_default();
    state.ip_limits.auth(&ip).map_err(too_fast)
}

pub fn too_fast(wait: std::time::Duration) -> ApiError {
    ApiError::too_many(
        "rate_limited",
        "too many requests from this address; slow down",
        wait.as_secs_f64().ceil() as u64,
    )
}

/// A player on a time-out or self-excluded does not log in to play (403 `player_excluded`
/// with `resets_at`); audited as a block (issue 19).
async fn refuse_excluded(
    state: &AppState,
    user: &UserRow,
    ip: Option<String>,
) -> Result<(), ApiError> {
    if user.role != crate::domain::Role::Player {
        return Ok(());
    }
    let Err(e) = state
        .wallets
        .protection()
        .require_not_excluded(&user.id)
        .await
    else {
        return Ok(());
    };
    Event::new("protection.login_refused")
        .client(user.client_id.as_deref())
        .target("user", &user.id)
        .ip(ip)
        .record(&state.store)
        .await?;
    Err(e.into())
}

/// Log in; failed attempts are throttled (429 with Retry-After)
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "success", body = TokenResponse),
        BadCredentials, Invalid, BadBody, Unavailable,
        (status = 429, description = "too many failed logins or requests from this address (Retry-After), or too many unauthenticated connections from it", body = ErrorBody),
    ))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    limit_by_ip(&state, &req)?;
    let LoginRequest {
        client,
        username,
        password: secret,
    } = body.into_inner();
    let client = client
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    let ip = peer_ip(&req);
    let account_key = throttle::account_key(client.as_deref(), &username);
    let ip_key = throttle::ip_key(ip.as_deref().unwrap_or("unknown"));
    let now = now_ms();
    // Checked before the password: a locked account answers 429 whatever is tried.
    let had_failures = match throttle::check(
        &state.store,
        &[
            (account_key.as_str(), throttle::PER_ACCOUNT),
            (ip_key.as_str(), throttle::PER_IP),
        ],
        now,
    )
    .await?
    {
        Ok(had) => had,
        Err(wait) => {
            return Err(ApiError::too_many(
                "too_many_login_attempts",
                "too many failed logins; try again later",
                wait,
            ));
        }
    };
    let (scope, client_id) = match client.as_deref() {
        None => (Some("platform".to_owned()), None),
        Some(code) => match state
            .store
            .client_by_code(&code.to_ascii_lowercase())
            .await?
        {
            Some(c) if c.status == ClientStatus::Active => (Some(c.id.clone()), Some(c.id)),
            _ => (None, None),
        },
    };
    let user = match (scope, names::username(&username)) {
        (Some(scope), Ok(name)) => state.store.user_by_login(&scope, &name).await?,
        _ => None,
    };
    let memory_kib = state.config.settings.password_hash_memory_kib;
    let hash = user.as_ref().map_or_else(
        || decoy_hash(memory_kib).to_owned(),
        |u| u.password_hash.clone(),
    );
    let verified = web::block(move || password::verify(&hash, &secret))
        .await
        .map_err(|_| ApiError::internal())?;
    let user = match user {
        Some(u) if verified && u.status == UserStatus::Active => u,
        other => {
            throttle::failed(
                &state.store,
                &[&account_key, &ip_key],
                client_id.as_deref(),
                now,
            )
            .await?;
            let mut event = Event::new("auth.login_failed")
                .client(client_id.as_deref())
                .ip(ip)
                .after(json!({ "username": username.trim().to_ascii_lowercase().chars().take(64).collect::<String>() }));
            if let Some(u) = &other {
                event = event.target("user", &u.id);
            }
            event.record(&state.store).await?;
            return Err(invalid_credentials());
        }
    };
    if had_failures {
        throttle::succeeded(&state.store, &account_key).await?;
    }
    refuse_excluded(&state, &user, ip.clone()).await?;
    if let Some(challenge) = super::second_factor::gate(&state, &user, ip.clone()).await? {
        return Ok(HttpResponse::Ok().json(challenge));
    }
    open_session(&state, &user, ip, &req).await
}

/// A new session (refresh family) for a user who passed every login step, audited.
pub(super) async fn open_session(
    state: &AppState,
    user: &UserRow,
    ip: Option<String>,
    req: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let now = now_ms();
    let session = SessionRow {
        id: new_id(),
        user_id: user.id.clone(),
        client_id: user.client_id.clone(),
        created_at: now,
        expires_at: now + state.config.settings.refresh_token_ttl_secs * 1000,
    };
    let refresh_token = tokens::new_refresh_token();
    state
        .store
        .insert_session(&session, &tokens::refresh_token_hash(&refresh_token))
        .await?;
    crate::channels::security::login_seen(
        &state.store,
        user,
        &session.id,
        ip.as_deref(),
        req.headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        now,
    )
    .await;
    Event::new("auth.login")
        .actor(Some(&user.id))
        .client(user.client_id.as_deref())
        .target("user", &user.id)
        .ip(ip)
        .after(json!({ "session_id": session.id }))
        .record(&state.store)
        .await?;
    tracing::info!(user_id = %user.id, session_id = %session.id, "login");
    token_response(state, user, &session.id, refresh_token).await
}

/// Rotate a refresh token; reuse revokes the family
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "success", body = TokenResponse),
        BadCredentials, Invalid, BadBody, Unavailable,
        (status = 429, description = "too many requests from this address (Retry-After)", body = ErrorBody),
    ))]
pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    limit_by_ip(&state, &req)?;
    let refused = || {
        ApiError::unauthorized(
            "invalid_refresh_token",
            "refresh token is unknown, used or revoked",
        )
    };
    let old_hash = tokens::refresh_token_hash(&body.refresh_token);
    let refresh_token = tokens::new_refresh_token();
    let outcome = state
        .store
        .rotate_refresh(
            &old_hash,
            &tokens::refresh_token_hash(&refresh_token),
            now_ms(),
        )
        .await?;
    let RotateOutcome::Rotated {
        session_id,
        user_id,
    } = outcome
    else {
        if outcome == RotateOutcome::Reused {
            tracing::warn!("refresh token reuse: session family revoked");
            Event::new("auth.refresh_reused")
                .record(&state.store)
                .await?;
        }
        return Err(refused());
    };
    match state.store.user(&user_id).await? {
        Some(user) if user.status == UserStatus::Active => {
            if let Err(e) = refuse_excluded(&state, &user, peer_ip(&req)).await {
                state.auth.end_session(&session_id).await?;
                return Err(e);
            }
            token_response(&state, &user, &session_id, refresh_token).await
        }
        _ => {
            state.auth.end_session(&session_id).await?;
            Err(refused())
        }
    }
}

/// End the caller's session
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "done"), Secured, Conflict, Unavailable))]
pub async fn logout(
    state: web::Data<AppState>,
    Auth(caller): Auth,
) -> Result<HttpResponse, ApiError> {
    state.auth.end_session(&caller.session_id).await?;
    Event::new("auth.logout")
        .by(&caller)
        .target("user", &caller.user_id)
        .record(&state.store)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Change the caller's password; other sessions end
///
/// Every other session of the caller ends. A wrong current password counts as a failed login.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "done"),
        Secured, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    names::password(&body.new_password).map_err(ApiError::validation)?;
    let user = state
        .store
        .user(&caller.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let key = format!("pwd:{}", user.id);
    let now = now_ms();
    if let Err(wait) =
        throttle::check(&state.store, &[(key.as_str(), throttle::PER_ACCOUNT)], now).await?
    {
        return Err(ApiError::too_many(
            "too_many_login_attempts",
            "too many wrong passwords; try again later",
            wait,
        ));
    }
    let hash = user.password_hash.clone();
    let current = body.current_password;
    let ok = web::block(move || password::verify(&hash, &current))
        .await
        .map_err(|_| ApiError::internal())?;
    if !ok {
        throttle::failed(&state.store, &[&key], user.client_id.as_deref(), now).await?;
        return Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "wrong_password",
            "the current password is wrong",
        ));
    }
    let memory_kib = state.config.settings.password_hash_memory_kib;
    let new = body.new_password;
    let new_hash = web::block(move || password::hash(&new, memory_kib))
        .await
        .map_err(|_| ApiError::internal())?;
    state
        .store
        .set_password(&user.id, &new_hash, Some(&caller.session_id), now)
        .await?;
    throttle::succeeded(&state.store, &key).await?;
    Event::new("user.password_change")
        .by(&caller)
        .target("user", &user.id)
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    crate::channels::security::password_changed(&state.store, &user.id, now).await;
    Ok(HttpResponse::NoContent().finish())
}
