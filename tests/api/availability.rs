//! Under attack (issue 25, availability): slow request bodies time out (408) and free their
//! connection, unauthenticated connections are capped per IP while other addresses (and
//! `/health`) are still served, websockets are capped per user and per IP (429 / 4009) and
//! released when they close, inbound frame floods are closed with 4029, and client faults are
//! counted in `/metrics` instead of being logged at ERROR.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::backend_tests;
use crate::helpers::{Backend, TestHub, Tree, WsClient, metric_value};
use crate::realtime::{add_player, connect};

backend_tests!(
    slow_bodies_get_408_and_health_stays_answerable,
    authenticated_connections_leave_the_per_ip_cap,
    at_the_connection_budget_idle_connections_make_room,
    a_trickled_second_request_head_is_cut_off,
    a_streamed_answer_read_slowly_outlives_the_idle_limit,
    websockets_are_capped_per_user_and_ip_and_released_on_close,
    inbound_frame_flood_is_closed_with_4029,
);

fn hub_addr(hub: &TestHub) -> SocketAddr {
    hub.base.trim_start_matches("http://").parse().unwrap()
}

/// A TCP connection to the hub from a chosen loopback source address.
async fn connect_from(addr: SocketAddr, local: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.expect("tcp connects")
}

/// Everything the server sends until it closes the connection or `wait` passes:
/// (text, closed by the server).
async fn read_until_close(stream: &mut TcpStream, wait: Duration) -> (String, bool) {
    let deadline = tokio::time::Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// The head of a login request announcing a 100-byte body, and its first bytes.
const SLOW_LOGIN: &str = "POST /api/v1/auth/login HTTP/1.1\r\nhost: hub\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"use";

async fn metric(hub: &TestHub, series: &str) -> f64 {
    crate::realtime::metric(hub, series).await.unwrap_or(0.0)
}

/// `GET /health` on a fresh connection from `local`: the status line's code, within `wait`.
async fn health_from(addr: SocketAddr, local: &str, wait: Duration) -> Option<u16> {
    let mut s = connect_from(addr, local).await;
    s.write_all(b"GET /health HTTP/1.1\r\nhost: hub\r\nconnection: close\r\n\r\n")
        .await
        .ok()?;
    let (text, _) = read_until_close(&mut s, wait).await;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

async fn slow_bodies_get_408_and_health_stays_answerable(backend: Backend) {
    const CAP: usize = 40;
    const SLOW: usize = 60;
    let hub = TestHub::start_with(backend, |s| {
        s.request_body_timeout_ms = 3_000;
        s.request_body_min_rate = 4;
        s.request_body_grace_ms = 1_000;
        s.max_unauthenticated_connections_per_ip = CAP;
    })
    .await;
    let addr = hub_addr(&hub);
    let timeouts_before = metric(&hub, "request_body_timeouts_total").await;
    let refused_before = metric(&hub, "connections_refused_total{reason=\"per_ip\"}").await;

    // 127.0.0.3 holds SLOW login requests whose body stalls after 5 bytes.
    let t0 = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..SLOW {
        let mut s = connect_from(addr, "127.0.0.3").await;
        let _ = s.write_all(SLOW_LOGIN.as_bytes()).await;
        stalled.push(s);
    }
    // One more trickles a byte every 100 ms: fast enough for the minimum rate (4 B/s), too slow
    // for the total deadline (100 bytes in 3 s).
    let mut trickle = connect_from(addr, "127.0.0.4").await;
    trickle.write_all(SLOW_LOGIN.as_bytes()).await.unwrap();
    let trickler = tokio::spawn(async move {
        let started = Instant::now();
        let mut buf = [0_u8; 4096];
        let mut got = Vec::new();
        loop {
            tokio::select! {
                read = trickle.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                },
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    if trickle.write_all(b" ").await.is_err() {
                        break;
                    }
                }
            }
            if started.elapsed() > Duration::from_secs(15) {
                break;
            }
        }
        (
            String::from_utf8_lossy(&got).into_owned(),
            started.elapsed(),
        )
    });

    // Meanwhile other addresses are served at once; this one is refused past its cap.
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(
            health_from(addr, "127.0.0.2", Duration::from_secs(2)).await,
            Some(200)
        );
        assert!(started.elapsed() < Duration::from_secs(1), "slow /health");
    }
    assert_eq!(
        health_from(addr, "127.0.0.3", Duration::from_secs(2)).await,
        Some(429),
        "the capped address is refused"
    );

    // Each stalled request: refused at accept (429, past the cap) or, held, 408 once its body
    // is late (grace 1 s + 5 bytes at 4 B/s), then the connection is closed.
    let mut held = 0;
    let mut refused = 0;
    for s in &mut stalled {
        let (text, closed) = read_until_close(s, Duration::from_secs(8)).await;
        assert!(closed, "connection left open: {text:?}");
        if text.starts_with("HTTP/1.1 429") {
            assert!(text.contains("too_many_connections"), "{text}");
            refused += 1;
        } else {
            assert!(text.starts_with("HTTP/1.1 408"), "{text}");
            assert!(text.contains("\"request_timeout\""), "{text}");
            held += 1;
        }
    }
    assert_eq!(held, CAP);
    assert_eq!(refused, SLOW - CAP);
    assert!(t0.elapsed() < Duration::from_secs(9), "{:?}", t0.elapsed());

    let (text, after) = trickler.await.unwrap();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        after >= Duration::from_millis(2_900),
        "the trickle met the minimum rate; only the total deadline may end it ({after:?})"
    );

    // The closed connections are released: the address is admitted again.
    assert_eq!(
        health_from(addr, "127.0.0.3", Duration::from_secs(2)).await,
        Some(200)
    );
    assert!(
        metric(&hub, "request_body_timeouts_total").await >= timeouts_before + CAP as f64 + 1.0
    );
    assert!(
        metric(&hub, "connections_refused_total{reason=\"per_ip\"}").await
            >= refused_before + (SLOW - CAP) as f64
    );
}

