//! The embedded default (no provider configuration) across restarts (issue 26): the built-in
//! simulators keep their players and balances in the data directory, so money a player moved to
//! a provider is still there after a SIGTERM or a kill -9 of the hub, and comes back out.
//! Also: processes starting at once on a fresh data directory agree on its generated secrets.

use std::time::Duration;

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Api, Backend, HubProcess, Infra, Tree};

fn path(user: &str, provider: &str, what: &str) -> String {
    format!("/api/v1/users/{user}/providers/{provider}/{what}")
}

async fn provider_balance(api: &Api, tree: &Tree, provider: &str) -> String {
    let reply = api
        .get(
            &tree.player_token,
            &path(&tree.player_id, provider, "balance"),
        )
        .await;
    assert_eq!(reply.status, 200, "{provider} balance: {}", reply.body);
    reply.body["balance"].as_str().unwrap().to_owned()
}

async fn transfer(api: &Api, tree: &Tree, provider: &str, dir: &str, amount: &str) {
    let reply = api
        .post_key(
            &tree.player_token,
            &path(&tree.player_id, provider, dir),
            &uuid::Uuid::new_v4().to_string(),
            json!({ "amount": amount }),
        )
        .await;
    assert_eq!(reply.status, 200, "{provider} {dir}: {}", reply.body);
    assert_eq!(reply.body["state"], "succeeded", "{}", reply.body);
}

/// The player logs in again on a restarted node (sessions are in the database).
async fn relogin(api: &Api, tree: &mut Tree) {
    tree.player_token = api.token(Some(&tree.code), "player1").await;
}

fn sim_addr(infra: &Infra, provider: &str) -> String {
    std::fs::read_to_string(
        infra
            .data_dir
            .path()
            .join("sims")
            .join(format!("{provider}.addr")),
    )
    .unwrap()
}

async fn providers_embedded_default_survives_restart(backend: Backend) {
    let infra = Infra::new(backend).await;
    let node = HubProcess::start(&infra);
    let api = node.api();
    let mut tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.player_id, "100").await;
    transfer(&api, &tree, "jdb", "transfer-in", "30").await;
    transfer(&api, &tree, "luckysports", "transfer-in", "20").await;
    let addrs = (sim_addr(&infra, "jdb"), sim_addr(&infra, "luckysports"));

    // SIGTERM: a plain restart.
    node.terminate();
    let mut node = node;
    assert!(
        node.exit_within(Duration::from_secs(15)).is_some(),
        "hub did not stop on SIGTERM"
    );
    let node = HubProcess::start(&infra);
    let api = node.api();
    relogin(&api, &mut tree).await;
    // Same addresses when the ports are free again (nothing stores them, see below).
    assert_eq!(
        (sim_addr(&infra, "jdb"), sim_addr(&infra, "luckysports")),
        addrs
    );
    assert_eq!(provider_balance(&api, &tree, "jdb").await, "30.00");
    assert_eq!(provider_balance(&api, &tree, "luckysports").await, "20.00");
    transfer(&api, &tree, "jdb", "transfer-out", "10").await;
    transfer(&api, &tree, "luckysports", "transfer-out", "5").await;
    transfer(&api, &tree, "jdb", "transfer-in", "4").await;
    assert_eq!(
        api.balance(&tree.player_token, &tree.player_id).await,
        "61.00"
    );

    // kill -9 with a transfer in flight: the embedded JDB simulator (reached through its
    // control endpoint) applies it and hangs; the hub and the simulator die together.
    let jdb = format!("http://{}", sim_addr(&infra, "jdb"));
    let http = reqwest::Client::new();
    http.post(format!("{jdb}/sim/faults"))
        .json(&json!({ "drop_after_rate": 1.0, "drop_ms": 30_000 }))
        .send()
        .await
        .unwrap();
    let in_flight = api
        .http
        .post(format!(
            "{}{}",
            api.base,
            path(&tree.player_id, "jdb", "transfer-in")
        ))
        .bearer_auth(&tree.player_token)
        .header("Idempotency-Key", "in-flight")
        .json(&json!({ "amount": "6" }));
    tokio::spawn(async move {
        let _ = in_flight.send().await;
    });
    let uid = nashub::providers::provider_uid(&tree.player_id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let book: serde_json::Value = http
            .get(format!("{jdb}/sim/balances"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // JDB simulator units: 4 decimals.
        if book["members"][&uid] == 300_000 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{book}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.kill9();
    let node = HubProcess::start(&infra);
    let api = node.api();
    relogin(&api, &mut tree).await;
    // The reconciler finds the transfer applied (the simulator's log survived) and settles it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let open: i64 = infra
            .query_one(
                "SELECT COUNT(*) FROM provider_transfers WHERE state IN ('pending', 'unknown')",
            )
            .await;
        if open == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "transfer never resolved"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        api.balance(&tree.player_token, &tree.player_id).await,
        "55.00"
    );
    assert_eq!(provider_balance(&api, &tree, "jdb").await, "30.00");
    assert_eq!(provider_balance(&api, &tree, "luckysports").await, "15.00");
    transfer(&api, &tree, "jdb", "transfer-out", "30").await;
    transfer(&api, &tree, "luckysports", "transfer-out", "15").await;
    assert_eq!(
        api.balance(&tree.player_token, &tree.player_id).await,
        "100.00"
    );
    assert_eq!(provider_balance(&api, &tree, "jdb").await, "0.00");
    assert_eq!(provider_balance(&api, &tree, "luckysports").await, "0.00");
    let open: i64 = infra
        .query_one("SELECT COUNT(*) FROM provider_transfers WHERE state <> 'succeeded'")
        .await;
    assert_eq!(open, 0);
    node.kill9();
    infra.assert_ledger_ok();
}

/// Two nodes and `check-ledger` started at the same moment on a fresh data directory, several
/// times: every one starts, and both nodes accept each other's tokens (one `jwt_secret`). The
/// second node uses the first one's embedded simulators (their state file is locked).
async fn providers_concurrent_first_start(backend: Backend) {
    for _round in 0..3 {
        let infra = Infra::new(backend).await;
        let (a, b, check) = std::thread::scope(|s| {
            let a = s.spawn(|| HubProcess::start(&infra));
            let b = s.spawn(|| HubProcess::start(&infra));
            let check = s.spawn(|| infra.run_nashub("check-ledger"));
            (a.join().unwrap(), b.join().unwrap(), check.join().unwrap())
        });
        assert_eq!(check.0, Some(0), "check-ledger: {}", check.1);
        let (api_a, api_b) = (a.api(), b.api());
        let mut tree = Tree::create(&api_a).await;
        // A token issued by node A is accepted by node B.
        assert_eq!(
            api_b.balance(&tree.player_token, &tree.player_id).await,
            "0.00"
        );
        api_b
            .deposit(&tree.admin_token, &tree.player_id, "10")
            .await;
        // Money moved through one node's simulator is seen through the other's.
        relogin(&api_b, &mut tree).await;
        transfer(&api_b, &tree, "jdb", "transfer-in", "3").await;
        assert_eq!(provider_balance(&api_a, &tree, "jdb").await, "3.00");
        transfer(&api_a, &tree, "jdb", "transfer-out", "3").await;
        assert_eq!(provider_balance(&api_b, &tree, "jdb").await, "0.00");
        drop((a, b));
        infra.assert_ledger_ok();
    }
}

backend_tests!(
    providers_embedded_default_survives_restart,
    providers_concurrent_first_start
);
