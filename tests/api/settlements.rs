//! Settlements: agents' commission on their players' net gaming revenue and the platform's
//! revenue share, posted once per period whatever is retried, and refused for overlapping
//! periods or the wrong callers.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Api, Backend, HubProcess, Infra, TestHub, Tree};
use crate::providers::{Sims, account_balance, accounts, cents, move_money, place_bet, start_sims};
use crate::users_admin::create;
use nashub::config::Settings;
use nashub::providers::provider_uid;

pub(crate) async fn start(backend: Backend, sims: &Sims) -> TestHub {
    let accounts = accounts(sims);
    let hub = TestHub::start_with(backend, move |s: &mut Settings| {
        s.providers = accounts;
        s.provider_reconcile_interval_ms = 200;
        // Tests settle periods that just ended; production waits for late results.
        s.settlement_grace_secs = 0;
    })
    .await;
    sims.ls
        .set_callback_url(&format!("{}/callbacks/luckysports", hub.base));
    hub
}

/// Funds a player, moves 50.00 to LuckySports and settles one bet there; the simulator's
/// answer (`bet_id`, callbacks `delivered`).
pub(crate) async fn play(
    api: &Api,
    sims: &Sims,
    admin: &str,
    player: &str,
    token: &str,
    stake: i64,
    payout: i64,
) -> Value {
    api.deposit(admin, player, "100").await;
    let moved = move_money(api, token, player, "luckysports", "transfer-in", "50").await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let placed = place_bet(sims, &provider_uid(player), stake, payout, None).await;
    assert!(placed["delivered"].as_i64().unwrap() >= 2, "{placed}");
    placed
}

pub(crate) fn now_text(offset_ms: i64) -> String {
    let t = chrono::Utc::now() + chrono::Duration::milliseconds(offset_ms);
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) async fn settle(
    api: &Api,
    token: &str,
    client: &str,
    key: &str,
    start: &str,
    end: &str,
) -> crate::helpers::Reply {
    api.post_key(
        token,
        &format!("/api/v1/clients/{client}/settlements"),
        key,
        json!({ "period_start": start, "period_end": end }),
    )
    .await
}