async fn authenticated_connections_leave_the_per_ip_cap(backend: Backend) {
    let hub = TestHub::start_with(backend, |s| {
        s.max_unauthenticated_connections_per_ip = 3;
    })
    .await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let addr = hub_addr(&hub);
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(connect_from(addr, "127.0.0.5").await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        health_from(addr, "127.0.0.5", Duration::from_secs(2)).await,
        Some(429)
    );
    // Two of them carry a valid token: they no longer count against the address.
    let get = format!(
        "GET /api/v1/users/{}/wallet HTTP/1.1\r\nhost: hub\r\nauthorization: Bearer {}\r\n\r\n",
        tree.player_id, tree.admin_token
    );
    for s in &mut open[..2] {
        s.write_all(get.as_bytes()).await.unwrap();
        let mut buf = [0_u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    }
    for _ in 0..2 {
        assert_eq!(
            health_from(addr, "127.0.0.5", Duration::from_secs(2)).await,
            Some(200)
        );
    }
    // An invalid token does not authenticate a connection.
    let bad = "GET /api/v1/clients HTTP/1.1\r\nhost: hub\r\nauthorization: Bearer nope\r\n\r\n";
    open[2].write_all(bad.as_bytes()).await.unwrap();
    let mut buf = [0_u8; 4096];
    let n = open[2].read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 401"));
    let mut extra = connect_from(addr, "127.0.0.5").await;
    let mut filler = connect_from(addr, "127.0.0.5").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        health_from(addr, "127.0.0.5", Duration::from_secs(2)).await,
        Some(429)
    );
    let _ = (extra.flush().await, filler.flush().await);
}

