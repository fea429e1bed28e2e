//! `/api/v1/clients/{id}/transactions`: a client's journal, every entry with its postings, for
//! its admins and the platform (reconciliation and reports; agents see their users' histories).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::{Auth, Page};
use super::openapi::{Invalid, Secured, Unavailable, Unknown};
use super::views::Page as PageOf;
use super::wallets::parse_time;
use crate::access;
use crate::domain::rfc3339_ms;
use crate::state::AppState;
use crate::store::JournalQuery;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JournalParams {
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<i64>,
    /// A movement kind (deposit, withdrawal, credit, ...).
    kind: Option<String>,
    /// RFC 3339, inclusive.
    from: Option<String>,
    /// RFC 3339.
    to: Option<String>,
}

/// One journal entry of a client, with every posting.
#[derive(Serialize, ToSchema)]
pub struct JournalEntry {
    id: String,
    kind: String,
    actor_id: Option<String>,
    memo: Option<String>,
    /// RFC 3339
    created_at: String,
    currency: String,
    postings: Vec<Posting>,
}

/// One account's side of an entry; an entry's postings sum to zero.
#[derive(Serialize, ToSchema)]
pub struct Posting {
    account_id: String,
    /// signed decimal string
    #[schema(example = "-5.00")]
    amount: String,
    balance_after: String,
}

/// The client whose journal the caller may read: its admins and the platform (others of the
/// client 403, another client 404).
pub(crate) async fn journal_client(
    state: &AppState,
    caller: &crate::auth::Caller,
    id: &str,
) -> Result<crate::store::ClientRow, ApiError> {
    access::client_reach(caller, id).require("client")?;
    Ok(access::client(&state.store, id).await?)
}

/// The client's journal: every entry with its postings, newest first (admins)
#[utoipa::path(get, path = "/api/v1/clients/{id}/transactions", tag = "wallets",
    security(("bearer" = [])), params(JournalParams),
    responses(
        (status = 200, description = "success", body = PageOf<JournalEntry>),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn client_transactions(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    q: web::Query<JournalParams>,
) -> Result<HttpResponse, ApiError> {
    let client = journal_client(&state, &caller, &id).await?;
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
        |i| JournalEntry {
            id: i.id.clone(),
            kind: i.kind.as_str().to_owned(),
            actor_id: i.actor_id.clone(),
            memo: i.memo.clone(),
            created_at: rfc3339_ms(i.created_at),
            currency: currency.code.clone(),
            postings: i
                .postings
                .iter()
                .map(|p| Posting {
                    account_id: p.account_id.clone(),
                    amount: currency.format(p.amount),
                    balance_after: currency.format(p.balance_after),
                })
                .collect(),
        },
    );
    Ok(HttpResponse::Ok().json(body))
}
