//! `GET /openapi.json`: the OpenAPI document, derived by utoipa from each handler's
//! `#[utoipa::path(...)]` (method, path, tag, parameters, body, answers, security) and from the
//! body and query types (`ToSchema`, `IntoParams`). This file only lists the handlers, the
//! error answers they share, and the conventions applied to every operation. A test compares
//! the document with the router's table (`http::route_table`) both ways.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde_json::Value;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi};

use super::{
    audit, auth, bench, callbacks, channel_admin, channels, client_settings, clients, commission,
    docs, games, graphql, ledger, live, notifications, ops, payments, protection, provider_admin,
    providers, reports, second_factor, settlements, socketio, user_admin, user_permissions, users,
    wallets, ws,
};

const DESCRIPTION: &str = "Real-time game hub for white-label casino operators. Errors are \
{\"error\": {\"code\", \"message\"}}; amounts are decimal strings; ids are opaque strings. A \
method a documented path does not list answers 405 method_not_allowed with an Allow header; an \
undocumented path answers 404 not_found.";

#[derive(OpenApi)]
#[openapi(
    info(title = "nashub API", description = DESCRIPTION),
    paths(
        ops::health,
        ops::ready,
        ops::metrics,
        serve,
        docs::page,
        docs::asset,
        ws::connect,
        socketio::polling,
        callbacks::receive,
        live::page,
        live::script,
        graphql::execute,
        graphql::page,
        auth::login,
        auth::refresh,
        auth::logout,
        auth::change_password,
        audit::list,
        user_admin::list,
        users::create,
        clients::create,
        clients::list,
        providers::games,
        games::list_games,
        provider_admin::list,
        provider_admin::get,
        provider_admin::update,
        provider_admin::refresh_games,
        commission::session,
        notifications::send,
        bench::publish,
        notifications::mark_read,
        reports::client_metrics,
        reports::client_revenue,
        reports::agents,
        reports::game_stats,
        reports::provider_stats,
        reports::platform_overview,
        reports::player_history,
        users::get,
        user_admin::update,
        wallets::deposit,
        wallets::withdraw,
        wallets::credit,
        wallets::debit,
        wallets::adjust,
        wallets::balance,
        wallets::history,
        user_admin::subtree,
        user_admin::suspend,
        user_admin::reactivate,
        user_admin::close,
        user_admin::logout_all,
        user_permissions::get,
        user_permissions::grant,
        user_permissions::revoke,
        commission::get_rate,
        commission::put_rate,
        commission::current,
        users::children,
        users::ancestors,
        notifications::list,
        providers::transfer_in,
        providers::transfer_out,
        providers::balance,
        providers::launch,
        providers::transfer_status,
        games::list_sessions,
        games::end_session,
        clients::get,
        clients::update,
        client_settings::get,
        client_settings::update,
        client_settings::put_credentials,
        ledger::client_transactions,
        settlements::create,
        settlements::list,
        settlements::get,
        commission::approve,
        commission::hold,
        commission::pay,
        commission::collect,
        commission::statements,
        providers::switch_provider,
        providers::switch_game,
        second_factor::login_step,
        second_factor::setup,
        second_factor::activate,
        second_factor::reset,
        protection::events,
        protection::test_clock,
        protection::get,
        protection::set_limit,
        protection::exclude,
        protection::set_reality_check,
        payments::webhook,
        payments::deposit,
        payments::withdraw,
        payments::reconcile,
        payments::list,
        payments::get,
        payments::cancel,
        payments::approve,
        payments::reject,
        payments::get_settings,
        payments::put_settings,
        payments::put_credentials,
        payments::statement,
        channels::get_contacts,
        channels::put_contact,
        channels::delete_contact,
        channels::verify_contact,
        channels::put_preferences,
        channels::user_messages,
        channels::sms_report,
        channel_admin::list_templates,
        channel_admin::put_template,
        channel_admin::delete_template,
        channel_admin::put_channel_settings,
        channel_admin::put_transport,
        channel_admin::client_messages,
        channel_admin::retry_message,
        channel_admin::broadcast,
    ),
    components(schemas(super::error::ErrorBody)),
    modifiers(&Conventions),
    tags(
        (name = "ops", description = "Health, readiness, metrics and this documentation; no token"),
        (name = "auth", description = "Log in, refresh, log out, change password"),
        (name = "protection", description = "Players' limits, time-outs, self-exclusions and reality checks; the responsible-gaming report"),
        (name = "clients", description = "White-label tenants and their settings"),
        (name = "users", description = "Each client's user tree, lifecycle and permissions"),
        (name = "wallets", description = "Balances and money movements (idempotent)"),
        (name = "settlements", description = "Agents' commission and the platform's revenue share"),
        (name = "audit", description = "The hash-chained audit trail"),
        (name = "providers", description = "Game providers: transfers, launch, catalog, callbacks"),
        (name = "games", description = "Game sessions, the games catalogue across providers, provider registration"),
        (name = "realtime", description = "Websocket, live page and notifications"),
        (name = "graphql", description = "The read model over GraphQL (POST), and a page to try it (GET)"),
        (name = "reports", description = "Reports from hourly rollups, JSON or CSV (issue 17)"),
        (name = "payments", description = "Deposits and withdrawals through payment gateways, approvals, webhooks, statements"),
        (name = "channels", description = "Email and SMS: contact details and their verification, channel preferences, templates, the outbox and its dead-letter list"),
    )
)]
struct ApiDoc;

