//! User administration: listing with filters and cursor, subtrees, rename, password change,
//! and permission grants and revocations taking effect at once.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Api, Backend, PASSWORD, TestHub, Tree};

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) async fn create(api: &Api, token: &str, parent: &str, role: &str, name: &str) -> String {
    api.post(
        token,
        "/api/v1/users",
        json!({ "parent_id": parent, "role": role, "username": name, "password": PASSWORD }),
    )
    .await
    .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every page of `path` (which has no query yet besides `extra`), following `next_cursor`.
async fn walk(api: &Api, token: &str, path: &str) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    let sep = if path.contains('?') { '&' } else { '?' };
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=3&cursor={c}"),
            None => format!("{path}{sep}limit=3"),
        };
        let page = api.get(token, &url).await.ok();
        all.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
}

async fn listing_and_subtrees(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let t = Tree::create(&api).await;
    let sub = create(&api, &t.agent_token, &t.agent_id, "agent", "sub1").await;
    let mut in_subtree = vec![t.player_id.clone(), sub.clone()];
    for i in 0..4 {
        in_subtree.push(create(&api, &t.agent_token, &sub, "player", &format!("deep{i}")).await);
    }
    let agent2 = create(&api, &t.admin_token, &t.admin_id, "agent", "agent2").await;
    let outsider = create(&api, &t.admin_token, &agent2, "player", "outsider").await;

    // The admin lists the whole client; the agent only its subtree (itself included).
    let all = walk(&api, &t.admin_token, "/api/v1/users").await;
    assert_eq!(all.len(), 10, "{all:?}");
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "ordered by id, no repeats");
    let mine = walk(&api, &t.agent_token, "/api/v1/users").await;
    assert_eq!(mine.len(), 7);
    assert!(!mine.contains(&outsider) && !mine.contains(&t.admin_id));
    let players = walk(&api, &t.admin_token, "/api/v1/users?role=player").await;
    assert_eq!(players.len(), 6);
    let deep = walk(&api, &t.agent_token, "/api/v1/users?username=deep").await;
    assert_eq!(deep.len(), 4);
    let kids = walk(
        &api,
        &t.admin_token,
        &format!("/api/v1/users?parent_id={sub}"),
    )
    .await;
    assert_eq!(kids.len(), 4);
    api.post(
        &t.admin_token,
        &format!("/api/v1/users/{outsider}/suspend"),
        json!({}),
    )
    .await
    .ok();
    let suspended = walk(&api, &t.admin_token, "/api/v1/users?status=suspended").await;
    assert_eq!(suspended, vec![outsider.clone()]);
    api.get(&t.admin_token, "/api/v1/users?status=weird")
        .await
        .error(422, "validation_error");
    api.get(&t.admin_token, "/api/v1/users?limit=0")
        .await
        .error(422, "validation_error");
    api.get(&t.admin_token, "/api/v1/users?sort=evil")
        .await
        .error(422, "validation_error");

    // Subtree: everyone below, paginated, in tree order.
    let below = walk(
        &api,
        &t.agent_token,
        &format!("/api/v1/users/{}/subtree", t.agent_id),
    )
    .await;
    let mut expect = in_subtree.clone();
    expect.sort();
    let mut got = below.clone();
    got.sort();
    assert_eq!(got, expect);
    let below_sub = walk(
        &api,
        &t.admin_token,
        &format!("/api/v1/users/{sub}/subtree"),
    )
    .await;
    assert_eq!(below_sub.len(), 4);
    api.get(&t.agent_token, &format!("/api/v1/users/{agent2}/subtree"))
        .await
        .error(403, "forbidden");
    api.get(
        &t.agent_token,
        &format!("/api/v1/users/{}/subtree?cursor={outsider}", t.agent_id),
    )
    .await
    .error(422, "validation_error");

    // Ancestors: the chain from the root, limited to what the caller may see.
    let deep0 = &in_subtree[2];
    let chain = api
        .get(&t.admin_token, &format!("/api/v1/users/{deep0}/ancestors"))
        .await
        .ok();
    assert_eq!(
        ids(&chain),
        vec![t.admin_id.clone(), t.agent_id.clone(), sub.clone()]
    );
    let chain = api
        .get(&t.agent_token, &format!("/api/v1/users/{deep0}/ancestors"))
        .await
        .ok();
    assert_eq!(ids(&chain), vec![t.agent_id.clone(), sub.clone()]);
}

