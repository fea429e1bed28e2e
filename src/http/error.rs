//! The one HTTP error type: every failure becomes `{"error": {"code", "message"}}` with a
//! fitting status (DESIGN section 10).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::actors::wallet_registry::WalletError;
use crate::auth::AuthError;
use crate::domain::AmountError;
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (429 answers).
    retry_after: Option<u64>,
    /// The request field at fault (validation answers that can name one): `error.field`.
    field: Option<String>,
    /// When a refused movement could pass again (player protection): `error.resets_at`.
    resets_at: Option<String>,
}

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// snake_case, stable: what a client branches on
    #[schema(example = "validation_error")]
    pub code: &'static str,
    /// a human sentence
    pub message: String,
    /// the request field at fault, when a validation error can name one
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// RFC 3339: when a movement refused by a player's limit or exclusion could pass again
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            field: None,
            resets_at: None,
        }
    }

    /// Names the request field at fault in the answer (`error.field`).
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 429 with `Retry-After` (whole seconds, at least 1).
    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, code, message);
        e.retry_after = Some(retry_after_secs.max(1));
        e
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            message,
        )
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "you may not do this")
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_client_error() {
            // Client faults are counted, not logged above debug: a client must not be able to
            // flood the error log. `code` is a compile-time constant, so the series are bounded.
            metrics::counter!(crate::metrics::CLIENT_ERRORS, "code" => self.code).increment(1);
        }
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            res.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        res.json(ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
                field: self.field.clone(),
                resets_at: self.resets_at.clone(),
            },
        })
    }
}

impl From<AmountError> for ApiError {
    fn from(e: AmountError) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
            e.to_string(),
        )
    }
}

impl From<crate::access::Denied> for ApiError {
    fn from(e: crate::access::Denied) -> Self {
        use crate::access::Denied;
        match e {
            Denied::NotFound(what) => ApiError::not_found(what),
            Denied::Forbidden => ApiError::forbidden(),
            Denied::Store(e) => e.into(),
        }
    }
}

impl From<crate::clients::settings::SettingsError> for ApiError {
    fn from(e: crate::clients::settings::SettingsError) -> Self {
        use crate::clients::settings::SettingsError as S;
        match e {
            S::LimitExceeded { field, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "limit_exceeded",
                e.to_string(),
            )
            .with_field(field),
            S::ProviderNotEnabled(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "provider_not_enabled", e.to_string())
            }
            S::Undecodable => ApiError::internal(),
            S::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(code) => Self::conflict(code, code.replace('_', " ")),
            StoreError::InsufficientFunds { .. } => Self::conflict(
                "insufficient_funds",
                "the balance is too low for this amount",
            ),
            StoreError::IdempotencyConflict => Self::conflict(
                "idempotency_conflict",
                "this Idempotency-Key was already used for a different request",
            ),
            StoreError::BalanceOverflow(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_amount",
                "the amount would take a balance past its limit",
            ),
            StoreError::UnknownAccount(_) => Self::not_found("wallet"),
            StoreError::AccountClosed(_) => Self::conflict(
                "user_closed",
                "this user is closed: no money moves into or out of their account",
            ),
            StoreError::NotClosable("balance_not_zero") => Self::conflict(
                "balance_not_zero",
                "empty this user's wallet before closing it",
            ),
            StoreError::NotClosable(code) => Self::conflict(
                code,
                "wait until this user's provider transfers have finished before closing",
            ),
            other => {
                tracing::error!(error = %other, "storage failure");
                Self::unavailable("storage_unavailable", "storage is unavailable; try again")
            }
        }
    }
}

impl From<WalletError> for ApiError {
    fn from(e: WalletError) -> Self {
        match e {
            WalletError::Store(e) => e.into(),
            WalletError::Unavailable => {
                Self::unavailable("wallet_unavailable", "the wallet is busy; try again")
            }
            WalletError::Refused(r) => r.into(),
        }
    }
}

impl From<crate::protection::Refusal> for ApiError {
    /// A player's limit (422 `limit_exceeded`, `field` the limit) or exclusion (403
    /// `player_excluded`), with `resets_at` when waiting helps.
    fn from(r: crate::protection::Refusal) -> Self {
        let status = if r.code == "player_excluded" {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        let mut e = Self::new(status, r.code, r.message).with_field(r.field);
        e.resets_at = r.resets_at.map(crate::domain::rfc3339_ms);
        e
    }
}

impl From<crate::protection::GuardError> for ApiError {
    fn from(e: crate::protection::GuardError) -> Self {
        match e {
            crate::protection::GuardError::Refused(r) => r.into(),
            crate::protection::GuardError::Store(e) => e.into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(e) => e.into(),
            AuthError::SessionEnded => {
                Self::unauthorized("session_ended", "this session has ended; log in again")
            }
            AuthError::Token(crate::auth::TokenError::Expired) => {
                Self::unauthorized("token_expired", "the access token has expired")
            }
            AuthError::Token(_) => {
                Self::unauthorized("invalid_token", "the access token is not valid")
            }
        }
    }
}

/// JSON body errors: unreadable JSON is 400, well-formed JSON of the wrong shape is 422.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match &err {
        E::Deserialize(e) if e.is_data() => ApiError::validation(e.to_string()),
        E::Deserialize(e) => ApiError::bad_request(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        ),
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ),
        E::Overflow { .. } | E::OverflowKnownLength { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is too large",
        ),
        other => ApiError::bad_request("invalid_body", other.to_string()),
    }
}
