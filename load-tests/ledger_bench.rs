//! Durable wallet mutations per second over HTTP, group commit vs one commit per mutation.
//!
//!     cargo build --release && cargo run --release --example ledger_bench -- [options]
//!
//! For each backend (SQLite with `synchronous=FULL`; MariaDB when `--mysql URL` is given or
//! `HUB_TEST_MYSQL_URL` is set) it starts a release `nashub serve` process, creates one client
//! with `--wallets` players, then runs each workload for `--seconds` in both modes of the same
//! server: `group` (default settings) and `naive` (`NASHUB_LEDGER_BATCH_MAX=1`). Workloads:
//! deposits to players chosen by a Zipf law (s = 1), and all deposits to one hot wallet.
//! Closed loop with `--concurrency` requests in flight, each on its own keep-alive connection
//! of a minimal HTTP client (`lean_http.rs`) on one thread, so the client takes as little of the
//! shared cores as it can; latency is request to acknowledgement. Hub and client CPU per
//! mutation are both printed.
//! Prints one line per run and the group/naive ratio.
//!
//! `--rollups-compare` (issue 17): group mode with the report feed on and off, alternating
//! (on, off, on, off), after `--prime` seconds (default 10) of load with the feed on (the
//! day's first entries of each player fed, as on a hub that has run today), each window after
//! `--warmup` seconds (default 3) of the same load and a feed catch-up; an on run's rate counts
//! the time to feed what its window left waiting.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "lean_http.rs"]
#[allow(
    dead_code,
    reason = "shared with load-realtime; this benchmark only deposits"
)]
mod lean_http;

const ADMIN_PASSWORD: &str = "bench-admin-password";
const PASSWORD: &str = "bench-password-1";

