//! `POST /callbacks/{provider}`: provider-to-hub reports (bet settlements). Authenticated as the
//! protocol allows (signature by the named operator account, timestamp window); the client is
//! the one the named account registered the player for. Answers `{"code": 0}` to new and
//! repeated deliveries alike, so the provider stops resending.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::openapi::{BadBody, BadCredentials, Invalid, Unavailable, Unknown};
use crate::state::AppState;

/// The provider's acknowledgement: `code` 0, new or repeated delivery alike.
#[derive(Serialize, ToSchema)]
pub struct CallbackAck {
    code: i64,
    message: &'static str,
    /// whether this delivery changed anything (false for a repeat)
    applied: bool,
}

/// Provider-to-hub reports, authenticated by the protocol's signature
#[utoipa::path(post, path = "/callbacks/{provider}", tag = "providers",
    request_body(content = Object, description = "the provider's own report format"),
    responses(
        (status = 200, description = "success", body = CallbackAck),
        BadCredentials, Unknown, Invalid, BadBody, Unavailable,
    ))]
pub async fn receive(
    state: web::Data<AppState>,
    req: HttpRequest,
    provider: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let applied = state
        .providers
        .callback(&provider, req.headers(), &body)
        .await?;
    Ok(HttpResponse::Ok().json(CallbackAck {
        code: 0,
        message: "ok",
        applied,
    }))
}
