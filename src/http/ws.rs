//! `GET /ws`: upgrades to a websocket and hands the connection to a WsSession task.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::error::ApiError;
use crate::actors::ws_session::{self, WsDeps};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

pub async fn connect(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
    q: web::Query<WsQuery>,
) -> Result<HttpResponse, ApiError> {
    // A token in the URL is checked before upgrading, so a bad one is a plain 401.
    let caller = match &q.token {
        Some(token) => Some(state.auth.authenticate(token).await?),
        None => None,
    };
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::bad_request("websocket_required", e.to_string()))?;
    let settings = &state.config.settings;
    let deps = WsDeps {
        auth: state.auth.clone(),
        store: state.store.clone(),
        bus: state.bus.clone(),
        rooms: state.rooms.clone(),
        queue_max: settings.ws_outbound_queue,
        idle_timeout: Duration::from_secs(settings.ws_idle_timeout_secs),
    };
    actix_web::rt::spawn(ws_session::run(deps, session, stream, caller));
    Ok(response)
}
