//! `POST /callbacks/{provider}`: provider-to-hub reports (bet settlements). Authenticated as the
//! protocol allows (signature by the named operator account, timestamp window); the client is
//! the one the named account registered the player for. Answers `{"code": 0}` to new and
//! repeated deliveries alike, so the provider stops resending.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::error::ApiError;
use crate::state::AppState;

pub async fn receive(
    state: web::Data<AppState>,
    req: HttpRequest,
    provider: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ip = super::auth::peer_ip(&req).unwrap_or_default();
    state
        .ip_limits
        .callback(&provider, &ip)
        .map_err(super::auth::too_fast)?;
    let applied = state
        .providers
        .callback(&provider, req.headers(), &body)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "code": 0, "message": "ok", "applied": applied })))
}
