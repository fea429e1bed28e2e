//! The pages in `/openapi.json` (HTML answers as `text/html`, so the API fuzzer knows every
//! status they give): derived by utoipa like the API's, merged into the API's document by
//! `startup` (`http::openapi::FullDocument`).

use serde_json::Value;
use utoipa::OpenApi;

use super::{assets, console};

#[derive(OpenApi)]
#[openapi(paths(
    assets::serve,
    console::login::form,
    console::login::submit,
    console::login::second_step,
    console::login::logout,
    console::home::page,
    console::users::list,
    console::users::create,
    console::users::show,
    console::users::money,
    console::users::status,
    console::users::csv,
    console::payments::queue,
    console::payments::approve,
    console::payments::reject,
    console::platform::clients,
    console::platform::create_client,
    console::platform::audit,
    console::notifications::form,
    console::notifications::send,
))]
struct WebDoc;

/// The pages' part of the document.
pub fn document() -> Value {
    serde_json::to_value(WebDoc::openapi()).expect("the pages' OpenAPI document serializes")
}

/// The API's document with the pages' paths (and tags) added.
pub fn merged(api: &Value) -> Value {
    let mut full = api.clone();
    let pages = document();
    if let (Some(paths), Some(extra)) = (
        full.get_mut("paths").and_then(Value::as_object_mut),
        pages.get("paths").and_then(Value::as_object),
    ) {
        for (path, item) in extra {
            let mut item = item.clone();
            // The pages take the session cookie, not a bearer token: as the API's public
            // operations, each says `security: []` (tools and tests read the field).
            for op in item
                .as_object_mut()
                .into_iter()
                .flat_map(|o| o.values_mut())
            {
                if let Some(op) = op.as_object_mut() {
                    op.entry("security")
                        .or_insert_with(|| Value::Array(Vec::new()));
                }
            }
            paths.insert(path.clone(), item);
        }
    }
    full
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every page routed is documented and nothing else is.
    #[test]
    fn document_and_router_agree() {
        let routed: BTreeSet<(String, String)> = crate::web::route_table()
            .into_iter()
            .map(|(m, p)| (m.to_owned(), p))
            .collect();
        let doc = document();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.clone(), path.clone()))
            })
            .collect();
        assert_eq!(routed, documented);
    }

    #[test]
    fn merging_keeps_the_api_and_adds_the_pages() {
        let api = crate::http::openapi::document();
        let full = merged(api);
        let paths = full["paths"].as_object().unwrap();
        assert!(paths.contains_key("/api/v1/auth/login"));
        assert!(paths.contains_key("/console/login"));
        // Every operation names its security, as the API's do.
        for (path, ops) in paths {
            for (method, op) in ops.as_object().unwrap() {
                assert!(op["security"].is_array(), "{method} {path}");
            }
        }
    }
}
