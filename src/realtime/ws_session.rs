//! WsSession: one task per websocket connection (DESIGN section 7), for `/ws` and
//! `/socket.io/` alike: the framing is a [`Codec`] (`codec.rs`, `socketio.rs`), the rest is here.
//!
//! Owns: the connection, its rooms, its outbound queue and keep-alive. Handles client frames
//! `auth`, `subscribe`, `unsubscribe`, `resume`, `ping`; writes room frames queued by the
//! RoomHub in order. A `resume` writes the missed frames straight from the bus's history, then
//! fences that room: queued live frames up to the replayed seq are skipped, so the client sees
//! each seq once and in order. Closes with 4001 when its token is invalid or expires (an `auth` frame
//! with a fresh token extends it), 4008 when its queue overflows, 1001 on shutdown, 4009 when
//! the user already holds as many websockets as allowed (found at a first-frame `auth`), 4029
//! when the client sends frames faster than allowed (token bucket: `ws_frames_per_sec`,
//! burst `ws_frames_burst`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytestring::ByteString;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::codec::{ClientFrame, Codec, Hello, Inbound, Reply};
use super::room_hub::{
    CLOSE_GOING_AWAY, CLOSE_TOKEN_INVALID, CLOSE_TOO_MANY_FRAMES, CLOSE_TOO_MANY_WEBSOCKETS,
    CLOSE_TOO_SLOW, Member, RoomHub, SessionControl,
};
use crate::access::{Reach, reach};
use crate::admission::{Conn, WsSlot};
use crate::auth::{Authenticator, Caller};
use crate::domain::{Role, now_ms, rfc3339_ms};
use crate::metrics as m;
use crate::realtime::bus::{Bus, Replay};
use crate::store::Store;

/// How long an unauthenticated connection may wait before its `auth` frame.
const AUTH_WAIT: Duration = Duration::from_secs(5);
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(20);
/// How often a session checks that its login session still lives (logout, suspension and
/// refresh-token reuse end it). The check hits the node's read cache, not the database.
/// A session is re-checked when a session-kind row moved (the read cache's change mark), at
/// most this often, and at least every `SESSION_CHECK_MAX`: an idle node wakes no socket for
/// it (issue 22: 500 sockets polling every 2 s were 250 wakes a second).
const SESSION_CHECK_EVERY: Duration = Duration::from_secs(2);
const SESSION_CHECK_MAX: Duration = Duration::from_secs(60);
/// How long a closing session waits for room for its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(10);
/// Normal closure, used for an idle connection.
const CLOSE_IDLE: u16 = 1000;
/// Rooms one session may join.
const ROOMS_MAX: usize = 256;
/// Largest client frame accepted.
pub const CLIENT_FRAME_MAX_BYTES: usize = 16 * 1024;

pub struct WsDeps {
    pub auth: Arc<Authenticator>,
    pub store: Store,
    pub bus: Bus,
    pub rooms: Arc<RoomHub>,
    pub queue_max: usize,
    pub idle_timeout: Duration,
    /// Inbound frame rate limit (token bucket); 0 = off.
    pub frames_per_sec: u32,
    pub frames_burst: u32,
}

/// What the session holds for its connection's admission: released when it ends.
pub struct Held {
    pub conn: Option<Arc<Conn>>,
    pub ip_slot: Option<WsSlot>,
    pub user_slot: Option<WsSlot>,
}

/// Inbound frames allowed: `rate` per second on average, `burst` at once.
struct FrameBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl FrameBucket {
    fn new(rate: u32, burst: u32) -> Option<Self> {
        (rate > 0).then(|| Self {
            tokens: f64::from(burst.max(1)),
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            last: Instant::now(),
        })
    }

