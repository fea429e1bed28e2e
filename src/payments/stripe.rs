//! Stripe, the subset in `docs/payments-stripe.md`: Checkout Sessions for deposits (hosted page),
//! Payouts for withdrawals, signed webhooks (`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
//! "<t>.<raw body>" under the endpoint secret>`, 300 s tolerance), balance transactions for the
//! statement. Requests are form-encoded with `Authorization: Bearer <secret key>`; every POST
//! carries an `Idempotency-Key`, so a retry after a timeout returns the object the first try made.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::gateway::{
    CheckoutRequest, CheckoutState, CheckoutView, EventObject, GatewayError, PaymentGateway,
    PayoutRequest, PayoutState, PayoutView, StatementLine, WebhookError, WebhookEvent,
};
use crate::providers::BoxFuture;

pub const NAME: &str = "stripe";
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";
/// Stripe's libraries refuse events signed more than 5 minutes ago (or ahead).
pub const TOLERANCE_SECS: i64 = 300;

/// A Stripe account: API base (`https://api.stripe.com`, or a simulator), secret key, webhook
/// endpoint secret, and the fee schedule to post (Stripe reports fees on balance transactions;
/// the hub posts its schedule at once and the statement shows any difference).
#[derive(Clone)]
pub struct StripeAccount {
    pub base_url: String,
    api_key: String,
    webhook_secret: String,
    /// Fee on deposits: basis points of the amount plus a fixed part (minor units).
    pub fee_bps: i64,
    pub fee_fixed: i64,
    /// Fixed fee per payout (minor units).
    pub payout_fee: i64,
    http: reqwest::Client,
}

impl std::fmt::Debug for StripeAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeAccount")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl StripeAccount {
    pub fn new(
        base_url: &str,
        api_key: &str,
        webhook_secret: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            webhook_secret: webhook_secret.to_owned(),
            fee_bps: 0,
            fee_fixed: 0,
            payout_fee: 0,
            http: reqwest::Client::builder().timeout(timeout).build()?,
        })
    }

    pub fn with_fees(mut self, fee_bps: i64, fee_fixed: i64, payout_fee: i64) -> Self {
        self.fee_bps = fee_bps;
        self.fee_fixed = fee_fixed;
        self.payout_fee = payout_fee;
        self
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        form: Option<&[(String, String)]>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, GatewayError> {
        let started = std::time::Instant::now();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.api_key);
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        if let Some(form) = form {
            req = req
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form_encode(form));
        }
        let result = req.send().await;
        metrics::histogram!(crate::metrics::PAYMENT_GATEWAY_DURATION, "gateway" => NAME)
            .record(started.elapsed().as_secs_f64());
        let res = result.map_err(|e| GatewayError::Unknown(format!("request failed: {e}")))?;
        let status = res.status();
        let body: Value = res
            .json()
            .await
            .map_err(|e| GatewayError::Unknown(format!("unreadable answer ({status}): {e}")))?;
        if status.is_success() {
            return Ok(body);
        }
        let code = body["error"]["code"]
            .as_str()
            .or(body["error"]["type"].as_str())
            .unwrap_or("error")
            .to_owned();
        let message = body["error"]["message"].as_str().unwrap_or("").to_owned();
        match status.as_u16() {
            404 => Err(GatewayError::NotFound),
            // 409: an idempotent request still in flight; 429: rate limited; 5xx: unknown.
            400..=403 => Err(GatewayError::Refused { code, message }),
            _ => Err(GatewayError::Unknown(format!("{status} {code}"))),
        }
    }
}

