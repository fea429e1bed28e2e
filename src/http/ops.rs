//! Operations endpoints, no token needed: `/health`, `/ready`, `/metrics`.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready when the database answers and, if configured, Redis does.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let database = state.store.ping().await.is_ok();
    let redis = if state.bus.is_redis() {
        Some(state.bus.ping().await.is_ok())
    } else {
        None
    };
    let ok = database && redis.unwrap_or(true);
    let word = |up: bool| if up { "ok" } else { "unavailable" };
    let body = json!({
        "status": if ok { "ready" } else { "not_ready" },
        "database": word(database),
        "redis": redis.map_or("not_configured", word),
    });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::telemetry::prometheus().render())
}
