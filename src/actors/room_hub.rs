//! RoomHub: this node's rooms (`user:<id>`, `client:<cid>`) and the websocket sessions in them.
//!
//! Owns: room membership, presence counts, and each session's close switch. Handles: `join`,
//! `leave`, `deliver` (one frame, already serialized, shared by every member) and `close_all`.
//! Rooms are a sharded concurrent map rather than one actor per room: delivery is a lock-free
//! read and a `try_send` per member, with no extra mailbox hop (see ARCHITECTURE.md).
//! Each session has a bounded queue; a full queue closes that session with 4008, never
//! blocking the publisher or growing memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use bytestring::ByteString;
use dashmap::DashMap;
use tokio::sync::{Notify, mpsc};

use crate::metrics as m;

pub type SessionId = u64;

/// Close code for a consumer whose outbound queue is full.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code for an invalid or expired token.
pub const CLOSE_TOKEN_INVALID: u16 = 4001;
/// Close code on server shutdown: reconnect and resume.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// A session's close switch: the first code set wins, and the session task wakes on it.
#[derive(Default)]
pub struct SessionControl {
    close_code: AtomicU16,
    notify: Notify,
}

impl SessionControl {
    pub fn close(&self, code: u16) {
        if self
            .close_code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.notify.notify_one();
        }
    }

    /// Waits until someone asks this session to close; returns the code.
    pub async fn closed(&self) -> u16 {
        loop {
            let code = self.close_code.load(Ordering::Acquire);
            if code != 0 {
                return code;
            }
            self.notify.notified().await;
        }
    }
}

#[derive(Clone)]
pub struct Member {
    pub id: SessionId,
    pub tx: mpsc::Sender<ByteString>,
    pub control: Arc<SessionControl>,
}

#[derive(Default)]
pub struct RoomHub {
    rooms: DashMap<String, Vec<Member>>,
    sessions: DashMap<SessionId, Arc<SessionControl>>,
    /// client id (or `platform`) → user id → open sessions.
    presence: DashMap<String, HashMap<String, u32>>,
    next_id: AtomicU64,
}

impl RoomHub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a new session: its id, queue receiver and close switch.
    pub fn open_session(&self, queue_max: usize) -> (Member, mpsc::Receiver<ByteString>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(queue_max.max(1));
        let control = Arc::new(SessionControl::default());
        self.sessions.insert(id, control.clone());
        metrics::gauge!(m::WS_CONNECTIONS).increment(1.0);
        (Member { id, tx, control }, rx)
    }

    pub fn close_session(&self, id: SessionId, rooms: &[String]) {
        for room in rooms {
            self.leave(room, id);
        }
        if self.sessions.remove(&id).is_some() {
            metrics::gauge!(m::WS_CONNECTIONS).decrement(1.0);
        }
    }

    /// Adds a member to a room; false if it was already there.
    pub fn join(&self, room: &str, member: &Member) -> bool {
        let mut members = self.rooms.entry(room.to_owned()).or_default();
        if members.iter().any(|m| m.id == member.id) {
            return false;
        }
        members.push(member.clone());
        true
    }

    pub fn leave(&self, room: &str, id: SessionId) {
        let now_empty = match self.rooms.get_mut(room) {
            Some(mut members) => {
                members.retain(|m| m.id != id);
                members.is_empty()
            }
            None => false,
        };
        if now_empty {
            self.rooms.remove_if(room, |_, members| members.is_empty());
        }
    }

    pub fn has_room(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    /// Queues one frame to every member of the room on this node.
    pub fn deliver(&self, room: &str, frame: ByteString) {
        let Some(members) = self.rooms.get(room) else {
            return;
        };
        let mut delivered = 0_u64;
        for member in members.iter() {
            match member.tx.try_send(frame.clone()) {
                Ok(()) => delivered += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    metrics::counter!(m::WS_SLOW_CLOSED).increment(1);
                    member.control.close(CLOSE_TOO_SLOW);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        metrics::counter!(m::EVENTS_DELIVERED).increment(delivered);
    }

    /// Asks every session on this node to close (server shutdown: 1001).
    pub fn close_all(&self, code: u16) {
        for session in self.sessions.iter() {
            session.close(code);
        }
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Counts a user's session for `active_users_total{client_id}`.
    pub fn user_online(&self, client_key: &str, user_id: &str) {
        let users = {
            let mut users = self.presence.entry(client_key.to_owned()).or_default();
            *users.entry(user_id.to_owned()).or_insert(0) += 1;
            users.len()
        };
        self.publish_presence(client_key, users);
    }

    pub fn user_offline(&self, client_key: &str, user_id: &str) {
        let users = {
            let Some(mut users) = self.presence.get_mut(client_key) else {
                return;
            };
            if let Some(count) = users.get_mut(user_id) {
                *count -= 1;
                if *count == 0 {
                    users.remove(user_id);
                }
            }
            users.len()
        };
        self.publish_presence(client_key, users);
    }

    fn publish_presence(&self, client_key: &str, users: usize) {
        metrics::gauge!(m::ACTIVE_USERS, "client_id" => client_key.to_owned()).set(users as f64);
        let total: usize = self.presence.iter().map(|c| c.len()).sum();
        metrics::gauge!(m::ACTIVE_USERS).set(total as f64);
    }
}
