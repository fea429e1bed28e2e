//! `GET /api/v1/audit`: the audit trail, newest first, cursor-paginated; a client's admins see
//! their client's rows, super admins every row (optionally one client's).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::{Auth, Page};
use super::openapi::{Invalid, Secured, Unavailable};
use super::views::Page as PageOf;
use crate::access;
use crate::auth::permissions as perm;
use crate::domain::{Role, rfc3339_ms};
use crate::state::AppState;
use crate::store::AuditRow;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Super admins: one client's rows.
    client_id: Option<String>,
    /// One action, e.g. `wallet.deposit`.
    action: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<i64>,
}

/// One row of the audit chain.
#[derive(Serialize, ToSchema)]
pub struct AuditItem {
    id: String,
    seq: i64,
    client_id: Option<String>,
    actor_id: Option<String>,
    #[schema(example = "wallet.deposit")]
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    /// what changed, as it was (any JSON; null when nothing was before)
    #[schema(value_type = Option<Object>)]
    before: Value,
    /// what changed, as it is (any JSON; null when nothing is after)
    #[schema(value_type = Option<Object>)]
    after: Value,
    ip: Option<String>,
    /// RFC 3339
    created_at: String,
    /// this row's link in the hash chain
    hash: String,
}

fn parse_json(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

pub fn view(r: &AuditRow) -> AuditItem {
    let e = &r.entry;
    AuditItem {
        id: r.seq.to_string(),
        seq: r.seq,
        client_id: e.client_id.clone(),
        actor_id: e.actor_id.clone(),
        action: e.action.clone(),
        target_type: e.target_type.clone(),
        target_id: e.target_id.clone(),
        before: parse_json(e.before.as_deref()),
        after: parse_json(e.after.as_deref()),
        ip: e.ip.clone(),
        created_at: rfc3339_ms(e.created_at),
        hash: r.hash.clone(),
    }
}

/// The hash-chained audit trail, newest first
///
/// A client's admins see their client's rows, super admins every row (optionally one
/// client's).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "success", body = PageOf<AuditItem>),
        Secured, Invalid, Unavailable,
    ))]

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
