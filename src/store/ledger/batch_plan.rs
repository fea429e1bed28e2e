//! Group commit, the decision half: given the locked state of every account a batch touches and
//! the idempotency keys already used, decide each entry in order exactly as if it had been
//! committed alone. Pure code, so the rules are unit- and property-tested without a database;
//! `sql_ledger.rs` reads the state under lock and writes the plan back, guarded by version.

use std::collections::HashMap;

use crate::store::types::{NewEntry, PostedEntry, PostedLine, StoreError};

/// An account as read under the batch's lock.
#[derive(Debug, Clone)]
pub struct LockedAccount {
    pub client_id: String,
    pub balance: i64,
    pub version: i64,
    pub allow_negative: bool,
    /// The owner is closed: every entry touching this account is refused.
    pub closed: bool,
}

/// A journal row that already holds an idempotency key.
#[derive(Debug, Clone)]
pub struct UsedKey {
    pub journal_id: String,
    pub request_hash: String,
}

#[derive(Debug)]
pub enum Verdict {
    /// Write it: these postings, balances after and versions.
    Commit(PostedEntry),
    /// Committed by an earlier transaction: answer with that entry (loaded by the caller).
    ReplayStored { journal_id: String },
    /// Committed earlier in this same batch.
    ReplayBatch(PostedEntry),
    /// Moves nothing and is not a journal entry.
    Refused(StoreError),
}

/// The final state of an account the batch changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChange {
    pub id: String,
    /// The version read under lock: the write is guarded by it.
    pub read_version: i64,
    pub balance: i64,
    pub version: i64,
}

#[derive(Debug)]
pub struct Plan {
    /// One per entry, in the batch's order.
    pub verdicts: Vec<Verdict>,
    /// Accounts to write, in id order.
    pub changes: Vec<AccountChange>,
}

struct Working {
    locked: LockedAccount,
    read_version: i64,
}

pub fn plan(
    entries: &[&NewEntry],
    accounts: HashMap<String, LockedAccount>,
    used: &HashMap<(String, String), UsedKey>,
) -> Plan {
    let mut state: HashMap<String, Working> = accounts
        .into_iter()
        .map(|(id, locked)| {
            let read_version = locked.version;
            (
                id,
                Working {
                    locked,
                    read_version,
                },
            )
        })
        .collect();
    // Keys committed earlier in this batch: a refused entry is not recorded, so a retry of a
    // refused request is judged afresh, as it would be alone.
    let mut batch_keys: HashMap<(&str, &str), (&str, PostedEntry)> = HashMap::new();
    let mut verdicts = Vec::with_capacity(entries.len());

    for &e in entries {
        let key = (e.client_id.as_str(), e.idempotency_key.as_str());
        if let Some(first) = used.get(&(e.client_id.clone(), e.idempotency_key.clone())) {
            verdicts.push(if first.request_hash == e.request_hash {
                Verdict::ReplayStored {
                    journal_id: first.journal_id.clone(),
                }
            } else {
                Verdict::Refused(StoreError::IdempotencyConflict)
            });
            continue;
        }
        if let Some((hash, posted)) = batch_keys.get(&key) {
            verdicts.push(if *hash == e.request_hash {
                Verdict::ReplayBatch(posted.clone())
            } else {
                Verdict::Refused(StoreError::IdempotencyConflict)
            });
            continue;
        }
        match judge(e, &state) {
            Ok(lines) => {
                for line in &lines {
                    let acc = state.get_mut(&line.account_id).expect("judged account");
                    acc.locked.balance = line.balance_after;
                    acc.locked.version = line.version;
                }
                let posted = PostedEntry {
                    journal_id: e.id.clone(),
                    created_at: e.created_at,
                    lines,
                };
                batch_keys.insert(key, (e.request_hash.as_str(), posted.clone()));
                verdicts.push(Verdict::Commit(posted));
            }
            Err(refusal) => verdicts.push(Verdict::Refused(refusal)),
        }
    }

    let mut changes: Vec<AccountChange> = state
        .into_iter()
        .filter(|(_, w)| w.locked.version != w.read_version)
        .map(|(id, w)| AccountChange {
            id,
            read_version: w.read_version,
            balance: w.locked.balance,
            version: w.locked.version,
        })
        .collect();
    changes.sort_by(|a, b| a.id.cmp(&b.id));
    Plan { verdicts, changes }
}

