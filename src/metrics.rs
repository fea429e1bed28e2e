//! Metric names and their registration at zero, so dashboards see every series from start.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
pub const ACTIVE_USERS: &str = "active_users_total";
pub const BALANCE_TRANSFERS: &str = "balance_transfers_total";
pub const GAME_SESSIONS: &str = "game_sessions_total";
pub const WS_CONNECTIONS: &str = "websocket_connections";
pub const WALLET_ACTORS: &str = "wallet_actors";
pub const EVENTS_PUBLISHED: &str = "events_published_total";
pub const EVENTS_DELIVERED: &str = "events_delivered_total";
pub const EVENTS_DROPPED: &str = "events_dropped_total";
pub const WS_SLOW_CLOSED: &str = "websocket_slow_consumers_closed_total";
pub const LEDGER_IMBALANCE: &str = "ledger_imbalance";
pub const PROVIDER_CALLS: &str = "provider_calls_total";
pub const PROVIDER_CALL_DURATION: &str = "provider_call_duration_seconds";
pub const PROVIDER_TRANSFERS: &str = "provider_transfers_total";
pub const RECONCILER_BACKLOG: &str = "provider_reconciler_backlog";
pub const PROVIDER_BREAKER: &str = "provider_breaker_state";
pub const PROVIDER_CALLBACKS: &str = "provider_callbacks_total";
pub const WS_SUBSCRIPTIONS: &str = "websocket_subscriptions";
pub const QUEUE_DROPS: &str = "websocket_queue_drops_total";
pub const DELIVERY_LATENCY: &str = "event_delivery_duration_seconds";
pub const BUS_RETRIES: &str = "bus_publish_retries_total";
pub const NOTIFICATIONS_SENT: &str = "notifications_sent_total";
// Channels: email and SMS (issue 19).
pub const CHANNEL_MESSAGES: &str = "channel_messages_total";
pub const CHANNEL_SEND_FAILURES: &str = "channel_send_failures_total";
pub const CHANNEL_SEND_DURATION: &str = "channel_send_duration_seconds";
pub const CHANNEL_RATE_LIMITED: &str = "channel_rate_limited_total";
pub const CHANNEL_DUE: &str = "channel_outbox_due";
pub const CHANNEL_CALLBACKS: &str = "channel_delivery_reports_total";
pub const LEDGER_COMMITS: &str = "ledger_commits_total";
pub const LEDGER_BATCH_SIZE: &str = "ledger_commit_batch_size";
pub const SQLITE_WAL_RESTARTS: &str = "sqlite_wal_restarts_total";
pub const SQLITE_WAL_SYNCS: &str = "sqlite_wal_syncs_total";
/// MySQL: lone commits that waited for one more to share their transaction, by whether one
/// came (`found`: `true`/`false`; `store::ledger::commit_linger`).
pub const LEDGER_COMMIT_LINGERS: &str = "ledger_commit_lingers_total";
pub const PROVIDER_FAILURES: &str = "provider_failures_total";
pub const PAYMENTS: &str = "payments_total";
pub const PAYMENT_DURATION: &str = "payment_settle_duration_seconds";
pub const PAYMENT_GATEWAY_DURATION: &str = "payment_gateway_request_duration_seconds";
pub const PAYMENT_WEBHOOKS: &str = "payment_webhooks_total";
pub const PAYMENT_RECONCILER_BACKLOG: &str = "payment_reconciler_backlog";
/// `outcome` label values of `provider_failures_total` (a bounded set; codes go to the log).
pub const PROVIDER_FAILURE_OUTCOMES: &[&str] =
    &["refused", "unknown", "unavailable", "unknown_player"];
