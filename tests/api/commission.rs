//! Issue 21: differential commission up a 4-level agent tree against a hand-computed table,
//! agents' rates within their upline's, negative carry-over across two periods, a commission
//! line's statuses (illegal steps 409), revenue collections replayed by key, what a game
//! session earns each agent, scheduled settlement done once by two nodes on one database, and
//! commission on turnover (stakes from both simulators, a resettled bet counted once).

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Api, Backend, HubProcess, Infra, Tree};
use crate::providers::{Sims, account_balance, cents, move_money, place_bet, scalar, start_sims};
use crate::settlements::{now_text, play, settle, start};
use crate::users_admin::create;

async fn set_rate(api: &Api, token: &str, user: &str, rate: &str) -> crate::helpers::Reply {
    api.put(
        token,
        &format!("/api/v1/users/{user}/commission"),
        json!({ "rate": rate }),
    )
    .await
}

fn line<'a>(settlement: &'a Value, agent: &str) -> &'a Value {
    settlement["commissions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["agent_id"] == agent)
        .unwrap_or_else(|| panic!("no line for {agent}: {settlement}"))
}

/// admin ─ A1 (0.40) ─ A2 (0.30) ─ A3 (0.25) ─ A4 (0.10) ─ P (loses 10.00)
///                      └ Q (loses 4.00, directly under A2)
///
/// | agent | from P (basis 10.00)     | from Q (basis 4.00)  | total | players | basis |
/// |-------|--------------------------|----------------------|-------|---------|-------|
/// | A4    | 0.10 × 10.00 = 1.00      | –                    | 1.00  | 1       | 10.00 |
/// | A3    | (0.25−0.10) × 10 = 1.50  | –                    | 1.50  | 1       | 10.00 |
/// | A2    | (0.30−0.25) × 10 = 0.50  | 0.30 × 4.00 = 1.20   | 1.70  | 2       | 14.00 |
/// | A1    | (0.40−0.30) × 10 = 1.00  | (0.40−0.30) × 4 = 0.40 | 1.40 | 2      | 14.00 |
/// Sum 5.60 = 0.40 × 14.00 (the top rate × basis). Revenue share 10% × (14.00 − 5.60) = 0.84.
async fn commission_differential_four_levels(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.patch(
        &tree.super_token,
        &format!("/api/v1/clients/{}/settings", tree.client_id),
        json!({ "commission_rate": "0.5", "revenue_share_rate": "0.1" }),
    )
    .await
    .ok();
    let a1 = create(&api, &tree.admin_token, &tree.admin_id, "agent", "ag_a1").await;
    let a1_token = api.token(Some(&tree.code), "ag_a1").await;
    let a2 = create(&api, &a1_token, &a1, "agent", "ag_a2").await;
    let a2_token = api.token(Some(&tree.code), "ag_a2").await;
    let a3 = create(&api, &a2_token, &a2, "agent", "ag_a3").await;
    let a3_token = api.token(Some(&tree.code), "ag_a3").await;
    let a4 = create(&api, &a3_token, &a3, "agent", "ag_a4").await;
    let p = create(&api, &a3_token, &a4, "player", "player_p").await;
    let q = create(&api, &a2_token, &a2, "player", "player_q").await;

    // Rates: within the client's and the parent's; set by the parent or an admin only.
    set_rate(&api, &tree.admin_token, &a1, "0.6")
        .await
        .error(422, "validation_error");
    assert_eq!(
        set_rate(&api, &tree.admin_token, &a1, "0.40").await.ok()["effective_rate"],
        "0.4000"
    );
    set_rate(&api, &a1_token, &a2, "0.30").await.ok();
    set_rate(&api, &a2_token, &a3, "0.35")
        .await
        .error(422, "validation_error");
    set_rate(&api, &a2_token, &a3, "0.25").await.ok();
    set_rate(&api, &a3_token, &a3, "0.25")
        .await
        .error(403, "forbidden");
    set_rate(&api, &a1_token, &a4, "0.10")
        .await
        .error(403, "forbidden");
    set_rate(&api, &tree.admin_token, &p, "0.10")
        .await
        .error(422, "validation_error");
    set_rate(&api, &a3_token, &a4, "0.10").await.ok();
    let other = Tree::create(&api).await;
    set_rate(&api, &other.admin_token, &a4, "0.05")
        .await
        .error(404, "not_found");
    let shown = api
        .get(&a1_token, &format!("/api/v1/users/{a4}/commission"))
        .await
        .ok();
    assert_eq!(
        (shown["rate"].as_str(), shown["effective_rate"].as_str()),
        (Some("0.1000"), Some("0.1000"))
    );

    let start_at = now_text(-60_000);
    let p_token = api.token(Some(&tree.code), "player_p").await;
    let q_token = api.token(Some(&tree.code), "player_q").await;
    // P plays one round in a launched game session (the session ends with the round).
    let games = api
        .get(&p_token, "/api/v1/providers/luckysports/games")
        .await
        .ok();
    let game = games["games"][0]["code"].as_str().unwrap().to_owned();
    let launched = api
        .post(
            &p_token,
            &format!("/api/v1/users/{p}/providers/luckysports/launch"),
            json!({ "game": game }),
        )
        .await
        .ok();
    let session = launched["session_id"].as_str().unwrap().to_owned();
    let session_path = format!("/api/v1/game-sessions/{session}/commission");
    api.get(&tree.admin_token, &session_path)
        .await
        .error(409, "session_open");
    play(&api, &sims, &tree.admin_token, &p, &p_token, 1000, 0).await;
    play(&api, &sims, &tree.admin_token, &q, &q_token, 400, 0).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    let by_session = api.get(&a1_token, &session_path).await.ok();
    assert_eq!(by_session["basis_amount"], "10.00", "{by_session}");
    let amounts: Vec<(&str, &str)> = by_session["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["agent_id"].as_str().unwrap(),
                i["amount"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        amounts,
        vec![
            (a4.as_str(), "1.00"),
            (a3.as_str(), "1.50"),
            (a2.as_str(), "0.50"),
            (a1.as_str(), "1.00")
        ]
    );
    api.get(&other.admin_token, &session_path)
        .await
        .error(404, "not_found");

    // The open period, before settling.
    let current = api
        .get(&a1_token, &format!("/api/v1/users/{a1}/commission/current"))
        .await
        .ok();
    assert_eq!(current["amount"], "1.40", "{current}");
    api.get(&a2_token, &format!("/api/v1/users/{a1}/commission/current"))
        .await
        .error(403, "forbidden");

    let end = now_text(0);
    let s = settle(
        &api,
        &tree.super_token,
        &tree.client_id,
        "four",
        &start_at,
        &end,
    )
    .await
    .ok();
    // agent, amount, players, basis, rate
    let table = [
        (&a4, "1.00", 1, "10.00", "0.1000"),
        (&a3, "1.50", 1, "10.00", "0.2500"),
        (&a2, "1.70", 2, "14.00", "0.3000"),
        (&a1, "1.40", 2, "14.00", "0.4000"),
    ];
    for (agent, amount, players, basis, rate) in table {
        let l = line(&s, agent);
        assert_eq!(l["amount"], amount, "{l}");
        assert_eq!(l["players"], players, "{l}");
        assert_eq!(l["ngr"], basis, "{l}");
        assert_eq!(l["rate"], rate, "{l}");
        assert_eq!(l["status"], "paid", "{l}");
        assert_eq!(
            cents(&api.balance(&tree.admin_token, agent).await),
            cents(amount)
        );
    }
    assert_eq!(s["commission_total"], "5.60");
    assert_eq!(s["ngr"], "14.00");
    assert_eq!(s["revenue_share"]["amount"], "0.84");
    hub.infra.assert_ledger_ok();
}

/// Carry-over across two periods, the statuses of a line (illegal steps 409), and the
/// platform's revenue collection replayed by key.
async fn commission_carry_over_statuses_and_collections(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let settings = format!("/api/v1/clients/{}/settings", tree.client_id);
    api.patch(
        &tree.super_token,
        &settings,
        json!({ "timezone": "Mars/Olympus" }),
    )
    .await
    .error(422, "validation_error");
    api.patch(
        &tree.super_token,
        &settings,
        json!({ "settlement_schedule": "hourly" }),
    )
    .await
    .error(422, "validation_error");
    let patched = api
        .patch(
            &tree.super_token,
            &settings,
            json!({ "commission_rate": "0.1", "revenue_share_rate": "0.2", "commission_negative_carryover": true }),
        )
        .await
        .ok();
    assert_eq!(patched["commission_negative_carryover"], true);
    assert_eq!(patched["commission_basis"], "ngr");
    let path = format!("/api/v1/clients/{}/settlements", tree.client_id);
    let unpaid = |key: &'static str, start: String, end: String| {
        let (api, token) = (api.clone(), tree.super_token.clone());
        let path = path.clone();
        async move {
            api.post_key(
                &token,
                &path,
                key,
                json!({ "period_start": start, "period_end": end, "pay": false }),
            )
            .await
            .ok()
        }
    };

    // Period 1: the player wins 5.00: the agent's -0.50 is carried.
    let start1 = now_text(-60_000);
    play(
        &api,
        &sims,
        &tree.admin_token,
        &tree.player_id,
        &tree.player_token,
        100,
        600,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let end1 = now_text(0);
    let s1 = unpaid("p1", start1, end1.clone()).await;
    let l1 = line(&s1, &tree.agent_id);
    assert_eq!(
        (
            &l1["earned"],
            &l1["amount"],
            &l1["carry_out"],
            &l1["status"]
        ),
        (
            &json!("-0.50"),
            &json!("0.00"),
            &json!("-0.50"),
            &json!("calculated")
        )
    );
    // Period 2: the player loses 10.00: 1.00 earned, 0.50 of it recovers the carry.
    play(
        &api,
        &sims,
        &tree.admin_token,
        &tree.player_id,
        &tree.player_token,
        1000,
        0,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let s2 = unpaid("p2", end1, now_text(0)).await;
    let l2 = line(&s2, &tree.agent_id);
    assert_eq!(
        (
            &l2["earned"],
            &l2["carried_in"],
            &l2["amount"],
            &l2["carry_out"]
        ),
        (
            &json!("1.00"),
            &json!("-0.50"),
            &json!("0.50"),
            &json!("0.00")
        )
    );
    assert_eq!(
        s2["revenue_share"]["amount"], "1.90",
        "20% of (10.00 − 0.50)"
    );

    // Statuses: calculated → held → approved → paid; anything else 409.
    let sid = s2["id"].as_str().unwrap();
    let step = |token: String, what: &'static str| {
        let api = api.clone();
        let url = format!("{path}/{sid}/commissions/{}/{what}", tree.agent_id);
        async move { api.post(&token, &url, json!({})).await }
    };
    let admin = tree.admin_token.clone();
    step(admin.clone(), "pay")
        .await
        .error(409, "invalid_transition");
    step(tree.agent_token.clone(), "approve")
        .await
        .error(403, "forbidden");
    let other = Tree::create(&api).await;
    step(other.admin_token.clone(), "approve")
        .await
        .error(404, "not_found");
    assert_eq!(step(admin.clone(), "hold").await.ok()["status"], "held");
    step(admin.clone(), "pay")
        .await
        .error(409, "invalid_transition");
    assert_eq!(
        step(admin.clone(), "approve").await.ok()["status"],
        "approved"
    );
    assert_eq!(cents(&api.balance(&admin, &tree.agent_id).await), 0);
    let paid = step(tree.super_token.clone(), "pay").await.ok();
    assert_eq!(paid["status"], "paid");
    assert_eq!(cents(&api.balance(&admin, &tree.agent_id).await), 50);
    let again = step(admin.clone(), "pay").await.ok();
    assert_eq!(
        again["transaction_id"], paid["transaction_id"],
        "paying again replays"
    );
    step(admin.clone(), "hold")
        .await
        .error(409, "invalid_transition");
    step(admin.clone(), "approve")
        .await
        .error(409, "invalid_transition");
    assert_eq!(cents(&api.balance(&admin, &tree.agent_id).await), 50);
    let audited: i64 = hub
        .infra
        .query_one("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'commission.%'")
        .await;
    assert_eq!(audited, 3);

    // Revenue collections: once per key, never past what is outstanding.
    let collections = format!("/api/v1/clients/{}/revenue-collections", tree.client_id);
    let collect = |key: &'static str, body: Value| {
        let (api, token, url) = (api.clone(), tree.super_token.clone(), collections.clone());
        async move { api.post_key(&token, &url, key, body).await }
    };
    let body = json!({ "settlement_id": sid, "amount": "1.00" });
    let first = collect("c1", body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let replay = collect("c1", body.clone()).await;
    assert_eq!(replay.status, 201, "{}", replay.body);
    assert_eq!(replay.body["id"], first.body["id"]);
    assert_eq!(replay.body["transaction_id"], first.body["transaction_id"]);
    collect("c1", json!({ "settlement_id": sid, "amount": "0.50" }))
        .await
        .error(409, "idempotency_conflict");
    collect("c2", body.clone())
        .await
        .error(409, "exceeds_outstanding");
    collect(
        "c3",
        json!({ "settlement_id": sid, "amount": "0.40", "direction": "reverse" }),
    )
    .await
    .ok();
    collect("c4", json!({ "settlement_id": sid, "amount": "-1" }))
        .await
        .error(422, "validation_error");
    collect("c5", json!({ "settlement_id": "nope", "amount": "0.10" }))
        .await
        .error(404, "not_found");
    api.post_key(&tree.admin_token, &collections, "c6", body.clone())
        .await
        .error(403, "forbidden");
    let revenue = format!("h:{}:platform_revenue", tree.client_id);
    let collected = format!("h:{}:platform_collected", tree.client_id);
    assert_eq!(account_balance(&hub.infra, &revenue).await, 130);
    assert_eq!(account_balance(&hub.infra, &collected).await, 60);
    let statements = api
        .get(
            &tree.admin_token,
            &format!("/api/v1/clients/{}/revenue-statements", tree.client_id),
        )
        .await
        .ok();
    let newest = &statements["items"][0];
    assert_eq!(newest["settlement_id"], sid, "{statements}");
    assert_eq!(
        (
            &newest["revenue_share"],
            &newest["collected"],
            &newest["outstanding"]
        ),
        (&json!("1.90"), &json!("0.60"), &json!("1.30"))
    );
    assert_eq!(newest["collections"].as_array().unwrap().len(), 2);
    assert_eq!(statements["items"][1]["revenue_share"], "0.00");
    hub.infra.assert_ledger_ok();
}

fn utc_midnight(days_ago: i64) -> chrono::DateTime<chrono::Utc> {
    let today = chrono::Utc::now().date_naive();
    (today - chrono::Duration::days(days_ago))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
}

fn text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Two nodes on one database, each trying the scheduler's lease every 100 ms: every closed
/// day after the last manual settlement is settled exactly once, and nothing more.
async fn scheduled_settlement_runs_once_across_two_nodes(backend: Backend) {
    let infra = Infra::new(backend).await;
    let env = [
        ("NASHUB_SETTLEMENT_SCHEDULER_INTERVAL_MS", "100"),
        ("NASHUB_SETTLEMENT_GRACE_SECS", "0"),
    ];
    let node_a = HubProcess::start_with_env(&infra, &env);
    let node_b = HubProcess::start_with_env(&infra, &env);
    let (a, b) = (node_a.api(), node_b.api());
    let tree = Tree::create(&a).await;
    let path = format!("/api/v1/clients/{}/settlements", tree.client_id);
    a.post_key(
        &tree.super_token,
        &path,
        "manual",
        json!({ "period_start": text(utc_midnight(4)), "period_end": text(utc_midnight(3)) }),
    )
    .await
    .ok();
    b.patch(
        &tree.super_token,
        &format!("/api/v1/clients/{}/settings", tree.client_id),
        json!({ "settlement_schedule": "daily", "timezone": "UTC" }),
    )
    .await
    .ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let list = loop {
        let list = b.get(&tree.super_token, &path).await.ok();
        let items = list["items"].as_array().unwrap();
        if items.len() >= 4 && items.iter().all(|i| i["state"] == "posted") {
            break list;
        }
        assert!(std::time::Instant::now() < deadline, "not settled: {list}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // More ticks on both nodes change nothing.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let after = a.get(&tree.super_token, &path).await.ok();
    assert_eq!(after["items"], list["items"]);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{list}");
    for (item, days) in items.iter().take(3).zip(1..) {
        assert_eq!(item["origin"], "scheduled", "{item}");
        assert_eq!(item["created_by"], "scheduler");
        assert_eq!(item["period_start"], text(utc_midnight(days)), "{item}");
        assert_eq!(item["period_end"], text(utc_midnight(days - 1)), "{item}");
    }
    assert_eq!(items[3]["origin"], "manual");
    let created: i64 = infra
        .query_one(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'settlement.create' AND client_id = '{}'",
            tree.client_id
        ))
        .await;
    assert_eq!(created, 4, "each period settled once");
    let holder: String = infra
        .query_one("SELECT holder FROM job_leases WHERE name = 'settlement_scheduler'")
        .await;
    assert!(!holder.is_empty());
    drop((node_a, node_b));
    infra.assert_ledger_ok();
}

/// Moves 50.00 of a fresh 100.00 deposit to `provider`.
async fn fund(api: &Api, admin: &str, player: &str, token: &str, provider: &str) {
    api.deposit(admin, player, "100").await;
    let moved = move_money(api, token, player, provider, "transfer-in", "50").await;
    assert_eq!(moved.status, 200, "{}", moved.body);
}

/// One JDB round (amounts in cents), waited for until the reconciler has pulled it.
async fn jdb_round(hub: &crate::helpers::TestHub, sims: &Sims, player: &str, bet: i64, win: i64) {
    let uid = nashub::providers::provider_uid(player);
    let res = reqwest::Client::new()
        .post(format!("{}/sim/play", sims.jdb.base_url()))
        .json(&json!({ "uid": uid, "bet": bet, "win": win }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let sql =
        format!("SELECT COUNT(*) FROM game_rounds WHERE provider = 'jdb' AND user_id = '{player}'");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while scalar(&hub.infra, &sql).await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "JDB round never pulled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Client basis `turnover`: admin ─ A1 (0.04) ─ A2 (0.01) ─ P; Q directly under A1.
/// P: LuckySports stake 10.00, paid 25.00 then resettled to 5.00 (three versions: turnover
/// 10.00 once, NGR 5.00), and a JDB round bet 4.00, won 0 (turnover 4.00, NGR 4.00).
/// Q: LuckySports stake 6.00 paid 6.00 (a draw: no journal entry, turnover 6.00).
///
/// | agent | from P (turnover 14.00)   | from Q (turnover 6.00) | total | players | basis |
/// |-------|---------------------------|------------------------|-------|---------|-------|
/// | A2    | 0.01 × 14.00 = 0.14       | –                      | 0.14  | 1       | 14.00 |
/// | A1    | (0.04−0.01) × 14 = 0.42   | 0.04 × 6.00 = 0.24     | 0.66  | 2       | 20.00 |
/// Sum 0.80 = 0.04 × 20.00. NGR 9.00; revenue share 10% × (9.00 − 0.80) = 0.82.
async fn commission_on_turnover(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let settings = format!("/api/v1/clients/{}/settings", tree.client_id);
    api.patch(
        &tree.super_token,
        &settings,
        json!({ "commission_basis": "ggr" }),
    )
    .await
    .error(422, "validation_error");
    let patched = api
        .patch(
            &tree.super_token,
            &settings,
            json!({ "commission_rate": "0.5", "revenue_share_rate": "0.1", "commission_basis": "turnover" }),
        )
        .await
        .ok();
    assert_eq!(patched["commission_basis"], "turnover");
    let a1 = create(&api, &tree.admin_token, &tree.admin_id, "agent", "tv_a1").await;
    let a1_token = api.token(Some(&tree.code), "tv_a1").await;
    let a2 = create(&api, &a1_token, &a1, "agent", "tv_a2").await;
    let a2_token = api.token(Some(&tree.code), "tv_a2").await;
    let p = create(&api, &a2_token, &a2, "player", "tv_p").await;
    let q = create(&api, &a1_token, &a1, "player", "tv_q").await;
    set_rate(&api, &tree.admin_token, &a1, "0.04").await.ok();
    set_rate(&api, &a1_token, &a2, "0.01").await.ok();
    let p_token = api.token(Some(&tree.code), "tv_p").await;
    let q_token = api.token(Some(&tree.code), "tv_q").await;

    let start_at = now_text(-60_000);
    let admin = &tree.admin_token;
    fund(&api, admin, &p, &p_token, "luckysports").await;
    fund(&api, admin, &p, &p_token, "jdb").await;
    fund(&api, admin, &q, &q_token, "luckysports").await;
    let games = api
        .get(&p_token, "/api/v1/providers/luckysports/games")
        .await
        .ok();
    let launched = api
        .post(
            &p_token,
            &format!("/api/v1/users/{p}/providers/luckysports/launch"),
            json!({ "game": games["games"][0]["code"] }),
        )
        .await
        .ok();
    let session = launched["session_id"].as_str().unwrap().to_owned();
    let placed = place_bet(
        &sims,
        &nashub::providers::provider_uid(&p),
        1000,
        2500,
        Some(500),
    )
    .await;
    assert!(placed["delivered"].as_i64().unwrap() >= 3, "{placed}");
    let placed = place_bet(&sims, &nashub::providers::provider_uid(&q), 600, 600, None).await;
    assert!(placed["delivered"].as_i64().unwrap() >= 2, "{placed}");
    jdb_round(&hub, &sims, &p, 400, 0).await;

    // Each round keeps its latest version's stake, in the client's minor units.
    let round = |user: &str, provider: &str, column: &str| {
        format!(
            "SELECT {column} FROM game_rounds WHERE user_id = '{user}' AND provider = '{provider}'"
        )
    };
    assert_eq!(
        scalar(&hub.infra, &round(&p, "luckysports", "stake")).await,
        1000
    );
    assert_eq!(
        scalar(&hub.infra, &round(&p, "luckysports", "net")).await,
        -500
    );
    assert_eq!(scalar(&hub.infra, &round(&p, "jdb", "stake")).await, 400);
    assert_eq!(
        scalar(&hub.infra, &round(&q, "luckysports", "stake")).await,
        600
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    // The session's share: P's LuckySports stake, once.
    let by_session = api
        .get(
            &a1_token,
            &format!("/api/v1/game-sessions/{session}/commission"),
        )
        .await
        .ok();
    assert_eq!(
        (&by_session["basis"], &by_session["basis_amount"]),
        (&json!("turnover"), &json!("10.00")),
        "{by_session}"
    );
    let shares: Vec<(&str, &str)> = by_session["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["agent_id"].as_str().unwrap(),
                i["amount"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(shares, vec![(a2.as_str(), "0.10"), (a1.as_str(), "0.30")]);

    // The open period follows the basis.
    let current = api
        .get(&a1_token, &format!("/api/v1/users/{a1}/commission/current"))
        .await
        .ok();
    assert_eq!(
        (
            &current["basis"],
            &current["basis_amount"],
            &current["amount"]
        ),
        (&json!("turnover"), &json!("20.00"), &json!("0.66")),
        "{current}"
    );

    let s = settle(
        &api,
        &tree.super_token,
        &tree.client_id,
        "tv",
        &start_at,
        &now_text(0),
    )
    .await
    .ok();
    // agent, amount, players, basis
    for (agent, amount, players, basis) in [(&a2, "0.14", 1, "14.00"), (&a1, "0.66", 2, "20.00")] {
        let l = line(&s, agent);
        assert_eq!(
            (&l["amount"], &l["players"], &l["basis_amount"], &l["ngr"]),
            (
                &json!(amount),
                &json!(players),
                &json!(basis),
                &json!(basis)
            ),
            "{l}"
        );
        assert_eq!(
            (&l["basis"], &l["carry_out"]),
            (&json!("turnover"), &json!("0.00"))
        );
        assert_eq!(
            cents(&api.balance(&tree.admin_token, agent).await),
            cents(amount)
        );
    }
    assert_eq!(s["commission_total"], "0.80");
    assert_eq!(s["ngr"], "9.00", "the client's NGR, whatever the basis");
    assert_eq!(
        (&s["revenue_share"]["base"], &s["revenue_share"]["amount"]),
        (&json!("8.20"), &json!("0.82"))
    );
    hub.infra.assert_ledger_ok();
}

backend_tests!(
    commission_differential_four_levels,
    commission_on_turnover,
    commission_carry_over_statuses_and_collections,
    scheduled_settlement_runs_once_across_two_nodes,
);
