//! `/api/v1/clients/{id}/settlements`: period settlements of agents' commission and the
//! platform's revenue share (rules in `ledger::settlement`). The platform runs them; the
//! client's admins read them; agents see their commission in their own transaction history.
//!
//! A settlement's figures are fixed in the store first, then posted (`settlement_poster`), so
//! a retried request or a restart finishes the same settlement and never pays twice. One
//! period per settlement; periods of a client never overlap.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::peer_ip;
use super::client_settings;
use super::error::ApiError;
use super::extract::{Auth, IdempotencyKey, Page};
use super::openapi::{BadBody, Conflict, Invalid, Secured, Unavailable, Unknown};
use super::views::Page as PageOf;
use super::wallets::parse_time;
use crate::domain::{Currency, rfc3339_ms};
use crate::settlements::service::{self, SettleError, SettleRequest, SettledAs};
use crate::state::AppState;
use crate::store::{Settlement, SettlementRow};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleBody {
    /// RFC 3339
    #[schema(format = DateTime)]
    period_start: String,
    /// RFC 3339, at least settlement_grace_secs in the past
    #[schema(format = DateTime)]
    period_end: String,
    /// The key may come in the body instead of the `Idempotency-Key` header: 1 to 128
    /// printable ASCII characters (both: they must agree).
    #[schema(min_length = 1, max_length = 128, pattern = "^[\\x21-\\x7E]+$")]
    idempotency_key: Option<String>,
    /// Pay the commission at once (default true) or, false, leave the lines `calculated` for
    /// operators to approve and pay (issue 21).
    pay: Option<bool>,
}

/// A settlement as listed: its period and figures, without lines.
#[derive(Serialize, ToSchema)]
pub struct SettlementHeader {
    id: String,
    client_id: String,
    /// RFC 3339
    period_start: String,
    /// RFC 3339
    period_end: String,
    currency: String,
    /// the client's net gaming revenue in the period, decimal string
    ngr: String,
    /// pending until every entry is posted, then posted
    #[schema(pattern = "^(pending|posted)$", example = "posted")]
    state: String,
    created_by: String,
    /// RFC 3339
    created_at: String,
    posted_at: Option<String>,
    /// manual (POST) or scheduled (the client's settlement_schedule)
    #[schema(pattern = "^(manual|scheduled)$", example = "manual")]
    origin: String,
}

/// One settlement with its commission lines and revenue share.
#[derive(Serialize, ToSchema)]
#[schema(as = Settlement)]
pub struct SettlementView {
    #[serde(flatten)]
    header: SettlementHeader,
    /// decimal string
    commission_total: String,
    commissions: Vec<Commission>,
    revenue_share: RevenueShare,
}

/// An agent's commission for the period.
#[derive(Serialize, ToSchema)]
pub struct Commission {
    agent_id: String,
    players: i64,
    /// the players' basis together (kept under this name: it is their turnover when basis is
    /// turnover), decimal string
    ngr: String,
    rate: String,
    /// decimal string
    amount: String,
    transaction_id: Option<String>,
    /// calculated → approved → paid, or held (held → approved)
    #[schema(pattern = "^(calculated|approved|held|paid)$", example = "paid")]
    status: String,
    /// what the commission is a share of: ngr, or turnover (the players' stakes)
    #[schema(pattern = "^(ngr|turnover)$", example = "ngr")]
    basis: String,
    /// the players' basis together (NGR or turnover), decimal string
    basis_amount: String,
    /// the differential result before carry-over, decimal string
    earned: String,
    /// negative result brought in from earlier periods (≤ 0), decimal string
    carried_in: String,
    /// negative result carried on to later periods (≤ 0), decimal string
    carry_out: String,
}

/// The platform's revenue share for the period.
#[derive(Serialize, ToSchema)]
pub struct RevenueShare {
    /// decimal string
    base: String,
    rate: String,
    /// decimal string
    amount: String,
    transaction_id: Option<String>,
}

impl From<SettleError> for ApiError {
    fn from(e: SettleError) -> Self {
        match e {
            SettleError::Invalid(message) => ApiError::validation(message),
            SettleError::Overlaps(_) => ApiError::conflict("settlement_overlap", e.to_string()),
            SettleError::Internal => ApiError::internal(),
            SettleError::Store(e) => e.into(),
            SettleError::Wallet(e) => e.into(),
        }
    }
}

