//! Response bodies shared by several resources: how clients, users and pages look on the wire.
//! Each is a type deriving `ToSchema`, so `/openapi.json` describes exactly what is sent.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::rfc3339_ms;
use crate::store::{ClientRow, UserRow};

/// A white-label tenant.
#[derive(Serialize, ToSchema)]
pub struct Client {
    pub id: String,
    /// 2 to 32 of a-z 0-9 _ - (stored lower-case)
    pub code: String,
    pub name: String,
    pub currency: String,
    pub currency_exponent: i64,
    #[schema(example = "active")]
    pub status: String,
    /// RFC 3339
    pub created_at: String,
}

/// A user of a client's tree (or of the platform).
#[derive(Serialize, ToSchema)]
pub struct User {
    pub id: String,
    pub client_id: Option<String>,
    pub parent_id: Option<String>,
    #[schema(example = "player")]
    pub role: String,
    pub username: String,
    /// active, suspended or closed
    #[schema(example = "active")]
    pub status: String,
    pub depth: i64,
    /// RFC 3339
    pub created_at: String,
}

/// One page of a listing; `next_cursor` is null on the last page (pass it as `cursor` for the
/// next one).
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub fn client_view(c: &ClientRow) -> Client {
    Client {
        id: c.id.clone(),
        code: c.code.clone(),
        name: c.name.clone(),
        currency: c.currency.code.clone(),
        currency_exponent: i64::from(c.currency.exponent),
        status: c.status.as_str().to_owned(),
        created_at: rfc3339_ms(c.created_at),
    }
}

/// The client as a JSON value (audit records keep it so).
pub fn client(c: &ClientRow) -> Value {
    to_value(client_view(c))
}

pub fn user(u: &UserRow) -> User {
    User {
        id: u.id.clone(),
        client_id: u.client_id.clone(),
        parent_id: u.parent_id.clone(),
        role: u.role.as_str().to_owned(),
        username: u.username.clone(),
        status: u.status.as_str().to_owned(),
        depth: u.depth,
        created_at: rfc3339_ms(u.created_at),
    }
}

/// A page of items; `next_cursor` is null on the last page.
pub fn page<T>(items: Vec<T>, next_cursor: Option<String>) -> Page<T> {
    Page { items, next_cursor }
}

/// A response type as a JSON value (for audit records and composed bodies). Plain structs with
/// string keys always convert.
pub fn to_value(body: impl Serialize) -> Value {
    serde_json::to_value(body).expect("response types serialize to JSON")
}
