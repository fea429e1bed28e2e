//! `GET /openapi.json`: the OpenAPI 3 description of every endpoint, built from the table
//! below. A unit test checks the table against the routes registered in `http/mod.rs`, so a
//! route added without a description fails the build's tests. (A derive-based generator such as
//! utoipa would need an attribute on every handler in every module, including ones owned by
//! other work streams; the table keeps the contract in one reviewable place.)

use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde_json::{Map, Value, json};

/// One operation: method, path (as in DESIGN section 10), tag, summary, whether a bearer token
/// is needed, request body schema, success status and schema, query parameters.
struct Op {
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    auth: bool,
    body: Option<&'static str>,
    ok: (u16, &'static str),
    query: &'static [&'static str],
    idempotent_key: bool,
}

const fn op(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
) -> Op {
    Op {
        method,
        path,
        tag,
        summary,
        auth: true,
        body: None,
        ok: (200, "Object"),
        query: &[],
        idempotent_key: false,
    }
}

const PAGE: &[&str] = &["cursor", "limit"];

fn ops() -> Vec<Op> {
    vec![
        Op {
            auth: false,
            ok: (200, "Status"),
            ..op("get", "/health", "ops", "Liveness")
        },
        Op {
            auth: false,
            ok: (200, "Readiness"),
            ..op(
                "get",
                "/ready",
                "ops",
                "Readiness: database and Redis reachable",
            )
        },
        Op {
            auth: false,
            ok: (200, "Text"),
            ..op("get", "/metrics", "ops", "Prometheus metrics")
        },
        Op {
            auth: false,
            ok: (200, "Object"),
            ..op("get", "/openapi.json", "ops", "This document")
        },
        Op {
            auth: false,
            ok: (200, "Text"),
            ..op(
                "get",
                "/docs",
                "ops",
                "Browsable API documentation (offline)",
            )
        },
        Op {
            auth: false,
            query: &["token"],
            ok: (101, "Text"),
            ..op(
                "get",
                "/ws",
                "realtime",
                "Websocket; the access token goes in the `token` query parameter or a first auth frame",
            )
        },
        Op {
            auth: false,
            body: Some("LoginRequest"),
            ok: (200, "TokenResponse"),
            ..op(
                "post",
                "/api/v1/auth/login",
                "auth",
                "Log in; failed attempts are throttled (429 with Retry-After)",
            )
        },
        Op {
            auth: false,
            body: Some("RefreshRequest"),
            ok: (200, "TokenResponse"),
            ..op(
                "post",
                "/api/v1/auth/refresh",
                "auth",
                "Rotate a refresh token; reuse revokes the family",
            )
        },
        Op {
            ok: (204, "Empty"),
            ..op(
                "post",
                "/api/v1/auth/logout",
                "auth",
                "End the caller's session",
            )
        },
        Op {
            body: Some("PasswordChange"),
            ok: (204, "Empty"),
            ..op(
                "post",
                "/api/v1/auth/password",
                "auth",
                "Change the caller's password; other sessions end",
            )
        },
        Op {
            body: Some("CreateClient"),
            ok: (201, "Client"),
            ..op(
                "post",
                "/api/v1/clients",
                "clients",
                "Create a client (super admin)",
            )
        },
        Op {
            query: PAGE,
            ok: (200, "ClientPage"),
            ..op("get", "/api/v1/clients", "clients", "List clients")
        },
        Op {
            ok: (200, "Client"),
            ..op("get", "/api/v1/clients/{id}", "clients", "Get a client")
        },
        Op {
            body: Some("UpdateClient"),
            ok: (200, "Client"),
            ..op(
                "patch",
                "/api/v1/clients/{id}",
                "clients",
                "Rename, suspend or reactivate a client (super admin)",
            )
        },
        Op {
            ok: (200, "ClientSettings"),
            ..op(
                "get",
                "/api/v1/clients/{id}/settings",
                "clients",
                "A client's settings; credentials as metadata only",
            )
        },
        Op {
            body: Some("ClientSettingsPatch"),
            ok: (200, "ClientSettings"),
            ..op(
                "patch",
                "/api/v1/clients/{id}/settings",
                "clients",
                "Change settings (super admin)",
            )
        },
        Op {
            body: Some("Credentials"),
            ok: (200, "CredentialsInfo"),
            ..op(
                "put",
                "/api/v1/clients/{id}/credentials/{provider}",
                "clients",
                "Store the client's own provider account credentials (validated, sealed with AES-256-GCM); every node uses them at once",
            )
        },
        Op {
            body: Some("CreateUser"),
            ok: (201, "User"),
            ..op(
                "post",
                "/api/v1/users",
                "users",
                "Create a user under a parent",
            )
        },
        Op {
            query: &[
                "client_id",
                "role",
                "status",
                "parent_id",
                "username",
                "cursor",
                "limit",
            ],
            ok: (200, "UserPage"),
            ..op(
                "get",
                "/api/v1/users",
                "users",
                "List users (an agent: its subtree)",
            )
        },
        Op {
            ok: (200, "User"),
            ..op("get", "/api/v1/users/{id}", "users", "Get a user")
        },
        Op {
            body: Some("UpdateUser"),
            ok: (200, "User"),
            ..op("patch", "/api/v1/users/{id}", "users", "Rename a user")
        },
        Op {
            query: PAGE,
            ok: (200, "UserPage"),
            ..op(
                "get",
                "/api/v1/users/{id}/children",
                "users",
                "Direct children",
            )
        },
        Op {
            ok: (200, "UserPage"),
            ..op(
                "get",
                "/api/v1/users/{id}/ancestors",
                "users",
                "Ancestors the caller may see, root first",
            )
        },
        Op {
            query: PAGE,
            ok: (200, "UserPage"),
            ..op(
                "get",
                "/api/v1/users/{id}/subtree",
                "users",
                "Everyone below the user, in tree order",
            )
        },
        Op {
            ok: (200, "User"),
            ..op(
                "post",
                "/api/v1/users/{id}/suspend",
                "users",
                "Suspend; every session ends at once",
            )
        },
        Op {
            ok: (200, "User"),
            ..op(
                "post",
                "/api/v1/users/{id}/reactivate",
                "users",
                "Reactivate a suspended user",
            )
        },
        Op {
            ok: (200, "User"),
            ..op(
                "post",
                "/api/v1/users/{id}/close",
                "users",
                "Close for good; every session ends",
            )
        },
        Op {
            ok: (200, "Permissions"),
            ..op(
                "get",
                "/api/v1/users/{id}/permissions",
                "users",
                "Defaults, overrides and effective permissions",
            )
        },
        Op {
            ok: (200, "Permissions"),
            ..op(
                "put",
                "/api/v1/users/{id}/permissions/{permission}",
                "users",
                "Grant a permission",
            )
        },
        Op {
            ok: (200, "Permissions"),
            ..op(
                "delete",
                "/api/v1/users/{id}/permissions/{permission}",
                "users",
                "Revoke a permission",
            )
        },
        Op {
            query: &["at"],
            ok: (200, "Wallet"),
            ..op(
                "get",
                "/api/v1/users/{id}/wallet",
                "wallets",
                "Balance, now or at a past time (`at`, RFC 3339)",
            )
        },
        Op {
            body: Some("MoveBody"),
            ok: (200, "MoveResult"),
            idempotent_key: true,
            ..op(
                "post",
                "/api/v1/users/{id}/wallet/deposit",
                "wallets",
                "External cash in (admins)",
            )
        },
        Op {
            body: Some("MoveBody"),
            ok: (200, "MoveResult"),
            idempotent_key: true,
            ..op(
                "post",
                "/api/v1/users/{id}/wallet/withdraw",
                "wallets",
                "External cash out (admins)",
            )
        },
        Op {
            body: Some("MoveBody"),
            ok: (200, "MoveResult"),
            idempotent_key: true,
            ..op(
                "post",
                "/api/v1/users/{id}/wallet/credit",
                "wallets",
                "Agent's balance to a downline user",
            )
        },
        Op {
            body: Some("MoveBody"),
            ok: (200, "MoveResult"),
            idempotent_key: true,
            ..op(
                "post",
                "/api/v1/users/{id}/wallet/debit",
                "wallets",
                "A downline user's balance back to the agent",
            )
        },
        Op {
            body: Some("AdjustBody"),
            ok: (200, "MoveResult"),
            idempotent_key: true,
            ..op(
                "post",
                "/api/v1/users/{id}/wallet/adjust",
                "wallets",
                "An admin's correction: signed amount, required reason (audited)",
            )
        },
        Op {
            query: &[
                "cursor",
                "limit",
                "kind",
                "from",
                "to",
                "min_amount",
                "max_amount",
                "reference",
            ],
            ok: (200, "TransactionPage"),
            ..op(
                "get",
                "/api/v1/users/{id}/transactions",
                "wallets",
                "Committed movements, newest first",
            )
        },
        Op {
            query: &["cursor", "limit", "kind", "from", "to"],
            ok: (200, "Object"),
            ..op(
                "get",
                "/api/v1/clients/{id}/transactions",
                "wallets",
                "The client's journal: every entry with its postings, newest first (admins)",
            )
        },
        Op {
            body: Some("SettleBody"),
            ok: (201, "Settlement"),
            idempotent_key: true,
            ..op(
                "post",
                "/api/v1/clients/{id}/settlements",
                "settlements",
                "Settle a closed period: agents' commission and the platform's revenue share (platform; 200 when the key or period was settled before, 409 settlement_overlap)",
            )
        },
        Op {
            query: PAGE,
            ok: (200, "SettlementPage"),
            ..op(
                "get",
                "/api/v1/clients/{id}/settlements",
                "settlements",
                "The client's settlements, newest period first (platform and client admins)",
            )
        },
        Op {
            ok: (200, "Settlement"),
            ..op(
                "get",
                "/api/v1/clients/{id}/settlements/{settlement_id}",
                "settlements",
                "One settlement with its commission lines and revenue share",
            )
        },
        Op {
            ok: (200, "CommissionLineStatus"),
            ..op(
                "post",
                "/api/v1/clients/{id}/settlements/{settlement_id}/commissions/{agent_id}/approve",
                "settlements",
                "Approve a commission line: calculated or held → approved (super admins; the client's admins with wallets.cash; 409 invalid_transition)",
            )
        },
        Op {
            ok: (200, "CommissionLineStatus"),
            ..op(
                "post",
                "/api/v1/clients/{id}/settlements/{settlement_id}/commissions/{agent_id}/hold",
                "settlements",
                "Hold a commission line: calculated or approved → held (409 invalid_transition once paid)",
            )
        },
        Op {
            ok: (200, "CommissionLineStatus"),
            ..op(
                "post",
                "/api/v1/clients/{id}/settlements/{settlement_id}/commissions/{agent_id}/pay",
                "settlements",
                "Pay an approved commission line into the agent's wallet, once (paying again answers the paid line; 409 invalid_transition unless approved)",
            )
        },
        Op {
            body: Some("CollectionBody"),
            ok: (201, "RevenueCollection"),
            idempotent_key: true,
            ..op(
                "post",
                "/api/v1/clients/{id}/revenue-collections",
                "settlements",
                "Record the platform's collection of a settlement's revenue share, or its reversal (platform; 409 exceeds_outstanding)",
            )
        },
        Op {
            query: PAGE,
            ok: (200, "RevenueStatementPage"),
            ..op(
                "get",
                "/api/v1/clients/{id}/revenue-statements",
                "settlements",
                "Per settlement, newest period first: the platform's share, collected, outstanding, and the collections",
            )
        },
        Op {
            ok: (200, "CommissionRate"),
            ..op(
                "get",
                "/api/v1/users/{id}/commission",
                "users",
                "An agent's own and effective commission rate",
            )
        },
        Op {
            body: Some("RateBody"),
            ok: (200, "CommissionRate"),
            ..op(
                "put",
                "/api/v1/users/{id}/commission",
                "users",
                "Set an agent's commission rate (its parent agent, or the client's admins; at most the parent's and the client's rate; audited)",
            )
        },
        Op {
            ok: (200, "CurrentCommission"),
            ..op(
                "get",
                "/api/v1/users/{id}/commission/current",
                "users",
                "An agent's running commission in the open period",
            )
        },
        Op {
            ok: (200, "SessionCommission"),
            ..op(
                "get",
                "/api/v1/game-sessions/{id}/commission",
                "settlements",
                "What each agent above the player earns from a finished game session (409 session_open)",
            )
        },
        Op {
            query: &["client_id", "action", "cursor", "limit"],
            ok: (200, "AuditPage"),
            ..op(
                "get",
                "/api/v1/audit",
                "audit",
                "The hash-chained audit trail, newest first",
            )
        },
        Op {
            body: Some("ProviderTransferBody"),
            ok: (200, "ProviderTransfer"),
            idempotent_key: true,
            ..op(
                "post",
                "/api/v1/users/{id}/providers/{provider}/transfer-in",
                "providers",
                "Wallet to a game provider (`jdb`, `luckysports`); 202 while pending/unknown",
            )
        },
        Op {
            body: Some("ProviderTransferBody"),
            ok: (200, "ProviderTransfer"),
            idempotent_key: true,
            ..op(
                "post",
                "/api/v1/users/{id}/providers/{provider}/transfer-out",
                "providers",
                "Game provider back to the wallet; 202 while pending/unknown",
            )
        },
        Op {
            ok: (200, "ProviderBalance"),
            ..op(
                "get",
                "/api/v1/users/{id}/providers/{provider}/balance",
                "providers",
                "The player's balance at the provider",
            )
        },
        Op {
            ok: (200, "ProviderTransfer"),
            ..op(
                "get",
                "/api/v1/users/{id}/providers/{provider}/transfers/{transfer_id}",
                "providers",
                "One transfer's state",
            )
        },
        Op {
            body: Some("LaunchBody"),
            ok: (200, "Launch"),
            ..op(
                "post",
                "/api/v1/users/{id}/providers/{provider}/launch",
                "providers",
                "Start a game session; the provider's game URL",
            )
        },
        Op {
            ok: (200, "Object"),
            ..op(
                "get",
                "/api/v1/providers/{provider}/games",
                "providers",
                "The provider's catalog, without games switched off for the caller's client",
            )
        },
        Op {
            body: Some("Switch"),
            ok: (200, "Object"),
            ..op(
                "put",
                "/api/v1/clients/{id}/providers/{provider}",
                "providers",
                "Switch a provider on or off for a client (client admins)",
            )
        },
        Op {
            body: Some("Switch"),
            ok: (200, "Object"),
            ..op(
                "put",
                "/api/v1/clients/{id}/providers/{provider}/games/{game}",
                "providers",
                "Switch one game on or off for a client (client admins)",
            )
        },
        Op {
            auth: false,
            body: Some("Object"),
            ok: (200, "Object"),
            ..op(
                "post",
                "/callbacks/{provider}",
                "providers",
                "Provider-to-hub reports, authenticated by the protocol's signature",
            )
        },
        // Realtime (issue 5).
        Op {
            auth: false,
            ok: (200, "Text"),
            ..op(
                "get",
                "/live",
                "realtime",
                "Browser page: log in and watch balance and notifications live",
            )
        },
        Op {
            auth: false,
            ok: (200, "Text"),
            ..op("get", "/live.js", "realtime", "Script of the /live page")
        },
        Op {
            body: Some("SendNotification"),
            ok: (201, "Notification"),
            ..op(
                "post",
                "/api/v1/notifications",
                "realtime",
                "Send a notice to a user or a client room (admins); stored and pushed live",
            )
        },
        Op {
            ok: (200, "Notification"),
            ..op(
                "post",
                "/api/v1/notifications/{id}/read",
                "realtime",
                "Mark a notice read for the caller (its recipient)",
            )
        },
        Op {
            query: &["unread", "cursor", "limit"],
            ok: (200, "NotificationPage"),
            ..op(
                "get",
                "/api/v1/users/{id}/notifications",
                "realtime",
                "A user's notices and its client's, newest first, with its read state",
            )
        },
        Op {
            body: Some("BenchEvents"),
            ok: (200, "Object"),
            ..op(
                "post",
                "/api/v1/bench/events",
                "realtime",
                "Load tests only (404 unless bench_events is on): publish synthetic events",
            )
        },
    ]
}

