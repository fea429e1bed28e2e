//! `/api/v1/clients/{id}/settings` and `/credentials/{provider}`: per-client configuration
//! (super admins write, the client's admins read) and provider credentials, validated
//! (`providers::credentials`), sealed with AES-256-GCM and never returned in clear; each
//! client's provider account is built from them (`transfers::accounts`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::auth::peer_ip;
use super::error::ApiError;
use super::extract::Auth;
use super::openapi::{BadBody, Conflict, Invalid, Secured, Unavailable, Unknown};
use crate::access::{self, Reach};
use crate::audit::Event;
use crate::auth::Caller;
use crate::auth::permissions as perm;
use crate::clients::settings::{
    Branding, COMMISSION_BASES, Limits, MAX_ORIGINS, MAX_SITE_HOSTS, PROVIDERS, SCHEDULES,
    parse_origin, parse_site_host,
};
use crate::domain::{Amount, Role, new_id, now_ms, rfc3339_ms};
use crate::ledger::settlement::Rate;
use crate::providers::credentials::ClientCredentials;
use crate::secrets::Sealed;
use crate::state::AppState;
use crate::store::{ClientRow, SecretRow};

/// Every field given replaces the stored one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ClientSettingsPatch)]
pub struct SettingsPatch {
    /// jdb, luckysports
    #[schema(example = json!(["jdb", "luckysports"]))]
    enabled_providers: Option<Vec<String>>,
    /// 0 to 1, at most 4 decimals
    #[schema(example = "0.0500")]
    commission_rate: Option<String>,
    /// 0 to 1, at most 4 decimals
    #[schema(example = "0.1000")]
    revenue_share_rate: Option<String>,
    branding: Option<Branding>,
    limits: Option<Limits>,
    /// `https://host[:port]` of the client's own sites (CORS), at most 20
    #[schema(example = json!(["https://play.brand.example"]))]
    allowed_origins: Option<Vec<String>>,
    /// what agents' commission is a share of (issue 21)
    #[schema(pattern = "^(ngr|turnover)$", example = "ngr")]
    commission_basis: Option<String>,
    /// a negative period result reduces the agent's next periods' commission until recovered
    commission_negative_carryover: Option<bool>,
    /// periods the scheduler settles by itself: none, daily, weekly (Monday to Monday), monthly
    #[schema(pattern = "^(none|daily|weekly|monthly)$", example = "daily")]
    settlement_schedule: Option<String>,
    /// IANA time zone name of the schedule's midnight
    #[schema(example = "Asia/Manila")]
    timezone: Option<String>,
    /// hours, 24 to 720, before a player's raised limit applies (lowering applies at once)
    #[schema(minimum = 24, maximum = 720, example = 24)]
    limit_raise_cooloff_hours: Option<u32>,
    /// the client's admins and agents must log in with a TOTP second factor
    staff_totp_required: Option<bool>,
    /// host names (`host[:port]`) serving the client's player site at `/` (issue 27), at most
    /// 10; a host another client lists is 409 `site_host_taken`
    #[schema(example = json!(["play.brand.example"]))]
    site_hosts: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsBody {
    /// Provider account fields (operator id, keys); sealed as one JSON document, never
    /// returned; validated before it is sealed (422 with error.field naming the bad field).
    #[schema(value_type = ClientCredentials)]
    credentials: serde_json::Map<String, serde_json::Value>,
}

fn rate(field: &str, text: &str) -> Result<String, ApiError> {
    Rate::parse(text).map(Rate::to_text).ok_or_else(|| {
        ApiError::validation(format!(
            "{field} must be a decimal from 0 to 1 with at most 4 decimals"
        ))
    })
}

fn limit(field: &str, value: Option<&str>, client: &ClientRow) -> Result<Option<String>, ApiError> {
    value
        .map(|v| {
            let exponent = client.currency.exponent;
            Amount::parse(v, exponent)
                .map(|a| crate::domain::format_minor(a.minor(), exponent))
                .map_err(|e| ApiError::validation(format!("{field}: {e}")))
        })
        .transpose()
}

fn short_text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>, ApiError> {
    value
        .map(|v| {
            let v = v.trim();
            if v.chars().count() <= max && !v.chars().any(char::is_control) {
                Ok(v.to_owned())
            } else {
                Err(ApiError::validation(format!(
                    "{field} must be at most {max} printable characters"
                )))
            }
        })
        .transpose()
}

/// Validated, deduplicated site host names; one listed by another client is a conflict.
async fn site_hosts(
    state: &AppState,
    client: &ClientRow,
    hosts: &[String],
) -> Result<Vec<String>, ApiError> {
    if hosts.len() > MAX_SITE_HOSTS {
        return Err(ApiError::validation(format!(
            "site_hosts: at most {MAX_SITE_HOSTS} host names"
        ))
        .with_field("site_hosts"));
    }
    let mut list: Vec<String> = Vec::new();
    for h in hosts {
        let host = parse_site_host(h).ok_or_else(|| {
            ApiError::validation(format!(
                "site_hosts: {h:?} is not a host name (host[:port], no scheme or path)"
            ))
            .with_field("site_hosts")
        })?;
        if let Some(owner) =
            crate::clients::settings::client_of_site_host(&state.store, &host).await?
            && owner != client.id
        {
            return Err(ApiError::conflict(
                "site_host_taken",
                format!("site_hosts: {host} already serves another client's site"),
            ));
        }
        if !list.contains(&host) {
            list.push(host);
        }
    }
    Ok(list)
}

/// The client when the caller may read its settings (super admins; its own `clients.read`).
async fn readable(state: &AppState, caller: &Caller, id: &str) -> Result<ClientRow, ApiError> {
    let own = caller.client_id.as_deref() == Some(id);
    if access::client_reach(caller, id) == Reach::OtherClient {
        return Err(ApiError::not_found("client"));
    }
    if !(caller.can(perm::CLIENTS_MANAGE) || (own && caller.can(perm::CLIENTS_READ))) {
        return Err(ApiError::forbidden());
    }
    Ok(access::client(&state.store, id).await?)
}

/// The client when the caller may change it: platform callers with `clients.manage`.
pub async fn writable(state: &AppState, caller: &Caller, id: &str) -> Result<ClientRow, ApiError> {
    if access::client_reach(caller, id) == Reach::OtherClient {
        return Err(ApiError::not_found("client"));
    }
    if caller.role != Role::SuperAdmin || !caller.can(perm::CLIENTS_MANAGE) {
        return Err(ApiError::forbidden());
    }
    Ok(access::client(&state.store, id).await?)
}

/// A client's settings; credentials as metadata only.
#[derive(Serialize, ToSchema)]
#[schema(as = ClientSettings)]
pub struct SettingsView {
    client_id: String,
    currency: String,
    currency_exponent: i64,
    enabled_providers: Vec<String>,
    /// 0 to 1, at most 4 decimals
    commission_rate: String,
    /// 0 to 1, at most 4 decimals
    revenue_share_rate: String,
    branding: Branding,
    limits: Limits,
    /// Sites of the client that browsers may call the API from (CORS)
    allowed_origins: Vec<String>,
    /// what agents' commission is a share of: ngr, or turnover (the players' stakes)
    #[schema(pattern = "^(ngr|turnover)$", example = "ngr")]
    commission_basis: String,
    commission_negative_carryover: bool,
    /// none, daily, weekly or monthly
    #[schema(pattern = "^(none|daily|weekly|monthly)$", example = "none")]
    settlement_schedule: String,
    /// IANA time zone name
    #[schema(example = "UTC")]
    timezone: String,
    /// hours before a player's raised limit applies
    limit_raise_cooloff_hours: u32,
    staff_totp_required: bool,
    /// host names serving the client's player site
    site_hosts: Vec<String>,
    credentials: Vec<CredentialsInfo>,
}

/// Stored provider credentials, described (never their values).
#[derive(Serialize, ToSchema)]
pub struct CredentialsInfo {
    provider: String,
    configured: bool,
    /// the sealing key's id
    key_id: String,
    version: i64,
    /// RFC 3339
    updated_at: String,
}

async fn view(state: &AppState, client: &ClientRow) -> Result<SettingsView, ApiError> {
    let settings = (*crate::clients::settings::load(&state.store, &client.id).await?).clone();
    let credentials = state
        .store
        .client_secrets(&client.id)
        .await?
        .iter()
        .map(|s| CredentialsInfo {
            provider: s.name.clone(),
            configured: true,
            key_id: s.key_id.clone(),
            version: s.version,
            updated_at: rfc3339_ms(s.updated_at),
        })
        .collect();
    Ok(SettingsView {
        client_id: client.id.clone(),
        currency: client.currency.code.clone(),
        currency_exponent: i64::from(client.currency.exponent),
        enabled_providers: settings.enabled_providers,
        commission_rate: settings.commission_rate,
        revenue_share_rate: settings.revenue_share_rate,
        branding: settings.branding,
        limits: settings.limits,
        allowed_origins: settings.allowed_origins,
        commission_basis: settings.commission_basis,
        commission_negative_carryover: settings.commission_negative_carryover,
        settlement_schedule: settings.settlement_schedule,
        timezone: settings.timezone,
        limit_raise_cooloff_hours: settings.limit_raise_cooloff_hours,
        staff_totp_required: settings.staff_totp_required,
        site_hosts: settings.site_hosts,
        credentials,
    })
}

/// A client's settings; credentials as metadata only
#[utoipa::path(get, path = "/api/v1/clients/{id}/settings", tag = "clients",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = SettingsView),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn get(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let client = readable(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(view(&state, &client).await?))
}

