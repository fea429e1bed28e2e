//! Game providers end to end: the hub moves money to and from JDB and LuckySports simulators
//! over real HTTP, with faults injected, and the books must balance afterwards: per player,
//! hub wallet + provider balance = what was deposited (plus game results), and
//! `nashub check-ledger` passes.

use std::time::Duration;

use nashub::config::{ProviderAccountSettings, Settings};
use nashub::providers::sim::{self, Faults, SimConfig, SimHandle, SimKind};
use nashub::providers::{crypto, provider_uid};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Api, Backend, Infra, TestHub, Tree, WsClient};

/// Simulator request windows; the hub's proof window is larger (window + skew). LuckySports
/// timestamps are whole seconds, so its window must leave room for the truncation.
const fn sim_window_ms(kind: SimKind) -> i64 {
    match kind {
        SimKind::Jdb => 1000,
        SimKind::LuckySports => 2000,
    }
}
const HUB_TIMEOUT_MS: u64 = 300;

pub(crate) struct Sims {
    pub(crate) jdb: SimHandle,
    pub(crate) ls: SimHandle,
}

pub(crate) fn start_sims() -> Sims {
    let config = |kind| SimConfig {
        window_ms: sim_window_ms(kind),
        // JDB history: rounds visible at once, one-second query windows (not 3 min / 1 min).
        history_delay_ms: 0,
        history_step_ms: 1000,
        operators: match kind {
            SimKind::Jdb => vec![("testdc".into(), String::new())],
            SimKind::LuckySports => vec![
                ("op_main".into(), "main-secret".into()),
                ("op_other".into(), "other-secret".into()),
            ],
        },
        ..sim::default_config(kind)
    };
    Sims {
        jdb: sim::spawn(SimKind::Jdb, config(SimKind::Jdb)).unwrap(),
        ls: sim::spawn(SimKind::LuckySports, config(SimKind::LuckySports)).unwrap(),
    }
}

pub(crate) fn accounts(sims: &Sims) -> Vec<ProviderAccountSettings> {
    let base = |kind, handle: &SimHandle| ProviderAccountSettings {
        timeout_ms: HUB_TIMEOUT_MS,
        request_window_ms: sim_window_ms(kind) + 500,
        breaker_failures: 5,
        breaker_open_ms: 800,
        ..sim::account_for(kind, &handle.state.config, &handle.base_url())
    };
    let jdb = base(SimKind::Jdb, &sims.jdb);
    let ls = base(SimKind::LuckySports, &sims.ls);
    // A second LuckySports operator account that serves no client of these tests.
    let other = ProviderAccountSettings {
        name: "ls-other".into(),
        operator: "op_other".into(),
        secret: "other-secret".into(),
        clients: vec!["nobody".into()],
        ..ls.clone()
    };
    vec![jdb, ls, other]
}

pub(crate) async fn start(backend: Backend, sims: &Sims) -> TestHub {
    let accounts = accounts(sims);
    let hub = TestHub::start_with(backend, move |s: &mut Settings| {
        s.providers = accounts;
        s.provider_reconcile_interval_ms = 200;
    })
    .await;
    sims.ls
        .set_callback_url(&format!("{}/callbacks/luckysports", hub.base));
    hub
}

fn path(user: &str, provider: &str, what: &str) -> String {
    format!("/api/v1/users/{user}/providers/{provider}/{what}")
}

pub(crate) async fn move_money(
    api: &Api,
    token: &str,
    user: &str,
    provider: &str,
    dir: &str,
    amount: &str,
) -> crate::helpers::Reply {
    let key = uuid::Uuid::new_v4().to_string();
    api.post_key(
        token,
        &path(user, provider, dir),
        &key,
        json!({ "amount": amount }),
    )
    .await
}

/// One integer from the hub's database, as an operator's query would read it.
pub(crate) async fn scalar(infra: &Infra, sql: &str) -> i64 {
    infra.query_one(sql).await
}

pub(crate) async fn account_balance(infra: &Infra, id: &str) -> i64 {
    scalar(
        infra,
        &format!("SELECT balance FROM accounts WHERE id = '{id}'"),
    )
    .await
}

