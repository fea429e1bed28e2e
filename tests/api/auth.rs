//! Sessions: login, refresh rotation with reuse detection, logout.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{ADMIN_PASSWORD, Backend, PASSWORD, TestHub, Tree};

async fn refresh_rotates_and_logout_ends_the_session(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;

    let login = api.login(Some(&tree.code), "player1", PASSWORD).await;
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["expires_in"], 900);
    let access = login["access_token"].as_str().unwrap().to_owned();
    let first_refresh = login["refresh_token"].as_str().unwrap().to_owned();

    let refresh = |token: String| {
        let api = api.clone();
        async move {
            api.send(
                api.http
                    .post(format!("{}/api/v1/auth/refresh", api.base))
                    .json(&json!({ "refresh_token": token })),
            )
            .await
        }
    };
    let rotated = refresh(first_refresh.clone()).await.ok();
    let second_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh);
    let new_access = rotated["access_token"].as_str().unwrap().to_owned();
    api.get(
        &new_access,
        &format!("/api/v1/users/{}/wallet", tree.player_id),
    )
    .await
    .ok();

    // Reusing the rotated token revokes the family: the newer token and the session die too.
    refresh(first_refresh)
        .await
        .error(401, "invalid_refresh_token");
    refresh(second_refresh)
        .await
        .error(401, "invalid_refresh_token");
    api.get(
        &new_access,
        &format!("/api/v1/users/{}/wallet", tree.player_id),
    )
    .await
    .error(401, "session_ended");
    api.get(&access, &format!("/api/v1/users/{}/wallet", tree.player_id))
        .await
        .error(401, "session_ended");

    // Logout ends the session at once; other sessions live on.
    let a = api.login(Some(&tree.code), "player1", PASSWORD).await;
    let b = api.token(Some(&tree.code), "player1").await;
    let a_token = a["access_token"].as_str().unwrap();
    let out = api
        .send(
            api.http
                .post(format!("{}/api/v1/auth/logout", api.base))
                .bearer_auth(a_token),
        )
        .await;
    assert_eq!(out.status, 204);
    api.get(a_token, &format!("/api/v1/users/{}/wallet", tree.player_id))
        .await
        .error(401, "session_ended");
    refresh(a["refresh_token"].as_str().unwrap().to_owned())
        .await
        .error(401, "invalid_refresh_token");
    api.get(&b, &format!("/api/v1/users/{}/wallet", tree.player_id))
        .await
        .ok();
}

async fn wrong_credentials_are_refused_alike(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let attempt = |client: Option<&str>, user: &str, password: &str| {
        let mut body = json!({ "username": user, "password": password });
        if let Some(c) = client {
            body["client"] = json!(c);
        }
        let api = api.clone();
        async move {
            api.send(
                api.http
                    .post(format!("{}/api/v1/auth/login", api.base))
                    .json(&body),
            )
            .await
        }
    };
    attempt(Some(&tree.code), "player1", "wrong-password")
        .await
        .error(401, "invalid_credentials");
    attempt(Some(&tree.code), "nobody", PASSWORD)
        .await
        .error(401, "invalid_credentials");
    attempt(Some("no-such-client"), "player1", PASSWORD)
        .await
        .error(401, "invalid_credentials");
    // Platform and client users live in separate scopes.
    attempt(None, "player1", PASSWORD)
        .await
        .error(401, "invalid_credentials");
    attempt(Some(&tree.code), "admin", ADMIN_PASSWORD)
        .await
        .error(401, "invalid_credentials");
    // Usernames are case-insensitive.
    assert!(attempt(Some(&tree.code), "Player1", PASSWORD).await.ok()["access_token"].is_string());
    // A suspended client's users cannot log in.
    api.send(
        api.http
            .patch(format!("{}/api/v1/clients/{}", api.base, tree.client_id))
            .bearer_auth(&tree.super_token)
            .json(&json!({ "status": "suspended" })),
    )
    .await
    .ok();
    attempt(Some(&tree.code), "player1", PASSWORD)
        .await
        .error(401, "invalid_credentials");
}

backend_tests!(
    refresh_rotates_and_logout_ends_the_session,
    wrong_credentials_are_refused_alike
);
