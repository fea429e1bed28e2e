//! `POST /api/v1/bench/events` (load tests only; 404 unless `bench_events` is on): publishes a
//! batch of synthetic `game_update` events through the bus, exactly as a wallet actor publishes,
//! so delivery can be measured without the database in the way. Super admins only.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::Auth;
use super::openapi::{BadBody, Conflict, Invalid, Secured, Unavailable, Unknown};
use crate::domain::Role;
use crate::realtime::bus::{Event, EventKind};
use crate::state::AppState;

/// Events accepted in one request.
const BATCH_MAX: usize = 10_000;

#[derive(Deserialize, ToSchema)]
#[schema(as = BenchEvents)]
pub struct Batch {
    /// `[room, scheduled send time in µs]` per event; the time is echoed in `data.t`.
    events: Vec<(String, i64)>,
}

#[derive(Serialize, ToSchema)]
pub struct Published {
    /// events published
    published: usize,
}

/// Load tests only (404 unless bench_events is on): publish synthetic events
#[utoipa::path(post, path = "/api/v1/bench/events", tag = "realtime",
    security(("bearer" = [])), request_body = Batch,
    responses(
        (status = 200, description = "success", body = Published),
        Secured, Invalid, BadBody, Conflict, Unknown, Unavailable,
    ))]
pub async fn publish(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    batch: web::Json<Batch>,
) -> Result<HttpResponse, ApiError> {
    if !state.config.settings.bench_events {
        return Err(ApiError::not_found("endpoint"));
    }
    if caller.role != Role::SuperAdmin {
        return Err(ApiError::forbidden());
    }
    if batch.events.len() > BATCH_MAX {
        return Err(ApiError::validation(format!(
            "at most {BATCH_MAX} events per batch"
        )));
    }
    let batch = batch.into_inner();
    let count = batch.events.len();
    for (room, t) in batch.events {
        if !(room.starts_with("user:") || room.starts_with("client:")) {
            return Err(ApiError::validation("rooms are user:<id> or client:<id>"));
        }
        state
            .bus
            .publish(Event::new(room, EventKind::GameUpdate, json!({ "t": t })));
    }
    Ok(HttpResponse::Ok().json(Published { published: count }))
}
