//! Socket.io at `/socket.io/` (issue 21), spoken here frame by frame (Engine.IO v4 packets over
//! a plain websocket client), so the protocol is tested on both backends without node; the
//! official `socket.io-client` is driven by `socketio_client.rs` when node is there.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::backend_tests;
use crate::helpers::{Backend, TestHub, Tree, metric_value};
use crate::realtime::add_player;

backend_tests!(
    socketio_connects_joins_rooms_and_receives_events,
    socketio_resume_replays_missed_events_or_refetches,
    socketio_refuses_bad_tokens_namespaces_polling_and_joins,
    socketio_token_expiry_disconnects,
    socketio_per_user_cap_is_a_connect_error,
);

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What the server sent next.
#[derive(Debug)]
pub enum Got {
    Text(String),
    Closed(Option<u16>),
}

pub struct Sio {
    ws: Stream,
    /// The Engine.IO open packet's fields.
    pub open: Value,
    next_ack: u64,
}

pub fn sio_url(hub: &TestHub, extra: &str) -> String {
    format!(
        "{}/socket.io/?EIO=4&transport=websocket{extra}",
        hub.base.replacen("http", "ws", 1)
    )
}

impl Sio {
    /// Opens the Engine.IO connection and reads its open packet.
    pub async fn open(hub: &TestHub, extra: &str) -> Sio {
        let (ws, _) = tokio_tungstenite::connect_async(sio_url(hub, extra))
            .await
            .expect("socket.io websocket connects");
        let mut sio = Sio {
            ws,
            open: Value::Null,
            next_ack: 1,
        };
        let Got::Text(open) = sio.recv().await else {
            panic!("no open packet")
        };
        sio.open = serde_json::from_str(open.strip_prefix('0').expect("open packet 0{..}"))
            .expect("open packet JSON");
        sio
    }

    /// Opens and CONNECTs (auth `{token}` if given); panics unless accepted.
    pub async fn connect(hub: &TestHub, token: &str) -> Sio {
        let mut sio = Sio::open(hub, "").await;
        sio.send(&format!("40{}", json!({ "token": token }))).await;
        let answer = sio.text().await;
        let sid: Value = serde_json::from_str(answer.strip_prefix("40").expect("CONNECT answer"))
            .expect("CONNECT answer JSON");
        assert!(sid["sid"].is_string(), "{answer}");
        sio
    }

    pub async fn send(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("packet sent");
    }