pub(crate) async fn wait_until_resolved(infra: &Infra, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let open = scalar(
            infra,
            "SELECT COUNT(*) FROM provider_transfers WHERE state IN ('pending', 'unknown')",
        )
        .await;
        if open == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{open} transfers still open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fresh tree whose player got `deposit` and moved `amount` of it to `provider` (200).
pub(crate) async fn player_at_provider(
    api: &Api,
    deposit: &str,
    provider: &str,
    amount: &str,
) -> Tree {
    let tree = Tree::create(api).await;
    api.deposit(&tree.admin_token, &tree.player_id, deposit)
        .await;
    let moved = move_money(
        api,
        &tree.player_token,
        &tree.player_id,
        provider,
        "transfer-in",
        amount,
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    tree
}

pub(crate) fn cents(text: &str) -> i64 {
    nashub::providers::units::parse_decimal(text, 2).unwrap()
}

/// The embedded default: no provider configuration starts both simulators and enables both
/// providers for every client, so the whole flow works out of the box.
async fn providers_embedded_default_flow(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let mut ws = WsClient::connect(&hub.ws_url(&tree.player_token)).await;
    ws.next_of("subscribed").await;
    ws.next_of("subscribed").await;
    api.deposit(&tree.admin_token, &tree.player_id, "100").await;
    assert_eq!(
        ws.next_of("balance_update").await["data"]["balance"],
        "100.00"
    );

    for provider in ["jdb", "luckysports"] {
        let key = format!("in-{provider}");
        let p = path(&tree.player_id, provider, "transfer-in");
        let first = api
            .post_key(&tree.player_token, &p, &key, json!({ "amount": "30" }))
            .await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(first.body["state"], "succeeded");
        // The same key again: the first transfer, nothing moved twice.
        let again = api
            .post_key(&tree.player_token, &p, &key, json!({ "amount": "30" }))
            .await;
        assert_eq!(again.body["transfer_id"], first.body["transfer_id"]);
        assert_eq!(again.body["state"], "succeeded");
        let other = api
            .post_key(&tree.player_token, &p, &key, json!({ "amount": "31" }))
            .await;
        other.error(409, "idempotency_conflict");
        let balance = api
            .get(
                &tree.player_token,
                &path(&tree.player_id, provider, "balance"),
            )
            .await
            .ok();
        assert_eq!(balance["balance"], "30.00");
        assert_eq!(balance["currency"], "USD");
        assert_eq!(balance["provider"], provider);
        let out = move_money(
            &api,
            &tree.agent_token,
            &tree.player_id,
            provider,
            "transfer-out",
            "10.50",
        )
        .await;
        assert_eq!(out.status, 200, "{}", out.body);
        let too_much = move_money(
            &api,
            &tree.player_token,
            &tree.player_id,
            provider,
            "transfer-out",
            "100",
        )
        .await;
        too_much.error(409, "insufficient_funds");
        // Replayed with its key: the same answer, and still nothing moved.
        let key = format!("too-much-{provider}");
        let out = path(&tree.player_id, provider, "transfer-out");
        for _ in 0..2 {
            api.post_key(&tree.player_token, &out, &key, json!({ "amount": "100" }))
                .await
                .error(409, "insufficient_funds");
        }
    }
    assert_eq!(
        api.balance(&tree.player_token, &tree.player_id).await,
        "61.00"
    );
    let update = ws.next_of("balance_update").await;
    assert_eq!(update["data"]["balance"], "70.00");

    move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "jdb",
        "transfer-in",
        "500",
    )
    .await
    .error(409, "insufficient_funds");
    move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "nosuch",
        "transfer-in",
        "1",
    )
    .await
    .error(404, "not_found");
    move_money(
        &api,
        &tree.super_token,
        &tree.player_id,
        "jdb",
        "transfer-in",
        "1",
    )
    .await
    .error(403, "forbidden");
    move_money(
        &api,
        &tree.player_token,
        &tree.agent_id,
        "jdb",
        "transfer-in",
        "1",
    )
    .await
    .error(403, "forbidden");

    let games = api
        .get(&tree.player_token, "/api/v1/providers/jdb/games")
        .await
        .ok();
    let code = games["games"][0]["code"].as_str().unwrap().to_owned();
    let launched = api
        .post(
            &tree.player_token,
            &path(&tree.player_id, "jdb", "launch"),
            json!({ "game": code }),
        )
        .await
        .ok();
    assert!(
        launched["url"].as_str().unwrap().starts_with("http://"),
        "{launched}"
    );
    let metrics = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The recorder is process-wide: other tests may have started sessions too.
    // Labelled as design section 8 names them: this client's session of a JDB game.
    let game_type = nashub::metrics::game_type("jdb", &code);
    let series = format!(
        r#"game_sessions_total{{client_id="{}",game_type="{game_type}"}}"#,
        tree.client_id
    );
    assert_eq!(
        crate::helpers::metric_value(&metrics, &series),
        Some(1.0),
        "{metrics}"
    );
    assert!(metrics.contains("provider_transfers_total"));
    assert!(metrics.contains("provider_breaker_state"));
    hub.infra.assert_ledger_ok();
}

