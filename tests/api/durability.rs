//! Acknowledged means durable: a crash (SIGKILL) in a stream of mutations, and on SQLite the
//! ledger writer's WAL sync stage: checkpoints off the commit path, a slow disk (answers and
//! events wait for the sync), a failing disk (the hub stops, nothing acknowledged is lost).

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Api, Backend, HubProcess, Infra, Tree, WsClient, metric_value, ws_url};

/// Per stream: every key sent, and the acknowledged ones with their transaction ids.
type Streams = Vec<tokio::task::JoinHandle<(Vec<String>, Vec<(String, String)>)>>;

/// Deposits of 1.00 from 8 concurrent streams, each request with its own key, until `stop`
/// is set or a request fails (the hub is gone). Returns every key sent and the acknowledged
/// ones with their transaction ids.
fn stream_deposits(api: &Api, tree: &Tree, stop: &Arc<AtomicBool>) -> Streams {
    let path = format!("/api/v1/users/{}/wallet/deposit", tree.player_id);
    (0..8)
        .map(|s| {
            let (api, path, token, stop) = (
                api.clone(),
                path.clone(),
                tree.admin_token.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut sent = Vec::new();
                let mut acked = Vec::new();
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("k-{s}-{i}");
                    sent.push(key.clone());
                    let req = api
                        .http
                        .post(format!("{}{path}", api.base))
                        .bearer_auth(&token)
                        .header("Idempotency-Key", &key)
                        .json(&json!({ "amount": "1.00" }));
                    match req.send().await {
                        Ok(res) if res.status().as_u16() == 200 => {
                            let body: Value = res.json().await.unwrap_or(Value::Null);
                            if let Some(id) = body["transaction_id"].as_str() {
                                acked.push((key, id.to_owned()));
                            }
                        }
                        _ => break,
                    }
                }
                (sent, acked)
            })
        })
        .collect()
}

async fn collect(streams: Streams) -> (Vec<String>, Vec<(String, String)>) {
    let mut sent = Vec::new();
    let mut acked = Vec::new();
    for s in join_all(streams).await {
        let (s, a) = s.unwrap();
        sent.extend(s);
        acked.extend(a);
    }
    (sent, acked)
}

/// After the first process died: the ledger checks out, a fresh process has every
/// acknowledged deposit, and resending every request with its key (acknowledged or not)
/// replays the acknowledged ones and applies each exactly once.
async fn assert_nothing_acknowledged_lost(
    infra: &Infra,
    tree: &Tree,
    sent: &[String],
    acked: Vec<(String, String)>,
) {
    assert!(acked.len() > 20, "the stream ran before the failure");
    infra.assert_ledger_ok();

    let second = HubProcess::start(infra);
    let api = second.api();
    let admin = api.token(Some(&tree.code), "boss").await;
    let path = format!("/api/v1/users/{}/wallet/deposit", tree.player_id);
    let balance_after_crash: f64 = api.balance(&admin, &tree.player_id).await.parse().unwrap();
    assert!(
        balance_after_crash >= acked.len() as f64,
        "{balance_after_crash} < {} acknowledged",
        acked.len()
    );
    let acked: HashMap<String, String> = acked.into_iter().collect();
    for key in sent {
        let reply = api
            .post_key(&admin, &path, key, json!({ "amount": "1.00" }))
            .await;
        let body = reply.ok();
        if let Some(id) = acked.get(key) {
            assert_eq!(&body["transaction_id"], id, "acknowledged {key} replays");
        }
    }
    assert_eq!(
        api.balance(&admin, &tree.player_id).await,
        format!("{}.00", sent.len()),
        "every request applied exactly once"
    );
    infra.assert_ledger_ok();
}

/// SIGKILL during a stream of deposits: after a restart every acknowledged deposit is there,
/// and resending every request with its key (acknowledged or not) applies each exactly once.
async fn kill9_loses_nothing_acknowledged(backend: Backend) {
    let infra = Infra::new(backend).await;
    let first = HubProcess::start(&infra);
    let api = first.api();
    let tree = Tree::create(&api).await;
    let stop = Arc::new(AtomicBool::new(false));
    let streams = stream_deposits(&api, &tree, &stop);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.kill9();
    stop.store(true, Ordering::Relaxed);
    let (sent, acked) = collect(streams).await;
    assert_nothing_acknowledged_lost(&infra, &tree, &sent, acked).await;
}

/// A WAL sync drill where there is no WAL sync stage to act on (MySQL, or SQLite without
/// group commit) is refused when the store opens, rather than silently injecting nothing.
async fn wal_sync_drill_without_a_sync_stage_is_refused(backend: Backend) {
    let infra = Infra::new(backend).await;
    let mut env = vec![("NASHUB_TEST_WAL_SYNC_FAIL_AFTER", "3")];
    if backend == Backend::Sqlite {
        env.push(("NASHUB_LEDGER_BATCH_MAX", "1"));
    }
    // Any command that opens the store checks it; `migrate` exits either way.
    let (code, output) = infra.run_nashub_with("migrate", &env);
    assert_ne!(code, Some(0), "accepted anyway: {output}");
    assert!(output.contains("test_wal_sync_fail_after"), "{output}");
}

backend_tests!(
    kill9_loses_nothing_acknowledged,
    wal_sync_drill_without_a_sync_stage_is_refused
);

fn metric(metrics: &str, series: &str) -> f64 {
    metric_value(metrics, series).unwrap_or_else(|| panic!("{series} missing"))
}