// Availability under attack (issue 25).
pub const CLIENT_ERRORS: &str = "http_client_errors_total";
pub const CONNECTIONS_OPEN: &str = "connections_open";
pub const CONNECTIONS_REFUSED: &str = "connections_refused_total";
pub const CONNECTIONS_EVICTED: &str = "connections_evicted_total";
pub const BODY_TIMEOUTS: &str = "request_body_timeouts_total";
pub const WS_REFUSED: &str = "websocket_refused_total";
pub const WS_FRAME_RATE_CLOSED: &str = "websocket_frame_rate_closed_total";
pub const SOCKETIO_CONNECTIONS: &str = "socketio_connections";
pub const SOCKETIO_CONNECT_ERRORS: &str = "socketio_connect_errors_total";
/// `socketio_connect_errors_total{reason}`: refused at the Socket.io handshake (polling and
/// wrong `EIO` at the upgrade count as `bad_packet`).
pub const SOCKETIO_CONNECT_ERROR_REASONS: &[&str] = &[
    "invalid_token",
    "invalid_namespace",
    "too_many_websockets",
    "bad_packet",
];
// Game service (issue 21).
pub const GAME_SESSIONS_ENDED: &str = "game_sessions_ended_total";
pub const CATALOGUE_REFRESHES: &str = "games_catalogue_refreshes_total";
// GraphQL read model (issue 17): batches of its per-id loaders and the keys they carried.
pub const GRAPHQL_LOADER_BATCHES: &str = "graphql_loader_batches_total";
pub const GRAPHQL_LOADER_KEYS: &str = "graphql_loader_keys_total";
/// Journal entries and rounds the report feed added to the rollups (`store/report_feed.rs`).
pub const REPORT_FEED_ENTRIES: &str = "report_feed_entries_total";
/// `loader` label values of the two above (`http::graphql::loaders`).
pub const GRAPHQL_LOADERS: &[&str] = &["users", "clients", "accounts", "postings"];
// Player protection and staff second factor (issue 19).
pub const PROTECTION_REFUSALS: &str = "protection_refusals_total";
/// `protection_refusals_total{kind}`: what refused a movement.
pub const PROTECTION_REFUSAL_KINDS: &[&str] = &["deposit", "wager", "loss", "session", "exclusion"];
pub const REALITY_CHECKS: &str = "reality_checks_total";
pub const TOTP_VERIFICATIONS: &str = "totp_verifications_total";
/// `totp_verifications_total{outcome}`.
pub const TOTP_OUTCOMES: &[&str] = &["ok", "recovery_code", "wrong", "throttled"];
/// `game_sessions_ended_total{by}` label values.
pub const SESSION_ENDED_BY: &[&str] = &["player", "operator", "provider"];

/// `connections_refused_total{reason}`: over the per-IP unauthenticated cap, or over the
/// connection budget (descriptor limit minus reserve).
pub const CONNECTION_REFUSALS: &[&str] = &["per_ip", "fd_reserve"];
/// `websocket_refused_total{reason}`: the per-user cap (at upgrade or at the `auth` frame) or
/// the per-IP cap.
pub const WS_REFUSALS: &[&str] = &["per_user", "per_ip"];
/// Client faults seen below the router (no `ApiError` code exists for them); every other
/// `http_client_errors_total{code}` is an `ApiError` code, a fixed set of constants.
pub const CLIENT_FAULTS: &[&str] = &["malformed_request", "request_timeout"];

/// Distinct `client_id` label values a node gives per-client series; later clients share
/// `client_id="other"`. Series per metric stay ≤ this × the other labels' fixed sets.
pub const MAX_CLIENT_LABELS: usize = 1000;

static CLIENT_LABELS: std::sync::OnceLock<dashmap::DashSet<String>> = std::sync::OnceLock::new();

/// The `client_id` label for a client: its id while fewer than `MAX_CLIENT_LABELS` clients
/// have one on this node, else `other` (a bound on the series count, whatever the tenants).
pub fn client_label(client_id: &str) -> String {
    let seen = CLIENT_LABELS.get_or_init(dashmap::DashSet::new);
    if seen.contains(client_id) {
        return client_id.to_owned();
    }
    if seen.len() < MAX_CLIENT_LABELS {
        seen.insert(client_id.to_owned());
        return client_id.to_owned();
    }
    "other".to_owned()
}

