//! The cashier: deposit and withdrawal requests through the payment service (the API's
//! `/payments` handlers: gateway, limits, exclusions, holds), the player's own payments, and
//! one payment's state (another player's payment id: the API's 404/403).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::brand::{Brand, BrandView};
use super::lobby::{Wallet, wallet};
use crate::http::extract::IdempotencyKey;
use crate::state::AppState;
use crate::web::csrf::Protected;
use crate::web::error::WebError;
use crate::web::page::{self, Chrome};
use crate::web::{WebCaller, amount, api, idempotency};

/// The gateway of the site's forms (the one the payment service has).
const GATEWAY: &str = "stripe";

#[derive(Template)]
#[template(path = "site/cashier.html")]
struct CashierPage {
    chrome: Chrome,
    brand: BrandView,
    wallet: Wallet,
    key_deposit: String,
    key_withdraw: String,
    amount: String,
    destination: String,
    error: String,
    error_of: &'static str,
    payments: Vec<PaymentLine>,
}

#[derive(Template)]
#[template(path = "site/payment.html")]
struct PaymentPage {
    chrome: Chrome,
    brand: BrandView,
    wallet: Wallet,
    payment: PaymentLine,
    checkout_url: String,
    terminal: bool,
}

struct PaymentLine {
    href: String,
    kind: String,
    amount: String,
    state: String,
    created_at: String,
}

/// A deposit or withdrawal form.
#[derive(Deserialize, ToSchema)]
pub struct PaymentFields {
    /// the session's CSRF token
    pub csrf: String,
    /// a decimal string in the brand's currency
    pub amount: String,
    /// withdrawals: the destination at the gateway (Stripe: `ba_...` or `card_...`)
    #[serde(default)]
    pub destination: String,
    /// generated when the form rendered
    pub idempotency_key: String,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

fn line(brand: &Brand, p: &Value) -> PaymentLine {
    PaymentLine {
        href: brand.path(&format!("/payments/{}", text(p, "id"))),
        kind: text(p, "kind"),
        amount: format!("{} {}", text(p, "amount"), text(p, "currency")),
        state: text(p, "state"),
        created_at: text(p, "created_at"),
    }
}

async fn render(
    state: &web::Data<AppState>,
    brand: &Brand,
    caller: &WebCaller,
    status: StatusCode,
    form: (&str, &str),
    error: (String, &'static str),
) -> Result<HttpResponse, WebError> {
    let qs =
        serde_urlencoded::to_string([("user_id", caller.caller.user_id.as_str()), ("limit", "20")])
            .map_err(|e| WebError::BadForm(e.to_string()))?;
    let listed = api::answer(
        crate::http::payments::list(
            state.clone(),
            caller.auth(),
            web::Query::from_query(&qs).map_err(|e| WebError::BadForm(e.to_string()))?,
        )
        .await,
    )?;
    let payments = listed
        .get("items")
        .and_then(Value::as_array)
        .map(|items| items.iter().map(|p| line(brand, p)).collect())
        .unwrap_or_default();
    page::render_status(
        status,
        &CashierPage {
            chrome: brand.chrome(state, Some(caller), "site.cashier.title", "/cashier"),
            brand: brand.view(),
            wallet: wallet(state, caller).await?,
            key_deposit: idempotency::new_key(),
            key_withdraw: idempotency::new_key(),
            amount: form.0.to_owned(),
            destination: form.1.to_owned(),
            error: error.0,
            error_of: error.1,
            payments,
        },
    )
}

/// The cashier: deposit and withdrawal requests, the player's payments
#[utoipa::path(get, path = "/play/{code}/cashier", tag = "site",
    params(("code" = String, Path, description = "the brand's client code")),
    responses(
        (status = 200, description = "the cashier", content_type = "text/html", body = String),
        (status = 303, description = "no session of this brand: to its login page"),
        (status = 403, description = "not a player of this brand", content_type = "text/html", body = String),
        (status = 404, description = "no such brand", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let brand = Brand::load(&state, &code).await?;
    let caller = brand.player(&req).await?;
    render(
        &state,
        &brand,
        &caller,
        StatusCode::OK,
        ("", ""),
        (String::new(), ""),
    )
    .await
}

async fn request(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: String,
    form: Protected<PaymentFields>,
    deposit: bool,
) -> Result<HttpResponse, WebError> {
    let brand = Brand::load(&state, &code).await?;
    let Protected { caller, form: f } = form;
    let caller = brand.admit_player(caller, &req)?;
    let which = if deposit { "deposit" } else { "withdraw" };
    let f = &f;
    let exponent = brand.currency.exponent;
    let refused = |status: StatusCode, message: String| {
        let (state, brand, caller) = (state.clone(), &brand, &caller);
        let (amount, destination) = (f.amount.clone(), f.destination.clone());
        async move {
            render(
                &state,
                brand,
                caller,
                status,
                (&amount, &destination),
                (message, which),
            )
            .await
        }
    };
    let parsed = match amount::parse(&f.amount, exponent) {
        Ok(a) => a,
        Err(m) => return refused(StatusCode::UNPROCESSABLE_ENTITY, m).await,
    };
    let mut body = json!({
        "gateway": GATEWAY,
        "amount": amount::to_decimal(parsed, exponent),
        "idempotency_key": f.idempotency_key,
    });
    if !deposit {
        body["destination"] = json!(f.destination.trim());
    }
    let body = api::body(body)?;
    let answer = if deposit {
        crate::http::payments::deposit(state.clone(), caller.auth(), IdempotencyKey::absent(), body)
            .await
    } else {
        crate::http::payments::withdraw(
            state.clone(),
            caller.auth(),
            IdempotencyKey::absent(),
            body,
        )
        .await
    };
    match api::answer(answer) {
        Ok(p) if !text(&p, "id").is_empty() => Ok(page::see_other(
            &brand.path(&format!("/payments/{}", text(&p, "id"))),
        )),
        Ok(_) => Err(WebError::Api(crate::http::ApiError::internal())),
        Err(e) => refused(e.status, e.message).await,
    }
}

/// Request a deposit (through the gateway's hosted checkout)
///
/// 303 to the payment's page (its checkout link); else the cashier again with the refusal.
#[utoipa::path(post, path = "/play/{code}/cashier/deposit", tag = "site",
    params(("code" = String, Path, description = "the brand's client code")),
    request_body(content = PaymentFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "to the payment's page, or no session: to the login page"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "CSRF or origin refused, not a player of this brand, excluded or gateway off (the page again)", content_type = "text/html", body = String),
        (status = 404, description = "no such brand", content_type = "text/html", body = String),
        (status = 409, description = "key reused for another request (the page again)", content_type = "text/html", body = String),
        (status = 422, description = "an amount that does not parse, or a limit (the page again)", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "gateway or storage unavailable (the page again)", content_type = "text/html", body = String),
    ))]
