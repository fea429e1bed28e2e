//! Player protection (issue 19): limits enforced inside the money path (admin deposits, agent
//! credits, transfers in), cooling-off on raises, time-outs and self-exclusions (blocks, closed
//! play, no lifting), session limits and reality checks on the websocket, the report, and who
//! may do what. Time moves through the hub's test clock (`POST /api/v1/test/clock`), never by
//! sleeping.

use std::time::Duration;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Api, Backend, PASSWORD, TestHub, Tree, WsClient};
use crate::providers::move_money;

fn limit_path(user: &str, name: &str) -> String {
    format!("/api/v1/users/{user}/protection/limits/{name}")
}

async fn set_limit(api: &Api, token: &str, user: &str, name: &str, value: Value) -> Value {
    api.put(token, &limit_path(user, name), json!({ "value": value }))
        .await
        .ok()
}

async fn advance(api: &Api, tree: &Tree, secs: i64) {
    api.post(
        &tree.super_token,
        "/api/v1/test/clock",
        json!({ "advance_secs": secs }),
    )
    .await
    .ok();
}

async fn try_deposit(api: &Api, token: &str, user: &str, amount: &str) -> crate::helpers::Reply {
    api.post_key(
        token,
        &format!("/api/v1/users/{user}/wallet/deposit"),
        &uuid::Uuid::new_v4().to_string(),
        json!({ "amount": amount }),
    )
    .await
}

async fn try_credit(api: &Api, token: &str, user: &str, amount: &str) -> crate::helpers::Reply {
    api.post_key(
        token,
        &format!("/api/v1/users/{user}/wallet/credit"),
        &uuid::Uuid::new_v4().to_string(),
        json!({ "amount": amount }),
    )
    .await
}

fn limit_of<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {view}"))
}

async fn deposit_limits_bite_on_deposits_and_agent_credits(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let (player, ptoken) = (tree.player_id.as_str(), tree.player_token.as_str());
    let view = set_limit(&api, ptoken, player, "deposit_daily", json!("100.00")).await;
    assert_eq!(
        limit_of(&view, "deposit_daily")["value"],
        "100.00",
        "{view}"
    );

    try_deposit(&api, &tree.admin_token, player, "60")
        .await
        .ok();
    let refused = try_deposit(&api, &tree.admin_token, player, "50").await;
    refused.error(422, "limit_exceeded");
    assert_eq!(refused.body["error"]["field"], "deposit_daily");
    assert!(
        refused.body["error"]["resets_at"].is_string(),
        "{}",
        refused.body
    );
    assert_eq!(api.balance(ptoken, player).await, "60.00");

    // An agent's credit is money entering the player's wallet too.
    api.deposit(&tree.admin_token, &tree.agent_id, "500").await;
    try_credit(&api, &tree.agent_token, player, "41")
        .await
        .error(422, "limit_exceeded");
    try_credit(&api, &tree.agent_token, player, "40").await.ok();
    assert_eq!(api.balance(ptoken, player).await, "100.00");
    let view = api
        .get(
            &tree.admin_token,
            &format!("/api/v1/users/{player}/protection"),
        )
        .await
        .ok();
    assert_eq!(limit_of(&view, "deposit_daily")["used"], "100.00", "{view}");

    // The window rolls: a day later the room is back.
    advance(&api, &tree, 24 * 3600 + 60).await;
    try_deposit(&api, &tree.admin_token, player, "100")
        .await
        .ok();
    // Withdrawals and agents' own wallets are never limited by a player's limits.
    api.post_key(
        &tree.admin_token,
        &format!("/api/v1/users/{player}/wallet/withdraw"),
        "w1",
        json!({ "amount": "10" }),
    )
    .await
    .ok();
    hub.infra.assert_ledger_ok();
}

/// Concurrent deposits are decided one at a time: exactly as many pass as fit.
async fn concurrent_deposits_never_pass_a_limit_together(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let player = tree.player_id.as_str();
    set_limit(
        &api,
        &tree.player_token,
        player,
        "deposit_weekly",
        json!("100"),
    )
    .await;
    let replies = api
        .post_keys_concurrently(
            &tree.admin_token,
            &format!("/api/v1/users/{player}/wallet/deposit"),
            (0..10).map(|i| format!("race-{i}")),
            json!({ "amount": "15" }),
        )
        .await;
    let passed = replies.iter().filter(|r| r.status == 200).count();
    for r in replies.iter().filter(|r| r.status != 200) {
        r.error(422, "limit_exceeded");
    }
    assert_eq!(passed, 6, "100 / 15 = 6 deposits fit");
    assert_eq!(api.balance(&tree.player_token, player).await, "90.00");
    hub.infra.assert_ledger_ok();
}

