//! Reality checks (issue 19): every second, players whose play session has lasted another
//! `reality_check_minutes` get a `reality_check` frame (time played, net result of the
//! session's transfers: out minus in) on their room, audited and counted. The session limit's
//! frame (`session_limit`) is sent where a transfer-in is refused for it (`Providers::transfer`).

use std::time::Duration;

use serde_json::json;

use crate::audit::Event as AuditEvent;
use crate::domain::{format_minor, rfc3339_ms};
use crate::ledger::JournalKind;
use crate::ledger::accounts::wallet_id;
use crate::protection::{PLAY_GAP_MS, Protection};
use crate::realtime::bus::{Bus, Event, EventKind};
use crate::store::{Store, StoreError};

/// Runs the checks forever (spawned at start).
pub async fn run(store: Store, bus: Bus, protection: Protection) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Err(e) = pass(&store, &bus, &protection).await {
            tracing::warn!(error = %e, "reality checks failed; retrying");
        }
    }
}

async fn pass(store: &Store, bus: &Bus, protection: &Protection) -> Result<(), StoreError> {
    let now = protection.now_ms();
    for row in store.reality_checks_due(now, PLAY_GAP_MS).await? {
        let Some(started) = row.play_started_at else {
            continue;
        };
        let since = protection.clock().to_wall(started);
        let flows = store.wallet_flows(&wallet_id(&row.user_id), since).await?;
        // Out of the wallet to providers is negative, back is positive: the sum is the
        // session's result for the player.
        let net: i64 = flows
            .iter()
            .filter(|f| {
                matches!(
                    f.kind,
                    JournalKind::ProviderHold
                        | JournalKind::ProviderRelease
                        | JournalKind::ProviderCredit
                )
            })
            .map(|f| f.amount)
            .sum();
        let client = store.client(&row.client_id).await?;
        let exponent = client.map_or(2, |c| c.currency.exponent);
        let minutes = (now - started) / 60_000;
        let net_text = format_minor(net, exponent);
        store.mark_reality_checked(&row.user_id, now).await?;
        bus.publish(Event::new(
            format!("user:{}", row.user_id),
            EventKind::RealityCheck,
            json!({
                "user_id": row.user_id,
                "minutes_played": minutes,
                "session_started_at": rfc3339_ms(started),
                "net_result": net_text,
            }),
        ));
        metrics::counter!(crate::metrics::REALITY_CHECKS).increment(1);
        AuditEvent::new("protection.reality_check")
            .client(Some(&row.client_id))
            .target("user", &row.user_id)
            .after(json!({ "minutes_played": minutes, "net_result": net_text }))
            .record(store)
            .await?;
    }
    Ok(())
}
