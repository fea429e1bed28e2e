//! Settles a client's period (`POST /api/v1/clients/{id}/settlements`): checks the period,
//! computes the figures (`ledger::settlement`), fixes them in the store under the client row's
//! lock (idempotency and overlap are decided there), audits a new settlement, then has
//! [`poster`] post whatever is still missing. The HTTP handler parses, authorizes
//! and calls [`settle`] once.

use serde_json::json;

use super::poster;
use crate::actors::wallet_registry::WalletError;
use crate::actors::wallet_registry::WalletRegistry;
use crate::audit::Event;
use crate::auth::Caller;
use crate::domain::{Currency, Role, UserStatus, new_id, now_ms, rfc3339_ms};
use crate::ledger::accounts::{game_results, house_id};
use crate::ledger::settlement::{self, PlayerResult, Rate};
use crate::store::{
    ClientRow, CommissionRow, FixOutcome, RevenueShareRow, Settlement, SettlementRow, Store,
    StoreError,
};

/// Longest period one settlement may cover.
const MAX_PERIOD_MS: i64 = 366 * 24 * 3600 * 1000;

/// One settlement request, parsed and authorized.
pub struct SettleRequest<'a> {
    pub caller: &'a Caller,
    /// The client, as the caller may settle it.
    pub client: &'a ClientRow,
    /// Milliseconds since the epoch; the period is `[start, end)`.
    pub period_start: i64,
    pub period_end: i64,
    pub idempotency_key: String,
    /// The caller's address, for the audit row.
    pub ip: Option<String>,
    /// The client settings' rates at settlement time (decimal strings, as stored).
    pub commission_rate: &'a str,
    pub revenue_share_rate: &'a str,
    /// `settlement_grace_secs`: how long ago the period must have ended.
    pub grace_secs: i64,
}

/// How the request relates to the settlement it answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettledAs {
    /// Fixed by this request.
    Created,
    /// The same key and period again: the first request's settlement, answered as it was.
    Replayed,
    /// The same period, settled before under another key.
    Existing,
}

/// The settlement as posted, and its client's currency.
pub struct Settled {
    pub kind: SettledAs,
    pub settlement: Settlement,
    pub currency: Currency,
}

#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    /// The period cannot be settled (a 422 with this message).
    #[error("{0}")]
    Invalid(String),
    /// Another settlement of the client covers part of the period (its id).
    #[error("the period overlaps settlement {0}")]
    Overlaps(String),
    /// A stored value (currency, rates, figures) that should never be unreadable.
    #[error("inconsistent stored data")]
    Internal,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

/// The smallest UUIDv7 text of millisecond `ms`: journal ids at or after it are from `ms` on.
fn id_floor(ms: i64) -> String {
    let ms = ms.max(0) as u64;
    format!(
        "{:08x}-{:04x}-0000-0000-000000000000",
        ms >> 16,
        ms & 0xffff
    )
}

/// The nearest agent above a player, if any (players under a client admin earn nobody
/// commission, nor do players whose nearest agent is closed: a closed account takes no money,
/// so paying it would leave the settlement unpostable).
async fn nearest_agent(store: &Store, user_id: &str) -> Result<Option<String>, StoreError> {
    let mut next = store.user(user_id).await?.and_then(|u| u.parent_id);
    while let Some(id) = next {
        let Some(user) = store.user(&id).await? else {
            return Ok(None);
        };
        match user.role {
            Role::Agent if user.status == UserStatus::Closed => return Ok(None),
            Role::Agent => return Ok(Some(user.id)),
            Role::Player => next = user.parent_id,
            Role::SuperAdmin | Role::ClientAdmin => return Ok(None),
        }
    }
    Ok(None)
}

/// Checks the period: after its start, at most [`MAX_PERIOD_MS`], and ended at least
/// `settlement_grace_secs` ago, so late game results are in it.
fn check_period(start: i64, end: i64, grace_secs: i64) -> Result<(), SettleError> {
    if end <= start {
        return Err(SettleError::Invalid(
            "period_end must be after period_start".into(),
        ));
    }
    if end - start > MAX_PERIOD_MS {
        return Err(SettleError::Invalid(
            "a settlement period is at most 366 days".into(),
        ));
    }
    let grace_ms = grace_secs.max(0) * 1000;
    if end > now_ms() - grace_ms {
        return Err(SettleError::Invalid(format!(
            "period_end must be at least {} seconds in the past, so late game results are in it",
            grace_ms / 1000
        )));
    }
    Ok(())
}