/// Several hundred transfers through simulators failing at random in every way they can; once
/// the reconciler has finished, every player's hub wallet plus provider balance is exactly what
/// was deposited.
async fn providers_random_faults_conserve_money(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let mut players = vec![(tree.player_id.clone(), tree.player_token.clone())];
    for i in 0..2 {
        let name = format!("fplayer{i}");
        let id = api
            .post(&tree.agent_token, "/api/v1/users", json!({ "parent_id": tree.agent_id, "role": "player", "username": name, "password": crate::helpers::PASSWORD }))
            .await
            .ok()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = api.token(Some(&tree.code), &name).await;
        players.push((id, token));
    }
    for (id, _) in &players {
        api.deposit(&tree.admin_token, id, "1000").await;
    }
    // Register every player at both providers before the faults start.
    for (id, token) in &players {
        for provider in ["jdb", "luckysports"] {
            api.get(token, &path(id, provider, "balance")).await.ok();
        }
    }
    let faults = Faults {
        slow_rate: 0.1,
        slow_ms: 450,
        drop_before_rate: 0.07,
        drop_after_rate: 0.07,
        drop_ms: 700,
        in_progress_rate: 0.07,
        in_progress_ms: 500,
        error_5xx_rate: 0.05,
        maintenance_rate: 0.05,
        stale_clock_rate: 0.03,
        ..Faults::default()
    };
    sims.jdb.set_faults(faults.clone());
    sims.ls.set_faults(faults);

    let mut tasks = Vec::new();
    for (id, token) in players.clone() {
        for provider in ["jdb", "luckysports"] {
            let (api, id, token) = (api.clone(), id.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let mut counts = std::collections::BTreeMap::<String, u32>::new();
                for i in 0..40 {
                    let dir = if i % 3 == 2 {
                        "transfer-out"
                    } else {
                        "transfer-in"
                    };
                    let amount = format!(
                        "{}.{:02}",
                        1 + rand::random::<u32>() % 20,
                        rand::random::<u32>() % 100
                    );
                    let reply = move_money(&api, &token, &id, provider, dir, &amount).await;
                    let outcome = match reply.status {
                        200 | 202 => reply.body["state"].as_str().unwrap().to_owned(),
                        409 | 502 | 503 => reply.body["error"]["code"].as_str().unwrap().to_owned(),
                        other => panic!("unexpected {other} {}", reply.body),
                    };
                    *counts.entry(outcome).or_default() += 1;
                }
                counts
            }));
        }
    }
    let mut totals = std::collections::BTreeMap::<String, u32>::new();
    for t in tasks {
        for (k, v) in t.await.unwrap() {
            *totals.entry(k).or_default() += v;
        }
    }
    eprintln!(
        "outcomes of {} transfers: {totals:?}",
        40 * 2 * players.len()
    );
    assert!(
        totals.get("succeeded").copied().unwrap_or(0) > 50,
        "{totals:?}"
    );
    sims.jdb.set_faults(Faults::default());
    sims.ls.set_faults(Faults::default());
    wait_until_resolved(&hub.infra, Duration::from_secs(30)).await;

    for (id, token) in &players {
        let wallet = cents(&api.balance(token, id).await);
        let at_jdb = sims.jdb.balance_minor(&provider_uid(id), 2).unwrap();
        let at_ls = sims.ls.balance_minor(&provider_uid(id), 2).unwrap();
        assert_eq!(
            wallet + at_jdb + at_ls,
            100_000,
            "player {id}: {wallet} + {at_jdb} + {at_ls}"
        );
    }
    let client = &tree.client_id;
    assert_eq!(
        account_balance(&hub.infra, &format!("h:{client}:in_flight")).await,
        0
    );
    assert_eq!(
        account_balance(&hub.infra, &format!("h:{client}:held_at_provider:jdb")).await,
        sims.jdb.total_minor(2).unwrap()
    );
    assert_eq!(
        account_balance(
            &hub.infra,
            &format!("h:{client}:held_at_provider:luckysports")
        )
        .await,
        sims.ls.total_minor(2).unwrap()
    );
    hub.infra.assert_ledger_ok();
}