/// A slow disk (each ledger WAL sync takes 400 ms longer): a deposit is answered, and its
/// `balance_update` reaches the player's socket, only after the sync that made it durable.
/// Were either sent at commit, before the sync, both would arrive within milliseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_answers_and_events_wait_for_the_wal_sync() {
    const DELAY: Duration = Duration::from_millis(400);
    let infra = Infra::new(Backend::Sqlite).await;
    let hub = HubProcess::start_with_env(&infra, &[("NASHUB_TEST_WAL_SYNC_DELAY_MS", "400")]);
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let mut ws = WsClient::connect(&ws_url(&hub.base, &tree.player_token)).await;
    for _ in 0..2 {
        assert_eq!(ws.next_of("subscribed").await["type"], "subscribed");
    }
    for (round, balance) in ["2.50", "5.00", "7.50"].into_iter().enumerate() {
        let syncs_before = metric(&hub.metrics().await, "sqlite_wal_syncs_total");
        let started = Instant::now();
        let deposit = {
            let (api, token, player) = (
                api.clone(),
                tree.admin_token.clone(),
                tree.player_id.clone(),
            );
            tokio::spawn(async move {
                let reply = api.deposit(&token, &player, "2.50").await;
                (reply, started.elapsed())
            })
        };
        let update = ws.next_of("balance_update").await;
        let event_after = started.elapsed();
        let (reply, answer_after) = deposit.await.unwrap();
        assert_eq!(update["data"]["transaction_id"], reply["transaction_id"]);
        assert_eq!(update["data"]["balance"], balance);
        assert!(
            answer_after >= DELAY && event_after >= DELAY,
            "round {round}: answered after {answer_after:?}, event after {event_after:?}, \
             but the sync takes {DELAY:?}"
        );
        let syncs_after = metric(&hub.metrics().await, "sqlite_wal_syncs_total");
        assert!(syncs_after > syncs_before, "round {round}: no sync counted");
    }
    drop(hub);
    infra.assert_ledger_ok();
}

/// A failing disk: after 30 ledger WAL syncs the next one fails while 8 streams deposit. The hub stops at
/// once (abort, as PostgreSQL does), answering nothing more; after a restart every
/// acknowledged deposit is there, each request applies exactly once and the ledger checks out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_failed_wal_sync_stops_the_hub_and_loses_nothing_acknowledged() {
    let infra = Infra::new(Backend::Sqlite).await;
    let mut first =
        HubProcess::start_with_env(&infra, &[("NASHUB_TEST_WAL_SYNC_FAIL_AFTER", "30")]);
    let api = first.api();
    let tree = Tree::create(&api).await;
    let stop = Arc::new(AtomicBool::new(false));
    let streams = stream_deposits(&api, &tree, &stop);
    let status = first
        .exit_within(Duration::from_secs(60))
        .expect("the hub stops by itself after the failed sync");
    stop.store(true, Ordering::Relaxed);
    assert_eq!(status.signal(), Some(6), "stopped by abort: {status:?}");
    let (sent, acked) = collect(streams).await;
    assert!(
        acked.len() <= 30 * 8,
        "{} acknowledged, but only 30 syncs of at most 8 deposits each succeeded",
        acked.len()
    );
    assert_nothing_acknowledged_lost(&infra, &tree, &sent, acked).await;
}

/// SQLite: every connection has automatic checkpoints off, and the checkpointer thread still
/// keeps the WAL short: 3,840 deposits write ~80 MB of WAL frames, and the file never grows
/// past a fraction of that (each time the thread has copied everything back, the next write
/// starts the WAL again from its beginning). The ledger checks out afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_is_checkpointed_off_the_commit_path_and_stays_bounded() {
    let infra = Infra::new(Backend::Sqlite).await;
    let hub = HubProcess::start(&infra);
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let path = format!("/api/v1/users/{}/wallet/deposit", tree.player_id);
    let wal = infra.data_dir.path().join("hub.db-wal");
    let mut largest_wal = 0;
    for round in 0..60 {
        let replies = api
            .post_keys_concurrently(
                &tree.admin_token,
                &path,
                (0..64).map(|i| format!("w-{round}-{i}")),
                json!({ "amount": "0.01" }),
            )
            .await;
        assert!(replies.iter().all(|r| r.status == 200));
        largest_wal = largest_wal.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    assert_eq!(
        api.balance(&tree.admin_token, &tree.player_id).await,
        "38.40"
    );
    let metrics = hub.metrics().await;
    assert!(metrics.contains("sqlite_wal_restarts_total"));
    // The checkpointer ends a pass with RESTART past 8,000 frames (~33 MB): the bound is that,
    // not a pass's size (passes fall behind on a slow box: 23 MB seen).
    assert!(largest_wal < 40 << 20, "WAL grew to {largest_wal} bytes");
    // Every acknowledged batch was made durable by the WAL sync stage (one sync may serve
    // several batches queued together, never none).
    let value = |series: &str| -> f64 {
        crate::helpers::metric_value(&metrics, series).unwrap_or_else(|| panic!("{series} missing"))
    };
    let (syncs, commits) = (
        value("sqlite_wal_syncs_total"),
        value("ledger_commits_total"),
    );
    assert!(
        syncs >= 1.0 && syncs <= commits,
        "{syncs} WAL syncs for {commits} commits"
    );
    drop(hub);
    infra.assert_ledger_ok();
}
