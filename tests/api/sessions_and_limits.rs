//! `logoutUser` (every session of a user ends at once) and the per-IP limits of the endpoints
//! anyone may call: login, refresh and provider callbacks (issue 21).

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Api, Backend, PASSWORD, Reply, TestHub, Tree};

async fn refresh(api: &Api, token: &str) -> Reply {
    api.send(
        api.http
            .post(format!("{}/api/v1/auth/refresh", api.base))
            .json(&json!({ "refresh_token": token })),
    )
    .await
}

async fn logout_ends_every_session_of_the_user(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let t = Tree::create(&api).await;
    let balance = format!("/api/v1/users/{}/wallet", t.player_id);
    let phone = api.login(Some(&t.code), "player1", PASSWORD).await;
    let laptop = api.login(Some(&t.code), "player1", PASSWORD).await;
    for login in [&phone, &laptop] {
        api.get(login["access_token"].as_str().unwrap(), &balance)
            .await
            .ok();
    }

    // Nobody else may: a player cannot log out their agent, an agent not its parent.
    let agent_logout = format!("/api/v1/users/{}/logout", t.agent_id);
    api.post(&t.player_token, &agent_logout, json!({}))
        .await
        .error(403, "forbidden");
    api.post(
        &t.agent_token,
        &format!("/api/v1/users/{}/logout", t.admin_id),
        json!({}),
    )
    .await
    .error(403, "forbidden");

    // The agent above the player logs them out everywhere.
    let ended = api
        .post(
            &t.agent_token,
            &format!("/api/v1/users/{}/logout", t.player_id),
            json!({}),
        )
        .await
        .ok();
    assert_eq!(ended["user_id"], t.player_id.as_str());
    assert!(ended["sessions_ended"].as_u64().unwrap() >= 3, "{ended}");
    for login in [&phone, &laptop] {
        let access = login["access_token"].as_str().unwrap();
        let refused = api.get(access, &balance).await;
        assert_eq!(refused.status, 401, "{}", refused.body);
        refresh(&api, login["refresh_token"].as_str().unwrap())
            .await
            .error(401, "invalid_refresh_token");
    }
    assert_eq!(api.get(&t.player_token, &balance).await.status, 401);

    // A user may end their own sessions; a new login works afterwards.
    let again = api.login(Some(&t.code), "player1", PASSWORD).await;
    let token = again["access_token"].as_str().unwrap();
    let own = api
        .post(
            token,
            &format!("/api/v1/users/{}/logout", t.player_id),
            json!({}),
        )
        .await
        .ok();
    assert_eq!(own["sessions_ended"], 1);
    assert_eq!(api.get(token, &balance).await.status, 401);
    // The agent's own session was never touched.
    api.get(&t.agent_token, &format!("/api/v1/users/{}", t.agent_id))
        .await
        .ok();
}

async fn unauthenticated_endpoints_are_limited_per_ip(backend: Backend) {
    let hub = TestHub::start_with(backend, |s| {
        s.rate_limit_auth_per_ip = 2;
        s.rate_limit_callbacks_per_ip = 1;
    })
    .await;
    let api = hub.api();
    // Burst of twice the rate, then 429 with Retry-After, whatever the credentials.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(api.try_login(None, "admin", "wrong-password").await);
    }
    let limited = statuses.iter().find(|r| r.status == 429).expect("no 429");
    limited.error(429, "rate_limited");
    assert!(limited.retry_after.is_some());
    assert!(
        statuses.iter().take(4).all(|r| r.status == 401),
        "{:?}",
        statuses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let r = refresh(&api, "not-a-token").await;
    r.error(429, "rate_limited");

    // Callbacks: per provider, so one provider's flood leaves the other's budget alone.
    let callback = |provider: &str| {
        api.http
            .post(format!("{}/callbacks/{provider}", api.base))
            .header("Content-Type", "application/json")
            .body("{}")
    };
    let mut jdb = Vec::new();
    for _ in 0..4 {
        jdb.push(api.send(callback("jdb")).await.status);
    }
    assert!(jdb.iter().take(2).all(|s| *s != 429), "{jdb:?}");
    assert_eq!(jdb[3], 429, "{jdb:?}");
    let other = api.send(callback("luckysports")).await;
    assert_ne!(other.status, 429, "{}", other.body);
}

backend_tests!(
    logout_ends_every_session_of_the_user,
    unauthenticated_endpoints_are_limited_per_ip,
);