async fn settlements_pay_commission_and_share_once(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let settings = api
        .patch(
            &tree.super_token,
            &format!("/api/v1/clients/{}/settings", tree.client_id),
            json!({ "commission_rate": "0.1", "revenue_share_rate": "0.2" }),
        )
        .await;
    assert_eq!(settings.status, 200, "{}", settings.body);

    // agent1 ─ player1 (loses 10.00); agent2 ─ player2 (wins 5.00); admin ─ house (loses 5.00).
    let agent2 = create(&api, &tree.admin_token, &tree.admin_id, "agent", "agent2").await;
    let player2 = create(&api, &tree.admin_token, &agent2, "player", "player2").await;
    let house = create(&api, &tree.admin_token, &tree.admin_id, "player", "house1").await;
    let player2_token = api.token(Some(&tree.code), "player2").await;
    let house_token = api.token(Some(&tree.code), "house1").await;
    let start = now_text(-60_000);
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
    play(
        &api,
        &sims,
        &tree.admin_token,
        &player2,
        &player2_token,
        100,
        600,
    )
    .await;
    play(&api, &sims, &tree.admin_token, &house, &house_token, 500, 0).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let end = now_text(0);

    let path = format!("/api/v1/clients/{}/settlements", tree.client_id);
    // Only the platform settles; the client's admin reads; agents and other clients see nothing.
    settle(&api, &tree.admin_token, &tree.client_id, "s1", &start, &end)
        .await
        .error(403, "forbidden");
    settle(&api, &tree.agent_token, &tree.client_id, "s1", &start, &end)
        .await
        .error(403, "forbidden");
    settle(&api, &tree.super_token, &tree.client_id, "s1", &end, &start)
        .await
        .error(422, "validation_error");
    settle(
        &api,
        &tree.super_token,
        &tree.client_id,
        "s1",
        "yesterday",
        &end,
    )
    .await
    .error(422, "validation_error");
    settle(
        &api,
        &tree.super_token,
        &tree.client_id,
        "s1",
        &start,
        &now_text(60_000),
    )
    .await
    .error(422, "validation_error");

    let first = settle(&api, &tree.super_token, &tree.client_id, "s1", &start, &end).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let s: Value = first.body.clone();
    assert_eq!(s["state"], "posted", "{s}");
    assert_eq!(s["ngr"], "10.00", "{s}");
    assert_eq!(s["commission_total"], "1.00", "{s}");
    let lines = s["commissions"].as_array().unwrap();
    let line = |agent: &str| {
        lines
            .iter()
            .find(|l| l["agent_id"] == agent)
            .cloned()
            .unwrap()
    };
    assert_eq!(line(&tree.agent_id)["amount"], "1.00");
    assert_eq!(line(&tree.agent_id)["ngr"], "10.00");
    assert_eq!(line(&tree.agent_id)["players"], 1);
    assert_eq!(line(&agent2)["amount"], "0.00");
    assert_eq!(line(&agent2)["ngr"], "-5.00");
    assert_eq!(
        lines.len(),
        2,
        "the house player earns nobody commission: {s}"
    );
    assert_eq!(s["revenue_share"]["base"], "9.00");
    assert_eq!(s["revenue_share"]["amount"], "1.80");

    let agent_balance = || api.balance(&tree.agent_token, &tree.agent_id);
    assert_eq!(cents(&agent_balance().await), 100);
    let history = api
        .get(
            &tree.agent_token,
            &format!(
                "/api/v1/users/{}/transactions?kind=commission",
                tree.agent_id
            ),
        )
        .await
        .ok();
    assert_eq!(history["items"].as_array().unwrap().len(), 1, "{history}");
    let payable = format!("h:{}:commission_payable", tree.client_id);
    let revenue = format!("h:{}:platform_revenue", tree.client_id);
    assert_eq!(account_balance(&hub.infra, &payable).await, -100);
    assert_eq!(account_balance(&hub.infra, &revenue).await, 180);

    // Retries: the same key (a replay: the first status, 201), or the same period under another
    // key (200), answer the first settlement and move nothing; another period overlapping it is
    // refused; a key reused for another period is a conflict.
    let again = settle(&api, &tree.super_token, &tree.client_id, "s1", &start, &end).await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.body["id"], s["id"]);
    let same_period = settle(&api, &tree.super_token, &tree.client_id, "s2", &start, &end).await;
    assert_eq!(same_period.status, 200, "{}", same_period.body);
    assert_eq!(same_period.body["id"], s["id"]);
    settle(
        &api,
        &tree.super_token,
        &tree.client_id,
        "s3",
        &now_text(-30_000),
        &now_text(0),
    )
    .await
    .error(409, "settlement_overlap");
    settle(
        &api,
        &tree.super_token,
        &tree.client_id,
        "s1",
        &end,
        &now_text(0),
    )
    .await
    .error(409, "idempotency_conflict");
    assert_eq!(cents(&agent_balance().await), 100);
    assert_eq!(account_balance(&hub.infra, &revenue).await, 180);

    // A crash after the entries were posted but before their ids were recorded: posting again
    // must replay them by their settlement-derived keys, not pay a second time.
    let sid = s["id"].as_str().unwrap();
    hub.infra
        .execute(&format!(
            "UPDATE settlements SET state = 'pending', posted_at = NULL WHERE id = '{sid}'"
        ))
        .await;
    hub.infra
        .execute(&format!(
            "UPDATE commissions SET journal_id = NULL WHERE settlement_id = '{sid}'"
        ))
        .await;
    hub.infra
        .execute(&format!(
            "UPDATE revenue_shares SET journal_id = NULL WHERE settlement_id = '{sid}'"
        ))
        .await;
    let resumed = settle(&api, &tree.super_token, &tree.client_id, "s1", &start, &end).await;
    assert_eq!(resumed.status, 201, "{}", resumed.body);
    assert_eq!(resumed.body["state"], "posted", "{}", resumed.body);
    assert_eq!(
        resumed.body["revenue_share"]["transaction_id"], s["revenue_share"]["transaction_id"],
        "the first entry, replayed"
    );
    assert_eq!(cents(&agent_balance().await), 100);
    assert_eq!(account_balance(&hub.infra, &revenue).await, 180);

    // A later period with no play settles to zero and pays nothing.
    let quiet = settle(
        &api,
        &tree.super_token,
        &tree.client_id,
        "s4",
        &end,
        &now_text(0),
    )
    .await;
    assert_eq!(quiet.status, 201, "{}", quiet.body);
    assert_eq!(quiet.body["ngr"], "0.00");
    assert_eq!(quiet.body["revenue_share"]["amount"], "0.00");

    // Reading: the client's admin lists and opens them; another client's admin cannot.
    let list = api.get(&tree.admin_token, &path).await.ok();
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list["items"][1]["id"], s["id"], "newest period first");
    let one = api
        .get(
            &tree.admin_token,
            &format!("{path}/{}", s["id"].as_str().unwrap()),
        )
        .await
        .ok();
    assert_eq!(one["revenue_share"]["amount"], "1.80");
    api.get(&tree.agent_token, &path)
        .await
        .error(403, "forbidden");
    let other = Tree::create(&api).await;
    api.get(&other.admin_token, &path)
        .await
        .error(404, "not_found");
    hub.infra.assert_ledger_ok();
}

