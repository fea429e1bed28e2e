//! The audit trail: what is recorded, who may read it, and `nashub audit-verify` finding any
//! altered, removed or reordered row at its exact position.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::auth_throttle::Node;
use crate::backend_tests;
use crate::helpers::{Api, Backend, PASSWORD, TestHub, Tree};

fn verify(hub: &TestHub) -> (Option<i32>, String) {
    hub.infra.run_nashub("audit-verify")
}

#[track_caller]
fn assert_intact(hub: &TestHub) -> i64 {
    let (code, out) = verify(hub);
    assert_eq!(code, Some(0), "{out}");
    out.trim()
        .strip_prefix("audit log ok: ")
        .and_then(|s| s.strip_suffix(" rows"))
        .unwrap_or_else(|| panic!("{out}"))
        .parse()
        .unwrap()
}

#[track_caller]
fn assert_broken_at(hub: &TestHub, row: i64) {
    let (code, out) = verify(hub);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("audit log broken at row {row}:")),
        "expected row {row}: {out}"
    );
}

async fn hub_with_history(backend: Backend) -> (TestHub, Tree) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.player_id, "10").await;
    (hub, tree)
}

async fn altered_row_is_found(backend: Backend) {
    let (hub, _) = hub_with_history(backend).await;
    let rows = assert_intact(&hub);
    assert!(rows >= 8, "{rows}");
    hub.infra
        .execute("UPDATE audit_log SET after_json = '{\"role\":\"super_admin\"}' WHERE seq = 3")
        .await;
    assert_broken_at(&hub, 3);
}

async fn removed_row_is_found(backend: Backend) {
    let (hub, _) = hub_with_history(backend).await;
    assert_intact(&hub);
    hub.infra
        .execute("DELETE FROM audit_log WHERE seq = 4")
        .await;
    assert_broken_at(&hub, 4);
}

async fn removed_last_row_is_found(backend: Backend) {
    let (hub, _) = hub_with_history(backend).await;
    let rows = assert_intact(&hub);
    hub.infra
        .execute(&format!("DELETE FROM audit_log WHERE seq = {rows}"))
        .await;
    assert_broken_at(&hub, rows);
}

async fn reordered_rows_are_found(backend: Backend) {
    let (hub, _) = hub_with_history(backend).await;
    assert_intact(&hub);
    // Swap rows 5 and 6 whole (positions exchanged).
    hub.infra
        .execute("UPDATE audit_log SET seq = -5 WHERE seq = 5")
        .await;
    hub.infra
        .execute("UPDATE audit_log SET seq = 5 WHERE seq = 6")
        .await;
    hub.infra
        .execute("UPDATE audit_log SET seq = 6 WHERE seq = -5")
        .await;
    assert_broken_at(&hub, 5);
}

/// Someone with write access to the database but not the key alters a row and recomputes
/// every later link (and the head) with a key of their own: still found at that row.
async fn rewritten_chain_without_the_key_is_found(backend: Backend) {
    let (hub, _) = hub_with_history(backend).await;
    let rows = assert_intact(&hub);
    let store = hub.infra.store().await;
    let mut chain = store.audit_chain(0, 10_000).await.unwrap();
    assert_eq!(chain.len() as i64, rows);
    chain[2].entry.after = Some("{\"forged\":true}".into());
    let guess = [0_u8; 32];
    // Rows 1 and 2 stay as they are; from row 3 on everything is re-linked.
    let mut prev = chain[1].hash.clone();
    for row in &chain[2..] {
        let hash = nashub::audit::chain::link_hash(&guess, &prev, row.seq, &row.entry);
        let after = row
            .entry
            .after
            .clone()
            .unwrap_or_default()
            .replace('\'', "''");
        hub.infra
            .execute(&format!(
                "UPDATE audit_log SET after_json = '{after}', prev_hash = '{prev}', hash = '{hash}' WHERE seq = {}",
                row.seq
            ))
            .await;
        prev = hash;
    }
    hub.infra
        .execute(&format!(
            "UPDATE audit_head SET hash = '{prev}' WHERE id = 1"
        ))
        .await;
    assert_broken_at(&hub, 3);
}