async fn rename_and_password_change(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let t = Tree::create(&api).await;
    let user = format!("/api/v1/users/{}", t.player_id);
    let renamed = api
        .patch(&t.agent_token, &user, json!({ "username": "Renamed1" }))
        .await
        .ok();
    assert_eq!(renamed["username"], "renamed1");
    api.patch(&t.agent_token, &user, json!({ "username": "agent1" }))
        .await
        .error(409, "username_taken");
    api.patch(&t.agent_token, &user, json!({ "username": "x" }))
        .await
        .error(422, "validation_error");
    let first = api.login(Some(&t.code), "renamed1", PASSWORD).await;
    let first_token = first["access_token"].as_str().unwrap().to_owned();
    let second = api.token(Some(&t.code), "renamed1").await;

    let change = |token: String, current: &str, new: &str| {
        let body = json!({ "current_password": current, "new_password": new });
        let api = api.clone();
        async move { api.post(&token, "/api/v1/auth/password", body).await }
    };
    change(first_token.clone(), "wrong-password", "new-password-1")
        .await
        .error(403, "wrong_password");
    change(first_token.clone(), PASSWORD, "short")
        .await
        .error(422, "validation_error");
    let done = change(first_token.clone(), PASSWORD, "new-password-1").await;
    assert_eq!(done.status, 204, "{}", done.body);
    // The session that changed it lives on; every other session ended.
    api.get(&first_token, &user).await.ok();
    api.get(&second, &user).await.error(401, "session_ended");
    api.try_login(Some(&t.code), "renamed1", PASSWORD)
        .await
        .error(401, "invalid_credentials");
    api.login(Some(&t.code), "renamed1", "new-password-1").await;
    api.patch(&t.agent_token, &user, json!({ "password": "x" }))
        .await
        .error(422, "validation_error");
    // A token carries the effective permissions at issue time.
    let claims = first["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["perms"],
        json!(["providers.transfer", "users.read_self"])
    );

    // Closing never strands money: the wallet must be empty first.
    api.deposit(&t.admin_token, &t.player_id, "3").await;
    api.post(&t.admin_token, &format!("{user}/close"), json!({}))
        .await
        .error(409, "balance_not_zero");
    api.post_key(
        &t.admin_token,
        &format!("{user}/wallet/withdraw"),
        "empty-it",
        json!({ "amount": "3" }),
    )
    .await
    .ok();
    let closed = api
        .post(&t.admin_token, &format!("{user}/close"), json!({}))
        .await
        .ok();
    assert_eq!(closed["status"], "closed");
    hub.infra.assert_ledger_ok();
}

async fn permissions_are_granted_and_revoked_at_once(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let t = Tree::create(&api).await;
    let perms = format!("/api/v1/users/{}/permissions", t.agent_id);
    let before = api.get(&t.admin_token, &perms).await.ok();
    assert_eq!(before["role"], "agent");
    assert!(
        before["effective"]
            .as_array()
            .unwrap()
            .contains(&json!("users.create"))
    );

    // Revoked: the agent's current token can no longer create users.
    let after = api
        .delete(&t.admin_token, &format!("{perms}/users.create"))
        .await
        .ok();
    assert!(
        !after["effective"]
            .as_array()
            .unwrap()
            .contains(&json!("users.create"))
    );
    assert_eq!(after["overrides"][0]["effect"], "revoke");
    api.post(
        &t.agent_token,
        "/api/v1/users",
        json!({ "role": "player", "username": "px9", "password": PASSWORD }),
    )
    .await
    .error(403, "forbidden");
    // Granted back: it can again.
    api.put(&t.admin_token, &format!("{perms}/users.create"), json!({}))
        .await
        .ok();
    create(&api, &t.agent_token, &t.agent_id, "player", "px9").await;

    // Limits: unknown names, powers the role cannot hold, powers the granter lacks, agents
    // granting, and anyone granting to themselves.
    api.put(
        &t.admin_token,
        &format!("{perms}/root.everything"),
        json!({}),
    )
    .await
    .error(422, "validation_error");
    api.put(&t.admin_token, &format!("{perms}/wallets.cash"), json!({}))
        .await
        .error(422, "validation_error");
    api.put(
        &t.admin_token,
        &format!("{perms}/clients.manage"),
        json!({}),
    )
    .await
    .error(403, "forbidden");
    api.put(
        &t.agent_token,
        &format!("/api/v1/users/{}/permissions/users.create", t.player_id),
        json!({}),
    )
    .await
    .error(403, "forbidden");
    api.put(
        &t.admin_token,
        &format!("/api/v1/users/{}/permissions/audit.read", t.admin_id),
        json!({}),
    )
    .await
    .error(403, "forbidden");
    // The platform can give a client admin's powers to an agent's... own scope only.
    let granted = api
        .put(&t.super_token, &format!("{perms}/users.manage"), json!({}))
        .await
        .ok();
    assert!(
        granted["effective"]
            .as_array()
            .unwrap()
            .contains(&json!("users.manage"))
    );
    // A player granted `users.read` is still limited by reach: never other users.
    api.put(
        &t.admin_token,
        &format!("/api/v1/users/{}/permissions/users.read", t.player_id),
        json!({}),
    )
    .await
    .error(422, "validation_error");
    api.get(&t.player_token, &format!("/api/v1/users/{}", t.agent_id))
        .await
        .error(403, "forbidden");
}

backend_tests!(
    listing_and_subtrees,
    rename_and_password_change,
    permissions_are_granted_and_revoked_at_once
);
