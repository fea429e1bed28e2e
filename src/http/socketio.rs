//! `GET /socket.io/`: Socket.io (Engine.IO v4), websocket transport only, on the `/ws` upgrade
//! path (`ws.rs` hands the upgrade to the same session with `realtime::socketio`'s codec). This
//! file checks the Engine.IO query and answers what is not a websocket: HTTP long-polling is not
//! served, so a polling handshake gets 400 `unsupported_transport` (a Socket.io client must use
//! `transports: ["websocket"]`).

use actix_web::HttpRequest;

use super::error::ApiError;
use crate::metrics as m;

pub fn is_path(path: &str) -> bool {
    path == "/socket.io/" || path == "/socket.io"
}

/// `EIO=4&transport=websocket` (other parameters, like `token` or `t`, pass).
pub fn check_query(query: Option<&str>) -> Result<(), String> {
    let param = |name: &str| {
        query?
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    };
    match (param("EIO"), param("transport")) {
        (Some("4"), Some("websocket")) => Ok(()),
        (Some("4"), Some(other)) => Err(format!(
            "transport {other:?} is not served: only websocket (socket.io-client: transports: [\"websocket\"])"
        )),
        (Some(other), _) => Err(format!(
            "Engine.IO protocol {other:?} is not served: only EIO=4 (socket.io-client v3 or v4)"
        )),
        (None, _) => Err("missing EIO=4 (and transport=websocket) in the query".into()),
    }
}

/// Socket.io (Engine.IO v4 over websocket): the /ws rooms and events
///
/// Only `EIO=4&transport=websocket` is served; a `GET /socket.io/` that is not a websocket
/// upgrade (a long-polling handshake, or a browser) gets 400 `unsupported_transport`. The access
/// token goes in the CONNECT auth payload (`{token}`) or the `token` query parameter (checked
/// before upgrading: a bad one is a 401). Server events are the /ws frames (DESIGN section 7)
/// named by their `type`; the packet mapping is in `realtime/socketio.rs` (DESIGN section 11).
#[utoipa::path(get, path = "/socket.io/", tag = "realtime",
    params(
        ("EIO" = String, Query, description = "Engine.IO protocol version: `4`"),
        ("transport" = String, Query, description = "`websocket` (polling is not served)"),
        ("token" = Option<String>, Query, description = "The access token; or send it in the CONNECT auth payload `{\"token\":...}`"),
    ),
    responses(
        (status = 101, description = "switching to the websocket protocol"),
        (status = 400, description = "not a websocket upgrade (websocket_required), or a polling transport or an EIO other than 4 (unsupported_transport)", body = super::error::ErrorBody),
        super::openapi::BadCredentials,
        (status = 429, description = "too many websockets for this user or address (too_many_websockets)", body = super::error::ErrorBody),
    ),
)]
pub async fn polling(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    metrics::counter!(m::SOCKETIO_CONNECT_ERRORS, "reason" => "bad_packet").increment(1);
    let message = match check_query(req.uri().query()) {
        Ok(()) => "expected a websocket upgrade".to_owned(),
        Err(message) => message,
    };
    Err(ApiError::bad_request("unsupported_transport", message))
}
