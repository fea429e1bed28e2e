//! nashub: a real-time game hub for white-label casino operators.
//!
//! Code map (ARCHITECTURE.md has the long form):
//! - [`http`]: the actix-web facade; parses, authorizes, sends one command.
//! - [`actors`]: the wallet actors (one per active user), which order every balance mutation.
//! - [`transfers`]: the transfer-wallet state machine, provider accounts, games, reconciler.
//! - [`settlements`]: settling a client's period and posting it, agents' differential commission
//!   and its statuses, the settlement scheduler, revenue collections; [`clients`]: client settings.
//! - [`ledger`]: accounts and how each money movement becomes a balanced journal entry.
//! - [`store`]: sqlx storage, one SQL text compiled for SQLite and MySQL; `store::ledger` the
//!   money path (one write algorithm, group commit).
//! - [`realtime`]: the bus (events between nodes, in-process or Redis pub/sub, with per-room
//!   seq), the room hub and the websocket sessions.
//! - [`auth`], [`access`], [`users`]: identity, who may reach whom, creating users.
//! - [`domain`]: validated value types (amounts, currencies, roles and statuses, names).
//! - [`config`], [`startup`], [`telemetry`], [`otel`] (traces), [`metrics`], [`ops`],
//!   [`admission`]: running it; [`rt`]: local tasks that are safe to drop at shutdown.
//! - [`channels`]: email and SMS: contacts, preferences, templates, the outbox and its dispatcher.
//! - [`web`]: server-rendered pages (the back-office console) over the API's handlers.
//! - [`providers`]: game provider adapters (JDB, LuckySports) behind one trait, and their
//!   simulators.

#![recursion_limit = "256"] // the OpenAPI schema table is one large `json!`.

pub mod access;
pub mod actors;
pub mod admission;
pub mod audit;
pub mod auth;
pub mod channels;
pub mod clients;
pub mod config;
pub mod domain;
pub mod http;
pub mod ledger;
pub mod metrics;
pub mod ops;
pub mod otel;
pub mod payments;
pub mod protection;
pub mod providers;
pub mod realtime;
pub mod reports;
pub mod rt;
pub mod secrets;
pub mod settlements;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod transfers;
pub mod users;
pub mod web;
