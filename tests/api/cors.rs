//! CORS (issue 21): the platform's origins and each client's `allowed_origins` may call the API
//! from a browser; preflights are answered, `*` and credentials are never allowed, other
//! origins get no CORS headers. HSTS when configured.

use std::time::Duration;

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestHub, Tree};

const CONSOLE: &str = "https://console.example.com";
const BRAND: &str = "https://play.brand.example:8443";

async fn preflight(base: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{base}/api/v1/users"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn cors_allows_the_platform_and_each_clients_origins(backend: Backend) {
    let hub = TestHub::start_with(backend, |s| {
        s.cors_origins = format!("{CONSOLE}, http://localhost:5173");
        s.hsts = true;
    })
    .await;
    let api = hub.api();
    let t = Tree::create(&api).await;

    let ok = preflight(&hub.base, CONSOLE).await;
    assert_eq!(ok.status().as_u16(), 204);
    assert_eq!(header(&ok, "access-control-allow-origin"), Some(CONSOLE));
    assert!(
        header(&ok, "access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert!(
        header(&ok, "access-control-allow-headers")
            .unwrap()
            .contains("authorization")
    );
    assert_eq!(header(&ok, "access-control-allow-credentials"), None);
    assert!(header(&ok, "vary").unwrap().contains("Origin"));

    let refused = preflight(&hub.base, "https://evil.example").await;
    assert_eq!(refused.status().as_u16(), 403);
    assert_eq!(header(&refused, "access-control-allow-origin"), None);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "origin_not_allowed");

    // A client lists its own site; every node honours it within about a second.
    let path = format!("/api/v1/clients/{}/settings", t.client_id);
    api.patch(
        &t.super_token,
        &path,
        json!({ "allowed_origins": ["ftp://x.example"] }),
    )
    .await
    .error(422, "validation_error");
    api.patch(
        &t.super_token,
        &path,
        json!({ "allowed_origins": ["https://brand.example/path"] }),
    )
    .await
    .error(422, "validation_error");
    let set = api
        .patch(
            &t.super_token,
            &path,
            json!({ "allowed_origins": ["HTTPS://Play.Brand.Example:8443"] }),
        )
        .await
        .ok();
    assert_eq!(set["allowed_origins"], json!([BRAND]));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let res = preflight(&hub.base, BRAND).await;
        if res.status().as_u16() == 204 {
            assert_eq!(header(&res, "access-control-allow-origin"), Some(BRAND));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "brand origin never allowed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Actual requests: the allowed origin is named, never `*`; others get nothing.
    let get = |origin: &'static str| {
        reqwest::Client::new()
            .get(format!("{}/health", hub.base))
            .header("Origin", origin)
            .send()
    };
    let res = get(BRAND).await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(BRAND));
    assert!(
        header(&res, "access-control-expose-headers")
            .unwrap()
            .contains("x-request-id")
    );
    assert!(
        header(&res, "strict-transport-security")
            .unwrap()
            .starts_with("max-age=")
    );
    let res = get("https://evil.example").await.unwrap();
    assert_eq!(header(&res, "access-control-allow-origin"), None);
}

backend_tests!(cors_allows_the_platform_and_each_clients_origins);