/// At the connection budget, the oldest connections that never authenticated are closed so
/// newcomers (here `/health`) are still served; authenticated ones are kept.
async fn at_the_connection_budget_idle_connections_make_room(backend: Backend) {
    const BUDGET: usize = 80;
    let hub = TestHub::start_with(backend, |s| {
        s.max_connections = Some(BUDGET);
        s.max_unauthenticated_connections_per_ip = 0;
    })
    .await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let addr = hub_addr(&hub);
    let evicted_before = metric(&hub, "connections_evicted_total").await;
    // One authenticated keep-alive connection, opened first.
    let mut member = connect_from(addr, "127.0.0.7").await;
    let get = format!(
        "GET /api/v1/users/{}/wallet HTTP/1.1\r\nhost: hub\r\nauthorization: Bearer {}\r\n\r\n",
        tree.player_id, tree.player_token
    );
    let mut buf = [0_u8; 4096];
    member.write_all(get.as_bytes()).await.unwrap();
    let n = member.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    // Slow logins from many "addresses" fill the budget and more.
    let mut slow = Vec::new();
    for i in 0..BUDGET + 20 {
        let mut s = connect_from(addr, &format!("127.0.1.{}", 1 + i % 200)).await;
        let _ = s.write_all(SLOW_LOGIN.as_bytes()).await;
        slow.push(s);
    }
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(
            health_from(addr, "127.0.0.2", Duration::from_secs(2)).await,
            Some(200)
        );
        assert!(started.elapsed() < Duration::from_secs(1), "slow /health");
    }
    // The oldest slow ones were closed without an answer; the member is still served.
    let (text, closed) = read_until_close(&mut slow[0], Duration::from_secs(1)).await;
    assert!(closed && text.is_empty(), "{text:?}");
    member.write_all(get.as_bytes()).await.unwrap();
    let n = member.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    assert!(metric(&hub, "connections_evicted_total").await >= evicted_before + 20.0);
}

/// actix-http times out only a connection's first request head: a later one, trickled on a
/// kept-alive connection, is cut off by the connection's idle limit.
async fn a_trickled_second_request_head_is_cut_off(backend: Backend) {
    let hub = TestHub::start_with(backend, |s| s.connection_idle_max_ms = 1_500).await;
    let addr = hub_addr(&hub);
    let mut s = connect_from(addr, "127.0.0.8").await;
    s.write_all(b"GET /health HTTP/1.1\r\nhost: hub\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0_u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    s.write_all(b"GET /health HTTP/1.1\r\nx-slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let closed_after = loop {
        tokio::select! {
            read = s.read(&mut buf) => match read {
                Ok(0) | Err(_) => break started.elapsed(),
                Ok(_) => {}
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if s.write_all(b"x").await.is_err() {
                    break started.elapsed();
                }
            }
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still open");
    };
    assert!(closed_after < Duration::from_secs(5), "{closed_after:?}");
}

/// A streamed answer (the history CSV) keeps its connection busy until its body is written:
/// a reader pausing longer than the idle limit, with more of the body than the socket buffers
/// hold still in the hub, gets every row.
async fn a_streamed_answer_read_slowly_outlives_the_idle_limit(backend: Backend) {
    let hub = TestHub::start_with(backend, |s| s.connection_idle_max_ms = 1_000).await;
    let tree = Tree::create(&hub.api()).await;
    // ~160 bytes a CSV line: ~10 MB, past the hub's send buffer (up to 4 MB on loopback).
    const ROWS: usize = 60_000;
    let (t, round) = (1_700_000_000_000_i64, "r".repeat(56));
    for first in (0..ROWS).step_by(2_000) {
        let values: Vec<String> = (first..first + 2_000)
            .map(|i| {
                format!(
                    "('{}', 'slow-reader-provider', '{round}{i:06}', '{}', 1, 'settled', -50, \
                     100, {at}, {at})",
                    tree.client_id,
                    tree.player_id,
                    at = t + i as i64
                )
            })
            .collect();
        hub.infra
            .execute(&format!(
                "INSERT INTO game_rounds (client_id, provider, round_id, user_id, version, \
                 status, net, stake, updated_at, created_at) VALUES {}",
                values.join(", ")
            ))
            .await;
    }
    // A small fixed receive window: what the reader has not read waits in the hub.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let mut s = socket.connect(hub_addr(&hub)).await.unwrap();
    let request = format!(
        "GET /api/v1/reports/players/{}/history?format=csv HTTP/1.1\r\nhost: hub\r\n\
         authorization: Bearer {}\r\n\r\n",
        tree.player_id, tree.admin_token
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let (mut got, mut buf, mut pauses) = (Vec::new(), vec![0_u8; 64 * 1024], 0);
    while !got.ends_with(b"\r\n0\r\n\r\n") {
        // Three pauses past the idle limit: at the start, after 2 MB and after 4 MB.
        if pauses < 3 && got.len() >= pauses * 2_000_000 {
            pauses += 1;
            tokio::time::sleep(Duration::from_millis(1_600)).await;
        }
        let read = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf));
        let n = read.await.expect("the hub went quiet").unwrap_or(0);
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(pauses, 3, "{} bytes", got.len());
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..head_end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    // De-chunked: the CSV, whole or cut where the connection ended.
    let (mut csv, mut rest) = (Vec::new(), &got[head_end..]);
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        let chunk = &rest[eol + 2..];
        csv.extend_from_slice(&chunk[..size.min(chunk.len())]);
        if size == 0 || chunk.len() < size + 2 {
            break;
        }
        rest = &chunk[size + 2..];
    }
    let text = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), ROWS + 1, "{} bytes of CSV", text.len());
    assert!(text.ends_with("\r\n"));
    assert!(
        lines[1].contains(&format!("{round}{:06},", ROWS - 1)),
        "{}",
        lines[1]
    );
    let last = format!(
        ",round,round:slow-reader-provider:{round}000000,slow-reader-provider,settled,1.00,-0.50"
    );
    assert!(lines[ROWS].ends_with(&last), "{}", lines[ROWS]);
}

