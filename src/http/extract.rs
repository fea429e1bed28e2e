//! Request extractors: the authenticated caller, the idempotency key, and JSON/query/path
//! configuration that turns every parse failure into an [`ApiError`].

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use super::error::ApiError;
use crate::auth::Caller;
use crate::state::AppState;

/// Largest JSON body accepted by any endpoint.
pub const JSON_BODY_MAX_BYTES: usize = 64 * 1024;

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_BODY_MAX_BYTES)
        .error_handler(|err, _req| super::error::json_error(err).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| query_error(err).into())
}

/// Any query string that does not parse: 422 with the parser's words.
fn query_error(err: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::validation(err.to_string())
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err, _req| ApiError::validation(err.to_string()).into())
}

fn state(req: &HttpRequest) -> AppState {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
        .get_ref()
        .clone()
}

/// `Authorization: Bearer <access token>`, verified and with a live session.
pub struct Auth(pub Caller);

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .map(|v| v.to_str().map(str::to_owned));
        let state = state(req);
        let conn = req
            .conn_data::<std::sync::Arc<crate::admission::Conn>>()
            .cloned();
        Box::pin(async move {
            let token = match header {
                None => {
                    return Err(ApiError::unauthorized(
                        "unauthorized",
                        "send Authorization: Bearer <token>",
                    ));
                }
                Some(Err(_)) => {
                    return Err(ApiError::unauthorized(
                        "invalid_token",
                        "unreadable Authorization header",
                    ));
                }
                Some(Ok(value)) => match value.strip_prefix("Bearer ") {
                    Some(token) => token.trim().to_owned(),
                    None => {
                        return Err(ApiError::unauthorized(
                            "invalid_token",
                            "expected a Bearer token",
                        ));
                    }
                },
            };
            let caller = state.auth.authenticate(&token).await?;
            if let Some(conn) = conn {
                conn.mark_authenticated();
            }
            if let Err(wait) = state.limiter.check(&caller.user_id) {
                return Err(ApiError::too_many(
                    "rate_limited",
                    "too many requests; slow down",
                    wait.as_secs_f64().ceil() as u64,
                ));
            }
            Ok(Auth(caller))
        })
    }
}

/// The `Idempotency-Key` header, when sent and valid. Every money-moving request must carry a
/// key, as this header or as an `idempotency_key` body field (DESIGN section 4): the handler
/// settles which with [`IdempotencyKey::or_body`] once the body is parsed.
pub struct IdempotencyKey(Option<String>);

impl IdempotencyKey {
    /// No header: the key comes from the body's `idempotency_key` (the web pages' money forms,
    /// whose key is generated when the form is rendered).
    pub fn absent() -> Self {
        Self(None)
    }

    /// The request's key: the header, the body field, or both if they agree (422 otherwise);
    /// 400 `idempotency_key_required` with neither. The body field is not part of the request
    /// hash (that covers what the request does), so a retry may move the key between the two.
    pub fn or_body(self, body: Option<String>) -> Result<String, ApiError> {
        if let Some(key) = &body {
            crate::domain::names::idempotency_key(key)
                .map_err(|m| ApiError::bad_request("invalid_idempotency_key", m))?;
        }
        match (self.0, body) {
            (Some(header), Some(field)) if header != field => Err(ApiError::validation(
                "the Idempotency-Key header and the idempotency_key field differ",
            )),
            (Some(key), _) | (None, Some(key)) => Ok(key),
            (None, None) => Err(ApiError::bad_request(
                "idempotency_key_required",
                "send an Idempotency-Key header (or an idempotency_key field)",
            )),
        }
    }
}

/// The header as `/openapi.json` shows it on every money-moving operation.
impl utoipa::IntoParams for IdempotencyKey {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ObjectBuilder, Required, Type};
        // Not `required`: the body's `idempotency_key` field may carry it instead (one of the
        // two must, else 400 `idempotency_key_required`).
        vec![
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "required unless the body has idempotency_key; scoped per client and caller",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(128))
                        .pattern(Some(IDEMPOTENCY_KEY_PATTERN)),
                ))
                .build(),
        ]
    }
}

