//! Clients' own provider accounts: credentials stored for a client (validated, sealed) take that
//! client's transfers, balances and callbacks to its own operator account at once, on every hub
//! node, while other clients keep the shared account; a transfer left open resolves against the
//! account it was sent to after the credentials change; broken documents are never stored.

use std::time::Duration;

use nashub::config::{ProviderAccountSettings, Settings};
use nashub::providers::sim::{self, Faults, SimConfig, SimHandle, SimKind};
use nashub::providers::{crypto, provider_uid};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Api, Backend, HubProcess, Infra, TestHub, Tree};
use crate::providers::{account_balance, scalar, wait_until_resolved};

/// The shared simulators (configured accounts) and the ones clients bring their own keys for.
struct Sims {
    jdb: SimHandle,
    ls: SimHandle,
    own_jdb: SimHandle,
    own_ls: SimHandle,
}

const OWN_JDB_KEY: &str = "OwnJdbKey0000001";
const OWN_JDB_IV: &str = "OwnJdbIv00000001";

fn start_sims() -> Sims {
    let shared = |kind| SimConfig {
        operators: match kind {
            SimKind::Jdb => vec![("shareddc".into(), String::new())],
            SimKind::LuckySports => vec![("op_shared".into(), "shared-secret".into())],
        },
        ..sim::default_config(kind)
    };
    let own_jdb = SimConfig {
        operators: vec![("owndc".into(), String::new())],
        parent: "ownag".into(),
        key: OWN_JDB_KEY.into(),
        iv: OWN_JDB_IV.into(),
        ..sim::default_config(SimKind::Jdb)
    };
    let own_ls = SimConfig {
        operators: vec![
            ("op_own".into(), "own-secret".into()),
            ("op_c".into(), "c-secret".into()),
        ],
        ..sim::default_config(SimKind::LuckySports)
    };
    Sims {
        jdb: sim::spawn(SimKind::Jdb, shared(SimKind::Jdb)).unwrap(),
        ls: sim::spawn(SimKind::LuckySports, shared(SimKind::LuckySports)).unwrap(),
        own_jdb: sim::spawn(SimKind::Jdb, own_jdb).unwrap(),
        own_ls: sim::spawn(SimKind::LuckySports, own_ls).unwrap(),
    }
}

async fn start(backend: Backend, sims: &Sims) -> TestHub {
    let account = |kind, handle: &SimHandle, name: &str| ProviderAccountSettings {
        // Names no other hub process knows: a second node must not resolve these rows
        // against its own embedded simulators.
        name: name.into(),
        timeout_ms: 2000,
        breaker_open_ms: 500,
        ..sim::account_for(kind, &handle.state.config, &handle.base_url())
    };
    let accounts = vec![
        account(SimKind::Jdb, &sims.jdb, "jdb-shared"),
        account(SimKind::LuckySports, &sims.ls, "ls-shared"),
    ];
    let hub = TestHub::start_with(backend, move |s: &mut Settings| {
        s.providers = accounts;
        s.provider_reconcile_interval_ms = 200;
    })
    .await;
    for s in [&sims.ls, &sims.own_ls] {
        s.set_callback_url(&format!("{}/callbacks/luckysports", hub.base));
    }
    hub
}

fn jdb_doc(handle: &SimHandle) -> Value {
    let c = &handle.state.config;
    json!({ "base_url": handle.base_url(), "operator": c.operators[0].0, "parent": c.parent,
            "key": c.key, "iv": c.iv, "timeout_ms": 2000 })
}

fn ls_doc(handle: &SimHandle, operator: &str, secret: &str) -> Value {
    json!({ "base_url": handle.base_url(), "operator": operator, "secret": secret })
}

async fn put_credentials(
    api: &Api,
    token: &str,
    client: &str,
    provider: &str,
    doc: Value,
) -> Value {
    api.put(
        token,
        &format!("/api/v1/clients/{client}/credentials/{provider}"),
        json!({ "credentials": doc }),
    )
    .await
    .ok()
}