/// Tries a websocket: Ok(socket) or Err((status, body)).
async fn try_ws(
    url: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    (u16, Value),
> {
    match tokio_tungstenite::connect_async(url).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            let body = res
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((res.status().as_u16(), body))
        }
        Err(e) => panic!("websocket: {e}"),
    }
}

async fn websockets_are_capped_per_user_and_ip_and_released_on_close(backend: Backend) {
    let hub = TestHub::start_with(backend, |s| {
        s.ws_max_per_user = 3;
        s.ws_max_per_user_by_role.insert("agent".into(), 1);
        s.ws_max_per_ip = 6;
    })
    .await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let per_user = "websocket_refused_total{reason=\"per_user\"}";
    let per_ip = "websocket_refused_total{reason=\"per_ip\"}";
    let refused_user = metric(&hub, per_user).await;
    let refused_ip = metric(&hub, per_ip).await;

    let mut players = Vec::new();
    for _ in 0..3 {
        players.push(connect(&hub, &tree.player_token).await.0);
    }
    let (status, body) = try_ws(&hub.ws_url(&tree.player_token)).await.err().unwrap();
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_websockets", "{body}");

    // The token in the first frame: the cap applies at auth, closing with 4009.
    let bare = format!("{}/ws", hub.base.replacen("http", "ws", 1));
    let mut late = WsClient::connect(&bare).await;
    late.send(json!({ "type": "auth", "token": tree.player_token }))
        .await;
    assert_eq!(late.next_of("closed").await["code"], 4009);

    // Closing one frees its place.
    let mut first = players.remove(0);
    first.send(json!({"type": "ping"})).await;
    drop(first);
    let started = Instant::now();
    loop {
        match try_ws(&hub.ws_url(&tree.player_token)).await {
            Ok(ws) => {
                drop(ws);
                break;
            }
            Err((429, _)) if started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => panic!("place not released: {other:?}"),
        }
    }

    // Per role: agents may hold one.
    let (agent, _) = connect(&hub, &tree.agent_token).await;
    let (status, _) = try_ws(&hub.ws_url(&tree.agent_token)).await.err().unwrap();
    assert_eq!(status, 429);

    // Per IP: 2 players + (the freed place taken then dropped) + 1 agent; another player and
    // two admin sockets reach 6, the next is refused whoever it is.
    let (_, other_token) = add_player(&api, &tree, "second").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut more = Vec::new();
    for token in [&other_token, &tree.admin_token, &tree.admin_token] {
        more.push(connect(&hub, token).await.0);
    }
    let (status, body) = try_ws(&hub.ws_url(&tree.admin_token)).await.err().unwrap();
    assert_eq!(status, 429, "{body}");
    assert!(metric(&hub, per_user).await >= refused_user + 3.0);
    assert!(metric(&hub, per_ip).await >= refused_ip + 1.0);
    drop((agent, players, more));
}

