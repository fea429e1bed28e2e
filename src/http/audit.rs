//! `GET /api/v1/audit`: the audit trail, newest first, cursor-paginated; a client's admins see
//! their client's rows, super admins every row (optionally one client's).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{Auth, Page};
use crate::access;
use crate::auth::permissions as perm;
use crate::domain::{Role, rfc3339_ms};
use crate::state::AppState;
use crate::store::AuditRow;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    client_id: Option<String>,
    action: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

fn parse_json(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

pub fn view(r: &AuditRow) -> Value {
    let e = &r.entry;
    json!({
        "id": r.seq.to_string(),
        "seq": r.seq,
        "client_id": e.client_id,
        "actor_id": e.actor_id,
        "action": e.action,
        "target_type": e.target_type,
        "target_id": e.target_id,
        "before": parse_json(e.before.as_deref()),
        "after": parse_json(e.after.as_deref()),
        "ip": e.ip,
        "created_at": rfc3339_ms(e.created_at),
        "hash": r.hash,
    })
}

pub async fn list(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    if !caller.can(perm::AUDIT_READ) {
        return Err(ApiError::forbidden());
    }
    let page = Page::new(q.cursor.clone(), q.limit);
    let limit = page.limit()?;
    let client_id = access::listed_client(&caller, q.client_id.as_deref())?;
    // A client's user without a client would see platform rows: refuse instead.
    if caller.role != Role::SuperAdmin && client_id.is_none() {
        return Err(ApiError::forbidden());
    }
    let before = page.numeric_cursor()?;
    let rows = state
        .store
        .audit_page(
            client_id.as_deref(),
            before,
            q.action.as_deref(),
            limit.fetch(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(limit.page(rows, |r| r.seq.to_string(), view)))
}