    /// Takes one frame's token; false when the client is over its rate.
    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

pub(crate) fn control_frame(
    kind: &str,
    room: Option<&str>,
    extra: serde_json::Value,
) -> ByteString {
    let mut frame = json!({ "type": kind, "ts": rfc3339_ms(now_ms()) });
    if let Some(room) = room {
        frame["room"] = json!(room);
    }
    if let serde_json::Value::Object(fields) = extra {
        for (k, v) in fields {
            frame[k] = v;
        }
    }
    ByteString::from(frame.to_string())
}

pub(crate) fn error_frame(room: Option<&str>, code: &str, message: &str) -> ByteString {
    control_frame(
        "error",
        room,
        json!({ "data": { "code": code, "message": message } }),
    )
}

type Socket = WebSocketStream<TcpStream>;
type Source = SplitStream<Socket>;
type Sink = SplitSink<Socket, Message>;

/// Frames written before one flush when many are queued (fewer syscalls under load).
const WRITE_BATCH_MAX: usize = 64;

fn text(frame: ByteString) -> Message {
    // SAFETY: a ByteString is valid UTF-8 by construction.
    Message::Text(unsafe { Utf8Bytes::from_bytes_unchecked(frame.into_bytes()) })
}

fn close_message(code: u16) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: close_text(code).into(),
    }))
}

