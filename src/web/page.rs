//! Rendering a page: an askama template into an HTML answer with the pages' headers (strict
//! CSP, no caching, a referrer policy that lets the browser send `Origin` on form posts).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use super::error::WebError;
use super::i18n::Strings;

/// Scripts, styles, images and sockets from this origin only; nothing inline, no frames.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' \
data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// What every page's layout (`templates/web/base.html`) needs.
pub struct Chrome {
    pub t: &'static Strings,
    /// Prefix of the embedded assets (`/assets/<hash>`).
    pub assets: &'static str,
    /// The page title (already translated).
    pub title: String,
    /// The session's CSRF token (empty before login); goes into every form as `csrf`.
    pub csrf: String,
    /// Navigation links shown in the header: (href, label, current).
    pub nav: Vec<NavLink>,
    /// Who is logged in, shown in the header; empty before login.
    pub user_label: String,
    /// Where the header's logout form posts (empty: no logout button).
    pub logout: &'static str,
}

pub struct NavLink {
    pub href: String,
    pub label: &'static str,
    pub current: bool,
}

impl Chrome {
    /// A page outside a session (login, errors).
    pub fn anonymous(title: &str) -> Self {
        let t = super::i18n::english();
        Self {
            t,
            assets: super::assets::prefix(),
            title: title.to_owned(),
            csrf: String::new(),
            nav: Vec::new(),
            user_label: String::new(),
            logout: "",
        }
    }
}

/// 200 with the rendered template.
pub fn render(template: &impl Template) -> Result<HttpResponse, WebError> {
    render_status(StatusCode::OK, template)
}

/// The rendered template with a status (a form shown again with its errors: 422).
pub fn render_status(
    status: StatusCode,
    template: &impl Template,
) -> Result<HttpResponse, WebError> {
    let body = template.render()?;
    Ok(html(status, body))
}

/// An HTML answer with the pages' headers.
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("Referrer-Policy", "same-origin"))
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

/// 303 to a path of this site (after a form post: the browser's back/reload do not repost).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    detail: &'a str,
    status: u16,
}

/// The page of a [`WebError`].
pub fn error_page(status: StatusCode, title: &str, detail: &str) -> HttpResponse {
    let page = ErrorPage {
        chrome: Chrome::anonymous(title),
        detail,
        status: status.as_u16(),
    };
    match page.render() {
        Ok(body) => html(status, body),
        Err(_) => html(status, String::from("error")),
    }
}
