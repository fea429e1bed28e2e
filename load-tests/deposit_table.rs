//! The `table` workload (issue 22): what a deposit costs at ordinary rates and at saturation,
//! on one hub, in one command. For each backend (SQLite; MariaDB too with `--mysql URL`): a hub
//! with `--users` players connected by websocket, a warm-up second, then one window per rate of
//! `--rates` (open loop, round-robin over the players, each deposit's `balance_update`
//! awaited), then a closed-loop window (`--in-flight` deposits outstanding), then an idle
//! window (`--idle-secs`). Printed per window: hub CPU per deposit + delivery (and the database
//! server's, from `/proc/<mariadbd pid>/stat`), p50/p99 to `balance_update`, HTTP p99.
//!
//! The open-loop pacer runs on a thread of its own with `std::thread::sleep`: tokio's timer
//! ticks in milliseconds and would charge up to a millisecond of its own lateness to the hub.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::{
    Hub, Run, Seen, Setup, connect_client, contains, json_str, lean_http, now_us, percentile_ms,
    read_loop, setup, tempdir, transaction_id,
};

type Arrivals = Arc<std::sync::Mutex<HashMap<String, i64>>>;

#[derive(Clone, Copy)]
enum Pace {
    Open(u64),
    Closed(usize),
}

struct Row {
    label: String,
    committed: usize,
    failed: u64,
    matched: usize,
    hub_us: f64,
    db_us: Option<f64>,
    p50_ms: f64,
    p99_ms: f64,
    http_p99_ms: f64,
    rate: f64,
}

/// Runs the table on SQLite, then on MariaDB when `r.mysql` is set, and prints it.
pub(super) async fn table(r: &Run) -> anyhow::Result<()> {
    let mut out = Vec::new();
    let (rows, idle) = backend(r, "SQLite", Vec::new(), None).await?;
    out.push(("SQLite", rows, idle));
    if let Some(url) = &r.mysql {
        let db = format!("nashub_table_{}", std::process::id());
        let mut conn = <sqlx::MySqlConnection as sqlx::Connection>::connect(url).await?;
        sqlx::Executor::execute(
            &mut conn,
            sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")),
        )
        .await?;
        let server = url.rsplit_once('/').map_or(url.as_str(), |(s, _)| s);
        let env = vec![("NASHUB_DATABASE_URL", format!("{server}/{db}"))];
        let result = backend(r, "MariaDB", env, db_server_pid()).await;
        sqlx::Executor::execute(
            &mut conn,
            sqlx::AssertSqlSafe(format!("DROP DATABASE {db}")),
        )
        .await?;
        let (rows, idle) = result?;
        out.push(("MariaDB", rows, idle));
    }
    println!("\ntable: hub {}, {} players connected", r.hub_bin, r.users);
    println!(
        "| backend | deposits/s asked (done) | hub CPU per deposit + delivery | DB server CPU per deposit | p50 / p99 to balance_update | HTTP p99 |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, rows, idle) in &out {
        for w in rows {
            println!(
                "| {name} | {} ({:.0}/s, {} ok, {} failed, {} updates) | {:.0} µs | {} | {:.2} / {:.2} ms | {:.2} ms |",
                w.label,
                w.rate,
                w.committed,
                w.failed,
                w.matched,
                w.hub_us,
                w.db_us.map_or("-".into(), |v| format!("{v:.0} µs")),
                w.p50_ms,
                w.p99_ms,
                w.http_p99_ms
            );
        }
        println!("| {name} | {idle} | | | | |");
    }
    Ok(())
}

/// The local database server's pid (`mariadbd` or `mysqld`), for its CPU figures.
fn db_server_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        matches!(comm.trim(), "mariadbd" | "mysqld").then_some(pid)
    })
}

fn db_cpu(pid: Option<u32>) -> f64 {
    pid.map_or(0.0, |p| lean_http::cpu_secs_of(&p.to_string()))
}

