//! Staff second factor (issue 19): TOTP enrolment with a QR code, recovery codes, the second
//! login step, and resets by an administrator. Every enrolment, use and reset is audited.
//!
//! Who must use it: every super admin (except usernames listed in `second_factor_exempt`, a
//! deliberate, audited exception for the embedded quickstart and test harnesses), and a
//! client's admins and agents when the client sets `staff_totp_required`. Anyone enrolled is
//! always asked. A login that needs a second factor answers a `challenge_token` instead of
//! tokens: `second_factor: "required"` (send a code to `/auth/login/second-factor`) or
//! `"enrolment_required"` (enrol with it first; nothing else opens until then).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::auth::{open_session, peer_ip};
use super::error::ApiError;
use super::extract::Auth;
use super::openapi::{BadBody, BadCredentials, Conflict, Invalid, Secured, Unavailable, Unknown};
use super::user_admin::manageable_user;
use crate::audit::Event;
use crate::auth::second_factor::{self as sf, CHALLENGE_TTL_MS};
use crate::auth::throttle;
use crate::domain::{Role, now_ms};
use crate::protection::notices;
use crate::secrets::Sealed;
use crate::state::AppState;
use crate::store::{TotpRow, UserRow};

const LOGIN: &str = "login";
const ENROL: &str = "enrol";

/// A login that needs a second step.
#[derive(Serialize, ToSchema)]
pub struct SecondFactorChallenge {
    /// `required`: send a code with the token to `/api/v1/auth/login/second-factor`;
    /// `enrolment_required`: enrol with the token (`/api/v1/auth/second-factor/setup`, then
    /// `/activate`), then log in again
    #[schema(example = "required")]
    second_factor: &'static str,
    challenge_token: String,
    /// seconds the token lives
    expires_in: i64,
}

fn exempt(state: &AppState, user: &UserRow) -> bool {
    user.role == Role::SuperAdmin
        && state
            .config
            .settings
            .second_factor_exempt
            .split(',')
            .map(str::trim)
            .any(|name| !name.is_empty() && name.eq_ignore_ascii_case(&user.username))
}

async fn required(state: &AppState, user: &UserRow) -> Result<bool, ApiError> {
    Ok(match (user.role, user.client_id.as_deref()) {
        (Role::SuperAdmin, _) => true,
        (Role::ClientAdmin | Role::Agent, Some(client)) => {
            crate::clients::settings::load(&state.store, client)
                .await?
                .staff_totp_required
        }
        _ => false,
    })
}

async fn challenge(
    state: &AppState,
    user: &UserRow,
    purpose: &'static str,
) -> Result<SecondFactorChallenge, ApiError> {
    let (token, hash) = sf::new_challenge();
    let now = now_ms();
    state
        .store
        .insert_challenge(&hash, &user.id, purpose, now + CHALLENGE_TTL_MS)
        .await?;
    Ok(SecondFactorChallenge {
        second_factor: if purpose == LOGIN {
            "required"
        } else {
            "enrolment_required"
        },
        challenge_token: token,
        expires_in: CHALLENGE_TTL_MS / 1000,
    })
}

