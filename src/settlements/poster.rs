//! Posts a fixed settlement: each agent's commission through that agent's wallet actor (so it
//! takes its place in the wallet's order and reaches the agent as `balance_update`), then the
//! platform's revenue share, recording each entry's id; the settlement is `posted` last. Every
//! entry's idempotency key derives from the settlement, so posting again (a retried request, a
//! restart) commits only what is missing.

use crate::actors::wallet::{BalanceWatch, Mutate};
use crate::actors::wallet_registry::{WalletError, WalletRegistry};
use crate::domain::{Currency, now_ms};
use crate::ledger::accounts::wallet_id;
use crate::ledger::entries;
use crate::store::{Settlement, Store};

pub async fn post(
    store: &Store,
    wallets: &WalletRegistry,
    s: &Settlement,
    currency: &Currency,
) -> Result<(), WalletError> {
    let h = &s.header;
    for line in &s.commissions {
        if line.amount == 0 || line.journal_id.is_some() {
            continue;
        }
        let entry = entries::commission(&h.client_id, &h.id, &line.agent_id, line.amount);
        let outcome = wallets
            .mutate(
                &line.agent_id,
                Mutate::new(
                    entry,
                    currency.clone(),
                    vec![BalanceWatch {
                        user_id: line.agent_id.clone(),
                        account_id: wallet_id(&line.agent_id),
                    }],
                ),
            )
            .await?;
        store
            .record_commission_posted(&h.id, &line.agent_id, &outcome.entry().journal_id)
            .await?;
    }
    let share = &s.revenue_share;
    let journal_id = match (share.amount, &share.journal_id) {
        (0, _) => None,
        (_, Some(id)) => Some(id.clone()),
        (amount, None) => {
            let entry = entries::revenue_share(&h.client_id, &h.id, amount);
            Some(store.post_entry(entry).await?.entry().journal_id.clone())
        }
    };
    store
        .record_revenue_share_posted(&h.id, journal_id.as_deref(), now_ms())
        .await?;
    Ok(())
}

/// Start-up: finishes settlements a previous run fixed but did not finish posting.
pub async fn resume_pending(store: Store, wallets: WalletRegistry) {
    let pending = match store.pending_settlements().await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot list pending settlements");
            return;
        }
    };
    for (client_id, id) in pending {
        let result = async {
            let (Some(s), Some(client)) = (
                store.settlement(&client_id, &id).await?,
                store.client(&client_id).await?,
            ) else {
                return Ok(false);
            };
            post(&store, &wallets, &s, &client.currency)
                .await
                .map(|()| true)
        }
        .await;
        match result {
            Ok(true) => tracing::info!(settlement = %id, "pending settlement posted"),
            Ok(false) => tracing::error!(settlement = %id, "pending settlement cannot be posted"),
            Err(e) => {
                tracing::error!(settlement = %id, error = %e, "pending settlement not posted")
            }
        }
    }
}