pub(crate) async fn place_bet(
    sims: &Sims,
    member: &str,
    stake: i64,
    payout: i64,
    resettle: Option<i64>,
) -> Value {
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/sim/bet", sims.ls.base_url()))
        .json(&json!({ "member_id": member, "stake": stake, "payout": payout, "resettle_payout": resettle }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    res.json().await.unwrap()
}

/// Bet settlements delivered twice and out of order move the house exactly once per bet, to
/// the bet's final result, and reach the player's room as `game_update`.
async fn providers_callbacks_apply_once(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = player_at_provider(&api, "100", "luckysports", "50").await;
    let mut ws = WsClient::connect(&hub.ws_url(&tree.player_token)).await;
    ws.next_of("subscribed").await;
    ws.next_of("subscribed").await;

    sims.ls.set_faults(Faults {
        callback_duplicate_rate: 1.0,
        callback_out_of_order_rate: 0.5,
        ..Faults::default()
    });
    let member = provider_uid(&tree.player_id);
    let mut expected = 5000;
    for i in 0..12_i64 {
        let (stake, payout) = (100 + i * 10, if i % 3 == 0 { 0 } else { 250 + i });
        let resettle = (i % 4 == 1).then_some(stake);
        let placed = place_bet(&sims, &member, stake, payout, resettle).await;
        let versions = if resettle.is_some() { 3 } else { 2 };
        assert_eq!(placed["delivered"], versions * 2, "{placed}");
        expected += resettle.unwrap_or(payout) - stake;
    }
    assert_eq!(sims.ls.balance_minor(&member, 2), Some(expected));
    let held = format!("h:{}:held_at_provider:luckysports", tree.client_id);
    let results = format!("h:{}:game_results:luckysports", tree.client_id);
    assert_eq!(account_balance(&hub.infra, &held).await, expected);
    assert_eq!(account_balance(&hub.infra, &results).await, 5000 - expected);
    let update = ws.next_of("game_update").await;
    assert_eq!(update["data"]["provider"], "luckysports");
    assert_eq!(update["room"], format!("user:{}", tree.player_id));

    // Everything back to the wallet: hub and provider agree to the cent.
    let all = nashub::domain::format_minor(expected, 2);
    let out = move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "luckysports",
        "transfer-out",
        &all,
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(
        cents(&api.balance(&tree.player_token, &tree.player_id).await),
        5000 + expected
    );
    assert_eq!(account_balance(&hub.infra, &held).await, 0);
    hub.infra.assert_ledger_ok();
}

pub(crate) fn signed(
    operator: &str,
    secret: &str,
    ts: i64,
    body: &str,
) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("Content-Type", "application/json".parse().unwrap());
    h.insert("X-Operator", operator.parse().unwrap());
    h.insert("X-Timestamp", ts.to_string().parse().unwrap());
    let sig = crypto::luckysports_signature(secret.as_bytes(), &ts.to_string(), body.as_bytes());
    h.insert("X-Signature", sig.parse().unwrap());
    h
}

/// Forged, stale and foreign callbacks are refused and move nothing.
async fn providers_bad_callbacks_refused(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.player_id, "10").await;
    move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "luckysports",
        "transfer-in",
        "10",
    )
    .await
    .ok();
    let body = json!({ "event": "bet_settled", "bet": {
        "bet_id": "forged1", "member_id": provider_uid(&tree.player_id), "stake": 100, "payout": 100000,
        "status": "won", "placed_at": "", "settled_at": "", "version": 1 } })
    .to_string();
    let url = format!("{}/callbacks/luckysports", hub.base);
    let now = chrono::Utc::now().timestamp();
    let send = |headers: reqwest::header::HeaderMap| {
        let req = api.http.post(&url).headers(headers).body(body.clone());
        api.send(req)
    };
    send(signed("op_main", "wrong-secret", now, &body))
        .await
        .error(401, "invalid_signature");
    send(signed("op_main", "main-secret", now - 600, &body))
        .await
        .error(401, "stale_timestamp");
    send(signed("op_nobody", "main-secret", now, &body))
        .await
        .error(401, "unauthenticated");
    send(signed("op_other", "other-secret", now, &body))
        .await
        .error(403, "forbidden");
    let mut unsigned = signed("op_main", "main-secret", now, &body);
    unsigned.remove("X-Signature");
    send(unsigned).await.error(401, "unauthenticated");
    // The genuine one applies, once.
    let ok = send(signed("op_main", "main-secret", now, &body))
        .await
        .ok();
    assert_eq!(ok["applied"], true);
    let again = send(signed("op_main", "main-secret", now, &body))
        .await
        .ok();
    assert_eq!(again["applied"], false);
    let held = format!("h:{}:held_at_provider:luckysports", tree.client_id);
    assert_eq!(account_balance(&hub.infra, &held).await, 1000 + 99_900);
    hub.infra.assert_ledger_ok();
}

