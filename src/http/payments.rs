//! `/api/v1/payments/...` (deposits and withdrawals through gateways, issue 18), the gateways'
//! webhooks at `/callbacks/payments/{gateway}`, and per-client payment settings, gateway
//! credentials and statements under `/api/v1/clients/{id}/`. Handlers parse and authorize;
//! `payments::service` does the work.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{Auth, IdempotencyKey, Page};
use super::openapi::{BadBody, BadCredentials, Conflict, Invalid, Secured, Unavailable, Unknown};
use super::users::reachable_user;
use crate::access::{self, Reach};
use crate::audit::Event;
use crate::auth::Caller;
use crate::auth::permissions as perm;
use crate::domain::{
    Amount, Currency, PaymentKind, PaymentState, Role, new_id, now_ms, rfc3339_ms,
};
use crate::payments::registry::{GatewayCredentials, secret_name};
use crate::payments::settings::PaymentSettings;
use crate::payments::{PaymentError, PaymentRequest};
use crate::secrets::Sealed;
use crate::state::AppState;
use crate::store::{PaymentFilter, PaymentRow, SecretRow};

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        use actix_web::http::StatusCode;
        match e {
            PaymentError::UnknownGateway => ApiError::not_found("gateway"),
            PaymentError::GatewayNotEnabled => ApiError::new(
                StatusCode::FORBIDDEN,
                "gateway_not_enabled",
                "this payment gateway is not enabled for your casino",
            ),
            PaymentError::Unavailable(_) => ApiError::unavailable(
                "gateway_unavailable",
                "the payment gateway is unavailable; try again later",
            ),
            PaymentError::Refused {
                code,
                message,
                field,
            } => {
                let e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
                match field {
                    Some(f) => e.with_field(f),
                    None => e,
                }
            }
            PaymentError::InsufficientFunds => ApiError::conflict(
                "insufficient_funds",
                "the balance is too low for this amount",
            ),
            PaymentError::WrongState(s) => ApiError::conflict(
                "payment_state",
                format!("the payment is {s}: not possible now"),
            ),
            PaymentError::Webhook(w) => {
                use crate::payments::gateway::WebhookError as W;
                match w {
                    W::Unsigned | W::BadSignature => {
                        ApiError::unauthorized("invalid_signature", w.to_string())
                    }
                    W::Stale => ApiError::unauthorized("stale_timestamp", w.to_string()),
                    W::Malformed(m) => ApiError::validation(m),
                }
            }
            PaymentError::UnknownPayment => ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_payment",
                "the event names no payment of this hub",
            ),
            PaymentError::Store(e) => e.into(),
            PaymentError::Wallet(e) => e.into(),
            PaymentError::Protection(e) => e.into(),
        }
    }
}

/// A deposit or withdrawal request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    /// The player; default: the caller (a player).
    user_id: Option<String>,
    /// `stripe`
    gateway: String,
    /// A decimal string in the client's currency.
    #[schema(value_type = String, example = "100.00")]
    amount: serde_json::Value,
    /// Withdrawals: the player's destination at the gateway (Stripe: `ba_...` or `card_...`).
    destination: Option<String>,
    #[schema(min_length = 1, max_length = 128)]
    idempotency_key: Option<String>,
}

