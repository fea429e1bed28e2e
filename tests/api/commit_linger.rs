//! The commit linger (issue 22, MySQL): at ordinary rates a lone deposit's commit waits a
//! little for the next one, so the two share one transaction; a client that sends one deposit
//! at a time soon stops it from waiting (its lingers never find company). SQLite does not
//! linger. The hub runs in its own process, so its `/metrics` counts only this test's commits.

use std::time::Duration;

use crate::helpers::{Backend, HubProcess, Infra, Tree, metric_value};

const FOUND: &str = "ledger_commit_lingers_total{found=\"true\"}";
const NOT_FOUND: &str = "ledger_commit_lingers_total{found=\"false\"}";

async fn lingers(hub: &HubProcess) -> (f64, f64) {
    let text = hub.metrics().await;
    let read = |series| metric_value(&text, series).unwrap_or_else(|| panic!("no {series}"));
    (read(FOUND), read(NOT_FOUND))
}

/// Open loop: one deposit every `every`, each its own request.
async fn paced_deposits(hub: &HubProcess, tree: &Tree, n: usize, every: Duration) {
    let api = hub.api();
    let mut tick = tokio::time::interval(every);
    let mut sent = Vec::with_capacity(n);
    for _ in 0..n {
        tick.tick().await;
        let (api, token, player) = (
            api.clone(),
            tree.admin_token.clone(),
            tree.player_id.clone(),
        );
        sent.push(tokio::spawn(async move {
            api.deposit(&token, &player, "1.00").await
        }));
    }
    for reply in sent {
        reply.await.expect("every paced deposit is answered 2xx");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hub_mysql),
    ignore = "needs HUB_TEST_MYSQL_URL (MariaDB/MySQL) at build time"
)]
async fn mysql_pairs_lone_commits_at_ordinary_rates_but_not_one_at_a_time() {
    assert!(Backend::MySql.available());
    let infra = Infra::new(Backend::MySql).await;
    // A slow pace with a long linger: lone commits even on a slow, busy test box. A commit
    // still in flight when the next deposit arrives makes a batch by itself, and then nothing
    // needs to linger: at 100/s a loaded debug hub on a slow disk lingered 7 times in 200.
    let hub = HubProcess::start_with_env(&infra, &[("NASHUB_LEDGER_COMMIT_LINGER_US", "100000")]);
    let api = hub.api();
    let tree = Tree::create(&api).await;

    const PACED: usize = 80;
    let before = lingers(&hub).await;
    paced_deposits(&hub, &tree, PACED, Duration::from_millis(50)).await;
    let paced = lingers(&hub).await;
    let found = paced.0 - before.0;
    assert!(
        found >= 10.0,
        "{found} lingers found company in {PACED} paced deposits ({} did not)",
        paced.1 - before.1
    );

    // One at a time: nothing can join, and after a few lingers only a probe now and then.
    const SERIAL: usize = 160;
    for _ in 0..SERIAL {
        api.deposit(&tree.admin_token, &tree.player_id, "1.00")
            .await;
    }
    let serial = lingers(&hub).await;
    let waited = serial.1 - paced.1;
    assert!(
        waited <= 4.0 + (SERIAL / 16) as f64 + 2.0,
        "{waited} of {SERIAL} one-at-a-time deposits waited for company"
    );
    assert_eq!(serial.0, paced.0, "a lone client's deposit found company");

    assert_eq!(
        api.balance(&tree.admin_token, &tree.player_id).await,
        format!("{}.00", PACED + SERIAL)
    );
    drop(hub);
    infra.assert_ledger_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_does_not_linger() {
    let infra = Infra::new(Backend::Sqlite).await;
    let hub = HubProcess::start(&infra);
    let tree = Tree::create(&hub.api()).await;
    paced_deposits(&hub, &tree, 200, Duration::from_micros(2_500)).await;
    assert_eq!(lingers(&hub).await, (0.0, 0.0));
    assert_eq!(
        hub.api().balance(&tree.admin_token, &tree.player_id).await,
        "200.00"
    );
    drop(hub);
    infra.assert_ledger_ok();
}
