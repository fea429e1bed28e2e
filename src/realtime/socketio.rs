//! Socket.io (protocol v5) over Engine.IO v4, websocket transport only: the framing of
//! `/socket.io/` (DESIGN section 11). Rooms, reach, seq and resume are the session's
//! (`ws_session.rs`); this codec only maps packets to requests and frames to packets.
//!
//! Engine.IO: the server opens with `0{"sid","upgrades":[],"pingInterval","pingTimeout",
//! "maxPayload"}`, pings with `2` (the client answers `3`), closes on `1`; `4<socket.io packet>`
//! carries Socket.io. Socket.io packets: `0` CONNECT (`40{"token":..}`: the `auth` payload),
//! answered `40{"sid"}` or `44{"message","data":{"code"}}` (CONNECT_ERROR); `1` DISCONNECT;
//! `2` EVENT (`42<ack id?>["name",arg]`); `3` ACK (`43<id>[answer]`). Only the default
//! namespace `/` exists (others: CONNECT_ERROR). Binary packets are refused.
//!
//! Client events: `join_user_room` (`{user_id}` or the id), `join_client_room` (`{client_id}`
//! or the id), `leave_user_room`, `leave_client_room`, `subscribe`/`unsubscribe` (`{room}`),
//! `resume` (`{room, seq}`), `auth` (`{token}`), `ping`. With an ack id the answer is the ack's
//! argument, else an event named after it. Server events are the `/ws` frames, named by their
//! `type`: `42["balance_update",{"type":"balance_update","room","seq","ts","data"}]`; a resume
//! replays as events, then answers `{"type":"resumed","room","seq","replayed"}`.

use bytestring::ByteString;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::codec::{ClientFrame, Codec, Hello, Inbound, Reply};
use super::room_hub::{CLOSE_TOKEN_INVALID, CLOSE_TOO_MANY_WEBSOCKETS};
use super::ws_session::{CLIENT_FRAME_MAX_BYTES, HEARTBEAT_EVERY, control_frame, error_frame};
use crate::metrics as m;

/// How long, after a ping, the client has to answer before it considers the server gone
/// (Engine.IO's `pingTimeout`). The server closes a silent client after `ws_idle_timeout_secs`.
const PING_TIMEOUT_MS: u64 = 20_000;

pub struct SocketIoCodec {
    engine_sid: String,
    socket_sid: String,
}

impl Default for SocketIoCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl SocketIoCodec {
    pub fn new() -> Self {
        metrics::gauge!(m::SOCKETIO_CONNECTIONS).increment(1.0);
        Self {
            engine_sid: uuid::Uuid::new_v4().simple().to_string(),
            socket_sid: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    fn message(packet: String) -> ByteString {
        ByteString::from(packet)
    }
}

impl Drop for SocketIoCodec {
    fn drop(&mut self) {
        metrics::gauge!(m::SOCKETIO_CONNECTIONS).decrement(1.0);
    }
}

/// A Socket.io packet inside an Engine.IO message (`4…`).
#[derive(Debug, PartialEq)]
struct Packet<'a> {
    kind: u8,
    namespace: &'a str,
    id: Option<u64>,
    data: &'a str,
}

/// Parses `<type>[<attachments>-][/<nsp>,][<id>][<json>]`; None if malformed.
fn parse_packet(text: &str) -> Option<Packet<'_>> {
    let kind = text.bytes().next()?.checked_sub(b'0').filter(|k| *k <= 6)?;
    let mut rest = &text[1..];
    if kind == 5 || kind == 6 {
        // Binary event or ack: `<n>-` attachments follow, which this server does not take.
        return Some(Packet {
            kind,
            namespace: "/",
            id: None,
            data: rest,
        });
    }
    let mut namespace = "/";
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        namespace = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = match digits {
        0 => None,
        _ => Some(rest[..digits].parse().ok()?),
    };
    Some(Packet {
        kind,
        namespace,
        id,
        data: &rest[digits..],
    })
}

