//! Provider simulators (`nashub sim jdb`, `nashub sim luckysports`): test peers reached over
//! real HTTP, each with its own per-player balances and transfer log, that inject the failures
//! of a network between two ledgers on request (`POST /sim/faults`) or at configured rates.
//!
//! Control endpoints (not part of any provider protocol): `POST /sim/faults` (a [`Faults`] JSON),
//! `GET /sim/balances`, `POST /sim/callback-url` `{"url"}`, `POST /sim/forget` `{"uid"}` (the
//! provider loses a player, as if its records were reset), `GET /sim/info`,
//! `GET /sim/traceparents` (the `traceparent` headers of the last protocol calls), and for
//! LuckySports `POST /sim/bet`.
//!
//! State: in memory, or durable in a SQLite file ([`SimConfig::state_path`], `durable.rs`); the
//! embedded simulators keep theirs under `<data_dir>/sims/` and come back on it after a restart.

pub mod durable;
pub mod jdb;
pub mod luckysports;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Fault injection, as probabilities in `[0, 1]` and durations. All zero: a perfect provider.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Answer slowly (any request).
    pub slow_rate: f64,
    pub slow_ms: u64,
    /// Transfers: hang for `drop_ms` without applying, then 504.
    pub drop_before_rate: f64,
    /// Transfers: apply, then hang for `drop_ms` before answering.
    pub drop_after_rate: f64,
    pub drop_ms: u64,
    /// Transfers: apply but report "in progress" (JDB 6012, LuckySports processing) for a while.
    pub in_progress_rate: f64,
    pub in_progress_ms: u64,
    /// Any request: HTTP 500 without doing anything.
    pub error_5xx_rate: f64,
    /// Transfers: "maintenance" (JDB 9013, LuckySports MAINTENANCE), nothing applied.
    pub maintenance_rate: f64,
    /// Transfers: refuse as if our clock were off (JDB 9005, LuckySports TIMESTAMP_EXPIRED).
    pub stale_clock_rate: f64,
    /// Every request answered 503: the provider is down.
    pub down: bool,
    /// JDB: withdrawals refused with 6901 for this long after a launch.
    pub in_game_after_launch_ms: u64,
    /// LuckySports callbacks: each sent twice / the settlement sent before the running record.
    pub callback_duplicate_rate: f64,
    pub callback_out_of_order_rate: f64,
    /// LuckySports callbacks: never delivered (the hub must find the bet by `bets/pull`).
    pub callback_drop_rate: f64,
}

impl Faults {
    pub fn roll(rate: f64) -> bool {
        rate > 0.0 && rand::random::<f64>() < rate
    }
}

/// What a simulator needs to know about the operator accounts it serves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub bind: String,
    /// JDB domain code, or LuckySports operator ids with their secrets.
    pub operators: Vec<(String, String)>,
    /// JDB agent id.
    pub parent: String,
    pub key: String,
    pub iv: String,
    /// Requests whose timestamp is older than this are refused.
    pub window_ms: i64,
    pub faults: Faults,
    /// JDB: a round appears in the history (action 29) this long after it was played, and
    /// query windows must be whole multiples of `history_step_ms`.
    pub history_delay_ms: i64,
    pub history_step_ms: i64,
    /// Durable state (SQLite file); `None`: in memory, a fresh provider at every start.
    pub state_path: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct SimTransfer {
    pub uid: String,
    /// Signed: positive into the provider, negative out. Simulator units.
    pub amount: i64,
    pub before: i64,
    pub after: i64,
    /// Reported "in progress" until then (ms since epoch).
    pub ready_at_ms: i64,
    pub at_ms: i64,
}

#[derive(Debug, Default)]
pub struct Book {
    /// uid → (balance in simulator units, operator).
    pub members: HashMap<String, (i64, String)>,
    pub transfers: HashMap<String, SimTransfer>,
    /// uid → withdrawals refused until (JDB 6901).
    pub in_game_until_ms: HashMap<String, i64>,
    /// JDB rounds played (action 29), in play order, with their time in ms.
    pub rounds: Vec<(i64, serde_json::Value)>,
    /// Every version of every bet, in version order (LuckySports `bets/pull`).
    pub bet_log: Vec<serde_json::Value>,
    pub last_bet_version: i64,
    /// Where mutations are committed before they are answered (durable simulators).
    pub store: Option<durable::SimStore>,
}

