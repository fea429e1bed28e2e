//! The back-office console at `/console` (issue 20): one file per page set; every action goes
//! through the API's handler (`web::api`), so reach, permissions and audit are the API's.

pub mod client;
pub mod dashboard;
pub mod home;
pub mod login;
pub mod nav;
pub mod notifications;
pub mod ops;
pub mod payments;
pub mod permissions;
pub mod platform;
pub mod settlements;
pub mod users;

use actix_web::{Scope, web};

/// Where the console lives, and its login page (where a visitor without a session goes).
pub const PREFIX: &str = "/console";
pub const LOGIN: &str = "/console/login";

/// Rows `method "path" => handler;` under [`PREFIX`]: registers them on a scope and keeps a
/// table of the same rows for `/openapi.json` and the 405 answer.
macro_rules! page_routes {
    ($($method:ident $path:literal => $handler:path;)*) => {
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        pub fn routes(scope: Scope) -> Scope {
            scope$(.route($path, web::$method().to($handler)))*
                .default_service(web::to(super::unrouted))
        }
    };
}

page_routes! {
    get "" => home::page;
    get "/login" => login::form;
    post "/login" => login::submit;
    post "/login/second-factor" => login::second_step;
    post "/logout" => login::logout;
    get "/users" => users::list;
    post "/users" => users::create;
    get "/users/{id}" => users::show;
    post "/users/{id}/wallet/{op}" => users::money;
    post "/users/{id}/status" => users::status;
    get "/users/{id}/transactions.csv" => users::csv;
    get "/users/{id}/permissions" => permissions::show;
    post "/users/{id}/permissions" => permissions::change;
    get "/settlements" => settlements::list;
    post "/settlements" => settlements::settle;
    get "/settlements/{id}" => settlements::show;
    post "/settlements/{id}/commissions/{agent_id}/{step}" => settlements::line_step;
    get "/payments" => payments::queue;
    post "/payments/{id}/approve" => payments::approve;
    post "/payments/{id}/reject" => payments::reject;
    get "/clients" => platform::clients;
    post "/clients" => platform::create_client;
    get "/client" => client::own;
    get "/clients/{id}" => client::show;
    post "/clients/{id}/settings" => client::settings;
    post "/clients/{id}/branding" => client::branding;
    post "/clients/{id}/providers" => client::providers;
    post "/clients/{id}/credentials/{provider}" => client::credentials;
    get "/providers" => ops::providers;
    get "/system" => ops::system;
    get "/audit" => platform::audit;
    get "/notifications" => notifications::form;
    post "/notifications" => notifications::send;
}