/// A provider that stops answering: transfers go `unknown` with the money on hold, the breaker
/// opens (503 at once, the hub stays responsive), and when the provider is back the reconciler
/// finishes every transfer and new ones succeed.
async fn providers_breaker_opens_and_recovers(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.player_id, "100").await;
    move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "jdb",
        "transfer-in",
        "10",
    )
    .await
    .ok();

    sims.jdb.set_faults(Faults {
        down: true,
        ..Faults::default()
    });
    let mut unavailable = 0;
    let mut held = 0;
    for _ in 0..6 {
        let reply = move_money(
            &api,
            &tree.player_token,
            &tree.player_id,
            "jdb",
            "transfer-in",
            "5",
        )
        .await;
        match reply.status {
            202 => {
                assert_eq!(reply.body["state"], "unknown", "{}", reply.body);
                held += 1;
            }
            503 => {
                reply.error(503, "provider_unavailable");
                unavailable += 1;
            }
            other => panic!("unexpected {other} {}", reply.body),
        }
    }
    assert!(
        held >= 1 && unavailable >= 1,
        "held {held}, unavailable {unavailable}"
    );
    let started = std::time::Instant::now();
    assert_eq!(
        api.balance(&tree.player_token, &tree.player_id).await,
        format!("{}.00", 90 - 5 * held)
    );
    move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "jdb",
        "transfer-in",
        "5",
    )
    .await
    .error(503, "provider_unavailable");
    assert!(
        started.elapsed() < Duration::from_millis(HUB_TIMEOUT_MS),
        "the hub answers at once"
    );
    // The other provider is unaffected.
    assert_eq!(
        move_money(
            &api,
            &tree.player_token,
            &tree.player_id,
            "luckysports",
            "transfer-in",
            "1"
        )
        .await
        .status,
        200
    );

    sims.jdb.set_faults(Faults::default());
    wait_until_resolved(&hub.infra, Duration::from_secs(20)).await;
    // The down simulator applied nothing: every held transfer failed and its money came back.
    assert_eq!(
        api.balance(&tree.player_token, &tree.player_id).await,
        "89.00"
    );
    let reply = move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "jdb",
        "transfer-in",
        "5",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let transfer_id = reply.body["transfer_id"].as_str().unwrap();
    let status = api
        .get(
            &tree.player_token,
            &path(&tree.player_id, "jdb", &format!("transfers/{transfer_id}")),
        )
        .await
        .ok();
    assert_eq!(status["state"], "succeeded");
    assert_eq!(
        sims.jdb.balance_minor(&provider_uid(&tree.player_id), 2),
        Some(1500)
    );
    // Every transfer left unknown, and every failure, is in the audit chain, which verifies.
    let audited = scalar(
        &hub.infra,
        "SELECT COUNT(*) FROM audit_log WHERE action IN ('provider.transfer_unknown', 'provider.transfer_failed')",
    )
    .await;
    assert_eq!(
        audited,
        2 * held,
        "unknown then failed, for each held transfer"
    );
    hub.infra.assert_audit_ok();
    hub.infra.assert_ledger_ok();
}

