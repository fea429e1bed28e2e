//! Every kind of bad token is refused: `alg: none`, wrong signature, another algorithm,
//! expired, wrong audience, issuer or type, a refresh token as access token, a reused refresh
//! token, a token after logout and after suspension.

use base64::Engine;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Api, Backend, PASSWORD, TestHub, Tree, WsClient};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn jwt_secret(hub: &TestHub) -> Vec<u8> {
    let text = std::fs::read_to_string(hub.infra.data_dir.path().join("jwt_secret")).unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap()
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

fn sign(claims: &Value, secret: &[u8], alg: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

async fn refused(api: &Api, token: &str, path: &str, code: &str) {
    api.get(token, path).await.error(401, code);
}

async fn bad_tokens_are_refused(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let path = format!("/api/v1/users/{}", tree.player_id);
    let secret = jwt_secret(&hub);
    let login = api.login(Some(&tree.code), "player1", PASSWORD).await;
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    let claims = claims_of(&access);

    // Control: the same claims re-signed with the right key and algorithm work.
    let same = sign(&claims, &secret, jsonwebtoken::Algorithm::HS256);
    api.get(&same, &path).await.ok();

    let none = format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        access.split('.').nth(1).unwrap()
    );
    refused(&api, &none, &path, "invalid_token").await;
    refused(
        &api,
        &sign(&claims, &[9_u8; 32], jsonwebtoken::Algorithm::HS256),
        &path,
        "invalid_token",
    )
    .await;
    refused(
        &api,
        &sign(&claims, &secret, jsonwebtoken::Algorithm::HS512),
        &path,
        "invalid_token",
    )
    .await;
    let mut tampered = claims.clone();
    tampered["role"] = json!("super_admin");
    let forged = format!(
        "{}.{}.{}",
        access.split('.').next().unwrap(),
        B64.encode(tampered.to_string()),
        access.split('.').nth(2).unwrap()
    );
    refused(&api, &forged, &path, "invalid_token").await;

    let now = chrono::Utc::now().timestamp();
    for (field, value, code) in [
        ("exp", json!(now - 3600), "token_expired"),
        ("aud", json!("another-service"), "invalid_token"),
        ("iss", json!("someone-else"), "invalid_token"),
        ("typ", json!("refresh"), "invalid_token"),
    ] {
        let mut c = claims.clone();
        c[field] = value;
        refused(
            &api,
            &sign(&c, &secret, jsonwebtoken::Algorithm::HS256),
            &path,
            code,
        )
        .await;
    }
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    refused(
        &api,
        &sign(&no_exp, &secret, jsonwebtoken::Algorithm::HS256),
        &path,
        "invalid_token",
    )
    .await;
    // An unknown session id, validly signed.
    let mut ghost = claims.clone();
    ghost["sid"] = json!("no-such-session");
    refused(
        &api,
        &sign(&ghost, &secret, jsonwebtoken::Algorithm::HS256),
        &path,
        "session_ended",
    )
    .await;
    // The refresh token is not an access token.
    refused(&api, &refresh, &path, "invalid_token").await;
    api.send(api.http.get(format!("{}{path}", api.base)))
        .await
        .error(401, "unauthorized");

    // A reused refresh token ends the family.
    let refresh_call = |token: &str| {
        api.send(
            api.http
                .post(format!("{}/api/v1/auth/refresh", api.base))
                .json(&json!({ "refresh_token": token })),
        )
    };
    let rotated = refresh_call(&refresh).await.ok();
    refresh_call(&refresh)
        .await
        .error(401, "invalid_refresh_token");
    refused(&api, &access, &path, "session_ended").await;
    refused(
        &api,
        rotated["access_token"].as_str().unwrap(),
        &path,
        "session_ended",
    )
    .await;

    // After logout.
    let token = api.token(Some(&tree.code), "player1").await;
    let out = api
        .send(
            api.http
                .post(format!("{}/api/v1/auth/logout", api.base))
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(out.status, 204);
    refused(&api, &token, &path, "session_ended").await;
}

/// Suspending a user ends all its sessions at once; reactivating lets it log in again.
async fn suspension_ends_every_session(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let path = format!("/api/v1/users/{}", tree.player_id);
    let first = api.login(Some(&tree.code), "player1", PASSWORD).await;
    let second = api.token(Some(&tree.code), "player1").await;
    api.get(&second, &path).await.ok();
    let mut socket = WsClient::connect(&hub.ws_url(&second)).await;
    socket.next_of("subscribed").await;

    let suspended = api
        .post(&tree.agent_token, &format!("{path}/suspend"), json!({}))
        .await
        .ok();
    assert_eq!(suspended["status"], "suspended");
    for token in [
        first["access_token"].as_str().unwrap(),
        &second,
        &tree.player_token,
    ] {
        refused(&api, token, &path, "session_ended").await;
    }
    // An open websocket of the suspended user is closed too (token invalid).
    let closed = loop {
        let frame = socket.next().await;
        if frame["type"] == "closed" {
            break frame;
        }
    };
    assert_eq!(closed["code"], 4001, "{closed}");
    api.send(
        api.http
            .post(format!("{}/api/v1/auth/refresh", api.base))
            .json(&json!({ "refresh_token": first["refresh_token"] })),
    )
    .await
    .error(401, "invalid_refresh_token");
    api.try_login(Some(&tree.code), "player1", PASSWORD)
        .await
        .error(401, "invalid_credentials");

    api.post(&tree.agent_token, &format!("{path}/reactivate"), json!({}))
        .await
        .ok();
    let back = api.token(Some(&tree.code), "player1").await;
    api.get(&back, &path).await.ok();
    // Old sessions stay dead.
    refused(&api, &second, &path, "session_ended").await;

    // Closing is final.
    api.post(&tree.admin_token, &format!("{path}/close"), json!({}))
        .await
        .ok();
    refused(&api, &back, &path, "session_ended").await;
    api.post(&tree.admin_token, &format!("{path}/reactivate"), json!({}))
        .await
        .error(409, "user_closed");

    // Suspending a client ends its users' sessions too.
    api.get(
        &tree.agent_token,
        &format!("/api/v1/users/{}", tree.agent_id),
    )
    .await
    .ok();
    api.patch(
        &tree.super_token,
        &format!("/api/v1/clients/{}", tree.client_id),
        json!({ "status": "suspended" }),
    )
    .await
    .ok();
    refused(
        &api,
        &tree.agent_token,
        &format!("/api/v1/users/{}", tree.agent_id),
        "session_ended",
    )
    .await;
}

/// A leaked signing key alone mints nothing: a token must name a session of its own subject,
/// and role, client and permissions come from the server's records, not the claims.
async fn signed_claims_cannot_outrank_their_session(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let secret = jwt_secret(&hub);
    let sign256 = |c: &Value| sign(c, &secret, jsonwebtoken::Algorithm::HS256);
    let player = claims_of(&tree.player_token);
    let super_id: String = hub
        .infra
        .query_one("SELECT id FROM users WHERE role = 'super_admin' LIMIT 1")
        .await;
    let clients = "/api/v1/clients";
    api.get(&tree.super_token, clients).await.ok();

    // The player's session, claiming to be the super admin, or the super admin's role.
    let mut as_super = player.clone();
    as_super["sub"] = json!(super_id);
    as_super.as_object_mut().unwrap().remove("cid");
    as_super["role"] = json!("super_admin");
    refused(&api, &sign256(&as_super), clients, "session_ended").await;
    let mut role_only = player.clone();
    role_only["role"] = json!("super_admin");
    refused(&api, &sign256(&role_only), clients, "session_ended").await;
    let mut other_client = player.clone();
    other_client["cid"] = json!("another-client");
    refused(&api, &sign256(&other_client), clients, "session_ended").await;
    // The agent's identity on the player's session.
    let mut other_sub = player.clone();
    other_sub["sub"] = json!(tree.agent_id);
    other_sub["role"] = json!("agent");
    refused(
        &api,
        &sign256(&other_sub),
        &format!("/api/v1/users/{}", tree.agent_id),
        "session_ended",
    )
    .await;
    // Extra permissions in the claim grant nothing: the server's list applies.
    let mut perms = player.clone();
    perms["perms"] = json!(["wallets.cash", "users.manage", "clients.manage"]);
    let token = sign256(&perms);
    api.get(&token, &format!("/api/v1/users/{}", tree.player_id))
        .await
        .ok();
    api.post_key(
        &token,
        &format!("/api/v1/users/{}/wallet/deposit", tree.player_id),
        "forged",
        json!({ "amount": "1.00" }),
    )
    .await
    .error(403, "forbidden");
}

backend_tests!(
    bad_tokens_are_refused,
    suspension_ends_every_session,
    signed_claims_cannot_outrank_their_session
);
