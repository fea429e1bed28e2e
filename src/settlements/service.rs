//! Settles a client's period (`POST /api/v1/clients/{id}/settlements`): checks the period,
//! computes the figures (`ledger::settlement`), fixes them in the store under the client row's
//! lock (idempotency and overlap are decided there), audits a new settlement, then has
//! [`poster`] post whatever is still missing. The HTTP handler parses, authorizes
//! and calls [`settle`] once.

use std::collections::BTreeMap;

use serde_json::json;

use super::commission::AgentTree;
use super::poster;
use crate::actors::wallet_registry::WalletError;
use crate::actors::wallet_registry::WalletRegistry;
use crate::audit::Event;
use crate::domain::{Currency, new_id, now_ms, rfc3339_ms};
use crate::ledger::accounts::{game_results, house_id};
use crate::ledger::settlement::{self, Basis, Figures, PlayerResult, Rate};
use crate::store::{
    ClientRow, CommissionRow, FixOutcome, RevenueShareRow, Settlement, SettlementRow, Store,
    StoreError,
};

/// Longest period one settlement may cover.
const MAX_PERIOD_MS: i64 = 366 * 24 * 3600 * 1000;

/// One settlement request, parsed and authorized.
pub struct SettleRequest<'a> {
    /// Who settles: the caller's user id, or `scheduler`.
    pub created_by: &'a str,
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
    /// The client settings' `commission_basis` at settlement time.
    pub commission_basis: &'a str,
    /// `settlement_grace_secs`: how long ago the period must have ended.
    pub grace_secs: i64,
    /// `commission_negative_carryover`: agents' negative results carry into later periods.
    pub carry_over: bool,
    /// `manual` or `scheduled`.
    pub origin: &'a str,
    /// Pay the commission at once (lines `approved`, then `paid`: the manual settlement, as
    /// before issue 21), or leave the lines `calculated` for operators to approve and pay.
    pub pay_now: bool,
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
        created_by,
        client,
        period_start: start,
        period_end: end,
        idempotency_key: key,
        ip,
        commission_rate,
        revenue_share_rate,
        commission_basis,
        grace_secs,
        carry_over,
        origin,
        pay_now,
    } = req;
    check_period(start, end, grace_secs)?;
    let currency = client.currency.clone();
    let commission_rate = Rate::parse(commission_rate).ok_or(SettleError::Internal)?;
    let share_rate = Rate::parse(revenue_share_rate).ok_or(SettleError::Internal)?;
    let basis = Basis::parse(commission_basis).ok_or(SettleError::Internal)?;

    let mut attempts = 0;
    let (figures, settlement_id, fixed) = loop {
        let figures = period_figures(
            store,
            &client.id,
            Rates {
                commission: commission_rate,
                share: share_rate,
                basis,
            },
            start,
            end,
            carry_over,
        )
        .await?;
        let settlement_id = new_id();
        let fixed = fixed_settlement(
            &settlement_id,
            client,
            &currency,
            &figures,
            Rates {
                commission: commission_rate,
                share: share_rate,
                basis,
            },
            Header {
                key: &key,
                start,
                end,
                created_by,
                origin,
                pay_now,
            },
        );
        match store.fix_settlement(&fixed, carry_over).await? {
            // Another settlement of this client moved an agent's carry meanwhile: again.
            FixOutcome::CarryMoved if attempts < 5 => attempts += 1,
            FixOutcome::CarryMoved => return Err(SettleError::Internal),
            outcome => break (figures, settlement_id, outcome),
        }
    };
    let (kind, settlement_id) = match fixed {
        FixOutcome::Created => {
            Event::new("settlement.create")
                .actor(Some(created_by))
                .client(Some(&client.id))
                .target("settlement", &settlement_id)
                .after(json!({
                    "period_start": rfc3339_ms(start),
                    "period_end": rfc3339_ms(end),
                    "origin": origin,
                    "commission_basis": basis.as_str(),
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
        FixOutcome::CarryMoved => return Err(SettleError::Internal),
    };
    let stored = store
        .settlement(&client.id, &settlement_id)
        .await?
        .ok_or(SettleError::Internal)?;
    if stored.header.state == "pending" {
        poster::post(store, wallets, &stored).await?;
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

/// The fixed header's request fields.
struct Header<'a> {
    key: &'a str,
    start: i64,
    end: i64,
    created_by: &'a str,
    origin: &'a str,
    pay_now: bool,
}

fn fixed_settlement(
    settlement_id: &str,
    client: &ClientRow,
    currency: &Currency,
    figures: &Figures,
    rates: Rates,
    h: Header<'_>,
) -> Settlement {
    Settlement {
        header: SettlementRow {
            id: settlement_id.to_owned(),
            client_id: client.id.clone(),
            idempotency_key: h.key.to_owned(),
            period_start: h.start,
            period_end: h.end,
            currency: currency.code.clone(),
            ngr: figures.ngr,
            state: "pending".into(),
            created_by: h.created_by.to_owned(),
            created_at: now_ms(),
            posted_at: None,
            origin: h.origin.to_owned(),
        },
        commissions: figures
            .commissions
            .iter()
            .map(|c| CommissionRow {
                settlement_id: settlement_id.to_owned(),
                agent_id: c.agent_id.clone(),
                client_id: client.id.clone(),
                players: c.players,
                ngr: c.basis,
                rate: c.rate.to_text(),
                amount: c.amount,
                journal_id: None,
                status: if h.pay_now { "approved" } else { "calculated" }.into(),
                basis: rates.basis.as_str().into(),
                earned: c.earned,
                carried_in: c.carried_in,
                carry_out: c.carry_out,
            })
            .collect(),
        revenue_share: RevenueShareRow {
            settlement_id: settlement_id.to_owned(),
            client_id: client.id.clone(),
            base: figures.revenue_base,
            rate: rates.share.to_text(),
            amount: figures.revenue_share,
            journal_id: None,
        },
    }
}

/// The rates and basis a computation applies (client settings).
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// The client's `commission_rate`: its maximum and every agent's default.
    pub commission: Rate,
    pub share: Rate,
    pub basis: Basis,
}

/// The figures of `[start, end)` for a client: every player's NGR from the journal and, with
/// basis `turnover`, their turnover from `game_rounds` (rounds first applied in the period),
/// the agents above each with their effective rates, and (with `carry_over`) each agent's
/// stored carry. Also what `GET /users/{id}/commission/current` shows of the open period.
pub async fn period_figures(
    store: &Store,
    client_id: &str,
    rates: Rates,
    start: i64,
    end: i64,
    carry_over: bool,
) -> Result<Figures, SettleError> {
    let result_accounts: Vec<String> = crate::providers::PROVIDER_NAMES
        .iter()
        .map(|p| house_id(client_id, &game_results(p)))
        .collect();
    let by_subject = store
        .ngr_by_subject(
            client_id,
            &result_accounts,
            &id_floor(start),
            &id_floor(end),
        )
        .await?;
    // player -> (NGR, turnover)
    let mut results: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut unattributed: i64 = 0;
    for row in by_subject {
        match row.subject_account_id.strip_prefix("w:") {
            Some(user_id) => results.entry(user_id.to_owned()).or_default().0 = row.ngr,
            // Rounds recorded before entries named their player.
            None => {
                unattributed = unattributed
                    .checked_add(row.ngr)
                    .ok_or(SettleError::Internal)?;
            }
        }
    }
    if rates.basis == Basis::Turnover {
        // A player who only staked what came back (a draw: no entry) has turnover too.
        for t in store
            .turnover_by_player(client_id, start, end, None)
            .await?
        {
            results.entry(t.user_id).or_default().1 = t.turnover;
        }
    }
    let mut tree = AgentTree::load(store, client_id, rates.commission).await?;
    let mut players = Vec::with_capacity(results.len());
    for (user_id, (ngr, turnover)) in results {
        players.push(PlayerResult {
            agents: tree.chain(store, &user_id).await?,
            user_id,
            ngr,
            basis: match rates.basis {
                Basis::Ngr => ngr,
                Basis::Turnover => turnover,
            },
        });
    }
    let carries: std::collections::HashMap<String, i64> = if carry_over {
        store
            .commission_carries(client_id)
            .await?
            .into_iter()
            .collect()
    } else {
        Default::default()
    };
    let carry = |agent: &str| carries.get(agent).copied().unwrap_or(0);
    settlement::compute(
        &players,
        unattributed,
        rates.share,
        carry_over.then_some(&carry as &dyn Fn(&str) -> i64),
    )
    .map_err(|e| SettleError::Invalid(e.to_string()))
}

/// The smallest journal id of millisecond `ms` (for range queries of other modules).
pub fn journal_id_floor(ms: i64) -> String {
    id_floor(ms)
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