struct Args {
    seconds: u64,
    wallets: usize,
    concurrency: usize,
    mysql: Option<String>,
    sqlite: bool,
    hot_only: bool,
    zipf_only: bool,
    /// Group mode with and without the report rollup upkeep (issue 17), alternating
    /// (on, off, on, off), instead of group vs naive.
    rollups_compare: bool,
    /// Seconds of the same load before each measured window (rollups-compare: default 3).
    warmup: Option<u64>,
    /// Rollups-compare: seconds of load with the feed on before the pairs (default 10).
    prime: u64,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 10,
        wallets: 10_000,
        concurrency: 128,
        mysql: std::env::var("HUB_TEST_MYSQL_URL").ok(),
        sqlite: true,
        hot_only: false,
        zipf_only: false,
        rollups_compare: false,
        warmup: None,
        prime: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("flag value");
        match flag.as_str() {
            "--seconds" => a.seconds = value().parse().unwrap(),
            "--wallets" => a.wallets = value().parse().unwrap(),
            "--concurrency" => a.concurrency = value().parse().unwrap(),
            "--mysql" => a.mysql = Some(value()),
            "--no-mysql" => a.mysql = None,
            "--no-sqlite" => a.sqlite = false,
            "--hot-only" => a.hot_only = true,
            "--zipf-only" => a.zipf_only = true,
            "--rollups-compare" => a.rollups_compare = true,
            "--warmup" => a.warmup = Some(value().parse().unwrap()),
            "--prime" => a.prime = value().parse().unwrap(),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// A `nashub serve` process on one database.
struct Hub {
    child: Child,
    base: String,
}

impl Hub {
    fn start(env: &[(String, String)], naive: bool) -> Hub {
        let exe = std::env::current_exe().unwrap();
        let bin = exe.parent().unwrap().parent().unwrap().join("nashub");
        assert!(
            bin.exists(),
            "{} is missing: run `cargo build --release` first",
            bin.display()
        );
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .envs(env.iter().cloned())
            .env("NASHUB_BIND", "127.0.0.1:0")
            .env("NASHUB_LOG", "warn")
            .env("NASHUB_RATE_LIMIT_PER_USER", "0")
            // Every request comes from loopback, hundreds of fresh connections at once.
            .env("NASHUB_MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if naive {
            cmd.env("NASHUB_LEDGER_BATCH_MAX", "1");
        }
        let mut child = cmd.spawn().expect("start nashub");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(base) = line.strip_prefix("nashub listening on ") {
                    let _ = tx.send(base.to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("hub starts");
        Hub { child, base }
    }
}

impl Hub {
    /// CPU seconds (user + system) the hub process has used so far.
    fn cpu_seconds(&self) -> f64 {
        lean_http::cpu_secs_of(&self.child.id().to_string())
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(base: &str, connections: usize) -> Client {
        Client {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(connections)
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            base: base.to_owned(),
        }
    }

    async fn post(&self, token: Option<&str>, path: &str, body: Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn login(&self, client: Option<&str>, username: &str, password: &str) -> String {
        let mut body = json!({ "username": username, "password": password });
        if let Some(c) = client {
            body["client"] = json!(c);
        }
        let (status, body) = self.post(None, "/api/v1/auth/login", body).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Feeds every entry waiting for the report rollups (a report catches the feed up before
    /// it reads; this one reads one empty day); seconds taken.
    async fn feed_catch_up(&self, token: &str) -> f64 {
        let t = Instant::now();
        let res = self
            .http
            .get(format!(
                "{}/api/v1/reports/client-metrics?from=2020-01-01&to=2020-01-02",
                self.base
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("report");
        assert_eq!(res.status().as_u16(), 200, "{:?}", res.text().await);
        t.elapsed().as_secs_f64()
    }

    async fn metric(&self, name: &str) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Creates the client, its admin and the players; returns (client code, player ids).
async fn populate(c: &Client, wallets: usize) -> (String, Vec<String>) {
    let root = c.login(None, "admin", ADMIN_PASSWORD).await;
    let code = format!("bench{}", std::process::id());
    let (s, client) = c
        .post(
            Some(&root),
            "/api/v1/clients",
            json!({ "code": code, "name": "Bench", "currency": "USD", "currency_exponent": 2 }),
        )
        .await;
    assert_eq!(s, 201, "{client}");
    let client_id = client["id"].as_str().unwrap().to_owned();
    let (s, admin) = c
        .post(
            Some(&root),
            "/api/v1/users",
            json!({ "client_id": client_id, "role": "client_admin", "username": "boss", "password": PASSWORD }),
        )
        .await;
    assert_eq!(s, 201, "{admin}");
    let admin_id = admin["id"].as_str().unwrap().to_owned();
    let token = c.login(Some(&code), "boss", PASSWORD).await;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (c, token, admin_id, next) = (
            Client {
                http: c.http.clone(),
                base: c.base.clone(),
            },
            token.clone(),
            admin_id.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= wallets {
                    return ids;
                }
                let (s, user) = c
                    .post(
                        Some(&token),
                        "/api/v1/users",
                        json!({ "parent_id": admin_id, "role": "player", "username": format!("player{i}"), "password": PASSWORD }),
                    )
                    .await;
                assert_eq!(s, 201, "{user}");
                ids.push((i, user["id"].as_str().unwrap().to_owned()));
            }
        }));
    }
    let mut all = Vec::with_capacity(wallets);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    (code, all.into_iter().map(|(_, id)| id).collect())
}

/// Zipf(s = 1) over `n` ranks by inverse CDF.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                acc += 1.0 / k as f64;
                acc
            })
            .collect();
        for v in &mut cdf {
            *v /= acc;
        }
        Zipf { cdf }
    }

    fn sample(&self, u: f64) -> usize {
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// xorshift64*: the load generator needs speed, not quality.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Outcome {
    rate: f64,
    line: String,
    /// Mutations acknowledged, the window's seconds, and the hub's CPU seconds in it.
    count: usize,
    elapsed: f64,
    cpu: f64,
}

async fn run(
    hub: &Hub,
    token: &str,
    players: &[String],
    hot: bool,
    args: &Args,
    seconds: u64,
    label: &str,
) -> Outcome {
    let c = Arc::new(Client::new(&hub.base, args.concurrency));
    let commits_before = c.metric("ledger_commits_total").await;
    let cpu_before = hub.cpu_seconds();
    let own_cpu_before = lean_http::own_cpu_secs();
    let zipf = Arc::new(Zipf::new(players.len()));
    let players = Arc::new(players.to_vec());
    let stop = Arc::new(AtomicBool::new(false));
    // Keys must be new to every run: a run that reused an earlier run's keys would only
    // replay its answers (same key, same body) and measure no writes at all.
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let run_id = format!(
        "{}x{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.concurrency {
        let (c, zipf, players, stop, token, run_id) = (
            c.clone(),
            zipf.clone(),
            players.clone(),
            stop.clone(),
            token.to_owned(),
            run_id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) * 0x1000_0000_01B3));
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut errors = 0u64;
            let mut n = 0u64;
            let mut conn = lean_http::Conn::new(&c.base);
            let auth = format!("Bearer {token}");
            let mut key = String::new();
            while !stop.load(Ordering::Relaxed) {
                use std::fmt::Write;
                let target = if hot { 0 } else { zipf.sample(rng.next_f64()) };
                key.clear();
                let _ = write!(key, "b{run_id}-{w}-{n}");
                let t0 = Instant::now();
                let res = conn.deposit(&auth, &players[target], &key).await;
                n += 1;
                match res {
                    Ok((200..=299, _)) => latencies.push(t0.elapsed().as_micros() as u32),
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = hub.cpu_seconds() - cpu_before;
    let own_cpu = lean_http::own_cpu_secs() - own_cpu_before;
    let commits = c.metric("ledger_commits_total").await - commits_before;
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |&us| us as f64 / 1000.0)
    };
    let rate = all.len() as f64 / elapsed;
    let line = format!(
        "{label:<32} {:>9.0} mutations/s  p50 {:>6.2} ms  p99 {:>6.2} ms  p999 {:>7.2} ms  {:>6.1} per commit  {:>5.0} us hub CPU each ({:.0} us client)  errors {errors}",
        rate,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        all.len() as f64 / commits.max(1.0),
        cpu * 1e6 / all.len().max(1) as f64,
        own_cpu * 1e6 / all.len().max(1) as f64,
    );
    println!("{line}");
    Outcome {
        rate,
        line,
        count: all.len(),
        elapsed,
        cpu,
    }
}

async fn bench_backend(name: &str, env: Vec<(String, String)>, args: &Args) -> Vec<String> {
    let mut lines = Vec::new();
    let hub = Hub::start(&env, false);
    let setup = Client::new(&hub.base, 64);
    let t = Instant::now();
    let (code, players) = populate(&setup, args.wallets).await;
    println!(
        "{name}: created {} wallets in {:.1} s",
        players.len(),
        t.elapsed().as_secs_f64()
    );
    drop(hub);
    let workloads: &[bool] = if args.hot_only {
        &[true]
    } else if args.zipf_only {
        &[false]
    } else {
        &[false, true]
    };
    for &hot in workloads {
        let workload = if hot {
            "hot wallet".to_owned()
        } else {
            format!("zipf {}", players.len())
        };
        if args.rollups_compare {
            let mut off_env = env.clone();
            off_env.push(("NASHUB_BENCH_REPORT_ROLLUPS".into(), "false".into()));
            let mut rates = [Vec::new(), Vec::new()];
            let mut cpus = [Vec::new(), Vec::new()];
            // A hub that has run today: the players' first entries of the day (their day,
            // week and month marks, first deposits, agent counts) are fed before the pairs,
            // once a day in production, not in every window.
            if args.prime > 0 {
                let hub = Hub::start(&env, false);
                let c = Client::new(&hub.base, 4);
                let token = c.login(Some(&code), "boss", PASSWORD).await;
                let label = format!("{name} group rollups on {workload} (priming)");
                run(&hub, &token, &players, hot, args, args.prime, &label).await;
                let tail = c.feed_catch_up(&token).await;
                println!("{label}: feed tail {tail:.2} s");
            }
            for (i, on) in [true, false, true, false].into_iter().enumerate() {
                let hub = Hub::start(if on { &env } else { &off_env }, false);
                let c = Client::new(&hub.base, 4);
                let token = c.login(Some(&code), "boss", PASSWORD).await;
                let mode = if on { "rollups on" } else { "rollups off" };
                let label = format!("{name} group {mode} {workload} (run {})", i / 2 + 1);
                // Steady state: the warm-up fills the node's caches (a long-running hub's
                // feed has seen its players this quarter hour), then the feed is caught up
                // (an off run leaves its entries waiting: the next on run must not pay for
                // them) and, with rollups on, the feed of the window's own entries still
                // waiting at its end is timed and counted in the window.
                let warmup = args.warmup.unwrap_or(3);
                if warmup > 0 {
                    run(
                        &hub,
                        &token,
                        &players,
                        hot,
                        args,
                        warmup,
                        &format!("{label} warm-up"),
                    )
                    .await;
                }
                c.feed_catch_up(&token).await;
                let mut out = run(&hub, &token, &players, hot, args, args.seconds, &label).await;
                if on {
                    let cpu_before = hub.cpu_seconds();
                    let tail = c.feed_catch_up(&token).await;
                    out.cpu += hub.cpu_seconds() - cpu_before;
                    out.rate = out.count as f64 / (out.elapsed + tail);
                    let line = format!(
                        "{label}: feed tail {:.2} s, {:.0} mutations/s with it",
                        tail, out.rate
                    );
                    println!("{line}");
                    lines.push(line);
                }
                lines.push(out.line);
                cpus[usize::from(!on)].push(out.cpu * 1e6 / out.count.max(1) as f64);
                rates[usize::from(!on)].push(out.rate);
            }
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let (on, off) = (mean(&rates[0]), mean(&rates[1]));
            let cost = format!(
                "{name} {workload}: rollups on {on:.0}/s, off {off:.0}/s: upkeep costs {:.1}% of throughput",
                (off - on) / off.max(1.0) * 100.0
            );
            println!("{cost}");
            lines.push(cost);
            // On a box whose cores are shared, CPU per mutation moves less than throughput.
            let (on, off) = (mean(&cpus[0]), mean(&cpus[1]));
            let cost = format!(
                "{name} {workload}: hub CPU per mutation rollups on {on:.0} us (feed tail included), off {off:.0} us: upkeep costs {:.1}% of CPU",
                (on - off) / off.max(1.0) * 100.0
            );
            println!("{cost}");
            lines.push(cost);
            continue;
        }
        let mut rates = Vec::new();
        for naive in [false, true] {
            let hub = Hub::start(&env, naive);
            let c = Client::new(&hub.base, 4);
            let token = c.login(Some(&code), "boss", PASSWORD).await;
            let mode = if naive { "naive" } else { "group" };
            let out = run(
                &hub,
                &token,
                &players,
                hot,
                args,
                args.seconds,
                &format!("{name} {mode} {workload}"),
            )
            .await;
            lines.push(out.line);
            rates.push(out.rate);
        }
        let ratio = format!(
            "{name} {workload}: group commit is {:.1}x the naive mode",
            rates[0] / rates[1].max(1.0)
        );
        println!("{ratio}");
        lines.push(ratio);
    }
    lines
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = args();
    println!(
        "ledger_bench: {} s per run, {} wallets, {} requests in flight, {} cores",
        args.seconds,
        args.wallets,
        args.concurrency,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut summary = Vec::new();
    if args.sqlite {
        let dir = tempfile::tempdir().unwrap();
        let env = vec![
            ("NASHUB_DATA_DIR".into(), dir.path().display().to_string()),
            ("NASHUB_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
            ("NASHUB_SECOND_FACTOR_EXEMPT".into(), "admin".into()),
            ("NASHUB_PASSWORD_HASH_MEMORY_KIB".into(), "1024".into()),
        ];
        summary.extend(bench_backend("sqlite", env, &args).await);
    }
    if let Some(url) = &args.mysql {
        let db = format!("nashub_bench_{}", std::process::id());
        let mut conn = <sqlx::MySqlConnection as sqlx::Connection>::connect(url)
            .await
            .expect("MySQL reachable");
        sqlx::Executor::execute(
            &mut conn,
            sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")),
        )
        .await
        .unwrap();
        let server = url.rsplit_once('/').map_or(url.as_str(), |(s, _)| s);
        let dir = tempfile::tempdir().unwrap();
        let env = vec![
            ("NASHUB_DATA_DIR".into(), dir.path().display().to_string()),
            ("NASHUB_DATABASE_URL".into(), format!("{server}/{db}")),
            ("NASHUB_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
            ("NASHUB_SECOND_FACTOR_EXEMPT".into(), "admin".into()),
            ("NASHUB_PASSWORD_HASH_MEMORY_KIB".into(), "1024".into()),
        ];
        summary.extend(bench_backend("mariadb", env, &args).await);
        sqlx::Executor::execute(
            &mut conn,
            sqlx::AssertSqlSafe(format!("DROP DATABASE {db}")),
        )
        .await
        .unwrap();
    }
    println!("\nsummary");
    for line in summary {
        println!("  {line}");
    }
}
