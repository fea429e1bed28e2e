//! The HTTP facade (actix-web): one file per resource. Handlers parse, authorize and send one
//! command to an actor or the store; they hold no business rules of their own.

pub mod audit;
pub mod auth;
pub mod bench;
pub mod body_deadline;
pub mod callbacks;
pub mod client_settings;
pub mod clients;
pub mod commission;
pub mod docs;
pub mod error;
pub mod extract;
pub mod ledger;
pub mod live;
pub mod middleware;
pub mod notifications;
pub mod openapi;
pub mod ops;
pub mod providers;
pub mod settlements;
pub mod user_admin;
pub mod user_permissions;
pub mod users;
pub mod views;
pub mod wallets;
pub mod ws;

use actix_web::{HttpResponse, web};

pub use error::ApiError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(extract::json_config())
        .app_data(extract::query_config())
        .app_data(extract::path_config())
        .route("/health", web::get().to(ops::health))
        .route("/ready", web::get().to(ops::ready))
        .route("/metrics", web::get().to(ops::metrics))
        .route("/openapi.json", web::get().to(openapi::serve))
        .route("/docs", web::get().to(docs::page))
        .route("/ws", web::get().to(ws::connect))
        .route("/callbacks/{provider}", web::post().to(callbacks::receive))
        .route("/live", web::get().to(live::page))
        .route("/live.js", web::get().to(live::script))
        .service(
            // Paths under one `{id}` sit in one scope: the router tries a scope's pattern once,
            // then its static suffixes, instead of a regex per dynamic route (the regexes were
            // ~6% of the hub's CPU per wallet mutation).
            web::scope("/api/v1")
                .service(user_scope())
                .service(client_scope())
                .route("/auth/login", web::post().to(auth::login))
                .route("/auth/refresh", web::post().to(auth::refresh))
                .route("/auth/logout", web::post().to(auth::logout))
                .route("/auth/password", web::post().to(auth::change_password))
                .route("/audit", web::get().to(audit::list))
                .route("/users", web::get().to(user_admin::list))
                .route("/users", web::post().to(users::create))
                .route("/clients", web::post().to(clients::create))
                .route("/clients", web::get().to(clients::list))
                .route(
                    "/providers/{provider}/games",
                    web::get().to(providers::games),
                )
                .route(
                    "/game-sessions/{id}/commission",
                    web::get().to(commission::session),
                )
                .route("/notifications", web::post().to(notifications::send))
                .route("/bench/events", web::post().to(bench::publish))
                .route(
                    "/notifications/{id}/read",
                    web::post().to(notifications::mark_read),
                ),
        )
        .default_service(web::to(not_found));
}

/// Everything under `/api/v1/users/{id}`.
fn user_scope() -> actix_web::Scope {
    web::scope("/users/{id}")
        .route("", web::get().to(users::get))
        .route("", web::patch().to(user_admin::update))
        .route("/wallet/deposit", web::post().to(wallets::deposit))
        .route("/wallet/withdraw", web::post().to(wallets::withdraw))
        .route("/wallet/credit", web::post().to(wallets::credit))
        .route("/wallet/debit", web::post().to(wallets::debit))
        .route("/wallet/adjust", web::post().to(wallets::adjust))
        .route("/wallet", web::get().to(wallets::balance))
        .route("/transactions", web::get().to(wallets::history))
        .route("/subtree", web::get().to(user_admin::subtree))
        .route("/suspend", web::post().to(user_admin::suspend))
        .route("/reactivate", web::post().to(user_admin::reactivate))
        .route("/close", web::post().to(user_admin::close))
        .route("/permissions", web::get().to(user_permissions::get))
        .route(
            "/permissions/{permission}",
            web::put().to(user_permissions::grant),
        )
        .route(
            "/permissions/{permission}",
            web::delete().to(user_permissions::revoke),
        )
        .route("/commission", web::get().to(commission::get_rate))
        .route("/commission", web::put().to(commission::put_rate))
        .route("/commission/current", web::get().to(commission::current))
        .route("/children", web::get().to(users::children))
        .route("/ancestors", web::get().to(users::ancestors))
        .route("/notifications", web::get().to(notifications::list))
        .route(
            "/providers/{provider}/transfer-in",
            web::post().to(providers::transfer_in),
        )
        .route(
            "/providers/{provider}/transfer-out",
            web::post().to(providers::transfer_out),
        )
        .route(
            "/providers/{provider}/balance",
            web::get().to(providers::balance),
        )
        .route(
            "/providers/{provider}/launch",
            web::post().to(providers::launch),
        )
        .route(
            "/providers/{provider}/transfers/{transfer_id}",
            web::get().to(providers::transfer_status),
        )
}

/// Everything under `/api/v1/clients/{id}`.
fn client_scope() -> actix_web::Scope {
    web::scope("/clients/{id}")
        .route("", web::get().to(clients::get))
        .route("", web::patch().to(clients::update))
        .route("/settings", web::get().to(client_settings::get))
        .route("/settings", web::patch().to(client_settings::update))
        .route(
            "/credentials/{provider}",
            web::put().to(client_settings::put_credentials),
        )
        .route("/transactions", web::get().to(ledger::client_transactions))
        .route("/settlements", web::post().to(settlements::create))
        .route("/settlements", web::get().to(settlements::list))
        .route(
            "/settlements/{settlement_id}",
            web::get().to(settlements::get),
        )
        .route(
            "/settlements/{settlement_id}/commissions/{agent_id}/approve",
            web::post().to(commission::approve),
        )
        .route(
            "/settlements/{settlement_id}/commissions/{agent_id}/hold",
            web::post().to(commission::hold),
        )
        .route(
            "/settlements/{settlement_id}/commissions/{agent_id}/pay",
            web::post().to(commission::pay),
        )
        .route("/revenue-collections", web::post().to(commission::collect))
        .route("/revenue-statements", web::get().to(commission::statements))
        .route(
            "/providers/{provider}",
            web::put().to(providers::switch_provider),
        )
        .route(
            "/providers/{provider}/games/{game}",
            web::put().to(providers::switch_game),
        )
}

/// No route matched: 405 with `Allow` when the path is a documented one and only the method is
/// wrong (what a client generator expects), else 404.
async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    let allowed = openapi::methods_for(req.path());
    if !allowed.is_empty() && !allowed.iter().any(|m| m == req.method().as_str()) {
        let mut response = ApiError::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this path answers {}", allowed.join(", ")),
        )
        .error_response();
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allowed.join(", ")) {
            response
                .headers_mut()
                .insert(actix_web::http::header::ALLOW, value);
        }
        return response;
    }
    ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint",
    )
    .error_response()
}
