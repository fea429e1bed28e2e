//! Notifications (issue 5): sent by admins to a user or a client room, stored, pushed live,
//! listed per member with per-reader read state.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestHub, Tree};
use crate::realtime::{add_player, connect};

backend_tests!(
    user_notice_is_pushed_listed_and_read,
    client_notice_reaches_every_member_with_own_read_state,
    notifications_are_authorized_and_validated,
);

async fn user_notice_is_pushed_listed_and_read(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let (mut player_ws, _) = connect(&hub, &tree.player_token).await;

    let sent = api
        .post(
            &tree.admin_token,
            "/api/v1/notifications",
            json!({ "user_id": tree.player_id, "title": "Bonus", "body": "10 free spins" }),
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    let id = sent.body["id"].as_str().unwrap().to_owned();
    assert_eq!(sent.body["room"], format!("user:{}", tree.player_id));
    assert_eq!(sent.body["read"], false);

    let frame = player_ws.next_of("notification").await;
    assert_eq!(frame["room"], format!("user:{}", tree.player_id));
    assert_eq!(frame["seq"], 1);
    assert_eq!(frame["data"]["id"], id.as_str());
    assert_eq!(frame["data"]["title"], "Bonus");
    assert_eq!(frame["data"]["body"], "10 free spins");

    let path = format!("/api/v1/users/{}/notifications", tree.player_id);
    let unread = api
        .get(&tree.player_token, &format!("{path}?unread=true"))
        .await
        .ok();
    assert_eq!(unread["items"].as_array().unwrap().len(), 1);
    assert_eq!(unread["items"][0]["id"], id.as_str());
    assert_eq!(unread["next_cursor"], serde_json::Value::Null);

    let read = api
        .post(
            &tree.player_token,
            &format!("/api/v1/notifications/{id}/read"),
            json!({}),
        )
        .await
        .ok();
    assert_eq!(read["read"], true);
    // Reading twice keeps the first time.
    let again = api
        .post(
            &tree.player_token,
            &format!("/api/v1/notifications/{id}/read"),
            json!({}),
        )
        .await
        .ok();
    assert_eq!(again["read_at"], read["read_at"]);

    let unread = api
        .get(&tree.player_token, &format!("{path}?unread=true"))
        .await
        .ok();
    assert!(unread["items"].as_array().unwrap().is_empty(), "{unread}");
    let all = api.get(&tree.player_token, &path).await.ok();
    assert_eq!(all["items"][0]["read"], true);
    // Those who reach the player (its agent, its admin) may list its notices too.
    let by_agent = api.get(&tree.agent_token, &path).await.ok();
    assert_eq!(by_agent["items"].as_array().unwrap().len(), 1);
}

async fn client_notice_reaches_every_member_with_own_read_state(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let other = Tree::create(&api).await;
    let (mut player_ws, _) = connect(&hub, &tree.player_token).await;
    let (mut agent_ws, _) = connect(&hub, &tree.agent_token).await;
    let (mut foreign_ws, _) = connect(&hub, &other.player_token).await;
    let room = format!("client:{}", tree.client_id);

    // Three notices: two to the client room (client admin, super admin), then one to the other
    // client, which this client's members must never see.
    for (token, title) in [
        (&tree.admin_token, "Maintenance"),
        (&tree.super_token, "Platform"),
    ] {
        let sent = api
            .post(
                token,
                "/api/v1/notifications",
                json!({ "room": room, "title": title, "body": "tonight" }),
            )
            .await;
        assert_eq!(sent.status, 201, "{}", sent.body);
        assert_eq!(sent.body["user_id"], serde_json::Value::Null);
    }
    api.post(
        &other.admin_token,
        "/api/v1/notifications",
        json!({ "room": format!("client:{}", other.client_id), "title": "Other", "body": "x" }),
    )
    .await
    .ok();
    for ws in [&mut player_ws, &mut agent_ws] {
        for (seq, title) in [(1, "Maintenance"), (2, "Platform")] {
            let frame = ws.next_of("notification").await;
            assert_eq!(frame["room"], room.as_str());
            assert_eq!(frame["seq"], seq);
            assert_eq!(frame["data"]["title"], title);
        }
    }
    let frame = foreign_ws.next_of("notification").await;
    assert_eq!(frame["data"]["title"], "Other");

    // Newest first, one page at a time.
    let path = format!("/api/v1/users/{}/notifications", tree.player_id);
    let first = api
        .get(&tree.player_token, &format!("{path}?limit=1"))
        .await
        .ok();
    assert_eq!(first["items"][0]["title"], "Platform");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = api
        .get(
            &tree.player_token,
            &format!("{path}?limit=1&cursor={cursor}"),
        )
        .await
        .ok();
    assert_eq!(second["items"][0]["title"], "Maintenance");
    assert_eq!(second["next_cursor"], serde_json::Value::Null);

    // The player reads one; the agent's copy stays unread.
    let id = second["items"][0]["id"].as_str().unwrap();
    api.post(
        &tree.player_token,
        &format!("/api/v1/notifications/{id}/read"),
        json!({}),
    )
    .await
    .ok();
    let mine = api
        .get(&tree.player_token, &format!("{path}?unread=true"))
        .await
        .ok();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let agent_path = format!("/api/v1/users/{}/notifications?unread=true", tree.agent_id);
    let agents = api.get(&tree.agent_token, &agent_path).await.ok();
    assert_eq!(agents["items"].as_array().unwrap().len(), 2);
    // A member of another client cannot read it, and does not learn it exists.
    api.post(
        &other.player_token,
        &format!("/api/v1/notifications/{id}/read"),
        json!({}),
    )
    .await
    .error(404, "not_found");
}

async fn notifications_are_authorized_and_validated(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let other = Tree::create(&api).await;
    let (second_player, second_token) = add_player(&api, &tree, "second").await;
    let send = |token: &str, body: serde_json::Value| {
        let api = api.clone();
        let token = token.to_owned();
        async move { api.post(&token, "/api/v1/notifications", body).await }
    };
    let to_player = json!({ "user_id": tree.player_id, "title": "t", "body": "b" });
    send(&tree.player_token, to_player.clone())
        .await
        .error(403, "forbidden");
    send(&tree.agent_token, to_player.clone())
        .await
        .error(403, "forbidden");
    // Another client's room or user is invisible to a client admin.
    send(&other.admin_token, to_player.clone())
        .await
        .error(404, "not_found");
    send(
        &other.admin_token,
        json!({ "room": format!("client:{}", tree.client_id), "title": "t", "body": "b" }),
    )
    .await
    .error(404, "not_found");
    send(
        &tree.super_token,
        json!({ "room": "client:nope", "title": "t", "body": "b" }),
    )
    .await
    .error(404, "not_found");
    for bad in [
        json!({ "title": "t", "body": "b" }),
        json!({ "user_id": tree.player_id, "room": format!("user:{}", tree.player_id), "title": "t", "body": "b" }),
        json!({ "room": "lobby:1", "title": "t", "body": "b" }),
        json!({ "user_id": tree.player_id, "title": "  ", "body": "b" }),
        json!({ "user_id": tree.player_id, "title": "t", "body": "b".repeat(4001) }),
    ] {
        send(&tree.admin_token, bad)
            .await
            .error(422, "validation_error");
    }
    // The super admin may send to any client's user, by room name too.
    let sent = send(
        &tree.super_token,
        json!({ "room": format!("user:{}", tree.player_id), "title": "t", "body": "b" }),
    )
    .await
    .ok();
    let id = sent["id"].as_str().unwrap();
    // Only the recipient marks a user notice read.
    api.post(
        &second_token,
        &format!("/api/v1/notifications/{id}/read"),
        json!({}),
    )
    .await
    .error(404, "not_found");
    api.post(
        &tree.admin_token,
        &format!("/api/v1/notifications/{id}/read"),
        json!({}),
    )
    .await
    .error(404, "not_found");
    // Listings follow reach: another player's list is forbidden, another client's is unknown.
    api.get(
        &second_token,
        &format!("/api/v1/users/{}/notifications", tree.player_id),
    )
    .await
    .error(403, "forbidden");
    api.get(
        &other.admin_token,
        &format!("/api/v1/users/{}/notifications", tree.player_id),
    )
    .await
    .error(404, "not_found");
    let second_list = api
        .get(
            &second_token,
            &format!("/api/v1/users/{second_player}/notifications"),
        )
        .await
        .ok();
    assert!(second_list["items"].as_array().unwrap().is_empty());
}
