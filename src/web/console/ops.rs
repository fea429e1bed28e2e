//! The platform's operations pages (super admins): provider health (each account's circuit
//! breaker and calls in flight on this node, transfers per provider and state, the open ones
//! the reconciler has not finished) and system status (version, database, bus, uptime, node,
//! queue depths). Everything read here is what the hub already keeps: the providers' rows
//! through the API's handler, the accounts' breakers (`Providers::account_health`), and the
//! same store queries the reconcilers and the dispatcher run.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde_json::Value;

use crate::domain::{Role, TransferState, now_ms, rfc3339_ms};
use crate::providers::breaker::BreakerState;
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{self, Chrome};
use crate::web::{WebCaller, api};

/// Open transfers untouched this long are listed as stuck.
const STUCK_AFTER_MS: i64 = 60_000;
/// Most stuck transfers listed, and most open rows counted per queue (the reconcilers' batch).
const LISTED_MAX: i64 = 50;
const COUNTED_MAX: i64 = 200;

/// When this process first mounted the pages (start-up): the status page's uptime.
static STARTED: OnceLock<Instant> = OnceLock::new();

/// Marks the start (called when the pages are mounted).
pub fn mark_start() {
    STARTED.get_or_init(Instant::now);
}

fn platform_only(caller: &WebCaller) -> Result<(), WebError> {
    if caller.caller.role == Role::SuperAdmin {
        Ok(())
    } else {
        Err(WebError::Forbidden)
    }
}

fn breaker_name(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::HalfOpen => "half_open",
        BreakerState::Open => "open",
    }
}

pub struct AccountLine {
    pub account: String,
    pub provider: String,
    pub breaker: &'static str,
    pub in_flight: String,
    pub own: bool,
}

pub struct ProviderLine {
    pub code: String,
    pub name: String,
    pub status: String,
    /// transfers per state: pending, unknown, succeeded, failed
    pub counts: [i64; 4],
}

pub struct StuckLine {
    pub id: String,
    pub provider: String,
    pub state: String,
    pub direction: String,
    pub attempts: i64,
    pub updated_at: String,
    pub last_error: String,
}

#[derive(Template)]
#[template(path = "console/providers.html")]
struct ProvidersPage {
    chrome: Chrome,
    providers: Vec<ProviderLine>,
    accounts: Vec<AccountLine>,
    stuck: Vec<StuckLine>,
    backlog: String,
    stuck_minutes: i64,
}

/// The reconciler's wait before it takes an open transfer (as `startup` starts it).
fn reconcile_cutoff(state: &AppState) -> i64 {
    let interval = state.config.settings.provider_reconcile_interval_ms.max(10);
    now_ms() - (interval * 2) as i64
}

/// `n`, or `n+` when the count stopped at the batch size.
fn capped(n: usize) -> String {
    if n as i64 >= COUNTED_MAX {
        format!("{n}+")
    } else {
        n.to_string()
    }
}

