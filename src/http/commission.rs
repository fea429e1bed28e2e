//! Issue 21 endpoints: agents' commission rates (`/users/{id}/commission`), an agent's running
//! commission (`/users/{id}/commission/current`), what a finished game session earns each agent
//! above its player (`/game-sessions/{id}/commission`), operators' steps on a commission line
//! (`/clients/{id}/settlements/{sid}/commissions/{agent}/approve|hold|pay`) and the platform's
//! revenue collections and statements (`/clients/{id}/revenue-collections`,
//! `/revenue-statements`). Rules live in `settlements::{commission, revenue}`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::auth::peer_ip;
use super::client_settings;
use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, IdempotencyKey, Page};
use super::openapi::{BadBody, Conflict, Invalid, Secured, Unavailable, Unknown};
use super::users::{reachable_user, readable_user};
use super::views::Page as PageOf;
use crate::access;
use crate::audit::Event;
use crate::auth::Caller;
use crate::auth::permissions as perm;
use crate::domain::{Amount, Currency, Role, now_ms, rfc3339_ms};
use crate::ledger::settlement::{Basis, Rate};
use crate::settlements::commission::{self, AgentTree, Step, StepError};
use crate::settlements::revenue::{self, CollectError, CollectRequest};
use crate::settlements::scheduler::{Schedule, period_of};
use crate::state::AppState;
use crate::store::{ClientRow, CollectionRow, UserRow};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateBody {
    /// 0 to 1, at most 4 decimals
    #[schema(example = "0.0300")]
    rate: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionBody {
    settlement_id: String,
    /// decimal string, positive
    amount: String,
    /// collect (default) or reverse
    #[schema(pattern = "^(collect|reverse)$", example = "collect")]
    direction: Option<String>,
    #[schema(max_length = 500)]
    memo: Option<String>,
    /// The key may come in the body instead of the `Idempotency-Key` header: 1 to 128
    /// printable ASCII characters (both: they must agree).
    #[schema(min_length = 1, max_length = 128, pattern = "^[\\x21-\\x7E]+$")]
    idempotency_key: Option<String>,
}

/// An agent's own and effective commission rate.
#[derive(Serialize, ToSchema)]
#[schema(as = CommissionRate)]
pub struct RateView {
    user_id: String,
    /// the agent's own rate; null: the client's commission_rate
    rate: Option<String>,
    /// the own rate capped by every agent above and the client's commission_rate
    effective_rate: String,
    client_commission_rate: String,
}

/// An agent's commission in the open period, as a settlement now would compute it.
#[derive(Serialize, ToSchema)]
pub struct CurrentCommission {
    agent_id: String,
    /// RFC 3339
    period_start: String,
    /// RFC 3339
    as_of: String,
    currency: String,
    /// ngr, or turnover (the players' stakes)
    #[schema(pattern = "^(ngr|turnover)$", example = "ngr")]
    basis: String,
    rate: String,
    players: i64,
    /// decimal string
    basis_amount: String,
    /// decimal string
    earned: String,
    /// decimal string
    carried_in: String,
    /// decimal string
    amount: String,
}

/// What each agent above a finished game session's player earns from it.
#[derive(Serialize, ToSchema)]
pub struct SessionCommission {
    session_id: String,
    user_id: String,
    provider: String,
    game_code: String,
    /// RFC 3339
    started_at: String,
    /// RFC 3339
    ended_at: String,
    currency: String,
    /// ngr, or turnover (the players' stakes)
    #[schema(pattern = "^(ngr|turnover)$", example = "ngr")]
    basis: String,
    /// decimal string
    basis_amount: String,
    /// nearest agent first
    items: Vec<SessionShare>,
}

/// One agent's share of a game session.
#[derive(Serialize, ToSchema)]
pub struct SessionShare {
    agent_id: String,
    rate: String,
    /// the agent's rate less the rate of the agent below it
    differential_rate: Option<String>,
    /// decimal string
    amount: String,
}

/// A commission line after an operator's step.
#[derive(Serialize, ToSchema)]
#[schema(as = CommissionLineStatus)]
pub struct LineStatus {
    settlement_id: String,
    agent_id: String,
    #[schema(pattern = "^(calculated|approved|held|paid)$", example = "approved")]
    status: String,
    /// decimal string
    amount: String,
    transaction_id: Option<String>,
}

/// A collection of a settlement's revenue share by the platform, or its reversal.
#[derive(Serialize, ToSchema, Clone)]
pub struct RevenueCollection {
    id: String,
    settlement_id: String,
    #[schema(pattern = "^(collect|reverse)$", example = "collect")]
    direction: String,
    /// decimal string
    amount: String,
    currency: String,
    memo: Option<String>,
    transaction_id: Option<String>,
    created_by: String,
    /// RFC 3339
    created_at: String,
}

/// One settlement's revenue share: collected (net of reversals), outstanding, collections.
#[derive(Serialize, ToSchema, Clone)]
pub struct RevenueStatement {
    settlement_id: String,
    /// RFC 3339
    period_start: String,
    /// RFC 3339
    period_end: String,
    currency: String,
    /// decimal string
    ngr: String,
    /// decimal string
    revenue_share: String,
    /// decimal string
    collected: String,
    /// decimal string
    outstanding: String,
    collections: Vec<RevenueCollection>,
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
    if user.role == Role::Agent {
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

fn basis(settings: &crate::clients::settings::Settings) -> Result<Basis, ApiError> {
    settings.basis().ok_or_else(ApiError::internal)
}

async fn rate_view(state: &AppState, user: &UserRow) -> Result<RateView, ApiError> {
    let client = client_of(state, user).await?;
    let settings = crate::clients::settings::load(&state.store, &client.id).await?;
    let max = client_max(&settings)?;
    let mut tree = AgentTree::load(&state.store, &client.id, max).await?;
    Ok(RateView {
        user_id: user.id.clone(),
        rate: tree.own_rate(&user.id).map(Rate::to_text),
        effective_rate: tree.effective_rate(&state.store, &user.id).await?.to_text(),
        client_commission_rate: max.to_text(),
    })
}

/// An agent's own and effective commission rate
///
/// The agent's own rate (null: the client's), and the effective one (capped by its upline and
/// the client's `commission_rate`); 422 for a user who is not an agent.
#[utoipa::path(get, path = "/api/v1/users/{id}/commission", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = RateView),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn get_rate(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = readable_user(&state, &caller, &id).await?;
    require_agent(&user)?;
    Ok(HttpResponse::Ok().json(rate_view(&state, &user).await?))
}

/// Set an agent's commission rate (its parent agent, or the client's admins; at most the parent's and the client's rate; audited)
///
/// By the agent's parent agent, or a client admin or super admin (`users.manage`); never one's
/// own; at most the parent's effective rate and the client's `commission_rate` (422). Audited
/// `user.commission_rate`.
#[utoipa::path(put, path = "/api/v1/users/{id}/commission", tag = "users",
    security(("bearer" = [])), request_body = RateBody,
    responses(
        (status = 200, description = "success", body = RateView),
        Secured, Unknown, Invalid, BadBody, Unavailable,
    ))]
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
    let settings = crate::clients::settings::load(&state.store, &client.id).await?;
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
        if parent_row.is_some_and(|p| p.role == Role::Agent) {
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

/// An agent's running commission in the open period
///
/// From the end of the client's newest settlement, else the start of the current scheduled
/// period, else the beginning; as a settlement now would compute it.
#[utoipa::path(get, path = "/api/v1/users/{id}/commission/current", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = CurrentCommission),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn current(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = readable_user(&state, &caller, &id).await?;
    require_agent(&user)?;
    let client = client_of(&state, &user).await?;
    let currency = client.currency.clone();
    let settings = crate::clients::settings::load(&state.store, &client.id).await?;
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
        basis(&settings)?,
        start,
        settings.commission_negative_carryover,
    )
    .await?;
    Ok(HttpResponse::Ok().json(CurrentCommission {
        agent_id: user.id.clone(),
        period_start: rfc3339_ms(start),
        as_of: rfc3339_ms(as_of),
        currency: currency.code.clone(),
        basis: settings.commission_basis.clone(),
        rate: line.rate.to_text(),
        players: line.players,
        basis_amount: currency.format(line.basis),
        earned: currency.format(line.earned),
        carried_in: currency.format(line.carried_in),
        amount: currency.format(line.amount),
    }))
}

