//! A brand (a client) as its player site shows it: found by the code in `/play/{code}` (or by a
//! host name its settings list), themed from `settings.branding` (name, logo, colour), and the
//! session check every page of the site makes: a player of this very client, or the login page.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::clients::settings::{self, Branding};
use crate::domain::{Currency, Role};
use crate::state::AppState;
use crate::web::WebCaller;
use crate::web::error::WebError;
use crate::web::page::Chrome;

/// A brand's site, resolved from its code.
pub struct Brand {
    pub client_id: String,
    pub code: String,
    /// The display name (`branding.display_name`, else the client's name).
    pub name: String,
    /// A logo the page may show under its CSP: a path on this hub or a `data:image/` URL.
    pub logo: String,
    pub colour: Option<String>,
    pub currency: Currency,
}

/// What the site's layout (`templates/site/base.html`) shows of the brand.
pub struct BrandView {
    pub code: String,
    pub name: String,
    pub logo: String,
    /// `/play/<code>` (links of the site start with it).
    pub home: String,
    /// The brand's stylesheet (colours), versioned by the branding it renders.
    pub css: String,
}

impl Brand {
    /// The brand of `code`; unknown (or not a code at all): the 404 page.
    pub async fn load(state: &AppState, code: &str) -> Result<Self, WebError> {
        let code = crate::domain::names::client_code(code).map_err(|_| WebError::NotFound)?;
        let client = state
            .store
            .client_by_code(&code)
            .await?
            .ok_or(WebError::NotFound)?;
        let settings = settings::load(&state.store, &client.id)
            .await
            .map_err(|_| WebError::Api(crate::http::ApiError::internal()))?;
        let Branding {
            display_name,
            logo_url,
            primary_color,
        } = settings.branding.clone();
        Ok(Self {
            client_id: client.id,
            code: client.code,
            name: display_name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(client.name),
            logo: logo_url.filter(|l| showable_logo(l)).unwrap_or_default(),
            colour: primary_color.and_then(|c| css_colour(&c)),
            currency: client.currency,
        })
    }

    pub fn home(&self) -> String {
        format!("{}/{}", super::PREFIX, self.code)
    }

    /// A path of this brand's site.
    pub fn path(&self, rest: &str) -> String {
        format!("{}{rest}", self.home())
    }

    pub fn view(&self) -> BrandView {
        let version = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(self.colour.as_deref().unwrap_or("").as_bytes());
            hex::encode(&h.finalize()[..4])
        };
        BrandView {
            code: self.code.clone(),
            name: self.name.clone(),
            logo: self.logo.clone(),
            home: self.home(),
            css: format!("{}/brand.css?v={version}", self.home()),
        }
    }

    /// The chrome of a page of this brand's site (`title_key` translated; `caller` when logged in).
    pub fn chrome(
        &self,
        state: &AppState,
        caller: Option<&WebCaller>,
        title_key: &str,
        current: &str,
    ) -> Chrome {
        let t = crate::web::i18n::english();
        let mut chrome = Chrome::anonymous(t.get(title_key));
        if let Some(caller) = caller {
            chrome.csrf = caller.csrf(state);
            chrome.nav = super::nav::links(self, caller.caller.role, current);
            chrome.user_label = caller.caller.user_id.clone();
        }
        chrome
    }

    /// The logged-in user of this brand's site: [`Self::admit`] of the session's caller.
    pub async fn caller(&self, req: &HttpRequest) -> Result<WebCaller, WebError> {
        self.admit(WebCaller::extract(req).await?, req)
    }

    /// [`Self::caller`], players only.
    pub async fn player(&self, req: &HttpRequest) -> Result<WebCaller, WebError> {
        self.admit_player(WebCaller::extract(req).await?, req)
    }

    /// A session (already authenticated, e.g. by a form's `Protected` extractor) on this
    /// brand's site: another brand's user (or a platform user) logs in here first (the login
    /// replaces the cookies); this brand's admins: 403 (the site is for players, and agents'
    /// shop).
    pub fn admit(&self, caller: WebCaller, req: &HttpRequest) -> Result<WebCaller, WebError> {
        if caller.caller.client_id.as_deref() != Some(self.client_id.as_str()) {
            return Err(WebError::LoginRequired {
                login: super::LOGIN,
                next: req
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned(),
            });
        }
        match caller.caller.role {
            Role::Player | Role::Agent => Ok(caller),
            _ => Err(WebError::Forbidden),
        }
    }

    /// [`Self::admit`], players only.
    pub fn admit_player(
        &self,
        caller: WebCaller,
        req: &HttpRequest,
    ) -> Result<WebCaller, WebError> {
        let caller = self.admit(caller, req)?;
        if caller.caller.role != Role::Player {
            return Err(WebError::Forbidden);
        }
        Ok(caller)
    }
}

/// Only logos the CSP lets the browser load (`img-src 'self' data:`): no third-party hosts.
fn showable_logo(url: &str) -> bool {
    let url = url.trim();
    (url.starts_with('/') && !url.starts_with("//") && !url.contains(['"', '\'', '<', '>', ' ']))
        || url.starts_with("data:image/")
}

/// A colour safe to put in a stylesheet: `#rgb`, `#rrggbb` or a CSS colour name (letters only).
pub fn css_colour(text: &str) -> Option<String> {
    let t = text.trim().to_ascii_lowercase();
    let hex = t
        .strip_prefix('#')
        .is_some_and(|h| matches!(h.len(), 3 | 6) && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let named = (3..=20).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_lowercase());
    (hex || named).then_some(t)
}

/// The brand's stylesheet (its colour over the pages' defaults)
#[utoipa::path(get, path = "/play/{code}/brand.css", tag = "site",
    params(("code" = String, Path, description = "the brand's client code")),
    responses(
        (status = 200, description = "the brand's colours", content_type = "text/css", body = String),
        (status = 404, description = "no such brand", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn stylesheet(
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let brand = Brand::load(&state, &code).await?;
    let mut css = String::from("/* brand colours */\n");
    if let Some(c) = &brand.colour {
        css.push_str(&format!(
            ":root {{ --accent: {c}; --brand: {c}; }}\nheader.top {{ border-bottom: 4px solid {c}; }}\n"
        ));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(css))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_colours_and_logos() {
        assert_eq!(css_colour("#A0B1C2").as_deref(), Some("#a0b1c2"));
        assert_eq!(css_colour("teal").as_deref(), Some("teal"));
        for bad in ["#12", "red;}", "url(x)", "#12345g", "expression(1)"] {
            assert_eq!(css_colour(bad), None, "{bad}");
        }
        assert!(showable_logo("/static/logo.png"));
        assert!(showable_logo("data:image/png;base64,AAAA"));
        assert!(!showable_logo("https://cdn.example/logo.png"));
        assert!(!showable_logo("//cdn.example/logo.png"));
    }
}
