//! The HTTP floor under `ledger_bench`: the same requests, from the same client, at the same
//! concurrency, against an actix-web server (same version and worker count as the hub) whose
//! handler does only what any handler must: route, read the two headers, parse the JSON body
//! and answer a deposit-sized JSON. No authentication, no ledger, no database.
//!
//! What it prints is the most any HTTP mutation path can reach on this box with the load
//! generator beside it, and the server CPU per request that no ledger design can remove.
//!
//!     cargo build --release --example http_floor
//!     target/release/examples/http_floor [--seconds 10] [--concurrency 128] [--workers 2] [--rate R]
//!
//! `--rate R` sends R requests a second on one connection, each after the last was answered
//! (open loop, as `load-realtime run table`), instead of `--concurrency` back to back: the
//! floor of an HTTP request at an ordinary rate, where the server idles between requests
//! (issue 22).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde::Deserialize;

#[path = "lean_http.rs"]
#[allow(
    dead_code,
    reason = "shared with load-realtime; this benchmark only deposits"
)]
mod lean_http;

#[derive(Deserialize)]
struct Deposit {
    amount: String,
}

async fn deposit(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Deposit>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .len()
    };
    if header("authorization") == 0 || header("idempotency-key") == 0 {
        return HttpResponse::BadRequest().finish();
    }
    HttpResponse::Ok().json(serde_json::json!({
        "transaction_id": "0193a5c2-7b1e-7cc0-9d4e-3f5a6b7c8d9e",
        "user_id": path.into_inner(),
        "kind": "deposit",
        "amount": body.amount,
        "balance": "1234.00",
        "currency": "USD",
        "created_at": "2026-12-02T12:00:00.000Z",
    }))
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The server process (`http_floor serve WORKERS`): prints its address, serves until killed.
fn serve(workers: usize) -> std::io::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(|| {
            App::new().route("/api/v1/users/{id}/wallet/deposit", web::post().to(deposit))
        })
        .workers(workers)
        .bind("127.0.0.1:0")?;
        println!("listening on {}", server.addrs()[0]);
        server.run().await
    })
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        return Ok(serve(
            args.get(2).and_then(|w| w.parse().ok()).unwrap_or(2),
        )?);
    }
    // One client thread, as in `ledger_bench`.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(client())
}

async fn client() -> anyhow::Result<()> {
    let (seconds, workers, rate) = (arg("--seconds", 10), arg("--workers", 2), arg("--rate", 0));
    let concurrency = if rate > 0 {
        1
    } else {
        arg("--concurrency", 128) as usize
    };
    let period = (rate > 0).then(|| Duration::from_secs_f64(1.0 / rate as f64));
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["serve", &workers.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("piped")),
        &mut line,
    )?;
    let base = format!(
        "http://{}",
        line.trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| anyhow::anyhow!("server said {line:?}"))?
    );
    let pid = child.id();

    let stop = Arc::new(AtomicBool::new(false));
    let run = |seconds: u64| {
        let stop = stop.clone();
        let base = base.clone();
        async move {
            stop.store(false, Ordering::Relaxed);
            let tasks: Vec<_> = (0..concurrency)
                .map(|w| {
                    let (stop, base) = (stop.clone(), base.clone());
                    tokio::spawn(async move {
                        let mut conn = lean_http::Conn::new(&base);
                        let mut latencies = Vec::with_capacity(1 << 16);
                        let mut key = String::new();
                        let mut n = 0_u64;
                        let paced_from = tokio::time::Instant::now();
                        while !stop.load(Ordering::Relaxed) {
                            if let Some(period) = period {
                                tokio::time::sleep_until(paced_from + period * n as u32).await;
                            }
                            use std::fmt::Write;
                            key.clear();
                            let _ = write!(key, "f-{w}-{n}");
                            n += 1;
                            let t0 = Instant::now();
                            let user = "0193a5c2-7b1e-7cc0-9d4e-000000000001";
                            match conn.deposit("Bearer floor", user, &key).await {
                                Ok((200, _)) => latencies.push(t0.elapsed().as_micros() as u32),
                                other => panic!("unexpected answer: {:?}", other.map(|a| a.0)),
                            }
                        }
                        latencies
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            stop.store(true, Ordering::Relaxed);
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.expect("client task"));
            }
            all
        }
    };
    // Warm-up: connections open, allocator and caches settle.
    run(1).await;
    let (server_before, client_before) = (
        lean_http::cpu_secs_of(&pid.to_string()),
        lean_http::own_cpu_secs(),
    );
    let start = Instant::now();
    let mut all = run(seconds).await;
    let elapsed = start.elapsed().as_secs_f64();
    let (server_cpu, client_cpu) = (
        lean_http::cpu_secs_of(&pid.to_string()) - server_before,
        lean_http::own_cpu_secs() - client_before,
    );
    let _ = child.kill();
    let _ = child.wait();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |&us| us as f64 / 1000.0)
    };
    let n = all.len().max(1) as f64;
    println!(
        "http floor ({workers} workers, {}, {seconds} s): {:.0} requests/s  \
         p50 {:.2} ms  p99 {:.2} ms  p999 {:.2} ms  {:.1} us server CPU each ({:.1} us client)",
        match period {
            Some(_) => format!("paced at {rate}/s"),
            None => format!("{concurrency} in flight"),
        },
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        server_cpu * 1e6 / n,
        client_cpu * 1e6 / n,
    );
    Ok(())
}