/// Change settings (super admin)
#[utoipa::path(patch, path = "/api/v1/clients/{id}/settings", tag = "clients",
    security(("bearer" = [])), request_body = SettingsPatch,
    responses(
        (status = 200, description = "success", body = SettingsView),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    id: web::Path<String>,
    body: web::Json<SettingsPatch>,
) -> Result<HttpResponse, ApiError> {
    let client = writable(&state, &caller, &id).await?;
    let before = (*crate::clients::settings::load(&state.store, &client.id).await?).clone();
    let mut next = before.clone();
    let body = body.into_inner();
    if let Some(providers) = body.enabled_providers {
        let mut list = Vec::new();
        for p in providers {
            if !PROVIDERS.contains(&p.as_str()) {
                return Err(ApiError::validation(format!(
                    "unknown provider {p:?}; known: jdb, luckysports"
                )));
            }
            if !list.contains(&p) {
                list.push(p);
            }
        }
        next.enabled_providers = list;
    }
    if let Some(r) = &body.commission_rate {
        next.commission_rate = rate("commission_rate", r)?;
    }
    if let Some(r) = &body.revenue_share_rate {
        next.revenue_share_rate = rate("revenue_share_rate", r)?;
    }
    if let Some(b) = body.branding {
        next.branding = Branding {
            display_name: short_text("branding.display_name", b.display_name.as_deref(), 128)?,
            logo_url: short_text("branding.logo_url", b.logo_url.as_deref(), 512)?,
            primary_color: short_text("branding.primary_color", b.primary_color.as_deref(), 32)?,
        };
    }
    if let Some(l) = body.limits {
        next.limits = Limits {
            max_deposit: limit("limits.max_deposit", l.max_deposit.as_deref(), &client)?,
            max_withdrawal: limit(
                "limits.max_withdrawal",
                l.max_withdrawal.as_deref(),
                &client,
            )?,
            max_transfer: limit("limits.max_transfer", l.max_transfer.as_deref(), &client)?,
        };
    }
    if let Some(origins) = body.allowed_origins {
        if origins.len() > MAX_ORIGINS {
            return Err(ApiError::validation(format!(
                "allowed_origins: at most {MAX_ORIGINS} origins"
            ))
            .with_field("allowed_origins"));
        }
        let mut list: Vec<String> = Vec::new();
        for o in &origins {
            let origin = parse_origin(o).ok_or_else(|| {
                ApiError::validation(format!(
                    "allowed_origins: {o:?} is not an origin (http(s)://host[:port], no path)"
                ))
                .with_field("allowed_origins")
            })?;
            if !list.contains(&origin) {
                list.push(origin);
            }
        }
        next.allowed_origins = list;
    }
    if let Some(b) = body.commission_basis {
        if !COMMISSION_BASES.contains(&b.as_str()) {
            return Err(ApiError::validation(format!(
                "commission_basis must be one of: {}",
                COMMISSION_BASES.join(", ")
            ))
            .with_field("commission_basis"));
        }
        next.commission_basis = b;
    }
    if let Some(c) = body.commission_negative_carryover {
        next.commission_negative_carryover = c;
    }
    if let Some(schedule) = body.settlement_schedule {
        if !SCHEDULES.contains(&schedule.as_str()) {
            return Err(ApiError::validation(format!(
                "settlement_schedule must be one of: {}",
                SCHEDULES.join(", ")
            ))
            .with_field("settlement_schedule"));
        }
        next.settlement_schedule = schedule;
    }
    if let Some(hours) = body.limit_raise_cooloff_hours {
        if !crate::clients::settings::COOLOFF_HOURS.contains(&hours) {
            return Err(
                ApiError::validation("limit_raise_cooloff_hours must be 24 to 720")
                    .with_field("limit_raise_cooloff_hours"),
            );
        }
        next.limit_raise_cooloff_hours = hours;
    }
    if let Some(required) = body.staff_totp_required {
        next.staff_totp_required = required;
    }
    if let Some(hosts) = body.site_hosts {
        next.site_hosts = site_hosts(&state, &client, &hosts).await?;
    }
    if let Some(tz) = body.timezone {
        if tz.parse::<chrono_tz::Tz>().is_err() {
            return Err(ApiError::validation(
                "timezone must be an IANA time zone name such as UTC or Europe/Berlin",
            )
            .with_field("timezone"));
        }
        next.timezone = tz;
    }
    let text = serde_json::to_string(&next).map_err(|_| ApiError::internal())?;
    state
        .store
        .put_client_settings(&client.id, &text, now_ms())
        .await?;
    Event::new("client.settings_update")
        .by(&caller)
        .client(Some(&client.id))
        .target("client", &client.id)
        .before(serde_json::to_value(&before).map_err(|_| ApiError::internal())?)
        .after(serde_json::to_value(&next).map_err(|_| ApiError::internal())?)
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(view(&state, &client).await?))
}

