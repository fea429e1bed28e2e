//! Provider registration for super admins (issue 21): `GET /api/v1/providers`,
//! `GET`/`PATCH /api/v1/providers/{provider}` (the `providers` rows), and
//! `POST /api/v1/providers/{provider}/games/refresh` (fetch the game list now).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::Auth;
use super::openapi::{BadBody, Invalid, Secured, Unavailable, Unknown};
use super::views::to_value;
use crate::auth::Caller;
use crate::domain::{Role, now_ms, rfc3339_ms};
use crate::state::AppState;
use crate::store::{ProviderPatch, ProviderRow};
use crate::transfers::catalog::{PROVIDER_ACTIVE, PROVIDER_DISABLED};

fn platform_only(caller: &Caller) -> Result<(), ApiError> {
    if caller.role == Role::SuperAdmin {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// A registered game provider.
#[derive(Serialize, ToSchema)]
pub struct Provider {
    #[schema(example = "jdb")]
    code: String,
    /// the compiled adapter that speaks its wire protocol
    #[schema(example = "jdb")]
    protocol: String,
    name: String,
    /// default API address of configured accounts that give none (read at start-up)
    base_url: Option<String>,
    /// active or disabled (disabled: no transfers in or launches; transfers out still work)
    #[schema(pattern = "^(active|disabled)$", example = "active")]
    status: String,
    /// RFC 3339
    created_at: String,
    /// RFC 3339
    updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderList {
    items: Vec<Provider>,
}

/// What a catalogue refresh changed.
#[derive(Serialize, ToSchema)]
pub struct CatalogueRefresh {
    provider: String,
    /// the provider's active games now
    games: usize,
    added: u64,
    updated: u64,
    removed: u64,
}

fn view(r: &ProviderRow) -> Provider {
    Provider {
        code: r.code.clone(),
        protocol: r.protocol.clone(),
        name: r.name.clone(),
        base_url: r.base_url.clone(),
        status: r.status.clone(),
        created_at: rfc3339_ms(r.created_at),
        updated_at: rfc3339_ms(r.updated_at),
    }
}

/// Registered providers (super admins)
///
/// Every provider row this node serves (a row whose protocol is not compiled in is not served).
#[utoipa::path(get, path = "/api/v1/providers", tag = "games", security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = ProviderList),
        Secured,
    ))]
pub async fn list(
    state: web::Data<AppState>,
    Auth(caller): Auth,
) -> Result<HttpResponse, ApiError> {
    platform_only(&caller)?;
    let items = state.providers.provider_rows().iter().map(view).collect();
    Ok(HttpResponse::Ok().json(ProviderList { items }))
}

/// One registered provider (super admins)
#[utoipa::path(get, path = "/api/v1/providers/{provider}", tag = "games",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = Provider),
        Secured, Unknown, Invalid,
    ))]
pub async fn get(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    platform_only(&caller)?;
    let row = state.providers.provider_row(&code)?;
    Ok(HttpResponse::Ok().json(view(&row)))
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProviderPatch)]
pub struct PatchBody {
    /// 1 to 128 characters
    name: Option<String>,
    /// absolute http(s) URL without credentials, query or fragment, at most 512 characters;
    /// null clears it
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "https://api.provider.example")]
    base_url: Option<Option<String>>,
    /// active or disabled
    #[schema(pattern = "^(active|disabled)$")]
    status: Option<String>,
}

fn checked_url(text: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::validation(
            "base_url must be an absolute http(s) URL, at most 512 characters, without credentials, query or fragment",
        )
    };
    let url = reqwest::Url::parse(text).map_err(|_| bad())?;
    if text.len() > 512
        || !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none_or(str::is_empty)
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(bad());
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// Rename, set the default base URL or disable a provider (super admins)
///
/// At least one field. Takes effect on this node at once and on others within seconds;
/// `base_url` is read at start-up (the default of configured accounts that give none). A
/// disabled provider refuses transfers in and launches (403 provider_inactive), never
/// transfers out. Audited as `provider.update`.
#[utoipa::path(patch, path = "/api/v1/providers/{provider}", tag = "games",
    security(("bearer" = [])), request_body = PatchBody,
    responses(
        (status = 200, description = "success", body = Provider),
        Secured, Unknown, Invalid, BadBody, Unavailable,
    ))]
pub async fn update(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    code: web::Path<String>,
    body: web::Json<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    platform_only(&caller)?;
    let before = state.providers.provider_row(&code)?;
    let body = body.into_inner();
    if body.name.is_none() && body.base_url.is_none() && body.status.is_none() {
        return Err(ApiError::validation("name, base_url or status"));
    }
    if let Some(name) = &body.name
        && (name.trim().is_empty() || name.chars().count() > 128)
    {
        return Err(ApiError::validation("name must be 1 to 128 characters"));
    }
    if let Some(status) = &body.status
        && status != PROVIDER_ACTIVE
        && status != PROVIDER_DISABLED
    {
        return Err(ApiError::validation("status must be active or disabled"));
    }
    let base_url = match body.base_url {
        Some(Some(text)) => Some(Some(checked_url(&text)?)),
        other => other,
    };
    let patch = ProviderPatch {
        name: body.name.map(|n| n.trim().to_owned()),
        base_url,
        status: body.status,
    };
    if !state
        .store
        .update_provider(&before.code, &patch, now_ms())
        .await?
    {
        return Err(ApiError::not_found("provider"));
    }
    state.providers.reload_provider_rows().await?;
    let after = state.providers.provider_row(&before.code)?;
    crate::audit::Event::new("provider.update")
        .by(&caller)
        .target("provider", &after.code)
        .before(to_value(view(&before)))
        .after(to_value(view(&after)))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(view(&after)))
}

/// Fetch the provider's game list now into the catalogue (super admins)
///
/// Answers what changed. Audited as `provider.games_refresh`.
#[utoipa::path(post, path = "/api/v1/providers/{provider}/games/refresh", tag = "games",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = CatalogueRefresh),
        (status = 502, description = "the provider refused or garbled the game list (provider_refused)", body = super::error::ErrorBody),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn refresh_games(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    platform_only(&caller)?;
    let change = state.providers.refresh_games(&code).await?;
    let active = state
        .store
        .provider_games(&code)
        .await?
        .iter()
        .filter(|g| g.status == "active")
        .count();
    let body = CatalogueRefresh {
        provider: code.into_inner(),
        games: active,
        added: change.added,
        updated: change.updated,
        removed: change.removed,
    };
    crate::audit::Event::new("provider.games_refresh")
        .by(&caller)
        .target("provider", &body.provider)
        .after(to_value(&body))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(body))
}