    /// Next text or close, answering the server's pings; None if nothing within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Got> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some(Got::Closed(None)),
                Ok(Some(Ok(msg))) => msg,
            };
            match msg {
                Message::Text(t) if t.as_str() == "2" => self.send("3").await,
                Message::Text(t) => return Some(Got::Text(t.as_str().to_owned())),
                Message::Close(frame) => {
                    return Some(Got::Closed(frame.map(|f| u16::from(f.code))));
                }
                _ => {}
            }
        }
    }

    pub async fn recv(&mut self) -> Got {
        self.recv_within(Duration::from_secs(10))
            .await
            .expect("a packet within 10 s")
    }

    pub async fn text(&mut self) -> String {
        match self.recv().await {
            Got::Text(t) => t,
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    /// The next EVENT: (name, argument).
    pub async fn event(&mut self) -> (String, Value) {
        let text = self.text().await;
        let body = text
            .strip_prefix("42")
            .unwrap_or_else(|| panic!("expected an event, got {text}"));
        let Value::Array(items) = serde_json::from_str(body).expect("event JSON") else {
            panic!("event not an array: {text}")
        };
        (
            items[0].as_str().unwrap().to_owned(),
            items.get(1).cloned().unwrap_or(Value::Null),
        )
    }

    /// The next event named `name`, skipping others.
    pub async fn event_named(&mut self, name: &str) -> Value {
        loop {
            let (got, arg) = self.event().await;
            if got == name {
                return arg;
            }
        }
    }

    /// Emits an event with an ack id and returns the ack's argument (events before it are
    /// returned too, in order).
    pub async fn call(&mut self, name: &str, arg: Value) -> (Vec<(String, Value)>, Value) {
        let id = self.next_ack;
        self.next_ack += 1;
        self.send(&format!("42{id}{}", json!([name, arg]))).await;
        let mut events = Vec::new();
        loop {
            let text = self.text().await;
            if let Some(ack) = text.strip_prefix(&format!("43{id}")) {
                let Value::Array(mut items) = serde_json::from_str(ack).expect("ack JSON") else {
                    panic!("ack not an array: {text}")
                };
                return (events, items.swap_remove(0));
            }
            let body = text.strip_prefix("42").expect("event or ack");
            let items: Vec<Value> = serde_json::from_str(body).unwrap();
            events.push((items[0].as_str().unwrap().to_owned(), items[1].clone()));
        }
    }

    /// Reads the automatic joins after CONNECT: room → seq.
    pub async fn joined(&mut self) -> std::collections::HashMap<String, u64> {
        let mut seqs = std::collections::HashMap::new();
        for _ in 0..2 {
            let frame = self.event_named("subscribed").await;
            assert_eq!(frame["type"], "subscribed");
            seqs.insert(
                frame["room"].as_str().unwrap().to_owned(),
                frame["seq"].as_u64().unwrap(),
            );
        }
        seqs
    }
}

async fn metrics(hub: &TestHub) -> String {
    let url = format!("{}/metrics", hub.base);
    hub.http
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The HTTP status of a refused websocket upgrade.
async fn refused_upgrade(url: String) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

async fn socketio_connects_joins_rooms_and_receives_events(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let user_room = format!("user:{}", tree.player_id);

    // Engine.IO open packet, then CONNECT with the auth payload.
    let mut player = Sio::open(&hub, "").await;
    let open = &player.open;
    assert!(
        open["sid"].as_str().is_some_and(|s| !s.is_empty()),
        "{open}"
    );
    assert_eq!(open["upgrades"], json!([]));
    assert!(open["pingInterval"].as_u64().unwrap() > 0);
    assert!(open["pingTimeout"].as_u64().unwrap() > 0);
    assert_eq!(open["maxPayload"], 16384);
    player
        .send(&format!("40{}", json!({ "token": tree.player_token })))
        .await;
    assert!(player.text().await.starts_with("40{\"sid\":"));
    let seqs = player.joined().await;
    assert!(seqs.contains_key(&user_room));
    assert!(seqs.contains_key(&format!("client:{}", tree.client_id)));

    // The agent: token in the URL, CONNECT without auth; joins its player with an ack.
    let mut agent = Sio::open(&hub, &format!("&token={}", tree.agent_token)).await;
    agent.send("40").await;
    assert!(agent.text().await.starts_with("40{"));
    agent.joined().await;
    let (_, ack) = agent
        .call("join_user_room", json!({ "user_id": tree.player_id }))
        .await;
    assert_eq!(ack["type"], "subscribed", "{ack}");
    assert_eq!(ack["room"], user_room.as_str());
    assert_eq!(ack["seq"], seqs[&user_room]);
    // Without an ack id the answer is an event named after it.
    agent
        .send(&format!(
            "42{}",
            json!(["join_client_room", tree.client_id])
        ))
        .await;
    let frame = agent.event_named("subscribed").await;
    assert_eq!(frame["room"], format!("client:{}", tree.client_id));
    agent
        .send(&format!("42{}", json!(["join_client_room", "another"])))
        .await;
    let frame = agent.event_named("error").await;
    assert_eq!(frame["data"]["code"], "forbidden", "{frame}");
    assert_eq!(frame["room"], "client:another");

    // A deposit over HTTP reaches the player and the agent watching it, seq + 1.
    api.deposit(&tree.admin_token, &tree.player_id, "12.34")
        .await;
    for sio in [&mut player, &mut agent] {
        let frame = sio.event_named("balance_update").await;
        assert_eq!(frame["type"], "balance_update");
        assert_eq!(frame["room"], user_room.as_str());
        assert_eq!(frame["seq"], seqs[&user_room] + 1, "{frame}");
        assert_eq!(frame["data"]["balance"], "12.34", "{frame}");
    }
    api.post(
        &tree.admin_token,
        "/api/v1/notifications",
        json!({ "user_id": tree.player_id, "title": "hi", "body": "there" }),
    )
    .await
    .ok();
    let frame = player.event_named("notification").await;
    assert_eq!(frame["data"]["title"], "hi");
    assert_eq!(frame["seq"], seqs[&user_room] + 2);

    // Leaving: acked, and nothing more from that room.
    let (_, ack) = agent.call("leave_user_room", json!(tree.player_id)).await;
    assert_eq!(ack["type"], "unsubscribed", "{ack}");
    let (_, ack) = agent.call("leave_user_room", json!(tree.player_id)).await;
    assert_eq!(ack["data"]["code"], "not_subscribed", "{ack}");
    api.deposit(&tree.admin_token, &tree.player_id, "1.00")
        .await;
    assert_eq!(
        player.event_named("balance_update").await["seq"],
        seqs[&user_room] + 3
    );
    let (_, pong) = agent.call("ping", Value::Null).await;
    assert_eq!(pong["type"], "pong", "no balance_update in between: {pong}");

    let metrics = metrics(&hub).await;
    // The registry is per process and other tests' hubs run beside this one: at least ours.
    assert!(metric_value(&metrics, "socketio_connections").unwrap() >= 2.0);
    assert!(metric_value(&metrics, "websocket_connections").unwrap() >= 2.0);

    // DISCONNECT: the server closes the websocket normally.
    agent.send("41").await;
    assert!(matches!(agent.recv().await, Got::Closed(Some(1000))));
}

async fn socketio_resume_replays_missed_events_or_refetches(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let room = format!("user:{}", tree.player_id);
    let mut first = Sio::connect(&hub, &tree.player_token).await;
    let start = first.joined().await[&room];
    api.deposit(&tree.admin_token, &tree.player_id, "1.00")
        .await;
    let seen = first.event_named("balance_update").await["seq"]
        .as_u64()
        .unwrap();
    assert_eq!(seen, start + 1);
    drop(first);

    // Missed while away: three deposits.
    for _ in 0..3 {
        api.deposit(&tree.admin_token, &tree.player_id, "1.00")
            .await;
    }
    let mut back = Sio::connect(&hub, &tree.player_token).await;
    let latest = back.joined().await[&room];
    assert_eq!(latest, seen + 3);
    let (events, ack) = back
        .call("resume", json!({ "room": room, "seq": seen }))
        .await;
    let replayed: Vec<u64> = events
        .iter()
        .filter(|(name, _)| name == "balance_update")
        .map(|(_, f)| f["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(replayed, [seen + 1, seen + 2, seen + 3]);
    assert_eq!(ack["type"], "resumed", "{ack}");
    assert_eq!(
        (ack["seq"].as_u64(), ack["replayed"].as_u64()),
        (Some(latest), Some(3))
    );
    // Live frames carry on after the replay.
    api.deposit(&tree.admin_token, &tree.player_id, "1.00")
        .await;
    assert_eq!(back.event_named("balance_update").await["seq"], latest + 1);

    // A seq never issued: refetch with the room's seq.
    let (_, ack) = back
        .call("resume", json!({ "room": room, "seq": latest + 50 }))
        .await;
    assert_eq!(ack["type"], "refetch", "{ack}");
    assert_eq!(ack["seq"], latest + 1);
    // Without an ack id, the same answers come as events.
    back.send(&format!(
        "42{}",
        json!(["resume", { "room": room, "seq": latest }])
    ))
    .await;
    let (name, frame) = back.event().await;
    assert_eq!(
        (name.as_str(), &frame["type"]),
        ("balance_update", &json!("balance_update"))
    );
    assert_eq!(back.event_named("resumed").await["replayed"], 1);
    // A room not joined.
    let (_, ack) = back
        .call("resume", json!({ "room": "user:someone", "seq": 1 }))
        .await;
    assert_eq!(ack["data"]["code"], "not_subscribed", "{ack}");
}

async fn socketio_refuses_bad_tokens_namespaces_polling_and_joins(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let other = Tree::create(&api).await;

    // A bad token in the auth payload: CONNECT_ERROR, then close 4001.
    let mut sio = Sio::open(&hub, "").await;
    sio.send(r#"40{"token":"nope"}"#).await;
    let error = sio.text().await;
    let error: Value =
        serde_json::from_str(error.strip_prefix("44").expect("CONNECT_ERROR")).unwrap();
    assert_eq!(error["data"]["code"], "invalid_token", "{error}");
    assert!(error["message"].is_string());
    assert!(matches!(sio.recv().await, Got::Closed(Some(4001))));
    // No token at all.
    let mut sio = Sio::open(&hub, "").await;
    sio.send("40").await;
    assert!(sio.text().await.contains("missing_token"));
    assert!(matches!(sio.recv().await, Got::Closed(Some(4001))));
    // Something else than CONNECT first.
    let mut sio = Sio::open(&hub, "").await;
    sio.send(r#"42["join_user_room","x"]"#).await;
    assert!(sio.text().await.starts_with("44"));
    assert!(matches!(sio.recv().await, Got::Closed(Some(4001))));

    // Another namespace: CONNECT_ERROR for it; the default one still connects.
    let mut sio = Sio::open(&hub, "").await;
    sio.send(&format!(
        "40/admin,{}",
        json!({ "token": tree.player_token })
    ))
    .await;
    let refused = sio.text().await;
    assert!(refused.starts_with("44/admin,"), "{refused}");
    assert!(refused.contains("invalid_namespace"));
    sio.send(&format!("40{}", json!({ "token": tree.player_token })))
        .await;
    assert!(sio.text().await.starts_with("40{"));
    sio.joined().await;

    // Reach: a player cannot watch another user; an agent cannot watch another client's user.
    let (_, ack) = sio
        .call("join_user_room", json!({ "user_id": tree.agent_id }))
        .await;
    assert_eq!(ack["data"]["code"], "forbidden", "{ack}");
    let mut agent = Sio::connect(&hub, &tree.agent_token).await;
    agent.joined().await;
    let (_, ack) = agent
        .call("join_user_room", json!({ "user_id": other.player_id }))
        .await;
    assert_eq!(ack["data"]["code"], "forbidden", "{ack}");
    let (_, ack) = agent.call("join_user_room", json!({})).await;
    assert_eq!(ack["data"]["code"], "invalid_frame", "{ack}");
    let (_, ack) = agent.call("dance", json!({})).await;
    assert_eq!(ack["data"]["code"], "invalid_frame", "{ack}");
    // The admin may watch its client room and anyone in it.
    let mut admin = Sio::connect(&hub, &tree.admin_token).await;
    admin.joined().await;
    let (_, ack) = admin
        .call("join_user_room", json!({ "user_id": tree.player_id }))
        .await;
    assert_eq!(ack["type"], "subscribed", "{ack}");
    let (_, ack) = admin
        .call("join_client_room", json!({ "client_id": other.client_id }))
        .await;
    assert_eq!(ack["data"]["code"], "forbidden", "{ack}");

    // Bad token in the URL: 401 before the upgrade, as on /ws.
    assert_eq!(refused_upgrade(sio_url(&hub, "&token=nope")).await, 401);
    // Long-polling and other Engine.IO versions: 400 with the API's JSON error.
    for query in ["EIO=4&transport=polling", "EIO=3&transport=polling", ""] {
        let reply = hub
            .http
            .get(format!("{}/socket.io/?{query}", hub.base))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 400, "{query}");
        let body: Value = reply.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unsupported_transport", "{body}");
    }
    let old = format!(
        "{}/socket.io/?EIO=3&transport=websocket",
        hub.base.replacen("http", "ws", 1)
    );
    assert_eq!(refused_upgrade(old).await, 400);
    let metrics = metrics(&hub).await;
    let refused = |reason: &str| {
        metric_value(
            &metrics,
            &format!("socketio_connect_errors_total{{reason=\"{reason}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert!(refused("invalid_token") >= 2.0, "{metrics}");
    assert!(refused("invalid_namespace") >= 1.0);
    assert!(refused("bad_packet") >= 4.0);
}

async fn socketio_token_expiry_disconnects(backend: Backend) {
    let hub = TestHub::start_with(backend, |s| s.access_token_ttl_secs = 3).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let (_, token) = add_player(&api, &tree, "expiring").await;
    let mut sio = Sio::connect(&hub, &token).await;
    sio.joined().await;
    // The token runs out within 3 s: the reason, DISCONNECT, then close 4001.
    let frame = sio.event_named("error").await;
    assert_eq!(frame["data"]["code"], "invalid_token", "{frame}");
    assert_eq!(sio.text().await, "41");
    assert!(matches!(sio.recv().await, Got::Closed(Some(4001))));
}

async fn socketio_per_user_cap_is_a_connect_error(backend: Backend) {
    let hub = TestHub::start_with(backend, |s| s.ws_max_per_user = 1).await;
    let tree = Tree::create(&hub.api()).await;
    let mut first = Sio::connect(&hub, &tree.player_token).await;
    first.joined().await;
    // The cap counts /socket.io/ and /ws together; the token came in CONNECT: 4009.
    let mut second = Sio::open(&hub, "").await;
    second
        .send(&format!("40{}", json!({ "token": tree.player_token })))
        .await;
    let refused = second.text().await;
    assert!(
        refused.starts_with("44") && refused.contains("too_many_websockets"),
        "{refused}"
    );
    assert!(matches!(second.recv().await, Got::Closed(Some(4009))));
    // With the token in the URL, the upgrade itself is refused.
    let url = sio_url(&hub, &format!("&token={}", tree.player_token));
    assert_eq!(refused_upgrade(url).await, 429);
    let (_, pong) = first.call("ping", Value::Null).await;
    assert_eq!(pong["type"], "pong");
}
