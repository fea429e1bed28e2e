//! Realtime: the event bus between nodes, this node's rooms, and the websocket sessions the
//! rooms deliver into (the `/ws` endpoint itself is `http::ws`). Below the actors that publish
//! events and the HTTP facade; it imports neither.

pub mod bus;
pub mod codec;
pub mod room_hub;
pub mod socketio;
pub mod ws_session;
