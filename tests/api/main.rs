//! Integration tests through the public surface: HTTP, websocket, the `nashub` binary.

mod helpers;

mod audit;
mod auth;
mod auth_throttle;
mod auth_tokens;
mod authz;
mod availability;
mod clients_settings;
mod closed_accounts;
mod commission;
mod concurrency;
mod durability;
mod flow;
mod idempotency;
mod ledger;
mod notifications;
mod ops;
mod providers;
mod providers_crash;
mod providers_credentials;
mod providers_restart;
mod read_cache;
mod realtime;
mod realtime_browser;
mod realtime_redis;
mod settlements;
mod two_nodes;
mod users_admin;
mod validation;
