//! The append-only audit trail (DESIGN section 6): who did what to whom, with before and after
//! values, in a hash chain that `nashub audit-verify` checks.

pub mod chain;

use serde_json::Value;

use crate::auth::Caller;
use crate::domain::NewAudit;
use crate::store::{Store, StoreError};

/// An event about to be recorded; build with [`Event::new`] and the `with_*` helpers.
#[derive(Debug, Clone)]
pub struct Event(NewAudit);

impl Event {
    pub fn new(action: &str) -> Self {
        Self(NewAudit {
            action: action.to_owned(),
            created_at: crate::domain::now_ms(),
            ..NewAudit::default()
        })
    }

    /// The acting user and, unless set otherwise, the client the event belongs to.
    pub fn by(mut self, caller: &Caller) -> Self {
        self.0.actor_id = Some(caller.user_id.clone());
        if self.0.client_id.is_none() {
            self.0.client_id = caller.client_id.clone();
        }
        self
    }

    pub fn actor(mut self, actor_id: Option<&str>) -> Self {
        self.0.actor_id = actor_id.map(str::to_owned);
        self
    }

    pub fn client(mut self, client_id: Option<&str>) -> Self {
        self.0.client_id = client_id.map(str::to_owned);
        self
    }

    pub fn target(mut self, kind: &str, id: &str) -> Self {
        self.0.target_type = Some(kind.to_owned());
        self.0.target_id = Some(id.to_owned());
        self
    }

    pub fn before(mut self, v: Value) -> Self {
        self.0.before = Some(v.to_string());
        self
    }

    pub fn after(mut self, v: Value) -> Self {
        self.0.after = Some(v.to_string());
        self
    }

    pub fn ip(mut self, ip: Option<String>) -> Self {
        self.0.ip = ip;
        self
    }

    /// The row to append, for callers that append it inside their own transaction (money
    /// movements: `NewEntry::audit`).
    pub fn into_row(self) -> NewAudit {
        self.0
    }

    /// Appends the event to the chain.
    pub async fn record(self, store: &Store) -> Result<i64, StoreError> {
        store.audit_append(&self.0, chain::link_hash).await
    }
}
