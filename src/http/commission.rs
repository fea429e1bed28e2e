//! Issue 21 endpoints: agents' commission rates (`/users/{id}/commission`), an agent's running
//! commission (`/users/{id}/commission/current`), what a finished game session earns each agent
//! above its player (`/game-sessions/{id}/commission`), operators' steps on a commission line
//! (`/clients/{id}/settlements/{sid}/commissions/{agent}/approve|hold|pay`) and the platform's
//! revenue collections and statements (`/clients/{id}/revenue-collections`,
//! `/revenue-statements`). Rules live in `settlements::{commission, revenue}`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::peer_ip;
use super::client_settings;
use super::error::ApiError;
use super::extract::{Auth, IdempotencyKey, Page};
use super::users::{reachable_user, readable_user};
use crate::access;
use crate::audit::Event;
use crate::auth::Caller;
use crate::auth::permissions as perm;
use crate::domain::{Amount, Currency, Role, now_ms, rfc3339_ms};
use crate::ledger::settlement::Rate;
use crate::settlements::commission::{self, AgentTree, Step, StepError};
use crate::settlements::revenue::{self, CollectError, CollectRequest};
use crate::settlements::scheduler::{Schedule, period_of};
use crate::state::AppState;
use crate::store::{ClientRow, CollectionRow, UserRow};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateBody {
    rate: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionBody {
    settlement_id: String,
    amount: String,
    /// `collect` (default) or `reverse`.
    direction: Option<String>,
    memo: Option<String>,
    idempotency_key: Option<String>,
}

impl From<StepError> for ApiError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::NotFound => ApiError::not_found("commission"),
            StepError::Illegal { .. } => ApiError::conflict("invalid_transition", e.to_string()),
            StepError::Store(e) => e.into(),
            StepError::Wallet(e) => e.into(),
        }
    }
}

impl From<CollectError> for ApiError {
    fn from(e: CollectError) -> Self {
        match e {
            CollectError::NoSettlement => ApiError::not_found("settlement"),
            CollectError::NotPosted => ApiError::conflict("settlement_pending", e.to_string()),
            CollectError::Exceeds(..) => ApiError::conflict("exceeds_outstanding", e.to_string()),
            CollectError::KeyConflict => ApiError::conflict(
                "idempotency_conflict",
                "this idempotency key was used for another request",
            ),
            CollectError::Store(e) => e.into(),
        }
    }
}

fn require_agent(user: &UserRow) -> Result<(), ApiError> {
    if access::role_of(user)? == Role::Agent {
        Ok(())
    } else {
        Err(ApiError::validation("only agents have a commission rate").with_field("id"))
    }
}

async fn client_of(state: &AppState, user: &UserRow) -> Result<ClientRow, ApiError> {
    let id = user.client_id.as_deref().ok_or_else(ApiError::internal)?;
    Ok(access::client(&state.store, id).await?)
}

fn client_max(settings: &crate::clients::settings::Settings) -> Result<Rate, ApiError> {
    Rate::parse(&settings.commission_rate).ok_or_else(ApiError::internal)
}

async fn rate_view(state: &AppState, user: &UserRow) -> Result<Value, ApiError> {
    let client = client_of(state, user).await?;
    let settings = client_settings::load(state, &client.id).await?;
    let max = client_max(&settings)?;
    let mut tree = AgentTree::load(&state.store, &client.id, max).await?;
    Ok(json!({
        "user_id": user.id,
        "rate": tree.own_rate(&user.id).map(Rate::to_text),
        "effective_rate": tree.effective_rate(&state.store, &user.id).await?.to_text(),
        "client_commission_rate": max.to_text(),
    }))
}

/// `GET /api/v1/users/{id}/commission`: the agent's own rate (null: the client's), and the
/// effective one (capped by its upline and the client's `commission_rate`).
pub async fn get_rate(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = readable_user(&state, &caller, &id).await?;
    require_agent(&user)?;
    Ok(HttpResponse::Ok().json(rate_view(&state, &user).await?))
}