/// Callbacks that never arrive: the hub finds every bet by pulling the provider's records.
async fn providers_lost_callbacks_recovered_by_pull(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = player_at_provider(&api, "100", "luckysports", "40").await;
    sims.ls.set_faults(Faults {
        callback_drop_rate: 0.7,
        ..Faults::default()
    });
    let member = provider_uid(&tree.player_id);
    for i in 0..10_i64 {
        place_bet(
            &sims,
            &member,
            100 + i,
            if i % 2 == 0 { 0 } else { 300 },
            (i == 3).then_some(50),
        )
        .await;
    }
    let expected = sims.ls.balance_minor(&member, 2).unwrap();
    let held = format!("h:{}:held_at_provider:luckysports", tree.client_id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while account_balance(&hub.infra, &held).await != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "pull never caught up: hub {} provider {expected}",
            account_balance(&hub.infra, &held).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rounds = scalar(&hub.infra, "SELECT COUNT(*) FROM game_rounds").await;
    assert_eq!(rounds, 10);
    hub.infra.assert_ledger_ok();
}

/// A JDB withdrawal while the player is in a game is refused with nothing moved (6901); the
/// hub takes the player out of the game, and the next withdrawal goes through.
async fn providers_withdrawal_while_in_game(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.player_id, "50").await;
    sims.jdb.set_faults(Faults {
        in_game_after_launch_ms: 60_000,
        ..Faults::default()
    });
    let moved = move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "jdb",
        "transfer-in",
        "20",
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    api.post(
        &tree.player_token,
        &path(&tree.player_id, "jdb", "launch"),
        json!({ "game": "0-8001" }),
    )
    .await
    .ok();
    move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "jdb",
        "transfer-out",
        "5",
    )
    .await
    .error(409, "player_in_game");
    assert_eq!(
        api.balance(&tree.player_token, &tree.player_id).await,
        "30.00"
    );
    assert_eq!(
        sims.jdb.balance_minor(&provider_uid(&tree.player_id), 2),
        Some(2000)
    );
    let out = move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "jdb",
        "transfer-out",
        "5",
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(
        api.balance(&tree.player_token, &tree.player_id).await,
        "35.00"
    );
    hub.infra.assert_ledger_ok();
}

async fn put(api: &Api, token: &str, path: &str, body: Value) -> crate::helpers::Reply {
    let req = api
        .http
        .put(format!("{}{path}", api.base))
        .bearer_auth(token)
        .json(&body);
    api.send(req).await
}

/// A client's admin switches a game, then the whole provider, off and on again: a switched-off
/// provider takes no new money and launches nothing, but players' money there can come back.
async fn providers_switched_off_per_client(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = player_at_provider(&api, "50", "jdb", "20").await;
    let base = format!("/api/v1/clients/{}/providers/jdb", tree.client_id);

    put(
        &api,
        &tree.agent_token,
        &format!("{base}/games/0-8001"),
        json!({ "enabled": false }),
    )
    .await
    .error(403, "forbidden");
    put(
        &api,
        &tree.admin_token,
        &format!("{base}/games/0-8001"),
        json!({ "enabled": false }),
    )
    .await
    .ok();
    let games = api
        .get(&tree.player_token, "/api/v1/providers/jdb/games")
        .await
        .ok();
    let codes: Vec<&str> = games["games"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["code"].as_str().unwrap())
        .collect();
    assert!(
        !codes.contains(&"0-8001") && codes.contains(&"0-8003"),
        "{codes:?}"
    );
    let launch = path(&tree.player_id, "jdb", "launch");
    api.post(&tree.player_token, &launch, json!({ "game": "0-8001" }))
        .await
        .error(403, "game_disabled");
    api.post(&tree.player_token, &launch, json!({ "game": "0-8003" }))
        .await
        .ok();

    put(&api, &tree.admin_token, &base, json!({ "enabled": false }))
        .await
        .ok();
    move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "jdb",
        "transfer-in",
        "5",
    )
    .await
    .error(403, "provider_disabled");
    api.get(&tree.player_token, "/api/v1/providers/jdb/games")
        .await
        .error(403, "provider_disabled");
    let out = move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "jdb",
        "transfer-out",
        "5",
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);
    // Other clients are not affected.
    let luckysports = move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "luckysports",
        "transfer-in",
        "1",
    )
    .await;
    assert_eq!(luckysports.status, 200, "{}", luckysports.body);

    put(&api, &tree.admin_token, &base, json!({ "enabled": true }))
        .await
        .ok();
    let back = move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "jdb",
        "transfer-in",
        "5",
    )
    .await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(
        api.balance(&tree.player_token, &tree.player_id).await,
        "29.00"
    );
    hub.infra.assert_ledger_ok();
}