/// A settlement whose figures were fixed but not posted when the process died (what
/// `fix_settlement` leaves behind) is posted at the next start, exactly once.
async fn settlements_left_pending_are_posted_at_start(backend: Backend) {
    let infra = Infra::new(backend).await;
    let first = HubProcess::start(&infra);
    let tree = Tree::create(&first.api()).await;
    first.kill9();

    let (sid, c, agent) = (
        uuid::Uuid::now_v7().to_string(),
        &tree.client_id,
        &tree.agent_id,
    );
    infra
        .execute(&format!(
            "INSERT INTO settlements (id, client_id, idempotency_key, period_start, period_end, currency, ngr, \
             state, created_by, created_at, posted_at) VALUES ('{sid}', '{c}', 'k1', 0, 1000, 'USD', 5000, \
             'pending', 'test', 0, NULL)"
        ))
        .await;
    infra
        .execute(&format!(
            "INSERT INTO commissions (settlement_id, agent_id, client_id, players, ngr, rate, amount, journal_id) \
             VALUES ('{sid}', '{agent}', '{c}', 1, 5000, '0.0500', 250, NULL)"
        ))
        .await;
    infra
        .execute(&format!(
            "INSERT INTO revenue_shares (settlement_id, client_id, base, rate, amount, journal_id) \
             VALUES ('{sid}', '{c}', 4750, '0.1000', 475, NULL)"
        ))
        .await;

    for _ in 0..2 {
        let hub = HubProcess::start(&infra);
        let api = hub.api();
        let path = format!("/api/v1/clients/{c}/settlements/{sid}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let s = api.get(&tree.super_token, &path).await.ok();
            if s["state"] == "posted" {
                assert_eq!(s["commissions"][0]["amount"], "2.50", "{s}");
                assert!(s["commissions"][0]["transaction_id"].is_string(), "{s}");
                assert!(s["revenue_share"]["transaction_id"].is_string(), "{s}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never posted: {s}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // Started twice: paid once.
        assert_eq!(cents(&api.balance(&tree.agent_token, agent).await), 250);
        let revenue = format!("h:{c}:platform_revenue");
        assert_eq!(account_balance(&infra, &revenue).await, 475);
        hub.kill9();
    }
    infra.assert_ledger_ok();
}

backend_tests!(
    settlements_pay_commission_and_share_once,
    settlements_left_pending_are_posted_at_start
);