/// `PUT /api/v1/users/{id}/commission` `{"rate"}`: by the agent's parent agent, or a client
/// admin or super admin (`users.manage`); never one's own; at most the parent's effective rate
/// and the client's `commission_rate` (422). Audited `user.commission_rate`.
pub async fn put_rate(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    id: web::Path<String>,
    body: web::Json<RateBody>,
) -> Result<HttpResponse, ApiError> {
    let user = reachable_user(&state, &caller, &id).await?;
    let is_parent =
        caller.role == Role::Agent && user.parent_id.as_deref() == Some(&caller.user_id);
    let is_admin = matches!(caller.role, Role::SuperAdmin | Role::ClientAdmin);
    if !caller.can(perm::USERS_MANAGE) || user.id == caller.user_id || !(is_parent || is_admin) {
        return Err(ApiError::forbidden());
    }
    require_agent(&user)?;
    let rate = Rate::parse(&body.rate).ok_or_else(|| {
        ApiError::validation("rate must be a decimal from 0 to 1 with at most 4 decimals")
            .with_field("rate")
    })?;
    let client = client_of(&state, &user).await?;
    let settings = client_settings::load(&state, &client.id).await?;
    let max = client_max(&settings)?;
    if rate.per_10k() > max.per_10k() {
        return Err(ApiError::validation(format!(
            "rate exceeds the client's commission_rate {}",
            max.to_text()
        ))
        .with_field("rate"));
    }
    let mut tree = AgentTree::load(&state.store, &client.id, max).await?;
    if let Some(parent) = &user.parent_id {
        let parent_row = state.store.user(parent).await?;
        if parent_row.is_some_and(|p| p.role == Role::Agent.as_str()) {
            let cap = tree.effective_rate(&state.store, parent).await?;
            if rate.per_10k() > cap.per_10k() {
                return Err(ApiError::validation(format!(
                    "rate exceeds the parent agent's rate {}",
                    cap.to_text()
                ))
                .with_field("rate"));
            }
        }
    }
    let before = tree.own_rate(&user.id).map(Rate::to_text);
    state
        .store
        .put_agent_rate(
            &user.id,
            &client.id,
            &rate.to_text(),
            &caller.user_id,
            now_ms(),
        )
        .await?;
    Event::new("user.commission_rate")
        .by(&caller)
        .client(Some(&client.id))
        .target("user", &user.id)
        .before(json!({ "rate": before }))
        .after(json!({ "rate": rate.to_text() }))
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(rate_view(&state, &user).await?))
}

/// `GET /api/v1/users/{id}/commission/current`: the agent's commission in the open period
/// (from the end of the client's newest settlement, else the start of the current scheduled
/// period, else the beginning), as a settlement now would compute it.
pub async fn current(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = readable_user(&state, &caller, &id).await?;
    require_agent(&user)?;
    let client = client_of(&state, &user).await?;
    let currency = currency(&client)?;
    let settings = client_settings::load(&state, &client.id).await?;
    let last_end = state
        .store
        .settlements(&client.id, None, 1)
        .await?
        .first()
        .map(|s| s.period_end);
    let scheduled = Schedule::parse(&settings.settlement_schedule)
        .zip(settings.timezone.parse::<chrono_tz::Tz>().ok())
        .map(|(s, tz)| period_of(s, tz, now_ms()).0);
    let start = last_end.or(scheduled).unwrap_or(0);
    let (line, as_of) = commission::current(
        &state.store,
        &client.id,
        &user.id,
        client_max(&settings)?,
        start,
        settings.commission_negative_carryover,
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "agent_id": user.id,
        "period_start": rfc3339_ms(start),
        "as_of": rfc3339_ms(as_of),
        "currency": currency.code,
        "basis": settings.commission_basis,
        "rate": line.rate.to_text(),
        "players": line.players,
        "basis_amount": currency.format(line.basis),
        "earned": currency.format(line.earned),
        "carried_in": currency.format(line.carried_in),
        "amount": currency.format(line.amount),
    })))
}

fn currency(client: &ClientRow) -> Result<Currency, ApiError> {
    client.currency().map_err(|_| ApiError::internal())
}

/// `GET /api/v1/game-sessions/{id}/commission`: what each agent above the session's player
/// earns from the finished session (409 `session_open` while it runs).
pub async fn session(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let session = state
        .store
        .game_session(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("game session"))?;
    // The player's reach decides: another client's session is 404, outside the subtree 403.
    let player = readable_user(&state, &caller, &session.user_id)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::not_found("game session")
            } else {
                e
            }
        })?;
    let Some(ended_at) = session.ended_at else {
        return Err(ApiError::conflict(
            "session_open",
            "the game session has not ended yet",
        ));
    };
    let client = client_of(&state, &player).await?;
    let currency = currency(&client)?;
    let settings = client_settings::load(&state, &client.id).await?;
    let sc =
        commission::session_commission(&state.store, &session, ended_at, client_max(&settings)?)
            .await?;
    Ok(HttpResponse::Ok().json(json!({
        "session_id": session.id,
        "user_id": session.user_id,
        "provider": session.provider,
        "game_code": session.game_code,
        "started_at": rfc3339_ms(session.started_at),
        "ended_at": rfc3339_ms(ended_at),
        "currency": currency.code,
        "basis": "ngr",
        "basis_amount": currency.format(sc.basis),
        "items": sc.shares.iter().map(|(agent, rate, diff, amount)| json!({
            "agent_id": agent,
            "rate": rate.to_text(),
            "differential_rate": Rate::from_per_10k(*diff).map(Rate::to_text),
            "amount": currency.format(*amount),
        })).collect::<Vec<_>>(),
    })))
}

