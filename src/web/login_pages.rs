//! The login and TOTP-step forms, shared by every page set (the console's, the player site's):
//! a page set renders them with its own form actions and handles the posts with
//! `session::{login, second_factor}`.

use askama::Template;
use serde::Deserialize;
use utoipa::ToSchema;

use super::page::Chrome;

/// The login form (`templates/web/login.html`).
#[derive(Template)]
#[template(path = "web/login.html")]
pub struct LoginForm {
    pub chrome: Chrome,
    /// Where the form posts.
    pub action: &'static str,
    /// Where to go after logging in (a path of this site).
    pub next: String,
    /// Show the client (brand) code field: the console's staff need it, a brand's own site
    /// knows its client.
    pub show_client: bool,
    pub client: String,
    pub username: String,
    /// The refusal to show above the form (empty: none).
    pub error: String,
}

/// The second step (`templates/web/second_factor.html`).
#[derive(Template)]
#[template(path = "web/second_factor.html")]
pub struct SecondFactorForm {
    pub chrome: Chrome,
    pub action: &'static str,
    pub next: String,
    pub challenge_token: String,
    pub error: String,
}

/// The login form's fields.
#[derive(Deserialize, ToSchema)]
pub struct LoginFields {
    /// client code; empty for platform users
    #[serde(default)]
    pub client: String,
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub next: String,
}

/// The TOTP step's fields.
#[derive(Deserialize, ToSchema)]
pub struct SecondFactorFields {
    pub challenge_token: String,
    /// a 6-digit code, or a recovery code
    pub code: String,
    #[serde(default)]
    pub next: String,
}

/// A form with nothing but the CSRF field (logout, simple actions).
#[derive(Deserialize, ToSchema)]
pub struct CsrfOnly {
    /// the session's CSRF token
    pub csrf: String,
}
