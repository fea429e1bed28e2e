//! The pages in `/openapi.json` (HTML answers as `text/html`, so the API fuzzer knows every
//! status they give): derived by utoipa like the API's, merged into the API's document by
//! `startup` (`http::openapi::FullDocument`).

use serde_json::Value;
use utoipa::OpenApi;

use super::{assets, console, site};

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
    console::client::own,
    console::client::show,
    console::client::settings,
    console::client::branding,
    console::client::providers,
    console::client::credentials,
    console::ops::providers,
    console::ops::system,
    console::permissions::show,
    console::permissions::change,
    console::settlements::list,
    console::settlements::settle,
    console::settlements::show,
    console::settlements::line_step,
    console::notifications::form,
    console::notifications::send,
    // The player site (issue 27).
    site::host::root,
    site::lobby::page,
    site::brand::stylesheet,
    site::login::form,
    site::login::submit,
    site::login::logout,
    site::history::history,
    site::history::notifications,
    site::play::game,
    site::play::transfer_in,
    site::play::transfer_out,
    site::play::launch,
    site::play::transfer_state,
    site::cashier::page,
    site::cashier::deposit,
    site::cashier::withdraw,
    site::cashier::payment,
    site::protection::page,
    site::protection::limit,
    site::protection::reality_check,
    site::protection::exclusion,
    site::shop::page,
    site::shop::credit,
    site::shop::debit,
))]
struct WebDoc;

/// The pages' part of the document.
pub fn document() -> Value {
    let mut doc =
        serde_json::to_value(WebDoc::openapi()).expect("the pages' OpenAPI document serializes");
    mark_cookie_auth(&mut doc);
    doc
}

/// Pages authenticate with the session cookie, never the bearer token: `security: []` on each
/// operation, as the API's document marks its operations without a token (clients and the
/// token check of `tests/api/authz.rs` read it).
fn mark_cookie_auth(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for ops in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in ops.values_mut().filter_map(Value::as_object_mut) {
            op.entry("security")
                .or_insert_with(|| Value::Array(Vec::new()));
        }
    }
}

/// The API's document with the pages' paths (and tags) added.
pub fn merged(api: &Value) -> Value {
    let mut full = api.clone();
    let pages = document();
    if let (Some(paths), Some(extra)) = (
        full.get_mut("paths").and_then(Value::as_object_mut),
        pages.get("paths").and_then(Value::as_object),
    ) {
        // `document()` already marks each page operation `security: []`.
        for (path, item) in extra {
            paths.insert(path.clone(), item.clone());
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