/// Appenders on two nodes and many concurrent requests still make one linear chain.
async fn concurrent_appenders_keep_one_chain(backend: Backend) {
    let (hub, tree) = hub_with_history(backend).await;
    let node = Node::start(&hub.infra);
    let apis = [hub.api(), Api::new(&node.base)];
    let calls = (0..40).map(|i| {
        let api = apis[i % 2].clone();
        let tree_code = tree.code.clone();
        let admin = tree.admin_token.clone();
        let player = tree.player_id.clone();
        async move {
            if i % 4 == 0 {
                api.try_login(Some(&tree_code), "player1", PASSWORD).await;
            } else {
                api.deposit(&admin, &player, "1").await;
            }
        }
    });
    let before = assert_intact(&hub);
    join_all(calls).await;
    assert_eq!(assert_intact(&hub), before + 40);
    hub.infra.assert_ledger_ok();
}

fn actions(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn audit_log_is_scoped_and_paginated(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let a = Tree::create(&api).await;
    let b = Tree::create(&api).await;
    api.deposit(&a.admin_token, &a.player_id, "5").await;
    api.try_login(Some(&a.code), "player1", "wrong-password")
        .await
        .error(401, "invalid_credentials");
    api.post(
        &a.admin_token,
        &format!("/api/v1/users/{}/suspend", a.player_id),
        json!({}),
    )
    .await
    .ok();
    api.put(
        &a.admin_token,
        &format!("/api/v1/users/{}/permissions/users.create", a.agent_id),
        json!({}),
    )
    .await
    .ok();
    api.delete(
        &a.admin_token,
        &format!("/api/v1/users/{}/permissions/users.create", a.agent_id),
    )
    .await
    .ok();
    api.patch(
        &a.super_token,
        &format!("/api/v1/clients/{}/settings", a.client_id),
        json!({ "commission_rate": "0.05" }),
    )
    .await
    .ok();

    // Walk client A's trail two rows at a time, newest first.
    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit?limit=2&cursor={c}"),
            None => "/api/v1/audit?limit=2".to_owned(),
        };
        let page = api.get(&a.admin_token, &path).await.ok();
        seen.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let seqs: Vec<i64> = seen.iter().map(|i| i["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats: {seqs:?}"
    );
    assert!(seen.iter().all(|i| i["client_id"] == json!(a.client_id)));
    let all = json!({ "items": seen });
    let names = actions(&all);
    for action in [
        "client.create",
        "user.create",
        "auth.login",
        "auth.login_failed",
        "wallet.deposit",
        "user.suspend",
        "permission.grant",
        "permission.revoke",
        "client.settings_update",
    ] {
        assert!(
            names.iter().any(|n| n == action),
            "{action} missing: {names:?}"
        );
    }
    let suspend = seen.iter().find(|i| i["action"] == "user.suspend").unwrap();
    assert_eq!(suspend["actor_id"], json!(a.admin_id));
    assert_eq!(suspend["target_id"], json!(a.player_id));
    assert_eq!(suspend["before"]["status"], "active");
    assert_eq!(suspend["after"]["status"], "suspended");
    let deposit = seen
        .iter()
        .find(|i| i["action"] == "wallet.deposit")
        .unwrap();
    assert_eq!(deposit["after"]["amount"], "5.00");

    // Client B's admin sees none of it; the super admin sees both clients.
    let b_page = api
        .get(&b.admin_token, "/api/v1/audit?limit=200")
        .await
        .ok();
    assert!(
        b_page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["client_id"] == json!(b.client_id))
    );
    let everything = api
        .get(&a.super_token, "/api/v1/audit?limit=200")
        .await
        .ok();
    let clients: Vec<&Value> = everything["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["client_id"])
        .collect();
    assert!(clients.contains(&&json!(a.client_id)) && clients.contains(&&json!(b.client_id)));
    api.get(&a.super_token, "/api/v1/audit?cursor=abc")
        .await
        .error(422, "validation_error");
    assert_intact(&hub);
}

backend_tests!(
    altered_row_is_found,
    removed_row_is_found,
    removed_last_row_is_found,
    reordered_rows_are_found,
    rewritten_chain_without_the_key_is_found,
    concurrent_appenders_keep_one_chain,
    audit_log_is_scoped_and_paginated
);