/// What each agent above the player earns from a finished game session (409 session_open)
///
/// The session's player decides the reach: another client's session is 404, one outside the
/// caller's subtree 403.
#[utoipa::path(get, path = "/api/v1/game-sessions/{id}/commission", tag = "settlements",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = SessionCommission),
        (status = 409, description = "the game session has not ended yet (session_open)", body = ErrorBody),
        Secured, Unknown, Invalid, Unavailable,
    ))]
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
    let currency = client.currency.clone();
    let settings = crate::clients::settings::load(&state.store, &client.id).await?;
    let basis = basis(&settings)?;
    let sc = commission::session_commission(
        &state.store,
        &session,
        ended_at,
        client_max(&settings)?,
        basis,
    )
    .await?;
    Ok(HttpResponse::Ok().json(SessionCommission {
        session_id: session.id.clone(),
        user_id: session.user_id.clone(),
        provider: session.provider.clone(),
        game_code: session.game_code.clone(),
        started_at: rfc3339_ms(session.started_at),
        ended_at: rfc3339_ms(ended_at),
        currency: currency.code.clone(),
        basis: basis.as_str().into(),
        basis_amount: currency.format(sc.basis),
        items: sc
            .shares
            .iter()
            .map(|(agent, rate, diff, amount)| SessionShare {
                agent_id: agent.clone(),
                rate: rate.to_text(),
                differential_rate: Rate::from_per_10k(*diff).map(Rate::to_text),
                amount: currency.format(*amount),
            })
            .collect(),
    }))
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
    let currency = client.currency.clone();
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
    Ok(HttpResponse::Ok().json(LineStatus {
        settlement_id: line.settlement_id,
        agent_id: line.agent_id,
        status: line.status,
        amount: currency.format(line.amount),
        transaction_id: line.journal_id,
    }))
}

