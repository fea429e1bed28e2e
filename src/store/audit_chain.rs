//! The audit hash chain's link (see `audit::chain`): computed here, where rows are appended,
//! so the store needs nothing from `audit`.

use sha2::{Digest, Sha256};

use super::NewAudit;

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
