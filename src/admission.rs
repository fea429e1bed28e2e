//! Connection admission (issue 25): every accepted TCP connection is counted here before
//! actix-http sees it, so a flood of idle or slow connections cannot take every file
//! descriptor of the process.
//!
//! - **Connection budget**: at most `max_connections` open client connections per node (the
//!   descriptor limit minus `fd_reserve`, or less if configured), so the database pool, Redis
//!   and provider sockets always find a descriptor. At the budget the oldest connection still
//!   waiting to authenticate is closed to make room (idle and slow-body floods from many
//!   addresses cannot lock out newcomers or `/health`); with none left, a new connection is
//!   answered 503 `server_busy` and closed at once, so the listener keeps draining its backlog.
//! - **Per-IP cap on unauthenticated connections**: a connection is *unauthenticated* from accept
//!   until a request on it carries a valid access token (the `Auth` extractor) or, for a
//!   websocket, its token is accepted (URL or `auth` frame). One IP may hold at most
//!   `max_unauthenticated_connections_per_ip` of them; more are answered 429
//!   `too_many_connections` and closed. Logged-in clients behind one NAT are not limited by it.
//! - **Websocket caps**: per user (settings: default, per role, per client) and per IP, held by
//!   [`WsSlot`] guards that the session drops when it ends.
//!
//! A connection's [`Conn`] travels in actix-http's connection data (`conn_data`), so request
//! handlers and the websocket hand-off reach it; it is released when the last holder (the HTTP
//! dispatcher, or the websocket session it was handed to) drops it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use actix_http::Protocol;
use actix_http::error::DispatchError;
use actix_service::Service;
use dashmap::DashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::auth::Caller;
use crate::config::Settings;
use crate::metrics as m;

/// Fewest connections the budget allows, whatever the descriptor limit says.
const MIN_CONNECTIONS: usize = 64;

#[derive(Default)]
struct IpCounts {
    unauthenticated: usize,
    websockets: usize,
}

impl IpCounts {
    fn is_empty(&self) -> bool {
        self.unauthenticated == 0 && self.websockets == 0
    }
}

/// Why a connection or websocket was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PerIp,
    Budget,
    PerUser,
}

pub struct Admission {
    max_connections: usize,
    idle_max: Option<Duration>,
    /// Clock origin of each connection's `last_activity`.
    epoch: tokio::time::Instant,
    unauth_per_ip: usize,
    ws_per_ip: usize,
    ws_per_user: usize,
    ws_by_role: BTreeMap<String, usize>,
    ws_by_client: BTreeMap<String, usize>,
    open: AtomicUsize,
    ips: DashMap<IpAddr, IpCounts>,
    users: DashMap<String, usize>,
    /// Connections in accept order, for eviction at the budget (stale entries skipped).
    unauthenticated: Mutex<VecDeque<Weak<Conn>>>,
}

/// The soft `RLIMIT_NOFILE`, raised to the hard limit first (a server wants all it may have).
pub fn descriptor_limit() -> Option<usize> {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        if lim.rlim_cur == libc::RLIM_INFINITY {
            return None;
        }
        usize::try_from(lim.rlim_cur).ok()
    }
}

