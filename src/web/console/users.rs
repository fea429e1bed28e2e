//! The user tree: search and list (an agent sees its downline), create a player or agent, and
//! one user's page (wallet with money forms, status actions, transactions with filters and CSV,
//! the balance live). Reach and rights are the API's: every read and action calls its handler.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::domain::Role;
use crate::http::extract::IdempotencyKey;
use crate::state::AppState;
use crate::web::csrf::Protected;
use crate::web::error::WebError;
use crate::web::page::{self, Chrome};
use crate::web::{WebCaller, amount, api, idempotency};

/// The search form (empty fields are no filter).
#[derive(Deserialize, Serialize, IntoParams, Default, Clone)]
#[into_params(parameter_in = Query)]
pub struct Search {
    /// username prefix
    #[serde(default, skip_serializing_if = "blank")]
    username: Option<String>,
    /// client_admin, agent or player
    #[serde(default, skip_serializing_if = "blank")]
    role: Option<String>,
    /// active, suspended or closed
    #[serde(default, skip_serializing_if = "blank")]
    status: Option<String>,
    /// the client (super admins)
    #[serde(default, skip_serializing_if = "blank")]
    client_id: Option<String>,
    /// the next page's cursor
    #[serde(default, skip_serializing_if = "blank")]
    cursor: Option<String>,
}

fn blank(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(|s| s.trim().is_empty())
}

/// A user as the list and page show it.
pub struct UserLine {
    pub id: String,
    pub username: String,
    pub role: String,
    pub status: String,
    pub parent_id: String,
    pub client_id: String,
}

impl UserLine {
    fn from_json(v: &Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        Self {
            id: s("id"),
            username: s("username"),
            role: s("role"),
            status: s("status"),
            parent_id: s("parent_id"),
            client_id: s("client_id"),
        }
    }
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    chrome: Chrome,
    search: Search,
    users: Vec<UserLine>,
    next_link: String,
    /// What the caller may create: `(role, label key)`.
    creatable: Vec<(&'static str, &'static str)>,
    is_platform: bool,
    create_error: String,
    create: CreateFields,
}

/// The create form's fields.
#[derive(Deserialize, ToSchema, Default, Clone)]
pub struct CreateFields {
    /// player or agent (client admins may also create client admins)
    #[serde(default)]
    role: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// the parent (default: the caller)
    #[serde(default)]
    parent_id: String,
    /// super admins: the client
    #[serde(default)]
    client_id: String,
}

fn creatable(role: Role) -> Vec<(&'static str, &'static str)> {
    match role {
        Role::SuperAdmin => vec![("client_admin", "role.client_admin")],
        Role::ClientAdmin => vec![("player", "role.player"), ("agent", "role.agent")],
        Role::Agent => vec![("player", "role.player"), ("agent", "role.agent")],
        Role::Player => vec![],
    }
}

async fn list_page(
    state: &web::Data<AppState>,
    caller: &WebCaller,
    search: Search,
    create: CreateFields,
    create_error: String,
) -> Result<UsersPage, WebError> {
    let chrome = super::home::chrome(state, caller, "nav.users", "/users")?;
    let query =
        serde_urlencoded::to_string(&search).map_err(|e| WebError::BadForm(e.to_string()))?;
    let answer = api::answer(
        crate::http::user_admin::list(
            state.clone(),
            caller.auth(),
            web::Query::from_query(&query).map_err(|e| WebError::BadForm(e.to_string()))?,
        )
        .await,
    );
    let answer = match answer {
        Ok(a) => a,
        // A super admin must pick a client first: an empty list, not an error page.
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => json!({ "items": [] }),
        Err(e) => return Err(e.into()),
    };
    let users = answer["items"]
        .as_array()
        .map(|a| a.iter().map(UserLine::from_json).collect())
        .unwrap_or_default();
    let next_link = match answer["next_cursor"].as_str() {
        Some(cursor) => {
            let mut next = search.clone();
            next.cursor = Some(cursor.to_owned());
            format!(
                "/console/users?{}",
                serde_urlencoded::to_string(&next).unwrap_or_default()
            )
        }
        None => String::new(),
    };
    Ok(UsersPage {
        chrome,
        search,
        users,
        next_link,
        creatable: creatable(caller.caller.role),
        is_platform: caller.caller.client_id.is_none(),
        create_error,
        create,
    })
}