/// What every operation shares: the bearer scheme; `security: []` on the operations that need
/// no token (so a client sees it said, not left out); `operationId` from method and path
/// (`get_api_v1_users__id_`), unique where handler names are not.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        // Cargo's `license` (UNLICENSED) is not an SPDX identifier a viewer would understand.
        doc.info.license = None;
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    Http::builder()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                op.operation_id = Some(format!(
                    "{method}{}",
                    path.replace(['/', '{', '}', '.', '-'], "_")
                ));
                op.security.get_or_insert_with(Vec::new);
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
}

/// An error answer: the one error body (`http::error::ErrorBody`, schema `Error`).
fn error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build()
        .into()
}

/// Sets of error answers that many operations share, named in their `responses(...)`.
macro_rules! error_answers {
    ($($(#[$doc:meta])* $name:ident { $($code:literal => $description:literal,)* })*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                BTreeMap::from([$(($code.to_owned(), error($description))),*])
            }
        }
    )*};
}

error_answers! {
    /// Operations that need a bearer token.
    Secured {
        "401" => "missing, invalid or expired token, or ended session",
        "403" => "outside the caller's reach or permissions",
        "429" => "rate limited (Retry-After)",
    }
    /// Operations on a path with an id.
    Unknown {
        "404" => "unknown, or another client's",
    }
    /// Operations with a body, query parameters or path ids.
    Invalid {
        "422" => "validation error",
    }
    /// Operations with a JSON body (the 400 covers the idempotency key too).
    BadBody {
        "400" => "malformed JSON (invalid_json), or a missing or invalid idempotency key",
        "408" => "the body did not arrive in time or fast enough (request_timeout)",
        "413" => "request body too large (payload_too_large)",
        "415" => "body not sent as application/json (unsupported_media_type)",
    }
    /// Secured operations that change something.
    Conflict {
        "409" => "conflicts with the current state (error.code says which: idempotency_conflict, insufficient_funds, user_closed, balance_not_zero, ...)",
    }
    /// Public operations that check credentials, a token or a signature of their own.
    BadCredentials {
        "401" => "bad credentials, token or signature",
    }
    /// Operations that reach storage or a provider.
    Unavailable {
        "503" => "a dependency (storage, a provider) is unavailable",
    }
}

/// The document, built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes")
    })
}

/// This document
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses(
    (status = 200, description = "success", body = Object),
))]
pub async fn serve(full: Option<actix_web::web::Data<FullDocument>>) -> HttpResponse {
    match full {
        Some(full) => HttpResponse::Ok().json(&*full.0),
        None => HttpResponse::Ok().json(document()),
    }
}

/// The document served when the app has pages documented outside `http` (the web pages,
/// issue 20): built once by `startup` from [`document`] and theirs.
pub struct FullDocument(pub std::sync::Arc<Value>);

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The router's `(method, path)` pairs and the document's are the same set: nothing routed
    /// is undocumented, nothing documented is unrouted.
    #[test]
    fn document_and_router_agree() {
        let routed: BTreeSet<(String, String)> = crate::http::route_table()
            .into_iter()
            .map(|(method, path)| (method.to_owned(), path))
            .collect();
        let doc = document();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |method| (method.clone(), path.clone()))
            })
            .collect();
        assert!(routed.len() > 50, "only {} routes", routed.len());
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "routed, not documented: {undocumented:?}"
        );
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(unrouted.is_empty(), "documented, not routed: {unrouted:?}");
    }

    #[test]
    fn methods_for_follows_the_router() {
        use crate::http::methods_for;
        assert_eq!(methods_for("/api/v1/users/u1"), ["GET", "PATCH"]);
        assert_eq!(methods_for("/api/v1/users/u1/wallet/deposit"), ["POST"]);
        assert_eq!(methods_for("/health"), ["GET"]);
        assert_eq!(
            methods_for("/api/v1/clients/c1/settlements"),
            ["GET", "POST"]
        );
        assert!(methods_for("/api/v1/users//wallet/deposit").is_empty());
        assert!(methods_for("/api/v1/users/u1/").is_empty());
        assert!(methods_for("/api/v1/nothing").is_empty());
    }

    /// Every operation has an id, a tag, a summary and a security list; ids are unique; every
    /// secured operation answers 401; every schema referenced exists.
    #[test]
    fn every_operation_is_described() {
        let doc = document();
        let mut ids = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_owned()), "{id} twice");
                assert!(op["tags"][0].is_string(), "{method} {path}: no tag");
                assert!(op["summary"].is_string(), "{method} {path}: no summary");
                let security = op["security"].as_array().expect("security list");
                if !security.is_empty() {
                    assert!(op["responses"].get("401").is_some(), "{method} {path}");
                }
                let params: Vec<&str> = op["parameters"]
                    .as_array()
                    .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
                    .unwrap_or_default();
                for segment in path.split('/') {
                    if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
                    {
                        assert!(
                            params.contains(&name),
                            "{method} {path}: no {name} parameter"
                        );
                    }
                }
            }
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
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
