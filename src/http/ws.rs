//! `GET /ws` (and `GET /socket.io/`, the same session in Socket.io framing: `socketio.rs`):
//! the websocket endpoint, served on the same listener and port as the rest of the
//! API but through a leaner stack (see ARCHITECTURE.md, "Realtime"): actix-http hands every HTTP
//! upgrade request, with its raw TCP stream, to [`upgrade`] before routing; we answer the
//! handshake ourselves and run the connection on tokio-tungstenite. actix-http's two fixed
//! 8 KiB buffers per connection are released at the hand-off, so an idle websocket costs a
//! few hundred bytes of buffers instead of ~14 KB.
//!
//! A token in the URL is checked before upgrading, so a bad one is a plain 401; without one, the
//! first frame must be `{"type":"auth","token":...}`. A non-upgrade `GET /ws` reaches the normal
//! router and gets 400 `websocket_required` from [`connect`].
//!
//! Caps (issue 25): past `ws_max_per_ip` websockets from one address, or the user's cap
//! (`ws_max_per_user`, per role, per client) with a URL token, the upgrade is answered 429
//! `too_many_websockets`; with the token in the first frame the session closes with 4009.

use std::time::Duration;

use actix_codec::Framed;
use actix_http::{HttpMessage, Request, h1};
use actix_web::{HttpResponse, http::StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::error::ApiError;
use crate::admission::{Conn, Refusal};
use crate::metrics as m;
use crate::realtime::codec::JsonCodec;
use crate::realtime::socketio::SocketIoCodec;
use crate::realtime::ws_session::{self, CLIENT_FRAME_MAX_BYTES, Held, WsDeps};
use crate::state::AppState;

/// Initial read buffer per connection: client frames are small; it grows for a larger one.
const READ_BUFFER_BYTES: usize = 256;
/// Frames written are gathered up to this size before a flush forces them out.
const WRITE_BUFFER_BYTES: usize = 4 * 1024;
/// Hard cap of the writer's buffer (the session never lets it grow past one batch anyway).
const WRITE_BUFFER_MAX_BYTES: usize = 1024 * 1024;

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// The access token; or send `{"type":"auth","token":...}` as the first frame.
    token: Option<String>,
}

/// Websocket; the access token goes in the `token` query parameter or a first auth frame
///
/// A plain `GET /ws` without the upgrade headers gets 400 `websocket_required` (a bad token is
/// still a 401). Frames are described in DESIGN section 7.
#[utoipa::path(get, path = "/ws", tag = "realtime", params(WsQuery), responses(
    (status = 101, description = "switching to the websocket protocol"),
    (status = 400, description = "not a websocket upgrade (websocket_required)", body = super::error::ErrorBody),
    super::openapi::BadCredentials,
    super::openapi::Invalid,
    (status = 429, description = "too many websockets for this user or address (too_many_websockets)", body = super::error::ErrorBody),
))]
pub async fn connect(
    state: actix_web::web::Data<AppState>,
    q: actix_web::web::Query<WsQuery>,
) -> Result<HttpResponse, ApiError> {
    if let Some(token) = &q.token {
        state.auth.authenticate(token).await?;
    }
    Err(ApiError::bad_request(
        "websocket_required",
        "GET /ws needs a websocket upgrade",
    ))
}