/// Approve a commission line: calculated or held → approved (super admins; the client's admins with wallets.cash; 409 invalid_transition)
#[utoipa::path(post,
    path = "/api/v1/clients/{id}/settlements/{settlement_id}/commissions/{agent_id}/approve",
    tag = "settlements", security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = LineStatus),
        Secured, Unknown, Invalid, Conflict, Unavailable,
    ))]
pub async fn approve(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    run_step(state, req, caller, path.into_inner(), Step::Approve).await
}

/// Hold a commission line: calculated or approved → held (409 invalid_transition once paid)
#[utoipa::path(post,
    path = "/api/v1/clients/{id}/settlements/{settlement_id}/commissions/{agent_id}/hold",
    tag = "settlements", security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = LineStatus),
        Secured, Unknown, Invalid, Conflict, Unavailable,
    ))]
pub async fn hold(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    run_step(state, req, caller, path.into_inner(), Step::Hold).await
}

/// Pay an approved commission line into the agent's wallet, once (paying again answers the paid line; 409 invalid_transition unless approved)
///
/// approved → paid: the commission entry through the agent's wallet, keyed by the settlement
/// and the agent, so it is posted once.
#[utoipa::path(post,
    path = "/api/v1/clients/{id}/settlements/{settlement_id}/commissions/{agent_id}/pay",
    tag = "settlements", security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = LineStatus),
        Secured, Unknown, Invalid, Conflict, Unavailable,
    ))]
pub async fn pay(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    run_step(state, req, caller, path.into_inner(), Step::Pay).await
}

fn collection_view(c: &CollectionRow, currency: &Currency) -> RevenueCollection {
    RevenueCollection {
        id: c.id.clone(),
        settlement_id: c.settlement_id.clone(),
        direction: c.direction.clone(),
        amount: currency.format(c.amount),
        currency: currency.code.clone(),
        memo: c.memo.clone(),
        transaction_id: c.journal_id.clone(),
        created_by: c.created_by.clone(),
        created_at: rfc3339_ms(c.created_at),
    }
}

/// Record the platform's collection of a settlement's revenue share, or its reversal (platform; 409 exceeds_outstanding)
///
/// 201; the same key again answers the first (201); more than outstanding (or, reversing, than
/// collected): 409 `exceeds_outstanding`; a settlement not yet posted: 409
/// `settlement_pending`.
#[utoipa::path(post, path = "/api/v1/clients/{id}/revenue-collections", tag = "settlements",
    security(("bearer" = [])), params(IdempotencyKey), request_body = CollectionBody,
    responses(
        (status = 201, description = "success", body = RevenueCollection),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
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
    let currency = client.currency.clone();
    let collect = match body.direction.as_deref().unwrap_or("collect") {
        "collect" => true,
        "reverse" => false,
        _ => {
            return Err(ApiError::validation("direction must be collect or reverse")
                .with_field("direction"));
        }
    };
    let amount = Amount::parse(&body.amount, currency.exponent)
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

/// Per settlement, newest period first: the platform's share, collected, outstanding, and the collections
///
/// Collected is net of reversals. `cursor` is the previous page's `next_cursor`.
#[utoipa::path(get, path = "/api/v1/clients/{id}/revenue-statements", tag = "settlements",
    security(("bearer" = [])), params(Page),
    responses(
        (status = 200, description = "success", body = PageOf<RevenueStatement>),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn statements(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    page: Page,
) -> Result<HttpResponse, ApiError> {
    let client = super::clients::readable(&state, &caller, &id).await?;
    let currency = client.currency.clone();
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
            RevenueStatement {
                settlement_id: h.id.clone(),
                period_start: rfc3339_ms(h.period_start),
                period_end: rfc3339_ms(h.period_end),
                currency: currency.code.clone(),
                ngr: currency.format(h.ngr),
                revenue_share: currency.format(s.revenue_share.amount),
                collected: currency.format(collected),
                outstanding: currency.format(s.revenue_share.amount - collected),
                collections: collections
                    .iter()
                    .map(|c| collection_view(c, &currency))
                    .collect(),
            },
        ));
    }
    Ok(HttpResponse::Ok().json(limit.page(
        items,
        |(start, _)| start.to_string(),
        |(_, v)| v.clone(),
    )))
}
