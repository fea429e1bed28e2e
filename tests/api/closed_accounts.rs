//! A closed user's account takes no money in or out, whatever the path (issue #25): the ledger
//! writers refuse it, so every caller of the ledger is covered, not only the wallet handlers.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestHub, Tree};

async fn closed_accounts_refuse_every_movement(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let t = Tree::create(&api).await;
    let user = format!("/api/v1/users/{}", t.player_id);

    // Closing needs an empty wallet; the refused close freezes nothing.
    api.deposit(&t.admin_token, &t.player_id, "3").await;
    api.post(&t.admin_token, &format!("{user}/close"), json!({}))
        .await
        .error(409, "balance_not_zero");
    api.post_key(
        &t.admin_token,
        &format!("{user}/wallet/withdraw"),
        "empty",
        json!({ "amount": "3" }),
    )
    .await
    .ok();
    api.deposit(&t.admin_token, &t.agent_id, "5").await;
    let closed = api
        .post(&t.admin_token, &format!("{user}/close"), json!({}))
        .await
        .ok();
    assert_eq!(closed["status"], "closed");

    let refused = |r: crate::helpers::Reply| r.error(409, "user_closed");
    refused(
        api.post_key(
            &t.admin_token,
            &format!("{user}/wallet/deposit"),
            "d1",
            json!({ "amount": "1.00" }),
        )
        .await,
    );
    for (key, amount) in [("a1", "1.00"), ("a2", "-1.00")] {
        refused(
            api.post_key(
                &t.admin_token,
                &format!("{user}/wallet/adjust"),
                key,
                json!({ "amount": amount, "reason": "after close" }),
            )
            .await,
        );
    }
    for what in ["credit", "debit"] {
        refused(
            api.post_key(
                &t.agent_token,
                &format!("{user}/wallet/{what}"),
                what,
                json!({ "amount": "1.00" }),
            )
            .await,
        );
    }
    for provider in ["jdb", "luckysports"] {
        for dir in ["transfer-in", "transfer-out"] {
            refused(
                api.post_key(
                    &t.admin_token,
                    &format!("{user}/providers/{provider}/{dir}"),
                    &format!("{provider}-{dir}"),
                    json!({ "amount": "1.00" }),
                )
                .await,
            );
        }
    }
    // Nothing moved, and no transfer was started.
    assert_eq!(api.balance(&t.admin_token, &t.player_id).await, "0.00");
    assert_eq!(api.balance(&t.admin_token, &t.agent_id).await, "5.00");
    let transfers: i64 = hub
        .infra
        .query_one(&format!(
            "SELECT COUNT(*) FROM provider_transfers WHERE user_id = '{}'",
            t.player_id
        ))
        .await;
    assert_eq!(transfers, 0);
    // Still closed for good.
    api.post(&t.admin_token, &format!("{user}/reactivate"), json!({}))
        .await
        .error(409, "user_closed");
    hub.infra.assert_ledger_ok();
    hub.infra.assert_audit_ok();
}

backend_tests!(closed_accounts_refuse_every_movement);