impl PaymentGateway for StripeAccount {
    fn name(&self) -> &'static str {
        NAME
    }

    fn deposit_fee(&self, amount: i64) -> i64 {
        (i128::from(amount) * i128::from(self.fee_bps) / 10_000) as i64 + self.fee_fixed
    }

    fn payout_fee(&self, _amount: i64) -> i64 {
        self.payout_fee
    }

    fn create_checkout<'a>(
        &'a self,
        req: &'a CheckoutRequest,
    ) -> BoxFuture<'a, Result<CheckoutView, GatewayError>> {
        Box::pin(async move {
            let form: Vec<(String, String)> = [
                ("mode", "payment".to_owned()),
                ("client_reference_id", req.payment_id.clone()),
                ("metadata[payment_id]", req.payment_id.clone()),
                (
                    "payment_intent_data[metadata][payment_id]",
                    req.payment_id.clone(),
                ),
                ("line_items[0][quantity]", "1".into()),
                (
                    "line_items[0][price_data][currency]",
                    req.currency.to_lowercase(),
                ),
                (
                    "line_items[0][price_data][unit_amount]",
                    req.amount_minor.to_string(),
                ),
                (
                    "line_items[0][price_data][product_data][name]",
                    "Deposit".into(),
                ),
                ("expires_at", req.expires_at.to_string()),
                ("success_url", "https://example.invalid/deposit/done".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            let body = self
                .call(
                    reqwest::Method::POST,
                    "/v1/checkout/sessions",
                    Some(&form),
                    Some(&req.idempotency_key),
                )
                .await?;
            checkout_view(&body)
                .ok_or_else(|| GatewayError::Unknown("not a checkout session".into()))
        })
    }

    fn checkout<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<CheckoutView, GatewayError>> {
        Box::pin(async move {
            let path = format!("/v1/checkout/sessions/{id}?expand[]=payment_intent");
            let body = self.call(reqwest::Method::GET, &path, None, None).await?;
            checkout_view(&body)
                .ok_or_else(|| GatewayError::Unknown("not a checkout session".into()))
        })
    }

    fn cancel_checkout<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<CheckoutView, GatewayError>> {
        Box::pin(async move {
            let path = format!("/v1/checkout/sessions/{id}/expire");
            let body = self
                .call(reqwest::Method::POST, &path, Some(&[]), None)
                .await?;
            checkout_view(&body)
                .ok_or_else(|| GatewayError::Unknown("not a checkout session".into()))
        })
    }

    fn create_payout<'a>(
        &'a self,
        req: &'a PayoutRequest,
    ) -> BoxFuture<'a, Result<PayoutView, GatewayError>> {
        Box::pin(async move {
            let form: Vec<(String, String)> = [
                ("amount", req.amount_minor.to_string()),
                ("currency", req.currency.to_lowercase()),
                ("destination", req.destination.clone()),
                ("metadata[payment_id]", req.payment_id.clone()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            let body = self
                .call(
                    reqwest::Method::POST,
                    "/v1/payouts",
                    Some(&form),
                    Some(&req.idempotency_key),
                )
                .await?;
            payout_view(&body).ok_or_else(|| GatewayError::Unknown("not a payout".into()))
        })
    }

    fn payout<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<PayoutView, GatewayError>> {
        Box::pin(async move {
            let body = self
                .call(
                    reqwest::Method::GET,
                    &format!("/v1/payouts/{id}"),
                    None,
                    None,
                )
                .await?;
            payout_view(&body).ok_or_else(|| GatewayError::Unknown("not a payout".into()))
        })
    }

    fn verify_webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now_secs: i64,
    ) -> Result<WebhookEvent, WebhookError> {
        verify(&self.webhook_secret, signature, body, now_secs)?;
        parse_event(body)
    }

    fn statement(
        &self,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, Result<Vec<StatementLine>, GatewayError>> {
        Box::pin(async move {
            let mut lines = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let mut path = format!(
                    "/v1/balance_transactions?limit=100&created[gte]={from}&created[lt]={to}"
                );
                if let Some(a) = &after {
                    path.push_str(&format!("&starting_after={a}"));
                }
                let body = self.call(reqwest::Method::GET, &path, None, None).await?;
                let data = body["data"].as_array().cloned().unwrap_or_default();
                for t in &data {
                    lines.push(StatementLine {
                        id: t["id"].as_str().unwrap_or_default().to_owned(),
                        source: t["source"].as_str().unwrap_or_default().to_owned(),
                        kind: t["type"].as_str().unwrap_or_default().to_owned(),
                        amount: t["amount"].as_i64().unwrap_or_default(),
                        fee: t["fee"].as_i64().unwrap_or_default(),
                        created: t["created"].as_i64().unwrap_or_default(),
                    });
                }
                after = data
                    .last()
                    .and_then(|t| t["id"].as_str())
                    .map(str::to_owned);
                if !body["has_more"].as_bool().unwrap_or(false) || after.is_none() {
                    return Ok(lines);
                }
            }
        })
    }
}

