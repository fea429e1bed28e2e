//! Money movements as journal entries. Each builder returns a balanced [`NewEntry`]; the
//! request hash binds an idempotency key to exactly one request.

use sha2::{Digest, Sha256};

use super::accounts::{CASH, house_id, wallet_id};
use crate::domain::{Amount, new_id, now_ms};
use crate::store::{NewEntry, NewPosting};

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
}

impl Movement {
    pub fn kind(self) -> &'static str {
        match self {
            Movement::Deposit => "deposit",
            Movement::Withdrawal => "withdrawal",
            Movement::Credit => "credit",
            Movement::Debit => "debit",
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

/// The entry for `movement`, and the user whose wallet it debits (whose actor must run it).
pub fn build(movement: Movement, r: &Request<'_>) -> NewEntry {
    let a = r.amount.minor();
    let user = wallet_id(r.user_id);
    let counter = match movement {
        Movement::Deposit | Movement::Withdrawal => house_id(r.client_id, CASH),
        Movement::Credit | Movement::Debit => wallet_id(r.actor_id),
    };
    let (user_leg, counter_leg) = match movement {
        Movement::Deposit | Movement::Credit => (a, -a),
        Movement::Withdrawal | Movement::Debit => (-a, a),
    };
    let request_hash = {
        let text = format!(
            "{}\n{}\n{}\n{}",
            movement.kind(),
            r.user_id,
            a,
            r.memo.unwrap_or("")
        );
        hex::encode(Sha256::digest(text.as_bytes()))
    };
    let entry = NewEntry {
        id: new_id(),
        client_id: r.client_id.to_owned(),
        idempotency_key: format!("{}:{}", r.actor_id, r.idempotency_key),
        request_hash,
        kind: movement.kind().to_owned(),
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
    }
}
