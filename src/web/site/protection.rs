//! Responsible-gaming self-service: the player's limits, reality checks, time-out and
//! self-exclusion, through the API's protection handlers (only the player changes them; raises
//! wait for the brand's cooling-off; an exclusion cannot be lifted and ends the session).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::brand::{Brand, BrandView};
use super::lobby::{Wallet, wallet};
use crate::state::AppState;
use crate::web::csrf::Protected;
use crate::web::error::WebError;
use crate::web::page::{self, Chrome};
use crate::web::session;
use crate::web::{WebCaller, api};

#[derive(Template)]
#[template(path = "site/protection.html")]
struct ProtectionPage {
    chrome: Chrome,
    brand: BrandView,
    wallet: Wallet,
    limits: Vec<LimitLine>,
    names: &'static [&'static str],
    exclusion: String,
    reality_minutes: String,
    cooloff_hours: String,
    notice: String,
    error: String,
}

struct LimitLine {
    name: String,
    value: String,
    pending: String,
    used: String,
}

/// A limit form.
#[derive(Deserialize, ToSchema)]
pub struct LimitFields {
    pub csrf: String,
    /// deposit_daily, ..., session_minutes
    pub name: String,
    /// a decimal string (minutes for session_minutes); empty: no limit
    #[serde(default)]
    pub value: String,
}

/// The reality-check form.
#[derive(Deserialize, ToSchema)]
pub struct RealityFields {
    pub csrf: String,
    /// minutes between checks, 5 to 240; empty: off
    #[serde(default)]
    pub minutes: String,
}

/// The time-out / self-exclusion form.
#[derive(Deserialize, ToSchema)]
pub struct ExclusionFields {
    pub csrf: String,
    /// `timeout` or `self_exclusion`
    pub kind: String,
    /// time-out: hours (24 to 1008)
    #[serde(default)]
    pub hours: String,
    /// self-exclusion: months (6 to 60); empty with `permanent`
    #[serde(default)]
    pub months: String,
    /// `on`: permanent self-exclusion
    #[serde(default)]
    pub permanent: String,
    /// must be `on`: the player confirmed
    #[serde(default)]
    pub confirm: String,
}

const LIMIT_NAMES: &[&str] = &crate::protection::limits::LimitName::NAMES;

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

async fn render(
    state: &web::Data<AppState>,
    brand: &Brand,
    caller: &WebCaller,
    status: StatusCode,
    notice: String,
    error: String,
) -> Result<HttpResponse, WebError> {
    let t = crate::web::i18n::english();
    let p = api::answer(
        crate::http::protection::get(
            state.clone(),
            caller.auth(),
            web::Path::from(caller.caller.user_id.clone()),
        )
        .await,
    )?;
    let limits = p
        .get("limits")
        .and_then(Value::as_array)
        .map(|ls| {
            ls.iter()
                .map(|l| LimitLine {
                    name: text(l, "name"),
                    value: Some(text(l, "value"))
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| t.get("site.protection.none").to_owned()),
                    pending: if l.get("pending").and_then(Value::as_bool) == Some(true) {
                        format!(
                            "{} {}",
                            Some(text(l, "pending_value"))
                                .filter(|v| !v.is_empty())
                                .unwrap_or_else(|| t.get("site.protection.none").to_owned()),
                            text(l, "pending_at")
                        )
                    } else {
                        String::new()
                    },
                    used: text(l, "used"),
                })
                .collect()
        })
        .unwrap_or_default();
    let exclusion = match p.get("exclusion") {
        Some(e) if e.is_object() => format!(
            "{} {} {}",
            text(e, "kind"),
            t.get("site.protection.until"),
            Some(text(e, "until"))
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| t.get("site.protection.permanent").to_owned())
        ),
        _ => String::new(),
    };
    page::render_status(
        status,
        &ProtectionPage {
            chrome: brand.chrome(state, Some(caller), "site.protection.title", "/protection"),
            brand: brand.view(),
            wallet: wallet(state, caller).await?,
            limits,
            names: LIMIT_NAMES,
            exclusion,
            reality_minutes: text(&p, "reality_check_minutes"),
            cooloff_hours: text(&p, "cooloff_hours"),
            notice,
            error,
        },
    )
}

