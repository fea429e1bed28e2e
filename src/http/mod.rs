//! The HTTP facade (actix-web): one file per resource. Handlers parse, authorize and send one
//! command to an actor or the store; they hold no business rules of their own.

pub mod audit;
pub mod auth;
pub mod bench;
pub mod body_deadline;
pub mod callbacks;
pub mod channel_admin;
pub mod channels;
pub mod client_settings;
pub mod clients;
pub mod commission;
pub mod cors;
pub mod docs;
pub mod error;
pub mod extract;
pub mod games;
pub mod graphql;
pub mod ledger;
pub mod live;
pub mod middleware;
pub mod notifications;
pub mod openapi;
pub mod ops;
pub mod payments;
pub mod protection;
pub mod provider_admin;
pub mod providers;
pub mod reports;
pub mod second_factor;
pub mod settlements;
pub mod socketio;
pub mod user_admin;
pub mod user_permissions;
pub mod users;
pub mod views;
pub mod wallets;
pub mod ws;

use actix_web::{HttpResponse, Route, Scope, web};

pub use error::ApiError;

/// The scope of every REST endpoint, and the two scopes under it that share one `{id}`.
const API: &str = "/api/v1";
const USER_SCOPE: &str = "/users/{id}";
const CLIENT_SCOPE: &str = "/clients/{id}";

/// What a routes! block registers its rows on: the app's `ServiceConfig` or a scope.
trait AddRoute {
    fn add(self, path: &str, route: Route) -> Self;
}

impl AddRoute for Scope {
    fn add(self, path: &str, route: Route) -> Self {
        self.route(path, route)
    }
}

impl AddRoute for &mut web::ServiceConfig {
    fn add(self, path: &str, route: Route) -> Self {
        self.route(path, route)
    }
}

/// One piece of the router as rows `method "path" => handler;`: a function registering the
/// rows in the order given, and a table of the same rows. [`route_table`] joins the tables:
/// the 405 answer reads it, and a test compares it with `/openapi.json` both ways.
macro_rules! routes {
    ($table:ident, $register:ident: $($method:ident $path:literal => $handler:path;)*) => {
        const $table: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn $register<R: AddRoute>(router: R) -> R {
            router$(.add($path, web::$method().to($handler)))*
        }
    };
}

routes! { TOP, top_routes:
    get "/health" => ops::health;
    get "/ready" => ops::ready;
    get "/metrics" => ops::metrics;
    get "/openapi.json" => openapi::serve;
    get "/docs" => docs::page;
    get "/docs/{file}" => docs::asset;
    get "/ws" => ws::connect;
    get "/socket.io/" => socketio::polling;
    post "/callbacks/{provider}" => callbacks::receive;
    post "/callbacks/payments/{gateway}" => payments::webhook;
    post "/callbacks/sms/{client_id}" => channels::sms_report;
    get "/live" => live::page;
    get "/live.js" => live::script;
    post "/graphql" => graphql::execute;
    get "/graphql" => graphql::page;
}

routes! { API_ROUTES, api_routes:
    post "/auth/login" => auth::login;
    post "/auth/refresh" => auth::refresh;
    post "/auth/logout" => auth::logout;
    post "/auth/password" => auth::change_password;
    post "/auth/login/second-factor" => second_factor::login_step;
    post "/auth/second-factor/setup" => second_factor::setup;
    post "/auth/second-factor/activate" => second_factor::activate;
    get "/audit" => audit::list;
    get "/users" => user_admin::list;
    post "/users" => users::create;
    post "/clients" => clients::create;
    get "/clients" => clients::list;
    get "/providers/{provider}/games" => providers::games;
    // Game service (issue 21).
    get "/games" => games::list_games;
    get "/providers" => provider_admin::list;
    get "/providers/{provider}" => provider_admin::get;
    patch "/providers/{provider}" => provider_admin::update;
    post "/providers/{provider}/games/refresh" => provider_admin::refresh_games;
    get "/game-sessions/{id}/commission" => commission::session;
    post "/notifications" => notifications::send;
    post "/bench/events" => bench::publish;
    post "/notifications/{id}/read" => notifications::mark_read;
    // Reports (issue 17).
    get "/reports/client-metrics" => reports::client_metrics;
    get "/reports/client-revenue" => reports::client_revenue;
    get "/reports/agents" => reports::agents;
    get "/reports/game-stats" => reports::game_stats;
    get "/reports/provider-stats" => reports::provider_stats;
    get "/reports/platform-overview" => reports::platform_overview;
    get "/reports/players/{id}/history" => reports::player_history;
    // Player protection (issue 19).
    get "/protection/events" => protection::events;
    post "/test/clock" => protection::test_clock;
    // Payments (issue 18).
    post "/payments/deposits" => payments::deposit;
    post "/payments/withdrawals" => payments::withdraw;
    post "/payments/reconcile" => payments::reconcile;
    get "/payments" => payments::list;
    get "/payments/{id}" => payments::get;
    post "/payments/{id}/cancel" => payments::cancel;
    post "/payments/{id}/approve" => payments::approve;
    post "/payments/{id}/reject" => payments::reject;
}