/// The JDB simulator speaks the transport of JDB.md: `dc`/`x` as JSON, form fields or query
/// parameters, `=` padding or none, and the documented refusals.
#[tokio::test]
async fn providers_jdb_sim_transport() {
    let jdb = sim::spawn(SimKind::Jdb, sim::default_config(SimKind::Jdb)).unwrap();
    let cfg = jdb.state.config.clone();
    let (key, iv) = (
        crypto::key16(&cfg.key).unwrap(),
        crypto::key16(&cfg.iv).unwrap(),
    );
    let x = |payload: Value| crypto::jdb_encrypt(&key, &iv, payload.to_string().as_bytes());
    let dc = cfg.operators[0].0.clone();
    let url = format!("{}/apiRequest.do", jdb.base_url());
    let http = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp_millis();
    let status = |res: reqwest::Response| async move {
        let body: Value = res.json().await.unwrap();
        body["status"].as_str().unwrap().to_owned()
    };
    let create =
        json!({ "action": 12, "ts": now, "parent": cfg.parent, "uid": "abc_1", "name": "abc" });
    let res = http
        .post(&url)
        .json(&json!({ "dc": dc, "x": x(create.clone()) }))
        .send()
        .await
        .unwrap();
    assert_eq!(status(res).await, "0000");
    let form = format!("dc={dc}&x={}==", x(create));
    let res = http
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(status(res).await, "7602", "an existing uid");
    let info = json!({ "action": 15, "ts": now, "parent": cfg.parent, "uid": "abc_1" });
    let res = http
        .post(format!("{url}?dc={dc}&x={}", x(info)))
        .send()
        .await
        .unwrap();
    assert_eq!(status(res).await, "0000");
    let res = http
        .post(&url)
        .json(&json!({ "dc": "nosuch", "x": "AAAA" }))
        .send()
        .await
        .unwrap();
    assert_eq!(status(res).await, "9003");
    let res = http
        .post(&url)
        .json(&json!({ "dc": dc, "x": "not-a-cipher" }))
        .send()
        .await
        .unwrap();
    assert_eq!(status(res).await, "9006");
    let old = json!({ "action": 15, "ts": now - 60_000, "parent": cfg.parent, "uid": "abc_1" });
    let res = http
        .post(&url)
        .json(&json!({ "dc": dc, "x": x(old) }))
        .send()
        .await
        .unwrap();
    assert_eq!(status(res).await, "9005");
}

