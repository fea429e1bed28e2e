//! `load-realtime`: the realtime load generator (issue 5). Built by `cargo build --release`.
//!
//! It starts the hub binary it is given (release build) on loopback with a fresh SQLite data
//! directory (and Redis when asked), creates users over HTTP, then spreads websocket clients over
//! worker processes (each under the 20,000-fd limit, each from its own 127.0.0.x source address)
//! and runs one workload. Load is open-loop: every event has a scheduled send time, carried in
//! its frame (`data.t`, µs), and latency is measured from that time to arrival, so a publisher
//! that falls behind shows up as latency instead of hiding it. Figures are printed, never asserted.
//!
//! Workloads (see load-tests/README.md for the commands):
//! - `hold`: N connections held, RSS of the hub idle and after a few events per connection.
//! - `rate`: user-room events at a fixed rate; latency percentiles and hub CPU per delivery.
//! - `broadcast`: one client room with M members, paced at `rate`; deliveries per second.
//! - `redis`: like `rate`, published on node A, received on node B (two hubs on one Redis).
//! - `mutations`: HTTP deposits at a fixed rate; latency to the `balance_update` frame.
//! - `floor`: `rate` with a do-nothing websocket server thread instead of a hub.
//!
//! Clients are `lean_ws.rs` epoll loops; each frame's latency is reported to its read and to its
//! kernel receive time at the client's socket.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

#[path = "deposit_table.rs"]
mod deposit_table;
#[path = "lean_http.rs"]
mod lean_http;
#[path = "lean_ws.rs"]
mod lean_ws;

const ADMIN_PASSWORD: &str = "load-admin-password";
const PASSWORD: &str = "load-password-1";

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Workload {
    Hold,
    Rate,
    Broadcast,
    Redis,
    Mutations,
    /// Issue 22: hub CPU per deposit + delivery and p99 to `balance_update` at each of
    /// `--rates`, at saturation (`--in-flight`) and idle; SQLite, and MariaDB with `--mysql`.
    Table,
    /// No hub: a do-nothing websocket server thread writes the `rate` workload's frames to the
    /// same clients, so the box's floor for that workload is measured the same way.
    Floor,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs a workload against a hub this command starts.
    Run {
        workload: Workload,
        /// The hub binary (a release build).
        #[arg(long, default_value = "target/release/nashub")]
        hub_bin: String,
        /// Users, each with its own websocket client(s).
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// Websocket connections per user.
        #[arg(long, default_value_t = 1)]
        conns_per_user: usize,
        /// Events (or mutations) per second, for paced workloads.
        #[arg(long, default_value_t = 20_000)]
        rate: u64,
        /// Seconds of traffic.
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Seconds connections are held before traffic (`hold`).
        #[arg(long, default_value_t = 60)]
        hold_secs: u64,
        /// Events per user room after the hold (`hold`).
        #[arg(long, default_value_t = 3)]
        events_per_user: u64,
        /// Worker processes for websocket clients.
        #[arg(long, default_value_t = 1)]
        procs: usize,
        /// Redis for the `redis` workload.
        #[arg(long, default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        /// HTTP worker threads of the hub.
        #[arg(long, default_value_t = 2)]
        hub_workers: usize,
        /// Nice value of the websocket client processes. On a box where clients and hub share
        /// the cores, 19 lets the hub's threads run first, as on separate machines; the kernel
        /// receive times then still say when each frame reached its client's socket.
        #[arg(long, default_value_t = 0)]
        client_nice: i32,
        /// Deposit rates of the `table` workload's open-loop windows.
        #[arg(long, value_delimiter = ',', default_value = "250,500,1000,2000")]
        rates: Vec<u64>,
        /// Deposits in flight in the `table` workload's closed-loop (saturation) window.
        #[arg(long, default_value_t = 32)]
        in_flight: usize,
        /// Seconds of the idle window after the `table` workload's load.
        #[arg(long, default_value_t = 20)]
        idle_secs: u64,
        /// `table`: also run on this MySQL/MariaDB server (`mysql://user@host:port/db`; a
        /// scratch database is created and dropped); its CPU is read from `/proc` (local).
        #[arg(long)]
        mysql: Option<String>,
    },
    /// Internal: a websocket client process (spec on stdin).
    Worker,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Cmd::Worker = cli.cmd {
        return worker();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Worker => unreachable!("handled above"),
        Cmd::Run {
            workload,
            hub_bin,
            users,
            conns_per_user,
            rate,
            secs,
            hold_secs,
            events_per_user,
            procs,
            redis_url,
            hub_workers,
            client_nice,
            rates,
            in_flight,
            idle_secs,
            mysql,
        } => rt.block_on(run(Run {
            workload,
            hub_bin,
            users,
            conns_per_user,
            rate,
            secs,
            hold_secs,
            events_per_user,
            procs,
            redis_url,
            hub_workers,
            client_nice,
            rates,
            in_flight,
            idle_secs,
            mysql,
        })),
    }
}

struct Run {
    workload: Workload,
    hub_bin: String,
    users: usize,
    conns_per_user: usize,
    rate: u64,
    secs: u64,
    hold_secs: u64,
    events_per_user: u64,
    procs: usize,
    redis_url: String,
    hub_workers: usize,
    client_nice: i32,
    rates: Vec<u64>,
    in_flight: usize,
    idle_secs: u64,
    mysql: Option<String>,
}

