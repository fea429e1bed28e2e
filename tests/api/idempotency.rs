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

/// Every endpoint taking an idempotency key answers a replay with the first result, status
/// included (DESIGN section 4); settlements (201 both times) are in `settlements.rs`.
async fn replays_answer_with_the_first_status(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let t = Tree::create(&api).await;
    api.deposit(&t.admin_token, &t.agent_id, "50").await;
    let user = |id: &str, what: &str| format!("/api/v1/users/{id}/{what}");
    let calls = [
        (
            &t.admin_token,
            user(&t.player_id, "wallet/deposit"),
            json!({ "amount": "20.00" }),
        ),
        (
            &t.admin_token,
            user(&t.player_id, "wallet/withdraw"),
            json!({ "amount": "1.00" }),
        ),
        (
            &t.admin_token,
            user(&t.player_id, "wallet/adjust"),
            json!({ "amount": "-1.00", "reason": "r" }),
        ),
        (
            &t.admin_token,
            user(&t.player_id, "wallet/adjust"),
            json!({ "amount": "2.00", "reason": "r" }),
        ),
        (
            &t.agent_token,
            user(&t.player_id, "wallet/credit"),
            json!({ "amount": "3.00" }),
        ),
        (
            &t.agent_token,
            user(&t.player_id, "wallet/debit"),
            json!({ "amount": "1.00" }),
        ),
        (
            &t.admin_token,
            user(&t.player_id, "providers/jdb/transfer-in"),
            json!({ "amount": "4.00" }),
        ),
        (
            &t.admin_token,
            user(&t.player_id, "providers/jdb/transfer-out"),
            json!({ "amount": "2.00" }),
        ),
    ];
    for (n, (token, path, body)) in calls.into_iter().enumerate() {
        let key = format!("replay-{n}");
        let first = api.post_key(token, &path, &key, body.clone()).await;
        assert!(
            first.status < 300,
            "{path}: {} {}",
            first.status,
            first.body
        );
        let again = api.post_key(token, &path, &key, body).await;
        assert_eq!(again.status, first.status, "{path}: {}", again.body);
        for id in ["transaction_id", "transfer_id"] {
            assert_eq!(again.body[id], first.body[id], "{path}");
        }
    }
    hub.infra.assert_ledger_ok();
}

/// DESIGN section 4: the key as the `Idempotency-Key` header or an `idempotency_key` field.
async fn key_in_the_body_or_the_header(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let t = Tree::create(&api).await;
    let path = format!("/api/v1/users/{}/wallet/deposit", t.player_id);
    let first = api
        .post(
            &t.admin_token,
            &path,
            json!({ "amount": "5.00", "idempotency_key": "in-body" }),
        )
        .await
        .ok();
    // The same key as a header is the same request: replayed, nothing moves twice.
    let again = api
        .post_key(
            &t.admin_token,
            &path,
            "in-body",
            json!({ "amount": "5.00" }),
        )
        .await
        .ok();
    assert_eq!(again["transaction_id"], first["transaction_id"]);
    let both = api
        .post_key(
            &t.admin_token,
            &path,
            "in-body",
            json!({ "amount": "5.00", "idempotency_key": "in-body" }),
        )
        .await
        .ok();
    assert_eq!(both["transaction_id"], first["transaction_id"]);
    assert_eq!(api.balance(&t.admin_token, &t.player_id).await, "5.00");
    api.post_key(
        &t.admin_token,
        &path,
        "one",
        json!({ "amount": "5.00", "idempotency_key": "two" }),
    )
    .await
    .error(422, "validation_error");
    api.post(&t.admin_token, &path, json!({ "amount": "5.00" }))
        .await
        .error(400, "idempotency_key_required");
    api.post(
        &t.admin_token,
        &path,
        json!({ "amount": "5.00", "idempotency_key": "" }),
    )
    .await
    .error(400, "invalid_idempotency_key");
    // The other endpoints take it too.
    let transfer = format!("/api/v1/users/{}/providers/jdb/transfer-in", t.player_id);
    let moved = api
        .post(
            &t.admin_token,
            &transfer,
            json!({ "amount": "1.00", "idempotency_key": "t-body" }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    hub.infra.assert_ledger_ok();
}

backend_tests!(
    same_key_moves_money_once,
    replays_answer_with_the_first_status,
    key_in_the_body_or_the_header
);
