//! Pages act through the API's own handlers (same checks, reach, audit, idempotency): a page
//! builds the handler's JSON body, calls the handler with the session's caller, and reads the
//! JSON answer back. Nothing money- or rights-related is decided in `web`.

use actix_web::HttpResponse;
use actix_web::body::MessageBody;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::http::ApiError;

/// A handler's JSON body type from a `json!` value (the API types' fields are private; their
/// `Deserialize` is the public way in, with the API's own validation).
pub fn body<T: DeserializeOwned>(value: Value) -> Result<actix_web::web::Json<T>, ApiError> {
    serde_json::from_value(value)
        .map(actix_web::web::Json)
        .map_err(|e| ApiError::validation(e.to_string()))
}

/// The JSON of a handler's answer (`Value::Null` for 204), or its error.
pub fn answer(result: Result<HttpResponse, ApiError>) -> Result<Value, ApiError> {
    let response = result?;
    let bytes = response
        .into_body()
        .try_into_bytes()
        .map_err(|_| ApiError::internal())?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|_| ApiError::internal())
}
