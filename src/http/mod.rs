//! The HTTP facade (actix-web): one file per resource. Handlers parse, authorize and send one
//! command to an actor or the store; they hold no business rules of their own.

pub mod audit;
pub mod auth;
pub mod bench;
pub mod callbacks;
pub mod client_settings;
pub mod clients;
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
pub mod rate_limit;
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
            web::scope("/api/v1")
                .route("/auth/login", web::post().to(auth::login))
                .route("/auth/refresh", web::post().to(auth::refresh))
                .route("/auth/logout", web::post().to(auth::logout))
                .route("/auth/password", web::post().to(auth::change_password))
                .route("/audit", web::get().to(audit::list))
                .route(
                    "/clients/{id}/settings",
                    web::get().to(client_settings::get),
                )
                .route(
                    "/clients/{id}/settings",
                    web::patch().to(client_settings::update),
                )
                .route(
                    "/clients/{id}/credentials/{provider}",
                    web::put().to(client_settings::put_credentials),
                )
                .route("/users", web::get().to(user_admin::list))
                .route("/users/{id}", web::patch().to(user_admin::update))
                .route("/users/{id}/subtree", web::get().to(user_admin::subtree))
                .route("/users/{id}/suspend", web::post().to(user_admin::suspend))
                .route(
                    "/users/{id}/reactivate",
                    web::post().to(user_admin::reactivate),
                )
                .route("/users/{id}/close", web::post().to(user_admin::close))
                .route(
                    "/users/{id}/permissions",
                    web::get().to(user_permissions::get),
                )
                .route(
                    "/users/{id}/permissions/{permission}",
                    web::put().to(user_permissions::grant),
                )
                .route(
                    "/users/{id}/permissions/{permission}",
                    web::delete().to(user_permissions::revoke),
                )
                .route("/clients", web::post().to(clients::create))
                .route("/clients", web::get().to(clients::list))
                .route("/clients/{id}", web::get().to(clients::get))
                .route("/clients/{id}", web::patch().to(clients::update))
                .route(
                    "/clients/{id}/transactions",
                    web::get().to(ledger::client_transactions),
                )
                .route(
                    "/clients/{id}/settlements",
                    web::post().to(settlements::create),
                )
                .route(
                    "/clients/{id}/settlements",
                    web::get().to(settlements::list),
                )
                .route(
                    "/clients/{id}/settlements/{settlement_id}",
                    web::get().to(settlements::get),
                )
                .route("/users", web::post().to(users::create))
                .route("/users/{id}", web::get().to(users::get))
                .route("/users/{id}/children", web::get().to(users::children))
                .route("/users/{id}/ancestors", web::get().to(users::ancestors))
                .route("/users/{id}/wallet", web::get().to(wallets::balance))
                .route(
                    "/users/{id}/wallet/deposit",
                    web::post().to(wallets::deposit),
                )
                .route(
                    "/users/{id}/wallet/withdraw",
                    web::post().to(wallets::withdraw),
                )
                .route("/users/{id}/wallet/credit", web::post().to(wallets::credit))
                .route("/users/{id}/wallet/debit", web::post().to(wallets::debit))
                .route("/users/{id}/wallet/adjust", web::post().to(wallets::adjust))
                .route("/users/{id}/transactions", web::get().to(wallets::history))
                .route(
                    "/users/{id}/providers/{provider}/transfer-in",
                    web::post().to(providers::transfer_in),
                )
                .route(
                    "/users/{id}/providers/{provider}/transfer-out",
                    web::post().to(providers::transfer_out),
                )
                .route(
                    "/users/{id}/providers/{provider}/balance",
                    web::get().to(providers::balance),
                )
                .route(
                    "/users/{id}/providers/{provider}/launch",
                    web::post().to(providers::launch),
                )
                .route(
                    "/users/{id}/providers/{provider}/transfers/{transfer_id}",
                    web::get().to(providers::transfer_status),
                )
                .route(
                    "/clients/{id}/providers/{provider}",
                    web::put().to(providers::switch_provider),
                )
                .route(
                    "/clients/{id}/providers/{provider}/games/{game}",
                    web::put().to(providers::switch_game),
                )
                .route(
                    "/providers/{provider}/games",
                    web::get().to(providers::games),
                )
                .route("/notifications", web::post().to(notifications::send))
                .route("/bench/events", web::post().to(bench::publish))
                .route(
                    "/notifications/{id}/read",
                    web::post().to(notifications::mark_read),
                )
                .route(
                    "/users/{id}/notifications",
                    web::get().to(notifications::list),
                ),
        )
        .default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint",
    )
    .error_response()
}
