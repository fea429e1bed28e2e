//! The one error type of the HTML pages: each answers a page (or a 303 to the login page),
//! never the API's JSON body.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::http::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No valid session: 303 to the login page, coming back to `next` afterwards.
    #[error("log in first")]
    LoginRequired { login: &'static str, next: String },
    /// The caller's role or reach does not cover the page or action.
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    /// A state-changing form without a valid CSRF token or from another origin.
    #[error("csrf refused: {0}")]
    Csrf(&'static str),
    /// A form body that does not parse (not one of ours).
    #[error("bad form: {0}")]
    BadForm(String),
    /// An answer of the API path the page called, shown as a page with its status.
    #[error("{}", .0.message)]
    Api(ApiError),
    #[error("template: {0}")]
    Template(#[from] askama::Error),
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        match e.status {
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::NOT_FOUND => Self::NotFound,
            _ => Self::Api(e),
        }
    }
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Api(e.into())
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::LoginRequired { .. } => StatusCode::SEE_OTHER,
            Self::Forbidden | Self::Csrf(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadForm(_) => StatusCode::BAD_REQUEST,
            Self::Api(e) => e.status,
            Self::Template(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let t = super::i18n::english();
        let (title, detail) = match self {
            Self::LoginRequired { login, next } => {
                let location = format!("{login}?next={}", super::session::encode_next(next));
                return HttpResponse::SeeOther()
                    .insert_header(("Location", location))
                    .insert_header(("Cache-Control", "no-store"))
                    .finish();
            }
            Self::Forbidden => (t.get("error.forbidden"), t.get("error.forbidden.detail")),
            Self::Csrf(_) => (t.get("error.csrf"), t.get("error.csrf.detail")),
            Self::NotFound => (t.get("error.not_found"), t.get("error.not_found.detail")),
            Self::BadForm(_) => (t.get("error.bad_form"), t.get("error.bad_form.detail")),
            Self::Api(e) => (t.get("error.refused"), e.message.as_str()),
            Self::Template(e) => {
                tracing::error!(error = %e, "template");
                (t.get("error.internal"), "")
            }
        };
        super::page::error_page(self.status_code(), title, detail)
    }
}
