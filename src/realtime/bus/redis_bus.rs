//! Redis bus: one script per batch of events assigns each event its room's seq (`INCR`), appends
//! the finished frame to the room's capped history list and publishes the batch as one message on
//! the node-wide channel, atomically, so every node sees each room's frames in seq order and any
//! node can replay them. A publisher
//! task pipelines queued events; a subscriber task delivers what arrives to this node's rooms.
//!
//! Redis loss never blocks a money mutation: `publish` only queues. While Redis is down the
//! publisher retries its batch (later events wait in the bounded queue; past it they are dropped
//! and counted). When the subscriber reconnects it replays, from each room's history, what this
//! node's rooms missed; a gap the history cannot fill is answered with `refetch` to that room's
//! members. A Redis that lost its data (restarted without persistence) is recognized by its
//! missing or changed epoch key: every room's seq restarted, so every local room gets `refetch`
//! with its new latest seq and carries on from there.
//! A batch retried after a reply was lost may publish some events twice, with new seqs: a
//! repeated `balance_update` carries the same balance and transaction id, so it is harmless.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytestring::ByteString;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;

use super::{BusError, Event, HISTORY_MAX, Replay};
use crate::realtime::room_hub::RoomHub;

/// Events waiting for Redis; past this, new events are dropped and counted (money is never
/// held back for notifications, and clients catch up by seq).
const PUBLISH_QUEUE_MAX: usize = 100_000;
/// Events sent in one pipeline.
const PUBLISH_BATCH_MAX: usize = 512;
/// A room's history list expires this long after its last event (its seq key never does).
const HISTORY_TTL_SECS: u64 = 24 * 3600;
/// Rooms replayed per pipeline during a catch-up.
const CATCH_UP_BATCH: usize = 256;
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// Events per script call (each call runs atomically in Redis; a pipeline carries several).
const SCRIPT_EVENTS_MAX: usize = 128;

