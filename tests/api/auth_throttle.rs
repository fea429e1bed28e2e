//! Failed logins are throttled per account (5 / 15 min) and per IP (50 / 15 min), across hub
//! nodes sharing the database; successful logins and API calls within the per-caller limit are
//! never refused; past it, 429 `rate_limited` with `Retry-After`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::backend_tests;
use crate::helpers::{Api, Backend, Infra, PASSWORD, TestHub, Tree};

/// A second `nashub serve` process on the same database; killed when dropped.
pub struct Node {
    child: Child,
    pub base: String,
}

impl Node {
    pub fn start(infra: &Infra) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nashub"))
            .arg("serve")
            .env_clear()
            .envs(infra.env())
            .env("NASHUB_BIND", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nashub serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(base) = line.strip_prefix("nashub listening on ") {
                    let _ = tx.send(base.to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("node prints its address");
        Node { child, base }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn retry_after(reply: &crate::helpers::Reply) -> u64 {
    reply
        .retry_after
        .as_deref()
        .expect("Retry-After header")
        .parse()
        .unwrap()
}

async fn failed_logins_are_throttled_per_account_across_nodes(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let node = Node::start(&hub.infra);
    let other = Api::new(&node.base);
    let code = Some(tree.code.as_str());

    // Successes are never counted or refused.
    for _ in 0..8 {
        api.login(code, "player1", PASSWORD).await;
    }
    // Four failures, then a success, clears the count.
    for _ in 0..4 {
        api.try_login(code, "player1", "wrong-password")
            .await
            .error(401, "invalid_credentials");
    }
    api.login(code, "player1", PASSWORD).await;
    // Five failures split over two nodes lock the account, on both nodes, even for the right
    // password; other accounts are unaffected.
    for i in 0..5 {
        let node_api = if i % 2 == 0 { &api } else { &other };
        node_api
            .try_login(code, "player1", "wrong-password")
            .await
            .error(401, "invalid_credentials");
    }
    for node_api in [&api, &other] {
        let locked = node_api.try_login(code, "player1", PASSWORD).await;
        locked.error(429, "too_many_login_attempts");
        let wait = retry_after(&locked);
        assert!((800..=900).contains(&wait), "Retry-After {wait}");
    }
    api.login(code, "agent1", PASSWORD).await;
    // Unknown accounts are throttled alike (no way to tell them apart).
    for _ in 0..5 {
        other
            .try_login(code, "nobody", "wrong-password")
            .await
            .error(401, "invalid_credentials");
    }
    api.try_login(code, "nobody", "wrong-password")
        .await
        .error(429, "too_many_login_attempts");

    // The lock ends when the oldest failure leaves the window: age the rows.
    hub.infra
        .execute("UPDATE login_failures SET created_at = created_at - 900000")
        .await;
    api.login(code, "player1", PASSWORD).await;
    // Every failure was audited.
    let audit = api
        .get(
            &tree.admin_token,
            "/api/v1/audit?action=auth.login_failed&limit=200",
        )
        .await
        .ok();
    assert_eq!(audit["items"].as_array().unwrap().len(), 14);
}

async fn failed_logins_are_throttled_per_ip(backend: Backend) {
    // The per-IP request rate (another limit: 20/s) off, so 50 fast failures reach this one.
    let hub = TestHub::start_with(backend, |s| s.rate_limit_auth_per_ip = 0).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let code = Some(tree.code.as_str());
    // 50 failures on 50 accounts (under each account's own limit) exhaust the IP's budget.
    for i in 0..50 {
        api.try_login(code, &format!("someone{i}"), "wrong-password")
            .await
            .error(401, "invalid_credentials");
    }
    let refused = api.try_login(code, "someone-new", "wrong-password").await;
    refused.error(429, "too_many_login_attempts");
    assert!(retry_after(&refused) >= 1);
    api.try_login(code, "player1", PASSWORD)
        .await
        .error(429, "too_many_login_attempts");
}

async fn api_calls_are_limited_per_caller(backend: Backend) {
    let hub = TestHub::start_with(backend, |s| s.rate_limit_per_user = 5).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let path = format!("/api/v1/users/{}", tree.player_id);
    let mut limited = None;
    for _ in 0..40 {
        let reply = api.get(&tree.player_token, &path).await;
        if reply.status == 429 {
            limited = Some(reply);
            break;
        }
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let limited = limited.expect("the burst of 10 runs out within 40 quick calls");
    limited.error(429, "rate_limited");
    assert!(retry_after(&limited) >= 1);
    // Another caller has its own budget; logins are not API calls.
    api.get(&tree.agent_token, &path).await.ok();
    api.login(Some(&tree.code), "player1", PASSWORD).await;
}

/// With the default limit (2000/s, burst 4000) a busy caller is never refused.
async fn default_limit_does_not_refuse_normal_use(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let path = format!("/api/v1/users/{}", tree.player_id);
    let calls = (0..300).map(|_| api.get(&tree.player_token, &path));
    for reply in futures_util::future::join_all(calls).await {
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
}

backend_tests!(
    failed_logins_are_throttled_per_account_across_nodes,
    failed_logins_are_throttled_per_ip,
    api_calls_are_limited_per_caller,
    default_limit_does_not_refuse_normal_use
);
