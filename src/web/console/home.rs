//! The console's first page: who is logged in, the role's navigation, the own wallet (when the
//! user has one) updated live.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde_json::Value;

use crate::domain::Role;
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{self, Chrome};
use crate::web::{WebCaller, api};

#[derive(Template)]
#[template(path = "console/home.html")]
struct Home {
    chrome: Chrome,
    role: &'static str,
    user_id: String,
    /// The caller's wallet; platform users have none (`has_wallet` false).
    has_wallet: bool,
    balance: String,
    currency: String,
    figures: super::dashboard::Figures,
    /// The client the platform's charts show (`?client_id=`).
    client_id: String,
    /// A platform user (no client): the overview and a client picker.
    is_platform: bool,
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DashboardQuery {
    /// super admins: the client whose charts to show
    client_id: Option<String>,
}

/// The chrome of a console page for a logged-in caller; players are refused (403): the
/// console is for staff.
pub fn chrome(
    state: &AppState,
    caller: &WebCaller,
    title_key: &str,
    current: &str,
) -> Result<Chrome, WebError> {
    let role = caller.caller.role;
    if role == Role::Player {
        return Err(WebError::Forbidden);
    }
    let t = crate::web::i18n::english();
    let mut chrome = Chrome::anonymous(t.get(title_key));
    chrome.csrf = caller.csrf(state);
    chrome.nav = super::nav::links(role, current);
    chrome.user_label = t.get(role_key(role)).to_owned();
    chrome.logout = "/console/logout";
    Ok(chrome)
}

fn role_key(role: Role) -> &'static str {
    match role {
        Role::SuperAdmin => "role.super_admin",
        Role::ClientAdmin => "role.client_admin",
        Role::Agent => "role.agent",
        Role::Player => "role.player",
    }
}

/// The console's dashboard
#[utoipa::path(get, path = "/console", tag = "console", params(DashboardQuery),
    responses(
        (status = 200, description = "the dashboard", content_type = "text/html", body = String),
        (status = 303, description = "no session: to the login page"),
        (status = 403, description = "a player (the console is for staff)", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn page(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    caller: WebCaller,
    q: web::Query<DashboardQuery>,
) -> Result<HttpResponse, WebError> {
    let chrome = chrome(&state, &caller, "nav.dashboard", "")?;
    let (has_wallet, balance, currency) = if caller.caller.client_id.is_some() {
        let answer = api::answer(
            crate::http::wallets::balance(
                state.clone(),
                caller.auth(),
                web::Path::from(caller.caller.user_id.clone()),
                web::Query::from_query("").map_err(|_| WebError::NotFound)?,
            )
            .await,
        )?;
        let text = |k: &str| {
            answer
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        (true, text("balance"), text("currency"))
    } else {
        (false, String::new(), String::new())
    };
    let client_id = q
        .client_id
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty() && caller.caller.client_id.is_none());
    let figures = super::dashboard::figures(&state, &caller, &req, client_id).await;
    page::render(&Home {
        figures,
        is_platform: caller.caller.client_id.is_none(),
        client_id: client_id.unwrap_or_default().to_owned(),
        chrome,
        role: role_key(caller.caller.role),
        user_id: caller.caller.user_id.clone(),
        has_wallet,
        balance,
        currency,
    })
}