/// A payment as it stands.
#[derive(Serialize, ToSchema)]
pub struct Payment {
    id: String,
    client_id: String,
    user_id: String,
    /// deposit or withdrawal
    kind: String,
    gateway: String,
    /// created, pending, paid, failed, expired, cancelled (deposits); requested, approved,
    /// processing, paid, failed, rejected, cancelled (withdrawals)
    state: String,
    amount: String,
    /// what the gateway reports paid (deposits)
    paid_amount: Option<String>,
    fee: String,
    currency: String,
    /// paid an amount different from the request
    flagged: bool,
    reason: Option<String>,
    /// the hosted checkout page (deposits)
    checkout_url: Option<String>,
    gateway_ref: Option<String>,
    destination: Option<String>,
    requested_by: String,
    decided_by: Option<String>,
    created_at: String,
    updated_at: String,
    settled_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentPage {
    items: Vec<Payment>,
    next_cursor: Option<String>,
}

fn view(p: &PaymentRow, currency: &Currency) -> Payment {
    Payment {
        id: p.id.clone(),
        client_id: p.client_id.clone(),
        user_id: p.user_id.clone(),
        kind: p.kind.as_str().to_owned(),
        gateway: p.gateway.clone(),
        state: p.state.as_str().to_owned(),
        amount: currency.format(p.amount),
        paid_amount: p.paid_amount.map(|a| currency.format(a)),
        fee: currency.format(p.fee),
        currency: currency.code.clone(),
        flagged: p.flagged,
        reason: p.reason.clone(),
        checkout_url: p.checkout_url.clone(),
        gateway_ref: p.gateway_ref.clone(),
        destination: p.destination.clone(),
        requested_by: p.requested_by.clone(),
        decided_by: p.decided_by.clone(),
        created_at: rfc3339_ms(p.created_at),
        updated_at: rfc3339_ms(p.updated_at),
        settled_at: p.settled_at.map(rfc3339_ms),
    }
}

/// The player a request is for: the caller itself (a player), or a player in reach of an agent
/// or admin with `payments.request`. Other client 404, outside reach 403.
async fn target_player(
    state: &AppState,
    caller: &Caller,
    user_id: Option<&str>,
) -> Result<crate::store::UserRow, ApiError> {
    if caller.role == Role::SuperAdmin {
        return Err(ApiError::forbidden());
    }
    let id = user_id.unwrap_or(&caller.user_id);
    let user = reachable_user(state, caller, id).await?;
    if user.role != Role::Player {
        return Err(ApiError::validation("payments are for players").with_field("user_id"));
    }
    if user.id != caller.user_id && !caller.can(perm::PAYMENTS_REQUEST) {
        return Err(ApiError::forbidden());
    }
    Ok(user)
}

async fn request(
    state: web::Data<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: PaymentBody,
    kind: PaymentKind,
) -> Result<HttpResponse, ApiError> {
    let key = key.or_body(body.idempotency_key)?;
    let user = target_player(&state, &caller, body.user_id.as_deref()).await?;
    let (client, currency) = access::wallet_client(&state.store, &user).await?;
    let amount = match &body.amount {
        serde_json::Value::String(text) => Amount::parse(text, currency.exponent)?,
        _ => return Err(crate::domain::AmountError::NotADecimal.into()),
    };
    if amount.minor() <= 0 {
        return Err(ApiError::validation("amount must be positive").with_field("amount"));
    }
    let destination = match kind {
        PaymentKind::Deposit => None,
        PaymentKind::Withdrawal => Some(
            body.destination
                .filter(|d| (1..=128).contains(&d.len()) && d.chars().all(|c| c.is_ascii_graphic()))
                .ok_or_else(|| {
                    ApiError::validation("destination: 1 to 128 printable characters")
                        .with_field("destination")
                })?,
        ),
    };
    let req = PaymentRequest {
        client,
        user_id: user.id.clone(),
        actor_id: caller.user_id.clone(),
        idempotency_key: key,
        gateway: body.gateway,
        amount: amount.minor(),
        destination,
    };
    let requested = match kind {
        PaymentKind::Deposit => state.payments.deposit(req).await?,
        PaymentKind::Withdrawal => state.payments.withdraw(req).await?,
    };
    let p = requested.payment;
    let body = view(&p, &currency);
    Ok(if !requested.created {
        HttpResponse::Ok().json(body)
    } else if p.state == PaymentState::Created {
        // The gateway did not answer: the reconciler finishes opening the checkout.
        HttpResponse::Accepted().json(body)
    } else {
        HttpResponse::Created().json(body)
    })
}

/// Request a deposit through a gateway: answers the hosted checkout URL
#[utoipa::path(post, path = "/api/v1/payments/deposits", tag = "payments",
    security(("bearer" = [])), params(IdempotencyKey), request_body = PaymentBody,
    responses(
        (status = 201, description = "created; `checkout_url` is where the player pays", body = Payment),
        (status = 200, description = "a repeated request: the first one's payment", body = Payment),
        (status = 202, description = "stored; the gateway did not answer yet (the reconciler finishes it)", body = Payment),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn deposit(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    key: IdempotencyKey,
    body: web::Json<PaymentBody>,
) -> Result<HttpResponse, ApiError> {
    request(state, caller, key, body.into_inner(), PaymentKind::Deposit).await
}

/// Request a withdrawal: the amount is held at once, then approved (automatically under the
/// client's threshold) and paid out
#[utoipa::path(post, path = "/api/v1/payments/withdrawals", tag = "payments",
    security(("bearer" = [])), params(IdempotencyKey), request_body = PaymentBody,
    responses(
        (status = 201, description = "requested (money held), or approved and sent", body = Payment),
        (status = 200, description = "a repeated request: the first one's payment", body = Payment),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn withdraw(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    key: IdempotencyKey,
    body: web::Json<PaymentBody>,
) -> Result<HttpResponse, ApiError> {
    request(
        state,
        caller,
        key,
        body.into_inner(),
        PaymentKind::Withdrawal,
    )
    .await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// super admin: one client's payments
    client_id: Option<String>,
    user_id: Option<String>,
    /// deposit or withdrawal
    kind: Option<String>,
    /// e.g. `requested` (the approval queue)
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// Payments in the caller's reach, newest first
#[utoipa::path(get, path = "/api/v1/payments", tag = "payments", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "success", body = PaymentPage),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn list(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let page = Page::new(q.cursor.clone(), q.limit);
    let limit = page.limit()?;
    let client_id = access::listed_client(&caller, q.client_id.as_deref())?;
    let mut filter = PaymentFilter {
        client_id,
        before_id: q.cursor.clone(),
        limit: limit.fetch(),
        ..Default::default()
    };
    filter.kind = q
        .kind
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|_| ApiError::validation("kind: deposit or withdrawal").with_field("kind"))?;
    filter.state = q
        .state
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|_| ApiError::validation("unknown state").with_field("state"))?;
    if let Some(uid) = &q.user_id {
        let user = reachable_user(&state, &caller, uid).await?;
        filter.user_id = Some(user.id);
    }
    match caller.role {
        Role::Player => filter.user_id = Some(caller.user_id.clone()),
        Role::Agent => {
            let me = state
                .store
                .user(&caller.user_id)
                .await?
                .ok_or_else(ApiError::forbidden)?;
            filter.path_prefix = Some(me.path);
        }
        Role::ClientAdmin | Role::SuperAdmin => {}
    }
    let rows = state.store.payments(&filter).await?;
    let mut currencies: std::collections::HashMap<String, Currency> = Default::default();
    for r in &rows {
        if !currencies.contains_key(&r.client_id) {
            let c = access::client(&state.store, &r.client_id).await?;
            currencies.insert(r.client_id.clone(), c.currency);
        }
    }
    let body = limit.page(
        rows,
        |r| r.id.clone(),
        |r| view(r, &currencies[&r.client_id]),
    );
    Ok(HttpResponse::Ok().json(body))
}

/// A payment the caller reaches (through its player), with the player's currency.
async fn reachable_payment(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(PaymentRow, Currency), ApiError> {
    let p = state
        .store
        .payment(id)
        .await?
        .ok_or_else(|| ApiError::not_found("payment"))?;
    let user = state
        .store
        .user(&p.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("payment"))?;
    access::reach(&state.store, caller, &user)
        .await?
        .require("payment")?;
    let client = access::client(&state.store, &p.client_id).await?;
    Ok((p, client.currency))
}

/// One payment
#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "payments", security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = Payment),
        Secured, Unknown, Unavailable,
    ))]
