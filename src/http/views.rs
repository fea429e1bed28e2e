//! Response bodies: how clients and users look on the wire.

use serde_json::{Value, json};

use crate::domain::rfc3339_ms;
use crate::store::{ClientRow, UserRow};

pub fn client(c: &ClientRow) -> Value {
    json!({
        "id": c.id,
        "code": c.code,
        "name": c.name,
        "currency": c.currency.code,
        "currency_exponent": c.currency.exponent,
        "status": c.status,
        "created_at": rfc3339_ms(c.created_at),
    })
}

pub fn user(u: &UserRow) -> Value {
    json!({
        "id": u.id,
        "client_id": u.client_id,
        "parent_id": u.parent_id,
        "role": u.role,
        "username": u.username,
        "status": u.status,
        "depth": u.depth,
        "created_at": rfc3339_ms(u.created_at),
    })
}

/// A page of items; `next_cursor` is null on the last page.
pub fn page(items: Vec<Value>, next_cursor: Option<String>) -> Value {
    json!({ "items": items, "next_cursor": next_cursor })
}