/// Provider health (super admin): breakers, transfers in flight and stuck, reconciler backlog
#[utoipa::path(get, path = "/console/providers", tag = "console",
    responses(
        (status = 200, description = "provider health", content_type = "text/html", body = String),
        (status = 303, description = "no session: to the login page"),
        (status = 403, description = "not a super admin", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn providers(
    state: web::Data<AppState>,
    caller: WebCaller,
) -> Result<HttpResponse, WebError> {
    platform_only(&caller)?;
    let chrome = super::home::chrome(&state, &caller, "nav.providers", "/providers")?;
    let rows = api::answer(crate::http::provider_admin::list(state.clone(), caller.auth()).await)?;
    let counts = state.store.count_transfers_by_state().await?;
    let count = |provider: &str, s: TransferState| {
        counts
            .iter()
            .filter(|(p, st, _)| p == provider && *st == s)
            .map(|(_, _, n)| *n)
            .sum::<i64>()
    };
    let providers = rows["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or("").to_owned();
            let code = s("code");
            ProviderLine {
                counts: [
                    count(&code, TransferState::Pending),
                    count(&code, TransferState::Unknown),
                    count(&code, TransferState::Succeeded),
                    count(&code, TransferState::Failed),
                ],
                code,
                name: s("name"),
                status: s("status"),
            }
        })
        .collect();
    let accounts = state
        .providers
        .account_health()
        .into_iter()
        .map(|a| AccountLine {
            account: a.account,
            provider: a.provider,
            breaker: breaker_name(a.breaker),
            in_flight: format!("{} / {}", a.calls_in_flight, a.max_in_flight),
            own: a.own,
        })
        .collect();
    let backlog = state
        .store
        .open_transfers(reconcile_cutoff(&state), COUNTED_MAX)
        .await?
        .len();
    let stuck = state
        .store
        .open_transfers(now_ms() - STUCK_AFTER_MS, LISTED_MAX)
        .await?
        .into_iter()
        .map(|r| StuckLine {
            id: r.id,
            provider: r.provider,
            state: r.state.to_string(),
            direction: r.direction.to_string(),
            attempts: r.attempts,
            updated_at: rfc3339_ms(r.updated_at),
            last_error: r.last_error.unwrap_or_default(),
        })
        .collect();
    page::render(&ProvidersPage {
        chrome,
        providers,
        accounts,
        stuck,
        backlog: capped(backlog),
        stuck_minutes: STUCK_AFTER_MS / 60_000,
    })
}

#[derive(Template)]
#[template(path = "console/system.html")]
struct SystemPage {
    chrome: Chrome,
    version: &'static str,
    database: &'static str,
    database_ok: bool,
    bus: &'static str,
    bus_ok: bool,
    uptime: String,
    node: String,
    /// `(label key, value)`
    queues: Vec<(&'static str, String)>,
}

fn uptime() -> String {
    let secs = STARTED.get().map_or(0, |s| s.elapsed().as_secs());
    format!(
        "{}d {:02}:{:02}:{:02}",
        secs / 86_400,
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

/// System status (super admin): version, database, bus, uptime, node, queue depths
#[utoipa::path(get, path = "/console/system", tag = "console",
    responses(
        (status = 200, description = "system status", content_type = "text/html", body = String),
        (status = 303, description = "no session: to the login page"),
        (status = 403, description = "not a super admin", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn system(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: WebCaller,
) -> Result<HttpResponse, WebError> {
    platform_only(&caller)?;
    let chrome = super::home::chrome(&state, &caller, "nav.system", "/system")?;
    // `/ready`'s own answer: the database and Redis pinged with its timeout.
    let ready = crate::http::ops::ready(state.clone()).await;
    let ready: Value = api::answer(Ok(ready)).unwrap_or_default();
    let settings = &state.config.settings;
    let now = now_ms();
    let payments_open = state
        .store
        .open_payments(
            now - settings.payment_reconcile_after_ms as i64,
            COUNTED_MAX,
        )
        .await?
        .len();
    let messages_due = state.store.due_messages(now, COUNTED_MAX).await?.len();
    let backlog = state
        .store
        .open_transfers(reconcile_cutoff(&state), COUNTED_MAX)
        .await?
        .len();
    let queues = vec![
        ("system.transfer_backlog", capped(backlog)),
        ("system.payment_backlog", capped(payments_open)),
        ("system.messages_due", capped(messages_due)),
        ("system.wallet_actors", state.wallets.active().to_string()),
        (
            "system.ws_sessions",
            state.rooms.session_count().to_string(),
        ),
    ];
    let node = format!(
        "{} · pid {} · {}",
        hostname(),
        std::process::id(),
        req.connection_info().host()
    );
    page::render(&SystemPage {
        chrome,
        version: env!("CARGO_PKG_VERSION"),
        database: state.store.backend_name(),
        database_ok: ready["database"] == "ok",
        bus: if state.bus.is_redis() {
            "redis"
        } else {
            "in-process"
        },
        bus_ok: ready["redis"] != "unavailable",
        uptime: uptime(),
        node,
        queues,
    })
}
