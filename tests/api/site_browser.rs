//! The player site (issue 27) in headless Chromium: `tests/browser/site.test.js` against a hub
//! started here with two brands (different branding), the catalogue filled from the
//! simulators, and another player's transfer whose id the page must not show. Screenshots land
//! in `target/site-screenshots/`. Ignored unless `HUB_TEST_BROWSER=1` at build time, like
//! `realtime_browser.rs`.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestHub, Tree};
use crate::realtime_browser::{node_modules, tool_present};

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hub_browser),
    ignore = "needs HUB_TEST_BROWSER=1 at build time (Debian chromium, node and npm)"
)]
async fn player_site_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists() && tool_present("node") && tool_present("npm"),
        "the browser test needs chromium, node and npm"
    );
    let dir = node_modules();
    let hub = TestHub::start(Backend::Sqlite).await;
    let api = hub.api();
    let a = Tree::create(&api).await;
    let b = Tree::create(&api).await;
    for (tree, name, colour, logo) in [
        (&a, "Aurora Casino", "#7b1fa2", None),
        (
            &b,
            "Borealis Bet",
            "#00796b",
            Some("data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"),
        ),
    ] {
        api.patch(
            &tree.super_token,
            &format!("/api/v1/clients/{}/settings", tree.client_id),
            json!({ "branding": { "display_name": name, "primary_color": colour, "logo_url": logo } }),
        )
        .await
        .ok();
    }
    crate::site_http::fill_catalogue(&api, &a.super_token).await;
    api.deposit(&a.admin_token, &a.player_id, "100.00").await;
    api.deposit(&a.admin_token, &a.agent_id, "50.00").await;
    // Another player of the same brand, with a transfer of their own.
    let other = api
        .post(
            &a.agent_token,
            "/api/v1/users",
            json!({ "client_id": a.client_id, "role": "player", "username": "player2",
                    "password": PASSWORD, "parent_id": a.agent_id }),
        )
        .await
        .ok();
    let other_id = other["id"].as_str().unwrap().to_owned();
    api.deposit(&a.admin_token, &other_id, "10.00").await;
    let other_token = api.token(Some(&a.code), "player2").await;
    let transfer = api
        .post_key(
            &other_token,
            &format!("/api/v1/users/{other_id}/providers/jdb/transfer-in"),
            "other-transfer",
            json!({ "amount": "7.77" }),
        )
        .await
        .ok();
    let transfer_id = transfer["transfer_id"].as_str().unwrap().to_owned();

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/site-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let base = hub.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("site.test.js")
            .current_dir(&dir)
            .env("HUB_BASE", base)
            .env("CODE_A", &a.code)
            .env("CODE_B", &b.code)
            .env("PLAYER_ID", &a.player_id)
            .env("PASSWORD", PASSWORD)
            .env("ADMIN_TOKEN", &a.admin_token)
            .env("OTHER_TRANSFER_ID", transfer_id)
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
    assert!(stdout.contains("site ok"), "{stdout}");
}
