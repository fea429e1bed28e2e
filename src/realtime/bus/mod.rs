//! The event bus: every live event goes through it, so a websocket on node B sees a mutation
//! made on node A (DESIGN section 2).
//!
//! Publishing never blocks and never fails a money mutation: events are queued and sent in
//! order by one task per node. Each event gets its room's next `seq` where it is published (a
//! counter in process, or a Redis `INCR` inside the same script that publishes it, so every
//! node agrees on the order), and its frame is serialized once for every subscriber.
//! Each room keeps its last [`HISTORY_MAX`] frames (in process, or a capped Redis list written
//! by the same script), so a reconnecting client can `resume` from the seq it last saw.

mod event;
mod local;
mod redis_bus;

pub use event::{Event, EventKind};

use std::sync::Arc;

use crate::realtime::room_hub::RoomHub;

/// Frames kept per room for `resume` (DESIGN section 7 asks for at least 100).
pub const HISTORY_MAX: usize = 128;

/// What a `resume` from a seq gets.
#[derive(Debug)]
pub enum Replay {
    /// Every frame after the requested seq, in order (empty when nothing was missed).
    Frames {
        latest: u64,
        frames: Vec<bytestring::ByteString>,
    },
    /// The gap is older than the history, or the seq was never issued: reload state.
    Refetch { latest: u64 },
}

/// Wall-clock microseconds since the Unix epoch (comparable across nodes on one host).
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

#[derive(Clone)]
pub enum Bus {
    Local(Arc<local::LocalBus>),
    Redis(Arc<redis_bus::RedisBus>),
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl Bus {
    /// The in-process bus: for one node, or when no Redis is configured.
    pub fn local(hub: Arc<RoomHub>) -> Self {
        Bus::Local(Arc::new(local::LocalBus::new(hub)))
    }

    /// Redis pub/sub; `prefix` namespaces every key and channel.
    pub async fn redis(url: &str, prefix: &str, hub: Arc<RoomHub>) -> Result<Self, BusError> {
        Ok(Bus::Redis(
            redis_bus::RedisBus::start(url, prefix, hub).await?,
        ))
    }

    /// Queues an event for every node's subscribers. Never waits.
    pub fn publish(&self, mut event: Event) {
        metrics::counter!(crate::metrics::EVENTS_PUBLISHED).increment(1);
        event.published_us = now_us();
        match self {
            Bus::Local(b) => b.publish(event),
            Bus::Redis(b) => b.publish(event),
        }
    }

    /// The room's latest `seq` (0 before its first event).
    pub async fn latest_seq(&self, room: &str) -> Result<u64, BusError> {
        match self {
            Bus::Local(b) => Ok(b.latest_seq(room)),
            Bus::Redis(b) => b.latest_seq(room).await,
        }
    }

    /// The room's frames after seq `after`, or `Refetch` when history cannot cover the gap.
    pub async fn replay(&self, room: &str, after: u64) -> Result<Replay, BusError> {
        match self {
            Bus::Local(b) => Ok(b.replay(room, after)),
            Bus::Redis(b) => b.replay(room, after).await,
        }
    }

    /// Whether the bus can publish now (for `/ready`).
    pub async fn ping(&self) -> Result<(), BusError> {
        match self {
            Bus::Local(_) => Ok(()),
            Bus::Redis(b) => b.ping().await,
        }
    }

    pub fn is_redis(&self) -> bool {
        matches!(self, Bus::Redis(_))
    }

    /// Sends what is queued, then stops the bus's tasks.
    pub async fn shutdown(&self) {
        if let Bus::Redis(b) = self {
            b.shutdown().await;
        }
    }
}
