//! The official `socket.io-client` (npm) against `/socket.io/` (issue 21):
//! `tests/browser/socketio.test.js` connects with a token, joins rooms, checks refused joins,
//! `balance_update` after deposits this test makes over HTTP (asked on its stdout, answered
//! `ok` on its stdin), seq, resume and refetch.
//!
//! Gated like the browser test (`HUB_TEST_BROWSER=1` at build time, which also brings node and
//! npm); `npm ci` installs `socket.io-client` on first use.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::helpers::{Backend, TestHub, Tree};
use crate::realtime_browser::{node_modules, tool_present};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hub_browser),
    ignore = "needs HUB_TEST_BROWSER=1 at build time (node and npm)"
)]
async fn official_socketio_client_joins_receives_and_resumes() {
    assert!(
        tool_present("node") && tool_present("npm"),
        "the socket.io-client test needs node and npm"
    );
    let dir = node_modules();
    let hub = TestHub::start(Backend::Sqlite).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let other = Tree::create(&api).await;
    let runtime = tokio::runtime::Handle::current();
    let base = hub.base.clone();
    let (stdout, stderr, status) = tokio::task::spawn_blocking(move || {
        let mut node = Command::new("node")
            .arg("socketio.test.js")
            .current_dir(&dir)
            .env("HUB_BASE", base)
            .env("PLAYER_ID", &tree.player_id)
            .env("PLAYER_TOKEN", &tree.player_token)
            .env("AGENT_TOKEN", &tree.agent_token)
            .env("OTHER_PLAYER_ID", &other.player_id)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run node");
        let mut stdin = node.stdin.take().unwrap();
        let mut seen = String::new();
        for line in BufReader::new(node.stdout.take().unwrap()).lines() {
            let line = line.expect("node output");
            seen.push_str(&line);
            seen.push('\n');
            if let Some(amount) = line.strip_prefix("HUB? deposit ") {
                runtime.block_on(api.deposit(&tree.admin_token, &tree.player_id, amount));
                writeln!(stdin, "ok").expect("answer node");
            }
        }
        let output = node.wait_with_output().expect("node ends");
        (
            seen,
            String::from_utf8_lossy(&output.stderr).into_owned(),
            output.status,
        )
    })
    .await
    .unwrap();
    assert!(
        status.success(),
        "socket.io-client test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.ends_with("socketio ok\n"), "{stdout}");
}
