//! In-process bus: seq counters in memory, delivery straight to this node's rooms.

use std::sync::Arc;

use bytestring::ByteString;
use dashmap::DashMap;

use super::Event;
use crate::actors::room_hub::RoomHub;

pub struct LocalBus {
    hub: Arc<RoomHub>,
    seqs: DashMap<String, u64>,
}

impl LocalBus {
    pub fn new(hub: Arc<RoomHub>) -> Self {
        Self {
            hub,
            seqs: DashMap::new(),
        }
    }

    pub fn publish(&self, event: Event) {
        let (prefix, suffix) = event.frame_parts();
        // Holding the counter's entry while delivering keeps each room's frames in seq order.
        let mut seq = self.seqs.entry(event.room.clone()).or_insert(0);
        *seq += 1;
        let frame = ByteString::from(format!("{prefix}{}{suffix}", *seq));
        self.hub.deliver(&event.room, frame);
    }

    pub fn latest_seq(&self, room: &str) -> u64 {
        self.seqs.get(room).map_or(0, |s| *s)
    }
}
