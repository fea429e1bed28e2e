//! The audit hash chain: each row's hash covers its position, its content and the previous
//! row's hash, so altering, removing or reordering any row breaks the chain at that row. The
//! hash is an HMAC-SHA-256 keyed from the secrets key (`NASHUB_SECRETS_KEY`, not stored in the
//! database), so someone who can write the database but lacks the key cannot rewrite the rows
//! after an edit to hide it; `audit-verify` reads the same configuration and so the same key.

use sha2::{Digest, Sha256};

use crate::domain::NewAudit;
use crate::store::{Store, StoreError};

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain key derived from the secrets key (a separate key for a separate purpose).
pub fn derive_key(secrets_key: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"nashub audit chain v1");
    h.update(secrets_key);
    h.finalize().into()
}

/// HMAC-SHA-256 (RFC 2104) with a 32-byte key.
pub fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut ipad = [0x36_u8; 64];
    let mut opad = [0x5c_u8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// The row's hash: HMAC over length-prefixed fields, so no field's content can pass for a
/// separator.
pub fn link_hash(key: &[u8; 32], prev_hash: &str, seq: i64, e: &NewAudit) -> String {
    let mut m = Vec::with_capacity(256);
    let mut field = |v: Option<&str>| match v {
        Some(s) => {
            m.extend_from_slice(&(s.len() as u64).to_be_bytes());
            m.extend_from_slice(s.as_bytes());
        }
        None => m.extend_from_slice(&u64::MAX.to_be_bytes()),
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
    hex::encode(hmac_sha256(key, &m))
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
