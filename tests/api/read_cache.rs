//! Nodes cache sessions, users and clients; a change made through another node (or straight
//! in the database) still takes effect everywhere within one epoch poll.

use std::time::{Duration, Instant};

use crate::backend_tests;
use crate::helpers::{Api, Backend, HubProcess, Infra, PASSWORD, Tree};

/// Polls `path` on `api` with `token` until it answers `status`; how long that took.
async fn until_status(api: &Api, token: &str, path: &str, status: u16) -> Duration {
    let start = Instant::now();
    loop {
        let reply = api.get(token, path).await;
        if reply.status == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still {} after 5 s: {}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn revocations_reach_every_node(backend: Backend) {
    let infra = Infra::new(backend).await;
    let (a, b) = (HubProcess::start(&infra), HubProcess::start(&infra));
    let (api_a, api_b) = (a.api(), b.api());
    let tree = Tree::create(&api_a).await;
    let wallet = format!("/api/v1/users/{}/wallet", tree.player_id);

    // Node B has the session cached (it just answered with it); logout happens on A.
    let login = api_a.login(Some(&tree.code), "player1", PASSWORD).await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    api_b.get(&token, &wallet).await.ok();
    let out = api_a
        .send(
            api_a
                .http
                .post(format!("{}/api/v1/auth/logout", api_a.base))
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(out.status, 204);
    api_a.get(&token, &wallet).await.error(401, "session_ended");
    let took = until_status(&api_b, &token, &wallet, 401).await;
    assert!(
        took < Duration::from_secs(1),
        "logout seen on B after {took:?}"
    );

    // A suspension made through B ends the player's sessions on A too.
    api_a.get(&tree.player_token, &wallet).await.ok();
    let suspend = api_b
        .send(
            api_b
                .http
                .post(format!(
                    "{}/api/v1/users/{}/suspend",
                    api_b.base, tree.player_id
                ))
                .bearer_auth(&tree.admin_token),
        )
        .await;
    assert!(suspend.status < 300, "{}", suspend.body);
    let took = until_status(&api_a, &tree.player_token, &wallet, 401).await;
    assert!(
        took < Duration::from_secs(1),
        "suspension seen on A after {took:?}"
    );
}

backend_tests!(revocations_reach_every_node);
