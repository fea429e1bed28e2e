//! The walking skeleton end to end: a super admin builds a client's tree, an admin moves money,
//! the player watches it arrive on a real websocket.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestHub, Tree, WsClient};

async fn admin_deposit_reaches_player_socket(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;

    let mut player_ws = WsClient::connect(&hub.ws_url(&tree.player_token)).await;
    let own = player_ws.next_of("subscribed").await;
    assert_eq!(own["room"], format!("user:{}", tree.player_id));
    assert_eq!(own["seq"], 0);
    let client_room = player_ws.next_of("subscribed").await;
    assert_eq!(client_room["room"], format!("client:{}", tree.client_id));

    let mut admin_ws = WsClient::connect(&hub.ws_url(&tree.admin_token)).await;
    admin_ws.next_of("subscribed").await;
    admin_ws.next_of("subscribed").await;
    admin_ws
        .send(json!({ "type": "subscribe", "room": format!("user:{}", tree.player_id) }))
        .await;
    let joined = admin_ws.next().await;
    assert_eq!(joined["type"], "subscribed", "{joined}");
    assert_eq!(joined["room"], format!("user:{}", tree.player_id));

    let deposit = api.deposit(&tree.admin_token, &tree.player_id, "150").await;
    assert_eq!(deposit["balance"], "150.00");
    assert_eq!(deposit["currency"], "USD");

    let update = player_ws.next_of("balance_update").await;
    assert_eq!(update["room"], format!("user:{}", tree.player_id));
    assert_eq!(update["seq"], 1);
    assert!(
        update["ts"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{update}"
    );
    assert_eq!(update["data"]["user_id"], tree.player_id);
    assert_eq!(update["data"]["balance"], "150.00");
    assert_eq!(update["data"]["currency"], "USD");
    assert_eq!(update["data"]["transaction_id"], deposit["transaction_id"]);
    let watched = admin_ws.next_of("balance_update").await;
    assert_eq!(watched["data"]["balance"], "150.00");

    let key = "withdraw-1";
    let path = format!("/api/v1/users/{}/wallet/withdraw", tree.player_id);
    let withdrawal = api
        .post_key(
            &tree.admin_token,
            &path,
            key,
            json!({ "amount": "20.5", "memo": "cash out" }),
        )
        .await
        .ok();
    assert_eq!(withdrawal["balance"], "129.50");
    let update = player_ws.next_of("balance_update").await;
    assert_eq!(
        (update["seq"].as_u64(), update["data"]["balance"].as_str()),
        (Some(2), Some("129.50"))
    );

    assert_eq!(
        api.balance(&tree.player_token, &tree.player_id).await,
        "129.50"
    );
    let history = api
        .get(
            &tree.player_token,
            &format!("/api/v1/users/{}/transactions", tree.player_id),
        )
        .await
        .ok();
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (items[0]["kind"].as_str(), items[0]["amount"].as_str()),
        (Some("withdrawal"), Some("-20.50"))
    );
    assert_eq!(
        (
            items[0]["balance_after"].as_str(),
            items[0]["memo"].as_str()
        ),
        (Some("129.50"), Some("cash out"))
    );
    assert_eq!(
        (items[1]["kind"].as_str(), items[1]["amount"].as_str()),
        (Some("deposit"), Some("150.00"))
    );
    assert!(history["next_cursor"].is_null());

    // A subscribed room's seq is the latest one.
    let mut late = WsClient::connect(&hub.ws_url(&tree.player_token)).await;
    assert_eq!(late.next_of("subscribed").await["seq"], 2);
    hub.infra.assert_ledger_ok();
}