/// `game_sessions_total{game_type}`: a fixed set. JDB's `gType` codes map to what players
/// call them; LuckySports is a sportsbook.
pub const GAME_TYPES: &[&str] = &[
    "slot", "fishing", "arcade", "lottery", "card", "sports", "other",
];

pub fn game_type(provider: &str, game_code: &str) -> &'static str {
    match provider {
        "luckysports" => "sports",
        "jdb" => match game_code.split_once('-').map(|(g, _)| g) {
            Some("0") => "slot",
            Some("7") => "fishing",
            Some("9") => "arcade",
            Some("12") => "lottery",
            Some("18") => "card",
            _ => "other",
        },
        _ => "other",
    }
}

/// Journal entry kinds: `balance_transfers_total{transfer_type}` values.
pub const TRANSFER_KINDS: &[&str] = &crate::ledger::JournalKind::NAMES;

pub fn register_all() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency"
    );
    describe_gauge!(
        ACTIVE_USERS,
        "Users with at least one live websocket (per client_id, and in all)"
    );
    describe_counter!(
        BALANCE_TRANSFERS,
        "Committed wallet mutations, by client_id and transfer_type (the movement kind)"
    );
    describe_counter!(
        GAME_SESSIONS,
        "Game sessions started, by client_id and game_type"
    );
    describe_gauge!(WS_CONNECTIONS, "Open websocket connections");
    describe_gauge!(WALLET_ACTORS, "Live wallet actors");
    describe_counter!(EVENTS_PUBLISHED, "Events published to the bus");
    describe_counter!(EVENTS_DELIVERED, "Frames queued to websocket sessions");
    describe_counter!(EVENTS_DROPPED, "Events lost to a bus failure");
    describe_counter!(
        WS_SLOW_CLOSED,
        "Websockets closed because their outbound queue was full"
    );
    describe_gauge!(
        LEDGER_IMBALANCE,
        "Ledger violations found by the last check (always 0)"
    );

    describe_gauge!(WS_SUBSCRIPTIONS, "Room memberships of open websockets");
    describe_counter!(
        QUEUE_DROPS,
        "Frames refused by a full session queue (the session is closed with 4008)"
    );
    describe_histogram!(
        DELIVERY_LATENCY,
        metrics::Unit::Seconds,
        "From publish to queued for this node's sessions, per room event"
    );
    describe_counter!(BUS_RETRIES, "Publish batches retried after a Redis failure");
    describe_counter!(NOTIFICATIONS_SENT, "Notifications stored and pushed");

    counter!(HTTP_REQUESTS).absolute(0);
    let _ = histogram!(HTTP_DURATION);
    gauge!(ACTIVE_USERS).set(0.0);
    gauge!(WS_CONNECTIONS).set(0.0);
    gauge!(WALLET_ACTORS).set(0.0);
    counter!(EVENTS_PUBLISHED).absolute(0);
    counter!(EVENTS_DELIVERED).absolute(0);
    counter!(EVENTS_DROPPED).absolute(0);
    counter!(WS_SLOW_CLOSED).absolute(0);
    gauge!(LEDGER_IMBALANCE).set(0.0);

    describe_counter!(
        PROVIDER_CALLS,
        "Provider calls, by provider, account, method and outcome"
    );
    describe_histogram!(
        PROVIDER_CALL_DURATION,
        metrics::Unit::Seconds,
        "Provider call latency"
    );
    describe_counter!(
        PROVIDER_TRANSFERS,
        "Provider transfers reaching a state, by provider and state"
    );
    describe_gauge!(
        RECONCILER_BACKLOG,
        "Unresolved provider transfers seen by the last reconciler pass"
    );
    describe_gauge!(
        PROVIDER_BREAKER,
        "Circuit breaker per provider account: 0 closed, 1 half-open, 2 open"
    );
    describe_counter!(
        PROVIDER_CALLBACKS,
        "Provider callbacks, by provider and outcome"
    );
    for provider in crate::domain::PROVIDER_NAMES {
        for state in crate::domain::TransferState::NAMES {
            counter!(PROVIDER_TRANSFERS, "provider" => *provider, "state" => state).absolute(0);
        }
    }
    gauge!(RECONCILER_BACKLOG).set(0.0);
    gauge!(WS_SUBSCRIPTIONS).set(0.0);
    counter!(QUEUE_DROPS).absolute(0);
    let _ = histogram!(DELIVERY_LATENCY);
    counter!(BUS_RETRIES).absolute(0);
    counter!(NOTIFICATIONS_SENT).absolute(0);
    register_ledger();
    register_provider_failures();
    register_availability();
    register_games();
    register_graphql();
    describe_counter!(
        REPORT_FEED_ENTRIES,
        "Journal entries and rounds the report feed added to the report rollups (periodic runs and reports' catch-ups)"
    );
    counter!(REPORT_FEED_ENTRIES).absolute(0);
    register_protection();
    register_payments();
    register_channels();
}

