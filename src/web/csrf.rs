//! CSRF protection of every state-changing form: a token bound to the session (HMAC-SHA-256
//! of the session id under a key derived from the hub's `secrets_key`, so every node agrees and
//! it dies with the session) in a hidden `csrf` field, plus a same-origin check of `Origin`
//! (or, without it, `Referer`). [`Protected`] does both and parses the form; failure is a 403
//! page. The login form has no session yet: it gets the origin check (and SameSite=Strict).

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde::de::DeserializeOwned;
use sha2::Sha256;

use super::error::WebError;
use super::session::{WebCaller, app_state};
use crate::state::AppState;

/// The hidden field's name.
pub const FIELD: &str = "csrf";

fn mac(state: &AppState, session_id: &str) -> hmac::Hmac<Sha256> {
    // The key is derived, never the sealing key itself.
    let mut derive = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&state.config.secrets_key)
        .expect("HMAC takes any key");
    derive.update(b"nashub web csrf v1");
    let key = derive.finalize().into_bytes();
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("any key");
    mac.update(session_id.as_bytes());
    mac
}

/// The token of a session, for the `csrf` field of its forms.
pub fn token(state: &AppState, session_id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(mac(state, session_id).finalize().into_bytes())
}

/// Whether `sent` is the session's token (constant time).
pub fn verify(state: &AppState, session_id: &str, sent: &str) -> bool {
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sent.trim()) else {
        return false;
    };
    mac(state, session_id).verify_slice(&bytes).is_ok()
}

/// This hub's origin as the browser sees it (`http(s)://<Host>`).
pub fn own_origin(req: &HttpRequest) -> Option<String> {
    let host = req.headers().get("host")?.to_str().ok()?;
    let scheme = if super::session::is_tls(req) {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}"))
}

/// `Origin` must be this hub's; without `Origin`, `Referer` must start with it. Neither: refused.
pub fn same_origin(req: &HttpRequest) -> Result<(), WebError> {
    let own = own_origin(req).ok_or(WebError::Csrf("no Host header"))?;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    match (header("origin"), header("referer")) {
        (Some(origin), _) if origin == own => Ok(()),
        (Some(_), _) => Err(WebError::Csrf("cross-origin form post")),
        (None, Some(referer))
            if referer
                .strip_prefix(own.as_str())
                .is_some_and(|rest| rest.starts_with('/')) =>
        {
            Ok(())
        }
        _ => Err(WebError::Csrf("no Origin or Referer")),
    }
}

/// Largest form body.
const FORM_MAX_BYTES: usize = 64 * 1024;

/// A state-changing form of a logged-in page: same origin, the session's `csrf` token, and
/// the body parsed as `T` (urlencoded; `T` ignores the `csrf` field).
pub struct Protected<T> {
    pub caller: WebCaller,
    pub form: T,
}

impl<T: DeserializeOwned + 'static> FromRequest for Protected<T> {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, WebError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            same_origin(&req)?;
            let caller = WebCaller::extract(&req).await?;
            let bytes = body.await.map_err(|e| WebError::BadForm(e.to_string()))?;
            if bytes.len() > FORM_MAX_BYTES {
                return Err(WebError::BadForm("form too large".into()));
            }
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
                .map_err(|e| WebError::BadForm(e.to_string()))?;
            let sent = pairs
                .iter()
                .find(|(k, _)| k == FIELD)
                .map(|(_, v)| v.as_str())
                .ok_or(WebError::Csrf("no csrf field"))?;
            if !verify(&app_state(&req), &caller.caller.session_id, sent) {
                return Err(WebError::Csrf("wrong csrf token"));
            }
            let form = serde_urlencoded::from_bytes(&bytes)
                .map_err(|e| WebError::BadForm(e.to_string()))?;
            Ok(Self { caller, form })
        })
    }
}
