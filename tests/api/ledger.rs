//! The ledger under pressure: races on one wallet, random operation sequences against a
//! reference model, history, adjustments and the database guard (crashes and disk faults:
//! `durability.rs`).

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Api, Backend, PASSWORD, Reply, TestHub, Tree};

/// 1,000 debits of `a` race a balance `B`: exactly floor(B / a) succeed, the rest are refused
/// with `insufficient_funds`, and the balance ends exact.
async fn thousand_concurrent_debits_on_one_wallet(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    // B = 1234.56, a = 1.75: floor = 705, remainder 0.81.
    api.deposit(&tree.admin_token, &tree.player_id, "1234.56")
        .await;
    let path = format!("/api/v1/users/{}/wallet/withdraw", tree.player_id);
    let replies = api
        .post_keys_concurrently(
            &tree.admin_token,
            &path,
            (0..1000).map(|i| format!("d-{i}")),
            json!({ "amount": "1.75" }),
        )
        .await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let refused = replies
        .iter()
        .filter(|r| r.status == 409 && r.body["error"]["code"] == "insufficient_funds")
        .count();
    assert_eq!((ok, refused), (705, 295));
    assert_eq!(
        api.balance(&tree.admin_token, &tree.player_id).await,
        "0.81"
    );
    hub.infra.assert_ledger_ok();
    // Each committed movement left its audit row in the same (group) commit, chained intact.
    let rows = hub.infra.assert_audit_ok();
    assert!(rows >= 706, "{rows} audit rows for 706 movements");
}

// ---- property test against a reference model ------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    Agent,
    P1,
    P2,
}

#[derive(Debug, Clone)]
enum Op {
    Deposit(Who, i64),
    Withdraw(Who, i64),
    /// The agent moves its own balance to a player.
    Credit(Who, i64),
    /// The agent takes a player's balance back.
    Debit(Who, i64),
    /// Resend the previous request with its key.
    Retry,
    /// The previous key with another amount.
    ReuseKey,
}

fn op() -> impl Strategy<Value = (Op, bool)> {
    let who = prop_oneof![Just(Who::Agent), Just(Who::P1), Just(Who::P2)];
    let player = prop_oneof![Just(Who::P1), Just(Who::P2)];
    let amount = 1i64..5_000;
    let op = prop_oneof![
        3 => (who.clone(), amount.clone()).prop_map(|(w, a)| Op::Deposit(w, a)),
        2 => (who, amount.clone()).prop_map(|(w, a)| Op::Withdraw(w, a)),
        3 => (player.clone(), amount.clone()).prop_map(|(w, a)| Op::Credit(w, a)),
        2 => (player, amount).prop_map(|(w, a)| Op::Debit(w, a)),
        1 => Just(Op::Retry),
        1 => Just(Op::ReuseKey),
    ];
    // `true`: send the request twice at once, as a client retrying too early would.
    (op, proptest::bool::weighted(0.2))
}

struct Case<'a> {
    api: &'a Api,
    admin: String,
    agent: String,
    ids: HashMap<Who, String>,
}

#[derive(Clone)]
struct Sent {
    path: String,
    token: String,
    key: String,
    amount: i64,
    /// (user whose wallet the answer shows, postings) if it committed.
    effect: Option<Vec<(Who, i64)>>,
    reply: Value,
}

fn money(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

impl Case<'_> {
    async fn send(&self, path: &str, token: &str, key: &str, amount: i64, twice: bool) -> Reply {
        let body = json!({ "amount": money(amount) });
        if !twice {
            return self.api.post_key(token, path, key, body).await;
        }
        let (a, b) = tokio::join!(
            self.api.post_key(token, path, key, body.clone()),
            self.api.post_key(token, path, key, body)
        );
        assert_eq!(a.status, b.status, "{} vs {}", a.body, b.body);
        assert_eq!(a.body, b.body, "a concurrent retry answers alike");
        a
    }
}