async fn inbound_frame_flood_is_closed_with_4029(backend: Backend) {
    let hub = TestHub::start_with(backend, |s| {
        s.ws_frames_per_sec = 20;
        s.ws_frames_burst = 40;
    })
    .await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let closed_before = metric(&hub, "websocket_frame_rate_closed_total").await;

    // Normal use: a burst within the bucket, then a steady pace under the rate.
    let (mut calm, _) = connect(&hub, &tree.player_token).await;
    for _ in 0..30 {
        calm.send(json!({ "type": "ping" })).await;
    }
    for _ in 0..30 {
        assert_eq!(calm.next().await["type"], "pong");
    }
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        calm.send(json!({ "type": "ping" })).await;
        assert_eq!(calm.next().await["type"], "pong");
    }

    // A flood of subscribe frames is cut off with 4029 (not every frame answered).
    let (mut flood, _) = tokio_tungstenite::connect_async(hub.ws_url(&tree.agent_token))
        .await
        .unwrap();
    let room = format!("user:{}", tree.player_id);
    let frame = json!({ "type": "subscribe", "room": room }).to_string();
    let mut sent = 0;
    for _ in 0..2000 {
        if flood.feed(Message::text(frame.clone())).await.is_err() {
            break;
        }
        sent += 1;
    }
    let _ = flood.flush().await;
    let mut answered = 0;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), flood.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => answered += 1,
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(code, Some(4029));
    assert!(answered < 100, "{answered} of {sent} frames answered");
    assert!(metric(&hub, "websocket_frame_rate_closed_total").await >= closed_before + 1.0);

    // The calm socket is untouched.
    calm.send(json!({ "type": "ping" })).await;
    assert_eq!(calm.next().await["type"], "pong");
}

/// Malformed requests are client faults: counted in `http_client_errors_total{code}`, and
/// nothing reaches the error log (a `nashub serve` process at `NASHUB_LOG=warn`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_faults_are_counted_not_logged_as_errors() {
    use std::io::BufRead;
    let infra = crate::helpers::Infra::new(Backend::Sqlite).await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nashub"))
        .arg("serve")
        .env_clear()
        .envs(infra.env())
        .env("NASHUB_BIND", "127.0.0.1:0")
        .env("NASHUB_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start nashub serve");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let _child = Kill(child);
    // Logs go to stdout (tracing's default writer); stderr is read too.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(base) = line.strip_prefix("nashub listening on ") {
                let _ = tx.send(base.to_owned());
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(60)).expect("address");
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let api = crate::helpers::Api::new(&base);

    for raw in [
        "GET /health HTTP/1.1\r\nthis is not a header\r\n\r\n",
        "NOT-HTTP\r\n\r\n",
        "POST /api/v1/auth/login HTTP/1.1\r\nhost: hub\r\ncontent-length: nope\r\n\r\n",
    ] {
        let mut s = connect_from(addr, "127.0.0.1").await;
        s.write_all(raw.as_bytes()).await.unwrap();
        let (text, _) = read_until_close(&mut s, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 400"), "{raw:?}: {text:?}");
    }
    for _ in 0..3 {
        api.send(
            api.http
                .post(format!("{base}/api/v1/auth/login"))
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await
        .error(400, "invalid_json");
    }
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |code: &str| {
        metric_value(
            &metrics,
            &format!("http_client_errors_total{{code=\"{code}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert_eq!(count("malformed_request"), 3.0, "{metrics}");
    assert_eq!(count("invalid_json"), 3.0);
    assert_eq!(count("request_timeout"), 0.0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = log.lock().unwrap().clone();
    assert!(
        !log.contains("ERROR"),
        "client faults logged as errors:\n{log}"
    );
}