async fn backend(
    r: &Run,
    name: &str,
    mut env: Vec<(&'static str, String)>,
    db_pid: Option<u32>,
) -> anyhow::Result<(Vec<Row>, String)> {
    let data = tempdir()?.join(name);
    std::fs::create_dir_all(&data)?;
    env.push(("NASHUB_HTTP_WORKERS", r.hub_workers.to_string()));
    let hub = Hub::start(&r.hub_bin, &data, &env)?;
    let s = setup(&hub.base, r.users).await?;
    let arrivals: Arrivals = Arc::default();
    let addr: std::net::SocketAddr = hub.base.trim_start_matches("http://").parse()?;
    let retries = AtomicU64::new(0);
    let clients = s
        .users
        .iter()
        .map(|(_, token)| {
            connect_client(
                addr,
                "127.0.0.2".parse().expect("an address"),
                &format!("/ws?token={token}"),
                &retries,
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let seen_by = arrivals.clone();
    std::thread::spawn(move || {
        read_loop(clients, |seen| {
            if let Seen::Text { frame, read_us, .. } = seen
                && contains(frame, br#""type":"balance_update""#)
                && let Some(tx) = json_str(frame, "transaction_id")
            {
                seen_by.lock().unwrap().insert(tx, read_us);
            }
        })
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let warm = r.users as u64;
    let ctx = Ctx {
        hub: &hub,
        s: &s,
        arrivals: &arrivals,
        db_pid,
    };
    window(&ctx, "warm-up", 0, Pace::Open(warm), 1).await?;
    let mut rows = Vec::new();
    for (n, &rate) in r.rates.iter().enumerate() {
        let row = window(&ctx, &rate.to_string(), n + 1, Pace::Open(rate), r.secs).await?;
        rows.push(row);
    }
    let label = format!("saturation ({} in flight)", r.in_flight);
    let n = r.rates.len() + 1;
    rows.push(window(&ctx, &label, n, Pace::Closed(r.in_flight), r.secs).await?);
    let (cpu0, db0) = (hub.cpu_secs(), db_cpu(db_pid));
    tokio::time::sleep(Duration::from_secs(r.idle_secs)).await;
    let per_sec = |d: f64| d * 100.0 / r.idle_secs as f64;
    let idle = format!(
        "idle {} s after load: hub {:.2}% of a core{}",
        r.idle_secs,
        per_sec(hub.cpu_secs() - cpu0),
        db_pid.map_or(String::new(), |_| format!(
            ", DB server {:.2}% of a core",
            per_sec(db_cpu(db_pid) - db0)
        ))
    );
    println!("{name}: {idle}");
    drop(hub);
    let _ = std::fs::remove_dir_all(&data);
    Ok((rows, idle))
}

struct Ctx<'a> {
    hub: &'a Hub,
    s: &'a Setup,
    arrivals: &'a Arrivals,
    db_pid: Option<u32>,
}

/// One measured window; deposits are keyed `t<n>-<i>`, so windows never replay each other.
async fn window(
    ctx: &Ctx<'_>,
    label: &str,
    n: usize,
    pace: Pace,
    secs: u64,
) -> anyhow::Result<Row> {
    let done: Arc<std::sync::Mutex<Vec<(String, i64, i64)>>> = Arc::default();
    let failed = Arc::new(AtomicU64::new(0));
    let users: Arc<Vec<String>> = Arc::new(ctx.s.users.iter().map(|(id, _)| id.clone()).collect());
    let (cpu0, db0) = (ctx.hub.cpu_secs(), db_cpu(ctx.db_pid));
    let started = Instant::now();
    let (conns, queue) = match pace {
        Pace::Open(rate) => (super::MUTATION_CONNECTIONS, Some(paced(rate, secs))),
        Pace::Closed(k) => (k, None),
    };
    let queue = queue.map(|q| Arc::new(Mutex::new(q)));
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (base, token) = (ctx.s.base.clone(), ctx.s.super_token.clone());
        let (users, done, failed) = (users.clone(), done.clone(), failed.clone());
        let (queue, next, stop) = (queue.clone(), next.clone(), stop.clone());
        handles.push(tokio::spawn(async move {
            let mut conn = lean_http::Conn::new(&base);
            let auth = format!("Bearer {token}");
            loop {
                let (i, at) = match &queue {
                    Some(q) => match q.lock().await.recv().await {
                        Some(job) => job,
                        None => return,
                    },
                    None if stop.load(Ordering::Relaxed) => return,
                    None => (next.fetch_add(1, Ordering::Relaxed), now_us()),
                };
                let user = &users[i as usize % users.len()];
                match conn.deposit(&auth, user, &format!("t{n}-{i}")).await {
                    Ok((200..=299, body)) => {
                        let tx = transaction_id(body).unwrap_or_default();
                        done.lock().unwrap().push((tx, at, now_us()));
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    if queue.is_none() {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
    }
    for h in handles {
        let _ = h.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The last balance_updates land within milliseconds; wait for them, ≤ 1 s.
    let want = done.lock().unwrap().len();
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        let all_seen = {
            let arrivals = ctx.arrivals.lock().unwrap();
            let done = done.lock().unwrap();
            done.iter().all(|(tx, ..)| arrivals.contains_key(tx))
        };
        if all_seen {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = ctx.hub.cpu_secs() - cpu0;
    let db = db_cpu(ctx.db_pid) - db0;
    let arrivals = ctx.arrivals.lock().unwrap();
    let done = done.lock().unwrap();
    let (mut ws, mut http) = (Vec::new(), Vec::new());
    for (tx, at, answered) in done.iter() {
        http.push((answered - at).max(0) as u32);
        if let Some(read) = arrivals.get(tx) {
            ws.push((read - at).max(0) as u32);
        }
    }
    if let Ok(path) = std::env::var("LOAD_LATENCY_LOG") {
        dump_latencies(&path, label, &done, &arrivals)?;
    }
    let per = |secs: f64| secs * 1e6 / want.max(1) as f64;
    let row = Row {
        label: label.to_owned(),
        committed: want,
        failed: failed.load(Ordering::Relaxed),
        matched: ws.len(),
        hub_us: per(cpu),
        db_us: ctx.db_pid.map(|_| per(db)),
        p50_ms: percentile_ms(&mut ws, 0.5),
        p99_ms: percentile_ms(&mut ws, 0.99),
        http_p99_ms: percentile_ms(&mut http, 0.99),
        rate: want as f64 / elapsed,
    };
    println!(
        "window {label}: {} deposits in {elapsed:.1}s ({} failed, {} balance_updates), hub {:.0} µs/deposit{}, to balance_update p50 {:.2} ms p99 {:.2} ms, HTTP p99 {:.2} ms",
        row.committed,
        row.failed,
        row.matched,
        row.hub_us,
        row.db_us
            .map_or(String::new(), |v| format!(", DB {v:.0} µs/deposit")),
        row.p50_ms,
        row.p99_ms,
        row.http_p99_ms
    );
    Ok(row)
}

/// `LOAD_LATENCY_LOG=<file>`: appends one line per deposit of the window (label, scheduled
/// µs since the epoch, µs to its `balance_update` or -1, µs to its HTTP answer), to find what
/// the slow ones have in common (when they were sent, how they cluster).
fn dump_latencies(
    path: &str,
    label: &str,
    done: &[(String, i64, i64)],
    arrivals: &HashMap<String, i64>,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut out = std::io::BufWriter::new(file);
    for (tx, at, answered) in done {
        let ws = arrivals.get(tx).map_or(-1, |read| read - at);
        writeln!(out, "{label} {at} {ws} {}", answered - at)?;
    }
    out.flush()?;
    Ok(())
}

/// `rate`/s for `secs` s: (index, scheduled µs) sent at their time from a pacing thread.
fn paced(rate: u64, secs: u64) -> tokio::sync::mpsc::UnboundedReceiver<(u64, i64)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let total = rate * secs;
        let interval = 1e6 / rate as f64;
        let start = now_us() + 20_000;
        for i in 0..total {
            let at = start + (i as f64 * interval) as i64;
            let wait = at - now_us();
            if wait > 0 {
                std::thread::sleep(Duration::from_micros(wait as u64));
            }
            if tx.send((i, at)).is_err() {
                return;
            }
        }
    });
    rx
}
