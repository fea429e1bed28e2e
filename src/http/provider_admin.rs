//! Provider registration for super admins (issue 21): `GET /api/v1/providers`,
//! `GET`/`PATCH /api/v1/providers/{provider}` (the `providers` rows), and
//! `POST /api/v1/providers/{provider}/games/refresh` (fetch the game list now).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::Auth;
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

fn view(r: &ProviderRow) -> Value {
    json!({
        "code": r.code,
        "protocol": r.protocol,
        "name": r.name,
        "base_url": r.base_url,
        "status": r.status,
        "created_at": rfc3339_ms(r.created_at),
        "updated_at": rfc3339_ms(r.updated_at),
    })
}

/// Every provider row this node serves (a row whose protocol is not compiled in is not served).
pub async fn list(
    state: web::Data<AppState>,
    Auth(caller): Auth,
) -> Result<HttpResponse, ApiError> {
    platform_only(&caller)?;
    let items: Vec<Value> = state.providers.provider_rows().iter().map(view).collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    base_url: Option<Option<String>>,
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

/// `PATCH /api/v1/providers/{provider}` `{"name"?, "base_url"? (null clears), "status"?
/// ("active" | "disabled")}`: takes effect on this node at once and on others within
/// `catalog::REGISTRY_RELOAD`; `base_url` is read at start-up (the default of configured
/// accounts that give none). Audited as `provider.update`.
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
        .before(view(&before))
        .after(view(&after))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(view(&after)))
}

/// `POST /api/v1/providers/{provider}/games/refresh`: fetches the provider's game list now and
/// stores it; answers what changed. Audited as `provider.games_refresh`.
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
    let body = json!({
        "provider": code.as_str(),
        "games": active,
        "added": change.added,
        "updated": change.updated,
        "removed": change.removed,
    });
    crate::audit::Event::new("provider.games_refresh")
        .by(&caller)
        .target("provider", &code)
        .after(body.clone())
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(body))
}
