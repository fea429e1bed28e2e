//! The Redis bus under a Redis failure (issue 5): a throwaway `redis-server` child process of
//! this test (never the machine's shared Redis) is killed and restarted, empty, during traffic.
//! Money mutations never block or fail; events resume when Redis is back; clients learn of the
//! lost history through `refetch` and carry on by seq.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{Backend, Infra, TestHub, Tree};
use crate::realtime::connect;

backend_tests!(redis_restart_during_traffic_loses_no_mutation_and_events_resume);

/// A `redis-server` on its own port, without persistence; killed when dropped.
pub struct ThrowawayRedis {
    pub port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl ThrowawayRedis {
    pub fn start() -> Self {
        let mut redis = ThrowawayRedis {
            port: free_port(),
            child: None,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("throwaway redis-server did not start on port {}", self.port);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn redis_restart_during_traffic_loses_no_mutation_and_events_resume(backend: Backend) {
    let mut redis = ThrowawayRedis::start();
    let infra = Infra::new(backend).await;
    let url = redis.url();
    let hub = TestHub::start_on_with(infra, |s| s.redis_url = Some(url)).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let (mut ws, _) = connect(&hub, &tree.player_token).await;

    for seq in 1..=10_u64 {
        api.deposit(&tree.admin_token, &tree.player_id, "1.00")
            .await;
        assert_eq!(ws.next_of("balance_update").await["seq"], seq);
    }

    // Redis dies: every mutation still commits and answers.
    redis.kill();
    for _ in 0..10 {
        let reply = api
            .deposit(&tree.admin_token, &tree.player_id, "1.00")
            .await;
        assert!(reply["balance"].is_string(), "{reply}");
    }
    // Back, empty: seqs restart. Events queued during the outage and new ones flow again.
    redis.restart();
    for _ in 0..10 {
        api.deposit(&tree.admin_token, &tree.player_id, "1.00")
            .await;
    }

    // The client sees `refetch` (its history is gone), reloads the balance over HTTP, then
    // follows live frames by seq, without a gap, up to the final balance.
    let mut balance: Option<i64> = None;
    let mut last_seq: Option<u64> = None;
    let mut refetched = false;
    while balance != Some(3000) {
        let frame: Value = ws.next_of_any(&["balance_update", "refetch"]).await;
        let seq = frame["seq"].as_u64().unwrap();
        if frame["type"] == "refetch" {
            refetched = true;
            let text = api.balance(&tree.admin_token, &tree.player_id).await;
            balance = Some(text.replace('.', "").parse().unwrap());
            last_seq = Some(seq);
            continue;
        }
        if let Some(last) = last_seq {
            assert_eq!(seq, last + 1, "gap after seq {last}: {frame}");
        }
        last_seq = Some(seq);
        balance = Some(
            frame["data"]["balance"]
                .as_str()
                .unwrap()
                .replace('.', "")
                .parse()
                .unwrap(),
        );
    }
    assert!(
        refetched,
        "a Redis that lost its data must be answered with refetch"
    );
    assert_eq!(
        api.balance(&tree.admin_token, &tree.player_id).await,
        "30.00"
    );
    hub.infra.assert_ledger_ok();
}
