//! Reports (issue 17): rollups kept with the money agree with the journal (`nashub
//! check-reports`, which names the first bucket that differs), the reports equal figures
//! computed here from what the test did, every report answers by reach, CSV is the JSON table.

use std::collections::BTreeMap;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    Api, Backend, HubProcess, Infra, TestHub, Tree, WsClient, metric_value, ws_url,
};
use crate::providers::{cents, move_money, place_bet, start_sims};
use crate::settings_enforced::patch_settings;
use crate::settlements::{now_text, play, settle, start};
use crate::users_admin::create;

const HOUR_MS: i64 = 3_600_000;

/// A period around now, whole UTC hours, one day bucket at most two.
fn period() -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let from = now - now.rem_euclid(HOUR_MS) - 24 * HOUR_MS;
    let to = now - now.rem_euclid(HOUR_MS) + 2 * HOUR_MS;
    let t = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    format!("from={}&to={}", t(from), t(to))
}

/// Whole UTC days around now (yesterday to the day after tomorrow): agent reports read the
/// agent rollups for them, where [`period`]'s unaligned edges read the per-user rows.
fn whole_days() -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let d = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    format!(
        "from={}&to={}",
        d(now - 24 * HOUR_MS),
        d(now + 2 * 24 * HOUR_MS)
    )
}

/// The sum over a report's rows of a column (money or count), in minor units.
fn total(report: &Value, column: &str) -> i64 {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match &r[column] {
            Value::Number(n) => n.as_i64().unwrap(),
            Value::String(s) => cents(s),
            other => panic!("{column}: {other}"),
        })
        .sum()
}

async fn report(api: &Api, token: &str, name: &str, query: &str) -> Value {
    api.get(token, &format!("/api/v1/reports/{name}?{query}"))
        .await
        .ok()
}

async fn adjust(api: &Api, token: &str, user: &str, amount: &str) {
    let key = uuid::Uuid::new_v4().to_string();
    api.post_key(
        token,
        &format!("/api/v1/users/{user}/wallet/adjust"),
        &key,
        json!({ "amount": amount, "reason": "bonus" }),
    )
    .await
    .ok();
}

async fn withdraw(api: &Api, token: &str, user: &str, amount: &str) {
    let key = uuid::Uuid::new_v4().to_string();
    api.post_key(
        token,
        &format!("/api/v1/users/{user}/wallet/withdraw"),
        &key,
        json!({ "amount": amount }),
    )
    .await
    .ok();
}

async fn reports_agree_with_the_ledger_and_check_names_a_bad_bucket(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let agent2 = create(&api, &tree.admin_token, &tree.admin_id, "agent", "agent2").await;
    let player2 = create(&api, &tree.admin_token, &agent2, "player", "player2").await;
    let player2_token = api.token(Some(&tree.code), "player2").await;

    let settled_from = now_text(-60_000);
    // player1 loses 10.00 on a 10.00 stake, player2 wins 5.00 on 1.00 (play deposits 100).
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
    // A 2.00 bet lost, then resettled as won 3.00: one round, its latest stake and result.
    let member = nashub::providers::provider_uid(&player2);
    let placed = place_bet(&sims, &member, 200, 0, Some(300)).await;
    assert_eq!(placed["delivered"].as_i64().unwrap(), 3, "{placed}");
    api.deposit(&tree.admin_token, &player2, "40").await;
    withdraw(&api, &tree.admin_token, &player2, "10.50").await;
    adjust(&api, &tree.admin_token, &tree.player_id, "2.25").await;

    let q = format!("client_id={}&{}", tree.client_id, period());
    let m = report(&api, &tree.super_token, "client-metrics", &q).await;
    assert_eq!(m["currency"], "USD");
    assert_eq!(total(&m, "new_players"), 2);
    assert_eq!(total(&m, "deposits"), 3);
    assert_eq!(total(&m, "deposits_sum"), 24_000);
    assert_eq!(total(&m, "first_time_depositors"), 2);
    assert_eq!(total(&m, "withdrawals"), 1);
    assert_eq!(total(&m, "withdrawals_sum"), 1050);
    assert_eq!(total(&m, "rounds"), 3);
    assert_eq!(total(&m, "turnover"), 1300);
    assert_eq!(total(&m, "wins"), 900);
    assert_eq!(total(&m, "ggr"), 400);
    assert_eq!(total(&m, "adjustments"), 225);
    assert_eq!(total(&m, "ngr"), 175);

    let r = report(&api, &tree.admin_token, "client-revenue", &q).await;
    assert_eq!(total(&r, "ggr"), 400);
    assert_eq!(total(&r, "unsettled_ggr"), 400);
    assert_eq!(total(&r, "ngr"), 175);
    assert_eq!(total(&r, "settlements_ngr"), 0);
    // A settlement of the play: the report shows the NGR it fixed, the same as the journal's.
    // (With a commission, for the agents report's commission earned and paid.)
    let settings = api
        .patch(
            &tree.super_token,
            &format!("/api/v1/clients/{}/settings", tree.client_id),
            json!({ "commission_rate": "0.1" }),
        )
        .await;
    assert_eq!(settings.status, 200, "{}", settings.body);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let settled_to = now_text(0);
    let s = settle(
        &api,
        &tree.super_token,
        &tree.client_id,
        "s1",
        &settled_from,
        &settled_to,
    )
    .await
    .ok();
    assert_eq!(s["ngr"], "4.00");
    let r = report(&api, &tree.admin_token, "client-revenue", &q).await;
    assert_eq!(total(&r, "settlements_ngr"), total(&r, "ggr"));

    let g = report(
        &api,
        &tree.admin_token,
        "game-stats",
        &format!("{q}&top=true"),
    )
    .await;
    assert_eq!(g["rows"][0]["provider"], "luckysports");
    // A sportsbook's bets name no game: each is a play of its one catalogue game.
    assert_eq!(g["rows"][0]["game"], "sportsbook");
    assert_eq!(g["rows"][0]["players"], 2);
    assert_eq!(g["rows"][0]["rounds"], 3);
    assert_eq!(g["rows"][0]["rtp"], "0.6923");
    let by_provider = report(
        &api,
        &tree.admin_token,
        "provider-stats",
        &format!("{q}&top=true"),
    )
    .await;
    let row = &by_provider["rows"][0];
    assert_eq!(
        by_provider["rows"].as_array().unwrap().len(),
        1,
        "{by_provider}"
    );
    assert_eq!(row["provider"], "luckysports");
    assert!(row.get("game").is_none(), "{row}");
    assert_eq!((&row["players"], &row["rounds"]), (&json!(2), &json!(3)));
    assert_eq!(row["rtp"], "0.6923");

    // The agents report: each agent's own players, and the admin's whole tree is not an agent.
    let a = report(&api, &tree.admin_token, "agents", &q).await;
    let by_name: BTreeMap<String, Value> = a["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["username"].as_str().unwrap().to_owned(), r.clone()))
        .collect();
    assert_eq!(by_name["agent1"]["players"], 1);
    assert_eq!(by_name["agent1"]["ggr"], "10.00");
    assert_eq!(by_name["agent1"]["ngr"], "7.75");
    assert_eq!(by_name["agent2"]["own_ggr"], "-6.00");
    assert_eq!(by_name["agent2"]["deposits"], "140.00");
    // Commission earned: the lines of the settlement, which starts in the period.
    let lines = s["commissions"].as_array().unwrap();
    assert!(lines.iter().any(|l| l["amount"] != "0.00"), "{s}");
    for line in lines {
        let rows = a["rows"].as_array().unwrap();
        let row = rows.iter().find(|r| r["agent_id"] == line["agent_id"]);
        assert_eq!(row.unwrap()["commission_earned"], line["amount"], "{s}");
        assert_eq!(row.unwrap()["commission_paid"], line["amount"], "{s}");
    }
    // Whole days read the agent rollups: the same rows.
    let days = format!("client_id={}&{}", tree.client_id, whole_days());
    let by_days = report(&api, &tree.admin_token, "agents", &days).await;
    assert_eq!(by_days["rows"], a["rows"]);

    // An agent sees only its subtree: agent2's report has no agent1 and player1's money.
    let mine = report(&api, &tree.agent_token, "client-metrics", &period()).await;
    assert_eq!(total(&mine, "deposits_sum"), 10_000);
    assert_eq!(total(&mine, "ggr"), 1000);

    // The history: the round, both transfers and the session, newest first, paged.
    let h = api
        .get(
            &tree.player_token,
            &format!("/api/v1/reports/players/{}/history?limit=1", tree.player_id),
        )
        .await
        .ok();
    assert_eq!(h["items"].as_array().unwrap().len(), 1);
    let mut kinds = vec![h["items"][0]["kind"].as_str().unwrap().to_owned()];
    let mut cursor = h["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let page = api
            .get(
                &tree.player_token,
                &format!(
                    "/api/v1/reports/players/{}/history?limit=1&cursor={c}",
                    tree.player_id
                ),
            )
            .await
            .ok();
        for i in page["items"].as_array().unwrap() {
            kinds.push(i["kind"].as_str().unwrap().to_owned());
        }
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert!(kinds.contains(&"round".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"transfer".to_owned()), "{kinds:?}");

    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("reports ok"), "{out}");
    hub.infra
        .execute("UPDATE report_money SET amount = amount + 1 WHERE kind = 'withdrawal'")
        .await;
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("report_money bucket"), "{out}");
    assert!(out.contains("kind=withdrawal"), "{out}");
    assert!(out.contains(&player2), "{out}");
    hub.infra
        .execute("UPDATE report_money SET amount = amount - 1 WHERE kind = 'withdrawal'")
        .await;
    hub.infra
        .execute("UPDATE report_rounds SET stake = stake + 1")
        .await;
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("report_rounds bucket"), "{out}");
    hub.infra
        .execute("UPDATE report_rounds SET stake = stake - 1")
        .await;
    // The agent rollups: a day's figure that differs is named, with its agent.
    hub.infra
        .execute("UPDATE report_money_agent SET amount = amount + 1 WHERE kind = 'withdrawal'")
        .await;
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("report_money_agent bucket"), "{out}");
    assert!(out.contains(&agent2), "{out}");
    hub.infra
        .execute("UPDATE report_money_agent SET amount = amount - 1 WHERE kind = 'withdrawal'")
        .await;
    hub.infra
        .execute("UPDATE report_rounds_agent SET net = net + 1")
        .await;
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("report_rounds_agent bucket"), "{out}");
    hub.infra
        .execute("UPDATE report_rounds_agent SET net = net - 1")
        .await;
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
}

