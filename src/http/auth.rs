//! `/api/v1/auth`: login, refresh (rotating), logout.

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::Auth;
use crate::auth::{password, tokens};
use crate::domain::{Role, names, new_id, now_ms};
use crate::state::AppState;
use crate::store::{RotateOutcome, SessionRow, UserRow};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    client: Option<String>,
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    expires_in: i64,
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "unknown user or wrong password")
}

/// A hash to verify against when the user does not exist, so both cases take the same time.
fn decoy_hash(memory_kib: u32) -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| password::hash("decoy password", memory_kib))
}

fn token_response(
    state: &AppState,
    user: &UserRow,
    session_id: &str,
    refresh_token: String,
) -> Result<HttpResponse, ApiError> {
    let role: Role = user.role.parse().map_err(|_| ApiError::internal())?;
    let access_token =
        state
            .auth
            .tokens
            .issue_access(&user.id, user.client_id.as_deref(), role, session_id);
    Ok(HttpResponse::Ok().json(TokenResponse {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: state.auth.tokens.access_ttl_secs(),
    }))
}

pub async fn login(
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest {
        client,
        username,
        password: secret,
    } = body.into_inner();
    let scope = match client.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => Some("platform".to_owned()),
        Some(code) => match state
            .store
            .client_by_code(&code.to_ascii_lowercase())
            .await?
        {
            Some(c) if c.status == "active" => Some(c.id),
            _ => None,
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
        Some(u) if verified && u.status == "active" => u,
        _ => return Err(invalid_credentials()),
    };
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
    tracing::info!(user_id = %user.id, session_id = %session.id, "login");
    token_response(&state, &user, &session.id, refresh_token)
}

pub async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
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
        }
        return Err(refused());
    };
    match state.store.user(&user_id).await? {
        Some(user) if user.status == "active" => {
            token_response(&state, &user, &session_id, refresh_token)
        }
        _ => {
            state.auth.end_session(&session_id).await?;
            Err(refused())
        }
    }
}

pub async fn logout(
    state: web::Data<AppState>,
    Auth(caller): Auth,
) -> Result<HttpResponse, ApiError> {
    state.auth.end_session(&caller.session_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
