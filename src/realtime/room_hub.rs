//! RoomHub: this node's rooms (`user:<id>`, `client:<cid>`) and the websocket sessions in them.
//!
//! Owns: room membership, each room's last delivered seq, presence counts, and each session's
//! close switch. Handles: `join`, `leave`, `deliver` (one frame, already serialized, shared by
//! every member), `refetch` (tell a room's members to reload) and `close_all`.
//! A room delivers each seq at most once and only forwards (a frame at or below the last
//! delivered seq is a duplicate from a bus catch-up and is skipped).
//! Rooms are a sharded concurrent map rather than one actor per room: delivery is a lock-free
//! read and a `try_send` per member, with no extra mailbox hop (see ARCHITECTURE.md).
//! Each session has a bounded queue; a full queue closes that session with 4008, never
//! blocking the publisher or growing memory.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytestring::ByteString;
use dashmap::DashMap;
use tokio::sync::Notify;

use crate::metrics as m;

pub type SessionId = u64;

/// Close code for a consumer whose outbound queue is full.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code for an invalid or expired token.
pub const CLOSE_TOKEN_INVALID: u16 = 4001;
/// Close code on server shutdown: reconnect and resume.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code when the user already holds as many websockets as allowed (token in the first
/// frame; with the token in the URL the upgrade itself is refused with 429).
pub const CLOSE_TOO_MANY_WEBSOCKETS: u16 = 4009;
/// Close code for a client sending frames faster than its rate limit.
pub const CLOSE_TOO_MANY_FRAMES: u16 = 4029;

/// A session's outbound queue and close switch, shared by the session task and every room it is
/// in. The queue is a plain bounded deque (no capacity reserved while empty, shrunk after a
/// burst), so an idle session costs a few dozen bytes here; the first close code set wins.
pub struct SessionControl {
    close_code: AtomicU16,
    close_notify: Notify,
    queue: Mutex<VecDeque<ByteString>>,
    queue_max: usize,
    queued: Notify,
}

/// Frames kept allocated in an emptied queue; a larger buffer left by a burst is freed.
const QUEUE_KEEP: usize = 16;

impl SessionControl {
    pub fn new(queue_max: usize) -> Self {
        Self {
            close_code: AtomicU16::new(0),
            close_notify: Notify::new(),
            queue: Mutex::new(VecDeque::new()),
            queue_max: queue_max.max(1),
            queued: Notify::new(),
        }
    }

    /// Queues a frame; false if the queue is full (the caller closes the session).
    pub fn offer(&self, frame: &ByteString) -> bool {
        {
            let mut queue = self.queue.lock().expect("queue lock");
            if queue.len() >= self.queue_max {
                return false;
            }
            queue.push_back(frame.clone());
        }
        self.queued.notify_one();
        true
    }

    /// The next queued frame, if any.
    pub fn try_next_frame(&self) -> Option<ByteString> {
        let mut queue = self.queue.lock().expect("queue lock");
        let frame = queue.pop_front();
        if queue.is_empty() && queue.capacity() > QUEUE_KEEP {
            queue.shrink_to_fit();
        }
        frame
    }

    /// Waits for the next frame. One consumer (the session task).
    pub async fn next_frame(&self) -> ByteString {
        loop {
            if let Some(frame) = self.try_next_frame() {
                return frame;
            }
            // A frame queued since the check left a permit: this returns at once.
            self.queued.notified().await;
        }
    }

    /// Asks the session to close; true for the first request (whose code wins).
    pub fn close(&self, code: u16) -> bool {
        let first = self
            .close_code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if first {
            self.close_notify.notify_one();
        }
        first
    }

    /// The close code asked for, if any.
    pub fn code(&self) -> Option<u16> {
        match self.close_code.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }

    /// Waits until someone asks this session to close; returns the code.
    pub async fn closed(&self) -> u16 {
        loop {
            let code = self.close_code.load(Ordering::Acquire);
            if code != 0 {
                return code;
            }
            self.close_notify.notified().await;
        }
    }
}

#[derive(Clone)]
pub struct Member {
    pub id: SessionId,
    pub control: Arc<SessionControl>,
}

/// One room on this node: its members and the last seq delivered to them.
#[derive(Default)]
pub struct Room {
    members: Vec<Member>,
    last_seq: AtomicU64,
}

