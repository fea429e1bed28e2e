//! `/api/v1/clients/{id}/settlements`: period settlements of agents' commission and the
//! platform's revenue share (rules in `ledger::settlement`). The platform runs them; the
//! client's admins read them; agents see their commission in their own transaction history.
//!
//! A settlement's figures are fixed in the store first, then posted (`settlement_poster`), so
//! a retried request or a restart finishes the same settlement and never pays twice. One
//! period per settlement; periods of a client never overlap.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::peer_ip;
use super::client_settings;
use super::error::ApiError;
use super::extract::{Auth, IdempotencyKey, Page};
use super::wallets::parse_time;
use crate::actors::settlement_poster;
use crate::audit::Event;
use crate::domain::{Currency, Role, new_id, now_ms, rfc3339_ms};
use crate::ledger::accounts::{game_results, house_id};
use crate::ledger::settlement::{self, PlayerResult, Rate};
use crate::state::AppState;
use crate::store::{CommissionRow, FixOutcome, RevenueShareRow, Settlement, SettlementRow};

/// Longest period one settlement may cover.
const MAX_PERIOD_MS: i64 = 366 * 24 * 3600 * 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleBody {
    period_start: String,
    period_end: String,
    /// The key may come in the body instead of the `Idempotency-Key` header.
    idempotency_key: Option<String>,
}

/// The smallest UUIDv7 text of millisecond `ms`: journal ids at or after it are from `ms` on.
fn id_floor(ms: i64) -> String {
    let ms = ms.max(0) as u64;
    format!(
        "{:08x}-{:04x}-0000-0000-000000000000",
        ms >> 16,
        ms & 0xffff
    )
}

/// The nearest agent above a player, if any (players under a client admin earn nobody
/// commission, nor do players whose nearest agent is closed: a closed account takes no money,
/// so paying it would leave the settlement unpostable).
async fn nearest_agent(state: &AppState, user_id: &str) -> Result<Option<String>, ApiError> {
    let mut next = state.store.user(user_id).await?.and_then(|u| u.parent_id);
    while let Some(id) = next {
        let Some(user) = state.store.user(&id).await? else {
            return Ok(None);
        };
        match user.role.parse::<Role>() {
            Ok(Role::Agent) if user.status == "closed" => return Ok(None),
            Ok(Role::Agent) => return Ok(Some(user.id)),
            Ok(Role::Player) => next = user.parent_id,
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// `POST /api/v1/clients/{id}/settlements` `{"period_start","period_end"}` (RFC 3339): 201 with
/// the settlement; the same key again: 201 with the first one (a replay); the same period under
/// another key: 200 with the first one; a period
/// overlapping another settlement: 409 `settlement_overlap`.
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
    if end <= start {
        return Err(ApiError::validation(
            "period_end must be after period_start",
        ));
    }
    if end - start > MAX_PERIOD_MS {
        return Err(ApiError::validation(
            "a settlement period is at most 366 days",
        ));
    }
    let grace_ms = state.config.settings.settlement_grace_secs.max(0) * 1000;
    if end > now_ms() - grace_ms {
        return Err(ApiError::validation(format!(
            "period_end must be at least {} seconds in the past, so late game results are in it",
            grace_ms / 1000
        )));
    }
    let currency = client.currency().map_err(|_| ApiError::internal())?;
    let settings = client_settings::load(&state, &client.id).await?;
    let commission_rate = Rate::parse(&settings.commission_rate).ok_or_else(ApiError::internal)?;
    let share_rate = Rate::parse(&settings.revenue_share_rate).ok_or_else(ApiError::internal)?;

    let result_accounts: Vec<String> = crate::providers::PROVIDER_NAMES
        .iter()
        .map(|p| house_id(&client.id, &game_results(p)))
        .collect();
    let by_subject = state
        .store
        .ngr_by_subject(
            &client.id,
            &result_accounts,
            &id_floor(start),
            &id_floor(end),
        )
        .await?;
    let mut players = Vec::new();
    let mut unattributed: i64 = 0;
    for row in by_subject {
        match row.subject_account_id.strip_prefix("w:") {
            Some(user_id) => players.push(PlayerResult {
                user_id: user_id.to_owned(),
                agent_id: nearest_agent(&state, user_id).await?,
                ngr: row.ngr,
            }),
            // Rounds recorded before entries named their player.
            None => {
                unattributed = unattributed
                    .checked_add(row.ngr)
                    .ok_or_else(ApiError::internal)?;
            }
        }
    }
    let figures = settlement::compute(&players, unattributed, commission_rate, share_rate)
        .map_err(|e| ApiError::validation(e.to_string()))?;

    let settlement_id = new_id();
    let fixed = Settlement {
        header: SettlementRow {
            id: settlement_id.clone(),
            client_id: client.id.clone(),
            idempotency_key: key.clone(),
            period_start: start,
            period_end: end,
            currency: currency.code.clone(),
            ngr: figures.ngr,
            state: "pending".into(),
            created_by: caller.user_id.clone(),
            created_at: now_ms(),
            posted_at: None,
        },
        commissions: figures
            .commissions
            .iter()
            .map(|c| CommissionRow {
                settlement_id: settlement_id.clone(),
                agent_id: c.agent_id.clone(),
                client_id: client.id.clone(),
                players: c.players,
                ngr: c.ngr,
                rate: commission_rate.to_text(),
                amount: c.amount,
                journal_id: None,
            })
            .collect(),
        revenue_share: RevenueShareRow {
            settlement_id: settlement_id.clone(),
            client_id: client.id.clone(),
            base: figures.revenue_base,
            rate: share_rate.to_text(),
            amount: figures.revenue_share,
            journal_id: None,
        },
    };
    let (status, settlement_id) = match state.store.fix_settlement(&fixed).await? {
        FixOutcome::Created => {
            Event::new("settlement.create")
                .by(&caller)
                .client(Some(&client.id))
                .target("settlement", &settlement_id)
                .after(json!({
                    "period_start": rfc3339_ms(start),
                    "period_end": rfc3339_ms(end),
                    "ngr": currency.format(figures.ngr),
                    "commission_total": currency.format(figures.commission_total),
                    "revenue_share": currency.format(figures.revenue_share),
                }))
                .ip(peer_ip(&req))
                .record(&state.store)
                .await?;
            (actix_web::http::StatusCode::CREATED, settlement_id)
        }
        // DESIGN section 4: a replay answers as the first request did, status included.
        FixOutcome::Replayed(first) => (actix_web::http::StatusCode::CREATED, first),
        FixOutcome::Existing(existing) => (actix_web::http::StatusCode::OK, existing),
        FixOutcome::Overlaps(other) => {
            return Err(ApiError::conflict(
                "settlement_overlap",
                format!("the period overlaps settlement {other}"),
            ));
        }
    };
    let stored = state
        .store
        .settlement(&client.id, &settlement_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    if stored.header.state == "pending" {
        settlement_poster::post(&state.store, &state.wallets, &stored, &currency).await?;
    }
    let posted = state
        .store
        .settlement(&client.id, &settlement_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok(HttpResponse::build(status).json(view(&posted, &currency)))
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
    let mut rows = state
        .store
        .settlements(&client.id, before, limit.fetch())
        .await?;
    let next = limit.next_cursor(&mut rows, |r| r.period_start.to_string());
    let items = rows.iter().map(|h| header_view(h, &currency)).collect();
    Ok(HttpResponse::Ok().json(super::views::page(items, next)))
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
    })
}

fn view(s: &Settlement, currency: &Currency) -> Value {
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
