//! In-process bus: seq counters and each room's recent history in memory, delivery straight to
//! this node's rooms.

use std::collections::VecDeque;
use std::sync::Arc;

use bytestring::ByteString;
use dashmap::DashMap;

use super::{Event, HISTORY_MAX, Replay};
use crate::realtime::room_hub::RoomHub;

/// One room's counter and its last `HISTORY_MAX` frames (oldest first, seqs contiguous).
#[derive(Default)]
struct RoomLog {
    seq: u64,
    frames: VecDeque<ByteString>,
}

pub struct LocalBus {
    hub: Arc<RoomHub>,
    logs: DashMap<String, RoomLog>,
}

impl LocalBus {
    pub fn new(hub: Arc<RoomHub>) -> Self {
        Self {
            hub,
            logs: DashMap::new(),
        }
    }

    pub fn publish(&self, event: Event) {
        let (prefix, suffix) = event.frame_parts();
        // Holding the room's entry while delivering keeps its frames in seq order, and a
        // `replay` (same lock) sees either none or all of this event.
        let mut log = self.logs.entry(event.room.clone()).or_default();
        log.seq += 1;
        let seq = log.seq;
        let frame = ByteString::from(format!("{prefix}{seq}{suffix}"));
        if log.frames.len() == HISTORY_MAX {
            log.frames.pop_front();
        }
        log.frames.push_back(frame.clone());
        self.hub
            .deliver(&event.room, seq, frame, event.published_us);
    }

    pub fn latest_seq(&self, room: &str) -> u64 {
        self.logs.get(room).map_or(0, |l| l.seq)
    }

    pub fn replay(&self, room: &str, after: u64) -> Replay {
        let Some(log) = self.logs.get(room) else {
            return if after == 0 {
                Replay::Frames {
                    latest: 0,
                    frames: Vec::new(),
                }
            } else {
                Replay::Refetch { latest: 0 }
            };
        };
        let held = log.frames.len() as u64;
        if after > log.seq || log.seq - after > held {
            return Replay::Refetch { latest: log.seq };
        }
        let missed = (log.seq - after) as usize;
        Replay::Frames {
            latest: log.seq,
            frames: log
                .frames
                .iter()
                .skip(log.frames.len() - missed)
                .cloned()
                .collect(),
        }
    }
}
