//! Provider transfers through the simulators, and the reconciler clearing a backlog.
//!
//!     cargo run --release --example providers_bench -- [--seconds 10] [--players 32] \
//!         [--backlog 300] [--mysql mysql://root@127.0.0.1:3306/test]
//!
//! Starts both simulators and a hub (in this process, over real HTTP and loopback) on a fresh
//! SQLite file (or a fresh MySQL database with `--mysql`), then:
//! 1. for each provider, `--players` closed-loop workers alternate transfer-in and transfer-out
//!    of 1.00 for `--seconds`; prints transfers/s and p50/p99 latency (request to answer,
//!    including the provider round trip and every commit);
//! 2. makes the JDB simulator report every transfer "in progress" until `--backlog`
//!    transfers are left `unknown` (applied, reported "in progress"), heals it, and prints how long the reconciler takes to
//!    resolve them all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nashub::config::{ProviderAccountSettings, Settings};
use nashub::providers::sim::{self, Faults, SimKind};
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "bench-admin-password";
const PASSWORD: &str = "bench-password-1";

struct Args {
    seconds: u64,
    players: usize,
    backlog: usize,
    mysql: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 10,
        players: 32,
        backlog: 300,
        mysql: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("flag value");
        match flag.as_str() {
            "--seconds" => a.seconds = value().parse().unwrap(),
            "--players" => a.players = value().parse().unwrap(),
            "--backlog" => a.backlog = value().parse().unwrap(),
            "--mysql" => a.mysql = Some(value()),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn post(
    http: &reqwest::Client,
    url: String,
    token: &str,
    key: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = http.post(url).bearer_auth(token).json(&body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn login(
    http: &reqwest::Client,
    base: &str,
    client: Option<&str>,
    user: &str,
    password: &str,
) -> String {
    let mut body = json!({ "username": user, "password": password });
    if let Some(c) = client {
        body["client"] = json!(c);
    }
    let res: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    res["access_token"].as_str().expect("logged in").to_owned()
}

async fn open_transfers(store: &nashub::store::Store) -> i64 {
    store
        .count_transfers_by_state()
        .await
        .unwrap()
        .iter()
        .filter(|(_, state, _)| state.is_open())
        .map(|(_, _, n)| n)
        .sum()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = args();
    let jdb = sim::spawn(SimKind::Jdb, sim::default_config(SimKind::Jdb)).unwrap();
    let ls = sim::spawn(
        SimKind::LuckySports,
        sim::default_config(SimKind::LuckySports),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database_url = match &args.mysql {
        Some(url) => {
            let name = format!(
                "nashub_bench_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let mut conn = <sqlx::MySqlConnection as sqlx::Connection>::connect(url)
                .await
                .unwrap();
            sqlx::Executor::execute(
                &mut conn,
                sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
            )
            .await
            .unwrap();
            let server = &url[..url.rfind('/').unwrap()];
            format!("{server}/{name}")
        }
        None => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    let account = |kind, h: &sim::SimHandle| ProviderAccountSettings {
        timeout_ms: 250,
        request_window_ms: sim::default_config(kind).window_ms + 5000,
        max_in_flight: 256,
        breaker_failures: 1_000_000,
        ..sim::account_for(kind, &h.state.config, &h.base_url())
    };
    let settings = Settings {
        bind: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        database_url: Some(database_url.clone()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        second_factor_exempt: "admin".into(),
        password_hash_memory_kib: 1024,
        rate_limit_per_user: 0,
        max_unauthenticated_connections_per_ip: 0,
        providers: vec![
            account(SimKind::Jdb, &jdb),
            account(SimKind::LuckySports, &ls),
        ],
        provider_reconcile_interval_ms: 200,
        ..Settings::default()
    };
    let config = settings.resolve().unwrap();
    let store_config = config.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let hub = nashub::startup::Hub::build(config)
                .await
                .expect("hub starts");
            let _ = tx.send(hub.addr);
            let _ = hub.run().await;
        });
    });
    let base = format!("http://{}", rx.await.unwrap());
    let store = nashub::startup::open_store(&store_config).await.unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap();

    let root = login(&http, &base, None, "admin", ADMIN_PASSWORD).await;
    let code = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (_, client) = post(
        &http,
        format!("{base}/api/v1/clients"),
        &root,
        None,
        json!({ "code": code, "name": "Bench", "currency": "USD", "currency_exponent": 2 }),
    )
    .await;
    let client_id = client["id"].as_str().unwrap().to_owned();
    let (_, admin) = post(&http, format!("{base}/api/v1/users"), &root, None, json!({ "client_id": client_id, "role": "client_admin", "username": "boss", "password": PASSWORD })).await;
    let admin_id = admin["id"].as_str().unwrap().to_owned();
    let admin_token = login(&http, &base, Some(&code), "boss", PASSWORD).await;
    let mut players = Vec::new();
    for i in 0..args.players {
        let (_, p) = post(&http, format!("{base}/api/v1/users"), &admin_token, None, json!({ "parent_id": admin_id, "role": "player", "username": format!("player{i}"), "password": PASSWORD })).await;
        let id = p["id"].as_str().unwrap_or_else(|| panic!("{p}")).to_owned();
        post(
            &http,
            format!("{base}/api/v1/users/{id}/wallet/deposit"),
            &admin_token,
            Some(&format!("d{i}")),
            json!({ "amount": "1000000" }),
        )
        .await;
        players.push(id);
    }
    println!(
        "providers_bench: {} players, backend {}",
        args.players,
        store.backend_name()
    );

    for provider in ["jdb", "luckysports"] {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for id in players.clone() {
            let (http, base, token, stop) = (
                http.clone(),
                base.clone(),
                admin_token.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    let dir = if n.is_multiple_of(2) {
                        "transfer-in"
                    } else {
                        "transfer-out"
                    };
                    let key = uuid::Uuid::new_v4().to_string();
                    let started = Instant::now();
                    let (status, body) = post(
                        &http,
                        format!("{base}/api/v1/users/{id}/providers/{provider}/{dir}"),
                        &token,
                        Some(&key),
                        json!({ "amount": "1.00" }),
                    )
                    .await;
                    latencies.push(started.elapsed());
                    assert!(status == 200 || status == 202, "{status} {body}");
                    n += 1;
                }
                latencies
            }));
        }
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let elapsed = started.elapsed().as_secs_f64();
        all.sort();
        println!(
            "{provider:>12}: {} transfers in {elapsed:.1} s = {:.0}/s, p50 {:.1} ms, p99 {:.1} ms",
            all.len(),
            all.len() as f64 / elapsed,
            percentile(&all, 0.50).as_secs_f64() * 1000.0,
            percentile(&all, 0.99).as_secs_f64() * 1000.0,
        );
    }

    // A backlog: JDB applies every transfer but reports it "in progress" (6012) for a while,
    // so each is left `unknown` with its money on hold.
    const IN_PROGRESS_MS: u64 = 600_000;
    jdb.set_faults(Faults {
        in_progress_rate: 1.0,
        in_progress_ms: IN_PROGRESS_MS,
        ..Faults::default()
    });
    let mut tasks = Vec::new();
    let per_player = args.backlog.div_ceil(players.len());
    for id in players.clone() {
        let (http, base, token) = (http.clone(), base.clone(), admin_token.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_player {
                let key = uuid::Uuid::new_v4().to_string();
                post(
                    &http,
                    format!("{base}/api/v1/users/{id}/providers/jdb/transfer-in"),
                    &token,
                    Some(&key),
                    json!({ "amount": "1.00" }),
                )
                .await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let backlog = open_transfers(&store).await;
    jdb.set_faults(Faults::default());
    jdb.finish_in_progress();
    let started = Instant::now();
    while open_transfers(&store).await > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "  reconciler: {backlog} unknown transfers resolved in {:.2} s ({:.0}/s)",
        started.elapsed().as_secs_f64(),
        backlog as f64 / started.elapsed().as_secs_f64().max(1e-9)
    );
    match nashub::ops::check_ledger(&store).await.unwrap() {
        Ok(()) => println!("  ledger ok"),
        Err(v) => println!("  LEDGER VIOLATION: {v}"),
    }
    if let Some(url) = &args.mysql {
        let name = store_config
            .database_url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let mut conn = <sqlx::MySqlConnection as sqlx::Connection>::connect(url)
            .await
            .unwrap();
        let drop_db = format!("DROP DATABASE IF EXISTS {name}");
        let _ = sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(drop_db)).await;
    }
    std::process::exit(0);
}