/// The player's own protection page
#[utoipa::path(get, path = "/play/{code}/protection", tag = "site",
    params(("code" = String, Path, description = "the brand's client code")),
    responses(
        (status = 200, description = "limits, reality checks, time-out and self-exclusion", content_type = "text/html", body = String),
        (status = 303, description = "no session of this brand: to its login page"),
        (status = 403, description = "not a player of this brand", content_type = "text/html", body = String),
        (status = 404, description = "no such brand", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let brand = Brand::load(&state, &code).await?;
    let caller = brand.player(&req).await?;
    render(
        &state,
        &brand,
        &caller,
        StatusCode::OK,
        String::new(),
        String::new(),
    )
    .await
}

/// The answer after a protection form: the page with the change, or with the API's refusal.
async fn after(
    state: &web::Data<AppState>,
    brand: &Brand,
    caller: &WebCaller,
    answer: Result<Value, crate::http::ApiError>,
) -> Result<HttpResponse, WebError> {
    let t = crate::web::i18n::english();
    match answer {
        Ok(_) => {
            render(
                state,
                brand,
                caller,
                StatusCode::OK,
                t.get("site.protection.saved").to_owned(),
                String::new(),
            )
            .await
        }
        Err(e) => render(state, brand, caller, e.status, String::new(), e.message).await,
    }
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Set, lower, raise or remove one of the player's limits
#[utoipa::path(post, path = "/play/{code}/protection/limit", tag = "site",
    params(("code" = String, Path, description = "the brand's client code")),
    request_body(content = LimitFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "the page with the change (or the refusal in place)", content_type = "text/html", body = String),
        (status = 303, description = "no session of this brand: to its login page"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "CSRF or origin refused, or not a player of this brand", content_type = "text/html", body = String),
        (status = 404, description = "no such brand, or an unknown limit (the page again)", content_type = "text/html", body = String),
        (status = 422, description = "a value refused (the page again)", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn limit(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: web::Path<String>,
    form: Protected<LimitFields>,
) -> Result<HttpResponse, WebError> {
    let brand = Brand::load(&state, &code).await?;
    let Protected { caller, form } = form;
    let caller = brand.admit_player(caller, &req)?;
    let f = &form;
    let body = api::body(json!({ "value": optional(&f.value) }))?;
    let answer = api::answer(
        crate::http::protection::set_limit(
            state.clone(),
            caller.auth(),
            web::Path::from((caller.caller.user_id.clone(), f.name.trim().to_owned())),
            body,
        )
        .await,
    );
    after(&state, &brand, &caller, answer).await
}

/// Turn the player's reality checks on (every N minutes while playing) or off
#[utoipa::path(post, path = "/play/{code}/protection/reality-check", tag = "site",
    params(("code" = String, Path, description = "the brand's client code")),
    request_body(content = RealityFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "the page with the change (or the refusal in place)", content_type = "text/html", body = String),
        (status = 303, description = "no session of this brand: to its login page"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "CSRF or origin refused, or not a player of this brand", content_type = "text/html", body = String),
        (status = 404, description = "no such brand", content_type = "text/html", body = String),
        (status = 422, description = "minutes refused (the page again)", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn reality_check(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: web::Path<String>,
    form: Protected<RealityFields>,
) -> Result<HttpResponse, WebError> {
    let brand = Brand::load(&state, &code).await?;
    let Protected { caller, form } = form;
    let caller = brand.admit_player(caller, &req)?;
    let minutes = match optional(&form.minutes).map(|m| m.parse::<i64>()) {
        None => None,
        Some(Ok(m)) => Some(m),
        Some(Err(_)) => {
            let t = crate::web::i18n::english();
            return render(
                &state,
                &brand,
                &caller,
                StatusCode::UNPROCESSABLE_ENTITY,
                String::new(),
                t.get("site.protection.minutes_number").to_owned(),
            )
            .await;
        }
    };
    let body = api::body(json!({ "minutes": minutes }))?;
    let answer = api::answer(
        crate::http::protection::set_reality_check(
            state.clone(),
            caller.auth(),
            web::Path::from(caller.caller.user_id.clone()),
            body,
        )
        .await,
    );
    after(&state, &brand, &caller, answer).await
}

/// Take a time-out or self-exclude (cannot be lifted early; ends the session)
///
/// 303 to the login page, which tells the player why they cannot play; else the page again
/// with the refusal.
#[utoipa::path(post, path = "/play/{code}/protection/exclusion", tag = "site",
    params(("code" = String, Path, description = "the brand's client code")),
    request_body(content = ExclusionFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "not confirmed, or refused (the page again)", content_type = "text/html", body = String),
        (status = 303, description = "in force: the session ended, to the login page"),
        (status = 400, description = "a form body that does not parse", content_type = "text/html", body = String),
        (status = 403, description = "CSRF or origin refused, or not a player of this brand", content_type = "text/html", body = String),
        (status = 404, description = "no such brand", content_type = "text/html", body = String),
        (status = 409, description = "shorter than the one in force (the page again)", content_type = "text/html", body = String),
        (status = 422, description = "a length refused (the page again)", content_type = "text/html", body = String),
        (status = 429, description = "too many requests", content_type = "text/html", body = String),
        (status = 503, description = "storage unavailable", content_type = "text/html", body = String),
    ))]
pub async fn exclusion(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: web::Path<String>,
    form: Protected<ExclusionFields>,
) -> Result<HttpResponse, WebError> {
    let brand = Brand::load(&state, &code).await?;
    let Protected { caller, form } = form;
    let caller = brand.admit_player(caller, &req)?;
    let t = crate::web::i18n::english();
    let f = &form;
    if f.confirm != "on" {
        return render(
            &state,
            &brand,
            &caller,
            StatusCode::UNPROCESSABLE_ENTITY,
            String::new(),
            t.get("site.protection.confirm_needed").to_owned(),
        )
        .await;
    }
    let number = |s: &str| optional(s).and_then(|n| n.parse::<i64>().ok());
    let body = match f.kind.as_str() {
        "timeout" => json!({ "kind": "timeout", "hours": number(&f.hours) }),
        _ if f.permanent == "on" => json!({ "kind": "self_exclusion", "permanent": true }),
        _ => json!({ "kind": "self_exclusion", "months": number(&f.months) }),
    };
    let answer = api::answer(
        crate::http::protection::exclude(
            state.clone(),
            caller.auth(),
            web::Path::from(caller.caller.user_id.clone()),
            api::body(body)?,
        )
        .await,
    );
    match answer {
        // The exclusion revoked every session: the login page says why on the next attempt.
        Ok(_) => {
            let mut response = page::see_other(&brand.path("/login"));
            session::clear_cookies(&req, &mut response);
            Ok(response)
        }
        Err(e) => render(&state, &brand, &caller, e.status, String::new(), e.message).await,
    }
}
