//! Money movements as journal entries. Each builder returns a balanced [`NewEntry`]; the
//! request hash binds an idempotency key to exactly one request.

use sha2::{Digest, Sha256};

use super::accounts::{
    ADJUSTMENTS, CASH, COMMISSION_PAYABLE, PLATFORM_COLLECTED, PLATFORM_REVENUE, house_id,
    wallet_id,
};
use super::journal::{JournalKind, NewEntry, NewPosting};
use crate::domain::{Amount, new_id, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Movement {
    /// External cash into a user's wallet (admins).
    Deposit,
    /// A user's wallet out to external cash (admins).
    Withdrawal,
    /// An agent's own balance into a downline wallet.
    Credit,
    /// A downline wallet back into the agent's own balance.
    Debit,
    /// A correction by an admin, with a reason, against the house's adjustments account.
    AdjustUp,
    AdjustDown,
}

impl Movement {
    pub fn kind(self) -> JournalKind {
        match self {
            Movement::Deposit => JournalKind::Deposit,
            Movement::Withdrawal => JournalKind::Withdrawal,
            Movement::Credit => JournalKind::Credit,
            Movement::Debit => JournalKind::Debit,
            Movement::AdjustUp | Movement::AdjustDown => JournalKind::Adjustment,
        }
    }
}

/// Who asks, for whom, and under which key.
pub struct Request<'a> {
    pub client_id: &'a str,
    pub actor_id: &'a str,
    pub idempotency_key: &'a str,
    /// The user whose wallet the request names (`/users/{id}/...`).
    pub user_id: &'a str,
    pub amount: Amount,
    pub memo: Option<&'a str>,
}

/// The balanced entry for `movement` on `r.user_id`'s wallet (that user's actor runs it).
pub fn build(movement: Movement, r: &Request<'_>) -> NewEntry {
    let a = r.amount.minor();
    let user = wallet_id(r.user_id);
    let counter = match movement {
        Movement::Deposit | Movement::Withdrawal => house_id(r.client_id, CASH),
        Movement::Credit | Movement::Debit => wallet_id(r.actor_id),
        Movement::AdjustUp | Movement::AdjustDown => house_id(r.client_id, ADJUSTMENTS),
    };
    let (user_leg, counter_leg) = match movement {
        Movement::Deposit | Movement::Credit | Movement::AdjustUp => (a, -a),
        Movement::Withdrawal | Movement::Debit | Movement::AdjustDown => (-a, a),
    };
    let request_hash = {
        let text = format!(
            "{}\n{}\n{}\n{}",
            movement.kind(),
            r.user_id,
            user_leg,
            r.memo.unwrap_or("")
        );
        hex::encode(Sha256::digest(text.as_bytes()))
    };
    let entry = NewEntry {
        id: new_id(),
        client_id: r.client_id.to_owned(),
        idempotency_key: format!("{}:{}", r.actor_id, r.idempotency_key),
        request_hash,
        kind: movement.kind(),
        actor_id: Some(r.actor_id.to_owned()),
        subject_account_id: user.clone(),
        memo: r.memo.map(str::to_owned),
        created_at: now_ms(),
        postings: vec![
            NewPosting {
                account_id: user,
                amount: user_leg,
            },
            NewPosting {
                account_id: counter,
                amount: counter_leg,
            },
        ],
        audit: None,
    };
    entry.assert_balanced();
    entry
}

/// An agent's commission for a settlement: the house's `commission_payable` into the agent's
/// wallet. The key derives from the settlement, so posting it again is a replay.
pub fn commission(client_id: &str, settlement_id: &str, agent_id: &str, amount: i64) -> NewEntry {
    settlement_entry(
        client_id,
        settlement_id,
        JournalKind::Commission,
        &format!("settlement:{settlement_id}:commission:{agent_id}"),
        wallet_id(agent_id),
        house_id(client_id, COMMISSION_PAYABLE),
        amount,
    )
}

/// The platform's revenue share for a settlement: from the client's external cash (what the
/// client owes the platform) into `platform_revenue`.
pub fn revenue_share(client_id: &str, settlement_id: &str, amount: i64) -> NewEntry {
    settlement_entry(
        client_id,
        settlement_id,
        JournalKind::RevenueShare,
        &format!("settlement:{settlement_id}:revenue_share"),
        house_id(client_id, PLATFORM_REVENUE),
        house_id(client_id, CASH),
        amount,
    )
}

/// The platform's collection of (`collect`) or refund of (`reverse`) a settlement's revenue
/// share: `platform_revenue` → `platform_collected`, or back. The key derives from the
/// collection's row, so posting it again is a replay.
pub fn revenue_collection(
    client_id: &str,
    settlement_id: &str,
    collection_id: &str,
    collect: bool,
    amount: i64,
) -> NewEntry {
    let (to, from) = (
        house_id(client_id, PLATFORM_COLLECTED),
        house_id(client_id, PLATFORM_REVENUE),
    );
    let (to, from) = if collect { (to, from) } else { (from, to) };
    settlement_entry(
        client_id,
        settlement_id,
        JournalKind::RevenueCollection,
        &format!("revenue_collection:{collection_id}"),
        to,
        from,
        amount,
    )
}

fn settlement_entry(
    client_id: &str,
    settlement_id: &str,
    kind: JournalKind,
    key: &str,
    to: String,
    from: String,
    amount: i64,
) -> NewEntry {
    let request_hash = hex::encode(Sha256::digest(format!("{kind}\n{to}\n{amount}").as_bytes()));
    let entry = NewEntry {
        id: new_id(),
        client_id: client_id.to_owned(),
        idempotency_key: key.to_owned(),
        request_hash,
        kind,
        actor_id: None,
        subject_account_id: to.clone(),
        memo: Some(format!("settlement {settlement_id}")),
        created_at: now_ms(),
        postings: vec![
            NewPosting {
                account_id: to,
                amount,
            },
            NewPosting {
                account_id: from,
                amount: -amount,
            },
        ],
        audit: None,
    };
    entry.assert_balanced();
    entry
}

/// The user whose wallet actor serializes this movement: the one whose balance goes down, so
/// that its overdraft checks happen in order.
pub fn serializing_user<'a>(movement: Movement, r: &Request<'a>) -> &'a str {
    match movement {
        Movement::Credit => r.actor_id,
        _ => r.user_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_balance_and_hash_the_request() {
        let r = |memo| Request {
            client_id: "c",
            actor_id: "admin",
            idempotency_key: "k",
            user_id: "u",
            amount: Amount::from_minor(150).unwrap(),
            memo,
        };
        for m in [
            Movement::Deposit,
            Movement::Withdrawal,
            Movement::Credit,
            Movement::Debit,
            Movement::AdjustUp,
            Movement::AdjustDown,
        ] {
            let e = build(m, &r(None));
            assert_eq!(e.postings.iter().map(|p| p.amount).sum::<i64>(), 0);
            assert_eq!(e.idempotency_key, "admin:k");
        }
        assert_eq!(
            build(Movement::Deposit, &r(None)).request_hash,
            build(Movement::Deposit, &r(None)).request_hash
        );
        assert_ne!(
            build(Movement::Deposit, &r(None)).request_hash,
            build(Movement::Deposit, &r(Some("x"))).request_hash
        );
        assert_ne!(
            build(Movement::Deposit, &r(None)).request_hash,
            build(Movement::Withdrawal, &r(None)).request_hash
        );
        assert_ne!(
            build(Movement::AdjustUp, &r(None)).request_hash,
            build(Movement::AdjustDown, &r(None)).request_hash
        );
    }
}
