//! The `/live` page in headless Chromium (issue 5): `tests/browser/live.test.js` drives Debian's
//! `chromium` through `playwright-core` against a hub started here.
//!
//! Built as an ignored test unless `HUB_TEST_BROWSER=1` (set by `.ci/run`, which installs
//! chromium) at build time; then a missing chromium, node or npm fails it. `playwright-core` is
//! installed with `npm ci` on first use.

use std::path::Path;
use std::process::Command;

use crate::helpers::{Backend, PASSWORD, TestHub, Tree};

const CHROMIUM: &str = "/usr/bin/chromium";

/// `tests/browser`, its `node_modules` installed with `npm ci` if a package is missing (once per
/// test process: the node tests share it).
pub fn node_modules() -> std::path::PathBuf {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let installed = ["playwright-core", "socket.io-client"]
        .iter()
        .all(|p| dir.join("node_modules").join(p).exists());
    if !installed {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci");
        assert!(status.success(), "npm ci in tests/browser failed");
    }
    dir
}

pub fn tool_present(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hub_browser),
    ignore = "needs HUB_TEST_BROWSER=1 at build time (Debian chromium, node and npm)"
)]
async fn live_page_shows_balance_and_notifications_live_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists() && tool_present("node") && tool_present("npm"),
        "the browser test needs chromium, node and npm"
    );
    let dir = node_modules();

    let hub = TestHub::start(Backend::Sqlite).await;
    let tree = Tree::create(&hub.api()).await;
    let base = hub.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("live.test.js")
            .current_dir(&dir)
            .env("HUB_BASE", base)
            .env("CLIENT_CODE", &tree.code)
            .env("PLAYER_USERNAME", "player1")
            .env("PLAYER_PASSWORD", PASSWORD)
            .env("PLAYER_ID", &tree.player_id)
            .env("AGENT_USERNAME", "agent1")
            .env("ADMIN_TOKEN", &tree.admin_token)
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
    assert!(stdout.contains("live page ok"), "{stdout}");
}