/// Runs a connection to its end, framed by `codec`. `url_caller` is set when the token came in
/// the URL.
pub async fn run<C: Codec>(
    deps: WsDeps,
    socket: Socket,
    url_caller: Option<Caller>,
    mut held: Held,
    mut codec: C,
) {
    let (mut sink, mut stream) = socket.split();
    if let Some(greeting) = codec.greeting()
        && sink.send(text(greeting)).await.is_err()
    {
        return;
    }
    let caller = if codec.needs_hello(url_caller.is_some()) {
        let hello = Box::pin(await_hello(
            &deps,
            &mut codec,
            &mut sink,
            &mut stream,
            url_caller,
        ));
        match hello.await {
            Some(c) => c,
            None => {
                close_gracefully(&mut sink, &mut stream, CLOSE_TOKEN_INVALID).await;
                return;
            }
        }
    } else {
        url_caller.expect("a codec needs a hello without a URL token")
    };
    if held.user_slot.is_none()
        && let Some(conn) = &held.conn
    {
        // The token came in the first frame: the per-user cap applies now.
        match conn.admission().ws_user_slot(&caller) {
            Ok(slot) => held.user_slot = Some(slot),
            Err(_) => {
                metrics::counter!(m::WS_REFUSED, "reason" => "per_user").increment(1);
                held.ip_slot = None;
                if let Some(refusal) = codec.refusal(
                    "too_many_websockets",
                    "too many open websockets for this user; close one first",
                ) {
                    let _ = sink.send(text(refusal)).await;
                }
                close_gracefully(&mut sink, &mut stream, CLOSE_TOO_MANY_WEBSOCKETS).await;
                return;
            }
        }
        conn.mark_authenticated();
    }
    if let Some(welcome) = codec.welcome()
        && sink.send(text(welcome)).await.is_err()
    {
        return;
    }
    let mut frames = FrameBucket::new(deps.frames_per_sec, deps.frames_burst);
    let member = deps.rooms.open_session(deps.queue_max);
    let client_key = caller
        .client_id
        .clone()
        .unwrap_or_else(|| "platform".into());
    deps.rooms.user_online(&client_key, &caller.user_id);
    let mut state = SessionState {
        deps: &deps,
        caller,
        member,
        rooms: Vec::new(),
        fences: Vec::new(),
    };

    let mut own_rooms = vec![format!("user:{}", state.caller.user_id)];
    if let Some(cid) = &state.caller.client_id {
        own_rooms.push(format!("client:{cid}"));
    }
    let control = state.member.control.clone();
    let mut alive = true;
    for room in own_rooms {
        let reply = Box::pin(state.join(&room)).await;
        for frame in codec.reply(None, Reply::Answer(reply)) {
            alive &= guarded(&control, sink.send(text(frame))).await;
        }
    }

    let mut last_heard = Instant::now();
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    heartbeat.tick().await;
    let mut changes = deps.store.cache_changes();
    let mut last_check = Instant::now();
    let session_check = tokio::time::sleep(SESSION_CHECK_MAX);
    tokio::pin!(session_check);
    let mut check_due = false;
    // One timer for the token's end, moved only when an `auth` frame extends it: a timer made
    // afresh per loop turn would be registered and dropped again for every frame written.
    let mut expires_at = state.caller.expires_at;
    let token_end = tokio::time::sleep_until(token_deadline(expires_at));
    tokio::pin!(token_end);
    while alive {
        if state.caller.expires_at != expires_at {
            expires_at = state.caller.expires_at;
            token_end.as_mut().reset(token_deadline(expires_at));
        }
        tokio::select! {
            biased;
            _ = control.closed() => break,
            frame = control.next_frame() => {
                // Write what is queued now, then flush once.
                let mut batch = 0;
                let mut next = Some(frame);
                while let Some(frame) = next.take() {
                    if !state.fenced(&frame) {
                        alive &= guarded(&control, sink.feed(text(codec.event(frame)))).await;
                        batch += 1;
                    }
                    if alive && batch < WRITE_BATCH_MAX {
                        next = control.try_next_frame();
                    }
                }
                alive &= guarded(&control, sink.flush()).await;
            }
            message = stream.next() => {
                last_heard = Instant::now();
                let over_rate = matches!(&message, Some(Ok(m)) if !m.is_close())
                    && frames.as_mut().is_some_and(|b| !b.take(last_heard));
                if over_rate {
                    metrics::counter!(m::WS_FRAME_RATE_CLOSED).increment(1);
                    control.close(CLOSE_TOO_MANY_FRAMES);
                    break;
                }
                match message {
                    Some(Ok(Message::Text(frame))) => {
                        let replies = match codec.decode(frame.as_str()) {
                            Inbound::Request { frame, tag } => {
                                // Boxed: this deep future (store queries) is rare; the session's
                                // own future, alive for the whole connection, stays small.
                                let reply = Box::pin(state.answer(frame)).await;
                                codec.reply(tag, reply)
                            }
                            Inbound::Write(replies) => replies,
                            Inbound::Nothing => Vec::new(),
                            Inbound::Bye => {
                                control.close(CLOSE_IDLE);
                                break;
                            }
                        };
                        for reply in replies {
                            alive &= guarded(&control, sink.send(text(reply))).await;
                        }
                    }
                    // tungstenite answers pings itself, on the next write or flush.
                    Some(Ok(Message::Ping(_))) => alive = guarded(&control, sink.flush()).await,
                    Some(Ok(Message::Pong(_))) | Some(Ok(Message::Frame(_))) => {}
                    Some(Ok(Message::Binary(_))) => {
                        let reply = error_frame(None, "text_only", "frames must be JSON text");
                        for reply in codec.reply(None, Reply::Answer(reply)) {
                            alive &= guarded(&control, sink.send(text(reply))).await;
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > deps.idle_timeout {
                    control.close(CLOSE_IDLE);
                    break;
                }
                alive = guarded(&control, sink.send(codec.heartbeat())).await;
            }
            _ = &mut token_end => {
                control.close(CLOSE_TOKEN_INVALID);
                break;
            }
            Ok(()) = changes.changed(), if !check_due => {
                check_due = true;
                session_check.as_mut().reset(tokio::time::Instant::from_std(
                    (last_check + SESSION_CHECK_EVERY).max(Instant::now()),
                ));
            }
            _ = &mut session_check => {
                check_due = false;
                last_check = Instant::now();
                session_check
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(last_check + SESSION_CHECK_MAX));
                let now = crate::domain::now_ms();
                // A storage error keeps the socket: only a session known to be over ends it.
                if let Ok(false) = deps.store.session_active(&state.caller.session_id, now).await {
                    control.close(CLOSE_TOKEN_INVALID);
                    break;
                }
            }
        }
    }
    // Out of every room first (no more frames), then the close frame, then unregistered: a
    // server shutting down waits for the session count to reach zero, so 1001 gets out.
    for room in &state.rooms {
        deps.rooms.leave(room, state.member.id);
    }
    deps.rooms.user_offline(&client_key, &state.caller.user_id);
    // The caps' places go now; the connection itself (`held.conn`) counts until it is closed.
    held.user_slot = None;
    held.ip_slot = None;
    if let Some(code) = control.code() {
        // The close frame queues behind what the client has not read yet; a client that
        // reads nothing for CLOSE_WAIT just loses the connection.
        let farewell = codec.farewell(code);
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            for packet in farewell {
                sink.feed(text(packet)).await?;
            }
            Ok::<_, WsError>(())
        })
        .await;
        close_gracefully(&mut sink, &mut stream, code).await;
    }
    deps.rooms.close_session(state.member.id, &[]);
}

