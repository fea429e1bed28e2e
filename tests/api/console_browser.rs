//! The console (issue 20) in headless Chromium: `tests/browser/console.test.js` drives Debian's
//! `chromium` through `playwright-core` against a hub started here, for every role.
//! Screenshots land in `target/console-screenshots/`.
//!
//! Built as an ignored test unless `HUB_TEST_BROWSER=1` at build time (as the `/live` test).

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::helpers::{ADMIN_PASSWORD, Backend, PASSWORD, TestHub, Tree};
use crate::realtime_browser::{node_modules, tool_present};

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hub_browser),
    ignore = "needs HUB_TEST_BROWSER=1 at build time (Debian chromium, node and npm)"
)]
async fn the_console_works_per_role_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists() && tool_present("node") && tool_present("npm"),
        "the browser test needs chromium, node and npm"
    );
    let dir = node_modules();
    let hub = TestHub::start(Backend::Sqlite).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    // Another agent's player, which agent1 must not reach.
    api.post(
        &tree.admin_token,
        "/api/v1/users",
        json!({ "role": "agent", "username": "agent2", "password": PASSWORD }),
    )
    .await
    .ok();
    let agent2 = api.token(Some(&tree.code), "agent2").await;
    let other_player = api
        .post(
            &agent2,
            "/api/v1/users",
            json!({ "role": "player", "username": "player2", "password": PASSWORD }),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The agent's credits come out of its own wallet.
    api.deposit(&tree.admin_token, &tree.agent_id, "100.00")
        .await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    let base = hub.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("console.test.js")
            .current_dir(&dir)
            .env("HUB_BASE", base)
            .env("CLIENT_CODE", &tree.code)
            .env("CLIENT_ID", &tree.client_id)
            .env("PASSWORD", PASSWORD)
            .env("SUPER_PASSWORD", ADMIN_PASSWORD)
            .env("PLAYER_ID", &tree.player_id)
            .env("PLAYER_TOKEN", &tree.player_token)
            .env("OTHER_PLAYER_ID", other_player)
            .env("ADMIN_ID", &tree.admin_id)
            .env("SCREENSHOTS", shots)
            .env("CHROMIUM", CHROMIUM)
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("console ok"), "{stdout}");
}
