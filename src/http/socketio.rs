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

/// A `GET /socket.io/` that is not a websocket upgrade: a long-polling handshake (or a browser).
pub async fn polling(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    metrics::counter!(m::SOCKETIO_CONNECT_ERRORS, "reason" => "bad_packet").increment(1);
    let message = match check_query(req.uri().query()) {
        Ok(()) => "expected a websocket upgrade".to_owned(),
        Err(message) => message,
    };
    Err(ApiError::bad_request("unsupported_transport", message))
}
