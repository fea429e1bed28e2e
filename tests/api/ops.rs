//! Operations endpoints and the maintenance binary.

use crate::backend_tests;
use crate::helpers::{Backend, HubProcess, Infra, TestHub, Tree, metric_value};

/// A hub process of its own: the metrics registry is per process, and other tests in this
/// binary would move its counters.
async fn health_ready_and_metrics_from_start(backend: Backend) {
    let infra = Infra::new(backend).await;
    let hub = HubProcess::start(&infra);
    let health = reqwest::get(format!("{}/health", hub.base)).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready: serde_json::Value = reqwest::get(format!("{}/ready", hub.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"], "ok");
    let expect_redis = if infra.redis_url.is_some() {
        "ok"
    } else {
        "not_configured"
    };
    assert_eq!(ready["redis"], expect_redis);

    let metrics = hub.metrics().await;
    for name in [
        "http_requests_total",
        "http_request_duration_seconds",
        "active_users_total",
        "websocket_connections",
        "wallet_actors",
        "ledger_imbalance",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}");
    }
    // Every series the shipped alert rules watch exists from start (a renamed metric would
    // leave an alert silently dead).
    let rules = include_str!("../../deploy/prometheus/alerts.yml");
    let watched: std::collections::BTreeSet<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .flat_map(|e| e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|w| {
            ["_total", "_state", "_backlog", "_imbalance"]
                .iter()
                .any(|s| w.ends_with(s))
        })
        .collect();
    assert!(watched.len() >= 6, "{watched:?}");
    for name in watched {
        assert!(
            metrics.contains(&format!("{name} ")) || metrics.contains(&format!("{name}{{")),
            "alert rules watch {name}, which /metrics lacks"
        );
    }

    // A committed mutation is counted.
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let before = deposits(&hub, &tree.client_id).await;
    let requests_before = deposit_requests(&hub).await;
    api.deposit(&tree.admin_token, &tree.player_id, "1").await;
    assert_eq!(deposits(&hub, &tree.client_id).await, before + 1);
    // Counted per route pattern, method and status, each request once (the second one goes
    // through the worker's cached handle).
    api.deposit(&tree.admin_token, &tree.player_id, "1").await;
    assert_eq!(deposit_requests(&hub).await, requests_before + 2);

    // Every series the shipped Grafana dashboard queries exists once money moved (deploy/grafana;
    // per-client series appear with their first mutation).
    let metrics = hub.metrics().await;
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../deploy/grafana/dashboards/nashub.json"))
            .expect("the dashboard is JSON");
    let queried: std::collections::BTreeSet<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .flat_map(|t| promql_metrics(t["expr"].as_str().unwrap()))
        .collect();
    assert!(queried.len() >= 20, "{queried:?}");
    for name in &queried {
        assert!(
            metrics.contains(&format!("\n{name} ")) || metrics.contains(&format!("\n{name}{{")),
            "the dashboard queries {name}, which /metrics lacks"
        );
    }

    // Methods a client makes up share one label, so they cannot grow /metrics without bound.
    let http = reqwest::Client::new();
    for method in ["FOO1", "FOO2", "BAR"] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        http.request(m, format!("{}/health", hub.base))
            .send()
            .await
            .unwrap();
    }
    let metrics = hub.metrics().await;
    assert!(metrics.contains(r#"method="OTHER""#), "{metrics}");
    for method in ["FOO1", "FOO2", "BAR"] {
        assert!(!metrics.contains(&format!(r#"method="{method}""#)));
    }
}

/// Metric names in a PromQL expression: identifiers outside `{...}` and `[...]`, not called
/// as functions, not grouping labels (`by (...)`), not keywords or numbers.
fn promql_metrics(expr: &str) -> Vec<String> {
    const KEYWORDS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
    ];
    let mut plain = String::new();
    let (mut braces, mut brackets) = (0, 0);
    let mut quoted = false;
    for c in expr.chars() {
        match c {
            '"' => quoted = !quoted,
            '{' if !quoted => braces += 1,
            '}' if !quoted => braces -= 1,
            '[' if !quoted => brackets += 1,
            ']' if !quoted => brackets -= 1,
            _ if braces == 0 && brackets == 0 && !quoted => plain.push(c),
            _ => {}
        }
        if braces > 0 || brackets > 0 {
            plain.push(' ');
        }
    }
    let mut names = Vec::new();
    let mut rest = plain.as_str();
    let mut grouping = false;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
        rest = &rest[start..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        rest = &rest[end..];
        let next = rest.trim_start().chars().next();
        if grouping {
            // Labels listed in `by (...)`, up to the closing parenthesis.
            if next == Some(')') {
                grouping = false;
            }
            continue;
        }
        if KEYWORDS.contains(&word) {
            grouping = true;
            continue;
        }
        if next == Some('(')
            || AGGREGATIONS.contains(&word)
            || word.chars().all(|c| c.is_ascii_digit() || c == '.')
        {
            continue;
        }
        names.push(word.to_owned());
    }
    names
}

#[test]
fn promql_metric_names_are_found() {
    assert_eq!(
        promql_metrics(
            r#"histogram_quantile(0.99, sum by (route, le) (rate(http_request_duration_seconds_bucket{route=~"a|b"}[5m]))) / max(up)"#
        ),
        ["http_request_duration_seconds_bucket", "up"]
    );
}

/// `http_requests_total` of successful deposit requests.
async fn deposit_requests(hub: &HubProcess) -> u64 {
    let series = r#"http_requests_total{method="POST",route="/api/v1/users/{id}/wallet/deposit",status_code="200"}"#;
    metric_value(&hub.metrics().await, series).map_or(0, |v| v as u64)
}

/// `balance_transfers_total{client_id,transfer_type="deposit"}` of one client (design section 8).
async fn deposits(hub: &HubProcess, client_id: &str) -> u64 {
    let series =
        format!(r#"balance_transfers_total{{client_id="{client_id}",transfer_type="deposit"}}"#);
    metric_value(&hub.metrics().await, &series).map_or(0, |v| v as u64)
}

/// `nashub check-ledger` exits non-zero and names the violation when the books are altered.
async fn check_ledger_detects_tampering(backend: Backend) {
    let infra = Infra::new(backend).await;
    let hub = TestHub::start_on(infra).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.player_id, "10").await;
    hub.infra.assert_ledger_ok();

    // Tamper as an operator's tool could: straight in the database.
    hub.infra
        .execute(&format!(
            "UPDATE accounts SET balance = balance + 1 WHERE id = 'w:{}'",
            tree.player_id
        ))
        .await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nashub"))
        .arg("check-ledger")
        .env_clear()
        .envs(hub.infra.env())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ledger violation"), "{stdout}");
}

/// Two accounts near `i64::MAX` (and two house accounts near `-i64::MAX`): a correct ledger
/// SQLite's `SUM()` cannot add up. The check must still run and pass; and a check that cannot
/// run at all exits 3 and is counted in `ledger_check_failures_total`, never reads as clean.
async fn check_ledger_runs_near_the_largest_balances(backend: Backend) {
    let infra = Infra::new(backend).await;
    let hub = HubProcess::start_with_env(&infra, &[("NASHUB_LEDGER_CHECK_INTERVAL_SECS", "1")]);
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let near_max = i64::MAX - 7;
    let c = &tree.client_id;
    // Written as the store would: one balanced entry per pair, postings at version 1.
    for (n, (house, user)) in [("cash", &tree.player_id), ("adjustments", &tree.agent_id)]
        .into_iter()
        .enumerate()
    {
        let j = format!("big-{n}-{c}");
        infra
            .execute(&format!(
                "INSERT INTO journal (id, client_id, idempotency_key, request_hash, kind, actor_id, \
                 subject_account_id, memo, created_at) VALUES ('{j}', '{c}', 'k-{j}', 'h', 'deposit', NULL, 'w:{user}', NULL, 1)"
            ))
            .await;
        for (account, amount) in [
            (format!("h:{c}:{house}"), -near_max),
            (format!("w:{user}"), near_max),
        ] {
            infra
                .execute(&format!(
                    "INSERT INTO postings (journal_id, account_id, client_id, amount, balance_after, account_version, created_at) \
                     VALUES ('{j}', '{account}', '{c}', {amount}, {amount}, 1, 1)"
                ))
                .await;
            infra
                .execute(&format!(
                    "UPDATE accounts SET balance = {amount}, version = 1 WHERE id = '{account}'"
                ))
                .await;
        }
    }
    infra.assert_ledger_ok();
    assert_eq!(
        metric_value(&hub.metrics().await, "ledger_check_failures_total"),
        Some(0.0)
    );

    // A check that cannot run (a table gone): exit 3, and the periodic check counts it.
    infra
        .execute("ALTER TABLE postings RENAME TO postings_gone")
        .await;
    let (code, out) = infra.run_nashub("check-ledger");
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("could not run"), "{out}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let failures = metric_value(&hub.metrics().await, "ledger_check_failures_total");
        if failures.is_some_and(|f| f >= 1.0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{failures:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    infra
        .execute("ALTER TABLE postings_gone RENAME TO postings")
        .await;
}

/// Unknown paths answer the JSON 404 everywhere, inside the `/users/{id}` and `/clients/{id}`
/// scopes too; a known path with a method it does not serve is a 405 with `Allow`.
async fn unknown_endpoints_answer_json_404(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let token = &tree.admin_token;
    for path in [
        "/api/v1/nothing".to_owned(),
        format!("/api/v1/users/{}/nothing", tree.player_id),
        format!("/api/v1/users/{}/wallet/nothing", tree.player_id),
        format!("/api/v1/users/{}/", tree.player_id),
        format!("/api/v1/clients/{}/nothing", tree.client_id),
    ] {
        api.get(token, &path).await.error(404, "not_found");
    }
    // A known path with a method it does not serve: 405 with the methods it does.
    let deposit = format!("/api/v1/users/{}/wallet/deposit", tree.player_id);
    let wrong = api.get(token, &deposit).await;
    wrong.error(405, "method_not_allowed");
    let user_path = format!("/api/v1/users/{}", tree.player_id);
    let deleted = api
        .http
        .delete(format!("{}{user_path}", api.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 405);
    assert_eq!(deleted.headers()["allow"], "GET, PATCH");
    let health = api
        .http
        .post(format!("{}/health", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 405);
    assert_eq!(health.headers()["allow"], "GET");
    // The scoped routes themselves still answer.
    let user = api
        .get(token, &format!("/api/v1/users/{}", tree.player_id))
        .await;
    assert_eq!(user.status, 200, "{}", user.body);
    let client = api
        .get(
            &tree.super_token,
            &format!("/api/v1/clients/{}", tree.client_id),
        )
        .await;
    assert_eq!(client.status, 200, "{}", client.body);
}

backend_tests!(
    health_ready_and_metrics_from_start,
    check_ledger_detects_tampering,
    check_ledger_runs_near_the_largest_balances,
    unknown_endpoints_answer_json_404
);
