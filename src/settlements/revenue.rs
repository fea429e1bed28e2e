//! `distributeRevenue` (issue 21): the platform's collection of a client's revenue share, per
//! settlement, and its reversal, as ledger movements (`platform_revenue` ↔
//! `platform_collected`). A collection is fixed first under the client's lock (never more than
//! the settlement's share still outstanding, never a reversal of more than was collected), then
//! posted with a key derived from its row, so a retry or a crash in between never moves money
//! twice. Statements show per settlement: share, collected, outstanding.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::audit::Event;
use crate::domain::{new_id, now_ms};
use crate::ledger::accounts::{NewAccount, PLATFORM_COLLECTED, house_id};
use crate::ledger::entries;
use crate::store::{ClientRow, CollectionFix, CollectionRow, Store, StoreError};

pub struct CollectRequest<'a> {
    pub client: &'a ClientRow,
    pub settlement_id: &'a str,
    pub collect: bool,
    pub amount: i64,
    pub memo: Option<String>,
    /// Scoped `<caller>:<key>`.
    pub key: String,
    pub actor_id: &'a str,
    pub ip: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("no such settlement")]
    NoSettlement,
    #[error("the settlement's revenue share is not posted yet")]
    NotPosted,
    #[error("the amount exceeds what is {0} ({1} minor units)")]
    Exceeds(&'static str, i64),
    #[error("this idempotency key was used for another request")]
    KeyConflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records (or replays) a collection; `true` when this request created it.
pub async fn collect(
    store: &Store,
    req: CollectRequest<'_>,
) -> Result<(CollectionRow, bool), CollectError> {
    let client = req.client;
    let settlement = store
        .settlement(&client.id, req.settlement_id)
        .await?
        .ok_or(CollectError::NoSettlement)?;
    if settlement.revenue_share.amount > 0 && settlement.revenue_share.journal_id.is_none() {
        return Err(CollectError::NotPosted);
    }
    let direction = if req.collect { "collect" } else { "reverse" };
    let request_hash = hex::encode(Sha256::digest(
        format!(
            "{direction}\n{}\n{}\n{}",
            req.settlement_id,
            req.amount,
            req.memo.as_deref().unwrap_or("")
        )
        .as_bytes(),
    ));
    let row = CollectionRow {
        id: new_id(),
        client_id: client.id.clone(),
        settlement_id: req.settlement_id.to_owned(),
        direction: direction.to_owned(),
        amount: req.amount,
        memo: req.memo,
        idempotency_key: req.key,
        request_hash,
        journal_id: None,
        created_by: req.actor_id.to_owned(),
        created_at: now_ms(),
    };
    let (mut row, created) = match store
        .fix_collection(&row, settlement.revenue_share.amount)
        .await?
    {
        CollectionFix::Fixed(row, created) => (*row, created),
        CollectionFix::KeyConflict => return Err(CollectError::KeyConflict),
        CollectionFix::NoSettlement => return Err(CollectError::NoSettlement),
        CollectionFix::Exceeds(room) => {
            return Err(CollectError::Exceeds(
                if req.collect {
                    "outstanding"
                } else {
                    "collected"
                },
                room,
            ));
        }
    };
    if row.journal_id.is_none() {
        store
            .ensure_accounts(&[NewAccount {
                id: house_id(&client.id, PLATFORM_COLLECTED),
                client_id: client.id.clone(),
                user_id: None,
                kind: PLATFORM_COLLECTED.to_owned(),
                currency: client.currency.code.clone(),
                allow_negative: true,
            }])
            .await?;
        let entry = entries::revenue_collection(
            &client.id,
            &row.settlement_id,
            &row.id,
            row.direction == "collect",
            row.amount,
        );
        let journal_id = store.post_entry(entry).await?.entry().journal_id.clone();
        store.record_collection_posted(&row.id, &journal_id).await?;
        row.journal_id = Some(journal_id);
    }
    if created {
        Event::new(if req.collect {
            "revenue.collect"
        } else {
            "revenue.reverse"
        })
        .actor(Some(req.actor_id))
        .client(Some(&client.id))
        .target("revenue_collection", &row.id)
        .after(json!({
            "settlement_id": row.settlement_id,
            "amount": row.amount,
            "transaction_id": row.journal_id,
        }))
        .ip(req.ip)
        .record(store)
        .await?;
    }
    Ok((row, created))
}
