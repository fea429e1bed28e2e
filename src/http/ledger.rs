//! `/api/v1/clients/{id}/transactions`: a client's journal, every entry with its postings, for
//! its admins and the platform (reconciliation and reports; agents see their users' histories).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::{Auth, Page};
use super::wallets::parse_time;
use crate::access;
use crate::domain::rfc3339_ms;
use crate::state::AppState;
use crate::store::JournalQuery;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalParams {
    cursor: Option<String>,
    limit: Option<i64>,
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub async fn client_transactions(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    q: web::Query<JournalParams>,
) -> Result<HttpResponse, ApiError> {
    access::client_reach(&caller, &id).require("client")?;
    let client = access::client(&state.store, &id).await?;
    let currency = client.currency.clone();
    let page = Page::new(q.cursor.clone(), q.limit);
    let limit = page.limit()?;
    let query = JournalQuery {
        before_id: page.cursor,
        limit: limit.fetch(),
        kind: q.kind.clone(),
        from_ms: parse_time("from", q.from.as_deref())?,
        to_ms: parse_time("to", q.to.as_deref())?,
    };
    let items = state.store.client_journal(&client.id, &query).await?;
    let body = limit.page(
        items,
        |i| i.id.clone(),
        |i| {
            json!({
                "id": i.id,
                "kind": i.kind,
                "actor_id": i.actor_id,
                "memo": i.memo,
                "created_at": rfc3339_ms(i.created_at),
                "currency": currency.code,
                "postings": i.postings.iter().map(|p| json!({
                    "account_id": p.account_id,
                    "amount": currency.format(p.amount),
                    "balance_after": currency.format(p.balance_after),
                })).collect::<Vec<_>>(),
            })
        },
    );
    Ok(HttpResponse::Ok().json(body))
}
