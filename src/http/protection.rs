//! Player protection (issue 19): `/api/v1/users/{id}/protection` (limits, time-out and
//! self-exclusion, reality checks), the report `GET /api/v1/protection/events`, and the test
//! hook `POST /api/v1/test/clock`. Only the player changes their own protection; whoever reads
//! the player (their agents, their client's admins) sees it and cannot lift or loosen it.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::audit::{AuditItem, view as audit_view};
use super::error::ApiError;
use super::extract::{Auth, Page};
use super::openapi::{BadBody, Conflict, Invalid, Secured, Unavailable, Unknown};
use super::users::readable_user;
use super::views::Page as PageOf;
use crate::access;
use crate::audit::Event;
use crate::auth::Caller;
use crate::auth::permissions as perm;
use crate::domain::{Amount, Currency, PROVIDER_NAMES, Role, new_id, now_ms, rfc3339_ms};
use crate::ledger::accounts::wallet_id;
use crate::protection::limits::{self, LONGEST_WINDOW_MS, LimitName};
use crate::protection::{
    EXCLUSION_MONTHS, PLAY_GAP_MS, REALITY_CHECK_MINUTES, SELF_EXCLUSION, TIMEOUT, TIMEOUT_HOURS,
    exclusion_of, notices,
};
use crate::providers::Direction;
use crate::state::AppState;
use crate::store::{ClientRow, LimitRow, ProtectionRow, UserRow};
use crate::transfers::TransferRequest;

/// Longest session limit (minutes).
const SESSION_MINUTES_MAX: i64 = 24 * 60;

/// One limit as it stands.
#[derive(Serialize, ToSchema)]
pub struct LimitView {
    #[schema(example = "deposit_daily")]
    name: String,
    /// In force now: a decimal string in the client's currency (minutes for
    /// `session_minutes`); null: no limit.
    value: Option<String>,
    /// A raise or removal waiting for its cooling-off to end.
    pending: bool,
    /// The value it becomes (null: no limit), at `pending_at` (RFC 3339).
    pending_value: Option<String>,
    pending_at: Option<String>,
    /// Used in the limit's rolling window (money limits).
    used: Option<String>,
}

/// A time-out or self-exclusion in force.
#[derive(Serialize, ToSchema)]
pub struct ExclusionView {
    /// `timeout` or `self_exclusion`
    kind: String,
    /// RFC 3339
    since: String,
    /// RFC 3339; null: permanent
    until: Option<String>,
    permanent: bool,
}

/// A player's protection.
#[derive(Serialize, ToSchema)]
pub struct ProtectionView {
    user_id: String,
    limits: Vec<LimitView>,
    exclusion: Option<ExclusionView>,
    reality_check_minutes: Option<i64>,
    /// The open play session's start (RFC 3339), if one is open.
    play_session_started_at: Option<String>,
    /// Hours a raise waits (the client's `limit_raise_cooloff_hours`).
    cooloff_hours: u32,
}

fn format_value(name: LimitName, v: Option<i64>, currency: &Currency) -> Option<String> {
    v.map(|v| {
        if name.is_money() {
            currency.format(v)
        } else {
            v.to_string()
        }
    })
}

