//! A brand's own host name (`site_hosts` in its settings): `/` there is its site.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page;

/// A brand's site on its own host name
///
/// On a host a client's `site_hosts` lists: 303 to that brand's site (same host, so the
/// session cookies are that host's). Any other host: 404. A change of `site_hosts` shows
/// within a second.
#[utoipa::path(get, path = "/", tag = "site",
    responses(
        (status = 303, description = "a brand's host: to its site"),
        (status = 404, description = "no brand serves this host name", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn root(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    // The per-node snapshot of the clients' settings (reloaded at most once a second).
    let client_id = state
        .origins
        .site_host_client(&state.store, host)
        .await
        .ok_or(WebError::NotFound)?;
    let client = state
        .store
        .client(&client_id)
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(page::see_other(&format!(
        "{}/{}",
        super::PREFIX,
        client.code
    )))
}