/// 1 to 128 printable ASCII characters (`domain::names::idempotency_key`).
const IDEMPOTENCY_KEY_PATTERN: &str = "^[\\x21-\\x7E]+$";

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.headers().get("Idempotency-Key").map(|v| v.to_str()) {
            None => Ok(IdempotencyKey(None)),
            Some(Err(_)) => Err(ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be ASCII",
            )),
            Some(Ok(key)) => crate::domain::names::idempotency_key(key)
                .map(|()| IdempotencyKey(Some(key.to_owned())))
                .map_err(|m| ApiError::bad_request("invalid_idempotency_key", m)),
        };
        std::future::ready(result)
    }
}

/// A page's `cursor` as this server issued it (a number), or a 422.
pub fn numeric_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::validation("cursor is not one this server issued"))
        })
        .transpose()
}

/// Default and largest page size of every listing.
const PAGE_DEFAULT: i64 = 50;
const PAGE_MAX: i64 = 200;

/// A listing's `cursor` (the previous page's `next_cursor`) and `limit` query parameters. As an
/// extractor it is the whole query (unknown parameters are a 422, as with `web::Query`); a
/// listing with filters of its own keeps both fields in its query struct and builds one with
/// [`Page::new`]. The limit is checked by [`Page::limit`], where the handler wants it, so the
/// order of a handler's answers (403 before 422, say) stays its own.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<i64>,
}

impl Page {
    pub fn new(cursor: Option<String>, limit: Option<i64>) -> Self {
        Page { cursor, limit }
    }

    /// `limit` in 1..=200, default 50; else 422.
    pub fn limit(&self) -> Result<Limit, ApiError> {
        let limit = self.limit.unwrap_or(PAGE_DEFAULT);
        if (1..=PAGE_MAX).contains(&limit) {
            Ok(Limit(limit))
        } else {
            Err(ApiError::validation("limit must be between 1 and 200"))
        }
    }

    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// The cursor as a number this server issued, or a 422.
    pub fn numeric_cursor(&self) -> Result<Option<i64>, ApiError> {
        numeric_cursor(self.cursor())
    }
}

impl FromRequest for Page {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            web::Query::<Page>::from_query(req.query_string())
                .map(web::Query::into_inner)
                .map_err(query_error),
        )
    }
}

/// A checked page size: fetch one more row than it, then [`Limit::next_cursor`] cuts the page.
#[derive(Debug, Clone, Copy)]
pub struct Limit(i64);

impl Limit {
    pub fn get(self) -> i64 {
        self.0
    }

    /// How many rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch(self) -> i64 {
        self.0 + 1
    }

    /// The page's body `{"items", "next_cursor"}` from `rows` fetched with [`Limit::fetch`]:
    /// each shown by `view`, the cursor made by `cursor` from the page's last row.
    pub fn page<T, V>(
        self,
        mut rows: Vec<T>,
        cursor: impl FnOnce(&T) -> String,
        view: impl FnMut(&T) -> V,
    ) -> super::views::Page<V> {
        let next = self.next_cursor(&mut rows, cursor);
        super::views::page(rows.iter().map(view).collect(), next)
    }

    /// Cuts `rows` (fetched with [`Limit::fetch`]) to the page; the next page's cursor, made by
    /// `cursor` from the page's last row, when more rows follow.
    fn next_cursor<T>(
        self,
        rows: &mut Vec<T>,
        cursor: impl FnOnce(&T) -> String,
    ) -> Option<String> {
        if rows.len() as i64 > self.0 {
            rows.truncate(self.0 as usize);
            rows.last().map(cursor)
        } else {
            None
        }
    }
}