async fn view(
    state: &AppState,
    user: &UserRow,
    currency: &Currency,
) -> Result<ProtectionView, ApiError> {
    let protection = state.wallets.protection();
    let now = protection.now_ms();
    let row = state.store.player_protection(&user.id).await?;
    let rows = state.store.player_limits(&user.id).await?;
    let flows = if rows.is_empty() {
        Vec::new()
    } else {
        state
            .store
            .wallet_flows(&wallet_id(&user.id), now - LONGEST_WINDOW_MS)
            .await?
    };
    let limits = rows
        .iter()
        .filter_map(|r| {
            let name = r.name.parse::<LimitName>().ok()?;
            let value = limits::effective(r, now);
            let pending = r.pending_set && r.pending_at.is_some_and(|at| at > now);
            let used = name.window_ms().map(|w| {
                currency.format(limits::usage(&flows, name.measure(), w, now).used.max(0))
            });
            Some(LimitView {
                name: name.as_str().to_owned(),
                value: format_value(name, value, currency),
                pending,
                pending_value: pending
                    .then(|| format_value(name, r.pending_value, currency))
                    .flatten(),
                pending_at: pending.then(|| r.pending_at.map(rfc3339_ms)).flatten(),
                used,
            })
        })
        .collect();
    let settings =
        crate::clients::settings::load(&state.store, user.client_id.as_deref().unwrap_or_default())
            .await?;
    let exclusion = row.as_ref().and_then(|r| exclusion_of(r, now));
    Ok(ProtectionView {
        user_id: user.id.clone(),
        limits,
        exclusion: exclusion.map(|e| ExclusionView {
            kind: e.kind,
            since: rfc3339_ms(e.since),
            until: e.until.map(rfc3339_ms),
            permanent: e.until.is_none(),
        }),
        reality_check_minutes: row.as_ref().and_then(|r| r.reality_check_minutes),
        play_session_started_at: row
            .as_ref()
            .filter(|r| r.play_last_at.is_some_and(|l| l >= now - PLAY_GAP_MS))
            .and_then(|r| r.play_started_at.map(rfc3339_ms)),
        cooloff_hours: settings.limit_raise_cooloff_hours,
    })
}