/// Publishes a batch of events: per event, `INCR` its room's seq, finish its frame, append it to
/// the room's history; then one `PUBLISH` of every record (`room\nseq\nus\nframe`, records
/// joined by `\n`: frames are JSON, which never holds a raw newline). KEYS: channel, then seq and
/// history key per event. ARGV: history length, TTL, then prefix, suffix, room, µs per event.
///
/// The history list is trimmed back to its length once it is 32 frames over, and its TTL
/// renewed every 32 frames, instead of both per event: two Redis calls per event instead of
/// four (Redis runs the script on the one core every node's events pass through).
const PUBLISH_SCRIPT: &str = r"
local n = (#KEYS - 1) / 2
local keep = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  local seq = redis.call('INCR', KEYS[2 * i])
  local frame = ARGV[4 * i - 1] .. seq .. ARGV[4 * i]
  local hist = KEYS[2 * i + 1]
  local len = redis.call('RPUSH', hist, frame)
  if len % 32 == 1 then redis.call('EXPIRE', hist, ARGV[2]) end
  if len > keep + 32 then redis.call('LTRIM', hist, -keep, -1) end
  out[i] = ARGV[4 * i + 1] .. '\n' .. seq .. '\n' .. ARGV[4 * i + 2] .. '\n' .. frame
end
redis.call('PUBLISH', KEYS[1], table.concat(out, '\n'))
return n
";

/// `{latest, "ok", frames after ARGV[1]...}` or `{latest, "refetch"}`. The history list's last
/// element is always the frame of the latest seq (both written by the publish script). At most
/// ARGV[2] (`HISTORY_MAX`) frames are replayed, as the in-process bus does, though the list may
/// hold up to 32 more between trims.
const REPLAY_SCRIPT: &str = r"
local latest = redis.call('GET', KEYS[1]) or '0'
local after = tonumber(ARGV[1])
local missed = tonumber(latest) - after
if missed < 0 then return {latest, 'refetch'} end
if missed == 0 then return {latest, 'ok'} end
if missed > math.min(redis.call('LLEN', KEYS[2]), tonumber(ARGV[2])) then
  return {latest, 'refetch'}
end
local frames = redis.call('LRANGE', KEYS[2], -missed, -1)
table.insert(frames, 1, 'ok')
table.insert(frames, 1, latest)
return frames
";

pub struct RedisBus {
    keys: Keys,
    conn: ConnectionManager,
    replay: redis::Script,
    queue: mpsc::Sender<Event>,
    /// Events queued or being sent; shutdown waits for it to reach zero.
    in_flight: Arc<AtomicUsize>,
    publisher: tokio::task::JoinHandle<()>,
    subscriber: tokio::task::JoinHandle<()>,
}

/// Key and channel names, all under the configured prefix.
#[derive(Clone)]
struct Keys {
    prefix: String,
    channel: String,
}

impl Keys {
    fn seq(&self, room: &str) -> String {
        format!("{}:seq:{room}", self.prefix)
    }
    fn history(&self, room: &str) -> String {
        format!("{}:hist:{room}", self.prefix)
    }
    /// A random value set once per Redis dataset: if it changes, every seq restarted.
    fn epoch(&self) -> String {
        format!("{}:epoch", self.prefix)
    }
}

/// The dataset's epoch, creating it if this Redis has none.
async fn establish_epoch(conn: &mut ConnectionManager, keys: &Keys) -> Result<String, BusError> {
    let fresh = crate::domain::new_id();
    let (epoch,): (String,) = redis::pipe()
        .cmd("SET")
        .arg(keys.epoch())
        .arg(&fresh)
        .arg("NX")
        .ignore()
        .cmd("GET")
        .arg(keys.epoch())
        .query_async(conn)
        .await?;
    Ok(epoch)
}

impl RedisBus {
    pub async fn start(url: &str, prefix: &str, hub: Arc<RoomHub>) -> Result<Arc<Self>, BusError> {
        let client = redis::Client::open(url)?;
        // Bounded waits, so a dead Redis turns into errors (and retries), never a hang.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = client.get_connection_manager_with_config(config).await?;
        let keys = Keys {
            prefix: prefix.to_owned(),
            channel: format!("{prefix}:events"),
        };
        // Subscribe before the first publish so this node misses nothing of its own.
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let subscriber = tokio::spawn(subscribe_loop(
            client,
            conn.clone(),
            keys.clone(),
            hub,
            Some(ready_tx),
        ));
        let _ = tokio::time::timeout(Duration::from_secs(5), ready_rx).await;
        let (queue, rx) = mpsc::channel(PUBLISH_QUEUE_MAX);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let publisher = tokio::spawn(publish_loop(
            conn.clone(),
            keys.clone(),
            rx,
            in_flight.clone(),
        ));
        Ok(Arc::new(Self {
            keys,
            conn,
            replay: redis::Script::new(REPLAY_SCRIPT),
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
            .arg(self.keys.seq(room))
            .query_async(&mut conn)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    pub async fn replay(&self, room: &str, after: u64) -> Result<Replay, BusError> {
        let mut conn = self.conn.clone();
        let reply: Vec<Vec<u8>> = self
            .replay
            .key(self.keys.seq(room))
            .key(self.keys.history(room))
            .arg(after)
            .arg(HISTORY_MAX)
            .invoke_async(&mut conn)
            .await?;
        Ok(parse_replay(reply))
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

fn parse_replay(reply: Vec<Vec<u8>>) -> Replay {
    let mut parts = reply.into_iter();
    let latest = parts
        .next()
        .and_then(|l| std::str::from_utf8(&l).ok()?.parse().ok())
        .unwrap_or(0);
    match parts.next().as_deref() {
        Some(b"ok") => Replay::Frames {
            latest,
            frames: parts.filter_map(|f| ByteString::try_from(f).ok()).collect(),
        },
        _ => Replay::Refetch { latest },
    }
}

async fn publish_loop(
    mut conn: ConnectionManager,
    keys: Keys,
    mut rx: mpsc::Receiver<Event>,
    in_flight: Arc<AtomicUsize>,
) {
    let script = redis::Script::new(PUBLISH_SCRIPT);
    let mut batch = Vec::with_capacity(PUBLISH_BATCH_MAX);
    // Loaded with the first pipeline and again after any failure (a restarted Redis, or a
    // `SCRIPT FLUSH`, forgets it).
    let mut loaded = false;
    while rx.recv_many(&mut batch, PUBLISH_BATCH_MAX).await > 0 {
        // Keep the batch until Redis takes it: money already moved, its events must follow.
        let mut backoff = RETRY_MIN;
        loop {
            let mut pipe = redis::pipe();
            if !loaded {
                pipe.load_script(&script).ignore();
            }
            for events in batch.chunks(SCRIPT_EVENTS_MAX) {
                let mut call = script.key(&keys.channel);
                call.arg(HISTORY_MAX).arg(HISTORY_TTL_SECS);
                for event in events {
                    let (prefix_part, suffix_part) = event.frame_parts();
                    call.key(keys.seq(&event.room))
                        .key(keys.history(&event.room))
                        .arg(prefix_part)
                        .arg(suffix_part)
                        .arg(&event.room)
                        .arg(event.published_us);
                }
                pipe.invoke_script(&call).ignore();
            }
            match pipe.query_async::<()>(&mut conn).await {
                Ok(()) => {
                    loaded = true;
                    break;
                }
                Err(e) => {
                    loaded = false;
                    metrics::counter!(crate::metrics::BUS_RETRIES).increment(1);
                    tracing::warn!(error = %e, events = batch.len(), "redis publish failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
            }
        }
        in_flight.fetch_sub(batch.len(), Ordering::AcqRel);
        batch.clear();
    }
}

async fn subscribe_loop(
    client: redis::Client,
    conn: ConnectionManager,
    keys: Keys,
    hub: Arc<RoomHub>,
    mut ready: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let mut backoff = RETRY_MIN;
    let mut epoch: Option<String> = None;
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&keys.channel).await {
                Ok(()) => {
                    backoff = RETRY_MIN;
                    // Fill what this node's rooms missed while unsubscribed. Messages arriving
                    // meanwhile wait in the subscription and are de-duplicated by seq.
                    match resync(&hub, conn.clone(), &keys, &mut epoch).await {
                        Ok(()) => {}
                        Err(e) => tracing::warn!(error = %e, "redis catch-up failed"),
                    }
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
            Err(e) => tracing::debug!(error = %e, "redis pubsub connection failed"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RETRY_MAX);
    }
}

/// After (re)subscribing: the first time, learns the epoch; later, refetches every room if the
/// epoch changed (Redis lost its data) or else replays what each room missed.
async fn resync(
    hub: &RoomHub,
    mut conn: ConnectionManager,
    keys: &Keys,
    known: &mut Option<String>,
) -> Result<(), BusError> {
    let current: Option<String> = redis::cmd("GET")
        .arg(keys.epoch())
        .query_async(&mut conn)
        .await?;
    match (known.as_deref(), current.as_deref()) {
        (None, _) => {}
        (Some(old), Some(now)) if old == now => catch_up(hub, conn.clone(), keys).await?,
        (Some(_), _) => {
            tracing::warn!("redis lost its data: every room's seq restarted; refetch");
            for chunk in hub.room_seqs().chunks(CATCH_UP_BATCH) {
                let mut pipe = redis::pipe();
                for (room, _) in chunk {
                    pipe.cmd("GET").arg(keys.seq(room));
                }
                let seqs: Vec<Option<u64>> = pipe.query_async(&mut conn).await?;
                for ((room, _), seq) in chunk.iter().zip(seqs) {
                    hub.refetch(room, seq.unwrap_or(0));
                }
            }
        }
    }
    *known = Some(establish_epoch(&mut conn, keys).await?);
    Ok(())
}

/// Replays, for every room on this node, the events after the last seq it delivered.
async fn catch_up(hub: &RoomHub, mut conn: ConnectionManager, keys: &Keys) -> Result<(), BusError> {
    let script = redis::Script::new(REPLAY_SCRIPT);
    // A room that has delivered nothing yet has no known position: its members were told
    // the seq at join and resume from it themselves if they see a gap.
    let rooms: Vec<(String, u64)> = hub
        .room_seqs()
        .into_iter()
        .filter(|(_, seq)| *seq > 0)
        .collect();
    for chunk in rooms.chunks(CATCH_UP_BATCH) {
        let mut pipe = redis::pipe();
        pipe.load_script(&script).ignore();
        for (room, after) in chunk {
            pipe.invoke_script(
                script
                    .key(keys.seq(room))
                    .key(keys.history(room))
                    .arg(*after)
                    .arg(HISTORY_MAX),
            );
        }
        let replies: Vec<Vec<Vec<u8>>> = pipe.query_async(&mut conn).await?;
        for ((room, after), reply) in chunk.iter().zip(replies) {
            match parse_replay(reply) {
                Replay::Frames { latest, frames } => {
                    let first = latest - frames.len() as u64 + 1;
                    for (i, frame) in frames.into_iter().enumerate() {
                        hub.deliver(room, first + i as u64, frame, super::now_us());
                    }
                }
                Replay::Refetch { latest } => {
                    tracing::info!(room, after, latest, "room gap beyond history: refetch");
                    hub.refetch(room, latest);
                }
            }
        }
    }
    Ok(())
}

/// Records `room \n seq \n published_us \n frame`, joined by `\n`, from the channel to this
/// node's sessions in each room.
fn deliver(hub: &RoomHub, payload: &[u8]) {
    let mut lines = payload.split(|b| *b == b'\n');
    while let (Some(room), Some(seq), Some(published_us), Some(frame)) =
        (lines.next(), lines.next(), lines.next(), lines.next())
    {
        let Ok(room) = std::str::from_utf8(room) else {
            continue;
        };
        if !hub.has_room(room) {
            continue;
        }
        let number = |b: &[u8]| std::str::from_utf8(b).ok()?.parse::<i64>().ok();
        let (Some(seq), Some(published_us), Ok(frame)) = (
            number(seq),
            number(published_us),
            ByteString::try_from(frame),
        ) else {
            continue;
        };
        hub.deliver(room, seq as u64, frame, published_us);
    }
}
