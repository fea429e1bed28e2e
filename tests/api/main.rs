//! Integration tests through the public surface: HTTP, websocket, the `nashub` binary.

mod helpers;

mod auth;
mod concurrency;
mod flow;
mod idempotency;
mod ledger;
mod ops;
mod providers;
mod providers_crash;
mod two_nodes;
mod validation;