/// JDB game results come from its history (action 29): every round played is pulled once, moves
/// the house between `held_at_provider` and `game_results`, and ends the player's session.
async fn providers_jdb_rounds_pulled(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = player_at_provider(&api, "100", "jdb", "50").await;
    api.post(
        &tree.player_token,
        &path(&tree.player_id, "jdb", "launch"),
        json!({ "game": "0-8001" }),
    )
    .await
    .ok();
    let uid = provider_uid(&tree.player_id);
    let http = reqwest::Client::new();
    for i in 0..6_i64 {
        let res = http
            .post(format!("{}/sim/play", sims.jdb.base_url()))
            .json(&json!({ "uid": uid, "bet": 100 + i, "win": if i % 2 == 0 { 0 } else { 350 } }))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
    }
    let expected = sims.jdb.balance_minor(&uid, 2).unwrap();
    assert_ne!(expected, 5000);
    let held = format!("h:{}:held_at_provider:jdb", tree.client_id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while account_balance(&hub.infra, &held).await != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "JDB rounds never pulled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let results = format!("h:{}:game_results:jdb", tree.client_id);
    assert_eq!(account_balance(&hub.infra, &results).await, 5000 - expected);
    assert_eq!(
        scalar(
            &hub.infra,
            "SELECT COUNT(*) FROM game_rounds WHERE provider = 'jdb'"
        )
        .await,
        6
    );
    assert_eq!(
        scalar(
            &hub.infra,
            "SELECT COUNT(*) FROM game_sessions WHERE state = 'open'"
        )
        .await,
        0
    );
    let all = nashub::domain::format_minor(expected, 2);
    let out = move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "jdb",
        "transfer-out",
        &all,
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(account_balance(&hub.infra, &held).await, 0);
    hub.infra.assert_ledger_ok();
}

/// A provider that forgets a player the hub registered (JDB 7501, LuckySports MEMBER_NOT_FOUND,
/// e.g. a provider whose records were reset) is recovered: the hub registers the player again
/// although its cache and `provider_players` say they exist, and resends the SAME serial once.
/// The money moves exactly once: one provider transfer per intent, one hold and one settle.
async fn providers_forgotten_player_recovered(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.player_id, "100").await;
    let uid = provider_uid(&tree.player_id);
    for (provider, sim) in [("jdb", &sims.jdb), ("luckysports", &sims.ls)] {
        // Registered (cached on this node, recorded in provider_players), then forgotten.
        let first = move_money(
            &api,
            &tree.player_token,
            &tree.player_id,
            provider,
            "transfer-in",
            "30",
        )
        .await;
        assert_eq!(first.status, 200, "{}", first.body);
        let back = move_money(
            &api,
            &tree.player_token,
            &tree.player_id,
            provider,
            "transfer-out",
            "30",
        )
        .await;
        assert_eq!(back.status, 200, "{}", back.body);
        assert!(sim.forget(&uid));

        let moved = move_money(
            &api,
            &tree.player_token,
            &tree.player_id,
            provider,
            "transfer-in",
            "25",
        )
        .await;
        assert_eq!(moved.status, 200, "{provider}: {}", moved.body);
        assert_eq!(moved.body["state"], "succeeded");
        let id = moved.body["transfer_id"].as_str().unwrap().to_owned();
        assert_eq!(sim.balance_minor(&uid, 2), Some(2500));
        // The provider applied the transfer's one serial once; the hub posted hold + settle.
        let serial: String = hub
            .infra
            .query_one(&format!(
                "SELECT serial FROM provider_transfers WHERE id = '{id}'"
            ))
            .await;
        {
            let at_sim = {
                let book = sim.state.book.lock().unwrap();
                assert!(book.transfers.contains_key(&serial));
                book.transfers.values().filter(|t| t.uid == uid).count() as i64
            };
            let at_hub = scalar(
                &hub.infra,
                &format!(
                    "SELECT COUNT(*) FROM provider_transfers WHERE user_id = '{}' AND provider = '{provider}' AND state = 'succeeded'",
                    tree.player_id
                ),
            )
            .await;
            assert_eq!(
                at_sim, at_hub,
                "{provider}: one provider transfer per intent"
            );
        }
        let entries = scalar(
            &hub.infra,
            &format!("SELECT COUNT(*) FROM journal WHERE idempotency_key LIKE 'pt:{id}:%'"),
        )
        .await;
        assert_eq!(entries, 2, "{provider}: hold and settle, once each");

        // Balance and launch recover the same way (here with nothing at the provider).
        let out = move_money(
            &api,
            &tree.player_token,
            &tree.player_id,
            provider,
            "transfer-out",
            "25",
        )
        .await;
        assert_eq!(out.status, 200, "{}", out.body);
        assert!(sim.forget(&uid));
        let balance = api
            .get(
                &tree.player_token,
                &path(&tree.player_id, provider, "balance"),
            )
            .await;
        assert_eq!(balance.status, 200, "{provider}: {}", balance.body);
        assert_eq!(balance.body["balance"], "0.00");
        assert!(sim.forget(&uid));
        let game = if provider == "jdb" {
            "0-8001"
        } else {
            "sportsbook"
        };
        let launched = api
            .post(
                &tree.player_token,
                &path(&tree.player_id, provider, "launch"),
                json!({ "game": game }),
            )
            .await;
        assert_eq!(launched.status, 200, "{provider}: {}", launched.body);
    }
    // Wallet plus what the providers hold is what was deposited.
    let wallet = cents(&api.balance(&tree.player_token, &tree.player_id).await);
    let held = sims.jdb.balance_minor(&uid, 2).unwrap() + sims.ls.balance_minor(&uid, 2).unwrap();
    assert_eq!(wallet + held, 10_000);
    let metrics = reqwest::get(format!("{}/metrics", hub.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for provider in ["jdb", "luckysports"] {
        let series = format!(
            "provider_failures_total{{provider=\"{provider}\",outcome=\"unknown_player\"}}"
        );
        assert!(
            crate::helpers::metric_value(&metrics, &series).is_some_and(|n| n >= 3.0),
            "{series}"
        );
    }
    hub.infra.assert_ledger_ok();
}

backend_tests!(
    providers_forgotten_player_recovered,
    providers_embedded_default_flow,
    providers_random_faults_conserve_money,
    providers_callbacks_apply_once,
    providers_bad_callbacks_refused,
    providers_breaker_opens_and_recovers,
    providers_lost_callbacks_recovered_by_pull,
    providers_withdrawal_while_in_game,
    providers_switched_off_per_client,
    providers_jdb_rounds_pulled,
);
