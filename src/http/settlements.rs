//! `/api/v1/clients/{id}/settlements`: period settlements of agents' commission and the
//! platform's revenue share (rules in `ledger::settlement`). The platform runs them; the
//! client's admins read them; agents see their commission in their own transaction history.
//!
//! A settlement's figures are fixed in the store first, then posted (`settlement_poster`), so
//! a retried request or a restart finishes the same settlement and never pays twice. One
//! period per settlement; periods of a client never overlap.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::peer_ip;
use super::client_settings;
use super::error::ApiError;
use super::extract::{Auth, IdempotencyKey, Page};
use super::wallets::parse_time;
use crate::domain::{Currency, rfc3339_ms};
use crate::settlements::service::{self, SettleError, SettleRequest, SettledAs};
use crate::state::AppState;
use crate::store::{Settlement, SettlementRow};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleBody {
    period_start: String,
    period_end: String,
    /// The key may come in the body instead of the `Idempotency-Key` header.
    idempotency_key: Option<String>,
    /// Pay the commission at once (default) or leave it `calculated` (issue 21).
    pay: Option<bool>,
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

/// `POST /api/v1/clients/{id}/settlements` `{"period_start","period_end"}` (RFC 3339): 201 with
/// the settlement; the same key again: 201 with the first one (a replay); the same period under
/// another key: 200 with the first one; a period overlapping another settlement: 409
/// `settlement_overlap`. The handler parses and authorizes; `settlements::service` settles.
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
    let settings = client_settings::load(&state, &client.id).await?;
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

pub async fn get(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (client_id, settlement_id) = path.into_inner();
    let client = super::clients::readable(&state, &caller, &client_id).await?;
    let currency = client.currency().map_err(|_| ApiError::internal())?;
    let s = state
        .store
        .settlement(&client.id, &settlement_id)
        .await?
        .ok_or_else(|| ApiError::not_found("settlement"))?;
    Ok(HttpResponse::Ok().json(view(&s, &currency)))
}

/// Newest period first; `cursor` is the previous page's `next_cursor`.
pub async fn list(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    page: Page,
) -> Result<HttpResponse, ApiError> {
    let client = super::clients::readable(&state, &caller, &id).await?;
    let currency = client.currency().map_err(|_| ApiError::internal())?;
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

fn header_view(h: &SettlementRow, currency: &Currency) -> Value {
    json!({
        "id": h.id,
        "client_id": h.client_id,
        "period_start": rfc3339_ms(h.period_start),
        "period_end": rfc3339_ms(h.period_end),
        "currency": currency.code,
        "ngr": currency.format(h.ngr),
        "state": h.state,
        "created_by": h.created_by,
        "created_at": rfc3339_ms(h.created_at),
        "posted_at": h.posted_at.map(rfc3339_ms),
        "origin": h.origin,
    })
}

pub(crate) fn view(s: &Settlement, currency: &Currency) -> Value {
    let mut v = header_view(&s.header, currency);
    let total: i64 = s.commissions.iter().map(|c| c.amount).sum();
    v["commission_total"] = json!(currency.format(total));
    v["commissions"] = s
        .commissions
        .iter()
        .map(|c| {
            json!({
                "agent_id": c.agent_id,
                "players": c.players,
                "ngr": currency.format(c.ngr),
                "rate": c.rate,
                "amount": currency.format(c.amount),
                "transaction_id": c.journal_id,
                "status": c.status,
                "basis": c.basis,
                "earned": currency.format(c.earned),
                "carried_in": currency.format(c.carried_in),
                "carry_out": currency.format(c.carry_out),
            })
        })
        .collect();
    let r = &s.revenue_share;
    v["revenue_share"] = json!({
        "base": currency.format(r.base),
        "rate": r.rate,
        "amount": currency.format(r.amount),
        "transaction_id": r.journal_id,
    });
    v
}