/// Who may approve, hold and pay commission: super admins, and the client's own admins with
/// `wallets.cash` (other client: 404).
fn may_run_commission(caller: &Caller, client_id: &str) -> Result<(), ApiError> {
    access::client_reach(caller, client_id).require("client")?;
    let ok = match caller.role {
        Role::SuperAdmin => caller.can(perm::CLIENTS_MANAGE),
        Role::ClientAdmin => caller.can(perm::WALLETS_CASH),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

async fn run_step(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    path: (String, String, String),
    step: Step,
) -> Result<HttpResponse, ApiError> {
    let (client_id, settlement_id, agent_id) = path;
    may_run_commission(&caller, &client_id)?;
    let client = access::client(&state.store, &client_id).await?;
    let currency = currency(&client)?;
    let line = commission::step(
        &state.store,
        &state.wallets,
        commission::Target {
            client_id: &client.id,
            settlement_id: &settlement_id,
            agent_id: &agent_id,
        },
        step,
        &caller.user_id,
        peer_ip(&req),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "settlement_id": line.settlement_id,
        "agent_id": line.agent_id,
        "status": line.status,
        "amount": currency.format(line.amount),
        "transaction_id": line.journal_id,
    })))
}

/// `POST .../commissions/{agent_id}/approve`: calculated or held → approved.
pub async fn approve(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    run_step(state, req, caller, path.into_inner(), Step::Approve).await
}

/// `POST .../commissions/{agent_id}/hold`: calculated or approved → held.
pub async fn hold(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    run_step(state, req, caller, path.into_inner(), Step::Hold).await
}

/// `POST .../commissions/{agent_id}/pay`: approved → paid (the commission entry, once).
pub async fn pay(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    run_step(state, req, caller, path.into_inner(), Step::Pay).await
}

fn collection_view(c: &CollectionRow, currency: &Currency) -> Value {
    json!({
        "id": c.id,
        "settlement_id": c.settlement_id,
        "direction": c.direction,
        "amount": currency.format(c.amount),
        "currency": currency.code,
        "memo": c.memo,
        "transaction_id": c.journal_id,
        "created_by": c.created_by,
        "created_at": rfc3339_ms(c.created_at),
    })
}

/// `POST /api/v1/clients/{id}/revenue-collections` (platform, `Idempotency-Key`)
/// `{"settlement_id", "amount", "direction"?: "collect"|"reverse", "memo"?}` → 201; the same
/// key again answers the first (201); more than outstanding (or collected): 409
/// `exceeds_outstanding`.
pub async fn collect(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    key: IdempotencyKey,
    id: web::Path<String>,
    body: web::Json<CollectionBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let key = key.or_body(body.idempotency_key)?;
    let client = client_settings::writable(&state, &caller, &id).await?;
    let currency = currency(&client)?;
    let collect = match body.direction.as_deref().unwrap_or("collect") {
        "collect" => true,
        "reverse" => false,
        _ => {
            return Err(ApiError::validation("direction must be collect or reverse")
                .with_field("direction"));
        }
    };
    let exponent = u32::try_from(client.currency_exponent).map_err(|_| ApiError::internal())?;
    let amount = Amount::parse(&body.amount, exponent)
        .map_err(|e| ApiError::validation(format!("amount: {e}")).with_field("amount"))?
        .minor();
    if amount <= 0 {
        return Err(ApiError::validation("amount must be positive").with_field("amount"));
    }
    if body.memo.as_ref().is_some_and(|m| m.chars().count() > 500) {
        return Err(ApiError::validation("memo is at most 500 characters").with_field("memo"));
    }
    let (row, _) = revenue::collect(
        &state.store,
        CollectRequest {
            client: &client,
            settlement_id: &body.settlement_id,
            collect,
            amount,
            memo: body.memo,
            key: format!("{}:{key}", caller.user_id),
            actor_id: &caller.user_id,
            ip: peer_ip(&req),
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(collection_view(&row, &currency)))
}

/// `GET /api/v1/clients/{id}/revenue-statements`: per settlement, newest period first: the
/// platform's share, what was collected (net of reversals), what is outstanding, and the
/// collections themselves.
pub async fn statements(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    page: Page,
) -> Result<HttpResponse, ApiError> {
    let client = super::clients::readable(&state, &caller, &id).await?;
    let currency = currency(&client)?;
    let limit = page.limit()?;
    let rows = state
        .store
        .settlements(&client.id, page.numeric_cursor()?, limit.fetch())
        .await?;
    let mut items = Vec::new();
    for h in rows {
        let Some(s) = state.store.settlement(&client.id, &h.id).await? else {
            continue;
        };
        let collections = state.store.collections(&client.id, Some(&h.id)).await?;
        let collected: i64 = collections
            .iter()
            .map(|c| {
                if c.direction == "collect" {
                    c.amount
                } else {
                    -c.amount
                }
            })
            .sum();
        items.push((
            h.period_start,
            json!({
                "settlement_id": h.id,
                "period_start": rfc3339_ms(h.period_start),
                "period_end": rfc3339_ms(h.period_end),
                "currency": currency.code,
                "ngr": currency.format(h.ngr),
                "revenue_share": currency.format(s.revenue_share.amount),
                "collected": currency.format(collected),
                "outstanding": currency.format(s.revenue_share.amount - collected),
                "collections": collections.iter().map(|c| collection_view(c, &currency)).collect::<Vec<_>>(),
            }),
        ));
    }
    Ok(HttpResponse::Ok().json(limit.page(
        items,
        |(start, _)| start.to_string(),
        |(_, v)| v.clone(),
    )))
}