/// Store the client's own provider account credentials (validated, sealed with AES-256-GCM); every node uses them at once
///
/// Answers metadata only.
#[utoipa::path(put, path = "/api/v1/clients/{id}/credentials/{provider}", tag = "clients",
    security(("bearer" = [])), request_body = CredentialsBody,
    responses(
        (status = 200, description = "success", body = CredentialsInfo),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn put_credentials(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
    body: web::Json<CredentialsBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, provider) = path.into_inner();
    let client = writable(&state, &caller, &id).await?;
    if !PROVIDERS.contains(&provider.as_str()) {
        return Err(ApiError::not_found("provider"));
    }
    // A document the provider account could not be built from is never stored.
    ClientCredentials::parse(&provider, &body.credentials).map_err(|e| {
        ApiError::validation(format!("{} {}", e.field, e.message)).with_field(e.field)
    })?;
    let plain = serde_json::to_vec(&body.credentials).map_err(|_| ApiError::internal())?;
    let now = now_ms();
    let existing = state.store.client_secret(&client.id, &provider).await?;
    let (record_id, created_at) = existing
        .as_ref()
        .map_or_else(|| (new_id(), now), |s| (s.id.clone(), s.created_at));
    let Sealed {
        key_id,
        nonce,
        ciphertext,
    } = state.secrets.seal(&record_id, &plain);
    let row = SecretRow {
        id: record_id,
        client_id: client.id.clone(),
        name: provider.clone(),
        key_id,
        nonce,
        ciphertext,
        created_at,
        updated_at: now,
        version: 0,
    };
    // Every node's provider registry rebuilds this client's account from it (this one at once).
    let version = state.store.put_client_secret(&row).await?;
    // The audit row names the fields changed, never their values.
    let fields: Vec<&String> = body.credentials.keys().collect();
    Event::new("client.credentials_update")
        .by(&caller)
        .client(Some(&client.id))
        .target("client_secret", &row.id)
        .before(json!({ "configured": existing.is_some() }))
        .after(json!({ "provider": provider, "fields": fields, "key_id": row.key_id, "version": version }))
        .ip(peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(CredentialsInfo {
        provider,
        configured: true,
        key_id: row.key_id,
        version,
        updated_at: rfc3339_ms(row.updated_at),
    }))
}
