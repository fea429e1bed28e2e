//! Request extractors: the authenticated caller, the idempotency key, and JSON/query/path
//! configuration that turns every parse failure into an [`ApiError`].

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use super::error::ApiError;
use crate::auth::Caller;
use crate::state::AppState;

/// Largest JSON body accepted by any endpoint.
pub const JSON_BODY_MAX_BYTES: usize = 64 * 1024;

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_BODY_MAX_BYTES)
        .error_handler(|err, _req| super::error::json_error(err).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|err, _req| ApiError::validation(err.to_string()).into())
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err, _req| ApiError::validation(err.to_string()).into())
}

fn state(req: &HttpRequest) -> AppState {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
        .get_ref()
        .clone()
}

/// `Authorization: Bearer <access token>`, verified and with a live session.
pub struct Auth(pub Caller);

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .map(|v| v.to_str().map(str::to_owned));
        let state = state(req);
        let conn = req
            .conn_data::<std::sync::Arc<crate::admission::Conn>>()
            .cloned();
        Box::pin(async move {
            let token = match header {
                None => {
                    return Err(ApiError::unauthorized(
                        "unauthorized",
                        "send Authorization: Bearer <token>",
                    ));
                }
                Some(Err(_)) => {
                    return Err(ApiError::unauthorized(
                        "invalid_token",
                        "unreadable Authorization header",
                    ));
                }
                Some(Ok(value)) => match value.strip_prefix("Bearer ") {
                    Some(token) => token.trim().to_owned(),
                    None => {
                        return Err(ApiError::unauthorized(
                            "invalid_token",
                            "expected a Bearer token",
                        ));
                    }
                },
            };
            let caller = state.auth.authenticate(&token).await?;
            if let Some(conn) = conn {
                conn.mark_authenticated();
            }
            if let Err(wait) = state.limiter.check(&caller.user_id) {
                return Err(ApiError::too_many(
                    "rate_limited",
                    "too many requests; slow down",
                    wait.as_secs_f64().ceil() as u64,
                ));
            }
            Ok(Auth(caller))
        })
    }
}

/// The `Idempotency-Key` header, when sent and valid. Every money-moving request must carry a
/// key, as this header or as an `idempotency_key` body field (DESIGN section 4): the handler
/// settles which with [`IdempotencyKey::or_body`] once the body is parsed.
pub struct IdempotencyKey(Option<String>);

impl IdempotencyKey {
    /// The request's key: the header, the body field, or both if they agree (422 otherwise);
    /// 400 `idempotency_key_required` with neither. The body field is not part of the request
    /// hash (that covers what the request does), so a retry may move the key between the two.
    pub fn or_body(self, body: Option<String>) -> Result<String, ApiError> {
        if let Some(key) = &body {
            crate::domain::names::idempotency_key(key)
                .map_err(|m| ApiError::bad_request("invalid_idempotency_key", m))?;
        }
        match (self.0, body) {
            (Some(header), Some(field)) if header != field => Err(ApiError::validation(
                "the Idempotency-Key header and the idempotency_key field differ",
            )),
            (Some(key), _) | (None, Some(key)) => Ok(key),
            (None, None) => Err(ApiError::bad_request(
                "idempotency_key_required",
                "send an Idempotency-Key header (or an idempotency_key field)",
            )),
        }
    }
}

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.headers().get("Idempotency-Key").map(|v| v.to_str()) {
            None => Ok(IdempotencyKey(None)),
            Some(Err(_)) => Err(ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be ASCII",
            )),
            Some(Ok(key)) => crate::domain::names::idempotency_key(key)
                .map(|()| IdempotencyKey(Some(key.to_owned())))
                .map_err(|m| ApiError::bad_request("invalid_idempotency_key", m)),
        };
        std::future::ready(result)
    }
}

/// A page's `cursor` as this server issued it (a number), or a 422.
pub fn numeric_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::validation("cursor is not one this server issued"))
        })
        .transpose()
}