pub async fn get(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (p, currency) = reachable_payment(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(view(&p, &currency)))
}

/// Cancel a deposit whose checkout is open, or a withdrawal not yet approved (money returned)
#[utoipa::path(post, path = "/api/v1/payments/{id}/cancel", tag = "payments", security(("bearer" = [])),
    responses(
        (status = 200, description = "cancelled", body = Payment),
        Secured, Unknown, Conflict, Unavailable,
    ))]
pub async fn cancel(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (p, currency) = reachable_payment(&state, &caller, &id).await?;
    if p.user_id != caller.user_id && !caller.can(perm::PAYMENTS_REQUEST) {
        return Err(ApiError::forbidden());
    }
    let p = state.payments.cancel(&p, &currency).await?;
    Ok(HttpResponse::Ok().json(view(&p, &currency)))
}

/// The payment a decision is about: reach first, then `payments.approve` (a player never).
async fn decidable(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(PaymentRow, Currency), ApiError> {
    let (p, currency) = reachable_payment(state, caller, id).await?;
    if caller.role == Role::Player || !caller.can(perm::PAYMENTS_APPROVE) {
        return Err(ApiError::forbidden());
    }
    Ok((p, currency))
}

/// Approve a requested withdrawal (then paid out)
#[utoipa::path(post, path = "/api/v1/payments/{id}/approve", tag = "payments", security(("bearer" = [])),
    responses(
        (status = 200, description = "approved; `state` shows how far the payout got", body = Payment),
        Secured, Unknown, Conflict, Unavailable,
    ))]