/// The event's name and first argument.
fn event_args(data: &str) -> Option<(String, Value)> {
    let Value::Array(mut items) = serde_json::from_str(data).ok()? else {
        return None;
    };
    if items.is_empty() {
        return None;
    }
    let arg = if items.len() > 1 {
        items.swap_remove(1)
    } else {
        Value::Null
    };
    match items.swap_remove(0) {
        Value::String(name) => Some((name, arg)),
        _ => None,
    }
}

/// `arg` as an id: the string itself or its `field`.
fn id_arg<'a>(arg: &'a Value, field: &str) -> Option<&'a str> {
    arg.as_str().or_else(|| arg.get(field)?.as_str())
}

/// Maps a client event to a request, or the reason it cannot be one.
fn request(name: &str, arg: &Value) -> Result<ClientFrame, String> {
    let room = |prefix: &str, field: &str| {
        let given = arg.get("room").and_then(Value::as_str);
        match (given, id_arg(arg, field)) {
            (Some(room), _) if prefix.is_empty() || room.starts_with(prefix) => Ok(room.to_owned()),
            (None, Some(id)) if !prefix.is_empty() => Ok(format!("{prefix}{id}")),
            _ if prefix.is_empty() => Err(format!("{name} needs {{room}}")),
            _ => Err(format!("{name} needs {{{field}}} (or the id itself)")),
        }
    };
    Ok(match name {
        "join_user_room" => ClientFrame::Subscribe {
            room: room("user:", "user_id")?,
        },
        "join_client_room" => ClientFrame::Subscribe {
            room: room("client:", "client_id")?,
        },
        "leave_user_room" => ClientFrame::Unsubscribe {
            room: room("user:", "user_id")?,
        },
        "leave_client_room" => ClientFrame::Unsubscribe {
            room: room("client:", "client_id")?,
        },
        "subscribe" => ClientFrame::Subscribe {
            room: room("", "room")?,
        },
        "unsubscribe" => ClientFrame::Unsubscribe {
            room: room("", "room")?,
        },
        "resume" => {
            let seq = arg.get("seq").and_then(Value::as_u64);
            match (arg.get("room").and_then(Value::as_str), seq) {
                (Some(room), Some(seq)) => ClientFrame::Resume {
                    room: room.to_owned(),
                    seq,
                },
                _ => return Err("resume needs {room, seq}".into()),
            }
        }
        "auth" => match arg.get("token").and_then(Value::as_str) {
            Some(token) => ClientFrame::Auth {
                token: token.to_owned(),
            },
            None => return Err("auth needs {token}".into()),
        },
        "ping" => ClientFrame::Ping,
        _ => {
            return Err(format!(
                "unknown event {name:?}: join_user_room, join_client_room, leave_user_room, \
                 leave_client_room, subscribe, unsubscribe, resume, auth, ping"
            ));
        }
    })
}

