//! Concurrent websocket users (issue 17's client metrics): once per interval this node writes
//! how many users of each client hold a live websocket on it (`report_ws_samples`, one row per
//! client, minute and node). A user with sockets on two nodes counts on each.

use std::sync::Arc;
use std::time::Duration;

use crate::realtime::room_hub::RoomHub;
use crate::store::Store;

pub async fn run(store: Store, rooms: Arc<RoomHub>, every: Duration) {
    let node = uuid::Uuid::new_v4().to_string();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = crate::domain::now_ms();
        let minute = now - now.rem_euclid(60_000);
        let counts = rooms.users_per_client();
        if counts.is_empty() {
            continue;
        }
        if let Err(e) = store.record_ws_users(&node, minute, &counts).await {
            tracing::warn!(error = %e, "websocket user sample not written");
        }
    }
}