/// After the password: None lets the login through; otherwise the challenge to answer.
pub(super) async fn gate(
    state: &AppState,
    user: &UserRow,
    ip: Option<String>,
) -> Result<Option<SecondFactorChallenge>, ApiError> {
    if user.role == Role::Player {
        return Ok(None);
    }
    if state.store.totp(&user.id).await?.is_some_and(|t| t.enabled) {
        return Ok(Some(challenge(state, user, LOGIN).await?));
    }
    if !required(state, user).await? {
        return Ok(None);
    }
    if exempt(state, user) {
        Event::new("auth.login_second_factor_exempt")
            .actor(Some(&user.id))
            .target("user", &user.id)
            .ip(ip)
            .record(&state.store)
            .await?;
        return Ok(None);
    }
    Ok(Some(challenge(state, user, ENROL).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondStep {
    challenge_token: String,
    /// The 6-digit code of the authenticator app
    code: Option<String>,
    /// Or one unused recovery code
    recovery_code: Option<String>,
}

fn wrong_code() -> ApiError {
    ApiError::unauthorized("invalid_code", "the code is wrong, expired or already used")
}

fn bad_challenge() -> ApiError {
    ApiError::unauthorized(
        "invalid_challenge",
        "the challenge token is unknown or expired; log in again",
    )
}

/// Second login step: a TOTP code or a recovery code (throttled like passwords)
#[utoipa::path(post, path = "/api/v1/auth/login/second-factor", tag = "auth",
    request_body = SecondStep,
    responses(
        (status = 200, description = "logged in", body = super::auth::TokenResponse),
        BadCredentials, Invalid, BadBody, Unavailable,
        (status = 429, description = "too many wrong codes (Retry-After)", body = super::error::ErrorBody),
    ))]
pub async fn login_step(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<SecondStep>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let now = now_ms();
    let hash = crate::auth::tokens::refresh_token_hash(&body.challenge_token);
    let user_id = state
        .store
        .challenge_user(&hash, LOGIN, now)
        .await?
        .ok_or_else(bad_challenge)?;
    let user = state
        .store
        .user(&user_id)
        .await?
        .ok_or_else(bad_challenge)?;
    let key = format!("totp:{}", user.id);
    if let Err(wait) =
        throttle::check(&state.store, &[(key.as_str(), throttle::PER_ACCOUNT)], now).await?
    {
        metrics::counter!(crate::metrics::TOTP_VERIFICATIONS, "outcome" => "throttled")
            .increment(1);
        return Err(ApiError::too_many(
            "too_many_login_attempts",
            "too many wrong codes; try again later",
            wait,
        ));
    }
    let ip = peer_ip(&req);
    let outcome = match (&body.code, &body.recovery_code) {
        (Some(code), None) => verify_code(&state, &user, code).await?.then_some("ok"),
        (None, Some(code)) => state
            .store
            .use_recovery_code(&user.id, &sf::recovery_code_hash(code), now)
            .await?
            .then_some("recovery_code"),
        _ => {
            return Err(ApiError::validation("send either code or recovery_code"));
        }
    };
    let Some(outcome) = outcome else {
        throttle::failed(&state.store, &[&key], user.client_id.as_deref(), now).await?;
        metrics::counter!(crate::metrics::TOTP_VERIFICATIONS, "outcome" => "wrong").increment(1);
        Event::new("auth.second_factor_failed")
            .client(user.client_id.as_deref())
            .target("user", &user.id)
            .ip(ip)
            .record(&state.store)
            .await?;
        return Err(wrong_code());
    };
    if !state.store.drop_challenge(&hash).await? {
        return Err(bad_challenge());
    }
    throttle::succeeded(&state.store, &key).await?;
    metrics::counter!(crate::metrics::TOTP_VERIFICATIONS, "outcome" => outcome).increment(1);
    if outcome == "recovery_code" {
        Event::new("auth.recovery_code_used")
            .actor(Some(&user.id))
            .client(user.client_id.as_deref())
            .target("user", &user.id)
            .ip(ip.clone())
            .record(&state.store)
            .await?;
    }
    open_session(&state, &user, ip, &req).await
}

/// The user's enabled secret checked against `code` at the protection clock's time; the
/// code's step is recorded, so it never works twice.
async fn verify_code(state: &AppState, user: &UserRow, code: &str) -> Result<bool, ApiError> {
    let Some(row) = state.store.totp(&user.id).await? else {
        return Ok(false);
    };
    if !row.enabled {
        return Ok(false);
    }
    let secret = open_secret(state, &row)?;
    let now_secs = (state.wallets.protection().now_ms() / 1000).max(0) as u64;
    match sf::matching_step(&secret, code, now_secs) {
        Some(step) => Ok(state.store.use_totp_step(&user.id, step).await?),
        None => Ok(false),
    }
}

fn open_secret(state: &AppState, row: &TotpRow) -> Result<Vec<u8>, ApiError> {
    let sealed = Sealed {
        key_id: row.key_id.clone(),
        nonce: row.nonce.clone(),
        ciphertext: row.ciphertext.clone(),
    };
    state.secrets.open(&row.user_id, &sealed).map_err(|e| {
        tracing::error!(error = %e, user_id = %row.user_id, "second-factor secret cannot be opened");
        ApiError::internal()
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolBody {
    /// The `challenge_token` of an `enrolment_required` login; or call with a bearer token
    enrolment_token: Option<String>,
    /// `activate` only: a code from the app, proving it holds the secret
    code: Option<String>,
}

/// Who is enrolling: the bearer's staff user, or the enrolment challenge's.
async fn enrolling(
    state: &AppState,
    auth: Option<Auth>,
    token: Option<&str>,
) -> Result<UserRow, ApiError> {
    let user_id = match (auth, token) {
        (_, Some(token)) => state
            .store
            .challenge_user(
                &crate::auth::tokens::refresh_token_hash(token),
                ENROL,
                now_ms(),
            )
            .await?
            .ok_or_else(bad_challenge)?,
        (Some(Auth(caller)), None) => caller.user_id,
        (None, None) => {
            return Err(ApiError::unauthorized(
                "missing_token",
                "send a bearer token or an enrolment_token",
            ));
        }
    };
    let user = state
        .store
        .user(&user_id)
        .await?
        .ok_or_else(bad_challenge)?;
    if user.role == Role::Player {
        return Err(ApiError::forbidden());
    }
    Ok(user)
}

/// What an authenticator app needs.
#[derive(Serialize, ToSchema)]
pub struct Enrolment {
    /// base32
    secret: String,
    otpauth_url: String,
    /// the URL as a QR code, `data:image/svg+xml;base64,...`
    qr_code: String,
}

/// Start enrolling a second factor (staff): a new secret and its QR code
///
/// A setup not yet activated is replaced by a new one; an active second factor is reset by an
/// administrator first (409 `second_factor_enrolled`).
#[utoipa::path(post, path = "/api/v1/auth/second-factor/setup", tag = "auth",
    request_body = EnrolBody,
    responses(
        (status = 200, description = "scan it, then activate with a code", body = Enrolment),
        Secured, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn setup(
    state: web::Data<AppState>,
    auth: Option<Auth>,
    req: HttpRequest,
    body: web::Json<EnrolBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let user = enrolling(&state, auth, body.enrolment_token.as_deref()).await?;
    if state.store.totp(&user.id).await?.is_some_and(|t| t.enabled) {
        return Err(ApiError::conflict(
            "second_factor_enrolled",
            "a second factor is already active; an administrator resets it first",
        ));
    }
    let secret = sf::new_secret();
    let (base32, url, qr) =
        sf::enrolment(&secret, "nashub", &user.username).ok_or_else(ApiError::internal)?;
    let sealed = state.secrets.seal(&user.id, &secret);
    let now = now_ms();
    state
        .store
        .put_totp(
            &TotpRow {
                user_id: user.id.clone(),
                key_id: sealed.key_id,
                nonce: sealed.nonce,
                ciphertext: sealed.ciphertext,
                enabled: false,
                last_step: 0,
            },
            now,
        )
        .await?;
    Event::new("auth.second_factor_setup")
        .actor(Some(&user.id))
        .client(user.client_id.as_deref())
        .target("user", &user.id)
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(Enrolment {
        secret: base32,
        otpauth_url: url,
        qr_code: qr,
    }))
}

/// Recovery codes, shown once.
#[derive(Serialize, ToSchema)]
pub struct Activated {
    /// each works once instead of a code; keep them offline
    recovery_codes: Vec<String>,
}

/// Activate the second factor with a first code; answers the recovery codes once
#[utoipa::path(post, path = "/api/v1/auth/second-factor/activate", tag = "auth",
    request_body = EnrolBody,
    responses(
        (status = 200, description = "active; log in again with a code", body = Activated),
        Secured, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn activate(
    state: web::Data<AppState>,
    auth: Option<Auth>,
    req: HttpRequest,
    body: web::Json<EnrolBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let user = enrolling(&state, auth, body.enrolment_token.as_deref()).await?;
    let code = body
        .code
        .as_deref()
        .ok_or_else(|| ApiError::validation("code is required").with_field("code"))?;
    let row = state
        .store
        .totp(&user.id)
        .await?
        .filter(|r| !r.enabled)
        .ok_or_else(|| {
            ApiError::conflict(
                "second_factor_not_pending",
                "start with /api/v1/auth/second-factor/setup",
            )
        })?;
    let key = format!("totp:{}", user.id);
    let now = now_ms();
    if let Err(wait) =
        throttle::check(&state.store, &[(key.as_str(), throttle::PER_ACCOUNT)], now).await?
    {
        return Err(ApiError::too_many(
            "too_many_login_attempts",
            "too many wrong codes; try again later",
            wait,
        ));
    }
    let secret = open_secret(&state, &row)?;
    let now_secs = (state.wallets.protection().now_ms() / 1000).max(0) as u64;
    let Some(step) = sf::matching_step(&secret, code, now_secs) else {
        throttle::failed(&state.store, &[&key], user.client_id.as_deref(), now).await?;
        return Err(wrong_code());
    };
    let codes = sf::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| c.1.clone()).collect();
    if !state
        .store
        .enable_totp(&user.id, &hashes, step, now)
        .await?
    {
        return Err(ApiError::conflict(
            "second_factor_enrolled",
            "a second factor is already active",
        ));
    }
    throttle::succeeded(&state.store, &key).await?;
    if let Some(token) = &body.enrolment_token {
        state
            .store
            .drop_challenge(&crate::auth::tokens::refresh_token_hash(token))
            .await?;
    }
    Event::new("auth.second_factor_enabled")
        .actor(Some(&user.id))
        .client(user.client_id.as_deref())
        .target("user", &user.id)
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    if let Some(client) = &user.client_id {
        notices::send(
            &state.store,
            client,
            &user.id,
            "Second factor enabled",
            "A TOTP second factor now protects your login. If this was not you, tell an administrator.".into(),
        )
        .await?;
    }
    Ok(HttpResponse::Ok().json(Activated {
        recovery_codes: codes.into_iter().map(|c| c.0).collect(),
    }))
}

/// Reset a staff user's second factor (their admin, or a super admin)
///
/// The user enrols again at their next login when one is required; their sessions end. A
/// super admin's second factor cannot be reset through the API (no one manages a super admin).
#[utoipa::path(post, path = "/api/v1/users/{id}/second-factor/reset", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "reset"),
        Secured, Unknown, Invalid, Conflict, Unavailable,
    ))]
pub async fn reset(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !caller.role.is_admin() {
        return Err(ApiError::forbidden());
    }
    let user = manageable_user(&state, &caller, &id).await?;
    if user.role == Role::Player {
        return Err(ApiError::not_found("second factor"));
    }
    let existed = state.store.delete_totp(&user.id).await?;
    state.store.revoke_user_sessions(&user.id).await?;
    Event::new("auth.second_factor_reset")
        .by(&caller)
        .client(user.client_id.as_deref())
        .target("user", &user.id)
        .ip(peer_ip(&req))
        .after(json!({ "was_enrolled": existed }))
        .record(&state.store)
        .await?;
    if let Some(client) = &user.client_id {
        notices::send(
            &state.store,
            client,
            &user.id,
            "Second factor reset",
            "An administrator reset your second factor; enrol again at your next login.".into(),
        )
        .await?;
    }
    Ok(HttpResponse::NoContent().finish())
}
