//! Client settings take effect (issue 21): `enabled_providers` refuses new money, launches,
//! catalogues and callbacks of a provider the client does not enable (money already there can
//! come back); each of `limits` caps the movements it names, with a 422 naming the limit, and
//! nothing moves.

use std::time::Duration;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Api, Backend, TestHub, Tree};
use crate::providers::{account_balance, move_money, place_bet, start, start_sims};

/// Sets a client's settings as the platform (any refusal fails the test).
pub(crate) async fn patch_settings(api: &Api, tree: &Tree, body: Value) {
    let path = format!("/api/v1/clients/{}/settings", tree.client_id);
    api.patch(&tree.super_token, &path, body).await.ok();
}

fn launch_path(user: &str, provider: &str) -> String {
    format!("/api/v1/users/{user}/providers/{provider}/launch")
}

async fn enabled_providers_refuse_the_others(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.player_id, "50").await;
    let (player, token) = (tree.player_id.as_str(), tree.player_token.as_str());
    let moved = move_money(&api, token, player, "luckysports", "transfer-in", "10").await;
    assert_eq!(moved.status, 200, "{}", moved.body);

    patch_settings(&api, &tree, json!({ "enabled_providers": ["jdb"] })).await;
    move_money(&api, token, player, "luckysports", "transfer-in", "5")
        .await
        .error(403, "provider_not_enabled");
    api.post(
        token,
        &launch_path(player, "luckysports"),
        json!({ "game": "football" }),
    )
    .await
    .error(403, "provider_not_enabled");
    api.get(token, "/api/v1/providers/luckysports/games")
        .await
        .error(403, "provider_not_enabled");
    // What the player holds there is never stranded.
    let out = move_money(&api, token, player, "luckysports", "transfer-out", "10").await;
    assert_eq!(out.status, 200, "{}", out.body);
    // The enabled provider works as before.
    let jdb = move_money(&api, token, player, "jdb", "transfer-in", "5").await;
    assert_eq!(jdb.status, 200, "{}", jdb.body);
    api.get(token, "/api/v1/providers/jdb/games").await.ok();
    assert_eq!(api.balance(token, player).await, "45.00");

    // Enabled again: money flows again.
    patch_settings(
        &api,
        &tree,
        json!({ "enabled_providers": ["jdb", "luckysports"] }),
    )
    .await;
    let back = move_money(&api, token, player, "luckysports", "transfer-in", "5").await;
    assert_eq!(back.status, 200, "{}", back.body);
    hub.infra.assert_ledger_ok();
}

/// A provider's callback for a client that does not enable it is refused; the round still
/// reaches the books through the pull of the provider's records, so nothing is lost.
async fn callbacks_of_a_provider_not_enabled_are_refused(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = crate::providers::player_at_provider(&api, "100", "luckysports", "50").await;
    let member = nashub::providers::provider_uid(&tree.player_id);
    let held = format!("h:{}:held_at_provider:luckysports", tree.client_id);

    let placed = place_bet(&sims, &member, 1000, 0, None).await;
    assert!(placed["delivered"].as_i64().unwrap() > 0, "{placed}");
    assert_eq!(account_balance(&hub.infra, &held).await, 4000);

    patch_settings(&api, &tree, json!({ "enabled_providers": ["jdb"] })).await;
    let placed = place_bet(&sims, &member, 500, 0, None).await;
    assert_eq!(placed["delivered"], 0, "{placed}");
    // The pull of the provider's records books the round all the same.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while account_balance(&hub.infra, &held).await != 3500 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pulled round was not booked"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    hub.infra.assert_ledger_ok();
}

async fn limits_cap_the_movements_they_name(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let (player, token) = (tree.player_id.as_str(), tree.player_token.as_str());
    api.deposit(&tree.admin_token, &tree.agent_id, "1000").await;
    patch_settings(
        &api,
        &tree,
        json!({ "limits": { "max_deposit": "100", "max_withdrawal": "60", "max_transfer": "30" } }),
    )
    .await;
    let wallet = |user: &str, what: &str| format!("/api/v1/users/{user}/wallet/{what}");
    let refused = |reply: crate::helpers::Reply, field: &str| {
        reply.error(422, "limit_exceeded");
        assert_eq!(reply.body["error"]["field"], field, "{}", reply.body);
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field.trim_start_matches("limits.")),
            "{}",
            reply.body
        );
    };

    // max_deposit: an admin's deposit and an agent's credit.
    let key = |n: &str| format!("{n}-{}", uuid::Uuid::new_v4());
    refused(
        api.post_key(
            &tree.admin_token,
            &wallet(player, "deposit"),
            &key("d"),
            json!({ "amount": "500.00" }),
        )
        .await,
        "limits.max_deposit",
    );
    refused(
        api.post_key(
            &tree.agent_token,
            &wallet(player, "credit"),
            &key("c"),
            json!({ "amount": "100.01" }),
        )
        .await,
        "limits.max_deposit",
    );
    assert_eq!(api.balance(token, player).await, "0.00");
    api.post_key(
        &tree.admin_token,
        &wallet(player, "deposit"),
        &key("d"),
        json!({ "amount": "100" }),
    )
    .await
    .ok();
    api.post_key(
        &tree.agent_token,
        &wallet(player, "credit"),
        &key("c"),
        json!({ "amount": "100" }),
    )
    .await
    .ok();
    assert_eq!(api.balance(token, player).await, "200.00");

    // max_withdrawal: an admin's withdrawal and an agent's debit.
    refused(
        api.post_key(
            &tree.admin_token,
            &wallet(player, "withdraw"),
            &key("w"),
            json!({ "amount": "60.01" }),
        )
        .await,
        "limits.max_withdrawal",
    );
    refused(
        api.post_key(
            &tree.agent_token,
            &wallet(player, "debit"),
            &key("b"),
            json!({ "amount": "61" }),
        )
        .await,
        "limits.max_withdrawal",
    );
    api.post_key(
        &tree.admin_token,
        &wallet(player, "withdraw"),
        &key("w"),
        json!({ "amount": "60" }),
    )
    .await
    .ok();
    assert_eq!(api.balance(token, player).await, "140.00");

    // max_transfer: money into a provider; money back is never capped.
    refused(
        move_money(&api, token, player, "jdb", "transfer-in", "30.01").await,
        "limits.max_transfer",
    );
    for _ in 0..2 {
        let moved = move_money(&api, token, player, "jdb", "transfer-in", "30").await;
        assert_eq!(moved.status, 200, "{}", moved.body);
    }
    let out = move_money(&api, token, player, "jdb", "transfer-out", "60").await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(api.balance(token, player).await, "140.00");

    // Removing a limit lifts it.
    patch_settings(&api, &tree, json!({ "limits": { "max_withdrawal": "60" } })).await;
    api.post_key(
        &tree.admin_token,
        &wallet(player, "deposit"),
        &key("d"),
        json!({ "amount": "500" }),
    )
    .await
    .ok();
    hub.infra.assert_ledger_ok();
}

backend_tests!(
    enabled_providers_refuse_the_others,
    callbacks_of_a_provider_not_enabled_are_refused,
    limits_cap_the_movements_they_name,
);