async fn raising_waits_for_the_cooling_off_and_lowering_does_not(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let (player, ptoken) = (tree.player_id.as_str(), tree.player_token.as_str());
    api.patch(
        &tree.super_token,
        &format!("/api/v1/clients/{}/settings", tree.client_id),
        json!({ "limit_raise_cooloff_hours": 48 }),
    )
    .await
    .ok();
    set_limit(&api, ptoken, player, "deposit_monthly", json!("50")).await;
    try_deposit(&api, &tree.admin_token, player, "40")
        .await
        .ok();
    let view = set_limit(&api, ptoken, player, "deposit_monthly", json!("500")).await;
    let limit = limit_of(&view, "deposit_monthly");
    assert_eq!(limit["value"], "50.00", "{view}");
    assert_eq!(limit["pending"], true);
    assert_eq!(limit["pending_value"], "500.00");
    try_deposit(&api, &tree.admin_token, player, "20")
        .await
        .error(422, "limit_exceeded");
    advance(&api, &tree, 25 * 3600).await;
    try_deposit(&api, &tree.admin_token, player, "20")
        .await
        .error(422, "limit_exceeded");
    advance(&api, &tree, 24 * 3600).await;
    try_deposit(&api, &tree.admin_token, player, "300")
        .await
        .ok();
    // Lower: at once.
    let view = set_limit(&api, ptoken, player, "deposit_monthly", json!("10")).await;
    assert_eq!(limit_of(&view, "deposit_monthly")["value"], "10.00");
    try_deposit(&api, &tree.admin_token, player, "1")
        .await
        .error(422, "limit_exceeded");
    // Removing is loosening: it waits too.
    let view = set_limit(&api, ptoken, player, "deposit_monthly", Value::Null).await;
    assert_eq!(limit_of(&view, "deposit_monthly")["value"], "10.00");
    assert_eq!(limit_of(&view, "deposit_monthly")["pending"], true);
    advance(&api, &tree, 49 * 3600).await;
    try_deposit(&api, &tree.admin_token, player, "1000")
        .await
        .ok();
    // Bad values: 422 naming the field.
    let bad = api
        .put(
            ptoken,
            &limit_path(player, "deposit_daily"),
            json!({ "value": "-5" }),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    api.put(
        ptoken,
        &limit_path(player, "nonsense"),
        json!({ "value": "5" }),
    )
    .await
    .error(404, "not_found");
}

async fn wager_and_loss_limits_bite_on_transfers_in(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let (player, ptoken) = (tree.player_id.as_str(), tree.player_token.as_str());
    api.deposit(&tree.admin_token, player, "100").await;
    set_limit(&api, ptoken, player, "loss_daily", json!("20")).await;
    let ls = "luckysports";
    let ok = |r: crate::helpers::Reply| assert_eq!(r.status, 200, "{}", r.body);
    ok(move_money(&api, ptoken, player, ls, "transfer-in", "15").await);
    ok(move_money(&api, ptoken, player, ls, "transfer-out", "10").await);
    ok(move_money(&api, ptoken, player, ls, "transfer-in", "15").await);
    let refused = move_money(&api, ptoken, player, ls, "transfer-in", "1").await;
    refused.error(422, "limit_exceeded");
    assert_eq!(refused.body["error"]["field"], "loss_daily");
    // Money out is never stopped; winnings taken out make room under a loss limit.
    ok(move_money(&api, ptoken, player, ls, "transfer-out", "20").await);
    set_limit(&api, ptoken, player, "wager_daily", json!("30")).await;
    let refused = move_money(&api, ptoken, player, ls, "transfer-in", "1").await;
    refused.error(422, "limit_exceeded");
    assert_eq!(refused.body["error"]["field"], "wager_daily");
    assert_eq!(api.balance(ptoken, player).await, "100.00");
    hub.infra.assert_ledger_ok();
}

async fn session_limit_and_reality_checks_reach_the_websocket(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let (player, ptoken) = (tree.player_id.as_str(), tree.player_token.as_str());
    api.deposit(&tree.admin_token, player, "100").await;
    set_limit(&api, ptoken, player, "session_minutes", json!("10")).await;
    api.put(
        ptoken,
        &format!("/api/v1/users/{player}/protection/reality-check"),
        json!({ "minutes": 5 }),
    )
    .await
    .ok();
    let mut ws = WsClient::connect(&hub.ws_url(ptoken)).await;
    let ls = "luckysports";
    let moved = move_money(&api, ptoken, player, ls, "transfer-in", "5").await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    advance(&api, &tree, 6 * 60).await;
    let check = next_of_within(&mut ws, "reality_check").await;
    assert_eq!(check["data"]["minutes_played"], 6, "{check}");
    assert_eq!(check["data"]["net_result"], "-5.00", "{check}");
    advance(&api, &tree, 5 * 60).await;
    let refused = move_money(&api, ptoken, player, ls, "transfer-in", "1").await;
    refused.error(422, "limit_exceeded");
    assert_eq!(refused.body["error"]["field"], "session_minutes");
    let told = next_of_within(&mut ws, "session_limit").await;
    assert!(told["data"]["resets_at"].is_string(), "{told}");
    // A break of 30 minutes ends the session; a new one may start.
    advance(&api, &tree, 31 * 60).await;
    let moved = move_money(&api, ptoken, player, ls, "transfer-in", "1").await;
    assert_eq!(moved.status, 200, "{}", moved.body);
}

async fn next_of_within(ws: &mut WsClient, kind: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(15), ws.next_of(kind))
        .await
        .unwrap_or_else(|_| panic!("no {kind} frame"))
}