async fn run_case(case: &Case<'_>, ops: &[(Op, bool)]) -> Result<(), TestCaseError> {
    let mut model: HashMap<Who, i64> = [(Who::Agent, 0), (Who::P1, 0), (Who::P2, 0)].into();
    let mut postings: HashMap<Who, usize> = HashMap::new();
    let mut last: Option<Sent> = None;
    for (n, (op, twice)) in ops.iter().enumerate() {
        let (path, token, key, amount, legs) = match op {
            Op::Retry | Op::ReuseKey => {
                let Some(prev) = last.clone() else { continue };
                let amount = if matches!(op, Op::Retry) {
                    prev.amount
                } else {
                    prev.amount + 1
                };
                let reply = case
                    .send(&prev.path, &prev.token, &prev.key, amount, *twice)
                    .await;
                match (&prev.effect, matches!(op, Op::Retry)) {
                    // Same key, same request: the first answer again; nothing moves.
                    (Some(_), true) => {
                        prop_assert_eq!(reply.status, 200);
                        prop_assert_eq!(&reply.body, &prev.reply);
                    }
                    (Some(_), false) => {
                        prop_assert_eq!(reply.status, 409);
                        prop_assert_eq!(&reply.body["error"]["code"], "idempotency_conflict");
                    }
                    // A refused request left no entry: the key is judged afresh. The model's
                    // state is unchanged since, so a retry is refused again; a new amount may
                    // fit, and then it is a new movement.
                    (None, _) => {
                        let legs = legs_of(&prev.path, case, amount);
                        let fits = legs.iter().all(|(w, d)| model[w] + d >= 0);
                        if fits {
                            prop_assert_eq!(reply.status, 200, "{}", reply.body);
                            apply(&mut model, &mut postings, &legs);
                            last = Some(Sent {
                                amount,
                                effect: Some(legs),
                                reply: reply.body,
                                ..prev
                            });
                        } else {
                            prop_assert_eq!(reply.status, 409);
                            prop_assert_eq!(&reply.body["error"]["code"], "insufficient_funds");
                        }
                    }
                }
                continue;
            }
            Op::Deposit(w, a) => (
                format!("/api/v1/users/{}/wallet/deposit", case.ids[w]),
                &case.admin,
                *w,
                *a,
                vec![(*w, *a)],
            ),
            Op::Withdraw(w, a) => (
                format!("/api/v1/users/{}/wallet/withdraw", case.ids[w]),
                &case.admin,
                *w,
                *a,
                vec![(*w, -*a)],
            ),
            Op::Credit(w, a) => (
                format!("/api/v1/users/{}/wallet/credit", case.ids[w]),
                &case.agent,
                *w,
                *a,
                vec![(Who::Agent, -*a), (*w, *a)],
            ),
            Op::Debit(w, a) => (
                format!("/api/v1/users/{}/wallet/debit", case.ids[w]),
                &case.agent,
                *w,
                *a,
                vec![(*w, -*a), (Who::Agent, *a)],
            ),
        };
        let key_name = format!("op-{n}");
        let reply = case.send(&path, token, &key_name, amount, *twice).await;
        let fits = legs.iter().all(|(w, d)| model[w] + d >= 0);
        let effect = if fits {
            prop_assert_eq!(reply.status, 200, "{:?}: {}", op, reply.body);
            apply(&mut model, &mut postings, &legs);
            prop_assert_eq!(&reply.body["balance"], &json!(money(model[&key])));
            Some(legs)
        } else {
            prop_assert_eq!(reply.status, 409, "{:?}: {}", op, reply.body);
            prop_assert_eq!(&reply.body["error"]["code"], "insufficient_funds");
            None
        };
        last = Some(Sent {
            path,
            token: token.clone(),
            key: key_name,
            amount,
            effect,
            reply: reply.body,
        });
    }

    for (who, id) in &case.ids {
        let balance = case.api.balance(&case.admin, id).await;
        prop_assert_eq!(&balance, &money(model[who]), "{:?}", who);
        let history = case
            .api
            .get(
                &case.admin,
                &format!("/api/v1/users/{id}/transactions?limit=200"),
            )
            .await
            .ok();
        let items = history["items"].as_array().unwrap();
        prop_assert_eq!(items.len(), postings.get(who).copied().unwrap_or(0));
        if let Some(newest) = items.first() {
            prop_assert_eq!(&newest["balance_after"], &json!(money(model[who])));
        }
    }
    Ok(())
}

fn legs_of(path: &str, case: &Case<'_>, amount: i64) -> Vec<(Who, i64)> {
    let who = *case
        .ids
        .iter()
        .find(|(_, id)| path.contains(id.as_str()))
        .unwrap()
        .0;
    match path.rsplit('/').next().unwrap() {
        "deposit" => vec![(who, amount)],
        "withdraw" => vec![(who, -amount)],
        "credit" => vec![(Who::Agent, -amount), (who, amount)],
        "debit" => vec![(who, -amount), (Who::Agent, amount)],
        other => panic!("{other}"),
    }
}

fn apply(model: &mut HashMap<Who, i64>, postings: &mut HashMap<Who, usize>, legs: &[(Who, i64)]) {
    for (w, d) in legs {
        *model.get_mut(w).unwrap() += d;
        *postings.entry(*w).or_default() += 1;
    }
}

