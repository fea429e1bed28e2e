//! kill -9 of the hub while transfers are in flight, then a restart: the outbox rows and holds
//! committed before the calls are picked up at start-up and finished by serial number, and no
//! cent is lost or created.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nashub::providers::provider_uid;
use nashub::providers::sim::{self, Faults, SimConfig, SimKind};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Api, Backend, Infra, Tree};

/// A `nashub serve` process with a configuration file; killed (SIGKILL) when dropped.
struct Node {
    child: Child,
    base: String,
}

impl Node {
    fn start(infra: &Infra, config: &std::path::Path) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nashub"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env_clear()
            .envs(infra.env())
            .env("NASHUB_BIND", "127.0.0.1:0")
            .env("NASHUB_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
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

async fn open_transfers(infra: &Infra) -> i64 {
    infra
        .query_one("SELECT COUNT(*) FROM provider_transfers WHERE state IN ('pending', 'unknown')")
        .await
}

async fn providers_hub_killed_mid_transfer(backend: Backend) {
    let config = |kind| SimConfig {
        window_ms: if kind == SimKind::Jdb { 1000 } else { 2000 },
        ..sim::default_config(kind)
    };
    let jdb = sim::spawn(SimKind::Jdb, config(SimKind::Jdb)).unwrap();
    let ls = sim::spawn(SimKind::LuckySports, config(SimKind::LuckySports)).unwrap();
    let infra = Infra::new(backend).await;
    let account = |kind, handle: &sim::SimHandle| {
        let a = sim::account_for(kind, &handle.state.config, &handle.base_url());
        format!(
            "[[providers]]\nname = {:?}\nprovider = {:?}\nbase_url = {:?}\noperator = {:?}\nparent = {:?}\n\
             key = {:?}\niv = {:?}\nsecret = {:?}\ntimeout_ms = 10000\nrequest_window_ms = 2500\n",
            a.name, a.provider, a.base_url, a.operator, a.parent, a.key, a.iv, a.secret
        )
    };
    let toml = format!(
        "provider_reconcile_interval_ms = 200\n{}{}",
        account(SimKind::Jdb, &jdb),
        account(SimKind::LuckySports, &ls)
    );
    let config_path = infra.data_dir.path().join("providers.toml");
    std::fs::write(&config_path, toml).unwrap();

    let node = Node::start(&infra, &config_path);
    let api = Api::new(&node.base);
    let tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.player_id, "100").await;
    for provider in ["jdb", "luckysports"] {
        let p = format!(
            "/api/v1/users/{}/providers/{provider}/balance",
            tree.player_id
        );
        api.get(&tree.player_token, &p).await.ok();
    }
    // JDB applies, then hangs; LuckySports hangs without applying. The hub waits on both.
    jdb.set_faults(Faults {
        drop_after_rate: 1.0,
        drop_ms: 30_000,
        ..Faults::default()
    });
    ls.set_faults(Faults {
        drop_before_rate: 1.0,
        drop_ms: 30_000,
        ..Faults::default()
    });
    let http = reqwest::Client::new();
    for (i, provider) in ["jdb", "jdb", "jdb", "luckysports", "luckysports"]
        .iter()
        .enumerate()
    {
        let req = http
            .post(format!(
                "{}/api/v1/users/{}/providers/{provider}/transfer-in",
                node.base, tree.player_id
            ))
            .bearer_auth(&tree.player_token)
            .header("Idempotency-Key", format!("crash-{i}"))
            .json(&json!({ "amount": "7.00" }));
        tokio::spawn(async move {
            let _ = req.send().await;
        });
    }
    let uid = provider_uid(&tree.player_id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while jdb.balance_minor(&uid, 2) != Some(2100) || open_transfers(&infra).await < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "transfers never got in flight"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(node); // SIGKILL, mid-call.
    assert_eq!(open_transfers(&infra).await, 5);

    jdb.set_faults(Faults::default());
    ls.set_faults(Faults::default());
    let node = Node::start(&infra, &config_path);
    let api = Api::new(&node.base);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while open_transfers(&infra).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "restarted hub never finished the transfers"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // JDB's three applied transfers succeeded; LuckySports' two never happened and came back.
    assert_eq!(
        api.balance(&tree.player_token, &tree.player_id).await,
        "79.00"
    );
    assert_eq!(jdb.balance_minor(&uid, 2), Some(2100));
    assert_eq!(ls.balance_minor(&uid, 2), Some(0));
    let p = format!("/api/v1/users/{}/providers/jdb/balance", tree.player_id);
    assert_eq!(
        api.get(&tree.player_token, &p).await.ok()["balance"],
        "21.00"
    );
    drop(node);
    infra.assert_ledger_ok();
}

backend_tests!(providers_hub_killed_mid_transfer);
