//! `/api/v1/clients`: white-label tenants (super admins manage; client admins read their own).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{Auth, Page};
use super::openapi::{BadBody, Conflict, Invalid, Secured, Unavailable, Unknown};
use super::views::{self, Client};
use crate::access;
use crate::audit::Event;
use crate::auth::permissions as perm;
use crate::domain::{ClientStatus, Currency, Role, names, new_id, now_ms};
use crate::ledger::accounts;
use crate::state::AppState;
use crate::store::ClientRow;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    /// 2 to 32 of a-z 0-9 _ - (stored lower-case)
    #[schema(pattern = "^[A-Za-z0-9_-]{2,32}$")]
    code: String,
    /// 1 to 128 characters
    name: String,
    /// ISO 4217 code
    #[schema(example = "USD")]
    currency: String,
    /// decimals of the currency (default 2)
    currency_exponent: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateClient {
    name: Option<String>,
    /// active or suspended
    #[schema(pattern = "^(active|suspended)$")]
    status: Option<String>,
}

fn client_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if (1..=128).contains(&name.chars().count()) {
        Ok(name.to_owned())
    } else {
        Err(ApiError::validation("name must be 1 to 128 characters"))
    }
}

/// Create a client (super admin)
#[utoipa::path(post, path = "/api/v1/clients", tag = "clients", security(("bearer" = [])),
    request_body = CreateClient,
    responses(
        (status = 201, description = "success", body = Client),
        Secured, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    body: web::Json<CreateClient>,
) -> Result<HttpResponse, ApiError> {
    if caller.role != Role::SuperAdmin || !caller.can(perm::CLIENTS_MANAGE) {
        return Err(ApiError::forbidden());
    }
    let code = names::client_code(&body.code).map_err(ApiError::validation)?;
    let name = client_name(&body.name)?;
    let currency = Currency::parse(&body.currency, body.currency_exponent.unwrap_or(2))
        .map_err(ApiError::validation)?;
    let now = now_ms();
    let client = ClientRow {
        id: new_id(),
        code,
        name,
        currency: currency.clone(),
        status: ClientStatus::Active,
        created_at: now,
    };
    state
        .store
        .insert_client(
            &client,
            &accounts::house_accounts(&client.id, &currency.code),
        )
        .await?;
    Event::new("client.create")
        .by(&caller)
        .client(Some(&client.id))
        .target("client", &client.id)
        .after(views::client(&client))
        .ip(super::auth::peer_ip(&req))
        .record(&state.store)
        .await?;
    tracing::info!(client_id = %client.id, code = %client.code, "client created");
    Ok(HttpResponse::Created().json(views::client(&client)))
}

/// The client if the caller may read it: super admins any, client admins their own.
pub(crate) async fn readable(
    state: &AppState,
    caller: &crate::auth::Caller,
    id: &str,
) -> Result<ClientRow, ApiError> {
    may_read(caller, id)?;
    Ok(access::client(&state.store, id).await?)
}

/// The rule of [`readable`] without the load: reach, then `clients.read`.
pub(crate) fn may_read(caller: &crate::auth::Caller, id: &str) -> Result<(), ApiError> {
    access::client_reach(caller, id).require("client")?;
    if caller.role != Role::SuperAdmin && !caller.can(perm::CLIENTS_READ) {
        return Err(ApiError::forbidden());
    }
    Ok(())
}

/// The clients a caller may list, by id after `after`, at most `fetch`: the platform every
/// client, a client admin their own, anyone else 403.
pub(crate) async fn listed(
    state: &AppState,
    caller: &crate::auth::Caller,
    after: Option<&str>,
    fetch: i64,
) -> Result<Vec<ClientRow>, ApiError> {
    Ok(match caller.role {
        _ if !caller.can(perm::CLIENTS_READ) => return Err(ApiError::forbidden()),
        Role::SuperAdmin => state.store.list_clients(after, fetch).await?,
        Role::ClientAdmin => {
            let own = caller.client_id.as_deref().unwrap_or_default();
            state
                .store
                .client(own)
                .await?
                .into_iter()
                .filter(|c| after.is_none_or(|after| c.id.as_str() > after))
                .collect()
        }
        _ => return Err(ApiError::forbidden()),
    })
}

/// Get a client
#[utoipa::path(get, path = "/api/v1/clients/{id}", tag = "clients", security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = Client),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn get(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let client = readable(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(views::client(&client)))
}

/// List clients
#[utoipa::path(get, path = "/api/v1/clients", tag = "clients", security(("bearer" = [])),
    params(Page),
    responses(
        (status = 200, description = "success", body = views::Page<Client>),
        Secured, Invalid, Unavailable,
    ))]
pub async fn list(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    page: Page,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit()?;
    let clients = listed(&state, &caller, page.cursor(), limit.fetch()).await?;
    Ok(HttpResponse::Ok().json(limit.page(clients, |c| c.id.clone(), views::client)))
}

/// Rename, suspend or reactivate a client (super admin)
///
/// Suspending ends every session of the client's users at once.
#[utoipa::path(patch, path = "/api/v1/clients/{id}", tag = "clients", security(("bearer" = [])),
    request_body = UpdateClient,
    responses(
        (status = 200, description = "success", body = Client),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    id: web::Path<String>,
    body: web::Json<UpdateClient>,
) -> Result<HttpResponse, ApiError> {
    let before = super::client_settings::writable(&state, &caller, &id).await?;
    let name = body.name.as_deref().map(client_name).transpose()?;
    let status = body
        .status
        .as_deref()
        .map(str::parse::<ClientStatus>)
        .transpose()
        .map_err(|_| ApiError::validation("status must be active or suspended"))?;
    if !state
        .store
        .update_client(&id, name.as_deref(), status, now_ms())
        .await?
    {
        return Err(ApiError::not_found("client"));
    }
    let client = access::client(&state.store, &id).await?;
    if client.status != ClientStatus::Active && before.status == ClientStatus::Active {
        // A suspended client's users are out at once, not when their tokens expire.
        state.store.revoke_client_sessions(&client.id).await?;
    }
    let action = match (before.status, client.status) {
        (ClientStatus::Active, ClientStatus::Suspended) => "client.suspend",
        (ClientStatus::Suspended, ClientStatus::Active) => "client.reactivate",
        _ => "client.update",
    };
    Event::new(action)
        .by(&caller)
        .client(Some(&client.id))
        .target("client", &client.id)
        .before(json!({ "name": before.name, "status": before.status }))
        .after(json!({ "name": client.name, "status": client.status }))
        .ip(super::auth::peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(views::client(&client)))
}
