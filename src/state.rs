//! The application state every HTTP handler receives: one struct, shared by reference.

use std::sync::Arc;

use crate::actors::wallet_registry::WalletRegistry;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::realtime::bus::Bus;
use crate::realtime::room_hub::RoomHub;
use crate::store::Store;
use crate::transfers::Providers;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub auth: Arc<Authenticator>,
    pub wallets: WalletRegistry,
    pub rooms: Arc<RoomHub>,
    pub bus: Bus,
    pub providers: Providers,
    /// Deposits and withdrawals through payment gateways (issue 18).
    pub payments: crate::payments::Payments,
    /// Per-caller request limit (`NASHUB_RATE_LIMIT_PER_USER`).
    pub limiter: Arc<crate::auth::rate_limit::RateLimiter>,
    /// Unauthenticated endpoints, per client IP: login and refresh, provider callbacks.
    pub ip_limits: Arc<crate::auth::rate_limit::IpLimits>,
    /// Origins allowed by CORS (the platform's and every client's).
    pub origins: Arc<crate::clients::origins::AllowedOrigins>,
    /// Send `Strict-Transport-Security`.
    pub hsts: bool,
    /// Seals provider credentials at rest.
    pub secrets: Arc<crate::secrets::SecretBox>,
    /// Email and SMS (issue 19): clock, code lifetime, delivery report URLs.
    pub channels: Arc<crate::channels::Runtime>,
}