impl Admission {
    pub fn new(settings: &Settings) -> Self {
        let from_fds = descriptor_limit()
            .map(|limit| limit.saturating_sub(settings.fd_reserve))
            .unwrap_or(usize::MAX);
        let max_connections = settings
            .max_connections
            .unwrap_or(usize::MAX)
            .min(from_fds)
            .max(MIN_CONNECTIONS);
        Self {
            max_connections,
            idle_max: (settings.connection_idle_max_ms > 0)
                .then(|| Duration::from_millis(settings.connection_idle_max_ms)),
            epoch: tokio::time::Instant::now(),
            unauth_per_ip: none_if_zero(settings.max_unauthenticated_connections_per_ip),
            ws_per_ip: none_if_zero(settings.ws_max_per_ip),
            ws_per_user: none_if_zero(settings.ws_max_per_user),
            ws_by_role: settings.ws_max_per_user_by_role.clone(),
            ws_by_client: settings.ws_max_per_user_by_client.clone(),
            open: AtomicUsize::new(0),
            ips: DashMap::new(),
            users: DashMap::new(),
            unauthenticated: Mutex::new(VecDeque::new()),
        }
    }

    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Counts a new connection, or says why it is refused. At the budget, the oldest
    /// connection still waiting to authenticate (on its HTTP dispatcher) is closed to make room,
    /// so a flood of idle or slow connections from many addresses cannot lock everyone else
    /// (and `/health`) out; only when none is left is the new one refused.
    pub fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Arc<Conn>, Refusal> {
        if let Some(ip) = ip {
            let mut counts = self.ips.entry(ip).or_default();
            if counts.unauthenticated >= self.unauth_per_ip {
                drop(counts);
                self.forget_ip_if_empty(ip);
                return Err(Refusal::PerIp);
            }
            counts.unauthenticated += 1;
        }
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max_connections && !self.evict_one() {
            self.open.fetch_sub(1, Ordering::AcqRel);
            if let Some(ip) = ip {
                self.unauthenticated_done(ip);
            }
            return Err(Refusal::Budget);
        }
        metrics::gauge!(m::CONNECTIONS_OPEN).increment(1.0);
        let conn = Arc::new(Conn {
            admission: self.clone(),
            ip,
            authenticated: AtomicBool::new(false),
            serving: AtomicBool::new(true),
            evict: Notify::new(),
            in_flight: AtomicUsize::new(0),
            last_activity: AtomicU64::new(self.now_ms()),
        });
        let mut queue = self.unauthenticated.lock().expect("admission queue");
        // Entries of ended or authenticated connections are dropped once they pile up.
        if queue.len() > 64 && queue.len() > 2 * self.open.load(Ordering::Acquire) {
            queue.retain(|w| w.upgrade().is_some_and(|c| c.evictable()));
        }
        queue.push_back(Arc::downgrade(&conn));
        Ok(conn)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Asks the oldest evictable connection to close; false if there is none.
    fn evict_one(&self) -> bool {
        let mut queue = self.unauthenticated.lock().expect("admission queue");
        while let Some(weak) = queue.pop_front() {
            if let Some(conn) = weak.upgrade()
                && conn.evictable()
            {
                conn.serving.store(false, Ordering::Release);
                conn.evict.notify_one();
                metrics::counter!(m::CONNECTIONS_EVICTED).increment(1);
                return true;
            }
        }
        false
    }

    fn forget_ip_if_empty(&self, ip: IpAddr) {
        self.ips.remove_if(&ip, |_, c| c.is_empty());
    }

    fn unauthenticated_done(&self, ip: IpAddr) {
        if let Some(mut counts) = self.ips.get_mut(&ip) {
            counts.unauthenticated = counts.unauthenticated.saturating_sub(1);
        }
        self.forget_ip_if_empty(ip);
    }

    /// The per-user websocket cap for this caller: per client, else per role, else default.
    pub fn ws_cap(&self, caller: &Caller) -> usize {
        let client = caller.client_id.as_deref().unwrap_or("platform");
        self.ws_by_client
            .get(client)
            .or_else(|| self.ws_by_role.get(caller.role.as_str()))
            .copied()
            .map_or(self.ws_per_user, none_if_zero)
    }

    /// Takes one of this user's websocket places on this node.
    pub fn ws_user_slot(self: &Arc<Self>, caller: &Caller) -> Result<WsSlot, Refusal> {
        let cap = self.ws_cap(caller);
        let mut count = self.users.entry(caller.user_id.clone()).or_insert(0);
        if *count >= cap {
            drop(count);
            self.users.remove_if(&caller.user_id, |_, c| *c == 0);
            return Err(Refusal::PerUser);
        }
        *count += 1;
        Ok(WsSlot {
            admission: self.clone(),
            key: SlotKey::User(caller.user_id.clone()),
        })
    }

    /// Takes one of this IP's websocket places on this node.
    pub fn ws_ip_slot(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Option<WsSlot>, Refusal> {
        let Some(ip) = ip else { return Ok(None) };
        let mut counts = self.ips.entry(ip).or_default();
        if counts.websockets >= self.ws_per_ip {
            drop(counts);
            self.forget_ip_if_empty(ip);
            return Err(Refusal::PerIp);
        }
        counts.websockets += 1;
        Ok(Some(WsSlot {
            admission: self.clone(),
            key: SlotKey::Ip(ip),
        }))
    }
}

fn none_if_zero(cap: usize) -> usize {
    if cap == 0 { usize::MAX } else { cap }
}

/// One accepted connection; dropped (by its last holder) when the connection ends.
pub struct Conn {
    admission: Arc<Admission>,
    ip: Option<IpAddr>,
    authenticated: AtomicBool,
    /// Still on its HTTP dispatcher (not ended, not handed to a websocket, not evicted).
    serving: AtomicBool,
    evict: Notify,
    /// Requests being answered on this connection, and when one last began or ended.
    in_flight: AtomicUsize,
    last_activity: AtomicU64,
}

impl Conn {
    pub fn admission(&self) -> &Arc<Admission> {
        &self.admission
    }

    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// A request began on this connection (the body-deadline middleware calls this); the
    /// guard marks its end.
    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        RequestGuard(self.clone())
    }

    fn touch(&self) {
        self.last_activity
            .store(self.admission.now_ms(), Ordering::Release);
    }

    /// Resolves once the connection has gone `idle_max` with no request in progress.
    async fn idle_too_long(&self, idle_max: Duration) {
        loop {
            let last = Duration::from_millis(self.last_activity.load(Ordering::Acquire));
            let due = self.admission.epoch + last + idle_max;
            if tokio::time::Instant::now() >= due && self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            // Busy or touched since: look again later (at most once a second while busy).
            tokio::time::sleep_until(due.max(tokio::time::Instant::now() + Duration::from_secs(1)))
                .await;
        }
    }

    fn evictable(&self) -> bool {
        self.serving.load(Ordering::Acquire) && !self.authenticated.load(Ordering::Acquire)
    }

    /// A valid token came on this connection: it no longer counts against its IP's
    /// unauthenticated cap.
    pub fn mark_authenticated(&self) {
        if !self.authenticated.swap(true, Ordering::AcqRel)
            && let Some(ip) = self.ip
        {
            self.admission.unauthenticated_done(ip);
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.authenticated.load(Ordering::Acquire)
            && let Some(ip) = self.ip
        {
            self.admission.unauthenticated_done(ip);
        }
        self.admission.open.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!(m::CONNECTIONS_OPEN).decrement(1.0);
    }
}

/// One request in progress on a connection; dropped when it is answered.
pub struct RequestGuard(Arc<Conn>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

enum SlotKey {
    User(String),
    Ip(IpAddr),
}

/// A websocket's place under a cap; released on drop.
pub struct WsSlot {
    admission: Arc<Admission>,
    key: SlotKey,
}

impl Drop for WsSlot {
    fn drop(&mut self) {
        match &self.key {
            SlotKey::User(user) => {
                if let Some(mut count) = self.admission.users.get_mut(user) {
                    *count = count.saturating_sub(1);
                }
                self.admission.users.remove_if(user, |_, c| *c == 0);
            }
            SlotKey::Ip(ip) => {
                if let Some(mut counts) = self.admission.ips.get_mut(ip) {
                    counts.websockets = counts.websockets.saturating_sub(1);
                }
                self.admission.forget_ip_if_empty(*ip);
            }
        }
    }
}

thread_local! {
    // The connection being handed to actix-http on this worker thread: `serve` puts it here
    // right before the synchronous `call` whose `on_connect_ext` hook takes it into the
    // connection's data (actix-http offers no other way to attach data we made).
    static HANDOFF: RefCell<Option<Arc<Conn>>> = const { RefCell::new(None) };
}

/// actix-http's `on_connect_ext` hook: attaches this connection's [`Conn`].
pub fn attach(_io: &TcpStream, data: &mut actix_http::Extensions) {
    if let Some(conn) = HANDOFF.with_borrow_mut(Option::take) {
        data.insert(conn);
    }
}

/// Admits (or refuses) one accepted connection and runs the HTTP service on it.
pub fn serve<S>(
    admission: &Arc<Admission>,
    io: TcpStream,
    http: &S,
) -> impl Future<Output = Result<(), DispatchError>> + use<S>
where
    S: Service<(TcpStream, Protocol, Option<SocketAddr>), Response = (), Error = DispatchError>,
{
    let peer = io.peer_addr().ok();
    let admitted = match admission.admit(peer.map(|p| p.ip())) {
        Ok(conn) => {
            HANDOFF.with_borrow_mut(|slot| *slot = Some(conn.clone()));
            let call = http.call((io, Protocol::Http1, peer));
            HANDOFF.with_borrow_mut(|slot| *slot = None);
            Ok((call, conn))
        }
        Err(reason) => Err((io, reason)),
    };
    let admission = admission.clone();
    async move {
        match admitted {
            Ok((call, conn)) => {
                let idle = async {
                    match admission.idle_max {
                        Some(max) => conn.idle_too_long(max).await,
                        None => std::future::pending().await,
                    }
                };
                let result = tokio::select! {
                    result = call => Some(result),
                    _ = conn.evict.notified() => None,
                    _ = idle => {
                        metrics::counter!(m::CLIENT_ERRORS, "code" => "request_timeout").increment(1);
                        tracing::debug!("connection idle too long between requests; closed");
                        Some(Ok(()))
                    }
                };
                conn.serving.store(false, Ordering::Release);
                drop(conn);
                match result {
                    Some(Err(e)) => note_dispatch_error(&e),
                    Some(Ok(())) => {}
                    None => tracing::debug!("unauthenticated connection evicted at the budget"),
                }
            }
            Err((io, reason)) => {
                // Lingering holds a descriptor: only while the budget has room for it.
                let linger = reason != Refusal::Budget && admission_room(&admission);
                refuse(io, reason, linger).await;
                if linger {
                    admission.open.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
        Ok(())
    }
}

/// Counts a lingering refused connection against the budget, if there is room.
fn admission_room(admission: &Admission) -> bool {
    if admission.open.fetch_add(1, Ordering::AcqRel) >= admission.max_connections {
        admission.open.fetch_sub(1, Ordering::AcqRel);
        return false;
    }
    true
}

/// How long a refused connection's request is read and dropped after the refusal, so that
/// closing does not reset the connection before the client has read the answer.
const REFUSAL_LINGER: Duration = Duration::from_millis(500);

/// Writes a short JSON refusal and closes (all within `REFUSAL_LINGER`).
/// Past the per-IP cap the connection lingers briefly (read and discarded), so the client sees
/// the 429; past the descriptor budget it is closed at once.
async fn refuse(mut io: TcpStream, reason: Refusal, linger: bool) {
    let (label, status, code, message) = match reason {
        Refusal::Budget => (
            "fd_reserve",
            "503 Service Unavailable",
            "server_busy",
            "the server has no room for more connections; retry shortly",
        ),
        _ => (
            "per_ip",
            "429 Too Many Requests",
            "too_many_connections",
            "too many connections from your address that have not logged in",
        ),
    };
    metrics::counter!(m::CONNECTIONS_REFUSED, "reason" => label).increment(1);
    tracing::debug!(reason = label, "connection refused at accept");
    let body = format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#);
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // Bounded: a client that reads nothing cannot keep a refused connection.
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        io.write_all(response.as_bytes()).await?;
        if !linger {
            return Ok(());
        }
        io.shutdown().await?;
        let mut sink = [0_u8; 1024];
        while io.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// The dispatcher's own errors, which actix-http would log at ERROR (we silence those lines,
/// see `telemetry`): a client's fault is counted and logged at debug, ours at warn.
fn note_dispatch_error(e: &DispatchError) {
    match e {
        DispatchError::Parse(_) => {
            metrics::counter!(m::CLIENT_ERRORS, "code" => "malformed_request").increment(1);
            tracing::debug!(error = %e, "malformed request");
        }
        DispatchError::SlowRequestTimeout => {
            metrics::counter!(m::CLIENT_ERRORS, "code" => "request_timeout").increment(1);
            tracing::debug!(error = %e, "request too slow");
        }
        // The client went away or stopped reading: its business.
        DispatchError::Io(_)
        | DispatchError::DisconnectTimeout
        | DispatchError::HandlerDroppedPayload
        | DispatchError::Upgrade => tracing::debug!(error = %e, "connection ended"),
        other => tracing::warn!(error = %other, "HTTP connection failed"),
    }
}
