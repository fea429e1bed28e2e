//! The white-label player site at `/play/{code}` (issue 27): each brand's players log in, see
//! their live balance, pick a game in the lobby, move money to and from its provider, launch
//! it, read their history and notifications. Themed from the client's `branding`; also served
//! from a brand's own host (`site_hosts`, [`host`]). Every action is the API's handler
//! (`web::api`), so reach, limits, exclusions, idempotency and audit are the API's.

pub mod brand;
pub mod cashier;
pub mod history;
pub mod host;
pub mod lobby;
pub mod login;
pub mod nav;
pub mod play;
pub mod protection;
pub mod shop;

use actix_web::{Scope, web};

/// Where the site lives. Pages without a session send the browser to [`LOGIN`] (the session
/// layer knows one login page per scope), which forwards to the brand's own login page named
/// by `next` (`-` is never a client code: codes have 2 characters or more).
pub const PREFIX: &str = "/play";
pub const LOGIN: &str = "/play/-/login";

/// Rows `method "path" => handler;` under [`PREFIX`] (the console's table, same shape).
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
    get "/{code}" => lobby::page;
    get "/{code}/brand.css" => brand::stylesheet;
    get "/{code}/login" => login::form;
    post "/{code}/login" => login::submit;
    post "/{code}/logout" => login::logout;
    get "/{code}/history" => history::history;
    get "/{code}/notifications" => history::notifications;
    get "/{code}/games/{provider}/{game}" => play::game;
    post "/{code}/games/{provider}/{game}/transfer-in" => play::transfer_in;
    post "/{code}/games/{provider}/{game}/transfer-out" => play::transfer_out;
    post "/{code}/games/{provider}/{game}/launch" => play::launch;
    get "/{code}/games/{provider}/{game}/transfers/{transfer_id}" => play::transfer_state;
    get "/{code}/cashier" => cashier::page;
    post "/{code}/cashier/deposit" => cashier::deposit;
    post "/{code}/cashier/withdraw" => cashier::withdraw;
    get "/{code}/payments/{payment_id}" => cashier::payment;
    get "/{code}/protection" => protection::page;
    post "/{code}/protection/limit" => protection::limit;
    post "/{code}/protection/reality-check" => protection::reality_check;
    post "/{code}/protection/exclusion" => protection::exclusion;
    get "/{code}/shop" => shop::page;
    post "/{code}/shop/{user_id}/credit" => shop::credit;
    post "/{code}/shop/{user_id}/debit" => shop::debit;
}