/// The player themself (only they change their protection); anyone else who reads them: 403.
async fn own_player(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(UserRow, ClientRow, Currency), ApiError> {
    let user = readable_user(state, caller, id).await?;
    if user.id != caller.user_id || user.role != Role::Player {
        return Err(ApiError::forbidden());
    }
    let (client, currency) = access::wallet_client(&state.store, &user).await?;
    Ok((user, client, currency))
}

/// A player's limits, exclusion and reality checks
///
/// The player, their agents and their client's admins read it; no one but the player
/// changes it, and no one lifts an exclusion early.
#[utoipa::path(get, path = "/api/v1/users/{id}/protection", tag = "protection",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = ProtectionView),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn get(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = readable_user(&state, &caller, &id).await?;
    if user.role != Role::Player {
        return Err(ApiError::not_found("player protection"));
    }
    let (_, currency) = access::wallet_client(&state.store, &user).await?;
    Ok(HttpResponse::Ok().json(view(&state, &user, &currency).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitBody {
    /// A decimal string in the client's currency (whole minutes for `session_minutes`, 1 to
    /// 1440); null or absent: no limit. Lower applies at once, higher (or none) after the
    /// client's cooling-off.
    #[schema(example = "100.00")]
    value: Option<String>,
}

/// Set, lower, raise or remove one of the caller's own limits
///
/// Names: `deposit_daily|weekly|monthly`, `loss_daily|weekly|monthly`,
/// `wager_daily|weekly|monthly` (rolling 24 h, 7 and 30 days), `session_minutes`. Lowering
/// applies at once; raising or removing waits `limit_raise_cooloff_hours` (24 by default).
#[utoipa::path(put, path = "/api/v1/users/{id}/protection/limits/{name}", tag = "protection",
    security(("bearer" = [])), request_body = LimitBody,
    responses(
        (status = 200, description = "success", body = ProtectionView),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn set_limit(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
    body: web::Json<LimitBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    let (user, client, currency) = own_player(&state, &caller, &id).await?;
    let name = name.parse::<LimitName>().map_err(|_| {
        ApiError::not_found("limit").with_field(format!("one of {}", LimitName::NAMES.join(", ")))
    })?;
    let value = match body.into_inner().value.as_deref().map(str::trim) {
        None => None,
        Some(text) if name.is_money() => Some(
            Amount::parse(text, currency.exponent)
                .map_err(|e| ApiError::validation(format!("value: {e}")).with_field("value"))?
                .minor(),
        ),
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|m| (1..=SESSION_MINUTES_MAX).contains(m))
                .ok_or_else(|| {
                    ApiError::validation("value: whole minutes, 1 to 1440").with_field("value")
                })?,
        ),
    };
    if value.is_some_and(|v| v < 0) {
        return Err(ApiError::validation("value must not be negative").with_field("value"));
    }
    let settings = crate::clients::settings::load(&state.store, &client.id).await?;
    let cooloff_ms = i64::from(settings.limit_raise_cooloff_hours) * 3_600_000;
    let now = state.wallets.protection().now_ms();
    let (old, new) = state
        .store
        .change_limit(&user.id, &client.id, name.as_str(), now, |old| {
            limits::change(old, name, value, now, cooloff_ms)
        })
        .await?;
    let describe = |r: &LimitRow| {
        json!({
            "value": format_value(name, r.current_value, &currency),
            "pending_value": r.pending_set.then(|| format_value(name, r.pending_value, &currency)),
            "pending_at": r.pending_at.map(rfc3339_ms),
        })
    };
    Event::new("protection.limit_changed")
        .by(&caller)
        .target("user", &user.id)
        .before(old.as_ref().map(describe).unwrap_or(serde_json::Value::Null))
        .after(json!({ "limit": name.as_str(), "requested": format_value(name, value, &currency), "stored": describe(&new) }))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(view(&state, &user, &currency).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExclusionBody {
    /// `timeout` (with `hours`, 24 to 1008: up to 6 weeks) or `self_exclusion` (with
    /// `months`, 6 to 60, or `permanent: true`)
    #[schema(example = "timeout")]
    kind: String,
    hours: Option<i64>,
    months: Option<i64>,
    permanent: Option<bool>,
}

/// What an exclusion did to the player's play.
#[derive(Serialize, ToSchema)]
pub struct ExclusionResult {
    protection: ProtectionView,
    /// Game sessions ended.
    sessions_ended: u64,
    /// Per provider: what was brought back to the wallet, or why not.
    providers: Vec<ProviderClosed>,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderClosed {
    provider: String,
    /// Decimal string brought back (`0` when nothing was there).
    transferred_out: Option<String>,
    /// `succeeded`, `pending`, `unknown`; absent when nothing moved.
    state: Option<String>,
    error: Option<String>,
}

/// Take a time-out or self-exclude (the caller, a player); cannot be lifted early
///
/// Blocks logging in, deposits, transfers to providers and game launches until it ends
/// (permanent: never), ends every session and game session, brings back what the player holds
/// at each provider, and stops marketing. A new one may only extend the one in force (409
/// `exclusion_active` otherwise).
#[utoipa::path(post, path = "/api/v1/users/{id}/protection/exclusion", tag = "protection",
    security(("bearer" = [])), request_body = ExclusionBody,
    responses(
        (status = 200, description = "in force", body = ExclusionResult),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn exclude(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    body: web::Json<ExclusionBody>,
) -> Result<HttpResponse, ApiError> {
    let (user, client, currency) = own_player(&state, &caller, &id).await?;
    let body = body.into_inner();
    let now = state.wallets.protection().now_ms();
    let until = exclusion_end(&body, now)?;
    let kind = body.kind.clone();
    let (old, new) = state
        .store
        .change_protection(&user.id, &client.id, now, |old| {
            let active = exclusion_of(old, now);
            let longer = match (active.as_ref().map(|a| a.until), until) {
                (None, _) => true,
                (Some(None), _) => false,
                (Some(Some(_)), None) => true,
                (Some(Some(a)), Some(b)) => b >= a,
            };
            longer.then(|| ProtectionRow {
                exclusion_kind: Some(kind.clone()),
                excluded_at: Some(active.map_or(now, |a| a.since)),
                excluded_until: until,
                updated_at: now,
                ..old.clone()
            })
        })
        .await?;
    if new.is_none() {
        return Err(ApiError::conflict(
            "exclusion_active",
            "an exclusion in force cannot be shortened or lifted early",
        ));
    }
    Event::new("protection.exclusion_started")
        .by(&caller)
        .target("user", &user.id)
        .before(json!({ "kind": old.exclusion_kind, "until": old.excluded_until.map(rfc3339_ms) }))
        .after(json!({ "kind": body.kind, "until": until.map(rfc3339_ms), "permanent": until.is_none() }))
        .record(&state.store)
        .await?;
    let (sessions_ended, providers) = close_play(&state, &user, &client, &currency).await?;
    notices::exclusion_confirmed(&state.store, &client.id, &user.id, &body.kind, until).await?;
    let protection = view(&state, &user, &currency).await?;
    Ok(HttpResponse::Ok().json(ExclusionResult {
        protection,
        sessions_ended,
        providers,
    }))
}

fn exclusion_end(body: &ExclusionBody, now: i64) -> Result<Option<i64>, ApiError> {
    let start = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
    match (body.kind.as_str(), body.hours, body.months, body.permanent) {
        (TIMEOUT, Some(h), None, None | Some(false)) if TIMEOUT_HOURS.contains(&h) => {
            Ok(Some(now + h * 3_600_000))
        }
        (SELF_EXCLUSION, None, None, Some(true)) => Ok(None),
        (SELF_EXCLUSION, None, Some(m), None | Some(false)) if EXCLUSION_MONTHS.contains(&m) => {
            let end = start + chrono::Months::new(m as u32);
            Ok(Some(end.timestamp_millis()))
        }
        _ => Err(ApiError::validation(
            "kind timeout with hours 24 to 1008, or kind self_exclusion with months 6 to 60 or permanent: true",
        )),
    }
}

/// Ends the excluded player's sessions (they are logged out), game sessions, and brings back
/// what they hold at each provider (a provider that cannot answer keeps it; the answer says so).
async fn close_play(
    state: &AppState,
    user: &UserRow,
    client: &ClientRow,
    currency: &Currency,
) -> Result<(u64, Vec<ProviderClosed>), ApiError> {
    state.store.revoke_user_sessions(&user.id).await?;
    let mut ended = 0;
    let mut closed = Vec::new();
    for provider in PROVIDER_NAMES {
        ended += state
            .store
            .end_player_sessions(&client.id, &user.id, provider, "protection", now_ms())
            .await?;
        if state.providers.account_for(client, provider).await.is_err() {
            continue;
        }
        let mut item = ProviderClosed {
            provider: (*provider).to_owned(),
            transferred_out: None,
            state: None,
            error: None,
        };
        match state
            .providers
            .balance(client, currency, &user.id, provider)
            .await
        {
            Ok(0) => item.transferred_out = Some(currency.format(0)),
            Ok(held) => {
                let moved = state
                    .providers
                    .transfer(TransferRequest {
                        client: client.clone(),
                        currency: currency.clone(),
                        user_id: user.id.clone(),
                        actor_id: user.id.clone(),
                        idempotency_key: format!("exclusion:{}", new_id()),
                        provider: (*provider).to_owned(),
                        direction: Direction::Out,
                        amount: Amount::from_minor(held)?,
                    })
                    .await;
                match moved {
                    Ok(s) => {
                        item.transferred_out = Some(currency.format(held));
                        item.state = Some(s.state.as_str().to_owned());
                    }
                    Err(e) => item.error = Some(e.to_string()),
                }
            }
            Err(e) => item.error = Some(e.to_string()),
        }
        Event::new("protection.provider_closed")
            .client(Some(&client.id))
            .target("user", &user.id)
            .after(json!({ "provider": item.provider, "transferred_out": item.transferred_out, "state": item.state, "error": item.error }))
            .record(&state.store)
            .await?;
        closed.push(item);
    }
    Ok((ended, closed))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RealityCheckBody {
    /// Minutes between reality checks while playing, 5 to 240; null: off
    #[schema(example = 30)]
    minutes: Option<i64>,
}

/// Turn the caller's reality checks on or off
///
/// While a play session is open (a transfer-in in the last 30 minutes) the player's websocket
/// gets a `reality_check` frame every `minutes`, with the time played and the net result.
#[utoipa::path(put, path = "/api/v1/users/{id}/protection/reality-check", tag = "protection",
    security(("bearer" = [])), request_body = RealityCheckBody,
    responses(
        (status = 200, description = "success", body = ProtectionView),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn set_reality_check(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    body: web::Json<RealityCheckBody>,
) -> Result<HttpResponse, ApiError> {
    let (user, client, currency) = own_player(&state, &caller, &id).await?;
    let minutes = body.minutes;
    if minutes.is_some_and(|m| !REALITY_CHECK_MINUTES.contains(&m)) {
        return Err(ApiError::validation("minutes must be 5 to 240, or null").with_field("minutes"));
    }
    let now = state.wallets.protection().now_ms();
    let (old, _) = state
        .store
        .change_protection(&user.id, &client.id, now, |old| {
            Some(ProtectionRow {
                reality_check_minutes: minutes,
                updated_at: now,
                ..old.clone()
            })
        })
        .await?;
    Event::new("protection.reality_check_set")
        .by(&caller)
        .target("user", &user.id)
        .before(json!({ "minutes": old.reality_check_minutes }))
        .after(json!({ "minutes": minutes }))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(view(&state, &user, &currency).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Super admins: one client's events.
    client_id: Option<String>,
    /// One player's events.
    user_id: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<i64>,
}

/// Responsible-gaming report: limit changes, exclusions, refusals, reality checks
///
/// The `protection.*` rows of the audit chain, newest first; a client's admins see their
/// client's, super admins every client's (or one).
#[utoipa::path(get, path = "/api/v1/protection/events", tag = "protection",
    security(("bearer" = [])), params(EventsQuery),
    responses(
        (status = 200, description = "success", body = PageOf<AuditItem>),
        Secured, Invalid, Unavailable,
    ))]
pub async fn events(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    q: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    if !caller.can(perm::AUDIT_READ) {
        return Err(ApiError::forbidden());
    }
    let page = Page::new(q.cursor.clone(), q.limit);
    let limit = page.limit()?;
    let client_id = access::listed_client(&caller, q.client_id.as_deref())?;
    if caller.role != Role::SuperAdmin && client_id.is_none() {
        return Err(ApiError::forbidden());
    }
    let rows = state
        .store
        .audit_page_prefix(
            client_id.as_deref(),
            q.user_id.as_deref(),
            page.numeric_cursor()?,
            "protection.",
            limit.fetch(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(limit.page(rows, |r| r.seq.to_string(), audit_view)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockBody {
    /// Seconds to move this hub's protection clock forward (1 to 10 years' worth).
    advance_secs: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ClockView {
    /// The protection clock's time now (RFC 3339).
    now: String,
}

/// Tests only: move the protection clock forward (super admin; 404 unless `test_clock`)
#[utoipa::path(post, path = "/api/v1/test/clock", tag = "protection",
    security(("bearer" = [])), request_body = ClockBody,
    responses(
        (status = 200, description = "moved", body = ClockView),
        Secured, Unknown, Invalid, BadBody,
    ))]
pub async fn test_clock(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    body: web::Json<ClockBody>,
) -> Result<HttpResponse, ApiError> {
    if !state.config.settings.test_clock {
        return Err(ApiError::not_found("route"));
    }
    if caller.role != Role::SuperAdmin {
        return Err(ApiError::forbidden());
    }
    if !(1..=10 * 366 * 86_400).contains(&body.advance_secs) {
        return Err(ApiError::validation("advance_secs must be positive"));
    }
    let clock = state.wallets.protection().clock();
    clock.advance(body.advance_secs * 1000);
    Ok(HttpResponse::Ok().json(ClockView {
        now: rfc3339_ms(clock.now_ms()),
    }))
}
