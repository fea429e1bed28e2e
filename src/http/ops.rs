//! Operations endpoints, no token needed: `/health`, `/ready`, `/metrics`.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    status: &'static str,
}

/// More fields may be added.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    #[schema(inline)]
    status: ReadyState,
    #[schema(inline)]
    database: Database,
    #[schema(inline)]
    redis: Redis,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum ReadyState {
    Ready,
    NotReady,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Database {
    Ok,
    Unavailable,
}

/// `not_configured`: no Redis, the in-process bus serves.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Redis {
    Ok,
    Unavailable,
    NotConfigured,
}

/// How long `/ready` waits for the database's and Redis's answers.
const READY_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Liveness
#[utoipa::path(get, path = "/health", tag = "ops",
    responses((status = 200, description = "success", body = Status)))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// Readiness: database and Redis reachable
///
/// Ready when the database answers and, if configured, Redis does.
#[utoipa::path(get, path = "/ready", tag = "ops", responses(
    (status = 200, description = "success", body = Readiness),
    (status = 503, description = "not ready", body = Readiness),
))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    // A dead database makes a ping wait for the pool's acquire timeout (30 s): probes and load
    // balancers give up long before, so a slow answer is "not ready", said at once.
    let database = tokio::time::timeout(READY_PING_TIMEOUT, state.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let redis = if state.bus.is_redis() {
        Some(
            tokio::time::timeout(READY_PING_TIMEOUT, state.bus.ping())
                .await
                .is_ok_and(|r| r.is_ok()),
        )
    } else {
        None
    };
    let ok = database && redis.unwrap_or(true);
    let body = Readiness {
        status: if ok {
            ReadyState::Ready
        } else {
            ReadyState::NotReady
        },
        database: if database {
            Database::Ok
        } else {
            Database::Unavailable
        },
        redis: match redis {
            None => Redis::NotConfigured,
            Some(true) => Redis::Ok,
            Some(false) => Redis::Unavailable,
        },
    };
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, description = "success", body = String, content_type = "text/plain"),
))]
pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::telemetry::prometheus().render())
}