/// Users: search, list, create
#[utoipa::path(get, path = "/console/users", tag = "console", params(Search),
    responses(
        (status = 200, description = "the user list", content_type = "text/html", body = String),
        (status = 303, description = "no session: to the login page"),
        (status = 400, description = "a query that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "the role may not list users", content_type = "text/html", body = String),
        (status = 404, description = "another client", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn list(
    state: web::Data<AppState>,
    caller: WebCaller,
    search: web::Query<Search>,
) -> Result<HttpResponse, WebError> {
    let page = list_page(
        &state,
        &caller,
        search.into_inner(),
        CreateFields::default(),
        String::new(),
    )
    .await?;
    page::render(&page)
}

/// Create a user (the API's `POST /api/v1/users`)
#[utoipa::path(post, path = "/console/users", tag = "console",
    request_body(content = CreateFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "created: to the new user's page"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing CSRF token, another origin, or not allowed", content_type = "text/html", body = String),
        (status = 404, description = "another client's parent", content_type = "text/html", body = String),
        (status = 409, description = "the username is taken (the form again)", content_type = "text/html", body = String),
        (status = 422, description = "invalid fields (the form again)", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn create(
    state: web::Data<AppState>,
    Protected { caller, form }: Protected<CreateFields>,
) -> Result<HttpResponse, WebError> {
    let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let body = json!({
        "role": form.role,
        "username": form.username,
        "password": form.password,
        "parent_id": opt(&form.parent_id),
        "client_id": opt(&form.client_id),
    });
    let result = match api::body(body) {
        Ok(body) => {
            api::answer(crate::http::users::create(state.clone(), caller.auth(), body).await)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(user) => Ok(page::see_other(&format!(
            "/console/users/{}",
            user["id"].as_str().unwrap_or_default()
        ))),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::TOO_MANY_REQUESTS => {
            let mut kept = form.clone();
            kept.password = String::new();
            let page = list_page(&state, &caller, Search::default(), kept, e.message).await?;
            page::render_status(e.status, &page)
        }
        Err(e) => Err(e.into()),
    }
}

/// The transaction filters of a user's page (and its CSV).
#[derive(Deserialize, Serialize, IntoParams, Default, Clone)]
#[into_params(parameter_in = Query)]
pub struct TxFilter {
    /// a movement kind (deposit, withdrawal, credit, debit, ...)
    #[serde(default, skip_serializing_if = "blank")]
    kind: Option<String>,
    /// from this day (YYYY-MM-DD, UTC)
    #[serde(default, skip_serializing_if = "blank")]
    from: Option<String>,
    /// before this day (YYYY-MM-DD, UTC)
    #[serde(default, skip_serializing_if = "blank")]
    to: Option<String>,
    /// the next page's cursor
    #[serde(default, skip_serializing_if = "blank")]
    cursor: Option<String>,
    /// the money form that just succeeded (a notice)
    #[serde(default, skip_serializing_if = "blank")]
    done: Option<String>,
}

impl TxFilter {
    /// The API's history query: days become RFC 3339 instants.
    fn api_query(&self, limit: u32) -> String {
        let day = |d: &Option<String>| {
            d.as_deref()
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| format!("{d}T00:00:00Z"))
        };
        let mut pairs: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if let Some(k) = self.kind.as_deref().filter(|k| !k.trim().is_empty()) {
            pairs.push(("kind", k.trim().to_owned()));
        }
        if let Some(f) = day(&self.from) {
            pairs.push(("from", f));
        }
        if let Some(t) = day(&self.to) {
            pairs.push(("to", t));
        }
        if let Some(c) = self.cursor.as_deref().filter(|c| !c.is_empty()) {
            pairs.push(("cursor", c.to_owned()));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

pub struct TxLine {
    pub id: String,
    pub kind: String,
    pub amount: String,
    pub balance_after: String,
    pub created_at: String,
    pub memo: String,
}

impl TxLine {
    fn from_json(v: &Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        Self {
            id: s("id"),
            kind: s("kind"),
            amount: s("amount"),
            balance_after: s("balance_after"),
            created_at: s("created_at"),
            memo: s("memo"),
        }
    }
}

/// One money form on the page: its operation, label and a key made for this rendering.
pub struct MoneyForm {
    pub op: &'static str,
    pub label: &'static str,
    pub key: String,
    pub amount: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage {
    chrome: Chrome,
    user: UserLine,
    has_wallet: bool,
    balance: String,
    currency: String,
    exponent: u32,
    forms: Vec<MoneyForm>,
    /// status actions the page offers: `(action, label key)`
    actions: Vec<(&'static str, &'static str)>,
    status_error: String,
    notice: String,
    filter: TxFilter,
    /// The movement kinds to filter by.
    kinds: &'static [&'static str],
    transactions: Vec<TxLine>,
    tx_error: String,
    next_link: String,
    csv_link: String,
}

/// The money forms, each shown when the caller holds its permission (the API checks again,
/// with reach): cash in/out (`wallets.cash`), agents' credit/debit (`wallets.downline`).
const MONEY_OPS: &[(&str, &str, &str)] = &[
    (
        "deposit",
        "money.deposit",
        crate::auth::permissions::WALLETS_CASH,
    ),
    (
        "withdraw",
        "money.withdraw",
        crate::auth::permissions::WALLETS_CASH,
    ),
    (
        "credit",
        "money.credit",
        crate::auth::permissions::WALLETS_DOWNLINE,
    ),
    (
        "debit",
        "money.debit",
        crate::auth::permissions::WALLETS_DOWNLINE,
    ),
];

/// What went wrong in one form, to show in place.
struct InPlace {
    op: String,
    amount: String,
    message: String,
}

async fn user_page(
    state: &web::Data<AppState>,
    caller: &WebCaller,
    id: &str,
    filter: TxFilter,
    failed: Option<InPlace>,
) -> Result<UserPage, WebError> {
    let t = crate::web::i18n::english();
    let mut chrome = super::home::chrome(state, caller, "user.title", "/users")?;
    // Reach first (other client 404, outside the subtree 403), as the API's handlers do.
    let row = crate::http::users::readable_user(state, &caller.caller, id).await?;
    let user = UserLine::from_json(
        &serde_json::to_value(crate::http::views::user(&row)).unwrap_or_default(),
    );
    chrome.title = format!("{} {}", t.get("user.title"), user.username);
    let wallet = crate::access::wallet_client(&state.store, &row).await.ok();
    let (has_wallet, balance, currency, exponent) = match &wallet {
        Some((_, currency)) => {
            let answer = api::answer(
                crate::http::wallets::balance(
                    state.clone(),
                    caller.auth(),
                    web::Path::from(row.id.clone()),
                    web::Query::from_query("").map_err(|e| WebError::BadForm(e.to_string()))?,
                )
                .await,
            )?;
            let s = |k: &str| {
                answer
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            (true, s("balance"), s("currency"), currency.exponent)
        }
        None => (false, String::new(), String::new(), 0),
    };
    let is_self = row.id == caller.caller.user_id;
    let forms = if has_wallet && !is_self && matches!(row.role, Role::Player | Role::Agent) {
        MONEY_OPS
            .iter()
            .filter(|(_, _, permission)| caller.caller.can(permission))
            .map(|(op, label, _)| {
                let mine = failed.as_ref().filter(|f| f.op == *op);
                MoneyForm {
                    op,
                    label: t.get(label),
                    key: idempotency::new_key(),
                    amount: mine.map(|f| f.amount.clone()).unwrap_or_default(),
                    error: mine.map(|f| f.message.clone()).unwrap_or_default(),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let actions = if is_self || row.status.as_str() == "closed" {
        Vec::new()
    } else if row.status.as_str() == "active" {
        vec![("suspend", "user.suspend"), ("close", "user.close")]
    } else {
        vec![("reactivate", "user.reactivate"), ("close", "user.close")]
    };
    let status_error = failed
        .as_ref()
        .filter(|f| f.op == "status")
        .map(|f| f.message.clone())
        .unwrap_or_default();
    let notice = match filter.done.as_deref() {
        Some("status") => t.get("user.status_done").to_owned(),
        Some(op) if MONEY_OPS.iter().any(|(o, _, _)| *o == op) => t.get("money.done").to_owned(),
        _ => String::new(),
    };
    let (transactions, tx_error, next_link) = if has_wallet {
        let answer = api::answer(
            crate::http::wallets::history(
                state.clone(),
                caller.auth(),
                web::Path::from(row.id.clone()),
                web::Query::from_query(&filter.api_query(50))
                    .map_err(|e| WebError::BadForm(e.to_string()))?,
            )
            .await,
        );
        match answer {
            Ok(a) => {
                let lines = a["items"]
                    .as_array()
                    .map(|i| i.iter().map(TxLine::from_json).collect())
                    .unwrap_or_default();
                let next = match a["next_cursor"].as_str() {
                    Some(c) => {
                        let mut f = filter.clone();
                        f.cursor = Some(c.to_owned());
                        f.done = None;
                        format!(
                            "/console/users/{}?{}",
                            row.id,
                            serde_urlencoded::to_string(&f).unwrap_or_default()
                        )
                    }
                    None => String::new(),
                };
                (lines, String::new(), next)
            }
            Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
                (Vec::new(), e.message, String::new())
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        (Vec::new(), String::new(), String::new())
    };
    let mut csv_filter = filter.clone();
    csv_filter.cursor = None;
    csv_filter.done = None;
    let csv_link = format!(
        "/console/users/{}/transactions.csv?{}",
        row.id,
        serde_urlencoded::to_string(&csv_filter).unwrap_or_default()
    );
    Ok(UserPage {
        chrome,
        user,
        has_wallet,
        balance,
        currency,
        exponent,
        forms,
        actions,
        status_error,
        notice,
        filter,
        kinds: &crate::ledger::journal::JournalKind::NAMES,
        transactions,
        tx_error,
        next_link,
        csv_link,
    })
}

/// One user: wallet, money forms, status, transactions
#[utoipa::path(get, path = "/console/users/{id}", tag = "console", params(("id" = String, Path, description = "user id"), TxFilter),
    responses(
        (status = 200, description = "the user's page", content_type = "text/html", body = String),
        (status = 303, description = "no session: to the login page"),
        (status = 400, description = "a query that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "outside the caller's subtree, or not allowed", content_type = "text/html", body = String),
        (status = 404, description = "no such user, or another client's", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn show(
    state: web::Data<AppState>,
    caller: WebCaller,
    id: web::Path<String>,
    filter: web::Query<TxFilter>,
) -> Result<HttpResponse, WebError> {
    let page = user_page(&state, &caller, &id, filter.into_inner(), None).await?;
    page::render(&page)
}

/// A money form's fields.
#[derive(Deserialize, ToSchema)]
pub struct MoneyFields {
    /// decimal string in the client's currency (e.g. 12.50)
    #[serde(default)]
    amount: String,
    #[serde(default)]
    memo: String,
    /// made when the form was rendered: a resubmission replays, never moves money twice
    idempotency_key: String,
}

/// Deposit, withdraw, credit or debit (the API's wallet handlers, the form's key)
#[utoipa::path(post, path = "/console/users/{id}/wallet/{op}", tag = "console",
    params(("id" = String, Path, description = "user id"),
           ("op" = String, Path, description = "deposit, withdraw, credit or debit")),
    request_body(content = MoneyFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "done (or replayed): back to the user's page"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing CSRF token, another origin, outside the subtree, or not allowed", content_type = "text/html", body = String),
        (status = 404, description = "no such user or operation, or another client's", content_type = "text/html", body = String),
        (status = 409, description = "refused (insufficient funds, closed, key reused): the page with the error in place", content_type = "text/html", body = String),
        (status = 422, description = "invalid amount: the page with the error in place", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn money(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    Protected { caller, form }: Protected<MoneyFields>,
) -> Result<HttpResponse, WebError> {
    let (id, op) = path.into_inner();
    if !MONEY_OPS.iter().any(|(o, _, _)| *o == op) {
        return Err(WebError::NotFound);
    }
    let row = crate::http::users::readable_user(&state, &caller.caller, &id).await?;
    let (_, currency) = crate::access::wallet_client(&state.store, &row)
        .await
        .map_err(crate::http::ApiError::from)?;
    let fail = |message: String| InPlace {
        op: op.clone(),
        amount: form.amount.clone(),
        message,
    };
    let parsed = match amount::parse(&form.amount, currency.exponent) {
        Ok(a) => a,
        Err(message) => {
            let page = user_page(
                &state,
                &caller,
                &id,
                TxFilter::default(),
                Some(fail(message)),
            );
            return page::render_status(StatusCode::UNPROCESSABLE_ENTITY, &page.await?);
        }
    };
    let memo = Some(form.memo.trim()).filter(|m| !m.is_empty());
    let body = api::body(json!({
        "amount": amount::to_decimal(parsed, currency.exponent),
        "memo": memo,
        "idempotency_key": form.idempotency_key,
    }))?;
    let (state2, auth, key, target) = (
        state.clone(),
        caller.auth(),
        IdempotencyKey::absent(),
        web::Path::from(id.clone()),
    );
    let result = match op.as_str() {
        "deposit" => crate::http::wallets::deposit(state2, auth, key, target, body).await,
        "withdraw" => crate::http::wallets::withdraw(state2, auth, key, target, body).await,
        "credit" => crate::http::wallets::credit(state2, auth, key, target, body).await,
        _ => crate::http::wallets::debit(state2, auth, key, target, body).await,
    };
    match api::answer(result) {
        Ok(_) => Ok(page::see_other(&format!("/console/users/{id}?done={op}"))),
        Err(e) if in_place(e.status) => {
            let page = user_page(
                &state,
                &caller,
                &id,
                TxFilter::default(),
                Some(fail(e.message)),
            );
            page::render_status(e.status, &page.await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Refusals shown beside the form (the rest are error pages: 403, 404, 429, 5xx).
fn in_place(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_REQUEST | StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
    )
}

/// A status action's field.
#[derive(Deserialize, ToSchema)]
pub struct StatusFields {
    /// suspend, reactivate or close
    action: String,
}

/// Suspend, reactivate or close a user (the API's handlers)
#[utoipa::path(post, path = "/console/users/{id}/status", tag = "console",
    params(("id" = String, Path, description = "user id")),
    request_body(content = StatusFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "done: back to the user's page"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing CSRF token, another origin, outside the subtree, or not allowed", content_type = "text/html", body = String),
        (status = 404, description = "no such user or action, or another client's", content_type = "text/html", body = String),
        (status = 409, description = "refused (closed, balance not zero): the page with the error in place", content_type = "text/html", body = String),
        (status = 422, description = "invalid: the page with the error in place", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn status(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    Protected { caller, form }: Protected<StatusFields>,
) -> Result<HttpResponse, WebError> {
    let id = id.into_inner();
    let (s, r, a, p) = (
        state.clone(),
        req.clone(),
        caller.auth(),
        web::Path::from(id.clone()),
    );
    let result = match form.action.as_str() {
        "suspend" => crate::http::user_admin::suspend(s, r, a, p).await,
        "reactivate" => crate::http::user_admin::reactivate(s, r, a, p).await,
        "close" => crate::http::user_admin::close(s, r, a, p).await,
        _ => return Err(WebError::NotFound),
    };
    match api::answer(result) {
        Ok(_) => Ok(page::see_other(&format!("/console/users/{id}?done=status"))),
        Err(e) if in_place(e.status) => {
            let failed = InPlace {
                op: "status".into(),
                amount: String::new(),
                message: e.message,
            };
            let page = user_page(&state, &caller, &id, TxFilter::default(), Some(failed)).await?;
            page::render_status(e.status, &page)
        }
        Err(e) => Err(e.into()),
    }
}

/// Most rows one CSV export holds.
const CSV_MAX_ROWS: usize = 10_000;

fn csv_field(s: &str) -> String {
    // Quoted always; a leading = + - @ is prefixed so a spreadsheet does not run it.
    let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A user's transactions as CSV (the page's filters; at most 10,000 rows)
#[utoipa::path(get, path = "/console/users/{id}/transactions.csv", tag = "console",
    params(("id" = String, Path, description = "user id"), TxFilter),
    responses(
        (status = 200, description = "CSV: id, kind, amount, balance_after, currency, created_at, memo", content_type = "text/csv", body = String),
        (status = 303, description = "no session: to the login page"),
        (status = 400, description = "a query that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "outside the caller's subtree, or not allowed", content_type = "text/html", body = String),
        (status = 404, description = "no such user, or another client's", content_type = "text/html", body = String),
        (status = 422, description = "invalid filters", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn csv(
    state: web::Data<AppState>,
    caller: WebCaller,
    id: web::Path<String>,
    filter: web::Query<TxFilter>,
) -> Result<HttpResponse, WebError> {
    let mut filter = filter.into_inner();
    filter.cursor = None;
    let mut out = String::from("id,kind,amount,balance_after,currency,created_at,memo\n");
    let mut rows = 0;
    loop {
        let answer = api::answer(
            crate::http::wallets::history(
                state.clone(),
                caller.auth(),
                web::Path::from(id.to_string()),
                web::Query::from_query(&filter.api_query(200))
                    .map_err(|e| WebError::BadForm(e.to_string()))?,
            )
            .await,
        )?;
        for item in answer["items"].as_array().into_iter().flatten() {
            let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or("");
            let line: Vec<String> = [
                "id",
                "kind",
                "amount",
                "balance_after",
                "currency",
                "created_at",
                "memo",
            ]
            .iter()
            .map(|k| csv_field(s(k)))
            .collect();
            out.push_str(&line.join(","));
            out.push('\n');
            rows += 1;
        }
        match answer["next_cursor"].as_str() {
            Some(c) if rows < CSV_MAX_ROWS => filter.cursor = Some(c.to_owned()),
            _ => break,
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"transactions-{}.csv\"", id.as_str()),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .body(out))
}
