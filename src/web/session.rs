//! The browser session: the API's tokens kept in cookies (HttpOnly, SameSite=Strict, `Secure`
//! when the hub is reached over TLS), made by the API's own login handlers (same throttling,
//! audit, TOTP step, sessions table) and checked by the API's authenticator on every request
//! (logout, revocation and suspension bite at once). An expired access token is renewed with
//! the refresh cookie (the API's refresh handler); no valid session: 303 to the login page.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, dev::Payload, web};
use serde_json::{Value, json};

use super::api;
use super::error::WebError;
use crate::auth::Caller;
use crate::http::ApiError;
use crate::http::extract::Auth;
use crate::state::AppState;

/// The access token's cookie (also read by `/ws` from a same-origin page: `http/ws.rs`).
pub const ACCESS_COOKIE: &str = crate::auth::WEB_ACCESS_COOKIE;
/// The refresh token's cookie.
pub const REFRESH_COOKIE: &str = "nashub_refresh";

/// Where a scope's pages send a visitor without a session (`app_data` of the scope; the
/// console's is `/console/login`).
#[derive(Clone, Copy)]
pub struct LoginPage(pub &'static str);

pub(super) fn app_state(req: &HttpRequest) -> AppState {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
        .get_ref()
        .clone()
}

/// Whether the browser reached the hub over TLS: the listener's own TLS, or `hsts = true`
/// (the operator says it is served behind HTTPS). Forwarded headers are not trusted (as for
/// client IPs: `http::auth::peer_ip`), so a client cannot turn `Secure` off.
pub fn is_tls(req: &HttpRequest) -> bool {
    req.app_config().secure() || app_state(req).hsts
}

/// The API's tokens of a web session.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl Tokens {
    fn from_answer(v: &Value) -> Option<Self> {
        Some(Self {
            access: v.get("access_token")?.as_str()?.to_owned(),
            refresh: v.get("refresh_token")?.as_str()?.to_owned(),
        })
    }
}

/// Tokens renewed while serving a request: [`renew_cookies`] writes them on the answer.
#[derive(Clone)]
struct Renewed(Tokens);

fn cookie<'a>(req: &HttpRequest, name: &'a str, value: String, max_age_secs: i64) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_tls(req))
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}

/// Puts a session's tokens on an answer (both live as long as the refresh token, so an expired
/// access token can still be renewed).
pub fn set_cookies(req: &HttpRequest, response: &mut HttpResponse, tokens: &Tokens) {
    let ttl = app_state(req).config.settings.refresh_token_ttl_secs;
    for (name, value) in [
        (ACCESS_COOKIE, tokens.access.clone()),
        (REFRESH_COOKIE, tokens.refresh.clone()),
    ] {
        let _ = response.add_cookie(&cookie(req, name, value, ttl));
    }
}

/// Removes the session's cookies (logout).
pub fn clear_cookies(req: &HttpRequest, response: &mut HttpResponse) {
    for name in [ACCESS_COOKIE, REFRESH_COOKIE] {
        let _ = response.add_cookie(&cookie(req, name, String::new(), 0));
    }
}

/// Middleware of every scope with session pages: writes renewed tokens on the answer.
pub async fn renew_cookies(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let renewed = res.request().extensions().get::<Renewed>().cloned();
    if let Some(Renewed(tokens)) = renewed {
        let req = res.request().clone();
        let ttl = app_state(&req).config.settings.refresh_token_ttl_secs;
        for (name, value) in [
            (ACCESS_COOKIE, tokens.access),
            (REFRESH_COOKIE, tokens.refresh),
        ] {
            let _ = res
                .response_mut()
                .add_cookie(&cookie(&req, name, value, ttl));
        }
    }
    Ok(res)
}

/// The logged-in user of a page. Extracting it authenticates the access cookie like the API's
/// `Auth` (and counts against the same per-user limit); on failure it renews with the refresh
/// cookie; else the page answers 303 to the scope's [`LoginPage`].
#[derive(Clone)]
pub struct WebCaller {
    pub caller: Caller,
}

impl WebCaller {
    /// The caller as the API's `Auth` extractor gives it, to call an API handler with.
    pub fn auth(&self) -> Auth {
        Auth(self.caller.clone())
    }

    /// The CSRF token for this session's forms.
    pub fn csrf(&self, state: &AppState) -> String {
        super::csrf::token(state, &self.caller.session_id)
    }

    pub async fn extract(req: &HttpRequest) -> Result<Self, WebError> {
        let state = app_state(req);
        let login = req
            .app_data::<LoginPage>()
            .copied()
            .unwrap_or(LoginPage("/console/login"));
        let required = || WebError::LoginRequired {
            login: login.0,
            next: req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
        };
        let access = req.cookie(ACCESS_COOKIE).map(|c| c.value().to_owned());
        let mut caller = match access.filter(|a| !a.is_empty()) {
            Some(token) => state.auth.authenticate(&token).await.ok(),
            None => None,
        };
        if caller.is_none() {
            let refresh = req
                .cookie(REFRESH_COOKIE)
                .map(|c| c.value().to_owned())
                .filter(|r| !r.is_empty())
                .ok_or_else(required)?;
            let tokens = refresh_once(&state, req, &refresh)
                .await
                .ok_or_else(required)?;
            caller = state.auth.authenticate(&tokens.access).await.ok();
            req.extensions_mut().insert(Renewed(tokens));
        }
        let caller = caller.ok_or_else(required)?;
        if let Some(conn) = req.conn_data::<std::sync::Arc<crate::admission::Conn>>() {
            conn.mark_authenticated();
        }
        if let Err(wait) = state.limiter.check(&caller.user_id) {
            return Err(WebError::Api(crate::http::auth::too_fast(wait)));
        }
        Ok(Self { caller })
    }
}

