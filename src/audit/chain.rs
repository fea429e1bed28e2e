//! The audit hash chain: each row's hash covers its position, its content and the previous
//! row's hash, so altering, removing or reordering any row breaks the chain at that row. The
//! hash is an HMAC-SHA-256 keyed from the secrets key (`NASHUB_SECRETS_KEY`, not stored in the
//! database), so someone who can write the database but lacks the key cannot rewrite the rows
//! after an edit to hide it; `audit-verify` reads the same configuration and so the same key.

use sha2::{Digest, Sha256};

pub use crate::store::audit_chain::{GENESIS, hmac_sha256, link_hash};
use crate::store::{Store, StoreError};

/// The chain key derived from the secrets key (a separate key for a separate purpose).
pub fn derive_key(secrets_key: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"nashub audit chain v1");
    h.update(secrets_key);
    h.finalize().into()
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
            if link_hash(store.audit_key(), &prev, row.seq, &row.entry) != row.hash {
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
    use crate::store::NewAudit;

    #[test]
    fn every_field_changes_the_hash() {
        let e = NewAudit {
            action: "user.create".into(),
            created_at: 1,
            ..NewAudit::default()
        };
        let k = [1_u8; 32];
        let base = link_hash(&k, GENESIS, 1, &e);
        assert_ne!(base, link_hash(&k, GENESIS, 2, &e));
        assert_ne!(base, link_hash(&[2_u8; 32], GENESIS, 1, &e), "keyed");
        let mut other = e.clone();
        other.after = Some("{}".into());
        assert_ne!(base, link_hash(&k, GENESIS, 1, &other));
        // None and empty differ.
        let mut empty = e.clone();
        empty.after = Some(String::new());
        assert_ne!(link_hash(&k, GENESIS, 1, &empty), base);
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_1() {
        // Key 0x0b × 20 (zero-padded, as HMAC pads short keys), data "Hi There".
        let mut key = [0_u8; 32];
        key[..20].fill(0x0b);
        assert_eq!(
            hex::encode(hmac_sha256(&key, b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }
}