async fn reports_answer_by_reach(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let other = Tree::create(&api).await;
    let agent2 = create(&api, &tree.admin_token, &tree.admin_id, "agent", "agent2").await;
    let player2 = create(&api, &tree.admin_token, &agent2, "player", "player2").await;
    let p = period();
    let own = format!("client_id={}&{p}", tree.client_id);
    let theirs = format!("client_id={}&{p}", other.client_id);
    let status = |token: &str, name: &str, q: &str| {
        let (api, token, url) = (
            &api,
            token.to_owned(),
            format!("/api/v1/reports/{name}?{q}"),
        );
        async move { api.get(&token, &url).await.status }
    };
    for name in ["client-metrics", "agents", "game-stats", "provider-stats"] {
        assert_eq!(status(&tree.super_token, name, &own).await, 200, "{name}");
        assert_eq!(status(&tree.super_token, name, &p).await, 404, "{name}");
        assert_eq!(status(&tree.admin_token, name, &p).await, 200, "{name}");
        assert_eq!(
            status(&tree.admin_token, name, &theirs).await,
            404,
            "{name}"
        );
        assert_eq!(status(&tree.agent_token, name, &p).await, 200, "{name}");
        assert_eq!(status(&tree.player_token, name, &p).await, 200, "{name}");
        let agent_other = format!("{p}&user_id={player2}");
        assert_eq!(
            status(&tree.agent_token, name, &agent_other).await,
            403,
            "{name}"
        );
        assert_eq!(
            status(&tree.player_token, name, &agent_other).await,
            403,
            "{name}"
        );
        let foreign = format!("{p}&user_id={}", other.player_id);
        assert_eq!(
            status(&tree.agent_token, name, &foreign).await,
            404,
            "{name}"
        );
        let mine = format!("{p}&user_id={}", tree.player_id);
        assert_eq!(status(&tree.agent_token, name, &mine).await, 200, "{name}");
    }
    assert_eq!(status(&tree.super_token, "client-revenue", &own).await, 200);
    assert_eq!(status(&tree.admin_token, "client-revenue", &p).await, 200);
    assert_eq!(
        status(&tree.admin_token, "client-revenue", &theirs).await,
        404
    );
    assert_eq!(status(&tree.agent_token, "client-revenue", &p).await, 403);
    assert_eq!(status(&tree.player_token, "client-revenue", &p).await, 403);
    assert_eq!(
        status(&tree.super_token, "platform-overview", &p).await,
        200
    );
    assert_eq!(
        status(&tree.admin_token, "platform-overview", &p).await,
        403
    );
    let history = |user: &str| format!("/api/v1/reports/players/{user}/history");
    assert_eq!(
        api.get(&tree.player_token, &history(&tree.player_id))
            .await
            .status,
        200
    );
    assert_eq!(
        api.get(&tree.agent_token, &history(&tree.player_id))
            .await
            .status,
        200
    );
    assert_eq!(
        api.get(&tree.player_token, &history(&player2)).await.status,
        403
    );
    assert_eq!(
        api.get(&tree.agent_token, &history(&player2)).await.status,
        403
    );
    assert_eq!(
        api.get(&tree.admin_token, &history(&other.player_id))
            .await
            .status,
        404
    );
    assert_eq!(
        api.get(&tree.super_token, &history(&other.player_id))
            .await
            .status,
        200
    );
    // Bad periods are 422 naming the parameter.
    let bad = api
        .get(
            &tree.admin_token,
            "/api/v1/reports/client-metrics?from=2026-01-02&to=2026-01-01",
        )
        .await;
    bad.error(422, "validation_error");
    let half = api
        .get(
            &tree.admin_token,
            "/api/v1/reports/client-metrics?from=2026-01-01&to=2026-01-02&tz=Asia/Kolkata",
        )
        .await;
    half.error(422, "validation_error");
    // A platform overview lists both clients side by side.
    let o = report(&api, &tree.super_token, "platform-overview", &p).await;
    let ids: Vec<&str> = o["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["client_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&tree.client_id.as_str()) && ids.contains(&other.client_id.as_str()));
}

/// Parses the CSV this hub writes (quoted fields with doubled quotes, CRLF lines).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\r', false) => {}
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => field.push(c),
        }
    }
    rows
}

async fn reports_csv_is_the_json_table(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.player_id, "12.34")
        .await;
    adjust(&api, &tree.admin_token, &tree.player_id, "-0.34").await;
    let q = format!("{}&granularity=hour", period());
    for name in [
        "client-metrics",
        "client-revenue",
        "agents",
        "game-stats",
        "provider-stats",
    ] {
        let json = report(&api, &tree.admin_token, name, &q).await;
        let by_param = api
            .get(
                &tree.admin_token,
                &format!("/api/v1/reports/{name}?{q}&format=csv"),
            )
            .await;
        assert_eq!(by_param.status, 200);
        let text = by_param.body.as_str().unwrap().to_owned();
        let by_accept = api
            .send(
                reqwest::Client::new()
                    .get(format!("{}/api/v1/reports/{name}?{q}", hub.base))
                    .bearer_auth(&tree.admin_token)
                    .header("Accept", "text/csv"),
            )
            .await;
        assert_eq!(by_accept.body.as_str().unwrap(), text);
        let rows = parse_csv(&text);
        let columns: Vec<String> = json["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(rows[0], columns, "{name}");
        let json_rows = json["rows"].as_array().unwrap();
        assert_eq!(rows.len() - 1, json_rows.len(), "{name}");
        for (csv, j) in rows[1..].iter().zip(json_rows) {
            for (c, value) in columns.iter().zip(csv) {
                let expected = match &j[c] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                assert_eq!(value, &expected, "{name}.{c}");
            }
        }
    }
    let m = report(&api, &tree.admin_token, "client-metrics", &q).await;
    assert_eq!(m["rows"].as_array().unwrap().len(), 26);
    assert_eq!(total(&m, "deposits_sum"), 1234);
    assert_eq!(total(&m, "adjustments"), -34);
    assert_eq!(total(&m, "ngr"), 34);
}

/// One random movement of the property test.
#[derive(Debug, Clone)]
enum Op {
    Deposit(usize, i64),
    Withdraw(usize, i64),
    Adjust(usize, i64),
}

async fn reports_equal_a_reference_for_random_movements(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let ops = proptest::collection::vec(
        proptest::prop_oneof![
            (0..3_usize, 1..50_000_i64).prop_map(|(p, a)| Op::Deposit(p, a)),
            (0..3_usize, 1..20_000_i64).prop_map(|(p, a)| Op::Withdraw(p, a)),
            (0..3_usize, -5_000..5_000_i64).prop_map(|(p, a)| Op::Adjust(p, a)),
        ],
        1..14,
    );
    let mut runner = TestRunner::deterministic();
    for case in 0..3 {
        let ops = ops.new_tree(&mut runner).unwrap().current();
        let tree = Tree::create(&api).await;
        // player0 and player1 under the agent, player2 under its sub-agent.
        let sub = create(
            &api,
            &tree.agent_token,
            &tree.agent_id,
            "agent",
            &format!("sub{case}x"),
        )
        .await;
        let mut players = vec![tree.player_id.clone()];
        for (i, parent) in [(1, &tree.agent_id), (2, &sub)] {
            players.push(
                create(
                    &api,
                    &tree.agent_token,
                    parent,
                    "player",
                    &format!("player{i}x"),
                )
                .await,
            );
        }
        let (mut balances, mut deposits, mut withdrawals, mut adjustments) =
            ([0_i64; 3], (0, 0), (0, 0), 0);
        // Per player: deposits and adjustments (the agents report's own figures).
        let (mut deposited, mut adjusted) = ([0_i64; 3], [0_i64; 3]);
        let mut depositors = std::collections::BTreeSet::new();
        let text = |a: i64| {
            format!(
                "{}{}.{:02}",
                if a < 0 { "-" } else { "" },
                a.abs() / 100,
                a.abs() % 100
            )
        };
        for op in &ops {
            match *op {
                Op::Deposit(p, a) => {
                    api.deposit(&tree.admin_token, &players[p], &text(a)).await;
                    balances[p] += a;
                    deposits = (deposits.0 + 1, deposits.1 + a);
                    deposited[p] += a;
                    depositors.insert(p);
                }
                // A movement the wallet cannot cover is refused and moves nothing.
                Op::Withdraw(p, a) if a <= balances[p] => {
                    withdraw(&api, &tree.admin_token, &players[p], &text(a)).await;
                    balances[p] -= a;
                    withdrawals = (withdrawals.0 + 1, withdrawals.1 + a);
                }
                Op::Adjust(p, a) if a != 0 && balances[p] + a >= 0 => {
                    adjust(&api, &tree.admin_token, &players[p], &text(a)).await;
                    balances[p] += a;
                    adjustments += a;
                    adjusted[p] += a;
                }
                _ => {}
            }
        }
        let m = report(&api, &tree.admin_token, "client-metrics", &period()).await;
        let case = format!("case {case}: {ops:?}");
        assert_eq!(total(&m, "deposits"), deposits.0, "{case}");
        assert_eq!(total(&m, "deposits_sum"), deposits.1, "{case}");
        assert_eq!(
            total(&m, "first_time_depositors"),
            depositors.len() as i64,
            "{case}"
        );
        assert_eq!(total(&m, "withdrawals"), withdrawals.0, "{case}");
        assert_eq!(total(&m, "withdrawals_sum"), withdrawals.1, "{case}");
        assert_eq!(total(&m, "adjustments"), adjustments, "{case}");
        assert_eq!(total(&m, "ngr"), -adjustments, "{case}");
        // The agents report from the per-user rows (unaligned edges) and from the agent
        // rollups (whole days): the tree roll-up, each level's own share, to the cent.
        for q in [period(), whole_days()] {
            let a = report(&api, &tree.admin_token, "agents", &q).await;
            let rows = a["rows"].as_array().unwrap();
            assert_eq!(rows.len(), 2, "{case}");
            let (top, below) = (&rows[0], &rows[1]);
            assert_eq!(top["agent_id"], tree.agent_id.as_str(), "{case}");
            assert_eq!(below["agent_id"], sub.as_str(), "{case}");
            let own = |ps: &[usize], of: &[i64; 3]| -> i64 { ps.iter().map(|&p| of[p]).sum() };
            assert_eq!(top["players"], 3, "{case}");
            assert_eq!(top["own_players"], 2, "{case}");
            assert_eq!(below["players"], 1, "{case}");
            assert_eq!(top["deposits"], text(deposits.1), "{case}");
            assert_eq!(
                top["own_deposits"],
                text(own(&[0, 1], &deposited)),
                "{case}"
            );
            assert_eq!(below["deposits"], text(own(&[2], &deposited)), "{case}");
            assert_eq!(below["own_deposits"], text(own(&[2], &deposited)), "{case}");
            assert_eq!(top["ngr"], text(-adjustments), "{case}");
            assert_eq!(top["own_ngr"], text(-own(&[0, 1], &adjusted)), "{case}");
            assert_eq!(below["ngr"], text(-own(&[2], &adjusted)), "{case}");
        }
    }
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
}