async fn a_time_out_blocks_play_closes_it_and_cannot_be_lifted(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let (player, ptoken) = (tree.player_id.as_str(), tree.player_token.as_str());
    api.deposit(&tree.admin_token, player, "100").await;
    let moved = move_money(&api, ptoken, player, "luckysports", "transfer-in", "30").await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(api.balance(ptoken, player).await, "70.00");
    let exclusion = format!("/api/v1/users/{player}/protection/exclusion");
    // Nobody but the player decides it.
    api.post(
        &tree.admin_token,
        &exclusion,
        json!({ "kind": "timeout", "hours": 24 }),
    )
    .await
    .error(403, "forbidden");
    api.post(ptoken, &exclusion, json!({ "kind": "timeout", "hours": 2 }))
        .await
        .error(422, "validation_error");
    let done = api
        .post(
            ptoken,
            &exclusion,
            json!({ "kind": "timeout", "hours": 48 }),
        )
        .await
        .ok();
    assert_eq!(done["protection"]["exclusion"]["kind"], "timeout", "{done}");
    let ls = done["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "luckysports")
        .unwrap();
    assert_eq!(ls["transferred_out"], "30.00", "{done}");
    assert_eq!(ls["state"], "succeeded", "{done}");
    // Logged out, and kept out.
    assert_eq!(
        api.get(ptoken, &format!("/api/v1/users/{player}/wallet"))
            .await
            .status,
        401
    );
    let login = api.try_login(Some(&tree.code), "player1", PASSWORD).await;
    login.error(403, "player_excluded");
    assert!(
        login.body["error"]["resets_at"].is_string(),
        "{}",
        login.body
    );
    try_deposit(&api, &tree.admin_token, player, "10")
        .await
        .error(403, "player_excluded");
    api.deposit(&tree.admin_token, &tree.agent_id, "50").await;
    try_credit(&api, &tree.agent_token, player, "10")
        .await
        .error(403, "player_excluded");
    // Admins see it, with the money back in the wallet.
    let view = api
        .get(
            &tree.admin_token,
            &format!("/api/v1/users/{player}/protection"),
        )
        .await
        .ok();
    assert_eq!(view["exclusion"]["permanent"], false, "{view}");
    assert_eq!(api.balance(&tree.admin_token, player).await, "100.00");
    // A notice in the player's inbox; every step in the report.
    let report = api
        .get(
            &tree.admin_token,
            &format!("/api/v1/protection/events?user_id={player}"),
        )
        .await
        .ok();
    let actions: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    for a in [
        "protection.exclusion_started",
        "protection.provider_closed",
        "protection.login_refused",
        "protection.refused",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    // Over: the player plays again.
    advance(&api, &tree, 48 * 3600 + 60).await;
    let token = api.token(Some(&tree.code), "player1").await;
    try_deposit(&api, &tree.admin_token, player, "10")
        .await
        .ok();
    let notices = api
        .get(&token, &format!("/api/v1/users/{player}/notifications"))
        .await
        .ok();
    assert!(
        notices["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["title"] == "Exclusion confirmed"),
        "{notices}"
    );
    // Permanent self-exclusion: no amount of time lifts it.
    api.post(
        &token,
        &exclusion,
        json!({ "kind": "self_exclusion", "permanent": true }),
    )
    .await
    .ok();
    advance(&api, &tree, 9 * 366 * 86_400).await;
    api.try_login(Some(&tree.code), "player1", PASSWORD)
        .await
        .error(403, "player_excluded");
    hub.infra.assert_ledger_ok();
}

/// Who may do what with the new endpoints, each role against its own client's player and
/// another client's.
async fn protection_authorization_matrix(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let other = Tree::create(&api).await;
    let player = tree.player_id.as_str();
    let get = format!("/api/v1/users/{player}/protection");
    let limit = limit_path(player, "deposit_daily");
    let reality = format!("/api/v1/users/{player}/protection/reality-check");
    let exclusion = format!("/api/v1/users/{player}/protection/exclusion");
    let callers = [
        ("player", tree.player_token.as_str(), 200, 200),
        ("agent", tree.agent_token.as_str(), 200, 403),
        ("admin", tree.admin_token.as_str(), 200, 403),
        ("super", tree.super_token.as_str(), 200, 403),
        ("other admin", other.admin_token.as_str(), 404, 404),
        ("other player", other.player_token.as_str(), 404, 404),
    ];
    for (who, token, read, write) in callers {
        assert_eq!(api.get(token, &get).await.status, read, "{who} GET");
        let r = api.put(token, &limit, json!({ "value": "5" })).await;
        assert_eq!(r.status, write, "{who} PUT limit: {}", r.body);
        let r = api.put(token, &reality, json!({ "minutes": 30 })).await;
        assert_eq!(r.status, write, "{who} PUT reality-check: {}", r.body);
        // An invalid body: the player gets 422 (nothing happens), others their refusal.
        let r = api
            .post(token, &exclusion, json!({ "kind": "timeout", "hours": 1 }))
            .await;
        let expected = if write == 200 { 422 } else { write };
        assert_eq!(r.status, expected, "{who} POST exclusion: {}", r.body);
    }
    // Staff's protection does not exist.
    api.get(
        &tree.admin_token,
        &format!("/api/v1/users/{}/protection", tree.agent_id),
    )
    .await
    .error(404, "not_found");
    // The report: admins and super admins; others 403; another client's admin sees none of it.
    for (token, status) in [
        (tree.player_token.as_str(), 403),
        (tree.agent_token.as_str(), 403),
        (tree.admin_token.as_str(), 200),
        (tree.super_token.as_str(), 200),
    ] {
        assert_eq!(
            api.get(token, "/api/v1/protection/events").await.status,
            status
        );
    }
    let theirs = api
        .get(
            &other.admin_token,
            &format!("/api/v1/protection/events?user_id={player}"),
        )
        .await
        .ok();
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0, "{theirs}");
    let ours = api
        .get(
            &tree.admin_token,
            &format!("/api/v1/protection/events?user_id={player}"),
        )
        .await
        .ok();
    assert!(
        ours["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["action"] == "protection.limit_changed"),
        "{ours}"
    );
    // The test clock: super admin only, and only where the setting allows it.
    for token in [&tree.admin_token, &tree.player_token] {
        api.post(token, "/api/v1/test/clock", json!({ "advance_secs": 1 }))
            .await
            .error(403, "forbidden");
    }
    drop(hub);
    let hub = TestHub::start_with(backend, |s| s.test_clock = false).await;
    let api = hub.api();
    let token = api.token(None, "admin").await;
    api.post(&token, "/api/v1/test/clock", json!({ "advance_secs": 1 }))
        .await
        .error(404, "not_found");
}

backend_tests!(
    deposit_limits_bite_on_deposits_and_agent_credits,
    concurrent_deposits_never_pass_a_limit_together,
    raising_waits_for_the_cooling_off_and_lowering_does_not,
    wager_and_loss_limits_bite_on_transfers_in,
    session_limit_and_reality_checks_reach_the_websocket,
    a_time_out_blocks_play_closes_it_and_cannot_be_lifted,
    protection_authorization_matrix,
);