async fn agent_credits_and_debits_its_downline(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.agent_id, "100").await;
    let mut agent_ws = WsClient::connect(&hub.ws_url(&tree.agent_token)).await;
    agent_ws.next_of("subscribed").await;

    let credit = format!("/api/v1/users/{}/wallet/credit", tree.player_id);
    let reply = api
        .post_key(&tree.agent_token, &credit, "c1", json!({ "amount": "30" }))
        .await
        .ok();
    assert_eq!(reply["balance"], "30.00");
    assert_eq!(
        api.balance(&tree.agent_token, &tree.agent_id).await,
        "70.00"
    );
    // The deposit's own update may still be in flight (through Redis): wait for the credit's.
    let update = loop {
        let update = agent_ws.next_of("balance_update").await;
        if update["data"]["transaction_id"] == reply["transaction_id"] {
            break update;
        }
    };
    assert_eq!(update["data"]["balance"], "70.00");

    let debit = format!("/api/v1/users/{}/wallet/debit", tree.player_id);
    let reply = api
        .post_key(&tree.agent_token, &debit, "d1", json!({ "amount": "10" }))
        .await
        .ok();
    assert_eq!(reply["balance"], "20.00");
    assert_eq!(
        api.balance(&tree.agent_token, &tree.agent_id).await,
        "80.00"
    );
    api.post_key(
        &tree.agent_token,
        &debit,
        "d2",
        json!({ "amount": "20.01" }),
    )
    .await
    .error(409, "insufficient_funds");
    api.post_key(
        &tree.agent_token,
        &credit,
        "c2",
        json!({ "amount": "80.01" }),
    )
    .await
    .error(409, "insufficient_funds");

    // Admins move external cash; agents only their own balance; players neither.
    api.post_key(&tree.admin_token, &credit, "c3", json!({ "amount": "1" }))
        .await
        .error(403, "forbidden");
    let deposit = format!("/api/v1/users/{}/wallet/deposit", tree.player_id);
    api.post_key(&tree.agent_token, &deposit, "x1", json!({ "amount": "1" }))
        .await
        .error(403, "forbidden");
    api.post_key(&tree.player_token, &deposit, "x2", json!({ "amount": "1" }))
        .await
        .error(403, "forbidden");
    hub.infra.assert_ledger_ok();
}

async fn rooms_and_reach_are_enforced(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let other = Tree::create(&api).await;

    // A player may not watch anyone else; an agent may not watch another client's users.
    let mut player_ws = WsClient::connect(&hub.ws_url(&tree.player_token)).await;
    player_ws.next_of("subscribed").await;
    player_ws.next_of("subscribed").await;
    for room in [
        format!("user:{}", tree.agent_id),
        format!("client:{}", other.client_id),
        "lobby".to_owned(),
    ] {
        player_ws
            .send(json!({ "type": "subscribe", "room": room }))
            .await;
        let frame = player_ws.next().await;
        assert_eq!(frame["type"], "error", "{frame}");
    }
    let mut agent_ws = WsClient::connect(&hub.ws_url(&tree.agent_token)).await;
    agent_ws.next_of("subscribed").await;
    agent_ws.next_of("subscribed").await;
    agent_ws
        .send(json!({ "type": "subscribe", "room": format!("user:{}", other.player_id) }))
        .await;
    assert_eq!(agent_ws.next().await["type"], "error");
    agent_ws
        .send(json!({ "type": "subscribe", "room": format!("user:{}", tree.admin_id) }))
        .await;
    assert_eq!(agent_ws.next().await["type"], "error");

    // A foreign event never arrives.
    api.deposit(&other.admin_token, &other.player_id, "5").await;
    api.deposit(&tree.admin_token, &tree.player_id, "7").await;
    let frame = player_ws.next_of("balance_update").await;
    assert_eq!(frame["data"]["user_id"], tree.player_id);
    assert_eq!(frame["data"]["balance"], "7.00");

    // REST: another client's user is invisible, outside an agent's subtree is forbidden.
    api.get(
        &tree.admin_token,
        &format!("/api/v1/users/{}", other.player_id),
    )
    .await
    .error(404, "not_found");
    api.get(
        &tree.admin_token,
        &format!("/api/v1/users/{}/wallet", other.player_id),
    )
    .await
    .error(404, "not_found");
    api.get(
        &tree.agent_token,
        &format!("/api/v1/users/{}", tree.admin_id),
    )
    .await
    .error(403, "forbidden");
    api.get(
        &tree.player_token,
        &format!("/api/v1/users/{}/wallet", tree.agent_id),
    )
    .await
    .error(403, "forbidden");
    let path = format!("/api/v1/users/{}/wallet/deposit", other.player_id);
    api.post_key(&tree.admin_token, &path, "k", json!({ "amount": "1" }))
        .await
        .error(404, "not_found");

    // The tree reads back as built.
    let children = api
        .get(
            &tree.admin_token,
            &format!("/api/v1/users/{}/children", tree.agent_id),
        )
        .await
        .ok();
    assert_eq!(children["items"][0]["id"], tree.player_id);
    let ancestors = api
        .get(
            &tree.admin_token,
            &format!("/api/v1/users/{}/ancestors", tree.player_id),
        )
        .await
        .ok();
    let ids: Vec<&str> = ancestors["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [tree.admin_id.as_str(), tree.agent_id.as_str()]);
    hub.infra.assert_ledger_ok();
}

backend_tests!(
    admin_deposit_reaches_player_socket,
    agent_credits_and_debits_its_downline,
    rooms_and_reach_are_enforced
);
