//! Server-rendered web pages (issue 20): the back-office console at `/console`, and the shared
//! foundation any page set builds on: browser sessions in cookies (`session`), CSRF (`csrf`),
//! idempotency keys of money forms (`idempotency`), amounts typed in forms (`amount`), askama
//! rendering with a strict CSP (`page`), embedded assets (`assets`), strings by key (`i18n`),
//! and the bridge to the API's handlers (`api`): pages act through the same code as the API.
//!
//! Sits above `http` (it calls the API's handlers) and below `startup`, which mounts
//! [`routes`] and serves [`openapi::document`] merged into `/openapi.json`.

pub mod amount;
pub mod api;
pub mod assets;
pub mod chart;
pub mod console;
pub mod csrf;
pub mod error;
pub mod i18n;
pub mod idempotency;
pub mod login_pages;
pub mod openapi;
pub mod page;
pub mod session;
pub mod site;

use actix_web::middleware::from_fn;
use actix_web::web;

pub use error::WebError;
pub use session::WebCaller;

/// Every `(method, path)` the pages serve, as `/openapi.json` spells them; a test compares it
/// with [`openapi::document`] both ways.
pub fn route_table() -> Vec<(&'static str, String)> {
    let mut table = vec![("get", "/assets/{version}/{file}".to_owned())];
    table.extend(
        console::ROUTES
            .iter()
            .map(|(method, path)| (*method, format!("{}{path}", console::PREFIX))),
    );
    // The player site (issue 27).
    table.push(("get", "/".to_owned()));
    table.extend(
        site::ROUTES
            .iter()
            .map(|(method, path)| (*method, format!("{}{path}", site::PREFIX))),
    );
    table
}

/// Mounts the pages (before `http::routes`, whose default service answers unknown paths).
pub fn routes(cfg: &mut web::ServiceConfig) {
    console::ops::mark_start();
    cfg.service(
        web::scope("/assets")
            .route("/{version}/{file}", web::get().to(assets::serve))
            .default_service(web::to(unrouted)),
    )
    .service(
        console::routes(
            web::scope(console::PREFIX)
                .app_data(session::LoginPage(console::LOGIN))
                .app_data(form_config()),
        )
        .wrap(from_fn(session::renew_cookies)),
    );
    // The player site (issue 27).
    cfg.route("/", web::get().to(site::host::root)).service(
        site::routes(
            web::scope(site::PREFIX)
                .app_data(session::LoginPage(site::LOGIN))
                .app_data(form_config()),
        )
        .wrap(from_fn(session::renew_cookies)),
    );
}

/// Forms that do not parse (a wrong content type too): the 400 page, not actix's 415 text.
pub fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(64 * 1024)
        .error_handler(|err, _req| WebError::BadForm(err.to_string()).into())
}

/// The methods the pages serve at `path` (upper case, sorted; empty: no page there).
pub fn methods_for(path: &str) -> Vec<String> {
    let asked: Vec<&str> = path.split('/').collect();
    let mut methods: Vec<String> = route_table()
        .into_iter()
        .filter(|(_, template)| {
            let template: Vec<&str> = template.split('/').collect();
            template.len() == asked.len()
                && template.iter().zip(&asked).all(|(t, a)| {
                    t == a || (t.starts_with('{') && t.ends_with('}') && !a.is_empty())
                })
        })
        .map(|(method, _)| method.to_ascii_uppercase())
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

/// A page scope's default: 405 with `Allow` when only the method is wrong, else 404 (pages).
async fn unrouted(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    use actix_web::ResponseError;
    let allowed = methods_for(req.path());
    if allowed.is_empty() {
        return WebError::NotFound.error_response();
    }
    let t = i18n::english();
    let mut response = page::error_page(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        t.get("error.method"),
        &allowed.join(", "),
    );
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allowed.join(", ")) {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    response
}
