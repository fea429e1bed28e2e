//! An idempotency key moves money once; reused for another request it is refused.

use futures_util::future::join_all;
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestHub, Tree};

async fn same_key_moves_money_once(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let path = format!("/api/v1/users/{}/wallet/deposit", tree.player_id);
    let body = json!({ "amount": "25.00", "memo": "bonus" });

    let first = api
        .post_key(&tree.admin_token, &path, "dep-1", body.clone())
        .await
        .ok();
    let again = api
        .post_key(&tree.admin_token, &path, "dep-1", body.clone())
        .await
        .ok();
    assert_eq!(first, again, "a retry returns the first result");

    // Ten copies at once still move it once.
    let racing =
        join_all((0..10).map(|_| api.post_key(&tree.admin_token, &path, "dep-2", body.clone())))
            .await;
    let ids: std::collections::HashSet<String> = racing
        .into_iter()
        .map(|r| r.ok()["transaction_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        api.balance(&tree.admin_token, &tree.player_id).await,
        "50.00"
    );

    // Same key, different request: refused, nothing moves.
    api.post_key(
        &tree.admin_token,
        &path,
        "dep-1",
        json!({ "amount": "26.00", "memo": "bonus" }),
    )
    .await
    .error(409, "idempotency_conflict");
    api.post_key(
        &tree.admin_token,
        &path,
        "dep-1",
        json!({ "amount": "25.00" }),
    )
    .await
    .error(409, "idempotency_conflict");
    let withdraw = format!("/api/v1/users/{}/wallet/withdraw", tree.player_id);
    api.post_key(
        &tree.admin_token,
        &withdraw,
        "dep-1",
        json!({ "amount": "25.00", "memo": "bonus" }),
    )
    .await
    .error(409, "idempotency_conflict");
    assert_eq!(
        api.balance(&tree.admin_token, &tree.player_id).await,
        "50.00"
    );

    // Keys are scoped per caller: another admin's "dep-1" is its own request.
    let super_reply = api
        .post_key(
            &tree.super_token,
            &path,
            "dep-1",
            json!({ "amount": "1.00" }),
        )
        .await
        .ok();
    assert_eq!(super_reply["balance"], "51.00");

    // A refused request is not remembered: the same key may succeed once funds allow.
    api.post_key(
        &tree.admin_token,
        &withdraw,
        "w-1",
        json!({ "amount": "60.00" }),
    )
    .await
    .error(409, "insufficient_funds");
    api.deposit(&tree.admin_token, &tree.player_id, "9.00")
        .await;
    assert_eq!(
        api.post_key(
            &tree.admin_token,
            &withdraw,
            "w-1",
            json!({ "amount": "60.00" })
        )
        .await
        .ok()["balance"],
        "0.00"
    );

    let history = api
        .get(
            &tree.admin_token,
            &format!("/api/v1/users/{}/transactions", tree.player_id),
        )
        .await
        .ok();
    assert_eq!(history["items"].as_array().unwrap().len(), 5);
    hub.infra.assert_ledger_ok();
}

backend_tests!(same_key_moves_money_once);
