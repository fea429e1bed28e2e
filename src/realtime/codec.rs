//! How a realtime session frames its traffic on the websocket: the one thing `/ws` and
//! `/socket.io/` do differently. The session (`ws_session.rs`) owns everything else (auth,
//! rooms, reach, seq, resume, queue, caps, metrics) and speaks in [`ClientFrame`]s in and JSON
//! frames out (`{"type","room","seq","ts","data"}`, as the bus serializes them); a codec turns
//! those into wire messages: [`JsonCodec`] writes them as they are (DESIGN section 7),
//! `socketio::SocketIoCodec` wraps them in Engine.IO v4 / Socket.io v5 packets.

use bytestring::ByteString;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

use super::ws_session::error_frame;

/// A client request, whatever framing it came in.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Auth { token: String },
    Subscribe { room: String },
    Unsubscribe { room: String },
    Resume { room: String, seq: u64 },
    Ping,
}

/// The session's answer to one request.
pub enum Reply {
    /// One frame: `subscribed`, `unsubscribed`, `refetch`, `pong`, `authenticated`, `error`.
    Answer(ByteString),
    /// A resume served from the room's history: the missed frames (maybe none), then the
    /// room's seq after them.
    Replayed {
        room: String,
        latest: u64,
        frames: Vec<ByteString>,
    },
}

/// What an inbound text message means to the session.
pub enum Inbound {
    /// A request; `tag` is the codec's handle to answer it (a Socket.io ack id).
    Request {
        frame: ClientFrame,
        tag: Option<u64>,
    },
    /// Wire messages to write back at once (a codec-level answer or error).
    Write(Vec<ByteString>),
    /// Nothing to do (a keep-alive answer, an ack).
    Nothing,
    /// The client is leaving (Socket.io DISCONNECT, Engine.IO close).
    Bye,
}

/// What a message read before the session starts (the hello) means.
pub enum Hello {
    /// Authenticate with this token; `None`: the token given in the URL stands.
    Token(Option<String>),
    /// Write this and keep waiting for the hello (e.g. a refused namespace).
    Wait(Option<ByteString>),
    /// Not a hello: refuse (`refusal`) and close with 4001.
    Refuse(&'static str, &'static str),
}

pub trait Codec: Send + 'static {
    /// Written right after the upgrade (Engine.IO's open packet).
    fn greeting(&self) -> Option<ByteString>;
    /// Whether the session must read a hello before it starts, given a valid URL token or not.
    fn needs_hello(&self, url_token: bool) -> bool;
    fn hello(&mut self, text: &str) -> Hello;
    /// Written once the hello is accepted (Socket.io's CONNECT answer).
    fn welcome(&self) -> Option<ByteString>;
    /// Written before a session refused at its hello closes (Socket.io CONNECT_ERROR).
    fn refusal(&self, code: &'static str, message: &str) -> Option<ByteString>;
    fn decode(&mut self, text: &str) -> Inbound;
    /// A room frame (shared by every member) as this connection's wire text.
    fn event(&self, frame: ByteString) -> ByteString;
    fn reply(&self, tag: Option<u64>, reply: Reply) -> Vec<ByteString>;
    /// The server's keep-alive message (a websocket ping, or Engine.IO's `2`).
    fn heartbeat(&self) -> Message;
    /// Written just before the close frame with `code`.
    fn farewell(&self, code: u16) -> Vec<ByteString>;
}

/// `/ws`: one JSON object per text message, both ways (DESIGN section 7).
pub struct JsonCodec;

impl Codec for JsonCodec {
    fn greeting(&self) -> Option<ByteString> {
        None
    }

    fn needs_hello(&self, url_token: bool) -> bool {
        !url_token
    }

    fn hello(&mut self, text: &str) -> Hello {
        match serde_json::from_str::<ClientFrame>(text) {
            Ok(ClientFrame::Auth { token }) => Hello::Token(Some(token)),
            _ => Hello::Refuse("invalid_token", "the first frame must be auth"),
        }
    }

    fn welcome(&self) -> Option<ByteString> {
        None
    }

    fn refusal(&self, _code: &'static str, _message: &str) -> Option<ByteString> {
        None
    }

    fn decode(&mut self, text: &str) -> Inbound {
        match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => Inbound::Request { frame, tag: None },
            Err(e) => Inbound::Write(vec![error_frame(
                None,
                "invalid_frame",
                &format!("unreadable frame: {e}"),
            )]),
        }
    }

    fn event(&self, frame: ByteString) -> ByteString {
        frame
    }

    fn reply(&self, _tag: Option<u64>, reply: Reply) -> Vec<ByteString> {
        match reply {
            Reply::Answer(frame) => vec![frame],
            // The client sees the frames; nothing missed, nothing said.
            Reply::Replayed { frames, .. } => frames,
        }
    }

    fn heartbeat(&self) -> Message {
        Message::Ping(Default::default())
    }

    fn farewell(&self, _code: u16) -> Vec<ByteString> {
        Vec::new()
    }
}
