//! What the audit trail records about one action (the chain itself: `audit::chain`).

/// One audit event as the caller describes it; `before`/`after` are JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAudit {
    pub client_id: Option<String>,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub ip: Option<String>,
    pub created_at: i64,
}