/// `type` of a frame: read from its start when the bus wrote it (`{"type":"..."`), else parsed.
fn frame_type(frame: &str) -> String {
    if let Some(rest) = frame.strip_prefix(r#"{"type":""#)
        && let Some(end) = rest.find('"')
    {
        return rest[..end].to_owned();
    }
    serde_json::from_str::<Value>(frame)
        .ok()
        .and_then(|v| v.get("type")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "message".into())
}

fn counted(reason: &'static str) {
    let label = match reason {
        "invalid_token" | "missing_token" => "invalid_token",
        "invalid_namespace" => "invalid_namespace",
        "too_many_websockets" => "too_many_websockets",
        _ => "bad_packet",
    };
    metrics::counter!(m::SOCKETIO_CONNECT_ERRORS, "reason" => label).increment(1);
}

impl Codec for SocketIoCodec {
    fn greeting(&self) -> Option<ByteString> {
        let open = json!({
            "sid": self.engine_sid,
            "upgrades": [],
            "pingInterval": HEARTBEAT_EVERY.as_millis() as u64,
            "pingTimeout": PING_TIMEOUT_MS,
            "maxPayload": CLIENT_FRAME_MAX_BYTES,
        });
        Some(Self::message(format!("0{open}")))
    }

    fn needs_hello(&self, _url_token: bool) -> bool {
        true
    }

    fn hello(&mut self, text: &str) -> Hello {
        match text.as_bytes().first() {
            // Keep-alive before CONNECT: nothing to do.
            Some(b'3' | b'6') => return Hello::Wait(None),
            Some(b'2') => return Hello::Wait(Some(Self::message(format!("3{}", &text[1..])))),
            Some(b'4') => {}
            _ => return Hello::Refuse("bad_packet", "expected a Socket.io CONNECT packet (40)"),
        }
        let Some(packet) = parse_packet(&text[1..]).filter(|p| p.kind == 0) else {
            return Hello::Refuse("bad_packet", "expected a Socket.io CONNECT packet (40)");
        };
        if packet.namespace != "/" {
            counted("invalid_namespace");
            let error = json!({
                "message": "Invalid namespace",
                "data": { "code": "invalid_namespace", "message": "only the default namespace / exists" },
            });
            return Hello::Wait(Some(Self::message(format!(
                "44{},{error}",
                packet.namespace
            ))));
        }
        let auth: Value = match packet.data {
            "" => Value::Null,
            data => match serde_json::from_str(data) {
                Ok(auth) => auth,
                Err(_) => return Hello::Refuse("bad_packet", "the CONNECT payload must be JSON"),
            },
        };
        Hello::Token(auth.get("token").and_then(Value::as_str).map(str::to_owned))
    }

    fn welcome(&self) -> Option<ByteString> {
        Some(Self::message(format!(
            "40{}",
            json!({ "sid": self.socket_sid })
        )))
    }

    fn refusal(&self, code: &'static str, message: &str) -> Option<ByteString> {
        counted(code);
        let error = json!({ "message": message, "data": { "code": code, "message": message } });
        Some(Self::message(format!("44{error}")))
    }

    fn decode(&mut self, text: &str) -> Inbound {
        let bad = |message: String| {
            Inbound::Write(vec![self.event(error_frame(
                None,
                "invalid_frame",
                &message,
            ))])
        };
        match text.as_bytes().first() {
            Some(b'3' | b'6') => return Inbound::Nothing,
            Some(b'2') => return Inbound::Write(vec![Self::message(format!("3{}", &text[1..]))]),
            Some(b'1') => return Inbound::Bye,
            Some(b'4') => {}
            _ => return bad(format!("unknown Engine.IO packet {text:.16?}")),
        }
        let Some(packet) = parse_packet(&text[1..]) else {
            return bad(format!("unreadable Socket.io packet {text:.16?}"));
        };
        if packet.namespace != "/" {
            return bad("only the default namespace / exists".into());
        }
        match packet.kind {
            // Already connected: the same answer again.
            0 => Inbound::Write(self.welcome().into_iter().collect()),
            1 => Inbound::Bye,
            2 => match event_args(packet.data) {
                Some((name, arg)) => match request(&name, &arg) {
                    Ok(frame) => Inbound::Request {
                        frame,
                        tag: packet.id,
                    },
                    Err(message) => Inbound::Write(self.reply(
                        packet.id,
                        Reply::Answer(error_frame(None, "invalid_frame", &message)),
                    )),
                },
                None => bad("an event is [\"name\", argument]".into()),
            },
            3 => Inbound::Nothing,
            _ => Inbound::Write(self.reply(
                packet.id,
                Reply::Answer(error_frame(
                    None,
                    "text_only",
                    "binary packets are not accepted",
                )),
            )),
        }
    }

    fn event(&self, frame: ByteString) -> ByteString {
        let kind = frame_type(&frame);
        let mut packet = String::with_capacity(frame.len() + kind.len() + 8);
        packet.push_str("42[\"");
        packet.push_str(&kind);
        packet.push_str("\",");
        packet.push_str(&frame);
        packet.push(']');
        Self::message(packet)
    }

    fn reply(&self, tag: Option<u64>, reply: Reply) -> Vec<ByteString> {
        let (mut out, answer) = match reply {
            Reply::Answer(frame) => (Vec::new(), frame),
            Reply::Replayed {
                room,
                latest,
                frames,
            } => {
                let replayed = frames.len();
                let out: Vec<_> = frames.into_iter().map(|f| self.event(f)).collect();
                let answer = control_frame(
                    "resumed",
                    Some(&room),
                    json!({ "seq": latest, "replayed": replayed }),
                );
                (out, answer)
            }
        };
        out.push(match tag {
            Some(id) => Self::message(format!("43{id}[{answer}]")),
            None => self.event(answer),
        });
        out
    }

    fn heartbeat(&self) -> Message {
        Message::text("2")
    }

    fn farewell(&self, code: u16) -> Vec<ByteString> {
        // A token that ran out, or too many sockets: the client must not just reconnect, so
        // the reason as an `error` event, then DISCONNECT; otherwise (shutdown, too slow) the
        // transport just closes: the client reconnects and resumes.
        let (code, message) = match code {
            CLOSE_TOKEN_INVALID => ("invalid_token", "token invalid or expired"),
            CLOSE_TOO_MANY_WEBSOCKETS => {
                ("too_many_websockets", "too many websockets for this user")
            }
            _ => return Vec::new(),
        };
        vec![
            self.event(error_frame(None, code, message)),
            Self::message("41".into()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_socketio_packets() {
        let p = parse_packet(r#"212["resume",{"room":"user:a","seq":3}]"#).unwrap();
        assert_eq!((p.kind, p.namespace, p.id), (2, "/", Some(12)));
        assert_eq!(p.data, r#"["resume",{"room":"user:a","seq":3}]"#);
        let p = parse_packet(r#"0/admin,{"token":"x"}"#).unwrap();
        assert_eq!((p.kind, p.namespace, p.id), (0, "/admin", None));
        assert_eq!(p.data, r#"{"token":"x"}"#);
        assert_eq!(parse_packet("0").unwrap().data, "");
        assert!(parse_packet("9").is_none());
        assert!(parse_packet("").is_none());
    }

    #[test]
    fn maps_events_to_requests() {
        let arg = json!({ "user_id": "u1" });
        assert_eq!(
            request("join_user_room", &arg),
            Ok(ClientFrame::Subscribe {
                room: "user:u1".into()
            })
        );
        assert_eq!(
            request("leave_client_room", &json!("c1")),
            Ok(ClientFrame::Unsubscribe {
                room: "client:c1".into()
            })
        );
        assert!(request("join_user_room", &json!({ "room": "client:c1" })).is_err());
        assert!(request("resume", &json!({ "room": "user:u1" })).is_err());
        assert!(request("nope", &Value::Null).is_err());
    }

    #[test]
    fn wraps_frames_as_events_named_by_type() {
        let codec = SocketIoCodec::new();
        let frame = ByteString::from(r#"{"type":"balance_update","room":"user:a","seq":1}"#);
        assert_eq!(
            &*codec.event(frame),
            r#"42["balance_update",{"type":"balance_update","room":"user:a","seq":1}]"#
        );
        let control = ByteString::from(r#"{"room":"user:a","seq":1,"type":"subscribed"}"#);
        assert!(codec.event(control).starts_with(r#"42["subscribed",{"#));
        let acked = codec.reply(
            Some(7),
            Reply::Answer(ByteString::from(r#"{"type":"pong"}"#)),
        );
        assert_eq!(acked, vec![ByteString::from(r#"437[{"type":"pong"}]"#)]);
    }
}