/// GraphQL loader batches and keys, per loader (issue 17).
fn register_graphql() {
    describe_counter!(
        GRAPHQL_LOADER_BATCHES,
        "Batched lookups of the GraphQL read model, by loader (one query each)"
    );
    describe_counter!(
        GRAPHQL_LOADER_KEYS,
        "Ids looked up by the GraphQL loaders' batches, by loader"
    );
    for loader in GRAPHQL_LOADERS {
        counter!(GRAPHQL_LOADER_BATCHES, "loader" => *loader).absolute(0);
        counter!(GRAPHQL_LOADER_KEYS, "loader" => *loader).absolute(0);
    }
}

/// Refused movements, reality checks sent, second-factor checks (issue 19).
fn register_protection() {
    describe_counter!(
        PROTECTION_REFUSALS,
        "Movements refused by a player's limit or exclusion, by kind (deposit, wager, loss, session, exclusion)"
    );
    describe_counter!(REALITY_CHECKS, "Reality-check frames sent to players");
    describe_counter!(
        TOTP_VERIFICATIONS,
        "Second-factor codes checked at login, by outcome (ok, recovery_code, wrong, throttled)"
    );
    for kind in PROTECTION_REFUSAL_KINDS {
        counter!(PROTECTION_REFUSALS, "kind" => *kind).absolute(0);
    }
    counter!(REALITY_CHECKS).absolute(0);
    for outcome in TOTP_OUTCOMES {
        counter!(TOTP_VERIFICATIONS, "outcome" => *outcome).absolute(0);
    }
}

/// Payments (issue 18), at zero for every gateway, kind and state.
fn register_payments() {
    describe_counter!(
        PAYMENTS,
        "Payments reaching a state, by gateway, kind (deposit, withdrawal) and state"
    );
    describe_histogram!(
        PAYMENT_DURATION,
        metrics::Unit::Seconds,
        "From a payment's request to its terminal state, by gateway and kind"
    );
    describe_histogram!(
        PAYMENT_GATEWAY_DURATION,
        metrics::Unit::Seconds,
        "Payment gateway API call latency"
    );
    describe_counter!(
        PAYMENT_WEBHOOKS,
        "Payment webhooks, by gateway and outcome (accepted, duplicate, refused)"
    );
    describe_gauge!(
        PAYMENT_RECONCILER_BACKLOG,
        "Open payments in the payment reconciler's last batch"
    );
    for gateway in crate::domain::GATEWAY_NAMES {
        for kind in crate::domain::PaymentKind::NAMES {
            for state in crate::domain::PaymentState::NAMES {
                counter!(PAYMENTS, "gateway" => *gateway, "kind" => kind, "state" => state)
                    .absolute(0);
            }
            let _ = histogram!(PAYMENT_DURATION, "gateway" => *gateway, "kind" => kind);
        }
        for outcome in ["accepted", "duplicate", "refused"] {
            counter!(PAYMENT_WEBHOOKS, "gateway" => *gateway, "outcome" => outcome).absolute(0);
        }
        let _ = histogram!(PAYMENT_GATEWAY_DURATION, "gateway" => *gateway);
    }
    gauge!(PAYMENT_RECONCILER_BACKLOG).set(0.0);
}