pub async fn deposit(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: web::Path<String>,
    form: Protected<PaymentFields>,
) -> Result<HttpResponse, WebError> {
    request(state, req, code.into_inner(), form, true).await
}

/// Request a withdrawal (the amount is held at once)
#[utoipa::path(post, path = "/play/{code}/cashier/withdraw", tag = "site",
    params(("code" = String, Path, description = "the brand's client code")),
    request_body(content = PaymentFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "to the payment's page, or no session: to the login page"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "CSRF or origin refused, not a player of this brand, or gateway off (the page again)", content_type = "text/html", body = String),
        (status = 404, description = "no such brand", content_type = "text/html", body = String),
        (status = 409, description = "funds too low, or key reused (the page again)", content_type = "text/html", body = String),
        (status = 422, description = "an amount or destination refused (the page again)", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "gateway or storage unavailable (the page again)", content_type = "text/html", body = String),
    ))]
pub async fn withdraw(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: web::Path<String>,
    form: Protected<PaymentFields>,
) -> Result<HttpResponse, WebError> {
    request(state, req, code.into_inner(), form, false).await
}

/// One of the player's payments (reloads itself until terminal)
#[utoipa::path(get, path = "/play/{code}/payments/{payment_id}", tag = "site",
    params(("code" = String, Path, description = "the brand's client code"),
           ("payment_id" = String, Path, description = "the payment")),
    responses(
        (status = 200, description = "the payment", content_type = "text/html", body = String),
        (status = 303, description = "no session of this brand: to its login page"),
        (status = 403, description = "not a player of this brand, or not their payment", content_type = "text/html", body = String),
        (status = 404, description = "no such brand or payment", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn payment(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let (code, id) = path.into_inner();
    let brand = Brand::load(&state, &code).await?;
    let caller = brand.player(&req).await?;
    let p = api::answer(
        crate::http::payments::get(state.clone(), caller.auth(), web::Path::from(id)).await,
    )?;
    let payment = line(&brand, &p);
    let terminal = matches!(
        payment.state.as_str(),
        "paid" | "failed" | "expired" | "cancelled" | "rejected"
    );
    page::render(&PaymentPage {
        chrome: brand.chrome(&state, Some(&caller), "site.payment.title", "/cashier"),
        brand: brand.view(),
        wallet: wallet(&state, &caller).await?,
        checkout_url: if terminal {
            String::new()
        } else {
            text(&p, "checkout_url")
        },
        payment,
        terminal,
    })
}
