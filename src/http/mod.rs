//! The HTTP facade (actix-web): one file per resource. Handlers parse, authorize and send one
//! command to an actor or the store; they hold no business rules of their own.

pub mod auth;
pub mod bench;
pub mod clients;
pub mod error;
pub mod extract;
pub mod live;
pub mod middleware;
pub mod notifications;
pub mod ops;
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
        .route("/ws", web::get().to(ws::connect))
        .route("/live", web::get().to(live::page))
        .route("/live.js", web::get().to(live::script))
        .service(
            web::scope("/api/v1")
                .route("/auth/login", web::post().to(auth::login))
                .route("/auth/refresh", web::post().to(auth::refresh))
                .route("/auth/logout", web::post().to(auth::logout))
                .route("/clients", web::post().to(clients::create))
                .route("/clients", web::get().to(clients::list))
                .route("/clients/{id}", web::get().to(clients::get))
                .route("/clients/{id}", web::patch().to(clients::update))
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
                .route("/users/{id}/transactions", web::get().to(wallets::history))
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