impl FromRequest for WebCaller {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, WebError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Self::extract(&req).await })
    }
}

/// How long a renewal is remembered for a refresh token already used.
const RENEWAL_MEMORY: Duration = Duration::from_secs(30);

/// Renews through the API's refresh handler. A page's parallel requests carry the same expired
/// cookie: the refresh token rotates once per node (the first renewal is remembered briefly and
/// handed to the others), since a second use of a rotated token would end the session.
async fn refresh_once(state: &AppState, req: &HttpRequest, refresh: &str) -> Option<Tokens> {
    static RENEWALS: tokio::sync::Mutex<Option<HashMap<String, (Instant, Tokens)>>> =
        tokio::sync::Mutex::const_new(None);
    let key = crate::auth::tokens::refresh_token_hash(refresh);
    let mut renewals = RENEWALS.lock().await;
    let map = renewals.get_or_insert_with(HashMap::new);
    map.retain(|_, (at, _)| at.elapsed() < RENEWAL_MEMORY);
    if let Some((_, tokens)) = map.get(&key) {
        return Some(tokens.clone());
    }
    let body = api::body(json!({ "refresh_token": refresh })).ok()?;
    let answer = api::answer(
        crate::http::auth::refresh(web::Data::new(state.clone()), req.clone(), body).await,
    )
    .ok()?;
    let tokens = Tokens::from_answer(&answer)?;
    map.insert(key, (Instant::now(), tokens.clone()));
    Some(tokens)
}

/// What a login step came to.
pub enum LoginOutcome {
    LoggedIn(Tokens),
    /// Send a TOTP (or recovery) code with this token to the second step.
    SecondFactor {
        challenge_token: String,
    },
    /// A staff member who must enrol TOTP first (through the API: `/api/v1/auth/second-factor`).
    EnrolmentRequired,
    /// The API's refusal (wrong password 401, throttled 429, ...): shown in the form.
    Refused(ApiError),
}

fn outcome(answer: Result<Value, ApiError>) -> LoginOutcome {
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return LoginOutcome::Refused(e),
    };
    if let Some(tokens) = Tokens::from_answer(&answer) {
        return LoginOutcome::LoggedIn(tokens);
    }
    match (
        answer.get("second_factor").and_then(Value::as_str),
        answer.get("challenge_token").and_then(Value::as_str),
    ) {
        (Some("required"), Some(token)) => LoginOutcome::SecondFactor {
            challenge_token: token.to_owned(),
        },
        (Some(_), _) => LoginOutcome::EnrolmentRequired,
        _ => LoginOutcome::Refused(ApiError::internal()),
    }
}

/// The login form's submission, through `POST /api/v1/auth/login`'s handler. `client` empty
/// for platform users.
pub async fn login(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    client: &str,
    username: &str,
    password: &str,
) -> LoginOutcome {
    let client = Some(client.trim()).filter(|c| !c.is_empty());
    let body = match api::body(json!({
        "client": client, "username": username, "password": password,
    })) {
        Ok(b) => b,
        Err(e) => return LoginOutcome::Refused(e),
    };
    outcome(api::answer(
        crate::http::auth::login(state.clone(), req.clone(), body).await,
    ))
}

/// The TOTP step, through `POST /api/v1/auth/login/second-factor`'s handler: a 6-digit code,
/// or (anything else) a recovery code.
pub async fn second_factor(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    challenge_token: &str,
    code: &str,
) -> LoginOutcome {
    let code = code.trim();
    let value = if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        json!({ "challenge_token": challenge_token, "code": code })
    } else {
        json!({ "challenge_token": challenge_token, "recovery_code": code })
    };
    let body = match api::body(value) {
        Ok(b) => b,
        Err(e) => return LoginOutcome::Refused(e),
    };
    outcome(api::answer(
        crate::http::second_factor::login_step(state.clone(), req.clone(), body).await,
    ))
}

/// Ends the session through `POST /api/v1/auth/logout`'s handler (revoked at once on every
/// node); the caller's answer should also [`clear_cookies`].
pub async fn logout(state: &web::Data<AppState>, caller: &WebCaller) -> Result<(), WebError> {
    api::answer(crate::http::auth::logout(state.clone(), caller.auth()).await)?;
    Ok(())
}

/// A `next` target from a query or form: a path of this site only (no scheme, no `//host`),
/// else `default`.
pub fn safe_next(next: Option<&str>, default: &str) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => default.to_owned(),
    }
}

/// Percent-encodes a `next` path for a query string.
pub fn encode_next(next: &str) -> String {
    serde_urlencoded::to_string([("", next)])
        .map(|s| s.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}