backend_tests!(
    reports_agree_with_the_ledger_and_check_names_a_bad_bucket,
    reports_answer_by_reach,
    reports_csv_is_the_json_table,
    reports_equal_a_reference_for_random_movements,
    reports_on_graphql_equal_rest,
    the_report_feed_counts_each_entry_once,
    reports_answer_while_the_feed_job_runs,
    distinct_counts_agree_between_zone_series_and_hourly_marks,
    client_metrics_show_concurrent_websocket_users,
    subtree_metrics_from_agent_rollups_equal_the_per_user_rows,
    distinct_players_over_whole_days_with_days_fed_late,
    player_history_is_one_order_across_pages_csv_and_ties,
    players_kept_per_agent_and_hour_equal_a_count_of_users,
    game_stats_split_per_game_equal_a_reference,
    a_round_resettled_after_its_settlement_adjusts_the_next_period,
);

/// A provider resettles a round after the period it was played in was settled: the settled
/// period's figures stay as posted (a second settlement of it answers the first), the change is
/// the next period's NGR, the revenue report's GGR still agrees with the settlements, and game
/// stats keep the round, with its latest result, in the hour it was played.
async fn a_round_resettled_after_its_settlement_adjusts_the_next_period(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    patch_settings(&api, &tree, json!({ "revenue_share_rate": "0.2" })).await;
    let played_from = now_text(-1_000);
    // A 10.00 bet, lost: the house wins 10.00.
    let placed = play(
        &api,
        &sims,
        &tree.admin_token,
        &tree.player_id,
        &tree.player_token,
        1000,
        0,
    )
    .await;
    assert_eq!(placed["delivered"].as_i64().unwrap(), 2, "{placed}");
    let member = nashub::providers::provider_uid(&tree.player_id);
    let played_at = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let played_to = now_text(0);
    let first = settle(
        &api,
        &tree.super_token,
        &tree.client_id,
        "p1",
        &played_from,
        &played_to,
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["ngr"], "10.00", "{}", first.body);
    assert_eq!(
        first.body["revenue_share"]["amount"], "2.00",
        "{}",
        first.body
    );

    // The provider resettles the bet as won 15.00: the house's result moves by -25.00, now.
    let body = json!({ "event": "bet_settled", "bet": {
        "bet_id": placed["bet_id"], "member_id": member, "stake": 1000, "payout": 2500,
        "status": "won", "placed_at": "", "settled_at": "", "version": 1_000_000 } })
    .to_string();
    let ts = chrono::Utc::now().timestamp();
    let applied = api
        .send(
            api.http
                .post(format!("{}/callbacks/luckysports", hub.base))
                .headers(crate::providers::signed(
                    "op_main",
                    "main-secret",
                    ts,
                    &body,
                ))
                .body(body),
        )
        .await
        .ok();
    assert_eq!(applied["applied"], true, "{applied}");

    // The settled period says what it said.
    let sid = first.body["id"].as_str().unwrap();
    let got = api
        .get(
            &tree.admin_token,
            &format!("/api/v1/clients/{}/settlements/{sid}", tree.client_id),
        )
        .await
        .ok();
    assert_eq!(got["ngr"], "10.00", "{got}");
    assert_eq!(got["revenue_share"]["amount"], "2.00", "{got}");
    let again = settle(
        &api,
        &tree.super_token,
        &tree.client_id,
        "p1-again",
        &played_from,
        &played_to,
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["ngr"], "10.00", "{}", again.body);

    // Before the next period is settled the report shows the change as not settled yet.
    let q = format!("client_id={}&{}&granularity=hour", tree.client_id, period());
    let r = report(&api, &tree.admin_token, "client-revenue", &q).await;
    assert_eq!(total(&r, "ggr"), -1500, "{r}");
    assert_eq!(total(&r, "settlements_ngr"), 1000, "{r}");
    assert_eq!(total(&r, "revenue_share"), 200, "{r}");

    // The next period carries the adjustment: its NGR is the change, and it owes no share.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let next = settle(
        &api,
        &tree.super_token,
        &tree.client_id,
        "p2",
        &played_to,
        &now_text(0),
    )
    .await;
    assert_eq!(next.status, 201, "{}", next.body);
    assert_eq!(next.body["ngr"], "-25.00", "{}", next.body);
    assert_eq!(
        next.body["revenue_share"]["amount"], "0.00",
        "{}",
        next.body
    );
    let r = report(&api, &tree.admin_token, "client-revenue", &q).await;
    assert_eq!(total(&r, "ggr"), -1500, "{r}");
    assert_eq!(total(&r, "settlements_ngr"), total(&r, "ggr"), "{r}");
    assert_eq!(total(&r, "revenue_share"), 200, "{r}");

    // Game stats: one round, its latest stake and result, in the hour it was played.
    let g = report(&api, &tree.admin_token, "game-stats", &q).await;
    let rows = g["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{g}");
    assert_eq!(rows[0]["rounds"], 1, "{g}");
    assert_eq!(rows[0]["turnover"], "10.00", "{g}");
    assert_eq!(rows[0]["wins"], "25.00", "{g}");
    assert_eq!(rows[0]["ggr"], "-15.00", "{g}");
    let start = chrono::DateTime::parse_from_rfc3339(rows[0]["bucket_start"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    assert_eq!(start, played_at - played_at.rem_euclid(HOUR_MS), "{g}");
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
    hub.infra.assert_ledger_ok();
}

/// The players kept per agent (migration 0145) and per hour of registration (0170) equal a
/// count of the users after players are created under different agents (over the API and in
/// bulk), the agents report and client metrics show them, `check-reports` names a tampered row,
/// and the migrations' backfills give the rows kept.
async fn players_kept_per_agent_and_hour_equal_a_count_of_users(backend: Backend) {
    use nashub::domain::{Role, UserStatus, new_id, now_ms};
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    // agent1 > (player1, p2, sub > (p3, p4, p5)); agent2 > (p6, two in bulk).
    let sub = create(&api, &tree.admin_token, &tree.agent_id, "agent", "subk").await;
    let agent2 = create(&api, &tree.admin_token, &tree.admin_id, "agent", "agent2k").await;
    create(&api, &tree.admin_token, &tree.agent_id, "player", "p2k").await;
    for name in ["p3k", "p4k", "p5k"] {
        create(&api, &tree.admin_token, &sub, "player", name).await;
    }
    create(&api, &tree.admin_token, &tree.agent_id, "agent", "emptyk").await;
    create(&api, &tree.admin_token, &agent2, "player", "p6k").await;
    let store = hub.infra.store().await;
    let parent = store.user(&agent2).await.unwrap().unwrap();
    let bulk: Vec<nashub::store::UserRow> = (0..2)
        .map(|i| {
            let id = new_id();
            nashub::store::UserRow {
                path: format!("{}{id}/", parent.path),
                id,
                client_id: Some(tree.client_id.clone()),
                login_scope: tree.client_id.clone(),
                parent_id: Some(agent2.clone()),
                depth: parent.depth + 1,
                role: Role::Player,
                username: format!("bulk{i}k"),
                password_hash: "-".into(),
                status: UserStatus::Active,
                created_at: now_ms(),
            }
        })
        .collect();
    store.insert_users_bulk(&bulk).await.unwrap();

    let kept = || async {
        let mut out = BTreeMap::new();
        for agent in [&tree.agent_id, &sub, &agent2, &tree.admin_id] {
            let n: i64 = hub
                .infra
                .query_one(&format!(
                    "SELECT COALESCE(MAX(n), 0) FROM report_players_agent \
                     WHERE client_id = '{}' AND agent_id = '{agent}'",
                    tree.client_id
                ))
                .await;
            let counted: i64 = hub
                .infra
                .query_one(&format!(
                    "SELECT COUNT(*) FROM users WHERE role = 'player' AND parent_id = '{agent}'"
                ))
                .await;
            assert_eq!(n, counted, "{agent}");
            out.insert(agent.clone(), n);
        }
        out
    };
    let expected: BTreeMap<String, i64> = [
        (tree.agent_id.clone(), 2),
        (sub.clone(), 3),
        (agent2.clone(), 3),
        (tree.admin_id.clone(), 0),
    ]
    .into();
    assert_eq!(kept().await, expected);
    // The report's own and rolled-up players.
    let q = format!("client_id={}&{}", tree.client_id, whole_days());
    let a = report(&api, &tree.admin_token, "agents", &q).await;
    let players: BTreeMap<String, (i64, i64)> = a["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["username"].as_str().unwrap().to_owned(),
                (
                    r["own_players"].as_i64().unwrap(),
                    r["players"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(
        players,
        [
            ("agent1".to_owned(), (2, 5)),
            ("subk".to_owned(), (3, 3)),
            ("emptyk".to_owned(), (0, 0)),
            ("agent2k".to_owned(), (3, 3)),
        ]
        .into(),
        "{a}"
    );

    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
    let tamper = |delta: i64| {
        format!("UPDATE report_players_agent SET n = n + {delta} WHERE agent_id = '{sub}'")
    };
    hub.infra.execute(&tamper(1)).await;
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("report_players_agent"), "{out}");
    assert!(out.contains(&sub), "{out}");
    assert!(out.contains("kept Some(4), counted Some(3)"), "{out}");
    hub.infra.execute(&tamper(-1)).await;
    // The migration's backfill over these users gives the rows kept.
    let migration = if hub.infra.database_url.starts_with("sqlite:") {
        include_str!("../../migrations/sqlite/0145_report_players_agent.sql")
    } else {
        include_str!("../../migrations/mysql/0145_report_players_agent.sql")
    };
    hub.infra.execute("DELETE FROM report_players_agent").await;
    replay_backfill(&hub.infra, migration).await;
    assert_eq!(kept().await, expected);
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");

    // Per hour: tree's player, p2k, p3k-p5k, p6k and two in bulk.
    let registered = || async {
        let kept: i64 = hub
            .infra
            .query_one(&format!(
                "SELECT CAST(COALESCE(SUM(n), 0) AS SIGNED) FROM report_counts \
                 WHERE client_id = '{}' AND series = 'registered'",
                tree.client_id
            ))
            .await;
        let counted: i64 = hub
            .infra
            .query_one(&format!(
                "SELECT COUNT(*) FROM users WHERE client_id = '{}' AND role = 'player'",
                tree.client_id
            ))
            .await;
        assert_eq!(kept, counted);
        kept
    };
    assert_eq!(registered().await, 8);
    let m = report(&api, &tree.admin_token, "client-metrics", &q).await;
    let shown: i64 = m["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["new_players"].as_i64().unwrap())
        .sum();
    assert_eq!(shown, 8, "{m}");
    let last = m["rows"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["registered"], 8, "{m}");
    let tamper = format!(
        "UPDATE report_counts SET n = n + 1 WHERE client_id = '{}' AND series = 'registered'",
        tree.client_id
    );
    hub.infra.execute(&tamper).await;
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("report_counts") && out.contains("registered"),
        "{out}"
    );
    // One statement for both backends.
    let migration = include_str!("../../migrations/sqlite/0170_report_registrations.sql");
    assert_eq!(
        migration,
        include_str!("../../migrations/mysql/0170_report_registrations.sql")
    );
    hub.infra
        .execute("DELETE FROM report_counts WHERE series = 'registered'")
        .await;
    replay_backfill(&hub.infra, migration).await;
    assert_eq!(registered().await, 8);
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
}

/// The GraphQL field and selection of each REST report.
fn graphql_report(name: &str) -> (&'static str, &'static str) {
    const METRICS: &str = "bucketStart bucketEnd registered newPlayers activePlayers \
        depositingPlayers deposits depositsSum firstTimeDepositors withdrawals withdrawalsSum \
        rounds turnover wins ggr adjustments ngr peakWsUsers avgWsUsers";
    const TOTALS: &str = "players deposits turnover ggr ngr";
    match name {
        "client-metrics" => ("clientMetrics", METRICS),
        "client-revenue" => (
            "clientRevenue",
            "bucketStart bucketEnd ggr adjustments ngr settledGgr unsettledGgr settlementsNgr \
             commissions revenueShare clientNet",
        ),
        "agents" => ("agentsReport", agents_selection(TOTALS)),
        "game-stats" => (
            "gameStats",
            "bucketStart bucketEnd provider game rounds players turnover wins rtp ggr",
        ),
        "provider-stats" => (
            "providerStats",
            "bucketStart bucketEnd provider rounds players turnover wins rtp ggr",
        ),
        other => panic!("{other}"),
    }
}

fn agents_selection(totals: &str) -> &'static str {
    // Leaked once per call: a test's handful of strings.
    Box::leak(
        format!(
            "agentId username parentId depth own {{ {totals} }} total {{ {totals} }} \
             commissionEarned commissionPaid"
        )
        .into_boxed_str(),
    )
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars() {
        if ch.is_ascii_uppercase() {
            out.push('_');
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// A GraphQL report row as the REST row (snake_case keys; an agent's `own`/`total` flattened
/// into `own_<x>`/`<x>`; a null parent as REST's empty text).
fn as_rest_row(row: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in row.as_object().unwrap() {
        match (k.as_str(), v) {
            ("own" | "total", Value::Object(inner)) => {
                for (ik, iv) in inner {
                    let key = if k == "own" {
                        format!("own_{}", snake(ik))
                    } else {
                        snake(ik)
                    };
                    out.insert(key, iv.clone());
                }
            }
            ("parentId", Value::Null) => {
                out.insert("parent_id".into(), Value::from(""));
            }
            _ => {
                out.insert(snake(k), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Every report through `/graphql` answers as REST: the same refusals (status and code in
/// `extensions`) for every caller and scope, and the same rows when allowed.
async fn reports_on_graphql_equal_rest(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let other = Tree::create(&api).await;
    let agent2 = create(&api, &tree.admin_token, &tree.admin_id, "agent", "agent2").await;
    let player2 = create(&api, &tree.admin_token, &agent2, "player", "player2").await;
    play(
        &api,
        &sims,
        &tree.admin_token,
        &tree.player_id,
        &tree.player_token,
        1000,
        300,
    )
    .await;
    api.deposit(&tree.admin_token, &player2, "40").await;
    adjust(&api, &tree.admin_token, &tree.player_id, "2.25").await;

    let now = chrono::Utc::now().timestamp_millis();
    let hour = now - now.rem_euclid(HOUR_MS);
    let t = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let (from, to) = (t(hour - 24 * HOUR_MS), t(hour + 2 * HOUR_MS));
    let callers = [
        ("super", tree.super_token.as_str()),
        ("admin", tree.admin_token.as_str()),
        ("agent", tree.agent_token.as_str()),
        ("player", tree.player_token.as_str()),
    ];
    let scopes: [(Option<&str>, Option<&str>); 5] = [
        (None, None),
        (Some(tree.client_id.as_str()), None),
        (Some(other.client_id.as_str()), None),
        (None, Some(tree.player_id.as_str())),
        (None, Some(player2.as_str())),
    ];
    let mut compared = 0;
    for name in [
        "client-metrics",
        "client-revenue",
        "agents",
        "game-stats",
        "provider-stats",
    ] {
        let (field, selection) = graphql_report(name);
        for (who, token) in callers {
            for (client, user) in scopes {
                let mut q = format!("from={from}&to={to}&granularity=hour");
                let mut input = json!({ "from": from, "to": to, "granularity": "hour" });
                if let Some(c) = client {
                    q.push_str(&format!("&client_id={c}"));
                    input["clientId"] = json!(c);
                }
                if let Some(u) = user {
                    q.push_str(&format!("&user_id={u}"));
                    input["userId"] = json!(u);
                }
                let rest = api.get(token, &format!("/api/v1/reports/{name}?{q}")).await;
                let gql = api
                    .post(
                        token,
                        "/graphql",
                        json!({
                            "query": format!(
                                "query($i: ReportInput!) {{ {field}(input: $i) {{ \
                                 info {{ clientId currency tz granularity }} rows {{ {selection} }} }} }}"
                            ),
                            "variables": { "i": input },
                        }),
                    )
                    .await;
                assert_eq!(gql.status, 200, "{}", gql.body);
                let case = format!("{name} {who} client={client:?} user={user:?}");
                match gql.body["errors"].as_array().and_then(|e| e.first()) {
                    Some(e) => {
                        assert_ne!(rest.status, 200, "{case}: REST allowed, GraphQL {e}");
                        assert_eq!(
                            e["extensions"]["status"].as_u64(),
                            Some(u64::from(rest.status)),
                            "{case}: {e}"
                        );
                        assert_eq!(
                            e["extensions"]["code"], rest.body["error"]["code"],
                            "{case}"
                        );
                    }
                    None => {
                        assert_eq!(rest.status, 200, "{case}: {}", rest.body);
                        let data = &gql.body["data"][field];
                        assert_eq!(data["info"]["clientId"], rest.body["client_id"], "{case}");
                        assert_eq!(data["info"]["currency"], rest.body["currency"], "{case}");
                        let rows: Vec<Value> = data["rows"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(as_rest_row)
                            .collect();
                        assert_eq!(&Value::from(rows), &rest.body["rows"], "{case}");
                        compared += 1;
                    }
                }
            }
        }
    }
    // Allowed cases outnumber refusals; the data compared is not empty.
    assert!(compared >= 30, "{compared}");
    let m = report(
        &api,
        &tree.admin_token,
        "client-metrics",
        &format!("from={from}&to={to}"),
    )
    .await;
    assert_eq!(total(&m, "deposits"), 2);

    // The platform overview and a player's history.
    let overview = api
        .post(
            &tree.super_token,
            "/graphql",
            json!({ "query": format!(
                "{{ platformOverview(from: \"{from}\", to: \"{to}\") {{ rows {{ clientId totals {{ depositsSum ngr }} revenueShare }} }} }}"
            ) }),
        )
        .await
        .ok();
    let rest = report(
        &api,
        &tree.super_token,
        "platform-overview",
        &format!("from={from}&to={to}"),
    )
    .await;
    let gql_rows = overview["data"]["platformOverview"]["rows"]
        .as_array()
        .unwrap();
    assert_eq!(gql_rows.len(), rest["rows"].as_array().unwrap().len());
    for (g, r) in gql_rows.iter().zip(rest["rows"].as_array().unwrap()) {
        assert_eq!(g["clientId"], r["client_id"]);
        assert_eq!(g["totals"]["depositsSum"], r["deposits_sum"]);
        assert_eq!(g["totals"]["ngr"], r["ngr"]);
        assert_eq!(g["revenueShare"], r["revenue_share"]);
    }
    let refused = api
        .post(
            &tree.admin_token,
            "/graphql",
            json!({ "query": format!("{{ platformOverview(from: \"{from}\", to: \"{to}\") {{ rows {{ clientId }} }} }}") }),
        )
        .await
        .ok();
    assert_eq!(refused["errors"][0]["extensions"]["status"], 403);

    let history = |token: &str, user: &str, after: Option<&str>| {
        let (api, token) = (&api, token.to_owned());
        let body = json!({
            "query": "query($u: String!, $a: String) { playerHistory(userId: $u, first: 1, after: $a) { currency items { at kind id provider detail amount net } nextCursor } }",
            "variables": { "u": user, "a": after },
        });
        async move { api.post(&token, "/graphql", body).await.ok() }
    };
    let page1 = history(&tree.agent_token, &tree.player_id, None).await;
    let rest1 = api
        .get(
            &tree.agent_token,
            &format!("/api/v1/reports/players/{}/history?limit=1", tree.player_id),
        )
        .await
        .ok();
    let p1 = &page1["data"]["playerHistory"];
    assert_eq!(p1["items"], rest1["items"], "{page1}");
    assert_eq!(p1["nextCursor"], rest1["next_cursor"]);
    assert!(p1["nextCursor"].is_string(), "{page1}");
    let page2 = history(
        &tree.agent_token,
        &tree.player_id,
        p1["nextCursor"].as_str(),
    )
    .await;
    assert_ne!(page2["data"]["playerHistory"]["items"], p1["items"]);
    let foreign = history(&tree.player_token, &player2, None).await;
    assert_eq!(
        foreign["errors"][0]["extensions"]["status"], 403,
        "{foreign}"
    );
}

/// The money path leaves the rollups to the report feed: committed entries wait (`rolled_up =
/// 0`, and on SQLite after the feed's cursor) while no feed runs, a report takes them in first (and shows them), and two
/// nodes feeding one backlog at once in small transactions count every entry exactly once.
async fn the_report_feed_counts_each_entry_once(backend: Backend) {
    let infra = Infra::new(backend).await;
    let quiet = HubProcess::start_with_env(&infra, &[("NASHUB_BENCH_REPORT_ROLLUPS", "false")]);
    let api = quiet.api();
    let tree = Tree::create(&api).await;
    let deposits = |n: usize| {
        let (api, token, player) = (
            api.clone(),
            tree.admin_token.clone(),
            tree.player_id.clone(),
        );
        async move {
            futures_util::future::join_all((0..n).map(|_| api.deposit(&token, &player, "1.00")))
                .await;
        }
    };
    // Waiting: marked 0 on MySQL; after the feed's cursor on SQLite (migration 0130).
    let waiting_sql = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM journal WHERE rolled_up = 0 \
             AND rowid > (SELECT journal_rowid FROM report_feed_cursor)"
        }
        Backend::MySql => "SELECT COUNT(*) FROM journal WHERE rolled_up = 0",
    };
    let waiting = || infra.query_one::<i64>(waiting_sql);
    let fed_sql = format!(
        "SELECT CAST(COALESCE(SUM(n), 0) AS SIGNED) FROM report_money WHERE kind = 'deposit' AND user_id = '{}'",
        tree.player_id
    );
    let fed = || infra.query_one::<i64>(&fed_sql);
    deposits(40).await;
    assert!(waiting().await >= 40);
    assert_eq!(fed().await, 0, "the money path wrote a rollup");
    // Each journal row carries its rollup amount (the feed reads no postings); rows written
    // before that column (NULL) are summed from their postings.
    assert_eq!(
        infra
            .query_one::<i64>(&format!(
                "SELECT COUNT(*) FROM journal WHERE subject_account_id = 'w:{}' \
                 AND kind = 'deposit' AND rollup_amount = 100",
                tree.player_id
            ))
            .await,
        40
    );
    infra
        .execute(&format!(
            "UPDATE journal SET rollup_amount = NULL WHERE subject_account_id = 'w:{}' \
             AND kind = 'deposit' AND rolled_up = 0 AND id < (SELECT m FROM (SELECT MAX(id) AS m \
             FROM journal WHERE subject_account_id = 'w:{}') AS x)",
            tree.player_id, tree.player_id
        ))
        .await;
    let m = report(&api, &tree.admin_token, "client-metrics", &period()).await;
    assert_eq!(total(&m, "deposits"), 40);
    assert_eq!(total(&m, "deposits_sum"), 4000);
    assert_eq!(waiting().await, 0);
    assert_eq!(fed().await, 40);

    // Two feeding nodes while 300 deposits commit through the third.
    let feeders = [
        ("NASHUB_REPORT_FEED_INTERVAL_MS", "2"),
        ("NASHUB_REPORT_FEED_BATCH", "7"),
    ];
    let a = HubProcess::start_with_env(&infra, &feeders);
    let b = HubProcess::start_with_env(&infra, &feeders);
    deposits(300).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while waiting().await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the feed did not drain"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(fed().await, 340);
    // The two feeding nodes took the 300 between them, each entry once.
    // Each feed transaction counts its entries once committed (the quiet node's catch-up of the
    // first 40 is its own).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut by_nodes = 0.0;
        for node in [&a, &b] {
            let metrics = reqwest::get(format!("{}/metrics", node.base))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            by_nodes += metric_value(&metrics, "report_feed_entries_total").unwrap_or(0.0);
        }
        assert!(by_nodes <= 300.0, "entries fed twice: {by_nodes}");
        if by_nodes == 300.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the jobs counted {by_nodes}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (code, out) = infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
}

/// A report catches the feed up while the node's own feed job runs back to back (here every
/// millisecond, three entries at a time, under a stream of deposits): the two take turns, so
/// every report answers, and the last shows every deposit. (Racing from one cursor, a catch-up
/// lost to the job's commits on every retry and the report failed with 503.)
async fn reports_answer_while_the_feed_job_runs(backend: Backend) {
    let infra = Infra::new(backend).await;
    let hub = HubProcess::start_with_env(
        &infra,
        &[
            ("NASHUB_REPORT_FEED_INTERVAL_MS", "1"),
            ("NASHUB_REPORT_FEED_BATCH", "3"),
        ],
    );
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let depositor = {
        let (api, token, player, done) = (
            api.clone(),
            tree.admin_token.clone(),
            tree.player_id.clone(),
            done.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                futures_util::future::join_all(
                    (0..8).map(|_| api.deposit(&token, &player, "1.00")),
                )
                .await;
                n += 8;
            }
            n
        })
    };
    let mut answered = 0;
    for _ in 0..40 {
        let r = api
            .get(
                &tree.admin_token,
                &format!("/api/v1/reports/client-metrics?{}", period()),
            )
            .await;
        assert_eq!(r.status, 200, "a report during feeding: {}", r.body);
        answered += 1;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = depositor.await.unwrap();
    assert!(
        n >= 40 && answered == 40,
        "{n} deposits, {answered} reports"
    );
    let m = report(&api, &tree.admin_token, "client-metrics", &period()).await;
    assert_eq!(total(&m, "deposits"), n);
    assert_eq!(total(&m, "deposits_sum"), n * 100);
}

/// A client-wide report reads its distinct players from the feed's counts when its buckets are
/// whole days, weeks or months of the client's zone (a client's series is whole from its
/// start), and from the hourly marks otherwise (here: after the zone changed, which starts a new
/// series at the next hour): both give the same figures.
async fn distinct_counts_agree_between_zone_series_and_hourly_marks(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let p2 = create(
        &api,
        &tree.admin_token,
        &tree.agent_id,
        "player",
        "player_two",
    )
    .await;
    let p3 = create(
        &api,
        &tree.admin_token,
        &tree.agent_id,
        "player",
        "player_three",
    )
    .await;
    // Active: the player (money and a round), p2 (a deposit), p3 (an adjustment); depositing:
    // the player, p2 and the agent (a wallet user, not a player).
    play(
        &api,
        &sims,
        &tree.admin_token,
        &tree.player_id,
        &tree.player_token,
        500,
        0,
    )
    .await;
    api.deposit(&tree.admin_token, &p2, "5").await;
    api.deposit(&tree.admin_token, &tree.agent_id, "5").await;
    adjust(&api, &tree.admin_token, &p3, "1").await;

    let now = chrono::Utc::now();
    let day = now.date_naive();
    let monday = day
        - chrono::Duration::days(i64::from(
            chrono::Datelike::weekday(&day).num_days_from_monday(),
        ));
    let first = chrono::NaiveDate::from_ymd_opt(
        chrono::Datelike::year(&day),
        chrono::Datelike::month(&day),
        1,
    )
    .unwrap();
    let next_month = first + chrono::Months::new(1);
    let periods = [
        ("day", day, day + chrono::Duration::days(1)),
        ("week", monday, monday + chrono::Duration::days(7)),
        ("month", first, next_month),
    ];
    let figures = |m: &Value| -> Vec<(i64, i64, i64, i64)> {
        m["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["active_players"].as_i64().unwrap(),
                    r["depositing_players"].as_i64().unwrap(),
                    r["first_time_depositors"].as_i64().unwrap(),
                    r["new_players"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let mut from_series = Vec::new();
    for (g, from, to) in periods {
        let q = format!("from={from}&to={to}&granularity={g}");
        let m = report(&api, &tree.admin_token, "client-metrics", &q).await;
        assert_eq!(figures(&m), vec![(3, 3, 3, 3)], "{g}: {m}");
        from_series.push(figures(&m));
        let games = report(&api, &tree.admin_token, "game-stats", &q).await;
        assert_eq!(games["rows"][0]["players"], 1, "{g}: {games}");
        assert_eq!(games["rows"][0]["provider"], "luckysports", "{g}: {games}");
    }
    // A new zone: its series is whole only from the next hour, so today's buckets in UTC now
    // count distinct users from the hourly marks.
    api.patch(
        &tree.super_token,
        &format!("/api/v1/clients/{}/settings", tree.client_id),
        json!({ "timezone": "Europe/Berlin" }),
    )
    .await
    .ok();
    api.deposit(&tree.admin_token, &p2, "1").await;
    let zone: String = hub
        .infra
        .query_one(&format!(
            "SELECT zone FROM report_zone_series WHERE client_id = '{}'",
            tree.client_id
        ))
        .await;
    // The deposit was fed (by the report below at the latest) under the new zone.
    let _ = report(
        &api,
        &tree.admin_token,
        "client-metrics",
        "from=2026-01-01&to=2026-01-02",
    )
    .await;
    let zone_after: String = hub
        .infra
        .query_one(&format!(
            "SELECT zone FROM report_zone_series WHERE client_id = '{}'",
            tree.client_id
        ))
        .await;
    assert_eq!(zone_after, "Europe/Berlin", "before the feed: {zone}");
    for ((g, from, to), expected) in periods.into_iter().zip(&from_series) {
        let q = format!("from={from}&to={to}&granularity={g}");
        let m = report(&api, &tree.admin_token, "client-metrics", &q).await;
        assert_eq!(&figures(&m), expected, "{g}: {m}");
        let games = report(&api, &tree.admin_token, "game-stats", &q).await;
        assert_eq!(games["rows"][0]["players"], 1, "{g}: {games}");
    }
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
    // A count that disagrees with its marks, and a zone series' mark lost, are named.
    let client = &tree.client_id;
    for (tamper, named, undo) in [
        (
            format!(
                "UPDATE report_counts SET n = n + 1 WHERE client_id = '{client}' AND series = 'active:d:UTC'"
            ),
            "report_counts",
            format!(
                "UPDATE report_counts SET n = n - 1 WHERE client_id = '{client}' AND series = 'active:d:UTC'"
            ),
        ),
        (
            format!(
                "UPDATE report_money_client SET amount = amount + 1 WHERE client_id = '{client}' AND kind = 'deposit'"
            ),
            "report_money_client",
            format!(
                "UPDATE report_money_client SET amount = amount - 1 WHERE client_id = '{client}' AND kind = 'deposit'"
            ),
        ),
    ] {
        hub.infra.execute(&tamper).await;
        let (code, out) = hub.infra.run_nashub("check-reports");
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains(named), "{named}: {out}");
        hub.infra.execute(&undo).await;
    }
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
}

/// Concurrent websocket users: each node samples its live users per client; client metrics
/// show the peak and the average over the bucket's elapsed minutes.
async fn client_metrics_show_concurrent_websocket_users(backend: Backend) {
    let hub = TestHub::start_with(backend, |s| s.report_ws_sample_secs = 1).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let other = create(&api, &tree.admin_token, &tree.agent_id, "player", "watcher").await;
    let other_token = api.token(Some(&tree.code), "watcher").await;
    let mut a = WsClient::connect(&ws_url(&hub.base, &tree.player_token)).await;
    let mut b = WsClient::connect(&ws_url(&hub.base, &other_token)).await;
    // A second socket of the same player is the same user.
    let mut c = WsClient::connect(&ws_url(&hub.base, &tree.player_token)).await;
    for ws in [&mut a, &mut b, &mut c] {
        ws.next_of("subscribed").await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let now = chrono::Utc::now().timestamp_millis();
    let hour = now - now.rem_euclid(HOUR_MS);
    let t = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let q = format!("from={}&to={}&granularity=hour", t(hour), t(hour + HOUR_MS));
    let m = report(&api, &tree.admin_token, "client-metrics", &q).await;
    let row = &m["rows"][0];
    assert_eq!(row["peak_ws_users"], 2, "{m}");
    let avg: f64 = row["avg_ws_users"].as_str().unwrap().parse().unwrap();
    assert!(avg > 0.0 && avg <= 2.0, "{m}");
    // Another client's report does not see them.
    let theirs = Tree::create(&api).await;
    let m = report(&api, &theirs.admin_token, "client-metrics", &q).await;
    assert_eq!(m["rows"][0]["peak_ws_users"], 0, "{m}");
    drop((a, b, c, other));
}

/// An agent subtree's client metrics (agent days, per-agent counts, registrations counted in
/// SQL) equal the same report from every user's hourly rows, for each granularity, a zone that
/// is not the client's and unaligned edges: entries moved in time before they are fed land on
/// either side of midnight and a late deposit moves a first deposit earlier; a round arrives
/// after its hour was fed. `check-reports` names a tampered per-agent count.
async fn subtree_metrics_from_agent_rollups_equal_the_per_user_rows(backend: Backend) {
    use nashub::reports::{Period, Scope, client_metrics, client_metrics_per_user};
    use nashub::store::reports::ReportUsers;
    const DAY_MS: i64 = 24 * HOUR_MS;
    let sims = start_sims();
    let accounts = crate::providers::accounts(&sims);
    let hub = TestHub::start_with(backend, move |s| {
        s.providers = accounts;
        s.provider_reconcile_interval_ms = 200;
        // Entries wait for a report to feed them: the test moves some in time first.
        s.report_feed_interval_ms = 3_600_000;
    })
    .await;
    sims.ls
        .set_callback_url(&format!("{}/callbacks/luckysports", hub.base));
    let api = hub.api();
    let tree = Tree::create(&api).await;
    // agent > (player, p3, sub > p2); agent2 > p4, outside the agent's subtree.
    let sub = create(&api, &tree.admin_token, &tree.agent_id, "agent", "subx").await;
    let p2 = create(&api, &tree.admin_token, &sub, "player", "p2x").await;
    let p3 = create(&api, &tree.admin_token, &tree.agent_id, "player", "p3x").await;
    let agent2 = create(&api, &tree.admin_token, &tree.admin_id, "agent", "agent2x").await;
    let p4 = create(&api, &tree.admin_token, &agent2, "player", "p4x").await;
    let now = chrono::Utc::now().timestamp_millis();
    let midnight = now - now.rem_euclid(DAY_MS);
    let client = tree.client_id.clone();
    // The entries written since `since` (not fed yet) happen at `at`.
    let shift = |since: i64, at: i64| {
        format!(
            "UPDATE journal SET created_at = {at} WHERE client_id = '{client}' AND created_at >= {since}"
        )
    };
    // The last millisecond of yesterday.
    let t = chrono::Utc::now().timestamp_millis();
    api.deposit(&tree.admin_token, &tree.player_id, "10").await;
    api.deposit(&tree.admin_token, &tree.agent_id, "5").await;
    adjust(&api, &tree.admin_token, &p3, "1").await;
    api.deposit(&tree.admin_token, &p4, "7").await;
    hub.infra.execute(&shift(t, midnight - 1)).await;
    report(&api, &tree.admin_token, "client-metrics", &period()).await;
    // Midnight itself.
    let t = chrono::Utc::now().timestamp_millis();
    api.deposit(&tree.admin_token, &p2, "20").await;
    withdraw(&api, &tree.admin_token, &tree.player_id, "3").await;
    hub.infra.execute(&shift(t, midnight)).await;
    report(&api, &tree.admin_token, "client-metrics", &period()).await;
    // Now: a round, then another after its hour was fed.
    play(
        &api,
        &sims,
        &tree.admin_token,
        &tree.player_id,
        &tree.player_token,
        500,
        0,
    )
    .await;
    report(&api, &tree.admin_token, "client-metrics", &period()).await;
    let placed = place_bet(
        &sims,
        &nashub::providers::provider_uid(&tree.player_id),
        300,
        700,
        None,
    )
    .await;
    assert!(placed["delivered"].as_i64().unwrap() >= 2, "{placed}");
    // Late: p2's deposit three days back (its first deposit moves earlier), p3's first.
    let t = chrono::Utc::now().timestamp_millis();
    api.deposit(&tree.admin_token, &p2, "4").await;
    hub.infra
        .execute(&shift(t, midnight - 3 * DAY_MS + 5))
        .await;
    let t = chrono::Utc::now().timestamp_millis();
    api.deposit(&tree.admin_token, &p3, "2").await;
    hub.infra
        .execute(&shift(t, midnight - 2 * DAY_MS - 2 * HOUR_MS))
        .await;
    report(&api, &tree.admin_token, "client-metrics", &period()).await;

    let store = hub.infra.store().await;
    let row = store.client(&client).await.unwrap().unwrap();
    let t = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let d = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    let periods = [
        (
            d(midnight - 5 * DAY_MS),
            d(midnight + 2 * DAY_MS),
            None,
            "day",
        ),
        (
            t(midnight - 3 * DAY_MS + 2 * HOUR_MS),
            t(midnight + DAY_MS + 3 * HOUR_MS),
            None,
            "day",
        ),
        (t(midnight - 4 * DAY_MS), t(midnight + DAY_MS), None, "hour"),
        (
            d(midnight - 10 * DAY_MS),
            d(midnight + 5 * DAY_MS),
            None,
            "week",
        ),
        (
            d(midnight - 40 * DAY_MS),
            d(midnight + 2 * DAY_MS),
            None,
            "month",
        ),
        (
            d(midnight - 5 * DAY_MS),
            d(midnight + 2 * DAY_MS),
            Some("Europe/Berlin"),
            "day",
        ),
    ];
    // (subtree root, first-time depositors over the first period)
    for (root, firsts) in [(&tree.agent_id, 4), (&sub, 1), (&agent2, 1)] {
        let path = store.user(root).await.unwrap().unwrap().path;
        let scope = Scope {
            client: row.clone(),
            users: ReportUsers::Subtree(path),
        };
        for (i, (from, to, tz, g)) in periods.iter().enumerate() {
            let period = Period::parse(from, to, *tz, Some(*g)).unwrap();
            let got = client_metrics(&store, &scope, &period).await.unwrap();
            let reference = client_metrics_per_user(&store, &scope, &period)
                .await
                .unwrap();
            assert_eq!(got, reference, "{root} {from}..{to} {tz:?} {g}");
            if i == 0 {
                let sum: i64 = got.iter().map(|r| r.first_time_depositors).sum();
                assert_eq!(sum, firsts, "{root}: {got:?}");
            }
        }
    }
    // The subtree's day across midnight: the player and the agent deposited on one side, p2
    // on the other.
    let path = store.user(&tree.agent_id).await.unwrap().unwrap().path;
    let scope = Scope {
        client: row.clone(),
        users: ReportUsers::Subtree(path),
    };
    let period = Period::parse(&d(midnight - DAY_MS), &d(midnight + DAY_MS), None, None).unwrap();
    let got = client_metrics(&store, &scope, &period).await.unwrap();
    assert_eq!(
        got.iter()
            .map(|r| (r.depositing_players, r.deposits, r.first_time_depositors))
            .collect::<Vec<_>>(),
        vec![(2, 2, 2), (2, 2, 0)],
        "{got:?}"
    );

    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
    let tamper = |delta: i64| {
        format!(
            "UPDATE report_counts_agent SET n = n + {delta} WHERE client_id = '{client}' \
             AND agent_id = '{sub}' AND series = 'first_deposit'"
        )
    };
    hub.infra.execute(&tamper(1)).await;
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("report_counts_agent"), "{out}");
    assert!(out.contains(&sub), "{out}");
    hub.infra.execute(&tamper(-1)).await;
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
    // The migration's backfill over this data gives the rows the feed kept (a first deposit
    // moved earlier left a zero).
    let migration = if hub.infra.database_url.starts_with("sqlite:") {
        include_str!("../../migrations/sqlite/0131_report_counts_agent.sql")
    } else {
        include_str!("../../migrations/mysql/0131_report_counts_agent.sql")
    };
    let kept: i64 = hub
        .infra
        .query_one("SELECT COUNT(*) FROM report_counts_agent WHERE n <> 0")
        .await;
    hub.infra.execute("DELETE FROM report_counts_agent").await;
    replay_backfill(&hub.infra, migration).await;
    let backfilled: i64 = hub
        .infra
        .query_one("SELECT COUNT(*) FROM report_counts_agent WHERE n <> 0")
        .await;
    assert!(
        kept > 0 && backfilled == kept,
        "{kept} rows kept, {backfilled} backfilled"
    );
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
}

/// Distinct players over runs of whole days from the day spans (migration 0135), with rounds
/// fed in random batches in random day order (days fed after later ones included): every
/// bucket of client metrics (whole weeks and months read the counts, other runs of days the
/// spans) and the platform overview equal the players counted here; `check-reports`
/// recomputes the spans from the marks and names a tampered row.
async fn distinct_players_over_whole_days_with_days_fed_late(backend: Backend) {
    const DAY_MS: i64 = 24 * HOUR_MS;
    const DAYS: u64 = 20;
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let now = chrono::Utc::now().timestamp_millis();
    let today = now - now.rem_euclid(DAY_MS);
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut rng = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let date = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    let instant = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let mut last_client = String::new();
    let mut tamper_day = 0;
    for case in 0..2 {
        let tree = Tree::create(&api).await;
        let client = tree.client_id.clone();
        let mut players = vec![tree.player_id.clone()];
        for i in 0..5 {
            let name = format!("late{case}x{i}");
            players.push(create(&api, &tree.admin_token, &tree.agent_id, "player", &name).await);
        }
        // Today: two players deposit (active and depositing), fed before the rounds of the
        // days before, which are then all late for them.
        let depositors = [0_usize, 2];
        for p in depositors {
            api.deposit(&tree.admin_token, &players[p], "5").await;
        }
        let _ = report(&api, &tree.admin_token, "client-metrics", &period()).await;
        let mut rounds: Vec<(usize, i64)> = Vec::new();
        for p in 0..players.len() {
            for _ in 0..rng(8) {
                let day = today - (1 + rng(DAYS) as i64) * DAY_MS;
                rounds.push((p, day + rng(DAY_MS as u64) as i64));
            }
        }
        for i in (1..rounds.len()).rev() {
            rounds.swap(i, rng(i as u64 + 1) as usize);
        }
        let mut rest = &rounds[..];
        let mut n = 0;
        while !rest.is_empty() {
            let k = 1 + rng(rest.len() as u64) as usize;
            let values: Vec<String> = rest[..k]
                .iter()
                .map(|(p, at)| {
                    n += 1;
                    format!(
                        "('{client}', 'latefeed', 'r{n}', '{}', 1, 'settled', 0, 0, {at}, {at}, 0)",
                        players[*p]
                    )
                })
                .collect();
            rest = &rest[k..];
            hub.infra
                .execute(&format!(
                    "INSERT INTO game_rounds (client_id, provider, round_id, user_id, version, \
                     status, net, stake, updated_at, created_at, fed) VALUES {}",
                    values.join(", ")
                ))
                .await;
            // The report's catch-up feeds them.
            let _ = report(&api, &tree.admin_token, "client-metrics", &period()).await;
        }
        // The rounds' own rollups, as `apply_round` keeps them.
        let mut per_hour: BTreeMap<(i64, usize), i64> = BTreeMap::new();
        let mut per_day: BTreeMap<i64, i64> = BTreeMap::new();
        for (p, at) in &rounds {
            *per_hour
                .entry((at - at.rem_euclid(HOUR_MS), *p))
                .or_default() += 1;
            *per_day.entry(at - at.rem_euclid(DAY_MS)).or_default() += 1;
        }
        let mut hours: BTreeMap<i64, i64> = BTreeMap::new();
        for ((hour, p), n) in &per_hour {
            *hours.entry(*hour).or_default() += n;
            hub.infra
                .execute(&format!(
                    "INSERT INTO report_rounds (client_id, hour, provider, user_id, rounds, stake, net) \
                     VALUES ('{client}', {hour}, 'latefeed', '{}', {n}, 0, 0)",
                    players[*p]
                ))
                .await;
        }
        for (hour, n) in hours {
            hub.infra
                .execute(&format!(
                    "INSERT INTO report_rounds_client (client_id, hour, provider, rounds, stake, net) \
                     VALUES ('{client}', {hour}, 'latefeed', {n}, 0, 0)"
                ))
                .await;
        }
        for (day, n) in per_day {
            hub.infra
                .execute(&format!(
                    "INSERT INTO report_rounds_agent (client_id, day, agent_id, provider, rounds, stake, net) \
                     VALUES ('{client}', {day}, '{}', 'latefeed', {n}, 0, 0)",
                    tree.agent_id
                ))
                .await;
        }

        let active = |a: i64, b: i64| -> i64 {
            (0..players.len())
                .filter(|p| {
                    rounds.iter().any(|(q, at)| q == p && (a..b).contains(at))
                        || (depositors.contains(p) && (a..b).contains(&now))
                })
                .count() as i64
        };
        let depositing = |a: i64, b: i64| -> i64 {
            if (a..b).contains(&now) {
                depositors.len() as i64
            } else {
                0
            }
        };
        for _ in 0..8 {
            let a = today - rng(DAYS + 1) as i64 * DAY_MS;
            let b = (a + (1 + rng(DAYS) as i64) * DAY_MS).min(today + DAY_MS);
            let range = format!("from={}&to={}", date(a), date(b));
            for g in ["week", "month"] {
                let q = format!("client_id={client}&{range}&granularity={g}");
                let m = report(&api, &tree.admin_token, "client-metrics", &q).await;
                for row in m["rows"].as_array().unwrap() {
                    let (s, e) = (instant(&row["bucket_start"]), instant(&row["bucket_end"]));
                    let at = format!("case {case} {g} [{}, {}): {row}", date(s), date(e));
                    assert_eq!(row["active_players"], active(s, e), "{at}");
                    assert_eq!(row["depositing_players"], depositing(s, e), "{at}");
                }
            }
            let o = report(&api, &tree.super_token, "platform-overview", &range).await;
            let row = o["rows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["client_id"] == client.as_str())
                .unwrap_or_else(|| panic!("{o}"));
            let at = format!("case {case} {range}: {row}");
            assert_eq!(row["active_players"], active(a, b), "{at}");
            // The one bucket's money, rounds and registrations, summed in SQL.
            let rounds_in = rounds.iter().filter(|(_, t)| (a..b).contains(t)).count();
            let today_in = i64::from((a..b).contains(&now));
            assert_eq!(row["rounds"], rounds_in, "{at}");
            assert_eq!(row["deposits"], 2 * today_in, "{at}");
            let sum = if today_in == 1 { "10.00" } else { "0.00" };
            assert_eq!(row["deposits_sum"], sum, "{at}");
            assert_eq!(row["new_players"], 6 * today_in, "{at}");
            assert_eq!(row["registered"], 6 * today_in, "{at}");
        }
        tamper_day = rounds
            .first()
            .map_or(today, |(_, at)| at - at.rem_euclid(DAY_MS));
        last_client = client;
    }

    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
    let client = &last_client;
    for (tamper, named, undo) in [
        (
            format!(
                "UPDATE report_day_spans SET n = n + 1 WHERE client_id = '{client}' \
                 AND series = 'active:d:UTC' AND day = {tamper_day}"
            ),
            "report_day_spans client=",
            format!(
                "UPDATE report_day_spans SET n = n - 1 WHERE client_id = '{client}' \
                 AND series = 'active:d:UTC' AND day = {tamper_day}"
            ),
        ),
        (
            format!(
                "UPDATE report_user_last_day SET day = day - 86400000 WHERE client_id = '{client}' \
                 AND series = 'active:d:UTC'"
            ),
            "report_user_last_day client=",
            format!(
                "UPDATE report_user_last_day SET day = day + 86400000 WHERE client_id = '{client}' \
                 AND series = 'active:d:UTC'"
            ),
        ),
    ] {
        hub.infra.execute(&tamper).await;
        let (code, out) = hub.infra.run_nashub("check-reports");
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains(named), "{named}: {out}");
        assert!(out.contains(client.as_str()), "{out}");
        assert!(out.contains("series=active:d:UTC"), "{out}");
        hub.infra.execute(&undo).await;
    }
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
}

/// A player's history: rounds, transfers and sessions newest first by (at, id), the same
/// through JSON pages of any size, the CSV export and cursors inside a millisecond that holds
/// more rows than a page (ids whose text order is not their columns' order).
async fn player_history_is_one_order_across_pages_csv_and_ties(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let (client, player) = (&tree.client_id, &tree.player_id);
    let t = 1_700_000_000_000_i64;
    // (at, id) of every line; 300 rounds and some sessions and transfers share `t`.
    let mut expected: Vec<(i64, String)> = Vec::new();
    let mut rounds = Vec::new();
    for i in 0..420_i64 {
        // "pg" < "pg2" as columns, "round:pg2:" < "round:pg:" as ids.
        let provider = ["pg", "pg2", "a-b", "a"][i as usize % 4];
        let round = format!("{}", (i * 7919) % 1000);
        let at = if i < 300 { t } else { t - (i - 299) * 3 };
        expected.push((at, format!("round:{provider}:{round}")));
        rounds.push(format!(
            "('{client}', '{provider}', '{round}', '{player}', 1, 'settled', {}, {}, {at}, {at})",
            i % 5 - 2,
            i % 3 + 1
        ));
    }
    hub.infra
        .execute(&format!(
            "INSERT INTO game_rounds (client_id, provider, round_id, user_id, version, status, \
             net, stake, updated_at, created_at) VALUES {}",
            rounds.join(", ")
        ))
        .await;
    for i in 0..40_i64 {
        let at = if i % 2 == 0 { t } else { t - i * 2 };
        let id = format!("s{:03}", (i * 37) % 100);
        expected.push((at, format!("session:{id}")));
        hub.infra
            .execute(&format!(
                "INSERT INTO game_sessions (id, client_id, user_id, provider, game_code, state, \
                 started_at) VALUES ('{id}', '{client}', '{player}', 'pg', 'g1', 'ended', {at})"
            ))
            .await;
        let at = if i % 2 == 0 { t } else { t - i * 5 };
        let id = format!("x{:03}", (i * 13) % 100);
        expected.push((at, format!("transfer:{id}")));
        hub.infra
            .execute(&format!(
                "INSERT INTO provider_transfers (id, client_id, user_id, provider, account, \
                 direction, amount, serial, idempotency_key, request_hash, state, created_at, \
                 updated_at) VALUES ('{id}', '{client}', '{player}', 'pg', 'acc', 'in', 100, \
                 '{id}', '{id}', 'h', 'succeeded', {at}, {at})"
            ))
            .await;
    }
    expected.sort_by(|a, b| b.cmp(a));
    let cursor_of = |(at, id): &(i64, String)| format!("{at}~{id}");
    let history = format!("/api/v1/reports/players/{player}/history");

    let pages = |limit: usize, from: Option<String>| {
        let (api, token, history) = (&api, &tree.admin_token, &history);
        async move {
            let mut ids = Vec::new();
            let mut cursor = from;
            loop {
                let mut path = format!("{history}?limit={limit}");
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let page = api.get(token, &path).await.ok();
                let items = page["items"].as_array().unwrap();
                assert!(items.len() <= limit);
                for i in items {
                    let at = chrono::DateTime::parse_from_rfc3339(i["at"].as_str().unwrap())
                        .unwrap()
                        .timestamp_millis();
                    ids.push((at, i["id"].as_str().unwrap().to_owned()));
                }
                match page["next_cursor"].as_str() {
                    Some(c) => {
                        assert_eq!(items.len(), limit);
                        cursor = Some(c.to_owned());
                    }
                    None => return ids,
                }
            }
        }
    };
    let csv = |from: Option<String>| {
        let (api, token, history) = (&api, &tree.admin_token, &history);
        async move {
            let mut path = format!("{history}?format=csv");
            if let Some(c) = &from {
                path.push_str(&format!("&cursor={c}"));
            }
            let reply = api.get(token, &path).await;
            assert_eq!(reply.status, 200);
            let rows = parse_csv(reply.body.as_str().unwrap());
            assert_eq!(
                rows[0],
                ["at", "kind", "id", "provider", "detail", "amount", "net"]
            );
            rows[1..].iter().map(|r| r[2].clone()).collect::<Vec<_>>()
        }
    };
    let ids = |from: usize| -> Vec<String> {
        expected[from..].iter().map(|(_, id)| id.clone()).collect()
    };
    let ids_of =
        |v: Vec<(i64, String)>| -> Vec<String> { v.into_iter().map(|(_, id)| id).collect() };

    for limit in [7, 100, 1000] {
        assert_eq!(pages(limit, None).await, expected, "limit {limit}");
    }
    assert_eq!(csv(None).await, ids(0));
    // From inside the crowded millisecond, and from its last row.
    for from in [150, 340] {
        let cursor = Some(cursor_of(&expected[from - 1]));
        assert_eq!(ids_of(pages(7, cursor.clone()).await), ids(from), "{from}");
        assert_eq!(csv(cursor).await, ids(from), "{from}");
    }
    assert!(expected[339].0 == t && expected[340].0 < t);
}

/// One JDB round of the per-game test: (player, game, bet, win), cents.
type Play = (usize, &'static str, i64, i64);

/// What a game-stats row must say for `plays` of one game: rounds, players, turnover, wins,
/// RTP (4 decimals, truncated as the report does) and GGR.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GameFigures {
    game: String,
    rounds: i64,
    players: i64,
    turnover: i64,
    wins: i64,
    rtp: String,
    ggr: i64,
}

fn reference_games(plays: &[Play]) -> Vec<GameFigures> {
    let mut per: BTreeMap<&str, (i64, std::collections::BTreeSet<usize>, i64, i64)> =
        BTreeMap::new();
    for &(player, game, bet, win) in plays {
        let g = per.entry(game).or_default();
        g.0 += 1;
        g.1.insert(player);
        g.2 += bet;
        g.3 += win;
    }
    let mut out: Vec<GameFigures> = per
        .into_iter()
        .map(|(game, (rounds, players, turnover, wins))| {
            let scaled = i128::from(wins) * 1_000_000 / i128::from(turnover);
            GameFigures {
                game: game.to_owned(),
                rounds,
                players: players.len() as i64,
                turnover,
                wins,
                rtp: format!("{}.{:04}", scaled / 1_000_000, (scaled % 1_000_000) / 100),
                ggr: turnover - wins,
            }
        })
        .collect();
    // The top games: biggest GGR first, then by game code (one provider here).
    out.sort_by(|a, b| (-a.ggr, &a.game).cmp(&(-b.ggr, &b.game)));
    out
}

/// The one provider's row of `plays`: every game's rounds, each player once.
fn reference_provider(plays: &[Play]) -> GameFigures {
    let mut all: Vec<Play> = plays.to_vec();
    for p in &mut all {
        p.1 = "";
    }
    reference_games(&all).remove(0)
}

fn game_figures(report: &Value) -> Vec<GameFigures> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["provider"], "jdb", "{r}");
            GameFigures {
                // provider-stats rows name no game.
                game: r["game"].as_str().unwrap_or("").to_owned(),
                rounds: r["rounds"].as_i64().unwrap(),
                players: r["players"].as_i64().unwrap(),
                turnover: cents(r["turnover"].as_str().unwrap()),
                wins: cents(r["wins"].as_str().unwrap()),
                rtp: r["rtp"].as_str().unwrap().to_owned(),
                ggr: cents(r["ggr"].as_str().unwrap()),
            }
        })
        .collect()
}

/// Game stats per game (issue 17): JDB rounds name their game (`<gType>-<mType>` from the
/// history rows), and rounds of different games of one provider are different rows, with
/// exact rounds, distinct players, turnover, wins, RTP and GGR, the top games by GGR first.
/// Random plays (a fixed start: one player in two games, two players in one) are checked
/// against a reference computed here, client-wide (client rollups and per-game player counts),
/// for an agent's subtree (per-user rows), by the day (zone series) and by the hour (hourly
/// marks); `check-reports` names a wrong per-game bucket.
async fn game_stats_split_per_game_equal_a_reference(backend: Backend) {
    let sims = start_sims();
    let hub = start(backend, &sims).await;
    let api = hub.api();
    let tree = crate::providers::player_at_provider(&api, "100", "jdb", "90").await;
    let p2 = create(&api, &tree.admin_token, &tree.agent_id, "player", "gamer2").await;
    let p2_token = api.token(Some(&tree.code), "gamer2").await;
    api.deposit(&tree.admin_token, &p2, "100").await;
    let moved = move_money(&api, &p2_token, &p2, "jdb", "transfer-in", "90").await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let uids = [
        nashub::providers::provider_uid(&tree.player_id),
        nashub::providers::provider_uid(&p2),
    ];
    const GAMES: [&str; 3] = ["0-8001", "0-8003", "7-7001"];
    let mut plays: Vec<Play> = vec![
        (0, "0-8001", 300, 0),
        (1, "0-8001", 150, 500),
        (0, "7-7001", 200, 120),
    ];
    let random = proptest::collection::vec(
        (0..2_usize, 0..GAMES.len(), 1..400_i64, 0..900_i64)
            .prop_map(|(p, g, bet, win)| (p, GAMES[g], bet, win)),
        4..12,
    );
    let mut runner = TestRunner::deterministic();
    plays.extend(random.new_tree(&mut runner).unwrap().current());
    let http = reqwest::Client::new();
    for &(player, game, bet, win) in &plays {
        let res = http
            .post(format!("{}/sim/play", sims.jdb.base_url()))
            .json(&json!({ "uid": uids[player], "bet": bet, "win": win, "game": game }))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{plays:?}");
    }
    let expected = reference_games(&plays);
    assert!(expected.len() >= 2, "{expected:?}");
    let case = format!("plays {plays:?}");

    // Until every round is pulled from the history.
    let q = format!("client_id={}&{}", tree.client_id, period());
    let top = format!("{q}&top=true");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut g = report(&api, &tree.admin_token, "game-stats", &top).await;
    while total(&g, "rounds") < plays.len() as i64 {
        assert!(tokio::time::Instant::now() < deadline, "{case}: {g}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        g = report(&api, &tree.admin_token, "game-stats", &top).await;
    }
    assert_eq!(game_figures(&g), expected, "{case}");
    // The agent's subtree (both players) reads the per-user rows: the same rows.
    let mine = report(
        &api,
        &tree.agent_token,
        "game-stats",
        &format!("{}&top=true", period()),
    )
    .await;
    assert_eq!(game_figures(&mine), expected, "{case}");
    // Per provider each player counts once, however many games they played (player 0
    // played two of them: the per-game rows count it twice).
    let provider = reference_provider(&plays);
    assert_eq!(provider.players, 2, "{case}");
    assert!(
        expected.iter().map(|e| e.players).sum::<i64>() > 2,
        "{case}"
    );
    for (who, token, query) in [
        ("client", &tree.admin_token, top.clone()),
        (
            "subtree",
            &tree.agent_token,
            format!("{}&top=true", period()),
        ),
    ] {
        let p = report(&api, token, "provider-stats", &query).await;
        assert_eq!(
            game_figures(&p),
            vec![provider.clone()],
            "{case} ({who}): {p}"
        );
    }
    // One player's own games: only theirs.
    let only = plays
        .iter()
        .filter(|p| p.0 == 1)
        .copied()
        .collect::<Vec<_>>();
    let theirs = report(
        &api,
        &p2_token,
        "game-stats",
        &format!("{}&top=true", period()),
    )
    .await;
    assert_eq!(game_figures(&theirs), reference_games(&only), "{case}");
    // By the hour: the rows of each hour add up to the period's per game.
    let hourly = report(
        &api,
        &tree.admin_token,
        "game-stats",
        &format!("{q}&granularity=hour"),
    )
    .await;
    let mut summed: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for r in game_figures(&hourly) {
        let s = summed.entry(r.game).or_default();
        *s = (s.0 + r.rounds, s.1 + r.turnover, s.2 + r.wins);
    }
    let want: BTreeMap<String, (i64, i64, i64)> = expected
        .iter()
        .map(|e| (e.game.clone(), (e.rounds, e.turnover, e.wins)))
        .collect();
    assert_eq!(summed, want, "{case}");
    // Today as a day bucket reads the per-game zone series' counts (`top` over the unaligned
    // period above counted the hourly marks): the same players.
    let today = chrono::Utc::now().date_naive();
    let day_q = format!(
        "client_id={}&from={today}&to={}&granularity=day",
        tree.client_id,
        today + chrono::Duration::days(1)
    );
    let by_day = report(&api, &tree.admin_token, "game-stats", &day_q).await;
    let mut day_rows = game_figures(&by_day);
    day_rows.sort_by(|a, b| (-a.ggr, &a.game).cmp(&(-b.ggr, &b.game)));
    // (Unless the test ran across midnight: then today holds only some of the plays.)
    let provider_day = report(&api, &tree.admin_token, "provider-stats", &day_q).await;
    if chrono::Utc::now().date_naive() == today {
        assert_eq!(day_rows, expected, "{case}: {by_day}");
        assert_eq!(
            game_figures(&provider_day),
            vec![provider.clone()],
            "{case}"
        );
    }

    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
    // A wrong per-game bucket is named with its game.
    let game = &expected[0].game;
    for (table, tamper, undo) in [
        (
            "report_rounds_client bucket",
            format!("UPDATE report_rounds_client SET stake = stake + 1 WHERE game = '{game}'"),
            format!("UPDATE report_rounds_client SET stake = stake - 1 WHERE game = '{game}'"),
        ),
        (
            "report_rounds bucket",
            format!("UPDATE report_rounds SET net = net + 1 WHERE game = '{game}'"),
            format!("UPDATE report_rounds SET net = net - 1 WHERE game = '{game}'"),
        ),
        (
            "report_counts bucket",
            format!("UPDATE report_counts SET n = n + 1 WHERE series = 'players:jdb:{game}:d:UTC'"),
            format!("UPDATE report_counts SET n = n - 1 WHERE series = 'players:jdb:{game}:d:UTC'"),
        ),
    ] {
        hub.infra.execute(&tamper).await;
        let (code, out) = hub.infra.run_nashub("check-reports");
        assert_eq!(code, Some(1), "{table}: {out}");
        assert!(out.contains(table), "{table}: {out}");
        assert!(out.contains(game.as_str()), "{table}: {out}");
        hub.infra.execute(&undo).await;
    }
    let (code, out) = hub.infra.run_nashub("check-reports");
    assert_eq!(code, Some(0), "{out}");
}

/// Runs the `INSERT` statements of a migration (its backfill) again, comments stripped.
async fn replay_backfill(infra: &crate::helpers::Infra, migration: &str) {
    for statement in migration.split(';') {
        let sql: String = statement
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if sql.trim_start().starts_with("INSERT") {
            infra.execute(&sql).await;
        }
    }
}