// ---- the hub process -------------------------------------------------------------------

struct Hub {
    child: Child,
    base: String,
}

impl Hub {
    fn start(
        bin: &str,
        data_dir: &std::path::Path,
        extra: &[(&str, String)],
    ) -> anyhow::Result<Hub> {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .env("NASHUB_BIND", "127.0.0.1:0")
            .env("NASHUB_DATA_DIR", data_dir)
            .env("NASHUB_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("NASHUB_SECOND_FACTOR_EXEMPT", "admin")
            .env("NASHUB_PASSWORD_HASH_MEMORY_KIB", "256")
            .env("NASHUB_RATE_LIMIT_PER_USER", "0")
            .env("NASHUB_RATE_LIMIT_AUTH_PER_IP", "0")
            // Every client socket comes from loopback: the per-IP and per-user caps are off.
            .env("NASHUB_MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP", "0")
            .env("NASHUB_WS_MAX_PER_IP", "0")
            .env("NASHUB_WS_MAX_PER_USER", "0")
            .env("NASHUB_WS_FRAMES_PER_SEC", "0")
            .env("NASHUB_BENCH_EVENTS", "true")
            .env("NASHUB_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(base) = line.strip_prefix("nashub listening on ") {
                    let _ = tx.send(base.to_owned());
                }
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(60))?;
        Ok(Hub { child, base })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in MB.
    fn rss_mb(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// User + system CPU seconds used so far.
    fn cpu_secs(&self) -> f64 {
        lean_http::cpu_secs_of(&self.pid().to_string())
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- HTTP setup --------------------------------------------------------------------------

struct Setup {
    http: reqwest::Client,
    base: String,
    super_token: String,
    client_id: String,
    /// (user id, access token)
    users: Vec<(String, String)>,
}

async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{status}: {body}");
    Ok(body)
}

async fn setup(base: &str, users: usize) -> anyhow::Result<Setup> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let login = |client: Option<&str>, name: &str, password: &str| {
        let mut body = json!({ "username": name, "password": password });
        if let Some(c) = client {
            body["client"] = json!(c);
        }
        post(&http, format!("{base}/api/v1/auth/login"), None, body)
    };
    let super_token = login(None, "admin", ADMIN_PASSWORD).await?["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = format!("load{}", std::process::id());
    let client = post(
        &http,
        format!("{base}/api/v1/clients"),
        Some(&super_token),
        json!({ "code": code, "name": "Load", "currency": "USD", "currency_exponent": 2 }),
    )
    .await?;
    let client_id = client["id"].as_str().unwrap().to_owned();
    let admin = post(
        &http,
        format!("{base}/api/v1/users"),
        Some(&super_token),
        json!({ "client_id": client_id, "role": "client_admin", "username": "boss", "password": PASSWORD }),
    )
    .await?;
    let admin_id = admin["id"].as_str().unwrap().to_owned();
    let made = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    futures_util::stream::iter(0..users)
        .for_each_concurrent(16, |i| {
            let (http, base, super_token, client_id, admin_id, code, made) = (
                http.clone(), base.to_owned(), super_token.clone(), client_id.clone(), admin_id.clone(), code.clone(), made.clone(),
            );
            async move {
                let name = format!("player{i}");
                let user = post(
                    &http,
                    format!("{base}/api/v1/users"),
                    Some(&super_token),
                    json!({ "client_id": client_id, "parent_id": admin_id, "role": "player", "username": name, "password": PASSWORD }),
                )
                .await
                .expect("create player");
                let token = post(&http, format!("{base}/api/v1/auth/login"), None, json!({ "client": code, "username": name, "password": PASSWORD }))
                    .await
                    .expect("player login")["access_token"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                made.lock().await.push((i, user["id"].as_str().unwrap().to_owned(), token));
            }
        })
        .await;
    let mut made = Arc::try_unwrap(made).unwrap().into_inner();
    made.sort_by_key(|m| m.0);
    eprintln!(
        "setup: {users} users created and logged in in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(Setup {
        http,
        base: base.to_owned(),
        super_token,
        client_id,
        users: made.into_iter().map(|(_, id, token)| (id, token)).collect(),
    })
}

// ---- workers -------------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct WorkerSpec {
    ws_url: String,
    tokens: Vec<String>,
    conns_per_token: usize,
    bind_ip: String,
    #[serde(default)]
    nice: i32,
}

#[derive(Serialize, Deserialize, Default)]
struct WorkerReport {
    received: u64,
    closed: u64,
    #[serde(default)]
    handshake_retries: u64,
    /// Latency of every timed frame to when the client process read it, µs.
    latencies_us: Vec<u32>,
    /// The same frames' latency to their arrival at the client's socket (kernel receive
    /// time), µs: without the client's own wait for a CPU on this shared box.
    #[serde(default)]
    arrival_us: Vec<u32>,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Worker {
    fn spawn(spec: &WorkerSpec) -> anyhow::Result<Worker> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}", serde_json::to_string(spec)?)?;
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Ok(Worker {
            child,
            stdin,
            lines,
        })
    }

    fn line(&self) -> anyhow::Result<String> {
        Ok(self.lines.recv_timeout(Duration::from_secs(600))?)
    }

    fn report(&mut self) -> anyhow::Result<WorkerReport> {
        writeln!(self.stdin, "report")?;
        Ok(serde_json::from_str(&self.line()?)?)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// The value of `"t":` in a frame, if any (cheaper than parsing every frame).
fn frame_time(frame: &[u8]) -> Option<i64> {
    let at = frame.windows(4).position(|w| w == br#""t":"#)? + 4;
    let digits = frame[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&frame[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// A connected client: its socket, frames in progress, and whether it still counts.
struct Client {
    stream: std::net::TcpStream,
    frames: lean_ws::Frames,
    open: bool,
}

/// Connects, upgrades and waits for the two `subscribed` frames of one session, retrying the
/// handshake like a real client (under a connection storm on this shared box the hub may
/// answer a late handshake with 408, its 5 s request timeout).
fn connect_client(
    addr: std::net::SocketAddr,
    bind: std::net::IpAddr,
    path: &str,
    retries: &AtomicU64,
) -> anyhow::Result<Client> {
    let mut attempt = 0;
    loop {
        match join_client(addr, bind, path) {
            Ok(c) => return Ok(c),
            Err(e) if attempt < 5 => {
                attempt += 1;
                retries.fetch_add(1, Ordering::Relaxed);
                eprintln!("ws handshake failed ({e}); retrying");
                std::thread::sleep(Duration::from_millis(200 * attempt));
            }
            Err(e) => anyhow::bail!("ws handshake: {e}"),
        }
    }
}

fn join_client(
    addr: std::net::SocketAddr,
    bind: std::net::IpAddr,
    path: &str,
) -> anyhow::Result<Client> {
    let (stream, rest) = lean_ws::connect(addr, bind, path, Duration::from_secs(30))?;
    let mut client = Client {
        stream,
        frames: lean_ws::Frames::default(),
        open: true,
    };
    let mut joined = 0;
    let mut data = rest;
    let mut buf = [0u8; 4096];
    loop {
        client.frames.feed(&data, |op, payload| {
            if op == lean_ws::TEXT && contains(payload, br#""type":"subscribed""#) {
                joined += 1;
            }
        })?;
        if joined >= 2 {
            client.stream.set_nonblocking(true)?;
            return Ok(client);
        }
        let n = client.stream.read(&mut buf)?;
        anyhow::ensure!(n > 0, "closed before joining its rooms");
        data = buf[..n].to_vec();
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A worker process: connects its share of the clients, then reads every socket from one
/// thread and hands over what arrived whenever the orchestrator asks (`report` on stdin).
fn worker() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let spec: WorkerSpec = serde_json::from_str(&line)?;
    if spec.nice != 0 {
        // Before any thread starts: Linux keeps a nice value per thread, and new ones inherit it.
        // SAFETY: changes this thread's scheduling priority only.
        anyhow::ensure!(
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, spec.nice) } == 0,
            "setpriority: {}",
            std::io::Error::last_os_error()
        );
    }
    let ws_url = spec.ws_url.trim_start_matches("ws://");
    let (host, path) = ws_url.split_at(ws_url.find('/').unwrap_or(ws_url.len()));
    let addr: std::net::SocketAddr = host.parse()?;
    let bind: std::net::IpAddr = spec.bind_ip.parse()?;
    let paths: Vec<String> = spec
        .tokens
        .iter()
        .flat_map(|t| std::iter::repeat_n(format!("{path}?token={t}"), spec.conns_per_token))
        .collect();
    let retries = AtomicU64::new(0);
    let next = AtomicU64::new(0);
    let slots: Vec<std::sync::Mutex<Option<Client>>> =
        paths.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let connectors: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        let Some(path) = paths.get(i) else {
                            return Ok(());
                        };
                        let client = connect_client(addr, bind, path, &retries)?;
                        *slots[i].lock().unwrap() = Some(client);
                    }
                })
            })
            .collect();
        for c in connectors {
            c.join().expect("connector thread")?;
        }
        Ok(())
    })?;
    let clients: Vec<Client> = slots
        .into_iter()
        .map(|s| s.into_inner().unwrap().expect("connected"))
        .collect();
    println!("connected {}", clients.len());
    let report = Arc::new(std::sync::Mutex::new(WorkerReport {
        handshake_retries: retries.load(Ordering::Relaxed),
        ..WorkerReport::default()
    }));
    let reader = report.clone();
    std::thread::spawn(move || read_all(clients, &reader));
    for cmd in std::io::stdin().lines().map_while(Result::ok) {
        if cmd.trim() != "report" {
            break;
        }
        // Let frames in flight land, then hand over what was counted so far.
        std::thread::sleep(Duration::from_millis(300));
        let r = std::mem::take(&mut *report.lock().unwrap());
        println!("{}", serde_json::to_string(&r)?);
    }
    std::process::exit(0);
}