/// Email and SMS messages by channel and state, send failures, rate limiting (issue 19).
fn register_channels() {
    use crate::domain::{Channel, DeliveryState};
    describe_counter!(
        CHANNEL_MESSAGES,
        "Email/SMS messages entering a state (queued, suppressed, sent, delivered, failed), by channel"
    );
    describe_counter!(
        CHANNEL_SEND_FAILURES,
        "Failed send attempts, by channel and kind (transient: retried, permanent)"
    );
    describe_histogram!(
        CHANNEL_SEND_DURATION,
        metrics::Unit::Seconds,
        "Time to hand one message to the SMTP server or SMS gateway"
    );
    describe_counter!(
        CHANNEL_RATE_LIMITED,
        "Messages held back by a rate limit, by scope (client, recipient)"
    );
    describe_gauge!(
        CHANNEL_DUE,
        "Outbox messages due at the dispatcher's last look"
    );
    describe_counter!(
        CHANNEL_CALLBACKS,
        "SMS delivery reports received, by outcome (applied, duplicate, bad_signature, unknown)"
    );
    for channel in Channel::ALL {
        for state in DeliveryState::ALL {
            if state != DeliveryState::Sending {
                counter!(CHANNEL_MESSAGES, "channel" => channel.as_str(), "state" => state.as_str())
                    .absolute(0);
            }
        }
        for kind in ["transient", "permanent"] {
            counter!(CHANNEL_SEND_FAILURES, "channel" => channel.as_str(), "kind" => kind)
                .absolute(0);
        }
        let _ = histogram!(CHANNEL_SEND_DURATION, "channel" => channel.as_str());
    }
    for scope in ["client", "recipient"] {
        counter!(CHANNEL_RATE_LIMITED, "scope" => scope).absolute(0);
    }
    for outcome in ["applied", "duplicate", "bad_signature", "unknown"] {
        counter!(CHANNEL_CALLBACKS, "outcome" => outcome).absolute(0);
    }
    gauge!(CHANNEL_DUE).set(0.0);
}

/// Game sessions ended (by whom) and catalogue refreshes (by provider and outcome), issue 21.
fn register_games() {
    describe_counter!(
        GAME_SESSIONS_ENDED,
        "Game sessions ended, by who ended them (player, operator, provider)"
    );
    describe_counter!(
        CATALOGUE_REFRESHES,
        "Games catalogue fetches from a provider, by provider and outcome (ok, failed)"
    );
    for by in SESSION_ENDED_BY {
        counter!(GAME_SESSIONS_ENDED, "by" => *by).absolute(0);
    }
    for provider in crate::domain::PROVIDER_NAMES {
        for outcome in ["ok", "failed"] {
            counter!(CATALOGUE_REFRESHES, "provider" => *provider, "outcome" => outcome)
                .absolute(0);
        }
    }
}

/// Provider refusals and failures (issue 26), by provider and a bounded outcome.
fn register_provider_failures() {
    describe_counter!(
        PROVIDER_FAILURES,
        "Provider refusals and failures, by provider and outcome (refused, unknown, unavailable, unknown_player)"
    );
    for provider in crate::domain::PROVIDER_NAMES {
        for outcome in PROVIDER_FAILURE_OUTCOMES {
            counter!(PROVIDER_FAILURES, "provider" => *provider, "outcome" => *outcome).absolute(0);
        }
    }
}