/// Settles the period: the settlement this request fixed, or the one it repeats, posted.
pub async fn settle(
    store: &Store,
    wallets: &WalletRegistry,
    req: SettleRequest<'_>,
) -> Result<Settled, SettleError> {
    let SettleRequest {
        caller,
        client,
        period_start: start,
        period_end: end,
        idempotency_key: key,
        ip,
        commission_rate,
        revenue_share_rate,
        grace_secs,
    } = req;
    check_period(start, end, grace_secs)?;
    let currency = client.currency.clone();
    let commission_rate = Rate::parse(commission_rate).ok_or(SettleError::Internal)?;
    let share_rate = Rate::parse(revenue_share_rate).ok_or(SettleError::Internal)?;

    let result_accounts: Vec<String> = crate::providers::PROVIDER_NAMES
        .iter()
        .map(|p| house_id(&client.id, &game_results(p)))
        .collect();
    let by_subject = store
        .ngr_by_subject(
            &client.id,
            &result_accounts,
            &id_floor(start),
            &id_floor(end),
        )
        .await?;
    let mut players = Vec::new();
    let mut unattributed: i64 = 0;
    for row in by_subject {
        match row.subject_account_id.strip_prefix("w:") {
            Some(user_id) => players.push(PlayerResult {
                user_id: user_id.to_owned(),
                agent_id: nearest_agent(store, user_id).await?,
                ngr: row.ngr,
            }),
            // Rounds recorded before entries named their player.
            None => {
                unattributed = unattributed
                    .checked_add(row.ngr)
                    .ok_or(SettleError::Internal)?;
            }
        }
    }
    let figures = settlement::compute(&players, unattributed, commission_rate, share_rate)
        .map_err(|e| SettleError::Invalid(e.to_string()))?;

    let settlement_id = new_id();
    let fixed = Settlement {
        header: SettlementRow {
            id: settlement_id.clone(),
            client_id: client.id.clone(),
            idempotency_key: key,
            period_start: start,
            period_end: end,
            currency: currency.code.clone(),
            ngr: figures.ngr,
            state: "pending".into(),
            created_by: caller.user_id.clone(),
            created_at: now_ms(),
            posted_at: None,
        },
        commissions: figures
            .commissions
            .iter()
            .map(|c| CommissionRow {
                settlement_id: settlement_id.clone(),
                agent_id: c.agent_id.clone(),
                client_id: client.id.clone(),
                players: c.players,
                ngr: c.ngr,
                rate: commission_rate.to_text(),
                amount: c.amount,
                journal_id: None,
            })
            .collect(),
        revenue_share: RevenueShareRow {
            settlement_id: settlement_id.clone(),
            client_id: client.id.clone(),
            base: figures.revenue_base,
            rate: share_rate.to_text(),
            amount: figures.revenue_share,
            journal_id: None,
        },
    };
    let (kind, settlement_id) = match store.fix_settlement(&fixed).await? {
        FixOutcome::Created => {
            Event::new("settlement.create")
                .by(caller)
                .client(Some(&client.id))
                .target("settlement", &settlement_id)
                .after(json!({
                    "period_start": rfc3339_ms(start),
                    "period_end": rfc3339_ms(end),
                    "ngr": currency.format(figures.ngr),
                    "commission_total": currency.format(figures.commission_total),
                    "revenue_share": currency.format(figures.revenue_share),
                }))
                .ip(ip)
                .record(store)
                .await?;
            (SettledAs::Created, settlement_id)
        }
        FixOutcome::Replayed(first) => (SettledAs::Replayed, first),
        FixOutcome::Existing(existing) => (SettledAs::Existing, existing),
        FixOutcome::Overlaps(other) => return Err(SettleError::Overlaps(other)),
    };
    let stored = store
        .settlement(&client.id, &settlement_id)
        .await?
        .ok_or(SettleError::Internal)?;
    if stored.header.state == "pending" {
        poster::post(store, wallets, &stored, &currency).await?;
    }
    let settlement = store
        .settlement(&client.id, &settlement_id)
        .await?
        .ok_or(SettleError::Internal)?;
    Ok(Settled {
        kind,
        settlement,
        currency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_floor_is_the_first_uuid_v7_of_the_millisecond() {
        assert_eq!(id_floor(0), "00000000-0000-0000-0000-000000000000");
        assert_eq!(
            id_floor(0x1_2345_6789),
            "00012345-6789-0000-0000-000000000000"
        );
        assert_eq!(id_floor(-5), id_floor(0));
    }

    #[test]
    fn a_period_must_be_ordered_bounded_and_past_the_grace() {
        let now = now_ms();
        let day = 24 * 3600 * 1000;
        let invalid =
            |start, end| matches!(check_period(start, end, 900), Err(SettleError::Invalid(_)));
        assert!(invalid(now - day, now - 2 * day));
        assert!(invalid(now - 2 * day, now - 2 * day));
        assert!(invalid(now - 400 * day, now - day));
        assert!(invalid(now - day, now - 60_000));
        assert!(check_period(now - 2 * day, now - day, 900).is_ok());
    }
}
