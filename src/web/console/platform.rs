//! The platform's pages: clients (list, create) and the audit log with its chain verified.
//! Lists and creation go through the API's handlers; the chain check is the one `nashub
//! audit-verify` runs (`audit::chain::verify`), offered to super admins only.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::domain::Role;
use crate::http::extract::Page;
use crate::state::AppState;
use crate::web::csrf::Protected;
use crate::web::error::WebError;
use crate::web::page::{self, Chrome};
use crate::web::{WebCaller, api};

fn text(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[derive(Template)]
#[template(path = "console/clients.html")]
struct ClientsPage {
    chrome: Chrome,
    /// `[id, code, name, currency, status]`
    clients: Vec<[String; 5]>,
    error: String,
    form: ClientFields,
}

/// The create form's fields.
#[derive(Deserialize, ToSchema, Default)]
pub struct ClientFields {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    currency: String,
    /// decimals of the currency (default 2)
    #[serde(default)]
    currency_exponent: String,
}

fn platform_only(caller: &WebCaller) -> Result<(), WebError> {
    if caller.caller.role == Role::SuperAdmin {
        Ok(())
    } else {
        Err(WebError::Forbidden)
    }
}

async fn clients_page(
    state: &web::Data<AppState>,
    caller: &WebCaller,
    form: ClientFields,
    error: String,
) -> Result<ClientsPage, WebError> {
    platform_only(caller)?;
    let chrome = super::home::chrome(state, caller, "nav.clients", "/clients")?;
    let answer = api::answer(
        crate::http::clients::list(state.clone(), caller.auth(), Page::new(None, Some(200))).await,
    )?;
    let clients = answer["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            [
                text(c, "id"),
                text(c, "code"),
                text(c, "name"),
                text(c, "currency"),
                text(c, "status"),
            ]
        })
        .collect();
    Ok(ClientsPage {
        chrome,
        clients,
        error,
        form,
    })
}

/// Clients (super admin): list and create
#[utoipa::path(get, path = "/console/clients", tag = "console",
    responses(
        (status = 200, description = "the clients", content_type = "text/html", body = String),
        (status = 303, description = "no session: to the login page"),
        (status = 403, description = "not a super admin", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn clients(
    state: web::Data<AppState>,
    caller: WebCaller,
) -> Result<HttpResponse, WebError> {
    let page = clients_page(&state, &caller, ClientFields::default(), String::new()).await?;
    page::render(&page)
}

/// Create a client (the API's `POST /api/v1/clients`)
#[utoipa::path(post, path = "/console/clients", tag = "console",
    request_body(content = ClientFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "created: back to the list"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing CSRF token, another origin, or not a super admin", content_type = "text/html", body = String),
        (status = 409, description = "the code is taken (the form again)", content_type = "text/html", body = String),
        (status = 422, description = "invalid fields (the form again)", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn create_client(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    Protected { caller, form }: Protected<ClientFields>,
) -> Result<HttpResponse, WebError> {
    platform_only(&caller)?;
    let exponent = form.currency_exponent.trim();
    let exponent: Option<i64> = if exponent.is_empty() {
        None
    } else {
        match exponent.parse() {
            Ok(e) => Some(e),
            Err(_) => {
                let message = crate::web::i18n::english()
                    .get("clients.bad_exponent")
                    .to_owned();
                let page = clients_page(&state, &caller, form, message).await?;
                return page::render_status(StatusCode::UNPROCESSABLE_ENTITY, &page);
            }
        }
    };
    let body = json!({
        "code": form.code.trim(),
        "name": form.name.trim(),
        "currency": form.currency.trim(),
        "currency_exponent": exponent,
    });
    let result = match api::body(body) {
        Ok(body) => {
            api::answer(crate::http::clients::create(state.clone(), req, caller.auth(), body).await)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(page::see_other("/console/clients")),
        Err(e)
            if matches!(
                e.status,
                StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
            ) =>
        {
            let page = clients_page(&state, &caller, form, e.message).await?;
            page::render_status(e.status, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Chrome,
    q: AuditFilter,
    /// `[seq, when, action, actor, target, ip]`
    rows: Vec<[String; 6]>,
    next_link: String,
    /// The chain check's outcome (super admins), empty otherwise.
    chain: String,
    chain_ok: bool,
    is_platform: bool,
}

#[derive(Deserialize, Serialize, IntoParams, Default, Clone)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// one action, e.g. wallet.deposit
    #[serde(default, skip_serializing_if = "blank")]
    action: Option<String>,
    /// super admins: one client's rows
    #[serde(default, skip_serializing_if = "blank")]
    client_id: Option<String>,
    /// the next page's cursor
    #[serde(default, skip_serializing_if = "blank")]
    cursor: Option<String>,
    /// `1`: verify the whole chain (super admins)
    #[serde(default, skip_serializing_if = "blank")]
    verify: Option<String>,
}

fn blank(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(|s| s.trim().is_empty())
}

/// The audit log, and its chain verified on demand (super admins)
#[utoipa::path(get, path = "/console/audit", tag = "console", params(AuditFilter),
    responses(
        (status = 200, description = "audit rows, newest first", content_type = "text/html", body = String),
        (status = 303, description = "no session: to the login page"),
        (status = 400, description = "a query that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "no audit.read permission", content_type = "text/html", body = String),
        (status = 404, description = "another client", content_type = "text/html", body = String),
        (status = 422, description = "invalid filters", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn audit(
    state: web::Data<AppState>,
    caller: WebCaller,
    q: web::Query<AuditFilter>,
) -> Result<HttpResponse, WebError> {
    let t = crate::web::i18n::english();
    let chrome = super::home::chrome(&state, &caller, "nav.audit", "/audit")?;
    let q = q.into_inner();
    let mut api_q = q.clone();
    api_q.verify = None;
    let query = serde_urlencoded::to_string(&api_q).unwrap_or_default();
    let answer = api::answer(
        crate::http::audit::list(
            state.clone(),
            caller.auth(),
            web::Query::from_query(&query).map_err(|e| WebError::BadForm(e.to_string()))?,
        )
        .await,
    )?;
    let rows = answer["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            [
                text(r, "seq"),
                text(r, "created_at"),
                text(r, "action"),
                text(r, "actor_id"),
                format!("{} {}", text(r, "target_type"), text(r, "target_id")),
                text(r, "ip"),
            ]
        })
        .collect();
    let next_link = match answer["next_cursor"].as_str() {
        Some(c) => {
            let mut next = api_q.clone();
            next.cursor = Some(c.to_owned());
            format!(
                "/console/audit?{}",
                serde_urlencoded::to_string(&next).unwrap_or_default()
            )
        }
        None => String::new(),
    };
    let (chain, chain_ok) = if q.verify.as_deref() == Some("1") {
        platform_only(&caller)?;
        match crate::audit::chain::verify(&state.store).await? {
            Ok(n) => (format!("{} {n}", t.get("audit.chain_ok")), true),
            Err(broken) => (format!("{} {broken}", t.get("audit.chain_broken")), false),
        }
    } else {
        (String::new(), false)
    };
    page::render(&AuditPage {
        chrome,
        q,
        rows,
        next_link,
        chain,
        chain_ok,
        is_platform: caller.caller.role == Role::SuperAdmin,
    })
}
