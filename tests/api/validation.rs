//! Bad input of any kind: a clear 4xx JSON error, and nothing moves.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestHub, Tree};

async fn bad_amounts_are_422_whatever_the_balance(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let withdraw = format!("/api/v1/users/{}/wallet/withdraw", tree.player_id);
    let deposit = format!("/api/v1/users/{}/wallet/deposit", tree.player_id);
    let bad = [
        json!("-1.00"),
        json!("0"),
        json!("0.00"),
        json!("1.001"),
        json!("1e3"),
        json!("NaN"),
        json!("abc"),
        json!(""),
        json!(" 1"),
        json!("99999999999999999999999"),
        json!("92233720368547758.08"),
        json!(1),
        json!(1.5),
        json!(null),
    ];
    for (i, amount) in bad.iter().enumerate() {
        // The balance is 0: a withdrawal would be insufficient, yet validation speaks first.
        for path in [&withdraw, &deposit] {
            api.post_key(
                &tree.admin_token,
                path,
                &format!("bad-{i}"),
                json!({ "amount": amount }),
            )
            .await
            .error(422, "invalid_amount");
        }
    }
    api.post_key(
        &tree.admin_token,
        &deposit,
        "m",
        json!({ "amount": "1", "memo": "x".repeat(300) }),
    )
    .await
    .error(422, "validation_error");
    api.post_key(
        &tree.admin_token,
        &deposit,
        "f",
        json!({ "amount": "1", "balance": "1000000" }),
    )
    .await
    .error(422, "validation_error");
    api.post_key(&tree.admin_token, &deposit, "n", json!({}))
        .await
        .error(422, "validation_error");
    assert_eq!(
        api.balance(&tree.admin_token, &tree.player_id).await,
        "0.00"
    );
    let history = api
        .get(
            &tree.admin_token,
            &format!("/api/v1/users/{}/transactions", tree.player_id),
        )
        .await
        .ok();
    assert!(history["items"].as_array().unwrap().is_empty());

    // Exponent 0: no decimals at all.
    let yen = api
        .post(&tree.super_token, "/api/v1/clients", json!({ "code": "yen-house", "name": "Yen", "currency": "JPY", "currency_exponent": 0 }))
        .await
        .ok();
    assert_eq!(yen["currency_exponent"], 0);
    hub.infra.assert_ledger_ok();
}

async fn malformed_requests_get_json_errors(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let deposit = format!(
        "{}/api/v1/users/{}/wallet/deposit",
        hub.base, tree.player_id
    );
    let http = &hub.http;

    let raw = |body: &'static str| {
        http.post(&deposit)
            .bearer_auth(&tree.admin_token)
            .header("Idempotency-Key", "raw")
            .header("content-type", "application/json")
            .body(body)
    };
    api.send(raw("{\"amount\": "))
        .await
        .error(400, "invalid_json");
    api.send(raw("not json")).await.error(400, "invalid_json");
    api.send(raw("[1, 2]")).await.error(422, "validation_error");
    api.send(
        http.post(&deposit)
            .bearer_auth(&tree.admin_token)
            .header("Idempotency-Key", "k")
            .body("amount=1"),
    )
    .await
    .error(415, "unsupported_media_type");
    api.send(
        http.post(&deposit)
            .bearer_auth(&tree.admin_token)
            .json(&json!({ "amount": "1" })),
    )
    .await
    .error(400, "idempotency_key_required");
    let big = "x".repeat(200 * 1024);
    api.send(
        http.post(&deposit)
            .bearer_auth(&tree.admin_token)
            .header("Idempotency-Key", "big")
            .json(&json!({ "amount": "1", "memo": big })),
    )
    .await
    .error(413, "payload_too_large");

    // Tokens: missing, garbage, wrong scheme.
    api.send(
        http.post(&deposit)
            .header("Idempotency-Key", "k")
            .json(&json!({ "amount": "1" })),
    )
    .await
    .error(401, "unauthorized");
    api.send(
        http.get(format!(
            "{}/api/v1/users/{}/wallet",
            hub.base, tree.player_id
        ))
        .bearer_auth("not.a.jwt"),
    )
    .await
    .error(401, "invalid_token");
    api.send(
        http.get(format!("{}/api/v1/clients", hub.base))
            .header("Authorization", format!("Basic {}", tree.admin_token)),
    )
    .await
    .error(401, "invalid_token");
    let ws = reqwest::get(format!("{}/ws?token=forged", hub.base))
        .await
        .unwrap();
    assert_eq!(ws.status().as_u16(), 401);

    // Unknown ids and routes.
    api.get(&tree.admin_token, "/api/v1/users/no-such-user/wallet")
        .await
        .error(404, "not_found");
    api.get(&tree.admin_token, "/api/v1/nothing-here")
        .await
        .error(404, "not_found");

    // Creation input.
    let clients = "/api/v1/clients";
    api.post(
        &tree.super_token,
        clients,
        json!({ "code": "X", "name": "n", "currency": "usd" }),
    )
    .await
    .error(422, "validation_error");
    api.post(
        &tree.super_token,
        clients,
        json!({ "code": "ok-code", "name": "n", "currency": "USD", "currency_exponent": 9 }),
    )
    .await
    .error(422, "validation_error");
    api.post(
        &tree.super_token,
        clients,
        json!({ "code": tree.code, "name": "n", "currency": "USD" }),
    )
    .await
    .error(409, "client_code_taken");
    api.post(
        &tree.admin_token,
        clients,
        json!({ "code": "mine", "name": "n", "currency": "USD" }),
    )
    .await
    .error(403, "forbidden");
    let users = "/api/v1/users";
    let player =
        |name: &str| json!({ "role": "player", "username": name, "password": "password-123" });
    api.post(&tree.agent_token, users, player("player1"))
        .await
        .error(409, "username_taken");
    api.post(
        &tree.agent_token,
        users,
        json!({ "role": "player", "username": "p2", "password": "short" }),
    )
    .await
    .error(422, "validation_error");
    api.post(
        &tree.agent_token,
        users,
        json!({ "role": "client_admin", "username": "boss2", "password": "password-123" }),
    )
    .await
    .error(403, "forbidden");
    api.post(&tree.player_token, users, player("player9"))
        .await
        .error(403, "forbidden");
    let mut foreign = player("player3");
    foreign["client_id"] = json!("another-client");
    api.post(&tree.admin_token, users, foreign)
        .await
        .error(422, "validation_error");
    let mut rich = player("player4");
    rich["balance"] = json!("1000");
    api.post(&tree.admin_token, users, rich)
        .await
        .error(422, "validation_error");
    let mut under_player = player("player5");
    under_player["parent_id"] = json!(tree.player_id);
    api.post(&tree.admin_token, users, under_player)
        .await
        .error(422, "validation_error");
    hub.infra.assert_ledger_ok();
}

backend_tests!(
    bad_amounts_are_422_whatever_the_balance,
    malformed_requests_get_json_errors
);