/// Every HTTP upgrade request lands here, with the connection it came on.
pub async fn upgrade(
    state: AppState,
    req: Request,
    framed: Framed<TcpStream, h1::Codec>,
) -> Result<(), actix_web::Error> {
    // The connection's admission record moves into the session: an open websocket keeps
    // counting against the descriptor budget.
    let conn = req.conn_data::<std::sync::Arc<Conn>>().cloned();
    let parts = framed.into_parts();
    let mut io = parts.io;
    // Anything the client sent after its request (normally nothing before our 101).
    let leftover = parts.read_buf.to_vec();
    drop(parts.write_buf);

    let socketio = super::socketio::is_path(req.path());
    if req.path() != "/ws" && !socketio {
        return respond_error(
            &mut io,
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint",
        )
        .await;
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let is_websocket = header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let (Some(key), true, Some("13")) = (
        header("sec-websocket-key"),
        is_websocket,
        header("sec-websocket-version").as_deref(),
    ) else {
        return respond_error(
            &mut io,
            StatusCode::BAD_REQUEST,
            "websocket_required",
            "expected a websocket (version 13) upgrade",
        )
        .await;
    };
    if socketio && let Err(message) = super::socketio::check_query(req.uri().query()) {
        metrics::counter!(m::SOCKETIO_CONNECT_ERRORS, "reason" => "bad_packet").increment(1);
        return respond_error(
            &mut io,
            StatusCode::BAD_REQUEST,
            "unsupported_transport",
            &message,
        )
        .await;
    }
    let ip_slot = match &conn {
        Some(conn) => match conn.admission().ws_ip_slot(conn.ip()) {
            Ok(slot) => slot,
            Err(_) => return refuse_websocket(&mut io, Refusal::PerIp).await,
        },
        None => None,
    };
    let token = req
        .uri()
        .query()
        .and_then(|q| {
            q.split('&')
                .find_map(|pair| pair.strip_prefix("token="))
                .map(str::to_owned)
        })
        .or_else(|| {
            page_cookie_token(
                header("origin").as_deref(),
                header("host").as_deref(),
                header("cookie").as_deref(),
            )
        });
    let caller = match token {
        Some(token) => match state.auth.authenticate(&token).await {
            Ok(caller) => Some(caller),
            Err(e) => {
                let e = ApiError::from(e);
                return respond_error(&mut io, e.status, e.code, &e.message).await;
            }
        },
        None => None,
    };
    let mut user_slot = None;
    if let (Some(caller), Some(conn)) = (&caller, &conn) {
        match conn.admission().ws_user_slot(caller) {
            Ok(slot) => user_slot = Some(slot),
            Err(reason) => return refuse_websocket(&mut io, reason).await,
        }
        conn.mark_authenticated();
    }

    let accept = derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    io.write_all(head.as_bytes()).await?;
    let _ = io.set_nodelay(true);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(WRITE_BUFFER_MAX_BYTES)
        .max_message_size(Some(CLIENT_FRAME_MAX_BYTES))
        .max_frame_size(Some(CLIENT_FRAME_MAX_BYTES));
    let ws = WebSocketStream::from_partially_read(io, leftover, Role::Server, Some(config)).await;
    let settings = &state.config.settings;
    let deps = WsDeps {
        auth: state.auth.clone(),
        store: state.store.clone(),
        bus: state.bus.clone(),
        rooms: state.rooms.clone(),
        queue_max: settings.ws_outbound_queue,
        idle_timeout: Duration::from_secs(settings.ws_idle_timeout_secs),
        frames_per_sec: settings.ws_frames_per_sec,
        frames_burst: settings.ws_frames_burst,
    };
    let held = Held {
        conn,
        ip_slot,
        user_slot,
    };
    // The session outlives this call: the HTTP dispatcher (and its buffers) can go now.
    if socketio {
        let codec = SocketIoCodec::new();
        crate::rt::spawn(ws_session::run(deps, ws, caller, held, codec));
    } else {
        crate::rt::spawn(ws_session::run(deps, ws, caller, held, JsonCodec));
    }
    Ok(())
}

/// A web page's session (issue 20): the access token of the `nashub_access` cookie, taken
/// only when `Origin` is the hub's own (`http(s)://<Host>`), so another site's page cannot ride
/// a browser's session (the cookie is SameSite=Strict as well). URL token and auth frame still
/// work as before; a page's socket without the cookie starts unauthenticated like any other.
fn page_cookie_token(
    origin: Option<&str>,
    host: Option<&str>,
    cookie: Option<&str>,
) -> Option<String> {
    let (origin, host, cookie) = (origin?, host?, cookie?);
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))?;
    if !origin_host.eq_ignore_ascii_case(host) {
        return None;
    }
    cookie.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == crate::auth::WEB_ACCESS_COOKIE && !value.is_empty()).then(|| value.to_owned())
    })
}

/// 429 `too_many_websockets` at the upgrade, counted by cap.
async fn refuse_websocket(io: &mut TcpStream, reason: Refusal) -> Result<(), actix_web::Error> {
    let (label, message) = match reason {
        Refusal::PerUser => (
            "per_user",
            "too many open websockets for this user; close one first",
        ),
        _ => (
            "per_ip",
            "too many open websockets from your address; close one first",
        ),
    };
    metrics::counter!(m::WS_REFUSED, "reason" => label).increment(1);
    respond_error(
        io,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_websockets",
        message,
    )
    .await
}

/// Answers a refused upgrade with the API's JSON error and closes the connection.
async fn respond_error(
    io: &mut TcpStream,
    status: StatusCode,
    code: &'static str,
    message: &str,
) -> Result<(), actix_web::Error> {
    if status.is_client_error() {
        metrics::counter!(m::CLIENT_ERRORS, "code" => code).increment(1);
    }
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    let reason = status.canonical_reason().unwrap_or("Error");
    let response = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        body.len()
    );
    io.write_all(response.as_bytes()).await?;
    let _ = io.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::page_cookie_token;

    #[test]
    fn the_page_cookie_counts_only_from_the_hubs_own_origin() {
        let cookie = Some("a=1; nashub_access=tok; b=2");
        let take = |origin, host| page_cookie_token(origin, host, cookie);
        assert_eq!(
            take(Some("http://hub:8080"), Some("hub:8080")).as_deref(),
            Some("tok")
        );
        assert_eq!(
            take(Some("https://hub"), Some("hub")).as_deref(),
            Some("tok")
        );
        assert_eq!(take(Some("http://evil"), Some("hub")), None);
        assert_eq!(take(None, Some("hub")), None);
        assert_eq!(take(Some("null"), Some("hub")), None);
        assert_eq!(
            page_cookie_token(Some("http://hub"), Some("hub"), Some("x=1")),
            None
        );
    }
}