/// When a token that expires at `expires_at` (Unix seconds) runs out, on the runtime's clock.
fn token_deadline(expires_at: i64) -> tokio::time::Instant {
    let left_ms = expires_at
        .saturating_mul(1000)
        .saturating_sub(now_ms())
        .max(0) as u64;
    tokio::time::Instant::now() + Duration::from_millis(left_ms)
}

/// Sends the close frame, then reads until the client's close reply: closing a socket with
/// unread input (pongs, the reply) makes the kernel reset it, and the client would lose the
/// frames and the close code still in its receive buffer. Bounded by `CLOSE_WAIT`.
async fn close_gracefully(sink: &mut Sink, stream: &mut Source, code: u16) {
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        if sink.send(close_message(code)).await.is_ok() {
            while let Some(Ok(_)) = stream.next().await {}
        }
    })
    .await;
}

/// Runs one write unless the session is asked to close first: a stalled client must never keep
/// its task from noticing a close (4008, 1001). False when the session should stop.
async fn guarded<F>(control: &SessionControl, write: F) -> bool
where
    F: std::future::Future<Output = Result<(), WsError>>,
{
    tokio::select! {
        biased;
        written = write => written.is_ok(),
        _ = control.closed() => false,
    }
}

fn close_text(code: u16) -> &'static str {
    match code {
        CLOSE_TOO_SLOW => "too slow: outbound queue full",
        CLOSE_TOKEN_INVALID => "token invalid or expired",
        CLOSE_GOING_AWAY => "server shutting down: reconnect and resume",
        CLOSE_IDLE => "normal closure (idle, or the client left)",
        CLOSE_TOO_MANY_WEBSOCKETS => "too many websockets for this user",
        CLOSE_TOO_MANY_FRAMES => "too many frames: slow down",
        _ => "closing",
    }
}

/// Reads the codec's hello (`/ws`: an `auth` frame; Socket.io: CONNECT) within `AUTH_WAIT`.
/// None: refused (the codec's refusal is written); the caller closes with 4001.
async fn await_hello<C: Codec>(
    deps: &WsDeps,
    codec: &mut C,
    sink: &mut Sink,
    stream: &mut Source,
    url_caller: Option<Caller>,
) -> Option<Caller> {
    let deadline = tokio::time::Instant::now() + AUTH_WAIT;
    let refuse = async |codec: &C, sink: &mut Sink, code, message: &str| {
        if let Some(refusal) = codec.refusal(code, message) {
            let _ = sink.send(text(refusal)).await;
        }
        None
    };
    loop {
        let message = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(_) => return None,
            Err(_) => {
                return refuse(codec, sink, "invalid_token", "no token in time").await;
            }
        };
        let Message::Text(first) = message else {
            if message.is_ping() || message.is_pong() {
                continue;
            }
            return refuse(codec, sink, "bad_packet", "expected a text message").await;
        };
        match codec.hello(first.as_str()) {
            Hello::Wait(answer) => {
                if let Some(answer) = answer
                    && sink.send(text(answer)).await.is_err()
                {
                    return None;
                }
            }
            Hello::Refuse(code, message) => return refuse(codec, sink, code, message).await,
            Hello::Token(None) => {
                return match url_caller {
                    Some(caller) => Some(caller),
                    None => {
                        let message = "no token: give auth {token} or ?token=";
                        refuse(codec, sink, "missing_token", message).await
                    }
                };
            }
            Hello::Token(Some(token)) => {
                return match deps.auth.authenticate(&token).await {
                    // A URL token and another for someone else: refused, not guessed.
                    Ok(caller)
                        if url_caller
                            .as_ref()
                            .is_none_or(|u| u.user_id == caller.user_id) =>
                    {
                        Some(caller)
                    }
                    _ => refuse(codec, sink, "invalid_token", "token invalid or expired").await,
                };
            }
        }
    }
}

