//! Integration tests through the public surface: HTTP, websocket, the `nashub` binary.

mod helpers;

mod auth;
mod concurrency;
mod flow;
mod idempotency;
mod notifications;
mod ops;
mod realtime;
mod realtime_browser;
mod realtime_redis;
mod two_nodes;
mod validation;