fn s(kind: &str) -> Value {
    json!({ "type": kind })
}

fn obj(props: &[(&str, Value)], required: &[&str]) -> Value {
    let mut p = Map::new();
    for (k, v) in props {
        p.insert((*k).to_owned(), v.clone());
    }
    json!({ "type": "object", "properties": p, "required": required, "additionalProperties": false })
}

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn page_of(item: &str) -> Value {
    obj(
        &[
            ("items", json!({ "type": "array", "items": r(item) })),
            ("next_cursor", json!({ "type": ["string", "null"] })),
        ],
        &["items", "next_cursor"],
    )
}

fn schemas() -> Value {
    let st = || s("string");
    let opt = || json!({ "type": ["string", "null"] });
    let amount = || json!({ "type": "string", "description": "decimal string in the currency's exponent", "example": "150.00" });
    let key = || json!({ "type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[\\x21-\\x7E]+$", "description": "1 to 128 printable ASCII characters; or send the Idempotency-Key header (both: they must agree)" });
    let password = || json!({ "type": "string", "minLength": 8, "maxLength": 128 });
    let username = || json!({ "type": "string", "pattern": "^[A-Za-z0-9_.-]{3,64}$", "description": "3 to 64 of a-z 0-9 _ . - (stored lower-case)" });
    json!({
        "Error": obj(&[("error", obj(&[("code", st()), ("message", st()), ("field", json!({ "type": "string", "description": "the request field at fault, when a validation error can name one" }))], &["code", "message"]))], &["error"]),
        "Object": s("object"),
        "Status": obj(&[("status", st())], &["status"]),
        "Readiness": json!({ "type": "object", "description": "more fields may be added", "properties": { "status": { "enum": ["ready", "not_ready"] }, "database": { "enum": ["ok", "unavailable"] }, "redis": { "enum": ["ok", "unavailable", "not_configured"] } }, "required": ["status", "database", "redis"] }),
        "Text": s("string"),
        "Empty": s("null"),
        "LoginRequest": obj(&[("client", json!({ "type": "string", "description": "client code; omitted for platform users" })), ("username", st()), ("password", st())], &["username", "password"]),
        "RefreshRequest": obj(&[("refresh_token", st())], &["refresh_token"]),
        "PasswordChange": obj(&[("current_password", st()), ("new_password", password())], &["current_password", "new_password"]),
        "TokenResponse": obj(&[("access_token", st()), ("refresh_token", st()), ("token_type", json!({ "const": "Bearer" })), ("expires_in", s("integer"))], &["access_token", "refresh_token", "token_type", "expires_in"]),
        "CreateClient": obj(&[("code", json!({ "type": "string", "pattern": "^[A-Za-z0-9_-]{2,32}$", "description": "2 to 32 of a-z 0-9 _ - (stored lower-case)" })), ("name", st()), ("currency", st()), ("currency_exponent", s("integer"))], &["code", "name", "currency"]),
        "UpdateClient": obj(&[("name", st()), ("status", json!({ "enum": ["active", "suspended"] }))], &[]),
        "Client": obj(&[("id", st()), ("code", st()), ("name", st()), ("currency", st()), ("currency_exponent", s("integer")), ("status", st()), ("created_at", st())], &["id"]),
        "ClientPage": page_of("Client"),
        "SendNotification": obj(&[("room", json!({ "type": "string", "description": "client:<id> or user:<id>; or give user_id" })), ("user_id", st()), ("title", st()), ("body", st())], &["title", "body"]),
        "Notification": obj(&[("id", st()), ("room", st()), ("client_id", st()), ("user_id", opt()), ("sender_id", st()), ("title", st()), ("body", st()), ("created_at", st()), ("read", s("boolean")), ("read_at", opt())], &["id", "room", "title", "body", "read"]),
        "NotificationPage": page_of("Notification"),
        "BenchEvents": obj(&[("events", json!({ "type": "array", "items": { "type": "array", "description": "[room, scheduled send time in µs]" } }))], &["events"]),
        "Branding": obj(&[("display_name", opt()), ("logo_url", opt()), ("primary_color", opt())], &[]),
        "Limits": obj(&[("max_deposit", opt()), ("max_withdrawal", opt()), ("max_transfer", opt())], &[]),
        "ClientSettingsPatch": obj(&[
            ("enabled_providers", json!({ "type": "array", "items": { "enum": ["jdb", "luckysports"] } })),
            ("commission_rate", json!({ "type": "string", "description": "0 to 1, at most 4 decimals" })),
            ("revenue_share_rate", json!({ "type": "string", "description": "0 to 1, at most 4 decimals" })),
            ("branding", r("Branding")), ("limits", r("Limits")),
            ("commission_basis", json!({ "enum": ["ngr"] })),
            ("commission_negative_carryover", s("boolean")),
            ("settlement_schedule", json!({ "enum": ["none", "daily", "weekly", "monthly"] })),
            ("timezone", json!({ "type": "string", "description": "IANA time zone name, e.g. UTC, Asia/Manila" }))], &[]),
        "ClientSettings": obj(&[
            ("client_id", st()), ("currency", st()), ("currency_exponent", s("integer")),
            ("enabled_providers", json!({ "type": "array", "items": st() })),
            ("commission_rate", st()), ("revenue_share_rate", st()), ("branding", r("Branding")), ("limits", r("Limits")),
            ("commission_basis", st()), ("commission_negative_carryover", s("boolean")), ("settlement_schedule", st()), ("timezone", st()),
            ("credentials", json!({ "type": "array", "items": r("CredentialsInfo") }))], &["client_id"]),
        "Credentials": obj(&[("credentials", json!({ "type": "object", "description": "the client's own provider account, never returned; validated before it is sealed (422 with error.field naming the bad field). jdb: base_url (http/https), operator (dc), parent, key and iv (16 characters each); luckysports: base_url, operator, secret. Optional: timeout_ms, request_window_ms, breaker_failures, breaker_open_ms, max_in_flight, results_delay_ms, results_step_ms (default: the configured account's)", "properties": { "base_url": st(), "operator": st(), "parent": st(), "key": st(), "iv": st(), "secret": st(), "timeout_ms": s("integer"), "request_window_ms": s("integer"), "breaker_failures": s("integer"), "breaker_open_ms": s("integer"), "max_in_flight": s("integer"), "results_delay_ms": s("integer"), "results_step_ms": s("integer") }, "required": ["base_url", "operator"] }))], &["credentials"]),
        "CredentialsInfo": obj(&[("provider", st()), ("configured", s("boolean")), ("key_id", st()), ("version", s("integer")), ("updated_at", st())], &["provider", "configured"]),
        "CreateUser": obj(&[("client_id", json!({ "type": "string", "description": "platform callers only" })), ("parent_id", st()), ("role", json!({ "enum": ["client_admin", "agent", "player"] })), ("username", username()), ("password", password())], &["role", "username", "password"]),
        "UpdateUser": obj(&[("username", username())], &[]),
        "User": obj(&[("id", st()), ("client_id", opt()), ("parent_id", opt()), ("role", st()), ("username", st()), ("status", json!({ "enum": ["active", "suspended", "closed"] })), ("depth", s("integer")), ("created_at", st())], &["id"]),
        "UserPage": page_of("User"),
        "Permissions": obj(&[("user_id", st()), ("role", st()), ("defaults", json!({ "type": "array", "items": st() })), ("overrides", json!({ "type": "array", "items": obj(&[("permission", st()), ("effect", json!({ "enum": ["grant", "revoke"] }))], &[]) })), ("effective", json!({ "type": "array", "items": st() }))], &["effective"]),
        "Wallet": obj(&[("user_id", st()), ("balance", amount()), ("currency", st())], &["user_id", "balance", "currency"]),
        "MoveBody": obj(&[("amount", amount()), ("memo", json!({ "type": "string", "maxLength": 256 })), ("idempotency_key", key())], &["amount"]),
        "AdjustBody": obj(&[("amount", json!({ "type": "string", "description": "signed decimal string: \"-5.00\" takes money off", "example": "-5.00" })), ("reason", json!({ "type": "string", "minLength": 1 })), ("idempotency_key", key())], &["amount", "reason"]),
        "ProviderTransferBody": obj(&[("amount", amount()), ("idempotency_key", key())], &["amount"]),
        "ProviderTransfer": json!({ "type": "object", "properties": { "transfer_id": st(), "state": json!({ "type": "string", "enum": ["pending", "unknown", "succeeded", "failed"] }), "balance": amount(), "currency": st() }, "required": ["transfer_id", "state"] }),
        "ProviderBalance": obj(&[("user_id", st()), ("provider", st()), ("balance", amount()), ("currency", st())], &["user_id", "provider", "balance", "currency"]),
        "LaunchBody": obj(&[("game", st()), ("lang", st())], &["game"]),
        "Launch": obj(&[("session_id", st()), ("provider", st()), ("url", st())], &["session_id", "provider", "url"]),
        "Switch": obj(&[("enabled", s("boolean"))], &["enabled"]),
        "MoveResult": obj(&[("transaction_id", st()), ("balance", amount()), ("currency", st())], &["transaction_id", "balance", "currency"]),
        "Transaction": obj(&[("id", st()), ("kind", st()), ("amount", amount()), ("balance_after", amount()), ("currency", st()), ("created_at", st()), ("memo", opt())], &["id"]),
        "TransactionPage": page_of("Transaction"),
        "AuditItem": obj(&[("id", st()), ("seq", s("integer")), ("client_id", opt()), ("actor_id", opt()), ("action", st()), ("target_type", opt()), ("target_id", opt()), ("before", json!({})), ("after", json!({})), ("ip", opt()), ("created_at", st()), ("hash", st())], &["id", "action"]),
        "AuditPage": page_of("AuditItem"),
        "SettleBody": obj(&[("period_start", json!({ "type": "string", "format": "date-time" })), ("period_end", json!({ "type": "string", "format": "date-time", "description": "at least settlement_grace_secs in the past" })), ("idempotency_key", key()), ("pay", json!({ "type": "boolean", "description": "pay the commission at once (default true); false leaves the lines calculated" }))], &["period_start", "period_end"]),
        "Commission": obj(&[("agent_id", st()), ("players", s("integer")), ("ngr", amount()), ("rate", st()), ("amount", amount()), ("transaction_id", opt()), ("status", json!({ "enum": ["calculated", "approved", "held", "paid"] })), ("basis", st()), ("earned", amount()), ("carried_in", amount()), ("carry_out", amount())], &["agent_id", "amount"]),
        "CommissionLineStatus": obj(&[("settlement_id", st()), ("agent_id", st()), ("status", st()), ("amount", amount()), ("transaction_id", opt())], &["status"]),
        "RateBody": obj(&[("rate", json!({ "type": "string", "description": "0 to 1, at most 4 decimals" }))], &["rate"]),
        "CommissionRate": obj(&[("user_id", st()), ("rate", opt()), ("effective_rate", st()), ("client_commission_rate", st())], &["user_id", "effective_rate"]),
        "CurrentCommission": obj(&[("agent_id", st()), ("period_start", st()), ("as_of", st()), ("currency", st()), ("basis", st()), ("rate", st()), ("players", s("integer")), ("basis_amount", amount()), ("earned", amount()), ("carried_in", amount()), ("amount", amount())], &["agent_id", "amount"]),
        "SessionCommission": obj(&[("session_id", st()), ("user_id", st()), ("provider", st()), ("game_code", st()), ("started_at", st()), ("ended_at", st()), ("currency", st()), ("basis", st()), ("basis_amount", amount()), ("items", json!({ "type": "array", "items": obj(&[("agent_id", st()), ("rate", st()), ("differential_rate", st()), ("amount", amount())], &["agent_id", "amount"]) }))], &["session_id", "items"]),
        "CollectionBody": obj(&[("settlement_id", st()), ("amount", amount()), ("direction", json!({ "enum": ["collect", "reverse"] })), ("memo", json!({ "type": "string", "maxLength": 500 })), ("idempotency_key", key())], &["settlement_id", "amount"]),
        "RevenueCollection": obj(&[("id", st()), ("settlement_id", st()), ("direction", st()), ("amount", amount()), ("currency", st()), ("memo", opt()), ("transaction_id", opt()), ("created_by", st()), ("created_at", st())], &["id", "amount"]),
        "RevenueStatement": obj(&[("settlement_id", st()), ("period_start", st()), ("period_end", st()), ("currency", st()), ("ngr", amount()), ("revenue_share", amount()), ("collected", amount()), ("outstanding", amount()), ("collections", json!({ "type": "array", "items": r("RevenueCollection") }))], &["settlement_id", "outstanding"]),
        "RevenueStatementPage": page_of("RevenueStatement"),
        "RevenueShare": obj(&[("base", amount()), ("rate", st()), ("amount", amount()), ("transaction_id", opt())], &["amount"]),
        "Settlement": obj(&[("id", st()), ("client_id", st()), ("period_start", st()), ("period_end", st()), ("currency", st()), ("ngr", amount()), ("state", json!({ "enum": ["pending", "posted"] })), ("commission_total", amount()), ("commissions", json!({ "type": "array", "items": r("Commission") })), ("revenue_share", r("RevenueShare")), ("created_by", st()), ("created_at", st()), ("posted_at", opt()), ("origin", json!({ "enum": ["manual", "scheduled"] }))], &["id", "state"]),
        "SettlementPage": page_of("Settlement"),
    })
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": r("Error") } } })
}

