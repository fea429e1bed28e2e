//! The `PaymentGateway` trait: one payment protocol bound to one merchant account. The service
//! (`payments::service`) drives every payment through it and never sees a wire format.
//!
//! Answers are classified so that money is never guessed: `Refused` is a definite "nothing
//! happened" (the request was rejected), `Unknown` may or may not have taken effect (timeouts,
//! 5xx, unreadable answers) and is settled later by asking again with the same idempotency key
//! or by reference.

use crate::providers::BoxFuture;

#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// Definite refusal: nothing was created or changed at the gateway.
    #[error("gateway refused: {code}: {message}")]
    Refused { code: String, message: String },
    /// The gateway has no such object.
    #[error("gateway has no such object")]
    NotFound,
    /// No definite answer: the request may have taken effect.
    #[error("gateway answer unknown: {0}")]
    Unknown(String),
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("missing or malformed signature header")]
    Unsigned,
    #[error("webhook signature does not verify")]
    BadSignature,
    #[error("webhook timestamp outside the tolerance")]
    Stale,
    #[error("webhook body is not an event: {0}")]
    Malformed(String),
}

/// A hosted checkout to open for a deposit.
#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    pub payment_id: String,
    pub amount_minor: i64,
    /// ISO code, as the client's currency.
    pub currency: String,
    /// Sent on every try of this request: the gateway creates one object per key.
    pub idempotency_key: String,
    /// Unix seconds after which the checkout expires.
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutState {
    /// Waiting for the player.
    Open,
    /// The player finished; an asynchronous payment method is still settling.
    Processing,
    Paid,
    Failed,
    Expired,
}

/// A checkout as the gateway reports it.
#[derive(Debug, Clone)]
pub struct CheckoutView {
    pub id: String,
    pub url: Option<String>,
    pub state: CheckoutState,
    /// What the player paid, minor units (when paid).
    pub amount_paid: Option<i64>,
    /// Our payment id, as we attached it (metadata).
    pub payment_id: Option<String>,
    /// The id the gateway's statement lines name (Stripe: the payment intent).
    pub settlement_ref: Option<String>,
}

/// A payout to send for a withdrawal.
#[derive(Debug, Clone)]
pub struct PayoutRequest {
    pub payment_id: String,
    pub amount_minor: i64,
    pub currency: String,
    /// The player's destination at the gateway (a bank account or card id).
    pub destination: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutState {
    /// Accepted, not yet paid (may still fail).
    Pending,
    Paid,
    Failed,
}

#[derive(Debug, Clone)]
pub struct PayoutView {
    pub id: String,
    pub state: PayoutState,
    pub amount: i64,
    pub payment_id: Option<String>,
    pub failure: Option<String>,
}

/// What a verified webhook event is about.
#[derive(Debug, Clone)]
pub enum EventObject {
    Checkout(CheckoutView),
    Payout(PayoutView),
    /// An event type this hub does not act on (acknowledged, stored, ignored).
    Other,
}

#[derive(Debug, Clone)]
pub struct WebhookEvent {
    /// The gateway's event id: deliveries of one event share it.
    pub id: String,
    pub kind: String,
    pub object: EventObject,
}

/// One line of the gateway's statement (its view of the money it moved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub id: String,
    /// What it is about (the settlement reference we store).
    pub source: String,
    /// `charge` (money in) or `payout` (money out).
    pub kind: String,
    /// Signed: positive in, negative out (minor units).
    pub amount: i64,
    pub fee: i64,
    /// Unix seconds.
    pub created: i64,
}

pub trait PaymentGateway: Send + Sync {
    fn name(&self) -> &'static str;
    /// The fee the gateway charges on a deposit of `amount` (minor units).
    fn deposit_fee(&self, amount: i64) -> i64;
    /// The fee the gateway charges on a payout of `amount`.
    fn payout_fee(&self, amount: i64) -> i64;
    fn create_checkout<'a>(
        &'a self,
        req: &'a CheckoutRequest,
    ) -> BoxFuture<'a, Result<CheckoutView, GatewayError>>;
    fn checkout<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<CheckoutView, GatewayError>>;
    /// Ends an open checkout so it can no longer be paid.
    fn cancel_checkout<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<CheckoutView, GatewayError>>;
    fn create_payout<'a>(
        &'a self,
        req: &'a PayoutRequest,
    ) -> BoxFuture<'a, Result<PayoutView, GatewayError>>;
    fn payout<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<PayoutView, GatewayError>>;
    /// Verifies a delivery (signature header value, raw body) at `now` (Unix seconds).
    fn verify_webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now_secs: i64,
    ) -> Result<WebhookEvent, WebhookError>;
    /// The gateway's lines created in `[from, to)` (Unix seconds).
    fn statement(
        &self,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, Result<Vec<StatementLine>, GatewayError>>;
}

/// The gateways this hub speaks (each protocol module's `NAME`).
pub use crate::domain::GATEWAY_NAMES;

/// The header a gateway signs its webhooks in.
pub fn signature_header(gateway: &str) -> Option<&'static str> {
    (gateway == super::stripe::NAME).then_some(super::stripe::SIGNATURE_HEADER)
}

/// Our payment id in an unverified body, only to find which account's secret verifies it.
pub fn peek_payment_id(gateway: &str, body: &[u8]) -> Option<String> {
    (gateway == super::stripe::NAME)
        .then(|| super::stripe::peek_payment_id(body))
        .flatten()
}