#[derive(Default)]
pub struct RoomHub {
    rooms: DashMap<String, Room>,
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
    pub fn open_session(&self, queue_max: usize) -> Member {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let control = Arc::new(SessionControl::new(queue_max));
        self.sessions.insert(id, control.clone());
        metrics::gauge!(m::WS_CONNECTIONS).increment(1.0);
        Member { id, control }
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
        let mut entry = self.rooms.entry(room.to_owned()).or_default();
        if entry.members.iter().any(|m| m.id == member.id) {
            return false;
        }
        entry.members.push(member.clone());
        metrics::gauge!(m::WS_SUBSCRIPTIONS).increment(1.0);
        true
    }

    pub fn leave(&self, room: &str, id: SessionId) {
        let now_empty = match self.rooms.get_mut(room) {
            Some(mut entry) => {
                let before = entry.members.len();
                entry.members.retain(|m| m.id != id);
                if entry.members.len() < before {
                    metrics::gauge!(m::WS_SUBSCRIPTIONS).decrement(1.0);
                }
                entry.members.is_empty()
            }
            None => false,
        };
        if now_empty {
            self.rooms
                .remove_if(room, |_, entry| entry.members.is_empty());
        }
    }

    pub fn has_room(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    /// Queues one frame (the room's event `seq`) to every member of the room on this node.
    /// `published_us` is the wall-clock time the event was published, for the latency metric.
    /// Callers deliver one room's frames from one task (or under the room's seq lock), in order.
    pub fn deliver(&self, room: &str, seq: u64, frame: ByteString, published_us: i64) {
        let Some(entry) = self.rooms.get(room) else {
            return;
        };
        // A duplicate (bus catch-up overlapping live delivery) or a stale frame.
        if entry.last_seq.fetch_max(seq, Ordering::AcqRel) >= seq {
            return;
        }
        let delivered = send_all(&entry.members, &frame);
        drop(entry);
        metrics::counter!(m::EVENTS_DELIVERED).increment(delivered);
        let latency_us = (crate::realtime::bus::now_us() - published_us).max(0);
        metrics::histogram!(m::DELIVERY_LATENCY)
            .record(Duration::from_micros(latency_us as u64).as_secs_f64());
    }

    /// Records the seq a fresh room starts from (the latest at its first join), so a bus
    /// catch-up knows where its members stand. Once the room has delivered, this is a no-op.
    pub fn observe_seq(&self, room: &str, seq: u64) {
        if let Some(entry) = self.rooms.get(room) {
            let _ = entry
                .last_seq
                .compare_exchange(0, seq, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Rooms on this node with the last seq each delivered (for a bus catch-up).
    pub fn room_seqs(&self) -> Vec<(String, u64)> {
        self.rooms
            .iter()
            .map(|r| (r.key().clone(), r.last_seq.load(Ordering::Acquire)))
            .collect()
    }

    /// The bus cannot fill a gap in this room (history too short, or its seq restarted after
    /// a Redis loss): members get `refetch` with the room's current seq and carry on from it.
    pub fn refetch(&self, room: &str, latest: u64) {
        let Some(entry) = self.rooms.get(room) else {
            return;
        };
        entry.last_seq.store(latest, Ordering::Release);
        let frame = ByteString::from(
            serde_json::json!({
                "type": "refetch",
                "room": room,
                "seq": latest,
                "ts": crate::domain::rfc3339_ms(crate::domain::now_ms()),
            })
            .to_string(),
        );
        send_all(&entry.members, &frame);
    }

    /// Asks every session on this node to close (server shutdown: 1001).
    pub fn close_all(&self, code: u16) {
        for session in self.sessions.iter() {
            session.close(code);
        }
    }

    /// Members of a room on this node.
    pub fn member_count(&self, room: &str) -> usize {
        self.rooms.get(room).map_or(0, |r| r.members.len())
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Users with a live session on this node, per client id (`platform` left out).
    pub fn users_per_client(&self) -> Vec<(String, usize)> {
        self.presence
            .iter()
            .filter(|c| c.key() != "platform" && !c.is_empty())
            .map(|c| (c.key().clone(), c.len()))
            .collect()
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

/// `try_send` to each member; a full queue closes that member (4008), never blocks the caller.
fn send_all(members: &[Member], frame: &ByteString) -> u64 {
    let mut delivered = 0_u64;
    for member in members {
        if member.control.offer(frame) {
            delivered += 1;
        } else {
            metrics::counter!(m::QUEUE_DROPS).increment(1);
            if member.control.close(CLOSE_TOO_SLOW) {
                metrics::counter!(m::WS_SLOW_CLOSED).increment(1);
            }
        }
    }
    delivered
}