fn operation(o: &Op) -> Value {
    let mut params: Vec<Value> = o
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": s("string") }))
        .collect();
    params.extend(o.query.iter().map(|q| {
        // Every `limit` is checked as an integer in 1..=200 (`extract::Page::limit`).
        let schema = if *q == "limit" {
            json!({ "type": "integer", "minimum": 1, "maximum": 200, "default": 50 })
        } else {
            s("string")
        };
        json!({ "name": q, "in": "query", "required": false, "schema": schema })
    }));
    if o.idempotent_key {
        // Not `required`: the body's `idempotency_key` field may carry it instead (one of the
        // two must, else 400 `idempotency_key_required`).
        params.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "required unless the body has idempotency_key; scoped per client and caller",
            "schema": { "type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[\\x21-\\x7E]+$" },
        }));
    }
    let (code, schema) = o.ok;
    let mut responses = Map::new();
    let ok = if schema == "Empty" {
        json!({ "description": "done" })
    } else {
        json!({ "description": "success", "content": { "application/json": { "schema": r(schema) } } })
    };
    responses.insert(code.to_string(), ok);
    if o.auth {
        responses.insert(
            "401".into(),
            error_response("missing, invalid or expired token, or ended session"),
        );
        responses.insert(
            "403".into(),
            error_response("outside the caller's reach or permissions"),
        );
        responses.insert("429".into(), error_response("rate limited (Retry-After)"));
    }
    if o.path.contains('{') {
        responses.insert("404".into(), error_response("unknown, or another client's"));
    }
    if o.body.is_some() || !o.query.is_empty() || o.path.contains('{') {
        responses.insert("422".into(), error_response("validation error"));
    }
    if o.body.is_some() || o.idempotent_key {
        responses.insert(
            "400".into(),
            error_response(
                "malformed JSON (invalid_json), or a missing or invalid idempotency key",
            ),
        );
    }
    if o.body.is_some() {
        responses.insert(
            "408".into(),
            error_response("the body did not arrive in time or fast enough (request_timeout)"),
        );
        responses.insert(
            "413".into(),
            error_response("request body too large (payload_too_large)"),
        );
        responses.insert(
            "415".into(),
            error_response("body not sent as application/json (unsupported_media_type)"),
        );
    }
    let mutates = o.method != "get";
    if o.auth && mutates {
        responses.insert(
            "409".into(),
            error_response(
                "conflicts with the current state (error.code says which: idempotency_conflict, insufficient_funds, user_closed, balance_not_zero, ...)",
            ),
        );
    }
    if !o.auth
        && (o.path.starts_with("/api/v1/auth/")
            || o.path.starts_with("/callbacks/")
            || o.path == "/ws")
    {
        responses.insert(
            "401".into(),
            error_response("bad credentials, token or signature"),
        );
    }
    if o.path == "/api/v1/auth/login" {
        responses.insert(
            "429".into(),
            error_response(
                "too many failed logins (Retry-After), or too many unauthenticated connections from this address",
            ),
        );
    }
    if o.path == "/ws" {
        responses.insert(
            "429".into(),
            error_response("too many websockets for this user or address (too_many_websockets)"),
        );
    }
    if o.path == "/ready" {
        responses.insert(
            "503".into(),
            json!({ "description": "not ready", "content": { "application/json": { "schema": r("Readiness") } } }),
        );
    } else if o.path.starts_with("/api/") || o.path.starts_with("/callbacks/") {
        responses.insert(
            "503".into(),
            error_response("a dependency (storage, a provider) is unavailable"),
        );
    }
    let mut out = json!({
        "tags": [o.tag],
        "summary": o.summary,
        "operationId": format!("{}{}", o.method, o.path.replace(['/', '{', '}', '.', '-'], "_")),
        "parameters": params,
        "responses": responses,
    });
    if o.auth {
        out["security"] = json!([{ "bearer": [] }]);
    } else {
        out["security"] = json!([]);
    }
    if let Some(body) = o.body {
        out["requestBody"] =
            json!({ "required": true, "content": { "application/json": { "schema": r(body) } } });
    }
    out
}

pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut paths = Map::new();
        for o in ops() {
            let entry = paths.entry(o.path.to_owned()).or_insert_with(|| json!({}));
            entry[o.method] = operation(&o);
        }
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "nashub API",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "Real-time game hub for white-label casino operators. Errors are {\"error\": {\"code\", \"message\"}}; amounts are decimal strings; ids are opaque strings. A method a documented path does not list answers 405 method_not_allowed with an Allow header; an undocumented path answers 404 not_found.",
            },
            "paths": paths,
            "components": {
                "schemas": schemas(),
                "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            },
        })
    })
}

/// The methods documented for the path a request names (upper case), empty when no
/// documented path matches: the default service answers 405 with `Allow` from this, so the
/// document and the router agree on which methods a path has.
pub fn methods_for(path: &str) -> Vec<String> {
    static TABLE: OnceLock<Vec<(Vec<String>, Vec<String>)>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        document()["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(template, ops)| {
                        let segments = template.split('/').map(str::to_owned).collect();
                        let methods = ops
                            .as_object()
                            .map(|o| o.keys().map(|m| m.to_ascii_uppercase()).collect())
                            .unwrap_or_default();
                        (segments, methods)
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    let asked: Vec<&str> = path.split('/').collect();
    let mut methods: Vec<String> = table
        .iter()
        .filter(|(template, _)| {
            template.len() == asked.len()
                && template.iter().zip(&asked).all(|(t, a)| {
                    t == a || (t.starts_with('{') && t.ends_with('}') && !a.is_empty())
                })
        })
        .flat_map(|(_, methods)| methods.iter().cloned())
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `(method, path)` registered in `http/mod.rs` is described.
    #[test]
    fn every_registered_route_is_described() {
        let source = include_str!("mod.rs");
        let doc = document();
        let mut found = 0;
        for chunk in source.split(".route(").skip(1) {
            let path = chunk.split('"').nth(1).expect("route path literal");
            let method = chunk
                .split("web::")
                .nth(1)
                .and_then(|m| m.split("()").next())
                .expect("route method");
            let described = doc["paths"].as_object().unwrap().iter().any(|(p, ops)| {
                (p == path || p.ends_with(path) && p.starts_with("/api/v1"))
                    && ops.get(method).is_some()
            });
            assert!(
                described,
                "{method} {path} is registered but not in /openapi.json"
            );
            found += 1;
        }
        assert!(found > 30, "only {found} routes parsed");
        assert_eq!(methods_for("/api/v1/users/u1"), ["GET", "PATCH"]);
        assert_eq!(methods_for("/api/v1/users/u1/wallet/deposit"), ["POST"]);
        assert!(methods_for("/api/v1/users//wallet/deposit").is_empty());
        assert!(methods_for("/api/v1/nothing").is_empty());
        // Every schema referenced exists.
        let text = doc.to_string();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "schema {name} missing"
            );
        }
    }
}
