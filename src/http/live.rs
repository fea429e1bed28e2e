//! `GET /live` (and `/live.js`): a self-contained browser page where a player or agent logs in
//! and watches its balance and notifications over `/ws`. Compiled into the binary; no CDN.
//! The script is a separate file so the page can forbid inline scripts (CSP `script-src 'self'`).

use actix_web::HttpResponse;

const PAGE: &str = include_str!("../../static/live.html");
const SCRIPT: &str = include_str!("../../static/live.js");
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Browser page: log in and watch balance and notifications live
#[utoipa::path(get, path = "/live", tag = "realtime", responses(
    (status = 200, description = "success", body = String, content_type = "text/html"),
))]
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", CSP))
        .body(PAGE)
}

/// Script of the /live page
#[utoipa::path(get, path = "/live.js", tag = "realtime", responses(
    (status = 200, description = "success", body = String, content_type = "text/javascript"),
))]
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(SCRIPT)
}
