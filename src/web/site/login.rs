//! Logging in to a brand's site and out, through the API's login (the brand's own client code,
//! so its rules apply: suspended brand, exclusions, throttling, audit) and logout handlers.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::brand::{Brand, BrandView};
use crate::state::AppState;
use crate::web::csrf::{Protected, same_origin};
use crate::web::error::WebError;
use crate::web::login_pages::CsrfOnly;
use crate::web::page::{self, Chrome};
use crate::web::session::{self, LoginOutcome};

#[derive(Template)]
#[template(path = "site/login.html")]
struct LoginPage {
    chrome: Chrome,
    brand: BrandView,
    next: String,
    username: String,
    error: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NextParam {
    /// the page of the site to show after logging in
    next: Option<String>,
}

/// The site's login fields (the brand is the one of the URL).
#[derive(Deserialize, ToSchema)]
pub struct SiteLoginFields {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub next: String,
}

fn render(
    state: &AppState,
    brand: &Brand,
    status: StatusCode,
    next: String,
    username: String,
    error: String,
) -> Result<HttpResponse, WebError> {
    page::render_status(
        status,
        &LoginPage {
            chrome: brand.chrome(state, None, "login.title", ""),
            brand: brand.view(),
            next,
            username,
            error,
        },
    )
}

/// `next` kept within this brand's site.
fn next_within(brand: &Brand, next: Option<&str>) -> String {
    let next = session::safe_next(next, &brand.home());
    if next == brand.home() || next.starts_with(&format!("{}/", brand.home())) {
        next
    } else {
        brand.home()
    }
}

/// A brand's login page
///
/// `/play/-/login?next=/play/<code>/...` (where pages without a session send the browser)
/// answers 303 to that brand's login page.
#[utoipa::path(get, path = "/play/{code}/login", tag = "site", params(
        ("code" = String, Path, description = "the brand's client code"), NextParam),
    responses(
        (status = 200, description = "the login form", content_type = "text/html", body = String),
        (status = 303, description = "`-` as the code: to the brand's login page that `next` names"),
        (status = 400, description = "a query that does not parse", content_type = "text/html", body = String),
        (status = 404, description = "no such brand", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn form(
    state: web::Data<AppState>,
    code: web::Path<String>,
    q: web::Query<NextParam>,
) -> Result<HttpResponse, WebError> {
    if code.as_str() == "-" {
        // The session layer knows one login page per scope; the brand is in `next`.
        let next = session::safe_next(q.next.as_deref(), "/");
        let brand = next
            .strip_prefix(&format!("{}/", super::PREFIX))
            .and_then(|rest| rest.split(['/', '?']).next())
            .filter(|c| !c.is_empty() && *c != "-")
            .ok_or(WebError::NotFound)?;
        return Ok(page::see_other(&format!(
            "{}/{brand}/login?next={}",
            super::PREFIX,
            session::encode_next(&next)
        )));
    }
    let brand = Brand::load(&state, &code).await?;
    let next = next_within(&brand, q.next.as_deref());
    render(
        &state,
        &brand,
        StatusCode::OK,
        next,
        String::new(),
        String::new(),
    )
}

/// Log in to a brand's site
///
/// 303 to the page asked for (session cookies set); else the form again with the API login's
/// refusal (wrong password, throttled, excluded, suspended brand).
#[utoipa::path(post, path = "/play/{code}/login", tag = "site",
    params(("code" = String, Path, description = "the brand's client code")),
    request_body(content = SiteLoginFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "logged in: to the page asked for"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 401, description = "unknown user or wrong password (the form again)", content_type = "text/html", body = String),
        (status = 403, description = "another origin's post, a refused account, or staff needing TOTP", content_type = "text/html", body = String),
        (status = 404, description = "no such brand", content_type = "text/html", body = String),
        (status = 422, description = "invalid fields (the form again)", content_type = "text/html", body = String),
        (status = 429, description = "too many failed logins (the form again)", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: web::Path<String>,
    fields: web::Form<SiteLoginFields>,
) -> Result<HttpResponse, WebError> {
    same_origin(&req)?;
    let brand = Brand::load(&state, &code).await?;
    let SiteLoginFields {
        username,
        password,
        next,
    } = fields.into_inner();
    let next = next_within(&brand, Some(&next));
    let t = crate::web::i18n::english();
    let (status, error) =
        match session::login(&state, &req, &brand.code, &username, &password).await {
            LoginOutcome::LoggedIn(tokens) => {
                let mut response = page::see_other(&next);
                session::set_cookies(&req, &mut response, &tokens);
                return Ok(response);
            }
            // Players have no second factor; a brand's staff use the console.
            LoginOutcome::SecondFactor { .. } | LoginOutcome::EnrolmentRequired => {
                (StatusCode::FORBIDDEN, t.get("site.login.staff").to_owned())
            }
            LoginOutcome::Refused(e) => (e.status, e.message),
        };
    render(&state, &brand, status, next, username, error)
}

/// Log out of a brand's site (the session is revoked at once)
#[utoipa::path(post, path = "/play/{code}/logout", tag = "site",
    params(("code" = String, Path, description = "the brand's client code")),
    request_body(content = CsrfOnly, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "logged out (cookies cleared), or no session: to the login page"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing or wrong CSRF token, or another origin's post", content_type = "text/html", body = String),
        (status = 404, description = "no such brand", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: web::Path<String>,
    form: Protected<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    let brand = Brand::load(&state, &code).await?;
    session::logout(&state, &form.caller).await?;
    let mut response = page::see_other(&brand.path("/login"));
    session::clear_cookies(&req, &mut response);
    Ok(response)
}