pub async fn approve(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (p, currency) = decidable(&state, &caller, &id).await?;
    let p = state.payments.approve(&p, Some(&caller), &currency).await?;
    Ok(HttpResponse::Ok().json(view(&p, &currency)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// 1 to 250 characters, shown to the player
    reason: String,
}

/// Reject a requested withdrawal with a reason (money returned to the wallet)
#[utoipa::path(post, path = "/api/v1/payments/{id}/reject", tag = "payments", security(("bearer" = [])),
    request_body = RejectBody,
    responses(
        (status = 200, description = "rejected", body = Payment),
        Secured, Unknown, Invalid, BadBody, Conflict, Unavailable,
    ))]
pub async fn reject(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    body: web::Json<RejectBody>,
) -> Result<HttpResponse, ApiError> {
    let (p, currency) = decidable(&state, &caller, &id).await?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 250 {
        return Err(ApiError::validation("reason: 1 to 250 characters").with_field("reason"));
    }
    let p = state
        .payments
        .reject(&p, &caller, reason, &currency)
        .await?;
    Ok(HttpResponse::Ok().json(view(&p, &currency)))
}

/// Run one payment reconciler pass now over every open payment (super admin)
#[utoipa::path(post, path = "/api/v1/payments/reconcile", tag = "payments", security(("bearer" = [])),
    responses(
        (status = 200, description = "what the pass did", body = crate::payments::reconciler::PassReport),
        Secured, Unavailable,
    ))]
pub async fn reconcile(
    state: web::Data<AppState>,
    Auth(caller): Auth,
) -> Result<HttpResponse, ApiError> {
    if caller.role != Role::SuperAdmin {
        return Err(ApiError::forbidden());
    }
    let report = crate::payments::reconciler::pass(&state.payments, now_ms()).await;
    Ok(HttpResponse::Ok().json(report))
}

/// The acknowledgement of a webhook delivery.
#[derive(Serialize, ToSchema)]
pub struct WebhookReceived {
    received: bool,
    event_id: String,
    /// this event id was received before
    duplicate: bool,
}

/// Gateway webhooks (Stripe-Signature verified, deduplicated by event id, applied after the answer)
#[utoipa::path(post, path = "/callbacks/payments/{gateway}", tag = "payments",
    request_body(content = Object, description = "the gateway's event"),
    responses(
        (status = 200, description = "stored (or a repeat)", body = WebhookReceived),
        BadCredentials, Unknown, Invalid, Unavailable,
        (status = 400, description = "unknown_payment: the event names no payment of this hub", body = super::error::ErrorBody),
        (status = 429, description = "too many callbacks from this address (Retry-After)", body = super::error::ErrorBody),
    ))]
pub async fn webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    gateway: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ip = super::auth::peer_ip(&req).unwrap_or_default();
    state
        .ip_limits
        .callback(&format!("pay:{gateway}"), &ip)
        .map_err(super::auth::too_fast)?;
    let header = crate::payments::gateway::signature_header(&gateway)
        .ok_or_else(|| ApiError::not_found("gateway"))?;
    let signature = req.headers().get(header).and_then(|v| v.to_str().ok());
    let ack = state.payments.webhook(&gateway, signature, &body).await?;
    Ok(HttpResponse::Ok().json(WebhookReceived {
        received: true,
        event_id: ack.event_id,
        duplicate: ack.duplicate,
    }))
}

/// Payment settings are the client's admins' and the platform's.
async fn settings_client(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<crate::store::ClientRow, ApiError> {
    match access::client_reach(caller, id) {
        Reach::Within => Ok(access::client(&state.store, id).await?),
        r => Err(r
            .require("client")
            .err()
            .map_or_else(ApiError::forbidden, Into::into)),
    }
}

/// A client's payment rules
#[utoipa::path(get, path = "/api/v1/clients/{id}/payment-settings", tag = "payments",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "success", body = PaymentSettings),
        Secured, Unknown, Unavailable,
    ))]
pub async fn get_settings(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let client = settings_client(&state, &caller, &id).await?;
    let s = crate::payments::settings::load(&state.store, &client.id).await?;
    Ok(HttpResponse::Ok().json(s))
}

/// Replace a client's payment rules (client admin or super admin; audited)
#[utoipa::path(put, path = "/api/v1/clients/{id}/payment-settings", tag = "payments",
    security(("bearer" = [])), request_body = PaymentSettings,
    responses(
        (status = 200, description = "success", body = PaymentSettings),
        Secured, Unknown, Invalid, BadBody, Unavailable,
    ))]
