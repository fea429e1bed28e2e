//! Idempotency keys of money forms: generated when the form is rendered (a hidden
//! `idempotency_key` field), sent to the API path as its `idempotency_key` body field, so the
//! ledger scopes it exactly as an API call's (`<caller id>:<key>`): a double click or a resent
//! form replays the first answer and moves the money once.

/// A fresh key (UUIDv7) for one rendering of a money form.
pub fn new_key() -> String {
    uuid::Uuid::now_v7().to_string()
}