impl Book {
    /// Applies a transfer under a new serial; Err with the reason when it cannot apply.
    pub fn apply(
        &mut self,
        serial: &str,
        uid: &str,
        amount: i64,
        ready_at_ms: i64,
    ) -> Result<SimTransfer, SimRefusal> {
        if self.transfers.contains_key(serial) {
            return Err(SimRefusal::Duplicate);
        }
        let Some((balance, _)) = self.members.get_mut(uid) else {
            return Err(SimRefusal::UnknownMember);
        };
        let after = balance
            .checked_add(amount)
            .ok_or(SimRefusal::InvalidAmount)?;
        if after < 0 {
            return Err(SimRefusal::Insufficient);
        }
        let t = SimTransfer {
            uid: uid.to_owned(),
            amount,
            before: *balance,
            after,
            ready_at_ms,
            at_ms: crate::domain::now_ms(),
        };
        // Durable first: a transfer answered as applied is on disk.
        if let Some(store) = self.store.as_mut() {
            store.apply(serial, &t).map_err(|e| {
                tracing::error!(error = %e, "simulator transfer not stored");
                SimRefusal::Storage
            })?;
        }
        if let Some((balance, _)) = self.members.get_mut(uid) {
            *balance = after;
        }
        self.transfers.insert(serial.to_owned(), t.clone());
        Ok(t)
    }

    /// Registers a player; false when the player exists. Err when it cannot be stored.
    pub fn add_member(&mut self, uid: &str, operator: &str) -> Result<bool, SimRefusal> {
        if self.members.contains_key(uid) {
            return Ok(false);
        }
        if let Some(store) = &self.store {
            store.add_member(uid, operator).map_err(|e| {
                tracing::error!(error = %e, "simulator member not stored");
                SimRefusal::Storage
            })?;
        }
        self.members
            .insert(uid.to_owned(), (0, operator.to_owned()));
        Ok(true)
    }

