//! kill -9 of a `nashub serve` process at random points while deposits are confirmed and
//! payouts sent through a Stripe simulator that outlives it (the test's own, with the client's
//! sealed credentials pointing at it); after each restart the reconciler settles everything:
//! every payment terminal, the books balanced (`check-ledger`), no deposit credited twice, no
//! withdrawal paid out twice, and the hub's totals equal to the gateway's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Api, Backend, HubProcess, Infra, Tree};

crate::backend_tests!(kill9_during_deposits_and_payouts_then_reconcile);

const ROUNDS: usize = 4;

fn start(infra: &Infra) -> HubProcess {
    HubProcess::start_with_env(
        infra,
        &[
            ("NASHUB_PAYMENT_SIM", "false"),
            ("NASHUB_PAYMENT_RECONCILE_INTERVAL_MS", "600000"),
        ],
    )
}

/// Fire-and-forget traffic: a request that dies with the hub is simply lost.
async fn traffic(
    base: String,
    sim: String,
    token: String,
    round: usize,
    answered: Arc<AtomicUsize>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let tasks = (0..12).map(|i| {
        let (http, base, sim, token) = (http.clone(), base.clone(), sim.clone(), token.clone());
        let answered = answered.clone();
        async move {
            // Until the hub dies under it.
            for j in 0.. {
                if !one(&http, &base, &sim, &token, format!("r{round}-{i}-{j}"), i).await {
                    return;
                }
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    futures_util::future::join_all(tasks).await;
}

/// One request (and the player's payment, for a deposit); false once the hub is gone.
async fn one(
    http: &reqwest::Client,
    base: &str,
    sim: &str,
    token: &str,
    key: String,
    i: usize,
) -> bool {
    {
        {
            if i.is_multiple_of(2) {
                let res = http
                    .post(format!("{base}/api/v1/payments/deposits"))
                    .bearer_auth(token)
                    .header("Idempotency-Key", key)
                    .json(&json!({"gateway": "stripe", "amount": format!("{}.00", 5 + i)}))
                    .send()
                    .await;
                let Ok(res) = res else { return false };
                let Ok(p) = res.json::<Value>().await else {
                    return false;
                };
                if let Some((_, id)) = p["checkout_url"]
                    .as_str()
                    .and_then(|u| u.split_once("/pay/"))
                {
                    let _ = http
                        .post(format!("{sim}/sim/checkout/{id}/pay"))
                        .json(&json!({}))
                        .send()
                        .await;
                }
            } else {
                return http
                    .post(format!("{base}/api/v1/payments/withdrawals"))
                    .bearer_auth(token)
                    .header("Idempotency-Key", key)
                    .json(&json!({"gateway": "stripe", "amount": "3.00", "destination": "ba_1"}))
                    .send()
                    .await
                    .is_ok();
            }
        }
    }
    true
}

async fn all_payments(api: &Api, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = api
            .get(token, &format!("/api/v1/payments?limit=200{cursor}"))
            .await
            .ok();
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

fn minor(v: &Value) -> i64 {
    let text = v.as_str().unwrap();
    let (whole, frac) = text.split_once('.').unwrap();
    whole.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap()
}

async fn kill9_during_deposits_and_payouts_then_reconcile(backend: Backend) {
    let infra = Infra::new(backend).await;
    let sim = nashub::payments::sim::spawn("127.0.0.1:0", Default::default()).unwrap();
    let sim_base = sim.base_url();
    let mut hub = start(&infra);
    let api = hub.api();
    let t = Tree::create(&api).await;
    api.put(
        &t.super_token,
        &format!("/api/v1/clients/{}/payment-gateways/stripe", t.client_id),
        json!({"credentials": {
            "base_url": sim_base, "api_key": nashub::payments::sim::SIM_API_KEY,
            "webhook_secret": nashub::payments::sim::SIM_WEBHOOK_SECRET,
            "fee_bps": nashub::payments::sim::SIM_FEE_BPS,
            "fee_fixed": nashub::payments::sim::SIM_FEE_FIXED,
            "payout_fee": nashub::payments::sim::SIM_PAYOUT_FEE,
        }}),
    )
    .await
    .ok();
    api.put(
        &t.admin_token,
        &format!("/api/v1/clients/{}/payment-settings", t.client_id),
        json!({"auto_approve_max": "100.00"}),
    )
    .await
    .ok();
    api.deposit(&t.admin_token, &t.player_id, "1000.00").await;

    for round in 0..ROUNDS {
        sim.set_webhook_url(&format!("{}/callbacks/payments/stripe", hub.base));
        let answered = Arc::new(AtomicUsize::new(0));
        let load = tokio::spawn(traffic(
            hub.base.clone(),
            sim_base.clone(),
            t.player_token.clone(),
            round,
            answered.clone(),
        ));
        // The kill lands while payments are under way: on a box busy enough that a restarted
        // hub answers late, a fixed delay killed it before any payment began (then the test
        // checked nothing).
        for _ in 0..3_000 {
            if answered.load(Ordering::Relaxed) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delay = 300 + rand::random::<u64>() % 1500;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        hub.kill9();
        let _ = load.await;
        hub = start(&infra);
    }
    sim.set_webhook_url(&format!("{}/callbacks/payments/stripe", hub.base));
    let api = hub.api();
    // Checkouts left open are paid by their players now (their webhooks may come or not).
    sim.set_faults(nashub::payments::sim::PayFaults {
        webhook_drop_rate: 0.5,
        ..Default::default()
    });
    let mut open = Vec::new();
    for pass in 0..4 {
        let report = api
            .post(&t.super_token, "/api/v1/payments/reconcile", json!({}))
            .await
            .ok();
        let payments = all_payments(&api, &t.admin_token).await;
        for p in payments.iter().filter(|p| p["state"] == "pending") {
            let (_, id) = p["checkout_url"]
                .as_str()
                .unwrap()
                .split_once("/pay/")
                .unwrap();
            let _ = reqwest::Client::new()
                .post(format!("{sim_base}/sim/checkout/{id}/pay"))
                .json(&json!({}))
                .send()
                .await;
        }
        // Payouts finish at the simulator a moment after they are accepted.
        tokio::time::sleep(Duration::from_millis(100)).await;
        open = payments
            .into_iter()
            .filter(|p| {
                !["paid", "failed", "expired", "cancelled", "rejected"]
                    .contains(&p["state"].as_str().unwrap())
            })
            .collect();
        if open.is_empty() {
            eprintln!(
                "all terminal after {} reconcile passes ({report})",
                pass + 1
            );
            break;
        }
    }
    assert!(open.is_empty(), "still open: {open:?}");

    let payments = all_payments(&api, &t.admin_token).await;
    let paid = |kind: &str| -> Vec<&Value> {
        payments
            .iter()
            .filter(|p| p["kind"] == kind && p["state"] == "paid")
            .collect()
    };
    let deposits: i64 = paid("deposit")
        .iter()
        .map(|p| minor(&p["paid_amount"]))
        .sum();
    let payouts: i64 = paid("withdrawal").iter().map(|p| minor(&p["amount"])).sum();
    let balance = minor(&json!(api.balance(&t.player_token, &t.player_id).await));
    // Exactly once: the wallet moved by what was paid in and out, nothing more.
    assert_eq!(balance, 100_000 + deposits - payouts);
    let info: Value = reqwest::get(format!("{sim_base}/sim/info"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        info["sessions_paid_amount"].as_i64().unwrap(),
        deposits,
        "{info}"
    );
    assert_eq!(
        info["payouts_paid_amount"].as_i64().unwrap(),
        payouts,
        "{info}"
    );
    // One payout per withdrawal that reached the gateway, never two.
    let sent = payments
        .iter()
        .filter(|p| p["kind"] == "withdrawal" && p["gateway_ref"].is_string())
        .count();
    assert_eq!(info["payouts"].as_u64().unwrap() as usize, sent, "{info}");
    assert!(!payments.is_empty());
    hub.kill9();
    infra.assert_ledger_ok();
}
