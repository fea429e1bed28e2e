//! Two hub processes on one database (MariaDB and Redis; or one SQLite file) behave as one hub.

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{Api, Backend, HubProcess, Infra, Tree, WsClient, ws_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(hub_mysql, hub_redis)),
    ignore = "needs HUB_TEST_MYSQL_URL and HUB_TEST_REDIS_URL at build time"
)]
async fn two_hub_processes_behave_as_one() {
    assert!(Backend::MySql.available());
    assert!(
        std::env::var("HUB_TEST_REDIS_URL").is_ok(),
        "HUB_TEST_REDIS_URL is not set"
    );
    let infra = Infra::new(Backend::MySql).await;
    let node_a = HubProcess::start(&infra);
    let node_b = HubProcess::start(&infra);
    let (a, b) = (Api::new(&node_a.base), Api::new(&node_b.base));
    let tree = Tree::create(&a).await;

    // A deposit through A reaches a websocket on B.
    let mut ws_b = WsClient::connect(&ws_url(&node_b.base, &tree.player_token)).await;
    assert_eq!(
        ws_b.next_of("subscribed").await["room"],
        format!("user:{}", tree.player_id)
    );
    let deposit = a
        .deposit(&tree.admin_token, &tree.player_id, "100.00")
        .await;
    let update = ws_b.next_of("balance_update").await;
    assert_eq!(update["data"]["balance"], "100.00");
    assert_eq!(update["data"]["transaction_id"], deposit["transaction_id"]);
    assert_eq!(update["seq"], 1);

    // Withdrawals through both nodes at once never overdraw.
    let path = format!("/api/v1/users/{}/wallet/withdraw", tree.player_id);
    let replies = join_all((0..150).map(|i| {
        let api = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (path, token) = (path.clone(), tree.admin_token.clone());
        async move {
            api.post_key(
                &token,
                &path,
                &format!("w-{i}"),
                json!({ "amount": "1.00" }),
            )
            .await
        }
    }))
    .await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let refused = replies
        .iter()
        .filter(|r| r.status == 409 && r.body["error"]["code"] == "insufficient_funds")
        .count();
    assert_eq!((ok, refused), (100, 50));
    assert_eq!(a.balance(&tree.admin_token, &tree.player_id).await, "0.00");
    assert_eq!(b.balance(&tree.admin_token, &tree.player_id).await, "0.00");

    // Every event reaches B once, with seq agreed across nodes: 2..=101, no gap, no repeat.
    let mut balances = Vec::new();
    for expected_seq in 2..=101_u64 {
        let frame = ws_b.next_of("balance_update").await;
        assert_eq!(frame["seq"], expected_seq, "{frame}");
        balances.push(frame["data"]["balance"].as_str().unwrap().to_owned());
    }
    balances.sort_by_key(|b| b.replace('.', "").parse::<i64>().unwrap());
    let expected: Vec<String> = (0..100).map(|n| format!("{n}.00")).collect();
    assert_eq!(balances, expected);

    // History lives in Redis: a socket on A resumes from seq 95 and gets 96..=101 in order.
    let room = format!("user:{}", tree.player_id);
    let mut ws_a = WsClient::connect(&ws_url(&node_a.base, &tree.player_token)).await;
    assert_eq!(ws_a.next_of("subscribed").await["seq"], 101);
    ws_a.send(json!({ "type": "resume", "room": room, "seq": 95 }))
        .await;
    for seq in 96..=101_u64 {
        let frame = ws_a.next_of("balance_update").await;
        assert_eq!(frame["seq"], seq, "{frame}");
    }
    infra.assert_ledger_ok();
}

/// Two hub processes on one SQLite file: each has its own ledger writer, and the file's write
/// lock (taken up front, waited for by the busy handler) keeps them from overdrawing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hub_processes_on_one_sqlite_file_never_overdraw() {
    let infra = Infra::new(Backend::Sqlite).await;
    let node_a = HubProcess::start(&infra);
    let node_b = HubProcess::start(&infra);
    let (a, b) = (Api::new(&node_a.base), Api::new(&node_b.base));
    let tree = Tree::create(&a).await;
    a.deposit(&tree.admin_token, &tree.player_id, "100.00")
        .await;

    // Withdrawals through both nodes at once, and deposits to the agent meanwhile.
    let withdraw = format!("/api/v1/users/{}/wallet/withdraw", tree.player_id);
    let deposit = format!("/api/v1/users/{}/wallet/deposit", tree.agent_id);
    let replies = join_all((0..300).map(|i| {
        let api = if i % 2 == 0 { a.clone() } else { b.clone() };
        let token = tree.admin_token.clone();
        let path = if i % 3 == 0 {
            deposit.clone()
        } else {
            withdraw.clone()
        };
        async move {
            let reply = api
                .post_key(
                    &token,
                    &path,
                    &format!("k-{i}"),
                    json!({ "amount": "1.00" }),
                )
                .await;
            (i % 3 == 0, reply)
        }
    }))
    .await;
    let count = |want_deposit: bool, status: u16| {
        replies
            .iter()
            .filter(|(is_deposit, r)| *is_deposit == want_deposit && r.status == status)
            .filter(|(_, r)| r.status != 409 || r.body["error"]["code"] == "insufficient_funds")
            .count()
    };
    // 200 withdrawals of 1.00 against 100.00: exactly 100 pass, 100 are refused.
    assert_eq!((count(false, 200), count(false, 409)), (100, 100));
    assert_eq!(count(true, 200), 100);
    for api in [&a, &b] {
        assert_eq!(
            api.balance(&tree.admin_token, &tree.player_id).await,
            "0.00"
        );
        assert_eq!(
            api.balance(&tree.admin_token, &tree.agent_id).await,
            "100.00"
        );
    }
    infra.assert_ledger_ok();
}
