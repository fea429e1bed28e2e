//! Redis bus: one script per event assigns the room's seq (`INCR`) and publishes the finished
//! frame on the node-wide channel atomically, so every node sees each room's frames in seq
//! order. A publisher task pipelines queued events; a subscriber task delivers what arrives to
//! this node's rooms and reconnects after a Redis failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytestring::ByteString;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use super::{BusError, Event};
use crate::actors::room_hub::RoomHub;

/// Events waiting for Redis; past this, new events are dropped and counted (money is never
/// held back for notifications, and clients catch up by seq).
const PUBLISH_QUEUE_MAX: usize = 100_000;
/// Events sent in one pipeline.
const PUBLISH_BATCH_MAX: usize = 512;

const PUBLISH_SCRIPT: &str = r"
local seq = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', KEYS[2], ARGV[3] .. '\n' .. ARGV[1] .. seq .. ARGV[2])
return seq
";

pub struct RedisBus {
    prefix: String,
    conn: ConnectionManager,
    queue: mpsc::Sender<Event>,
    /// Events queued or being sent; shutdown waits for it to reach zero.
    in_flight: Arc<AtomicUsize>,
    publisher: tokio::task::JoinHandle<()>,
    subscriber: tokio::task::JoinHandle<()>,
}

impl RedisBus {
    pub async fn start(url: &str, prefix: &str, hub: Arc<RoomHub>) -> Result<Arc<Self>, BusError> {
        let client = redis::Client::open(url)?;
        let conn = client.get_connection_manager().await?;
        let channel = format!("{prefix}:events");
        // Subscribe before the first publish so this node misses nothing of its own.
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let subscriber = tokio::spawn(subscribe_loop(client, channel.clone(), hub, Some(ready_tx)));
        let _ = tokio::time::timeout(Duration::from_secs(5), ready_rx).await;
        let (queue, rx) = mpsc::channel(PUBLISH_QUEUE_MAX);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let publisher = tokio::spawn(publish_loop(
            conn.clone(),
            prefix.to_owned(),
            channel,
            rx,
            in_flight.clone(),
        ));
        Ok(Arc::new(Self {
            prefix: prefix.to_owned(),
            conn,
            queue,
            in_flight,
            publisher,
            subscriber,
        }))
    }

    pub fn publish(&self, event: Event) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if self.queue.try_send(event).is_err() {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!(crate::metrics::EVENTS_DROPPED).increment(1);
        }
    }

    pub async fn latest_seq(&self, room: &str) -> Result<u64, BusError> {
        let mut conn = self.conn.clone();
        let seq: Option<u64> = redis::cmd("GET")
            .arg(seq_key(&self.prefix, room))
            .query_async(&mut conn)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    pub async fn ping(&self) -> Result<(), BusError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    pub async fn shutdown(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.publisher.abort();
        self.subscriber.abort();
    }
}

fn seq_key(prefix: &str, room: &str) -> String {
    format!("{prefix}:seq:{room}")
}

async fn publish_loop(
    mut conn: ConnectionManager,
    prefix: String,
    channel: String,
    mut rx: mpsc::Receiver<Event>,
    in_flight: Arc<AtomicUsize>,
) {
    let script = redis::Script::new(PUBLISH_SCRIPT);
    let mut batch = Vec::with_capacity(PUBLISH_BATCH_MAX);
    while rx.recv_many(&mut batch, PUBLISH_BATCH_MAX).await > 0 {
        let mut pipe = redis::pipe();
        pipe.load_script(&script).ignore();
        for event in &batch {
            let (prefix_part, suffix_part) = event.frame_parts();
            pipe.invoke_script(
                script
                    .key(seq_key(&prefix, &event.room))
                    .key(&channel)
                    .arg(prefix_part)
                    .arg(suffix_part)
                    .arg(&event.room),
            )
            .ignore();
        }
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            metrics::counter!(crate::metrics::EVENTS_DROPPED).increment(batch.len() as u64);
            tracing::warn!(error = %e, events = batch.len(), "redis publish failed; events dropped");
        }
        in_flight.fetch_sub(batch.len(), Ordering::AcqRel);
        batch.clear();
    }
}

async fn subscribe_loop(
    client: redis::Client,
    channel: String,
    hub: Arc<RoomHub>,
    mut ready: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        deliver(&hub, msg.get_payload_bytes());
                    }
                    tracing::warn!("redis subscription ended; reconnecting");
                }
                Err(e) => tracing::warn!(error = %e, "redis subscribe failed"),
            },
            Err(e) => tracing::warn!(error = %e, "redis pubsub connection failed"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// `room \n frame` from the channel to this node's sessions in that room.
fn deliver(hub: &RoomHub, payload: &[u8]) {
    let Some(split) = payload.iter().position(|b| *b == b'\n') else {
        return;
    };
    let (Ok(room), Ok(frame)) = (
        std::str::from_utf8(&payload[..split]),
        std::str::from_utf8(&payload[split + 1..]),
    ) else {
        return;
    };
    if hub.has_room(room) {
        hub.deliver(room, ByteString::from(frame));
    }
}
