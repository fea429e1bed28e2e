//! The audit hash chain: each row's hash covers its position, its content and the previous
//! row's hash, so altering, removing or reordering any row breaks the chain at that row.

use sha2::{Digest, Sha256};

use crate::store::{NewAudit, Store, StoreError};

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 over length-prefixed fields (no separator can be forged by a field's content).
pub fn link_hash(prev_hash: &str, seq: i64, e: &NewAudit) -> String {
    let mut h = Sha256::new();
    let mut field = |v: Option<&str>| match v {
        Some(s) => {
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        }
        None => h.update(u64::MAX.to_be_bytes()),
    };
    field(Some(prev_hash));
    field(Some(&seq.to_string()));
    field(Some(&e.created_at.to_string()));
    field(e.client_id.as_deref());
    field(e.actor_id.as_deref());
    field(Some(&e.action));
    field(e.target_type.as_deref());
    field(e.target_id.as_deref());
    field(e.before.as_deref());
    field(e.after.as_deref());
    field(e.ip.as_deref());
    hex::encode(h.finalize())
}

/// Where and how the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// 1-based position in the chain where the first bad row is (or a row is missing).
    pub index: i64,
    pub reason: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {}: {}", self.index, self.reason)
    }
}

const BATCH: i64 = 1000;

/// Walks the whole chain in order. `Ok(n)` with the number of rows when intact.
pub async fn verify(store: &Store) -> Result<Result<i64, Break>, StoreError> {
    let mut expected_seq = 1_i64;
    let mut prev = GENESIS.to_owned();
    loop {
        let rows = store.audit_chain(expected_seq - 1, BATCH).await?;
        let done = (rows.len() as i64) < BATCH;
        for row in rows {
            let fail = |reason: String| {
                Ok(Err(Break {
                    index: expected_seq,
                    reason,
                }))
            };
            if row.seq != expected_seq {
                return fail(format!(
                    "expected seq {expected_seq}, found seq {} (a row was removed or reordered)",
                    row.seq
                ));
            }
            if row.prev_hash != prev {
                return fail("prev_hash does not match the previous row".into());
            }
            if link_hash(&prev, row.seq, &row.entry) != row.hash {
                return fail("content does not match its hash (row altered)".into());
            }
            prev = row.hash;
            expected_seq += 1;
        }
        if done {
            break;
        }
    }
    let count = expected_seq - 1;
    let (head_seq, head_hash) = store.audit_head().await?;
    if head_seq != count || head_hash != prev {
        return Ok(Err(Break {
            index: count + 1,
            reason: format!(
                "the chain ends at row {count} but its head says {head_seq} (rows removed at the end)"
            ),
        }));
    }
    Ok(Ok(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_changes_the_hash() {
        let e = NewAudit {
            action: "user.create".into(),
            created_at: 1,
            ..NewAudit::default()
        };
        let base = link_hash(GENESIS, 1, &e);
        assert_ne!(base, link_hash(GENESIS, 2, &e));
        let mut other = e.clone();
        other.after = Some("{}".into());
        assert_ne!(base, link_hash(GENESIS, 1, &other));
        // None and empty differ.
        let mut empty = e.clone();
        empty.after = Some(String::new());
        assert_ne!(link_hash(GENESIS, 1, &empty), base);
    }
}
