//! One client's page (issue 20): its settings document, branding, enabled providers and
//! provider credentials. Reads and writes call the API's handlers (`http::client_settings`),
//! so a client admin reads its own client's page (no forms) and only super admins change it.
//! Credentials are write-only: the page shows what the API describes (configured, version,
//! key id, when), never a stored value, and a failed form keeps no secret it was sent.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::clients::settings::{COMMISSION_BASES, PROVIDERS, SCHEDULES};
use crate::domain::Role;
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

fn lines(v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The settings form's fields (text as typed; the API validates).
#[derive(Deserialize, ToSchema, Default, Clone)]
pub struct SettingsFields {
    #[serde(default)]
    commission_rate: String,
    #[serde(default)]
    revenue_share_rate: String,
    /// ngr or turnover
    #[serde(default)]
    commission_basis: String,
    /// present (checked): on
    #[serde(default)]
    commission_negative_carryover: Option<String>,
    /// none, daily, weekly or monthly
    #[serde(default)]
    settlement_schedule: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    limit_raise_cooloff_hours: String,
    /// present (checked): on
    #[serde(default)]
    staff_totp_required: Option<String>,
    /// decimal string; empty: no limit
    #[serde(default)]
    max_deposit: String,
    #[serde(default)]
    max_withdrawal: String,
    #[serde(default)]
    max_transfer: String,
    /// one origin per line
    #[serde(default)]
    allowed_origins: String,
    /// one host name per line
    #[serde(default)]
    site_hosts: String,
}

impl SettingsFields {
    fn from_view(v: &Value) -> Self {
        let on = |k: &str| v[k].as_bool().unwrap_or(false).then(|| "on".to_owned());
        Self {
            commission_rate: text(v, "commission_rate"),
            revenue_share_rate: text(v, "revenue_share_rate"),
            commission_basis: text(v, "commission_basis"),
            commission_negative_carryover: on("commission_negative_carryover"),
            settlement_schedule: text(v, "settlement_schedule"),
            timezone: text(v, "timezone"),
            limit_raise_cooloff_hours: text(v, "limit_raise_cooloff_hours"),
            staff_totp_required: on("staff_totp_required"),
            max_deposit: text(&v["limits"], "max_deposit"),
            max_withdrawal: text(&v["limits"], "max_withdrawal"),
            max_transfer: text(&v["limits"], "max_transfer"),
            allowed_origins: lines(&v["allowed_origins"]),
            site_hosts: lines(&v["site_hosts"]),
        }
    }

    fn carryover(&self) -> bool {
        self.commission_negative_carryover.is_some()
    }

    fn totp(&self) -> bool {
        self.staff_totp_required.is_some()
    }

    /// The API's PATCH body; a number field that is not one is the API's own 422 (sent as text).
    fn patch(&self) -> Value {
        let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let list = |s: &str| -> Vec<String> {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let hours = self.limit_raise_cooloff_hours.trim();
        json!({
            "commission_rate": self.commission_rate.trim(),
            "revenue_share_rate": self.revenue_share_rate.trim(),
            "commission_basis": self.commission_basis.trim(),
            "commission_negative_carryover": self.carryover(),
            "settlement_schedule": self.settlement_schedule.trim(),
            "timezone": self.timezone.trim(),
            "limit_raise_cooloff_hours": hours.parse::<u32>().map_or_else(|_| json!(hours), |h| json!(h)),
            "staff_totp_required": self.totp(),
            "limits": {
                "max_deposit": opt(&self.max_deposit),
                "max_withdrawal": opt(&self.max_withdrawal),
                "max_transfer": opt(&self.max_transfer),
            },
            "allowed_origins": list(&self.allowed_origins),
            "site_hosts": list(&self.site_hosts),
        })
    }
}

/// The branding form's fields (empty: none).
#[derive(Deserialize, ToSchema, Default, Clone)]
pub struct BrandingFields {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    logo_url: String,
    /// e.g. #0b57d0
    #[serde(default)]
    primary_color: String,
}

impl BrandingFields {
    fn from_view(v: &Value) -> Self {
        Self {
            display_name: text(&v["branding"], "display_name"),
            logo_url: text(&v["branding"], "logo_url"),
            primary_color: text(&v["branding"], "primary_color"),
        }
    }
}

/// A provider's credential fields as the form shows them; secrets are `password` inputs,
/// always rendered empty.
pub struct CredentialForm {
    pub provider: &'static str,
    pub configured: bool,
    pub version: String,
    pub key_id: String,
    pub updated_at: String,
    /// `(field, is secret, value kept after a failed post: never a secret's)`
    pub fields: Vec<(&'static str, bool, String)>,
    pub error: String,
}

/// The document's fields per provider (`providers::credentials`), and which are secrets.
fn credential_fields(provider: &str) -> &'static [(&'static str, bool)] {
    match provider {
        "jdb" => &[
            ("base_url", false),
            ("operator", false),
            ("parent", false),
            ("key", true),
            ("iv", true),
        ],
        _ => &[("base_url", false), ("operator", false), ("secret", true)],
    }
}

/// Which form failed, to show its error (and its non-secret values) in place.
enum Failed {
    Settings(Box<SettingsFields>, String),
    Branding(BrandingFields, String),
    Providers(String),
    Credentials {
        provider: String,
        kept: Map<String, Value>,
        message: String,
    },
}

#[derive(Template)]
#[template(path = "console/client.html")]
struct ClientPage {
    chrome: Chrome,
    client_id: String,
    code: String,
    name: String,
    status: String,
    currency: String,
    exponent: String,
    /// Super admins change; a client admin reads.
    can_edit: bool,
    notice: String,
    settings: SettingsFields,
    settings_error: String,
    bases: &'static [&'static str],
    schedules: &'static [&'static str],
    branding: BrandingFields,
    branding_error: String,
    /// `(provider, enabled)`
    providers: Vec<(&'static str, bool)>,
    providers_error: String,
    credentials: Vec<CredentialForm>,
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct Done {
    /// the form that just succeeded (a notice)
    done: Option<String>,
}

async fn client_page(
    state: &web::Data<AppState>,
    caller: &WebCaller,
    id: &str,
    done: Option<&str>,
    failed: Option<Failed>,
) -> Result<ClientPage, WebError> {
    let t = crate::web::i18n::english();
    let current = if caller.caller.role == Role::SuperAdmin {
        "/clients"
    } else {
        "/client"
    };
    let mut chrome = super::home::chrome(state, caller, "client.title", current)?;
    // The API's reach: another client 404, no clients.read 403.
    let view = api::answer(
        crate::http::client_settings::get(
            state.clone(),
            caller.auth(),
            web::Path::from(id.to_owned()),
        )
        .await,
    )?;
    let client = api::answer(
        crate::http::clients::get(state.clone(), caller.auth(), web::Path::from(id.to_owned()))
            .await,
    )?;
    chrome.title = format!("{} {}", t.get("client.title"), text(&client, "code"));
    let enabled: Vec<&str> = view["enabled_providers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut settings = SettingsFields::from_view(&view);
    let mut branding = BrandingFields::from_view(&view);
    let (mut settings_error, mut branding_error, mut providers_error) =
        (String::new(), String::new(), String::new());
    let mut cred_failed = None;
    match failed {
        Some(Failed::Settings(kept, message)) => (settings, settings_error) = (*kept, message),
        Some(Failed::Branding(kept, message)) => (branding, branding_error) = (kept, message),
        Some(Failed::Providers(message)) => providers_error = message,
        Some(Failed::Credentials {
            provider,
            kept,
            message,
        }) => cred_failed = Some((provider, kept, message)),
        None => {}
    }
    let stored = view["credentials"].as_array().cloned().unwrap_or_default();
    let credentials = PROVIDERS
        .iter()
        .map(|provider| {
            let info = stored
                .iter()
                .find(|c| c["provider"].as_str() == Some(provider));
            let mine = cred_failed.as_ref().filter(|(p, _, _)| p == provider);
            CredentialForm {
                provider,
                configured: info.is_some(),
                version: info.map(|i| text(i, "version")).unwrap_or_default(),
                key_id: info.map(|i| text(i, "key_id")).unwrap_or_default(),
                updated_at: info.map(|i| text(i, "updated_at")).unwrap_or_default(),
                fields: credential_fields(provider)
                    .iter()
                    .map(|(field, secret)| {
                        let kept = match mine {
                            Some((_, kept, _)) if !secret => {
                                text(&Value::Object(kept.clone()), field)
                            }
                            _ => String::new(),
                        };
                        (*field, *secret, kept)
                    })
                    .collect(),
                error: mine.map(|(_, _, m)| m.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let notice = match done {
        Some("settings" | "branding" | "providers") => t.get("client.saved").to_owned(),
        Some("credentials") => t.get("client.credentials_saved").to_owned(),
        _ => String::new(),
    };
    Ok(ClientPage {
        chrome,
        client_id: text(&client, "id"),
        code: text(&client, "code"),
        name: text(&client, "name"),
        status: text(&client, "status"),
        currency: text(&view, "currency"),
        exponent: text(&view, "currency_exponent"),
        can_edit: caller.caller.role == Role::SuperAdmin,
        notice,
        settings,
        settings_error,
        bases: COMMISSION_BASES,
        schedules: SCHEDULES,
        branding,
        branding_error,
        providers: PROVIDERS
            .iter()
            .map(|p| (*p, enabled.contains(p)))
            .collect(),
        providers_error,
        credentials,
    })
}

/// One client: settings, branding, providers, credentials (super admins change; its admins read)
#[utoipa::path(get, path = "/console/clients/{id}", tag = "console",
    params(("id" = String, Path, description = "client id"), Done),
    responses(
        (status = 200, description = "the client's page", content_type = "text/html", body = String),
        (status = 303, description = "no session: to the login page"),
        (status = 400, description = "a query that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "no clients.read permission", content_type = "text/html", body = String),
        (status = 404, description = "no such client, or another client", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn show(
    state: web::Data<AppState>,
    caller: WebCaller,
    id: web::Path<String>,
    q: web::Query<Done>,
) -> Result<HttpResponse, WebError> {
    let page = client_page(&state, &caller, &id, q.done.as_deref(), None).await?;
    page::render(&page)
}

/// Refusals shown beside the form (the rest are error pages: 403, 404, 429, 5xx).
fn in_place(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_REQUEST | StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
    )
}

/// The API's settings PATCH with `body`; success: back to the page with a notice.
async fn patch_settings(
    state: &web::Data<AppState>,
    req: HttpRequest,
    caller: &WebCaller,
    id: &str,
    body: Value,
    done: &str,
    failed: impl FnOnce(String) -> Failed,
) -> Result<HttpResponse, WebError> {
    let result = match api::body(body) {
        Ok(body) => api::answer(
            crate::http::client_settings::update(
                state.clone(),
                req,
                caller.auth(),
                web::Path::from(id.to_owned()),
                body,
            )
            .await,
        ),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(page::see_other(&format!(
            "/console/clients/{id}?done={done}"
        ))),
        Err(e) if in_place(e.status) => {
            let status = e.status;
            let page = client_page(state, caller, id, None, Some(failed(e.message))).await?;
            page::render_status(status, &page)
        }
        Err(e) => Err(e.into()),
    }
}

/// Save the settings document (the API's `PATCH .../settings`)
#[utoipa::path(post, path = "/console/clients/{id}/settings", tag = "console",
    params(("id" = String, Path, description = "client id")),
    request_body(content = SettingsFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "saved: back to the client's page"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing CSRF token, another origin, or not a super admin", content_type = "text/html", body = String),
        (status = 404, description = "no such client", content_type = "text/html", body = String),
        (status = 409, description = "a site host another client serves: the page with the error in place", content_type = "text/html", body = String),
        (status = 422, description = "invalid fields: the page with the error in place", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn settings(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    Protected { caller, form }: Protected<SettingsFields>,
) -> Result<HttpResponse, WebError> {
    let body = form.patch();
    patch_settings(&state, req, &caller, &id, body, "settings", |m| {
        Failed::Settings(Box::new(form), m)
    })
    .await
}

/// Save the branding (the API's `PATCH .../settings` with `branding`)
#[utoipa::path(post, path = "/console/clients/{id}/branding", tag = "console",
    params(("id" = String, Path, description = "client id")),
    request_body(content = BrandingFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "saved: back to the client's page"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing CSRF token, another origin, or not a super admin", content_type = "text/html", body = String),
        (status = 404, description = "no such client", content_type = "text/html", body = String),
        (status = 422, description = "invalid fields: the page with the error in place", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn branding(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    Protected { caller, form }: Protected<BrandingFields>,
) -> Result<HttpResponse, WebError> {
    let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let body = json!({ "branding": {
        "display_name": opt(&form.display_name),
        "logo_url": opt(&form.logo_url),
        "primary_color": opt(&form.primary_color),
    }});
    patch_settings(&state, req, &caller, &id, body, "branding", |m| {
        Failed::Branding(form, m)
    })
    .await
}

/// The providers form: one `provider` field per checked box.
#[derive(ToSchema)]
pub struct ProvidersFields {
    /// a provider to enable (repeated; unchecked ones are disabled)
    #[allow(dead_code)]
    provider: Vec<String>,
}

/// Set the enabled providers (the API's `PATCH .../settings` with `enabled_providers`)
#[utoipa::path(post, path = "/console/clients/{id}/providers", tag = "console",
    params(("id" = String, Path, description = "client id")),
    request_body(content = ProvidersFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "saved: back to the client's page"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing CSRF token, another origin, or not a super admin", content_type = "text/html", body = String),
        (status = 404, description = "no such client", content_type = "text/html", body = String),
        (status = 422, description = "an unknown provider: the page with the error in place", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn providers(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    Protected { caller, form }: Protected<Vec<(String, String)>>,
) -> Result<HttpResponse, WebError> {
    let list: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "provider")
        .map(|(_, v)| v.as_str())
        .collect();
    let body = json!({ "enabled_providers": list });
    patch_settings(
        &state,
        req,
        &caller,
        &id,
        body,
        "providers",
        Failed::Providers,
    )
    .await
}

/// Store a provider's credentials (the API's `PUT .../credentials/{provider}`); never shown back
#[utoipa::path(post, path = "/console/clients/{id}/credentials/{provider}", tag = "console",
    params(("id" = String, Path, description = "client id"),
           ("provider" = String, Path, description = "jdb or luckysports")),
    request_body(content = crate::providers::credentials::ClientCredentials, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "stored (sealed): back to the client's page"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing CSRF token, another origin, or not a super admin", content_type = "text/html", body = String),
        (status = 404, description = "no such client or provider", content_type = "text/html", body = String),
        (status = 409, description = "refused: the page with the error in place", content_type = "text/html", body = String),
        (status = 422, description = "a missing or bad field (named, never its value): the page with the error in place", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn credentials(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    Protected { caller, form }: Protected<Vec<(String, String)>>,
) -> Result<HttpResponse, WebError> {
    let (id, provider) = path.into_inner();
    let Some(known) = PROVIDERS.iter().find(|p| **p == provider) else {
        return Err(WebError::NotFound);
    };
    // Only the document's own fields; an empty one is absent (the API names it as missing).
    let mut doc = Map::new();
    for (field, _) in credential_fields(known) {
        if let Some((_, v)) = form.iter().find(|(k, _)| k == field)
            && !v.trim().is_empty()
        {
            doc.insert((*field).to_owned(), Value::String(v.trim().to_owned()));
        }
    }
    let body = json!({ "credentials": doc });
    let result = match api::body(body) {
        Ok(body) => api::answer(
            crate::http::client_settings::put_credentials(
                state.clone(),
                req,
                caller.auth(),
                web::Path::from((id.clone(), provider.clone())),
                body,
            )
            .await,
        ),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(page::see_other(&format!(
            "/console/clients/{id}?done=credentials"
        ))),
        Err(e) if in_place(e.status) => {
            let status = e.status;
            let failed = Failed::Credentials {
                provider,
                kept: doc,
                message: e.message,
            };
            let page = client_page(&state, &caller, &id, None, Some(failed)).await?;
            page::render_status(status, &page)
        }
        Err(e) => Err(e.into()),
    }
}

/// The caller's own client's page (a client's staff; platform staff have none: 404)
#[utoipa::path(get, path = "/console/client", tag = "console",
    responses(
        (status = 303, description = "to the client's page (or, without a session, to the login page)"),
        (status = 403, description = "a player", content_type = "text/html", body = String),
        (status = 404, description = "platform staff: no own client", content_type = "text/html", body = String),
    ))]
pub async fn own(state: web::Data<AppState>, caller: WebCaller) -> Result<HttpResponse, WebError> {
    // The page itself checks `clients.read`; this only finds the caller's client.
    super::home::chrome(&state, &caller, "client.title", "/client")?;
    match &caller.caller.client_id {
        Some(id) => Ok(page::see_other(&format!("/console/clients/{id}"))),
        None => Err(WebError::NotFound),
    }
}
