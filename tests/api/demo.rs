//! `nashub demo` (issue 24): two demo brands with a four-level agent tree and players, then
//! play through the provider simulators; safe to start again; refused next to real clients.

use std::io::BufRead;
use std::time::Duration;

use crate::backend_tests;
use crate::helpers::{Backend, HubProcess, Infra};

/// `nashub demo` on this infrastructure until it says it is seeded; the process and its lines.
fn start_demo(infra: &Infra) -> (std::process::Child, Vec<String>) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nashub"))
        .args(["demo", "--players", "6", "--rate", "20"])
        .env_clear()
        .envs(infra.env())
        .env("NASHUB_BIND", "127.0.0.1:0")
        .env("NASHUB_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start nashub demo");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(90)) {
        let done = line.starts_with("demo: seeded");
        lines.push(line);
        if done {
            return (child, lines);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("demo never seeded: {lines:?}");
}

async fn count(infra: &Infra, sql: &str) -> i64 {
    infra.query_one::<i64>(sql).await
}

async fn demo_seeds_plays_and_stays_demo(backend: Backend) {
    let infra = Infra::new(backend).await;
    let (mut demo, lines) = start_demo(&infra);
    assert!(
        lines.iter().any(|l| l.contains("demo-operator")),
        "{lines:?}"
    );
    assert_eq!(
        count(
            &infra,
            "SELECT COUNT(*) FROM clients WHERE code LIKE 'demo-%'"
        )
        .await,
        2
    );
    assert_eq!(
        count(&infra, "SELECT COUNT(*) FROM users WHERE role = 'player'").await,
        12
    );
    // Four agent levels below each brand's admin: the deepest agents sit at depth 4.
    assert_eq!(
        count(&infra, "SELECT MAX(depth) FROM users WHERE role = 'agent'").await,
        4
    );
    // Play reaches the providers: rounds with results, through the same API as anyone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while count(
        &infra,
        "SELECT COUNT(*) FROM journal WHERE kind = 'game_result'",
    )
    .await
        == 0
    {
        assert!(tokio::time::Instant::now() < deadline, "no game results");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = demo.kill();
    let _ = demo.wait();
    infra.assert_ledger_ok();

    // Again: the brands are there, nothing is seeded twice.
    let (mut demo, _) = start_demo(&infra);
    let _ = demo.kill();
    let _ = demo.wait();
    assert_eq!(count(&infra, "SELECT COUNT(*) FROM clients").await, 2);
    assert_eq!(
        count(&infra, "SELECT COUNT(*) FROM users WHERE role = 'player'").await,
        12
    );

    // A real client next to it: the demo refuses to touch that database.
    let hub = HubProcess::start(&infra);
    let api = hub.api();
    let admin = api.token(None, "admin").await;
    api.post(
        &admin,
        "/api/v1/clients",
        serde_json::json!({ "code": "acme", "name": "Acme", "currency": "USD", "currency_exponent": 2 }),
    )
    .await
    .ok();
    hub.terminate();
    let (code, out) = infra.run_nashub_args(&["demo"], &[("NASHUB_BIND", "127.0.0.1:0")]);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("acme") && out.contains("not demo data"),
        "{out}"
    );
}

backend_tests!(demo_seeds_plays_and_stays_demo);
