//! `/graphql` (issue 17): the read model of clients, users, wallets, transactions, transfers,
//! game sessions, settlements and the reports. `POST` runs a query (same `Auth` as REST: 401 without a
//! token), `GET` serves an offline page to try queries. Served by this actix-web handler over
//! the async-graphql core crate (its actix integration would bring actix-web-actors).
//!
//! Authorization is REST's: a root lookup calls the REST handler's own check (`readable_user`,
//! `clients::may_read`, ...), and a `User` value exists only once `readable_user`'s rules passed
//! for it, so its relations need no second check. A refusal is a field error whose
//! `extensions.code` is the REST code (`not_found`, `forbidden`) and `extensions.status` the
//! REST status. Requests the schema refuses (parse, validation, depth, complexity) are 400.

mod loaders;
mod reports;
mod types;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use async_graphql::{EmptyMutation, EmptySubscription, ErrorExtensions, MergedObject, Schema};
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::Auth;
use super::openapi::{Invalid, Secured, Unavailable};
use crate::auth::Caller;
use crate::state::AppState;

/// The root query: one object per part, merged. A new part (reports, say) is a struct with
/// `#[Object]` fields added to this tuple.
#[derive(MergedObject, Default)]
pub struct Query(types::ReadQuery, reports::ReportQuery);

pub type HubSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// The schema with the given limits (built once per pair: a hub uses one).
pub fn schema(max_depth: usize, max_complexity: usize) -> HubSchema {
    static BUILT: std::sync::Mutex<Vec<((usize, usize), HubSchema)>> =
        std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, s)) = built
        .iter()
        .find(|(k, _)| *k == (max_depth, max_complexity))
    {
        return s.clone();
    }
    let s = Schema::build(Query::default(), EmptyMutation, EmptySubscription)
        .limit_depth(max_depth)
        .limit_complexity(max_complexity)
        .finish();
    built.push(((max_depth, max_complexity), s.clone()));
    s
}

/// The schema in SDL (`nashub graphql-schema`; checked in as `schema.graphql`).
pub fn sdl() -> String {
    Schema::build(Query::default(), EmptyMutation, EmptySubscription)
        .finish()
        .sdl()
}

/// What every resolver reads: the hub and the authenticated caller.
pub(crate) struct Ctx {
    pub state: AppState,
    pub caller: Caller,
}

/// A REST error as a GraphQL field error: same message, `extensions.code` and `.status`.
pub(crate) fn field_error(e: ApiError) -> async_graphql::Error {
    async_graphql::Error::new(e.message.clone()).extend_with(|_, ext| {
        ext.set("code", e.code);
        ext.set("status", e.status.as_u16());
    })
}

/// `?` on anything that becomes an [`ApiError`], keeping its code (async-graphql's own `From`
/// would keep only the text).
pub(crate) trait OrField<T> {
    fn field(self) -> async_graphql::Result<T>;
}

impl<T, E: Into<ApiError>> OrField<T> for Result<T, E> {
    fn field(self) -> async_graphql::Result<T> {
        self.map_err(|e| field_error(e.into()))
    }
}

/// A GraphQL request as sent in the body (`extensions` are accepted and ignored).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphqlRequest {
    /// The query document.
    query: String,
    /// Which operation of the document to run.
    operation_name: Option<String>,
    /// The operation's variables.
    #[schema(value_type = Option<Object>)]
    variables: Option<serde_json::Value>,
}

/// Run a GraphQL query (the read model)
///
/// Field errors answer 200 with `errors[].extensions.code` as in REST (`not_found`,
/// `forbidden`); a query refused before it runs (syntax, unknown field, too deep:
/// `query_too_deep`, too complex: `query_too_complex`) answers 400 with `errors` and no data.
#[utoipa::path(post, path = "/graphql", tag = "graphql", security(("bearer" = [])),
    request_body = GraphqlRequest,
    responses(
        (status = 200, description = "`{data, errors?}`", body = Object),
        // Not `BadBody`: its 400 is `{error}` alone, and this one has two shapes.
        (status = 400, description = "the query was refused before it ran (`{data: null, errors}`), or the body is not JSON (`{error}`, invalid_json)", body = Object),
        (status = 408, description = "the body did not arrive in time or fast enough (request_timeout)", body = ErrorBody),
        (status = 413, description = "request body too large (payload_too_large)", body = ErrorBody),
        (status = 415, description = "body not sent as application/json (unsupported_media_type)", body = ErrorBody),
        Secured, Invalid, Unavailable,
    ))]
pub async fn execute(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    body: web::Json<GraphqlRequest>,
) -> HttpResponse {
    let body = body.into_inner();
    let state = state.get_ref().clone();
    let settings = &state.config.settings;
    let schema = schema(settings.graphql_max_depth, settings.graphql_max_complexity);
    let mut request = async_graphql::Request::new(body.query);
    if let Some(name) = body.operation_name {
        request = request.operation_name(name);
    }
    if let Some(vars) = body.variables {
        request = request.variables(async_graphql::Variables::from_json(vars));
    }
    let request = request
        .data(loaders::Loaders::new(&state.store))
        .data(Ctx { state, caller });
    let mut response = schema.execute(request).await;
    // Errors with no path are the request's own (it never ran): a client fault.
    let refused = !response.errors.is_empty() && response.errors.iter().all(|e| e.path.is_empty());
    if refused {
        for e in &mut response.errors {
            let code = if e.message.contains("nested too deep") {
                "query_too_deep"
            } else if e.message.contains("too complex") {
                "query_too_complex"
            } else {
                "invalid_query"
            };
            metrics::counter!(crate::metrics::CLIENT_ERRORS, "code" => code).increment(1);
            e.extensions
                .get_or_insert_with(Default::default)
                .set("code", code);
        }
    }
    let status = if refused {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    HttpResponse::build(status).json(&response)
}

/// A page to try queries (offline)
///
/// A text area, a token field and a run button, posting to `/graphql`; nothing is loaded from
/// another host.
#[utoipa::path(get, path = "/graphql", tag = "graphql", responses(
    (status = 200, description = "success", body = String, content_type = "text/html"),
))]
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
        ))
        .body(include_str!("page.html"))
}

#[cfg(test)]
mod tests {
    /// `schema.graphql` is what the code declares; regenerate it with
    /// `cargo run -q -- graphql-schema > schema.graphql`.
    #[test]
    fn checked_in_schema_matches() {
        let checked_in = include_str!("../../../schema.graphql");
        assert!(
            checked_in == super::sdl(),
            "schema.graphql is stale: cargo run -q -- graphql-schema > schema.graphql"
        );
    }
}