async fn random_operations_match_the_model(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 12,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = proptest::collection::vec(op(), 1..40);
    let result = tokio::task::block_in_place(|| {
        runner.run(&strategy, |ops| {
            handle.block_on(async {
                // A fresh client per case: cases never see each other's money.
                let tree = Tree::create(&api).await;
                let p2 = api
                    .post(
                        &tree.agent_token,
                        "/api/v1/users",
                        json!({ "parent_id": tree.agent_id, "role": "player",
                                "username": "player2", "password": PASSWORD }),
                    )
                    .await
                    .ok()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let case = Case {
                    api: &api,
                    admin: tree.admin_token.clone(),
                    agent: tree.agent_token.clone(),
                    ids: [
                        (Who::Agent, tree.agent_id.clone()),
                        (Who::P1, tree.player_id.clone()),
                        (Who::P2, p2),
                    ]
                    .into(),
                };
                run_case(&case, &ops).await
            })
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    hub.infra.assert_ledger_ok();
}

/// History filters (kind, amount range, reference, time), stable cursors, the balance at a
/// point in time, and the client-wide journal for admins only.
async fn history_filters_and_client_journal(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let admin = &tree.admin_token;
    let user = &tree.player_id;
    let first = api.deposit(admin, user, "100.00").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let between = chrono::Utc::now().to_rfc3339();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let wd = api
        .post_key(
            admin,
            &format!("/api/v1/users/{user}/wallet/withdraw"),
            "wd-1",
            json!({ "amount": "7.50", "memo": "ticket-42" }),
        )
        .await
        .ok();
    for _ in 0..5 {
        api.deposit(admin, user, "1.00").await;
    }
    let list = |query: String| {
        let api = api.clone();
        let token = admin.clone();
        let user = user.clone();
        async move {
            api.get(
                &token,
                &format!("/api/v1/users/{user}/transactions?{query}"),
            )
            .await
            .ok()
        }
    };
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let withdrawals = list("kind=withdrawal".into()).await;
    assert_eq!(
        ids(&withdrawals),
        vec![wd["transaction_id"].as_str().unwrap()]
    );
    assert_eq!(withdrawals["items"][0]["amount"], "-7.50");
    assert_eq!(withdrawals["items"][0]["balance_after"], "92.50");
    let big = list("min_amount=5.00".into()).await;
    assert_eq!(big["items"].as_array().unwrap().len(), 2);
    let small = list("max_amount=1.00".into()).await;
    assert_eq!(small["items"].as_array().unwrap().len(), 5);
    let by_memo = list("reference=ticket-42".into()).await;
    assert_eq!(ids(&by_memo), ids(&withdrawals));
    let by_id = list(format!(
        "reference={}",
        first["transaction_id"].as_str().unwrap()
    ))
    .await;
    assert_eq!(by_id["items"][0]["amount"], "100.00");
    let early = list(format!("to={}", urlencode(&between))).await;
    assert_eq!(ids(&early), vec![first["transaction_id"].as_str().unwrap()]);

    // Pages of 3 walk all 7 movements newest first, each once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = list(format!("limit=3{cursor}")).await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(
        seen.iter().collect::<std::collections::HashSet<_>>().len(),
        7
    );
    assert_eq!(
        seen.last().unwrap(),
        first["transaction_id"].as_str().unwrap()
    );
    let bad = api
        .get(
            admin,
            &format!("/api/v1/users/{user}/transactions?min_amount=-1"),
        )
        .await;
    bad.error(422, "validation_error");

    let then = api
        .get(
            admin,
            &format!("/api/v1/users/{user}/wallet?at={}", urlencode(&between)),
        )
        .await
        .ok();
    assert_eq!(then["balance"], "100.00");
    assert_eq!(api.balance(admin, user).await, "97.50");

    let journal = api
        .get(
            admin,
            &format!("/api/v1/clients/{}/transactions?limit=2", tree.client_id),
        )
        .await
        .ok();
    let entries = journal["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(journal["next_cursor"].is_string());
    for e in entries {
        let postings = e["postings"].as_array().unwrap();
        assert_eq!(postings.len(), 2);
        let cents: i64 = postings
            .iter()
            .map(|p| {
                let a = p["amount"].as_str().unwrap().replace('.', "");
                a.parse::<i64>().unwrap()
            })
            .sum();
        assert_eq!(cents, 0, "each entry balances: {e}");
    }
    api.get(
        &tree.agent_token,
        &format!("/api/v1/clients/{}/transactions", tree.client_id),
    )
    .await
    .error(403, "forbidden");
    let other = Tree::create(&api).await;
    api.get(
        &other.admin_token,
        &format!("/api/v1/clients/{}/transactions", tree.client_id),
    )
    .await
    .error(404, "not_found");
}

/// Manual adjustments: signed, reasoned, admins only, audited, and in the history as such.
async fn adjustments_need_a_reason_and_are_audited(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let path = format!("/api/v1/users/{}/wallet/adjust", tree.player_id);
    let up = api
        .post_key(
            &tree.admin_token,
            &path,
            "a1",
            json!({ "amount": "5.00", "reason": "goodwill for ticket 7" }),
        )
        .await
        .ok();
    assert_eq!(up["balance"], "5.00");
    let down = api
        .post_key(
            &tree.admin_token,
            &path,
            "a2",
            json!({ "amount": "-2.50", "reason": "double credit reversed" }),
        )
        .await
        .ok();
    assert_eq!(down["balance"], "2.50");
    api.post_key(
        &tree.admin_token,
        &path,
        "a3",
        json!({ "amount": "-2.51", "reason": "too much" }),
    )
    .await
    .error(409, "insufficient_funds");
    api.post_key(
        &tree.admin_token,
        &path,
        "a4",
        json!({ "amount": "1.00", "reason": "  " }),
    )
    .await
    .error(422, "validation_error");
    api.post_key(
        &tree.agent_token,
        &path,
        "a5",
        json!({ "amount": "1.00", "reason": "agent try" }),
    )
    .await
    .error(403, "forbidden");
    // Same key, other direction: a different request.
    api.post_key(
        &tree.admin_token,
        &path,
        "a1",
        json!({ "amount": "-5.00", "reason": "goodwill for ticket 7" }),
    )
    .await
    .error(409, "idempotency_conflict");

    let history = api
        .get(
            &tree.admin_token,
            &format!(
                "/api/v1/users/{}/transactions?kind=adjustment",
                tree.player_id
            ),
        )
        .await
        .ok();
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["amount"], "-2.50");
    assert_eq!(items[0]["memo"], "double credit reversed");
    let audit = api
        .get(&tree.admin_token, "/api/v1/audit?action=wallet.adjustment")
        .await
        .ok();
    let rows = audit["items"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{audit}");
    assert!(
        rows[0].to_string().contains("double credit reversed"),
        "{}",
        rows[0]
    );
    // The audit row carries the amount signed as it moved the wallet, both ways.
    assert_eq!(rows[0]["after"]["amount"], "-2.50", "{}", rows[0]);
    assert_eq!(rows[1]["after"]["amount"], "5.00", "{}", rows[1]);
    hub.infra.assert_ledger_ok();
    hub.infra.assert_audit_ok();
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// The balance write is guarded by the version read under the lock. A trigger stands in for a
/// writer that bypassed the lock: it bumps the wallet's version between that read and the
/// write. The movement must be refused whole (nothing written, retries included) and go through
/// under the same key once the trigger is gone.
async fn balance_write_is_guarded_by_the_version_read(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.player_id, "10.00")
        .await;
    hub.infra
        .execute(match backend {
            Backend::Sqlite => {
                "CREATE TRIGGER tamper AFTER INSERT ON postings WHEN NEW.amount = 777 \
                 BEGIN UPDATE accounts SET version = version + 1000 WHERE id = NEW.account_id; END"
            }
            Backend::MySql => {
                "CREATE TRIGGER tamper AFTER INSERT ON postings FOR EACH ROW \
                 BEGIN IF NEW.amount = 777 THEN \
                 UPDATE accounts SET version = version + 1000 WHERE id = NEW.account_id; \
                 END IF; END"
            }
        })
        .await;
    let path = format!("/api/v1/users/{}/wallet/deposit", tree.player_id);
    let body = json!({ "amount": "7.77" });
    api.post_key(&tree.admin_token, &path, "guarded", body.clone())
        .await
        .error(503, "storage_unavailable");
    assert_eq!(
        api.balance(&tree.admin_token, &tree.player_id).await,
        "10.00"
    );
    let written: i64 = hub
        .infra
        .query_one("SELECT COUNT(*) FROM postings WHERE amount IN (777, -777)")
        .await;
    assert_eq!(written, 0);
    hub.infra.execute("DROP TRIGGER tamper").await;
    let reply = api
        .post_key(&tree.admin_token, &path, "guarded", body)
        .await
        .ok();
    assert_eq!(reply["balance"], "17.77");
    hub.infra.assert_ledger_ok();
}

backend_tests!(
    balance_write_is_guarded_by_the_version_read,
    adjustments_need_a_reason_and_are_audited,
    history_filters_and_client_journal,
    thousand_concurrent_debits_on_one_wallet,
    random_operations_match_the_model
);
