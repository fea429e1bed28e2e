//! Payments through external gateways (issue 18): deposits by hosted checkout and withdrawals
//! by payout, on the ledger, with the outbox pattern of the provider transfers.
//!
//! - `gateway`: the `PaymentGateway` trait and what it answers; `stripe`: the Stripe subset
//!   (docs/payments-stripe.md); `sim`: its simulator (`nashub sim pay`, embedded by default).
//! - `registry`: which gateway account serves a client (sealed credentials, or the simulator).
//! - `service`: the state machines; `wallet_steps`: the steps the wallet actor runs.
//! - `reconciler`: settles what is left open, applies stored webhooks, compares statements.
//! - `settings`: per-client rules; `hooks`: call sites for player protection and channels.
//!
//! Sits beside `transfers` (on `actors`, `realtime`, `store`), below `state`.

pub mod gateway;
pub mod hooks;
pub mod reconciler;
pub mod registry;
pub mod service;
pub mod settings;
pub mod sim;
pub mod stripe;
pub mod wallet_steps;

pub use service::{PaymentError, PaymentRequest, Payments};