/// What the read loop saw.
enum Seen<'a> {
    /// A text frame, when this process read it and when its data reached the socket (µs).
    Text {
        frame: &'a [u8],
        read_us: i64,
        arrived_us: i64,
    },
    /// A client's connection ended.
    Closed,
    /// Nothing for 100 ms, or a batch of reads is done.
    Pause,
}

/// Reads every client's socket from this thread forever, answering pings.
fn read_loop(mut clients: Vec<Client>, mut seen: impl FnMut(Seen<'_>)) {
    let epoll = lean_ws::Epoll::new().expect("epoll");
    for (i, c) in clients.iter().enumerate() {
        epoll.add(&c.stream, i as u64).expect("epoll add");
    }
    let mut buf = vec![0u8; 256 * 1024];
    let mut ready = Vec::new();
    let mut pongs: Vec<Vec<u8>> = Vec::new();
    loop {
        epoll.wait(&mut ready, 100).expect("epoll wait");
        for &i in &ready {
            let c = &mut clients[i as usize];
            let mut closed = false;
            loop {
                match lean_ws::recv_timed(c.stream.as_raw_fd(), &mut buf) {
                    Ok((0, _)) => closed = true,
                    Ok((n, arrived)) => {
                        let now = now_us();
                        let arrived = if arrived > 0 { arrived } else { now };
                        let fed = c.frames.feed(&buf[..n], |op, payload| match op {
                            lean_ws::TEXT => seen(Seen::Text {
                                frame: payload,
                                read_us: now,
                                arrived_us: arrived,
                            }),
                            lean_ws::PING => pongs.push(payload.to_vec()),
                            lean_ws::CLOSE => closed = true,
                            _ => {}
                        });
                        closed |= fed.is_err();
                        if n == buf.len() && !closed {
                            continue;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => closed = true,
                }
                break;
            }
            for p in pongs.drain(..) {
                let _ = c.stream.write_all(&lean_ws::client_frame(0xA, &p));
            }
            if closed && c.open {
                c.open = false;
                epoll.remove(&c.stream);
                seen(Seen::Closed);
            }
        }
        seen(Seen::Pause);
    }
}

/// The worker's read loop: every timed frame's latency to its read and to its kernel arrival,
/// handed to `report` every ~100 ms.
fn read_all(clients: Vec<Client>, report: &std::sync::Mutex<WorkerReport>) {
    let mut local = WorkerReport::default();
    let mut flush_at = Instant::now();
    read_loop(clients, |seen| match seen {
        Seen::Text {
            frame,
            read_us,
            arrived_us,
        } => {
            if let Some(sent) = frame_time(frame) {
                local.latencies_us.push((read_us - sent).max(0) as u32);
                local.arrival_us.push((arrived_us - sent).max(0) as u32);
            }
            local.received += 1;
        }
        Seen::Closed => local.closed += 1,
        Seen::Pause => {
            if flush_at.elapsed() > Duration::from_millis(100) || local.latencies_us.len() > 65_536
            {
                let mut r = report.lock().unwrap();
                r.received += local.received;
                r.closed += local.closed;
                r.latencies_us.append(&mut local.latencies_us);
                r.arrival_us.append(&mut local.arrival_us);
                local.received = 0;
                local.closed = 0;
                flush_at = Instant::now();
            }
        }
    });
}

// ---- orchestration ---------------------------------------------------------------------------

struct Clients {
    workers: Vec<Worker>,
}

impl Clients {
    /// CPU seconds the client processes have used so far.
    fn cpu_secs(&self) -> f64 {
        self.workers
            .iter()
            .map(|w| lean_http::cpu_secs_of(&w.child.id().to_string()))
            .sum()
    }

    /// Connects every user's websocket(s), spread over `procs` worker processes.
    fn connect(
        ws_url: &str,
        tokens: &[String],
        conns_per_token: usize,
        procs: usize,
        nice: i32,
    ) -> anyhow::Result<Clients> {
        let per = tokens.len().div_ceil(procs.max(1));
        let mut workers = Vec::new();
        for (i, chunk) in tokens.chunks(per.max(1)).enumerate() {
            workers.push(Worker::spawn(&WorkerSpec {
                ws_url: ws_url.to_owned(),
                tokens: chunk.to_vec(),
                conns_per_token,
                bind_ip: format!("127.0.0.{}", 2 + i),
                nice,
            })?);
        }
        let started = Instant::now();
        let mut connected = 0;
        for w in &workers {
            let line = w.line()?;
            connected += line.trim_start_matches("connected ").parse::<u64>()?;
        }
        eprintln!(
            "clients: {connected} websockets connected and joined in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        Ok(Clients { workers })
    }

    /// Collects reports until `expected` frames arrived or arrivals stop for 2 s.
    fn settle(&mut self, expected: u64) -> anyhow::Result<WorkerReport> {
        let mut all = self.report()?;
        let mut quiet = 0;
        while all.received < expected && quiet < 2 {
            std::thread::sleep(Duration::from_secs(1));
            let mut more = self.report()?;
            quiet = if more.received == 0 { quiet + 1 } else { 0 };
            all.received += more.received;
            all.closed += more.closed;
            all.handshake_retries += more.handshake_retries;
            all.latencies_us.append(&mut more.latencies_us);
            all.arrival_us.append(&mut more.arrival_us);
        }
        Ok(all)
    }

    fn report(&mut self) -> anyhow::Result<WorkerReport> {
        let mut all = WorkerReport::default();
        for w in &mut self.workers {
            let mut r = w.report()?;
            all.received += r.received;
            all.closed += r.closed;
            all.handshake_retries += r.handshake_retries;
            all.latencies_us.append(&mut r.latencies_us);
            all.arrival_us.append(&mut r.arrival_us);
        }
        Ok(all)
    }
}

fn print_arrival(label: &str, lat: &mut [u32]) {
    println!(
        "{label}: arrival at the client sockets (kernel receive time): {}",
        percentiles(lat)
    );
}

/// The `q` quantile of `lat` (µs) in ms; 0 when empty.
fn percentile_ms(lat: &mut [u32], q: f64) -> f64 {
    if lat.is_empty() {
        return 0.0;
    }
    lat.sort_unstable();
    lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1000.0
}

fn percentiles(lat: &mut [u32]) -> String {
    if lat.is_empty() {
        return "no samples".into();
    }
    lat.sort_unstable();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    format!(
        "p50={:.3}ms p90={:.3}ms p99={:.3}ms p99.9={:.3}ms max={:.3}ms",
        p(0.5),
        p(0.9),
        p(0.99),
        p(0.999),
        p(1.0)
    )
}

/// Publishes `rooms` round-robin at `rate` events/s, `total` in all, through the bench
/// endpoint of `base` (open loop: each event's scheduled time goes in its frame). Returns the
/// events sent and prints how late the generator itself sent them.
///
/// Runs on a thread of its own and paces with `std::thread::sleep` (~0.1 ms on this box):
/// tokio's timer ticks in whole milliseconds, and a publisher that wakes once a millisecond
/// sends each event up to a millisecond after its scheduled time, which the delivery latency
/// would then wrongly charge to the hub.
async fn publish_paced(
    s: &Setup,
    base: &str,
    rooms: &[String],
    rate: u64,
    total: u64,
) -> anyhow::Result<u64> {
    let (auth, base, rooms) = (
        format!("Bearer {}", s.super_token),
        base.to_owned(),
        rooms.to_vec(),
    );
    let (sent, mut late_us) = tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(publish_paced_on_this_thread(
                &auth, &base, &rooms, rate, total,
            ))
    })
    .await??;
    println!(
        "publisher: {sent} events in {} requests; sent after their scheduled time by {}",
        late_us.len(),
        percentiles(&mut late_us)
    );
    Ok(sent)
}

/// The loop of [`publish_paced`]; blocks its thread between sends. Returns the events sent and,
/// per request, how late its first (oldest) event left.
/// Open-loop pacing on a thread of its own: event `i` is due `i / rate` seconds after a start
/// 20 ms ahead; between sends the thread sleeps in steps of at most 0.1 ms.
struct Pacer {
    start_us: i64,
    interval_us: f64,
    total: u64,
    sent: u64,
    /// Per wake-up, how late its oldest due event left, µs.
    late_us: Vec<u32>,
}

impl Pacer {
    fn new(rate: u64, total: u64) -> Pacer {
        Pacer {
            start_us: now_us() + 20_000,
            interval_us: 1_000_000.0 / rate as f64,
            total,
            sent: 0,
            late_us: Vec::new(),
        }
    }

    fn scheduled(&self, i: u64) -> i64 {
        self.start_us + (i as f64 * self.interval_us) as i64
    }

    /// Waits until an event is due and returns the due ones (at most `max`), counted as sent;
    /// `None` once all are.
    fn next_due(&mut self, max: u64) -> Option<std::ops::Range<u64>> {
        while self.sent < self.total {
            let now = now_us();
            let due =
                (((now - self.start_us) as f64 / self.interval_us).max(0.0) as u64).min(self.total);
            if due <= self.sent {
                let wait = (self.scheduled(self.sent) - now).clamp(1, 100);
                std::thread::sleep(Duration::from_micros(wait as u64));
                continue;
            }
            self.late_us
                .push((now - self.scheduled(self.sent)).max(0) as u32);
            let range = self.sent..due.min(self.sent.saturating_add(max));
            self.sent = range.end;
            return Some(range);
        }
        None
    }
}

async fn publish_paced_on_this_thread(
    auth: &str,
    base: &str,
    rooms: &[String],
    rate: u64,
    total: u64,
) -> anyhow::Result<(u64, Vec<u32>)> {
    let mut conn = lean_http::Conn::new(base);
    let mut pacer = Pacer::new(rate, total);
    // At most ~60 KB of JSON per request (the hub's body limit is 64 KiB).
    while let Some(due) = pacer.next_due(800) {
        let events: Vec<(&String, i64)> = due
            .clone()
            .map(|i| (&rooms[(i as usize) % rooms.len()], pacer.scheduled(i)))
            .collect();
        let body = serde_json::to_vec(&json!({ "events": events }))?;
        let (status, answer) = conn
            .post("/api/v1/bench/events", &[("Authorization", auth)], &body)
            .await?;
        anyhow::ensure!(
            (200..300).contains(&status),
            "{status}: {}",
            String::from_utf8_lossy(answer)
        );
    }
    Ok((pacer.sent, pacer.late_us))
}

async fn run(r: Run) -> anyhow::Result<()> {
    if r.workload == Workload::Floor {
        return floor(&r);
    }
    if r.workload == Workload::Table {
        return deposit_table::table(&r).await;
    }
    let data = tempdir()?;
    let mut extra = vec![("NASHUB_HTTP_WORKERS", r.hub_workers.to_string())];
    let prefix = format!("load{}", std::process::id());
    if r.workload == Workload::Redis {
        extra.push(("NASHUB_REDIS_URL", r.redis_url.clone()));
        extra.push(("NASHUB_REDIS_PREFIX", prefix.clone()));
    }
    let hub = Hub::start(&r.hub_bin, &data, &extra)?;
    let rss_start = hub.rss_mb();
    let s = setup(&hub.base, r.users).await?;
    let tokens: Vec<String> = s.users.iter().map(|u| u.1.clone()).collect();
    let user_rooms: Vec<String> = s.users.iter().map(|u| format!("user:{}", u.0)).collect();
    let ws_url = format!("{}/ws", hub.base.replacen("http", "ws", 1));
    println!(
        "hub pid {} at {}; RSS at start {:.1} MB",
        hub.pid(),
        hub.base,
        rss_start
    );

    match r.workload {
        Workload::Hold => {
            let rss_before = hub.rss_mb();
            let mut clients =
                Clients::connect(&ws_url, &tokens, r.conns_per_user, r.procs, r.client_nice)?;
            let conns = (tokens.len() * r.conns_per_user) as f64;
            let rss_connected = hub.rss_mb();
            println!(
                "hold: {conns} connections; RSS {rss_before:.1} MB before, {rss_connected:.1} MB connected ({:.0} bytes/connection)",
                (rss_connected - rss_before) * 1024.0 * 1024.0 / conns
            );
            tokio::time::sleep(Duration::from_secs(r.hold_secs)).await;
            let rss_held = hub.rss_mb();
            println!("hold: after {} s idle: RSS {rss_held:.1} MB", r.hold_secs);
            let total = user_rooms.len() as u64 * r.events_per_user;
            publish_paced(&s, &hub.base, &user_rooms, 20_000, total).await?;
            let expected = user_rooms.len() as u64 * r.events_per_user * r.conns_per_user as u64;
            let mut rep = clients.settle(expected)?;
            let rss_after = hub.rss_mb();
            println!(
                "hold: events to every connection: expected {expected} deliveries, received {} (closed {}), {}",
                rep.received,
                rep.closed,
                percentiles(&mut rep.latencies_us)
            );
            println!(
                "hold: RSS after traffic {rss_after:.1} MB; websocket handshakes retried {}",
                rep.handshake_retries
            );
        }
        Workload::Rate | Workload::Redis => {
            let (publish_base, _node_b);
            let mut clients = if r.workload == Workload::Redis {
                let b = Hub::start(&r.hub_bin, &data, &extra)?;
                let url = format!("{}/ws", b.base.replacen("http", "ws", 1));
                let c = Clients::connect(&url, &tokens, r.conns_per_user, r.procs, r.client_nice)?;
                publish_base = hub.base.clone();
                _node_b = Some(b);
                c
            } else {
                publish_base = hub.base.clone();
                _node_b = None;
                Clients::connect(&ws_url, &tokens, r.conns_per_user, r.procs, r.client_nice)?
            };
            let cpu0 = hub.cpu_secs() + _node_b.as_ref().map_or(0.0, Hub::cpu_secs);
            let client_cpu0 = clients.cpu_secs();
            let started = Instant::now();
            let sent =
                publish_paced(&s, &publish_base, &user_rooms, r.rate, r.rate * r.secs).await?;
            let elapsed = started.elapsed().as_secs_f64();
            let expected = sent * r.conns_per_user as u64;
            let mut rep = clients.settle(expected)?;
            let cpu = hub.cpu_secs() + _node_b.as_ref().map_or(0.0, Hub::cpu_secs) - cpu0;
            let client_cpu = clients.cpu_secs() - client_cpu0;
            println!(
                "{:?}: {} clients, target {}/s for {} s: sent {sent} in {elapsed:.2}s, delivered {}/{expected} (closed {}), {}",
                r.workload,
                tokens.len() * r.conns_per_user,
                r.rate,
                r.secs,
                rep.received,
                rep.closed,
                percentiles(&mut rep.latencies_us)
            );
            print_arrival(&format!("{:?}", r.workload), &mut rep.arrival_us);
            println!(
                "{:?}: hub CPU {cpu:.2}s = {:.2} µs per delivered event; RSS {:.1} MB; clients {:.2} µs per event",
                r.workload,
                cpu * 1e6 / rep.received.max(1) as f64,
                hub.rss_mb(),
                client_cpu * 1e6 / rep.received.max(1) as f64
            );
        }
        Workload::Broadcast => {
            let mut clients =
                Clients::connect(&ws_url, &tokens, r.conns_per_user, r.procs, r.client_nice)?;
            let room = [format!("client:{}", s.client_id)];
            let cpu0 = hub.cpu_secs();
            let started = Instant::now();
            // Paced at --rate events/s into the one room (each event goes to every member);
            // an unpaced publisher only measures how fast members fall behind and get 4008.
            let sent = publish_paced(&s, &hub.base, &room, r.rate, r.rate * r.secs).await?;
            let elapsed = started.elapsed().as_secs_f64();
            let members = tokens.len() * r.conns_per_user;
            let mut rep = clients.settle(sent * members as u64)?;
            // Conservative: up to the report that saw the last frame (reports are ~1 s apart).
            let until_all = started.elapsed().as_secs_f64();
            let cpu = hub.cpu_secs() - cpu0;
            println!(
                "broadcast: {members} members, {sent} events published in {elapsed:.2}s; {} deliveries of {} (closed {}) by {until_all:.2}s = {:.0} deliveries/s; {}",
                rep.received,
                sent * members as u64,
                rep.closed,
                rep.received as f64 / until_all,
                percentiles(&mut rep.latencies_us)
            );
            print_arrival("broadcast", &mut rep.arrival_us);
            println!(
                "broadcast: hub CPU {cpu:.2}s = {:.2} µs per delivery",
                cpu * 1e6 / rep.received.max(1) as f64
            );
        }
        Workload::Mutations => mutations(&hub, &s, &r).await?,
        Workload::Floor | Workload::Table => unreachable!("run without a hub above"),
    }
    let metrics = s
        .http
        .get(format!("{}/metrics", hub.base))
        .send()
        .await?
        .text()
        .await?;
    for line in metrics.lines().filter(|l| {
        [
            "events_published_total ",
            "events_delivered_total ",
            "events_dropped_total ",
            "websocket_queue_drops_total ",
            "websocket_slow_consumers_closed_total ",
            "websocket_connections ",
        ]
        .iter()
        .any(|m| l.starts_with(m))
    }) {
        println!("hub metric: {line}");
    }
    drop(hub);
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

/// The `floor` workload: `rate` without a hub. A thread accepts the clients' upgrades (answers
/// 101 and the two `subscribed` frames they wait for), then writes each event's frame, shaped
/// like the hub's, to one client socket with one `write`, paced like the publisher. What it
/// measures is what this box costs and delays for the same deliveries with no hub work at all.
fn floor(r: &Run) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let clients_total = r.users * r.conns_per_user;
    let accept = std::thread::spawn(move || -> anyhow::Result<Vec<std::net::TcpStream>> {
        let mut sockets = Vec::with_capacity(clients_total);
        while sockets.len() < clients_total {
            let (mut s, _) = listener.accept()?;
            lean_ws::read_head(&mut s)?;
            s.set_nodelay(true)?;
            let mut answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                Connection: Upgrade\r\nSec-WebSocket-Accept: floor\r\n\r\n"
                .to_vec();
            for room in ["user", "client"] {
                answer.extend(lean_ws::server_frame(
                    lean_ws::TEXT,
                    format!(r#"{{"type":"subscribed","room":"{room}:floor","seq":0}}"#).as_bytes(),
                ));
            }
            s.write_all(&answer)?;
            sockets.push(s);
        }
        Ok(sockets)
    });
    let tokens: Vec<String> = (0..r.users).map(|i| format!("floor-{i}")).collect();
    let mut clients = Clients::connect(
        &format!("ws://{addr}/ws"),
        &tokens,
        r.conns_per_user,
        r.procs,
        r.client_nice,
    )?;
    let mut sockets = accept.join().expect("accept thread")?;
    let total = r.rate * r.secs;
    let client_cpu0 = clients.cpu_secs();
    // The sockets come back so they stay open until every client has reported.
    let rate = r.rate;
    let (server_cpu, mut late_us, _sockets) = std::thread::spawn(move || -> anyhow::Result<_> {
        let cpu0 = thread_cpu_secs();
        let n = sockets.len();
        let mut pacer = Pacer::new(rate, total);
        while let Some(due) = pacer.next_due(u64::MAX) {
            for i in due {
                let frame = format!(
                    r#"{{"type":"game_update","room":"user:019ad1c4-0000-7000-8000-{:012}","seq":{},"ts":"2026-12-02T00:00:00.000Z","data":{{"t":{}}}}}"#,
                    i as usize % n,
                    i / n as u64 + 1,
                    pacer.scheduled(i)
                );
                sockets[i as usize % n]
                    .write_all(&lean_ws::server_frame(lean_ws::TEXT, frame.as_bytes()))?;
            }
        }
        Ok((thread_cpu_secs() - cpu0, pacer.late_us, sockets))
    })
    .join()
    .expect("sender thread")?;
    let mut rep = clients.settle(total)?;
    let client_cpu = clients.cpu_secs() - client_cpu0;
    println!(
        "floor: sender woke {} times; sent after their scheduled time by {}",
        late_us.len(),
        percentiles(&mut late_us)
    );
    println!(
        "floor: {} clients, {}/s for {} s: delivered {}/{total} (closed {}), {}",
        clients_total,
        r.rate,
        r.secs,
        rep.received,
        rep.closed,
        percentiles(&mut rep.latencies_us)
    );
    print_arrival("floor", &mut rep.arrival_us);
    println!(
        "floor: server thread CPU {server_cpu:.2}s = {:.2} µs per event; clients {:.2} µs per event",
        server_cpu * 1e6 / rep.received.max(1) as f64,
        client_cpu * 1e6 / rep.received.max(1) as f64
    );
    Ok(())
}

/// CPU seconds this thread has used (user + system).
fn thread_cpu_secs() -> f64 {
    // SAFETY: getrusage writes one rusage.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("nashub-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// HTTP deposits at a fixed rate (open loop); latency from each deposit's scheduled time to
/// its `balance_update` on the user's websocket (matched by transaction id).
/// Keep-alive connections the `mutations` workload sends its deposits over.
const MUTATION_CONNECTIONS: usize = 256;

/// A string field's value in a JSON frame, found by its `"name":"` (frames have no escapes in
/// the fields read here).
fn json_str(frame: &[u8], name: &str) -> Option<String> {
    let key = format!(r#""{name}":""#);
    let at = frame.windows(key.len()).position(|w| w == key.as_bytes())? + key.len();
    let len = frame[at..].iter().position(|&b| b == b'"')?;
    String::from_utf8(frame[at..at + len].to_vec()).ok()
}

/// The `transaction_id` of a deposit's JSON answer.
fn transaction_id(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    Some(v["transaction_id"].as_str()?.to_owned())
}

async fn mutations(hub: &Hub, s: &Setup, r: &Run) -> anyhow::Result<()> {
    // Transaction id -> (read, kernel arrival) of its balance_update, µs.
    let arrivals: Arc<std::sync::Mutex<HashMap<String, (i64, i64)>>> = Arc::default();
    let base = hub.base.trim_start_matches("http://");
    let addr: std::net::SocketAddr = base.parse()?;
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
            if let Seen::Text {
                frame,
                read_us,
                arrived_us,
            } = seen
                && contains(frame, br#""type":"balance_update""#)
                && let Some(tx) = json_str(frame, "transaction_id")
            {
                seen_by.lock().unwrap().insert(tx, (read_us, arrived_us));
            }
        })
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let scheduled: Arc<std::sync::Mutex<Vec<(String, i64, i64)>>> = Arc::default();
    let failures = Arc::new(AtomicU64::new(0));
    let total = r.rate * r.secs;
    let interval_us = 1_000_000.0 / r.rate as f64;
    let start_us = now_us() + 20_000;
    let cpu0 = hub.cpu_secs();
    let own_cpu0 = lean_http::own_cpu_secs();
    // Open loop over a fixed pool of keep-alive connections: requests are queued at their
    // scheduled time and taken by whichever connection is free; latency counts from the
    // schedule, so a wait for a connection is part of it.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(u64, i64)>();
    let rx = Arc::new(Mutex::new(rx));
    let users: Arc<Vec<String>> = Arc::new(s.users.iter().map(|(id, _)| id.clone()).collect());
    let mut handles = Vec::with_capacity(MUTATION_CONNECTIONS);
    for _ in 0..MUTATION_CONNECTIONS {
        let (rx, base, token) = (rx.clone(), s.base.clone(), s.super_token.clone());
        let (users, scheduled, failures) = (users.clone(), scheduled.clone(), failures.clone());
        handles.push(tokio::spawn(async move {
            let mut conn = lean_http::Conn::new(&base);
            let auth = format!("Bearer {token}");
            loop {
                let Some((i, at)) = rx.lock().await.recv().await else {
                    return;
                };
                let user = &users[i as usize % users.len()];
                let res = conn.deposit(&auth, user, &format!("load-{i}")).await;
                match res {
                    Ok((200..=299, body)) => {
                        let tx = transaction_id(body).unwrap_or_default();
                        scheduled.lock().unwrap().push((tx, at, now_us()));
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for i in 0..total {
        let at = start_us + (i as f64 * interval_us) as i64;
        let wait = at - now_us();
        if wait > 200 {
            tokio::time::sleep(Duration::from_micros(wait as u64)).await;
        }
        let _ = tx.send((i, at));
    }
    drop(tx);
    for h in handles {
        let _ = h.await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = hub.cpu_secs() - cpu0;
    let own_cpu = lean_http::own_cpu_secs() - own_cpu0;
    let arrivals = arrivals.lock().unwrap();
    let scheduled = scheduled.lock().unwrap();
    let mut ws_lat: Vec<u32> = Vec::new();
    let mut arrival_lat: Vec<u32> = Vec::new();
    let mut http_lat: Vec<u32> = Vec::new();
    for (tx, at, answered) in scheduled.iter() {
        http_lat.push((answered - at).max(0) as u32);
        if let Some((read, arrived)) = arrivals.get(tx) {
            ws_lat.push((read - at).max(0) as u32);
            arrival_lat.push((arrived - at).max(0) as u32);
        }
    }
    println!(
        "mutations: target {}/s for {} s: {} committed, {} failed, {} balance_updates matched",
        r.rate,
        r.secs,
        scheduled.len(),
        failures.load(Ordering::Relaxed),
        ws_lat.len()
    );
    println!(
        "mutations: HTTP answer latency {}",
        percentiles(&mut http_lat)
    );
    println!(
        "mutations: scheduled send -> balance_update {}",
        percentiles(&mut ws_lat)
    );
    println!(
        "mutations: scheduled send -> balance_update at the client socket (kernel receive time) {}",
        percentiles(&mut arrival_lat)
    );
    println!(
        "mutations: hub CPU {cpu:.2}s = {:.1} µs per mutation; load generator {:.1} µs",
        cpu * 1e6 / scheduled.len().max(1) as f64,
        own_cpu * 1e6 / scheduled.len().max(1) as f64
    );
    Ok(())
}
