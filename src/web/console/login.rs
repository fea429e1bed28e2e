//! Logging in to the console (password, then the TOTP step when enrolled) and out, through the
//! API's own handlers (`web::session`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::state::AppState;
use crate::web::csrf::{Protected, same_origin};
use crate::web::error::WebError;
use crate::web::login_pages::{
    CsrfOnly, LoginFields, LoginForm, SecondFactorFields, SecondFactorForm,
};
use crate::web::page::{self, Chrome};
use crate::web::session::{self, LoginOutcome};

const SECOND_STEP: &str = "/console/login/second-factor";

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NextParam {
    /// the console page to show after logging in
    next: Option<String>,
}

fn login_form(next: String, client: String, username: String, error: String) -> LoginForm {
    let t = crate::web::i18n::english();
    LoginForm {
        chrome: Chrome::anonymous(t.get("login.title")),
        action: super::LOGIN,
        next,
        show_client: true,
        client,
        username,
        error,
    }
}

/// The console's login page
#[utoipa::path(get, path = "/console/login", tag = "console", params(NextParam),
    responses((status = 200, description = "the login form", content_type = "text/html", body = String)))]
pub async fn form(q: web::Query<NextParam>) -> Result<HttpResponse, WebError> {
    let next = session::safe_next(q.next.as_deref(), super::PREFIX);
    page::render(&login_form(
        next,
        String::new(),
        String::new(),
        String::new(),
    ))
}

/// Where a login step leads: the session's cookies and the page asked for, the TOTP step, or
/// the form again with the API's refusal in place.
fn after_step(
    req: &HttpRequest,
    outcome: LoginOutcome,
    next: String,
    again: impl FnOnce(String) -> Result<HttpResponse, WebError>,
    status_of_again: &mut StatusCode,
) -> Result<HttpResponse, WebError> {
    let t = crate::web::i18n::english();
    match outcome {
        LoginOutcome::LoggedIn(tokens) => {
            let mut response = page::see_other(&next);
            session::set_cookies(req, &mut response, &tokens);
            Ok(response)
        }
        LoginOutcome::SecondFactor { challenge_token } => page::render(&SecondFactorForm {
            chrome: Chrome::anonymous(t.get("login.second_factor.title")),
            action: SECOND_STEP,
            next,
            challenge_token,
            error: String::new(),
        }),
        LoginOutcome::EnrolmentRequired => {
            *status_of_again = StatusCode::FORBIDDEN;
            again(t.get("login.enrolment_required").to_owned())
        }
        LoginOutcome::Refused(e) => {
            *status_of_again = e.status;
            again(e.message)
        }
    }
}

/// Log in to the console
///
/// 303 to the console when logged in (session cookies set), 200 with the TOTP step when
/// enrolled, else the form again with the refusal (the API login's statuses).
#[utoipa::path(post, path = "/console/login", tag = "console",
    request_body(content = LoginFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "the TOTP step form", content_type = "text/html", body = String),
        (status = 303, description = "logged in: to the page asked for"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 401, description = "unknown user or wrong password (the form again)", content_type = "text/html", body = String),
        (status = 403, description = "another origin's post, or TOTP enrolment required", content_type = "text/html", body = String),
        (status = 422, description = "invalid fields (the form again)", content_type = "text/html", body = String),
        (status = 429, description = "too many failed logins (the form again)", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    fields: web::Form<LoginFields>,
) -> Result<HttpResponse, WebError> {
    same_origin(&req)?;
    let LoginFields {
        client,
        username,
        password,
        next,
    } = fields.into_inner();
    let next = session::safe_next(Some(&next), super::PREFIX);
    let outcome = session::login(&state, &req, &client, &username, &password).await;
    let mut status = StatusCode::OK;
    let form_next = next.clone();
    let response = after_step(
        &req,
        outcome,
        next,
        |error| page::render(&login_form(form_next, client, username, error)),
        &mut status,
    )?;
    Ok(with_status(response, status))
}

/// Log in to the console: the TOTP step
#[utoipa::path(post, path = "/console/login/second-factor", tag = "console",
    request_body(content = SecondFactorFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "the step again (wrong code)", content_type = "text/html", body = String),
        (status = 303, description = "logged in: to the page asked for"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 401, description = "wrong code, or expired challenge (the form again)", content_type = "text/html", body = String),
        (status = 403, description = "another origin's post", content_type = "text/html", body = String),
        (status = 422, description = "invalid fields (the form again)", content_type = "text/html", body = String),
        (status = 429, description = "too many wrong codes (the form again)", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn second_step(
    state: web::Data<AppState>,
    req: HttpRequest,
    fields: web::Form<SecondFactorFields>,
) -> Result<HttpResponse, WebError> {
    same_origin(&req)?;
    let SecondFactorFields {
        challenge_token,
        code,
        next,
    } = fields.into_inner();
    let next = session::safe_next(Some(&next), super::PREFIX);
    let outcome = session::second_factor(&state, &req, &challenge_token, &code).await;
    let mut status = StatusCode::OK;
    let t = crate::web::i18n::english();
    let form_next = next.clone();
    let token = challenge_token.clone();
    let response = after_step(
        &req,
        outcome,
        next,
        |error| {
            page::render(&SecondFactorForm {
                chrome: Chrome::anonymous(t.get("login.second_factor.title")),
                action: SECOND_STEP,
                next: form_next,
                challenge_token: token,
                error,
            })
        },
        &mut status,
    )?;
    Ok(with_status(response, status))
}

fn with_status(mut response: HttpResponse, status: StatusCode) -> HttpResponse {
    if status != StatusCode::OK && response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

/// Log out of the console (the session is revoked at once)
#[utoipa::path(post, path = "/console/logout", tag = "console",
    request_body(content = CsrfOnly, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "logged out (cookies cleared), or no session: to the login page"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "missing or wrong CSRF token, or another origin's post", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Protected<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    session::logout(&state, &form.caller).await?;
    let mut response = page::see_other(super::LOGIN);
    session::clear_cookies(&req, &mut response);
    Ok(response)
}
