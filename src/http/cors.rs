//! CORS for browsers on the platform's and the clients' sites (`clients::origins`): a preflight
//! from an allowed origin is answered 204 with what it may send; any answer to an allowed
//! origin names it in `Access-Control-Allow-Origin` (never `*`) with `Vary: Origin`. Tokens
//! travel in the `Authorization` header, not cookies, so credentials are never allowed. An
//! origin that is not allowed gets no CORS headers (its preflight: 403 `origin_not_allowed`).
//! Also sends `Strict-Transport-Security` when `hsts` is set.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};

use super::error::ApiError;
use crate::state::AppState;

const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "authorization, content-type, idempotency-key, x-request-id";
const EXPOSE_HEADERS: &str = "x-request-id, retry-after, allow";
const MAX_AGE_SECS: &str = "600";
const HSTS: &str = "max-age=31536000; includeSubDomains";

pub async fn apply(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let hsts = state.as_ref().is_some_and(|s| s.hsts);
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let allowed = match (&origin, &state) {
        (Some(origin), Some(state)) => state.origins.allows(&state.store, origin).await,
        _ => false,
    };
    let preflight = req.method() == Method::OPTIONS
        && origin.is_some()
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut res = if allowed {
            let mut res = HttpResponse::NoContent().finish();
            let h = res.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(MAX_AGE_SECS),
            );
            res
        } else {
            ApiError::new(
                actix_web::http::StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this origin may not call the API; a client's admin lists its sites in allowed_origins",
            )
            .error_response()
        };
        decorate(res.headers_mut(), origin.as_deref(), allowed, hsts);
        return Ok(req.into_response(res).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    decorate(res.headers_mut(), origin.as_deref(), allowed, hsts);
    Ok(res.map_into_left_body())
}

fn decorate(h: &mut header::HeaderMap, origin: Option<&str>, allowed: bool, hsts: bool) {
    if let (Some(origin), true) = (origin, allowed)
        && let Ok(value) = HeaderValue::from_str(origin)
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    if origin.is_some() {
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if hsts {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
}