struct SessionState<'a> {
    deps: &'a WsDeps,
    caller: Caller,
    member: Member,
    rooms: Vec<String>,
    /// (room, seq) after a resume: queued frames of that room up to seq were already replayed.
    fences: Vec<(String, u64)>,
}

/// `room` and `seq` of an event frame (`{"type":..,"room":"..","seq":N,..}`, as the bus writes
/// them); None for anything else.
fn frame_room_seq(frame: &str) -> Option<(&str, u64)> {
    let rest = &frame[frame.find(r#","room":""#)? + 9..];
    let end = rest.find('"')?;
    let room = &rest[..end];
    let rest = rest[end..].strip_prefix(r#"","seq":"#)?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    Some((room, rest[..digits].parse().ok()?))
}

impl SessionState<'_> {
    /// Whether a queued frame was already sent by a resume replay (and should be skipped).
    fn fenced(&mut self, frame: &str) -> bool {
        if self.fences.is_empty() {
            return false;
        }
        let Some((room, seq)) = frame_room_seq(frame) else {
            return false;
        };
        let Some(i) = self.fences.iter().position(|(r, _)| r == room) else {
            return false;
        };
        if seq <= self.fences[i].1 {
            return true;
        }
        // Past the replay: live frames carry on from here.
        self.fences.swap_remove(i);
        false
    }

    async fn answer(&mut self, frame: ClientFrame) -> Reply {
        let one = Reply::Answer;
        match frame {
            ClientFrame::Ping => one(control_frame("pong", None, json!({}))),
            ClientFrame::Auth { token } => match self.deps.auth.authenticate(&token).await {
                Ok(fresh) if fresh.user_id == self.caller.user_id => {
                    self.caller = fresh;
                    one(control_frame("authenticated", None, json!({})))
                }
                _ => one(error_frame(
                    None,
                    "invalid_token",
                    "token invalid, expired or for another user",
                )),
            },
            ClientFrame::Subscribe { room } => one(self.join(&room).await),
            ClientFrame::Unsubscribe { room } => {
                if self.rooms.contains(&room) {
                    self.deps.rooms.leave(&room, self.member.id);
                    self.rooms.retain(|r| r != &room);
                    self.fences.retain(|(r, _)| r != &room);
                    one(control_frame("unsubscribed", Some(&room), json!({})))
                } else {
                    one(error_frame(
                        Some(&room),
                        "not_subscribed",
                        "not subscribed to this room",
                    ))
                }
            }
            ClientFrame::Resume { room, seq } => {
                if !self.rooms.contains(&room) {
                    return one(error_frame(
                        Some(&room),
                        "not_subscribed",
                        "subscribe before resuming",
                    ));
                }
                match self.deps.bus.replay(&room, seq).await {
                    Ok(Replay::Frames { latest, frames }) => {
                        if !frames.is_empty() {
                            self.fences.retain(|(r, _)| r != &room);
                            self.fences.push((room.clone(), latest));
                        }
                        Reply::Replayed {
                            room,
                            latest,
                            frames,
                        }
                    }
                    Ok(Replay::Refetch { latest }) => one(control_frame(
                        "refetch",
                        Some(&room),
                        json!({ "seq": latest }),
                    )),
                    Err(_) => one(error_frame(
                        Some(&room),
                        "bus_unavailable",
                        "history unavailable for now; retry the resume",
                    )),
                }
            }
        }
    }

    /// Joins a room if the caller may, answering `subscribed` or `error`.
    async fn join(&mut self, room: &str) -> ByteString {
        if let Err((code, message)) = self.authorize(room).await {
            return error_frame(Some(room), code, message);
        }
        if self.rooms.len() >= ROOMS_MAX && !self.rooms.iter().any(|r| r == room) {
            return error_frame(
                Some(room),
                "too_many_rooms",
                "room limit reached for this connection",
            );
        }
        if self.deps.rooms.join(room, &self.member) {
            self.rooms.push(room.to_owned());
        }
        match self.deps.bus.latest_seq(room).await {
            Ok(seq) => {
                self.deps.rooms.observe_seq(room, seq);
                control_frame("subscribed", Some(room), json!({ "seq": seq }))
            }
            Err(_) => error_frame(
                Some(room),
                "bus_unavailable",
                "room joined, but its seq is unknown",
            ),
        }
    }

    async fn authorize(&self, room: &str) -> Result<(), (&'static str, &'static str)> {
        const DENIED: (&str, &str) = ("forbidden", "you may not subscribe to this room");
        if let Some(cid) = room.strip_prefix("client:") {
            let own = self.caller.client_id.as_deref() == Some(cid);
            // Every session belongs in its own client's room (client-wide notices only).
            return if own || self.caller.role == Role::SuperAdmin {
                Ok(())
            } else {
                Err(DENIED)
            };
        }
        if let Some(cid) = room.strip_prefix("payments:") {
            // The approval queue: the client's admins and the platform (issue 18).
            let own = self.caller.client_id.as_deref() == Some(cid);
            return match self.caller.role {
                Role::SuperAdmin => Ok(()),
                Role::ClientAdmin if own => Ok(()),
                _ => Err(DENIED),
            };
        }
        let Some(user_id) = room.strip_prefix("user:") else {
            return Err((
                "unknown_room",
                "rooms are user:<id>, client:<id> or payments:<id>",
            ));
        };
        if user_id == self.caller.user_id {
            return Ok(());
        }
        if self.caller.role == Role::Player {
            return Err(DENIED);
        }
        let target = match self.deps.store.user(user_id).await {
            Ok(Some(target)) => target,
            Ok(None) => return Err(DENIED),
            Err(_) => return Err(("unavailable", "try again")),
        };
        match reach(&self.deps.store, &self.caller, &target).await {
            Ok(Reach::Within) => Ok(()),
            Ok(_) => Err(DENIED),
            Err(_) => Err(("unavailable", "try again")),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn frame_bucket_allows_the_burst_then_the_rate() {
        let mut bucket = super::FrameBucket::new(10, 5).unwrap();
        let t0 = bucket.last;
        assert!((0..5).all(|_| bucket.take(t0)));
        assert!(!bucket.take(t0), "past the burst");
        // 100 ms at 10/s earns one frame back.
        let later = t0 + std::time::Duration::from_millis(100);
        assert!(bucket.take(later));
        assert!(!bucket.take(later));
        assert!(super::FrameBucket::new(0, 5).is_none(), "0 turns it off");
    }

    #[test]
    fn reads_room_and_seq_of_event_frames_only() {
        let frame = r#"{"type":"balance_update","room":"user:ab-1","seq":42,"ts":"x","data":{}}"#;
        assert_eq!(super::frame_room_seq(frame), Some(("user:ab-1", 42)));
        let control = r#"{"room":"user:ab-1","seq":3,"ts":"x","type":"refetch"}"#;
        assert_eq!(super::frame_room_seq(control), None);
    }
}