async fn transfer(
    api: &Api,
    token: &str,
    user: &str,
    provider: &str,
    dir: &str,
    amount: &str,
) -> crate::helpers::Reply {
    api.post_key(
        token,
        &format!("/api/v1/users/{user}/providers/{provider}/{dir}"),
        &uuid::Uuid::new_v4().to_string(),
        json!({ "amount": amount }),
    )
    .await
}

async fn provider_balance(api: &Api, token: &str, user: &str, provider: &str) -> String {
    api.get(
        token,
        &format!("/api/v1/users/{user}/providers/{provider}/balance"),
    )
    .await
    .ok()["balance"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn text(infra: &Infra, sql: &str) -> String {
    infra.query_one(sql).await
}

fn signed(operator: &str, secret: &str, body: &str) -> reqwest::header::HeaderMap {
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("Content-Type", "application/json".parse().unwrap());
    h.insert("X-Operator", operator.parse().unwrap());
    h.insert("X-Timestamp", ts.parse().unwrap());
    let sig = crypto::luckysports_signature(secret.as_bytes(), &ts, body.as_bytes());
    h.insert("X-Signature", sig.parse().unwrap());
    h
}

/// Broken documents are refused with the field named, and nothing is stored.
async fn providers_own_credentials_invalid_documents_refused(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let a = Tree::create(&api).await;
    let path = |p: &str| format!("/api/v1/clients/{}/credentials/{p}", a.client_id);
    let good = jdb_doc(&sims.own_jdb);
    let with = |field: &str, value: Value| {
        let mut d = good.clone();
        if value.is_null() {
            d.as_object_mut().unwrap().remove(field);
        } else {
            d[field] = value;
        }
        d
    };
    let cases = [
        ("jdb", with("key", json!("too-short")), "credentials.key"),
        (
            "jdb",
            with("iv", json!("0123456789abcdef0")),
            "credentials.iv",
        ),
        ("jdb", with("parent", Value::Null), "credentials.parent"),
        ("jdb", with("operator", json!("")), "credentials.operator"),
        (
            "jdb",
            with("base_url", json!("ftp://127.0.0.1/")),
            "credentials.base_url",
        ),
        (
            "jdb",
            with("base_url", json!("nowhere")),
            "credentials.base_url",
        ),
        (
            "jdb",
            with("timeout_ms", json!("fast")),
            "credentials.timeout_ms",
        ),
        ("jdb", with("secret", json!("x")), "credentials.secret"),
        (
            "luckysports",
            json!({ "base_url": sims.own_ls.base_url(), "operator": "op_own" }),
            "credentials.secret",
        ),
        (
            "luckysports",
            json!({ "base_url": sims.own_ls.base_url(), "operator": "op own", "secret": "s" }),
            "credentials.operator",
        ),
    ];
    for (provider, doc, field) in cases {
        let reply = api
            .put(
                &a.super_token,
                &path(provider),
                json!({ "credentials": doc }),
            )
            .await;
        reply.error(422, "validation_error");
        assert_eq!(reply.body["error"]["field"], field, "{doc}: {}", reply.body);
        assert!(
            !reply.body.to_string().contains("too-short"),
            "{}",
            reply.body
        );
    }
    let settings = api
        .get(
            &a.super_token,
            &format!("/api/v1/clients/{}/settings", a.client_id),
        )
        .await
        .ok();
    assert_eq!(settings["credentials"], json!([]));
    assert_eq!(
        scalar(&hub.infra, "SELECT COUNT(*) FROM client_secrets").await,
        0
    );
    // Nothing stored, nothing changed: the client still uses the shared accounts.
    api.deposit(&a.admin_token, &a.player_id, "10").await;
    assert_eq!(
        transfer(
            &api,
            &a.player_token,
            &a.player_id,
            "jdb",
            "transfer-in",
            "4"
        )
        .await
        .ok()["state"],
        "succeeded"
    );
    assert_eq!(
        sims.jdb.balance_minor(&provider_uid(&a.player_id), 2),
        Some(400)
    );
    hub.infra.assert_ledger_ok();
}

/// A client with its own credentials moves money at its own provider accounts, another client
/// keeps the shared ones; callbacks for its operator verify with its secret only; a change of
/// credentials reaches every node without a restart, and an open transfer still resolves
/// against the account it was sent to.
async fn providers_own_credentials_route_one_client(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let (a, b, c) = (
        Tree::create(&api).await,
        Tree::create(&api).await,
        Tree::create(&api).await,
    );
    let (uid_a, uid_b) = (provider_uid(&a.player_id), provider_uid(&b.player_id));

    let put = put_credentials(
        &api,
        &a.super_token,
        &a.client_id,
        "jdb",
        jdb_doc(&sims.own_jdb),
    )
    .await;
    assert_eq!(put["version"], 1);
    assert!(!put.to_string().contains(OWN_JDB_KEY));
    put_credentials(
        &api,
        &a.super_token,
        &a.client_id,
        "luckysports",
        ls_doc(&sims.own_ls, "op_own", "own-secret"),
    )
    .await;
    // Client C has its own LuckySports operator at the same simulator.
    put_credentials(
        &api,
        &c.super_token,
        &c.client_id,
        "luckysports",
        ls_doc(&sims.own_ls, "op_c", "c-secret"),
    )
    .await;

    for t in [&a, &b] {
        api.deposit(&t.admin_token, &t.player_id, "100").await;
    }
    // A's money lands at A's own accounts, B's at the shared ones.
    for (provider, amount) in [("jdb", "30"), ("luckysports", "20")] {
        let r = transfer(
            &api,
            &a.player_token,
            &a.player_id,
            provider,
            "transfer-in",
            amount,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = transfer(
            &api,
            &b.player_token,
            &b.player_id,
            provider,
            "transfer-in",
            "10",
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(sims.own_jdb.balance_minor(&uid_a, 2), Some(3000));
    assert_eq!(sims.own_ls.balance_minor(&uid_a, 2), Some(2000));
    assert_eq!(sims.jdb.balance_minor(&uid_a, 2), None);
    assert_eq!(sims.ls.balance_minor(&uid_a, 2), None);
    assert_eq!(sims.jdb.balance_minor(&uid_b, 2), Some(1000));
    assert_eq!(sims.ls.balance_minor(&uid_b, 2), Some(1000));
    assert_eq!(sims.own_jdb.balance_minor(&uid_b, 2), None);
    assert_eq!(
        provider_balance(&api, &a.player_token, &a.player_id, "jdb").await,
        "30.00"
    );
    assert_eq!(
        provider_balance(&api, &a.player_token, &a.player_id, "luckysports").await,
        "20.00"
    );
    assert_eq!(
        provider_balance(&api, &b.player_token, &b.player_id, "jdb").await,
        "10.00"
    );
    let account = text(
        &hub.infra,
        &format!(
            "SELECT account FROM provider_transfers WHERE user_id = '{}' AND provider = 'jdb'",
            a.player_id
        ),
    )
    .await;
    assert_eq!(account, format!("jdb:{}@1", a.code));

    // Callbacks: the simulator's own delivery (signed with A's secret) applies.
    let res = reqwest::Client::new()
        .post(format!("{}/sim/bet", sims.own_ls.base_url()))
        .json(&json!({ "member_id": uid_a, "stake": 100, "payout": 300 }))
        .send()
        .await
        .unwrap();
    let placed: Value = res.json().await.unwrap();
    assert_eq!(placed["delivered"], 2, "{placed}");
    let held_ls = format!("h:{}:held_at_provider:luckysports", a.client_id);
    assert_eq!(account_balance(&hub.infra, &held_ls).await, 2200);
    // Forged ones for A's operator: the shared account's secret, another client's secret, and
    // another client's operator (its own secret) naming A's player.
    let body = json!({ "event": "bet_settled", "bet": {
        "bet_id": "own1", "member_id": uid_a, "stake": 100, "payout": 100000,
        "status": "won", "placed_at": "", "settled_at": "", "version": 1 } })
    .to_string();
    let url = format!("{}/callbacks/luckysports", hub.base);
    let send = |headers: reqwest::header::HeaderMap| {
        api.send(api.http.post(&url).headers(headers).body(body.clone()))
    };
    send(signed("op_own", "shared-secret", &body))
        .await
        .error(401, "invalid_signature");
    send(signed("op_own", "c-secret", &body))
        .await
        .error(401, "invalid_signature");
    send(signed("op_c", "c-secret", &body))
        .await
        .error(403, "forbidden");
    send(signed("op_shared", "shared-secret", &body))
        .await
        .error(403, "forbidden");
    assert_eq!(account_balance(&hub.infra, &held_ls).await, 2200);
    let ok = send(signed("op_own", "own-secret", &body)).await.ok();
    assert_eq!(ok["applied"], true);
    assert_eq!(account_balance(&hub.infra, &held_ls).await, 2200 + 99_900);

    // A transfer left open at A's own JDB account...
    sims.own_jdb.set_faults(Faults {
        in_progress_rate: 1.0,
        in_progress_ms: 600_000,
        ..Faults::default()
    });
    let open = transfer(
        &api,
        &a.player_token,
        &a.player_id,
        "jdb",
        "transfer-in",
        "5",
    )
    .await;
    assert_eq!(open.status, 202, "{}", open.body);
    // ...then A's JDB credentials change (to the shared simulator's operator account): new
    // transfers go there at once.
    let put = put_credentials(
        &api,
        &a.super_token,
        &a.client_id,
        "jdb",
        jdb_doc(&sims.jdb),
    )
    .await;
    assert_eq!(put["version"], 2);
    let r = transfer(
        &api,
        &a.player_token,
        &a.player_id,
        "jdb",
        "transfer-in",
        "7",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(sims.jdb.balance_minor(&uid_a, 2), Some(700));
    // The open one resolves against the account it was sent to (version 1).
    sims.own_jdb.set_faults(Faults::default());
    sims.own_jdb.finish_in_progress();
    wait_until_resolved(&hub.infra, Duration::from_secs(10)).await;
    let state = text(
        &hub.infra,
        &format!(
            "SELECT state FROM provider_transfers WHERE id = '{}'",
            open.body["transfer_id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(state, "succeeded");
    assert_eq!(sims.own_jdb.balance_minor(&uid_a, 2), Some(3500));

    // A second node on the same database uses the current credentials, and sees a change made
    // through the first node without a restart.
    let node_b = HubProcess::start(&hub.infra);
    let api_b = node_b.api();
    let token_b = api_b.token(Some(&a.code), "player1").await;
    assert_eq!(
        provider_balance(&api_b, &token_b, &a.player_id, "jdb").await,
        "7.00"
    );
    let r = transfer(&api_b, &token_b, &a.player_id, "jdb", "transfer-out", "7").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(sims.jdb.balance_minor(&uid_a, 2), Some(0));
    put_credentials(
        &api,
        &a.super_token,
        &a.client_id,
        "jdb",
        jdb_doc(&sims.own_jdb),
    )
    .await;
    let started = tokio::time::Instant::now();
    while provider_balance(&api_b, &token_b, &a.player_id, "jdb").await != "35.00" {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "node B still on the old credentials"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = transfer(&api_b, &token_b, &a.player_id, "jdb", "transfer-in", "1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(sims.own_jdb.balance_minor(&uid_a, 2), Some(3600));
    // (Node B runs with its own embedded simulators as shared accounts, so B's player is only
    // checked through the first node.)
    assert_eq!(
        provider_balance(&api, &b.player_token, &b.player_id, "jdb").await,
        "10.00"
    );

    // The books: what the hub holds at JDB for A is what A's player has at both accounts.
    let held_jdb = format!("h:{}:held_at_provider:jdb", a.client_id);
    assert_eq!(
        account_balance(&hub.infra, &held_jdb).await,
        sims.own_jdb.balance_minor(&uid_a, 2).unwrap() + sims.jdb.balance_minor(&uid_a, 2).unwrap()
    );
    // Per-client metrics label.
    let metrics = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!("account=\"jdb:{}\"", a.code)),
        "no per-client metrics label"
    );
    assert!(!metrics.contains(OWN_JDB_KEY) && !metrics.contains("own-secret"));
    drop(node_b);
    hub.infra.assert_ledger_ok();
}

backend_tests!(
    providers_own_credentials_invalid_documents_refused,
    providers_own_credentials_route_one_client,
);