// Everything under `/api/v1/users/{id}`.
routes! { USER_ROUTES, user_routes:
    get "" => users::get;
    patch "" => user_admin::update;
    post "/wallet/deposit" => wallets::deposit;
    post "/wallet/withdraw" => wallets::withdraw;
    post "/wallet/credit" => wallets::credit;
    post "/wallet/debit" => wallets::debit;
    post "/wallet/adjust" => wallets::adjust;
    get "/wallet" => wallets::balance;
    get "/transactions" => wallets::history;
    get "/subtree" => user_admin::subtree;
    post "/suspend" => user_admin::suspend;
    post "/reactivate" => user_admin::reactivate;
    post "/close" => user_admin::close;
    post "/logout" => user_admin::logout_all;
    get "/permissions" => user_permissions::get;
    put "/permissions/{permission}" => user_permissions::grant;
    delete "/permissions/{permission}" => user_permissions::revoke;
    get "/commission" => commission::get_rate;
    put "/commission" => commission::put_rate;
    get "/commission/current" => commission::current;
    get "/children" => users::children;
    get "/ancestors" => users::ancestors;
    get "/notifications" => notifications::list;
    post "/providers/{provider}/transfer-in" => providers::transfer_in;
    post "/providers/{provider}/transfer-out" => providers::transfer_out;
    get "/providers/{provider}/balance" => providers::balance;
    post "/providers/{provider}/launch" => providers::launch;
    get "/providers/{provider}/transfers/{transfer_id}" => providers::transfer_status;
    get "/game-sessions" => games::list_sessions;
    post "/game-sessions/{session_id}/end" => games::end_session;
    post "/second-factor/reset" => second_factor::reset;
    get "/protection" => protection::get;
    put "/protection/limits/{name}" => protection::set_limit;
    post "/protection/exclusion" => protection::exclude;
    put "/protection/reality-check" => protection::set_reality_check;
    // Channels (issue 19).
    get "/contacts" => channels::get_contacts;
    put "/contacts/{channel}" => channels::put_contact;
    delete "/contacts/{channel}" => channels::delete_contact;
    post "/contacts/{channel}/verify" => channels::verify_contact;
    put "/channel-preferences" => channels::put_preferences;
    get "/messages" => channels::user_messages;
}

// Everything under `/api/v1/clients/{id}`.
routes! { CLIENT_ROUTES, client_routes:
    get "" => clients::get;
    patch "" => clients::update;
    get "/settings" => client_settings::get;
    patch "/settings" => client_settings::update;
    put "/credentials/{provider}" => client_settings::put_credentials;
    get "/transactions" => ledger::client_transactions;
    post "/settlements" => settlements::create;
    get "/settlements" => settlements::list;
    get "/settlements/{settlement_id}" => settlements::get;
    post "/settlements/{settlement_id}/commissions/{agent_id}/approve" => commission::approve;
    post "/settlements/{settlement_id}/commissions/{agent_id}/hold" => commission::hold;
    post "/settlements/{settlement_id}/commissions/{agent_id}/pay" => commission::pay;
    post "/revenue-collections" => commission::collect;
    get "/revenue-statements" => commission::statements;
    put "/providers/{provider}" => providers::switch_provider;
    put "/providers/{provider}/games/{game}" => providers::switch_game;
    get "/payment-settings" => payments::get_settings;
    put "/payment-settings" => payments::put_settings;
    put "/payment-gateways/{gateway}" => payments::put_credentials;
    get "/payment-statement" => payments::statement;
    // Channels (issue 19).
    get "/channel-templates" => channel_admin::list_templates;
    put "/channel-templates/{template}/{language}" => channel_admin::put_template;
    delete "/channel-templates/{template}/{language}" => channel_admin::delete_template;
    put "/channel-settings" => channel_admin::put_channel_settings;
    put "/channels/{channel}" => channel_admin::put_transport;
    get "/messages" => channel_admin::client_messages;
    post "/messages/{message_id}/retry" => channel_admin::retry_message;
    post "/broadcasts" => channel_admin::broadcast;
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    let cfg = cfg
        .app_data(extract::json_config())
        .app_data(extract::query_config())
        .app_data(extract::path_config());
    // Paths under one `{id}` sit in one scope: the router tries a scope's pattern once, then
    // its static suffixes, instead of a regex per dynamic route (the regexes were ~6% of the
    // hub's CPU per wallet mutation). The API scope goes first: the router tries services in
    // order, and the top-level dynamic paths (`/callbacks/{provider}`, `/docs/{file}`) were
    // four regexes run for every API request before it (issue 22). No top-level path starts
    // with the API's prefix, so the order changes no answer.
    cfg.service(api_routes(
        web::scope(API)
            .service(user_routes(web::scope(USER_SCOPE)))
            .service(client_routes(web::scope(CLIENT_SCOPE))),
    ));
    top_routes(cfg).default_service(web::to(not_found));
}

/// Every `(method, path)` the router serves, lower-case method and full path as
/// `/openapi.json` spells them.
pub fn route_table() -> Vec<(&'static str, String)> {
    let user_prefix = format!("{API}{USER_SCOPE}");
    let client_prefix = format!("{API}{CLIENT_SCOPE}");
    [
        ("", TOP),
        (API, API_ROUTES),
        (user_prefix.as_str(), USER_ROUTES),
        (client_prefix.as_str(), CLIENT_ROUTES),
    ]
    .into_iter()
    .flat_map(|(prefix, rows)| {
        rows.iter()
            .map(move |(method, path)| (*method, format!("{prefix}{path}")))
    })
    .collect()
}

/// The methods the router serves for the path a request names (upper case, sorted), empty
/// when no route's path matches: the default service answers 405 with `Allow` from this.
pub fn methods_for(path: &str) -> Vec<String> {
    static TABLE: std::sync::OnceLock<Vec<(Vec<String>, String)>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        route_table()
            .into_iter()
            .map(|(method, template)| {
                let segments = template.split('/').map(str::to_owned).collect();
                (segments, method.to_ascii_uppercase())
            })
            .collect()
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
        .map(|(_, method)| method.clone())
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

/// No route matched: 405 with `Allow` when the path is a routed one and only the method is
/// wrong (what a client generator expects), else 404.
async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    let allowed = methods_for(req.path());
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