fn register_availability() {
    describe_counter!(
        CLIENT_ERRORS,
        "Requests refused for a client fault (4xx), by error code; logged at debug, not error"
    );
    describe_gauge!(
        CONNECTIONS_OPEN,
        "Open client connections (HTTP and websocket) on this node"
    );
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections closed at accept, by reason (per_ip: unauthenticated cap; fd_reserve)"
    );
    describe_counter!(
        CONNECTIONS_EVICTED,
        "Unauthenticated connections closed to make room for a new one at the connection budget"
    );
    counter!(CONNECTIONS_EVICTED).absolute(0);
    describe_counter!(
        BODY_TIMEOUTS,
        "Requests answered 408 because their body was too slow or never came"
    );
    describe_counter!(
        WS_REFUSED,
        "Websockets refused by a cap, by reason (per_user, per_ip)"
    );
    describe_counter!(
        WS_FRAME_RATE_CLOSED,
        "Websockets closed (4029) for sending frames faster than allowed"
    );
    for code in CLIENT_FAULTS {
        counter!(CLIENT_ERRORS, "code" => *code).absolute(0);
    }
    gauge!(CONNECTIONS_OPEN).set(0.0);
    for reason in CONNECTION_REFUSALS {
        counter!(CONNECTIONS_REFUSED, "reason" => *reason).absolute(0);
    }
    counter!(BODY_TIMEOUTS).absolute(0);
    for reason in WS_REFUSALS {
        counter!(WS_REFUSED, "reason" => *reason).absolute(0);
    }
    counter!(WS_FRAME_RATE_CLOSED).absolute(0);
    describe_gauge!(
        SOCKETIO_CONNECTIONS,
        "Open Socket.io (Engine.IO websocket) connections; once connected, also in websocket_connections"
    );
    describe_counter!(
        SOCKETIO_CONNECT_ERRORS,
        "Socket.io connections refused at the handshake (CONNECT_ERROR or 400), by reason"
    );
    gauge!(SOCKETIO_CONNECTIONS).set(0.0);
    for reason in SOCKETIO_CONNECT_ERROR_REASONS {
        counter!(SOCKETIO_CONNECT_ERRORS, "reason" => *reason).absolute(0);
    }
}

fn register_ledger() {
    describe_counter!(
        LEDGER_COMMITS,
        "Database transactions committing journal entries"
    );
    describe_histogram!(
        LEDGER_BATCH_SIZE,
        "Journal entries per group-commit transaction"
    );
    describe_counter!(
        SQLITE_WAL_RESTARTS,
        "SQLite WAL restarts by the background checkpointer (the WAL copied back in full)"
    );
    counter!(LEDGER_COMMITS).absolute(0);
    let _ = histogram!(LEDGER_BATCH_SIZE);
    describe_counter!(
        SQLITE_WAL_SYNCS,
        "fdatasync calls on the SQLite WAL by the ledger writer's sync thread (one may cover several batches)"
    );
    describe_counter!(
        LEDGER_COMMIT_LINGERS,
        "Lone commits (MySQL) that waited for one more to share their transaction, by whether one came"
    );
    counter!(SQLITE_WAL_RESTARTS).absolute(0);
    counter!(SQLITE_WAL_SYNCS).absolute(0);
    for found in ["true", "false"] {
        counter!(LEDGER_COMMIT_LINGERS, "found" => found).absolute(0);
    }
    register_ledger_check();
}

/// Ledger checks (periodic or `check-ledger`) that could not run: alert on any increase, as a
/// check that fails to run leaves `ledger_imbalance` at 0.
pub const LEDGER_CHECK_FAILURES: &str = "ledger_check_failures_total";

fn register_ledger_check() {
    describe_counter!(
        LEDGER_CHECK_FAILURES,
        "Ledger checks that could not run (alert on any increase)"
    );
    counter!(LEDGER_CHECK_FAILURES).absolute(0);
}
