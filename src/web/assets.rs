//! The pages' CSS and JS, embedded in the binary and served under `/assets/<hash>/<file>`:
//! the hash of all assets is in the path, so they are cached for a year and a new build's
//! pages name new URLs.

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};

/// `(file name, content type, bytes)`; add a line per new asset under `static/web/`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/web/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/web/app.js"),
    ),
    // The player site (issue 27).
    (
        "site.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/web/site/site.css"),
    ),
    (
        "site.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/web/site/site.js"),
    ),
];

fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hash = Sha256::new();
        for (name, _, bytes) in FILES {
            hash.update(name.as_bytes());
            hash.update(bytes);
        }
        hex::encode(&hash.finalize()[..6])
    })
}

/// `/assets/<hash>`: what templates put before a file name (`{{ chrome.assets }}/app.js`).
pub fn prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| format!("/assets/{}", version()))
}

/// An embedded asset
#[utoipa::path(get, path = "/assets/{version}/{file}", tag = "web",
    params(("version" = String, Path, description = "the assets' hash, as pages name it"),
           ("file" = String, Path, description = "file name")),
    responses(
        (status = 200, description = "the file (CSS or JavaScript), cached for a year", content(
            (String = "text/css"), (String = "text/javascript"))),
        (status = 404, description = "no such asset (or an old build's hash)", content_type = "text/plain", body = String),
    ))]
pub async fn serve(path: web::Path<(String, String)>) -> HttpResponse {
    let (asked_version, file) = path.into_inner();
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) if asked_version == version() => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header(("Cache-Control", "public, max-age=31536000, immutable"))
            .body(*bytes),
        _ => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("no such asset"),
    }
}
