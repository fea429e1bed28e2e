//! Posts a fixed settlement: each agent's commission through that agent's wallet actor (so it
//! takes its place in the wallet's order and reaches the agent as `balance_update`), then the
//! platform's revenue share, recording each entry's id; the settlement is `posted` last. Every
//! entry's idempotency key derives from the settlement, so posting again (a retried request, a
//! restart) commits only what is missing.

use crate::actors::wallet::{BalanceWatch, Mutate};
use crate::actors::wallet_registry::{WalletError, WalletRegistry};
use crate::domain::now_ms;
use crate::ledger::accounts::wallet_id;
use crate::ledger::entries;
use crate::store::{CommissionRow, Settlement, Store};

pub async fn post(
    store: &Store,
    wallets: &WalletRegistry,
    s: &Settlement,
) -> Result<(), WalletError> {
    let h = &s.header;
    for line in &s.commissions {
        // `calculated` and `held` lines wait for an operator; `paid` ones are done.
        if line.status != "approved" {
            continue;
        }
        pay_line(store, wallets, line).await?;
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

/// Pays one `approved` commission line: the entry through the agent's wallet actor (its key
/// derives from the settlement and the agent, so paying again replays it), then the line
/// `paid` with the entry's id. A zero line is `paid` without an entry. The journal id, if any.
pub async fn pay_line(
    store: &Store,
    wallets: &WalletRegistry,
    line: &CommissionRow,
) -> Result<Option<String>, WalletError> {
    let journal_id = if line.amount == 0 {
        None
    } else if let Some(id) = &line.journal_id {
        Some(id.clone())
    } else {
        let client = store
            .client(&line.client_id)
            .await?
            .ok_or(WalletError::Unavailable)?;
        let currency = client.currency;
        let entry = entries::commission(
            &line.client_id,
            &line.settlement_id,
            &line.agent_id,
            line.amount,
        );
        let outcome = wallets
            .mutate(
                &line.agent_id,
                Mutate::new(
                    entry,
                    currency,
                    vec![BalanceWatch {
                        user_id: line.agent_id.clone(),
                        account_id: wallet_id(&line.agent_id),
                    }],
                ),
            )
            .await?;
        Some(outcome.entry().journal_id.clone())
    };
    store
        .transition_commission(
            &line.settlement_id,
            &line.agent_id,
            &["approved", "paid"],
            "paid",
            journal_id.as_deref(),
        )
        .await?;
    Ok(journal_id)
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
            let Some(s) = store.settlement(&client_id, &id).await? else {
                return Ok(false);
            };
            post(&store, &wallets, &s).await.map(|()| true)
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