    /// Drops a player and their balance (a provider that lost its records); the transfer log
    /// stays. True when the player existed.
    pub fn forget_member(&mut self, uid: &str) -> Result<bool, SimRefusal> {
        if let Some(store) = &self.store {
            store.forget_member(uid).map_err(|e| {
                tracing::error!(error = %e, "simulator member not forgotten");
                SimRefusal::Storage
            })?;
        }
        self.in_game_until_ms.remove(uid);
        Ok(self.members.remove(uid).is_some())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimRefusal {
    Duplicate,
    UnknownMember,
    Insufficient,
    InvalidAmount,
    /// The state file refused the write: nothing applied (answered as a server error).
    Storage,
}

pub struct SimState {
    pub config: SimConfig,
    pub book: Mutex<Book>,
    pub faults: Mutex<Faults>,
    pub callback_url: Mutex<Option<String>>,
    pub http: reqwest::Client,
    /// The last [`TRACEPARENTS_MAX`] `traceparent` headers received on protocol calls, oldest
    /// first (`GET /sim/traceparents`: tests check the hub's calls continue its traces).
    pub traceparents: Mutex<std::collections::VecDeque<String>>,
}

/// `traceparent` headers a simulator remembers.
pub const TRACEPARENTS_MAX: usize = 64;

impl SimState {
    pub fn faults(&self) -> Faults {
        self.faults.lock().expect("faults lock").clone()
    }

    pub fn secret_of(&self, operator: &str) -> Option<&str> {
        self.config
            .operators
            .iter()
            .find(|(op, _)| op == operator)
            .map(|(_, s)| s.as_str())
    }

    /// Sum of every member's balance, simulator units.
    pub fn total(&self) -> i64 {
        self.book
            .lock()
            .expect("book lock")
            .members
            .values()
            .map(|(b, _)| *b)
            .sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimKind {
    Jdb,
    LuckySports,
}

impl SimKind {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "jdb" => Some(SimKind::Jdb),
            "luckysports" => Some(SimKind::LuckySports),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SimKind::Jdb => crate::providers::jdb::NAME,
            SimKind::LuckySports => crate::providers::luckysports::NAME,
        }
    }

    /// Decimals of the simulator's internal balance unit.
    pub fn exponent(self) -> u32 {
        match self {
            SimKind::Jdb => jdb::SIM_EXPONENT,
            SimKind::LuckySports => 2,
        }
    }
}

/// A running simulator: its address and its state (tests read balances and set faults here).
pub struct SimHandle {
    pub addr: SocketAddr,
    pub state: Arc<SimState>,
    pub kind: SimKind,
    server: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimHandle {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().expect("faults lock") = faults;
    }

    pub fn set_callback_url(&self, url: &str) {
        *self.state.callback_url.lock().expect("url lock") = Some(url.to_owned());
    }

    /// Ends every "in progress" period now (status queries then report the outcome).
    pub fn finish_in_progress(&self) {
        let now = crate::domain::now_ms();
        let mut book = self.state.book.lock().expect("book lock");
        if let Some(store) = &book.store
            && let Err(e) = store.finish_in_progress(now)
        {
            tracing::error!(error = %e, "simulator state not updated");
        }
        for t in book.transfers.values_mut() {
            t.ready_at_ms = t.ready_at_ms.min(now);
        }
    }

    /// The provider loses a player (test control): see [`Book::forget_member`].
    pub fn forget(&self, uid: &str) -> bool {
        self.state
            .book
            .lock()
            .expect("book lock")
            .forget_member(uid)
            .unwrap_or(false)
    }

    /// Sum of every player's balance at this simulator, in minor units of `exponent`.
    pub fn total_minor(&self, exponent: u32) -> Option<i64> {
        crate::providers::units::rescale(self.state.total(), self.kind.exponent(), exponent)
    }

    /// One player's balance in minor units of `exponent`, if registered.
    pub fn balance_minor(&self, uid: &str, exponent: u32) -> Option<i64> {
        let raw = self
            .state
            .book
            .lock()
            .expect("book lock")
            .members
            .get(uid)
            .map(|(b, _)| *b)?;
        crate::providers::units::rescale(raw, self.kind.exponent(), exponent)
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _stopping = self.server.stop(false);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn app_state(config: SimConfig, book: Book) -> Arc<SimState> {
    Arc::new(SimState {
        faults: Mutex::new(config.faults.clone()),
        config,
        book: Mutex::new(book),
        callback_url: Mutex::new(None),
        traceparents: Mutex::new(std::collections::VecDeque::with_capacity(TRACEPARENTS_MAX)),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client"),
    })
}

/// The book (loaded from the state file, if any) and the listener: a durable simulator asked
/// for any port (`:0`) takes its previous one again when it is free, so addresses survive a
/// restart where they can.
fn open(config: &SimConfig) -> std::io::Result<(Book, TcpListener)> {
    let Some(path) = &config.state_path else {
        return Ok((Book::default(), TcpListener::bind(&config.bind)?));
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let (store, mut book) = durable::SimStore::open(path).map_err(std::io::Error::other)?;
    let previous = store.port().filter(|_| config.bind.ends_with(":0"));
    let listener = match previous {
        Some(port) => {
            let host = config.bind.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
            TcpListener::bind(format!("{host}:{port}"))
                .or_else(|_| TcpListener::bind(&config.bind))?
        }
        None => TcpListener::bind(&config.bind)?,
    };
    store
        .set_port(listener.local_addr()?.port())
        .map_err(std::io::Error::other)?;
    book.store = Some(store);
    Ok((book, listener))
}

fn configure(kind: SimKind, cfg: &mut web::ServiceConfig) {
    cfg.route("/sim/faults", web::post().to(set_faults))
        .route("/sim/balances", web::get().to(balances))
        .route("/sim/forget", web::post().to(forget))
        .route("/sim/info", web::get().to(info))
        .route("/sim/traceparents", web::get().to(traceparents))
        .route("/sim/callback-url", web::post().to(set_callback_url));
    match kind {
        SimKind::Jdb => jdb::routes(cfg),
        SimKind::LuckySports => luckysports::routes(cfg),
    }
}

fn server(
    kind: SimKind,
    state: Arc<SimState>,
    listener: TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::from(state);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(64 * 1024))
            .configure(|cfg| configure(kind, cfg))
            .wrap(actix_web::middleware::from_fn(record_traceparent))
    })
    .listen(listener)?
    .workers(2)
    .shutdown_timeout(1)
    .disable_signals()
    .run())
}

/// Starts a simulator on its own thread (and actix system); returns once it listens.
pub fn spawn(kind: SimKind, config: SimConfig) -> std::io::Result<SimHandle> {
    let (book, listener) = open(&config)?;
    let addr = listener.local_addr()?;
    let state = app_state(config, book);
    let (tx, rx) = std::sync::mpsc::channel();
    let thread_state = state.clone();
    let thread = std::thread::spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            match server(kind, thread_state, listener) {
                Ok(server) => {
                    let _ = tx.send(Ok(server.handle()));
                    let _ = server.await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
    });
    let server = rx
        .recv()
        .map_err(|_| std::io::Error::other("simulator thread ended"))??;
    Ok(SimHandle {
        addr,
        state,
        kind,
        server,
        thread: Some(thread),
    })
}

/// An embedded simulator as one hub process sees it: its own (this process holds the lock of
/// the simulator's state file and serves it), or, when another process on the same data
/// directory holds it (two nodes, say), that process's simulator at the address it published.
/// Two simulators on one state file would each answer from their own view of it.
pub struct Embedded {
    pub kind: SimKind,
    pub base_url: String,
    /// Set when this process serves the simulator (dropped before the lock).
    pub handle: Option<SimHandle>,
    _lock: Option<std::fs::File>,
}

/// How long a hub waits for another process's simulator to publish its address.
const SHARED_WAIT: Duration = Duration::from_secs(30);

/// Starts the embedded simulator of `kind` on its durable state in `dir` (`<kind>.sqlite`), or
/// finds the one another process on the same directory runs.
pub fn embedded(kind: SimKind, dir: &Path) -> std::io::Result<Embedded> {
    std::fs::create_dir_all(dir)?;
    let dir = std::fs::canonicalize(dir)?;
    let state = dir.join(format!("{}.sqlite", kind.name()));
    let lock_path = dir.join(format!("{}.lock", kind.name()));
    let addr_path = dir.join(format!("{}.addr", kind.name()));
    let deadline = std::time::Instant::now() + SHARED_WAIT;
    loop {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {
                let config = SimConfig {
                    state_path: Some(state.clone()),
                    ..default_config(kind)
                };
                let handle = spawn(kind, config)?;
                let tmp = addr_path.with_extension(format!("addr.{}.tmp", std::process::id()));
                std::fs::write(&tmp, handle.addr.to_string())?;
                std::fs::rename(&tmp, &addr_path)?;
                return Ok(Embedded {
                    kind,
                    base_url: handle.base_url(),
                    handle: Some(handle),
                    _lock: Some(lock),
                });
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                if let Some(addr) = std::fs::read_to_string(&addr_path)
                    .ok()
                    .filter(|a| serves_state(a.trim(), &state))
                {
                    return Ok(Embedded {
                        kind,
                        base_url: format!("http://{}", addr.trim()),
                        handle: None,
                        _lock: None,
                    });
                }
                if std::time::Instant::now() > deadline {
                    return Err(std::io::Error::other(format!(
                        "{} is locked by another process whose simulator cannot be reached",
                        state.display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// Whether the simulator at `addr` serves `state` (an address file may be stale: its port
/// may now belong to anything).
fn serves_state(addr: &str, state: &Path) -> bool {
    use std::io::{Read, Write};
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        return false;
    };
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /sim/info HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut reply = String::new();
    if stream.write_all(request.as_bytes()).is_err() || stream.read_to_string(&mut reply).is_err() {
        return false;
    }
    reply
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(body).ok())
        .is_some_and(|info| info["state"].as_str() == Some(&state.display().to_string()))
}

/// `nashub sim <provider>`: serves until interrupted.
pub async fn run(kind: SimKind, config: SimConfig) -> std::io::Result<()> {
    let (book, listener) = open(&config)?;
    println!(
        "nashub sim {kind:?} listening on http://{}",
        listener.local_addr()?
    );
    server(kind, app_state(config, book), listener)?.await
}

#[derive(Deserialize)]
struct ForgetRequest {
    uid: String,
}

async fn forget(state: web::Data<SimState>, body: web::Json<ForgetRequest>) -> HttpResponse {
    match state
        .book
        .lock()
        .expect("book lock")
        .forget_member(&body.uid)
    {
        Ok(found) => HttpResponse::Ok().json(json!({ "forgotten": found })),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

/// Which simulator answers here, and on which state file (a hub sharing a data directory
/// checks it before using another process's simulator).
async fn info(state: web::Data<SimState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "state": state.config.state_path.as_ref().map(|p| p.display().to_string()),
    }))
}

async fn traceparents(state: web::Data<SimState>) -> HttpResponse {
    let seen = state.traceparents.lock().expect("traceparents lock");
    HttpResponse::Ok().json(json!({ "traceparents": *seen }))
}

/// Remembers the `traceparent` of each protocol call (not of the `/sim/` control calls).
async fn record_traceparent(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let header = req
        .headers()
        .get(crate::otel::TRACEPARENT)
        .and_then(|v| v.to_str().ok());
    if let (Some(value), false) = (header, req.path().starts_with("/sim/"))
        && let Some(state) = req.app_data::<web::Data<SimState>>()
    {
        let mut seen = state.traceparents.lock().expect("traceparents lock");
        if seen.len() == TRACEPARENTS_MAX {
            seen.pop_front();
        }
        seen.push_back(value.to_owned());
    }
    next.call(req).await
}

async fn set_faults(state: web::Data<SimState>, body: web::Json<Faults>) -> HttpResponse {
    *state.faults.lock().expect("faults lock") = body.into_inner();
    HttpResponse::Ok().json(state.faults())
}

async fn balances(state: web::Data<SimState>) -> HttpResponse {
    let book = state.book.lock().expect("book lock");
    let members: HashMap<&String, i64> = book.members.iter().map(|(k, (b, _))| (k, *b)).collect();
    HttpResponse::Ok().json(json!({ "members": members, "total": members.values().sum::<i64>() }))
}

#[derive(Deserialize)]
struct CallbackUrl {
    url: String,
}

async fn set_callback_url(
    state: web::Data<SimState>,
    body: web::Json<CallbackUrl>,
) -> HttpResponse {
    *state.callback_url.lock().expect("url lock") = Some(body.url.clone());
    HttpResponse::NoContent().finish()
}

/// The faults every request meets before its handler: down, 5xx, slow. `Some` answers now.
pub async fn common_faults(state: &SimState) -> Option<HttpResponse> {
    let f = state.faults();
    if f.down {
        return Some(HttpResponse::ServiceUnavailable().body("down"));
    }
    if Faults::roll(f.error_5xx_rate) {
        return Some(HttpResponse::InternalServerError().body("injected failure"));
    }
    if Faults::roll(f.slow_rate) {
        tokio::time::sleep(Duration::from_millis(f.slow_ms)).await;
    }
    None
}

/// The default simulator configuration of the embedded set-up (and of `nashub sim`).
pub fn default_config(kind: SimKind) -> SimConfig {
    SimConfig {
        bind: "127.0.0.1:0".into(),
        operators: vec![match kind {
            SimKind::Jdb => ("nashubdc".into(), String::new()),
            SimKind::LuckySports => ("nashub".into(), "luckysports-sim-secret".into()),
        }],
        parent: "nashubag".into(),
        key: "nashubSimKey0001".into(),
        iv: "nashubSimIv00001".into(),
        window_ms: match kind {
            SimKind::Jdb => crate::providers::jdb::VALIDITY_MS,
            SimKind::LuckySports => crate::providers::luckysports::VALIDITY_MS,
        },
        faults: Faults::default(),
        history_delay_ms: 180_000,
        history_step_ms: 60_000,
        state_path: None,
    }
}

/// The hub's account settings that reach a simulator started with `config`.
pub fn account_for(
    kind: SimKind,
    config: &SimConfig,
    base_url: &str,
) -> crate::config::ProviderAccountSettings {
    let (operator, secret) = config.operators[0].clone();
    crate::config::ProviderAccountSettings {
        name: match kind {
            SimKind::Jdb => "jdb-sim".into(),
            SimKind::LuckySports => "luckysports-sim".into(),
        },
        provider: match kind {
            SimKind::Jdb => crate::providers::jdb::NAME.into(),
            SimKind::LuckySports => crate::providers::luckysports::NAME.into(),
        },
        base_url: base_url.to_owned(),
        operator,
        parent: config.parent.clone(),
        key: config.key.clone(),
        iv: config.iv.clone(),
        secret,
        clients: Vec::new(),
        results_delay_ms: config.history_delay_ms,
        results_step_ms: config.history_step_ms,
        ..Default::default()
    }
}