/// `application/x-www-form-urlencoded`, with Stripe's bracketed keys kept readable.
pub fn form_encode(pairs: &[(String, String)]) -> String {
    fn enc(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

type HmacSha256 = Hmac<Sha256>;

/// The `Stripe-Signature` header value for `body` signed at `t` (simulator and tests).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Stripe's scheme: any `v1` signature matching HMAC-SHA256(secret, "<t>.<body>"), with `t`
/// within the tolerance of now (both ways).
pub fn verify(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::Unsigned)?;
    let mut t: Option<i64> = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse().ok(),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    let t = t.ok_or(WebhookError::Unsigned)?;
    if signatures.is_empty() {
        return Err(WebhookError::Unsigned);
    }
    let ok = signatures.iter().any(|s| {
        let Ok(sig) = hex::decode(s) else {
            return false;
        };
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    });
    if !ok {
        return Err(WebhookError::BadSignature);
    }
    if (now_secs - t).abs() > TOLERANCE_SECS {
        return Err(WebhookError::Stale);
    }
    Ok(())
}

/// `data.object.metadata.payment_id` of an event body, unverified.
pub fn peek_payment_id(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v["data"]["object"]["metadata"]["payment_id"]
        .as_str()
        .map(str::to_owned)
}

/// An event body as stored after verification (replayed from the outbox without the clock).
pub fn parse_event_unverified(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    parse_event(body)
}

fn parse_event(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let id = v["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| WebhookError::Malformed("no id".into()))?
        .to_owned();
    let kind = v["type"]
        .as_str()
        .ok_or_else(|| WebhookError::Malformed("no type".into()))?
        .to_owned();
    let o = &v["data"]["object"];
    let object = match kind.as_str() {
        "checkout.session.completed"
        | "checkout.session.async_payment_succeeded"
        | "checkout.session.async_payment_failed"
        | "checkout.session.expired" => {
            let mut view = checkout_view(o)
                .ok_or_else(|| WebhookError::Malformed("not a checkout session".into()))?;
            // The event type says what happened to a completed session's payment.
            view.state = match kind.as_str() {
                "checkout.session.async_payment_succeeded" => CheckoutState::Paid,
                "checkout.session.async_payment_failed" => CheckoutState::Failed,
                "checkout.session.expired" => CheckoutState::Expired,
                _ => view.state,
            };
            EventObject::Checkout(view)
        }
        k if k.starts_with("payout.") => EventObject::Payout(
            payout_view(o).ok_or_else(|| WebhookError::Malformed("not a payout".into()))?,
        ),
        _ => EventObject::Other,
    };
    Ok(WebhookEvent { id, kind, object })
}

fn checkout_view(o: &Value) -> Option<CheckoutView> {
    if o["object"].as_str() != Some("checkout.session") {
        return None;
    }
    let paid = o["payment_status"].as_str() == Some("paid");
    let intent = &o["payment_intent"];
    let intent_status = intent["status"].as_str();
    let state = match o["status"].as_str()? {
        "open" => CheckoutState::Open,
        "expired" => CheckoutState::Expired,
        "complete" if paid => CheckoutState::Paid,
        "complete" => match intent_status {
            // A failed asynchronous payment leaves its intent waiting for a new method.
            Some("requires_payment_method" | "canceled") => CheckoutState::Failed,
            _ => CheckoutState::Processing,
        },
        _ => return None,
    };
    let settlement_ref = intent.as_str().or(intent["id"].as_str()).map(str::to_owned);
    Some(CheckoutView {
        id: o["id"].as_str()?.to_owned(),
        url: o["url"].as_str().map(str::to_owned),
        state,
        amount_paid: paid.then(|| o["amount_total"].as_i64()).flatten(),
        payment_id: o["metadata"]["payment_id"].as_str().map(str::to_owned),
        settlement_ref,
    })
}

fn payout_view(o: &Value) -> Option<PayoutView> {
    if o["object"].as_str() != Some("payout") {
        return None;
    }
    let state = match o["status"].as_str()? {
        "pending" | "in_transit" => PayoutState::Pending,
        "paid" => PayoutState::Paid,
        "failed" | "canceled" => PayoutState::Failed,
        _ => return None,
    };
    Some(PayoutView {
        id: o["id"].as_str()?.to_owned(),
        state,
        amount: o["amount"].as_i64()?,
        payment_id: o["metadata"]["payment_id"].as_str().map(str::to_owned),
        failure: o["failure_code"].as_str().map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip_and_refusals() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign("whsec_x", 1_000, body);
        assert_eq!(verify("whsec_x", Some(&header), body, 1_100), Ok(()));
        assert_eq!(
            verify("whsec_y", Some(&header), body, 1_100),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify("whsec_x", Some(&header), b"{}", 1_100),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify("whsec_x", Some(&header), body, 1_000 + TOLERANCE_SECS + 1),
            Err(WebhookError::Stale)
        );
        assert_eq!(
            verify("whsec_x", None, body, 1_000),
            Err(WebhookError::Unsigned)
        );
        // Several v1 signatures (a rolled secret): any one verifies.
        let two = format!("{header},v1=00");
        assert_eq!(verify("whsec_x", Some(&two), body, 1_000), Ok(()));
    }

    #[test]
    fn form_encoding_escapes_brackets_and_spaces() {
        let f = form_encode(&[("metadata[a]".into(), "x y&z".into())]);
        assert_eq!(f, "metadata%5Ba%5D=x+y%26z");
    }
}
