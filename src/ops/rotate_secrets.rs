//! `nashub rotate-secrets`: re-seals every stored secret (current provider credentials and the
//! kept versions that in-flight transfers may still need) under the current secrets key. Run it
//! after making the new key current and listing the old one in `secrets_previous_keys`; nodes
//! keep opening old values meanwhile, so it can run while they serve. Idempotent: a second run
//! finds nothing to do. A value changed by an admin while it runs is left to that change.

use crate::secrets::{Sealed, SecretBox, SecretError};
use crate::store::{Store, StoreError};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Values now sealed under the current key.
    pub resealed: usize,
    /// Values changed by someone else meanwhile (already under a new seal).
    pub raced: usize,
    /// `(secret id, version, key id)` of values no configured key opens.
    pub unopenable: Vec<(String, i64, String)>,
}

pub async fn rotate(store: &Store, secrets: &SecretBox) -> Result<Rotation, StoreError> {
    let current = secrets.current_key_id().to_owned();
    let mut report = Rotation::default();
    for old in store.sealed_not_under(&current).await? {
        let sealed = Sealed {
            key_id: old.key_id.clone(),
            nonce: old.nonce.clone(),
            ciphertext: old.ciphertext.clone(),
        };
        let plain = match secrets.open(&old.secret_id, &sealed) {
            Ok(plain) => plain,
            Err(SecretError::UnknownKey(_) | SecretError::Open) => {
                report
                    .unopenable
                    .push((old.secret_id.clone(), old.version, old.key_id.clone()));
                continue;
            }
        };
        let new = secrets.seal(&old.secret_id, &plain);
        if store
            .reseal(&old, &new.key_id, &new.nonce, &new.ciphertext)
            .await?
        {
            report.resealed += 1;
        } else {
            report.raced += 1;
        }
    }
    Ok(report)
}