pub async fn put_settings(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    id: web::Path<String>,
    body: web::Json<PaymentSettings>,
) -> Result<HttpResponse, ApiError> {
    let client = settings_client(&state, &caller, &id).await?;
    let s = body.into_inner();
    s.validate(client.currency.exponent)
        .map_err(|(field, m)| ApiError::validation(format!("{field}: {m}")).with_field(field))?;
    let before = crate::payments::settings::load(&state.store, &client.id).await?;
    let text = serde_json::to_string(&s).map_err(|_| ApiError::internal())?;
    state.store.put_payment_settings(&client.id, &text).await?;
    Event::new("client.payment_settings_update")
        .by(&caller)
        .client(Some(&client.id))
        .target("client", &client.id)
        .before(serde_json::to_value(&before).unwrap_or_default())
        .after(serde_json::to_value(&s).unwrap_or_default())
        .ip(super::auth::peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(s))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayCredentialsBody {
    credentials: GatewayCredentials,
}

/// Stored gateway credentials, as metadata.
#[derive(Serialize, ToSchema)]
pub struct GatewayCredentialsInfo {
    gateway: String,
    configured: bool,
    key_id: String,
    version: i64,
    updated_at: String,
}

/// Store a client's own gateway account, sealed (super admin; audited without values)
#[utoipa::path(put, path = "/api/v1/clients/{id}/payment-gateways/{gateway}", tag = "payments",
    security(("bearer" = [])), request_body = GatewayCredentialsBody,
    responses(
        (status = 200, description = "stored", body = GatewayCredentialsInfo),
        Secured, Unknown, Invalid, BadBody, Unavailable,
    ))]
pub async fn put_credentials(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
    body: web::Json<GatewayCredentialsBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, gateway) = path.into_inner();
    let client = super::client_settings::writable(&state, &caller, &id).await?;
    if !crate::payments::gateway::GATEWAY_NAMES.contains(&gateway.as_str()) {
        return Err(ApiError::not_found("gateway"));
    }
    let creds = &body.credentials;
    creds
        .validate()
        .map_err(|(field, m)| ApiError::validation(format!("{field}: {m}")).with_field(field))?;
    let plain = serde_json::to_vec(&json!({
        "base_url": creds.base_url, "api_key": creds.api_key,
        "webhook_secret": creds.webhook_secret, "fee_bps": creds.fee_bps,
        "fee_fixed": creds.fee_fixed, "payout_fee": creds.payout_fee,
    }))
    .map_err(|_| ApiError::internal())?;
    let name = secret_name(&gateway);
    let now = now_ms();
    let existing = state.store.client_secret(&client.id, &name).await?;
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
        name,
        key_id,
        nonce,
        ciphertext,
        created_at,
        updated_at: now,
        version: 0,
    };
    let version = state.store.put_client_secret(&row).await?;
    Event::new("client.payment_gateway_update")
        .by(&caller)
        .client(Some(&client.id))
        .target("client_secret", &row.id)
        .before(json!({ "configured": existing.is_some() }))
        .after(json!({ "gateway": gateway, "key_id": row.key_id, "version": version }))
        .ip(super::auth::peer_ip(&req))
        .record(&state.store)
        .await?;
    Ok(HttpResponse::Ok().json(GatewayCredentialsInfo {
        gateway,
        configured: true,
        key_id: row.key_id,
        version,
        updated_at: rfc3339_ms(now),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// `stripe`
    gateway: String,
    /// Unix seconds, inclusive
    from: i64,
    /// Unix seconds, exclusive (at most 31 days after `from`)
    to: i64,
}

/// Our ledger against the gateway's report for a window: every difference listed
#[utoipa::path(get, path = "/api/v1/clients/{id}/payment-statement", tag = "payments",
    security(("bearer" = [])), params(StatementQuery),
    responses(
        (status = 200, description = "success", body = crate::payments::reconciler::Statement),
        Secured, Unknown, Invalid, Unavailable,
    ))]
pub async fn statement(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    q: web::Query<StatementQuery>,
) -> Result<HttpResponse, ApiError> {
    let client = settings_client(&state, &caller, &id).await?;
    if q.to <= q.from || q.to - q.from > 31 * 86_400 {
        return Err(
            ApiError::validation("to must be after from, at most 31 days").with_field("to"),
        );
    }
    if !crate::payments::gateway::GATEWAY_NAMES.contains(&q.gateway.as_str()) {
        return Err(ApiError::not_found("gateway"));
    }
    let s = crate::payments::reconciler::statement(
        &state.payments,
        &client.id,
        &q.gateway,
        q.from,
        q.to,
    )
    .await?;
    Ok(HttpResponse::Ok().json(s))
}