/// Settle a closed period: agents' commission and the platform's revenue share (platform; 200 when the key or period was settled before, 409 settlement_overlap)
///
/// 201 with the settlement; the same key again: 201 with the first one (a replay); the same
/// period under another key: 200 with the first one; a period overlapping another settlement:
/// 409 `settlement_overlap`. The handler parses and authorizes; `settlements::service`
/// settles.
#[utoipa::path(post, path = "/api/v1/clients/{id}/settlements", tag = "settlements",
    security(("bearer" = [])), params(IdempotencyKey), request_body = SettleBody,
    responses(
        (status = 201, description = "success", body = SettlementView),
        (status = 200, description = "this period was settled before under another key: that settlement", body = SettlementView),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn create(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    key: IdempotencyKey,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<SettleBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let key = key.or_body(body.idempotency_key)?;
    let client = client_settings::writable(&state, &caller, &id).await?;
    let start = parse_time("period_start", Some(&body.period_start))?.unwrap_or_default();
    let end = parse_time("period_end", Some(&body.period_end))?.unwrap_or_default();
    let settings = crate::clients::settings::load(&state.store, &client.id).await?;
    let settled = service::settle(
        &state.store,
        &state.wallets,
        SettleRequest {
            created_by: &caller.user_id,
            client: &client,
            period_start: start,
            period_end: end,
            idempotency_key: key,
            ip: peer_ip(&req),
            commission_rate: &settings.commission_rate,
            revenue_share_rate: &settings.revenue_share_rate,
            commission_basis: &settings.commission_basis,
            grace_secs: state.config.settings.settlement_grace_secs,
            carry_over: settings.commission_negative_carryover,
            origin: "manual",
            // Issue 21: a manual settlement pays its commission at once, as before (lines
            // `approved`, then `paid`); `"pay": false` leaves them `calculated` for operators.
            pay_now: body.pay.unwrap_or(true),
        },
    )
    .await?;
    // DESIGN section 4: a replay answers as the first request did, status included.
    let status = match settled.kind {
        SettledAs::Created | SettledAs::Replayed => StatusCode::CREATED,
        SettledAs::Existing => StatusCode::OK,
    };
    Ok(HttpResponse::build(status).json(view(&settled.settlement, &settled.currency)))
}

/// One settlement with its commission lines and revenue share
#[utoipa::path(get, path = "/api/v1/clients/{id}/settlements/{settlement_id}",
    tag = "settlements", security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = SettlementView),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn get(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (client_id, settlement_id) = path.into_inner();
    let client = super::clients::readable(&state, &caller, &client_id).await?;
    let currency = client.currency.clone();
    let s = state
        .store
        .settlement(&client.id, &settlement_id)
        .await?
        .ok_or_else(|| ApiError::not_found("settlement"))?;
    Ok(HttpResponse::Ok().json(view(&s, &currency)))
}

/// The client's settlements, newest period first (platform and client admins)
///
/// `cursor` is the previous page's `next_cursor`.
#[utoipa::path(get, path = "/api/v1/clients/{id}/settlements", tag = "settlements",
    security(("bearer" = [])), params(Page),
    responses(
        (status = 200, description = "success", body = PageOf<SettlementHeader>),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn list(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    page: Page,
) -> Result<HttpResponse, ApiError> {
    let client = super::clients::readable(&state, &caller, &id).await?;
    let currency = client.currency.clone();
    let limit = page.limit()?;
    let before = page.numeric_cursor()?;
    let rows = state
        .store
        .settlements(&client.id, before, limit.fetch())
        .await?;
    let body = limit.page(
        rows,
        |r| r.period_start.to_string(),
        |h| header_view(h, &currency),
    );
    Ok(HttpResponse::Ok().json(body))
}

fn header_view(h: &SettlementRow, currency: &Currency) -> SettlementHeader {
    SettlementHeader {
        id: h.id.clone(),
        client_id: h.client_id.clone(),
        period_start: rfc3339_ms(h.period_start),
        period_end: rfc3339_ms(h.period_end),
        currency: currency.code.clone(),
        ngr: currency.format(h.ngr),
        state: h.state.clone(),
        created_by: h.created_by.clone(),
        created_at: rfc3339_ms(h.created_at),
        posted_at: h.posted_at.map(rfc3339_ms),
        origin: h.origin.clone(),
    }
}

pub(crate) fn view(s: &Settlement, currency: &Currency) -> SettlementView {
    let total: i64 = s.commissions.iter().map(|c| c.amount).sum();
    let r = &s.revenue_share;
    SettlementView {
        header: header_view(&s.header, currency),
        commission_total: currency.format(total),
        commissions: s
            .commissions
            .iter()
            .map(|c| Commission {
                agent_id: c.agent_id.clone(),
                players: c.players,
                ngr: currency.format(c.ngr),
                rate: c.rate.clone(),
                amount: currency.format(c.amount),
                transaction_id: c.journal_id.clone(),
                status: c.status.clone(),
                basis: c.basis.clone(),
                basis_amount: currency.format(c.ngr),
                earned: currency.format(c.earned),
                carried_in: currency.format(c.carried_in),
                carry_out: currency.format(c.carry_out),
            })
            .collect(),
        revenue_share: RevenueShare {
            base: currency.format(r.base),
            rate: r.rate.clone(),
            amount: currency.format(r.amount),
            transaction_id: r.journal_id.clone(),
        },
    }
}