/// The entry's lines against the current state, or why it is refused. Changes nothing.
fn judge(e: &NewEntry, state: &HashMap<String, Working>) -> Result<Vec<PostedLine>, StoreError> {
    let mut legs: Vec<_> = e.postings.iter().collect();
    legs.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    // First, whatever the amounts: an entry naming a closed account is refused as such (not as
    // insufficient funds on another leg), so the caller learns the rule that applies for good.
    if let Some(leg) = legs.iter().find(|leg| {
        state
            .get(&leg.account_id)
            .is_some_and(|w| w.locked.client_id == e.client_id && w.locked.closed)
    }) {
        return Err(StoreError::AccountClosed(leg.account_id.clone()));
    }
    let mut lines = Vec::with_capacity(legs.len());
    for leg in legs {
        let acc = match state.get(&leg.account_id) {
            Some(w) if w.locked.client_id == e.client_id => &w.locked,
            _ => return Err(StoreError::UnknownAccount(leg.account_id.clone())),
        };
        let balance_after = acc
            .balance
            .checked_add(leg.amount)
            .ok_or_else(|| StoreError::BalanceOverflow(leg.account_id.clone()))?;
        if balance_after < 0 && !acc.allow_negative {
            return Err(StoreError::InsufficientFunds {
                account_id: leg.account_id.clone(),
            });
        }
        lines.push(PostedLine {
            account_id: leg.account_id.clone(),
            amount: leg.amount,
            balance_after,
            version: acc.version + 1,
        });
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::types::NewPosting;

    fn entry(key: &str, hash: &str, legs: &[(&str, i64)]) -> NewEntry {
        NewEntry {
            id: format!("j-{key}-{hash}"),
            client_id: "c".into(),
            idempotency_key: key.into(),
            request_hash: hash.into(),
            kind: crate::ledger::JournalKind::Deposit,
            actor_id: None,
            subject_account_id: legs[0].0.into(),
            memo: None,
            created_at: 1,
            postings: legs
                .iter()
                .map(|(a, amount)| NewPosting {
                    account_id: (*a).into(),
                    amount: *amount,
                })
                .collect(),
            audit: None,
        }
    }

    fn accounts(list: &[(&str, i64, bool)]) -> HashMap<String, LockedAccount> {
        list.iter()
            .map(|(id, balance, neg)| {
                (
                    (*id).to_owned(),
                    LockedAccount {
                        client_id: "c".into(),
                        balance: *balance,
                        version: 3,
                        allow_negative: *neg,
                        closed: false,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn entries_see_the_effects_of_earlier_ones_in_the_batch() {
        let a = entry("k1", "h1", &[("w", -60), ("house", 60)]);
        let b = entry("k2", "h2", &[("w", -60), ("house", 60)]);
        let c = entry("k3", "h3", &[("w", -40), ("house", 40)]);
        let p = plan(
            &[&a, &b, &c],
            accounts(&[("w", 100, false), ("house", -5, true)]),
            &HashMap::new(),
        );
        assert!(matches!(p.verdicts[0], Verdict::Commit(_)));
        assert!(matches!(
            p.verdicts[1],
            Verdict::Refused(StoreError::InsufficientFunds { .. })
        ));
        let Verdict::Commit(third) = &p.verdicts[2] else {
            panic!("{:?}", p.verdicts[2])
        };
        assert_eq!(third.line("w").unwrap().balance_after, 0);
        assert_eq!(third.line("w").unwrap().version, 5);
        assert_eq!(
            p.changes,
            vec![
                AccountChange {
                    id: "house".into(),
                    read_version: 3,
                    balance: 95,
                    version: 5
                },
                AccountChange {
                    id: "w".into(),
                    read_version: 3,
                    balance: 0,
                    version: 5
                },
            ]
        );
    }

    #[test]
    fn keys_replay_or_conflict_and_refusals_are_not_remembered() {
        let mut used = HashMap::new();
        used.insert(
            ("c".to_owned(), "old".to_owned()),
            UsedKey {
                journal_id: "j0".into(),
                request_hash: "h".into(),
            },
        );
        let replay = entry("old", "h", &[("w", -1), ("house", 1)]);
        let clash = entry("old", "other", &[("w", -1), ("house", 1)]);
        let refused = entry("new", "h", &[("w", -500), ("house", 500)]);
        let retried = entry("new", "h2", &[("w", -5), ("house", 5)]);
        let again = entry("new", "h2", &[("w", -5), ("house", 5)]);
        let p = plan(
            &[&replay, &clash, &refused, &retried, &again],
            accounts(&[("w", 10, false), ("house", 0, true)]),
            &used,
        );
        assert!(
            matches!(&p.verdicts[0], Verdict::ReplayStored { journal_id } if journal_id == "j0")
        );
        assert!(matches!(
            p.verdicts[1],
            Verdict::Refused(StoreError::IdempotencyConflict)
        ));
        assert!(matches!(p.verdicts[2], Verdict::Refused(_)));
        assert!(matches!(p.verdicts[3], Verdict::Commit(_)));
        assert!(
            matches!(&p.verdicts[4], Verdict::ReplayBatch(e) if e.line("w").unwrap().balance_after == 5)
        );
    }

    #[test]
    fn foreign_or_missing_accounts_and_overflow_are_refused() {
        let mut accs = accounts(&[("w", i64::MAX - 1, false), ("house", 0, true)]);
        accs.insert(
            "x".into(),
            LockedAccount {
                client_id: "other".into(),
                balance: 0,
                version: 0,
                allow_negative: true,
                closed: false,
            },
        );
        let overflow = entry("a", "h", &[("w", 2), ("house", -2)]);
        let foreign = entry("b", "h", &[("x", -1), ("house", 1)]);
        let missing = entry("c", "h", &[("nope", -1), ("house", 1)]);
        let p = plan(&[&overflow, &foreign, &missing], accs, &HashMap::new());
        assert!(matches!(
            p.verdicts[0],
            Verdict::Refused(StoreError::BalanceOverflow(_))
        ));
        assert!(matches!(
            p.verdicts[1],
            Verdict::Refused(StoreError::UnknownAccount(_))
        ));
        assert!(matches!(
            p.verdicts[2],
            Verdict::Refused(StoreError::UnknownAccount(_))
        ));
        assert!(p.changes.is_empty());
    }

    #[test]
    fn closed_accounts_refuse_every_entry_touching_them() {
        let mut accs = accounts(&[("w", 10, false), ("house", 0, true), ("w2", 0, false)]);
        accs.get_mut("w").unwrap().closed = true;
        let out = entry("a", "h", &[("w", -5), ("house", 5)]);
        let into = entry("b", "h", &[("w", 5), ("house", -5)]);
        // Would fit in amount, and the open account sorts first: still refused whole.
        let via = entry("c", "h", &[("house", -1), ("w", 1)]);
        let open = entry("d", "h", &[("w2", 3), ("house", -3)]);
        let p = plan(&[&out, &into, &via, &open], accs, &HashMap::new());
        for v in &p.verdicts[..3] {
            assert!(
                matches!(v, Verdict::Refused(StoreError::AccountClosed(id)) if id == "w"),
                "{v:?}"
            );
        }
        assert!(matches!(p.verdicts[3], Verdict::Commit(_)));
        assert!(p.changes.iter().all(|c| c.id != "w"));
    }

    proptest::proptest! {
        /// Whatever the batch, a closed account's balance and version never change and every
        /// entry that names one is refused with `AccountClosed`.
        #[test]
        fn closed_accounts_never_move(
            closed in proptest::collection::vec(proptest::bool::ANY, 3),
            legs in proptest::collection::vec((0_usize..3, 0_usize..3, 1_i64..50), 1..20),
        ) {
            let names = ["a", "b", "c"];
            let mut accs = accounts(&[("a", 100, false), ("b", 100, false), ("c", 100, true)]);
            for (name, is_closed) in names.iter().zip(&closed) {
                accs.get_mut(*name).unwrap().closed = *is_closed;
            }
            let entries: Vec<NewEntry> = legs
                .iter()
                .enumerate()
                .filter(|(_, (from, to, _))| from != to)
                .map(|(i, (from, to, amount))| {
                    entry(&format!("k{i}"), "h", &[(names[*from], -amount), (names[*to], *amount)])
                })
                .collect();
            let refs: Vec<&NewEntry> = entries.iter().collect();
            let p = plan(&refs, accs, &HashMap::new());
            for (e, v) in entries.iter().zip(&p.verdicts) {
                let touches_closed = e.postings.iter().any(|leg| {
                    closed[names.iter().position(|n| *n == leg.account_id).unwrap()]
                });
                if touches_closed {
                    proptest::prop_assert!(
                        matches!(v, Verdict::Refused(StoreError::AccountClosed(_))),
                        "{:?}",
                        v
                    );
                }
            }
            for c in &p.changes {
                let i = names.iter().position(|n| *n == c.id).unwrap();
                proptest::prop_assert!(!closed[i], "closed account {} changed", c.id);
            }
        }
    }
}
