//! `GET /docs`: Swagger UI over `/openapi.json`, served from the binary (utoipa-swagger-ui's
//! vendored copy; no CDN, works offline). `/docs` is our own small index page, so it can link
//! the raw document; the Swagger UI files (scripts, styles, and its configuration
//! `swagger-initializer.js`, which points at `/openapi.json`) are under `/docs/{file}`.

use std::sync::{Arc, OnceLock};

use actix_web::http::header::{CONTENT_ENCODING, ContentEncoding};
use actix_web::{HttpResponse, web};
use utoipa_swagger_ui::Config;

use super::error::ApiError;

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nashub API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="stylesheet" href="/docs/index.css">
</head><body>
<noscript>This page needs JavaScript; the document it shows is <a href="/openapi.json">/openapi.json</a>.</noscript>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-ui-standalone-preset.js"></script>
<script src="/docs/swagger-initializer.js"></script>
</body></html>
"#;

/// Swagger UI's settings: our document, and no online validator (its default would send the
/// document to a third-party host).
fn config() -> Arc<Config<'static>> {
    static CONFIG: OnceLock<Arc<Config<'static>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| Arc::new(Config::new(["/openapi.json"]).validator_url("none")))
        .clone()
}

/// Browsable API documentation (offline)
#[utoipa::path(get, path = "/docs", tag = "ops", responses(
    (status = 200, description = "success", body = String, content_type = "text/html"),
))]
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}

/// Swagger UI's files for `/docs` (scripts, styles, its configuration)
#[utoipa::path(get, path = "/docs/{file}", tag = "ops", responses(
    (status = 200, description = "success", body = String, content_type = "text/plain"),
    (status = 404, description = "no such file", body = crate::http::error::ErrorBody),
))]
pub async fn asset(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let served = utoipa_swagger_ui::serve(&file, config()).map_err(|e| {
        tracing::error!(error = %e, "swagger ui file");
        ApiError::internal()
    })?;
    let file = served.ok_or_else(|| ApiError::not_found("file"))?;
    let mut response = HttpResponse::Ok();
    response.content_type(file.content_type);
    if file.gzpipped {
        response.insert_header((CONTENT_ENCODING, ContentEncoding::Gzip));
    }
    Ok(response.body(file.bytes.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page loads only files served here, and Swagger UI reads our document with no online
    /// validator.
    #[test]
    fn swagger_ui_is_served_from_the_binary() {
        for src in PAGE.split("\"/docs/").skip(1) {
            let file = src.split('"').next().unwrap();
            assert!(
                utoipa_swagger_ui::serve(file, config()).unwrap().is_some(),
                "{file} is not in the vendored Swagger UI"
            );
        }
        let init = utoipa_swagger_ui::serve("swagger-initializer.js", config())
            .unwrap()
            .unwrap();
        let init = String::from_utf8(init.bytes.into_owned()).unwrap();
        assert!(init.contains("\"url\": \"/openapi.json\""), "{init}");
        assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
        assert!(!PAGE.contains("https://"));
    }
}
