//! Many withdrawals racing one wallet: exactly as many succeed as the balance allows.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestHub, Tree};

async fn concurrent_withdrawals_never_overdraw(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.player_id, "150.00")
        .await;

    let path = format!("/api/v1/users/{}/wallet/withdraw", tree.player_id);
    let replies = api
        .post_keys_concurrently(
            &tree.admin_token,
            &path,
            (0..200).map(|i| format!("w-{i}")),
            json!({ "amount": "1.00" }),
        )
        .await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let refused = replies
        .iter()
        .filter(|r| r.status == 409 && r.body["error"]["code"] == "insufficient_funds")
        .count();
    assert_eq!(
        (ok, refused),
        (150, 50),
        "every reply is a success or insufficient_funds"
    );
    let mut balances: Vec<&str> = replies
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.body["balance"].as_str().unwrap())
        .collect();
    balances.sort_unstable();
    balances.dedup();
    assert_eq!(balances.len(), 150, "each success saw its own balance");
    assert_eq!(
        api.balance(&tree.admin_token, &tree.player_id).await,
        "0.00"
    );

    let history = api
        .get(
            &tree.admin_token,
            &format!("/api/v1/users/{}/transactions?limit=200", tree.player_id),
        )
        .await
        .ok();
    assert_eq!(
        history["items"].as_array().unwrap().len(),
        151,
        "refusals are not movements"
    );
    hub.infra.assert_ledger_ok();
}

backend_tests!(concurrent_withdrawals_never_overdraw);
