//! `/graphql` (issue 17): the same reach rules as REST (the matrix run on both and compared),
//! cursor pagination, depth and complexity limits, refused queries, 401 without a token, the
//! offline page, and batched loaders (a page of N users costs one query per relation).

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    Api, Backend, HubProcess, Infra, PASSWORD, Reply, TestHub, Tree, metric_value,
};

backend_tests!(
    reach_matches_rest,
    pagination_follows_cursors,
    limits_and_bad_queries,
    loaders_batch_lookups,
);

async fn gql(api: &Api, token: &str, query: &str, variables: Value) -> Reply {
    api.post(
        token,
        "/graphql",
        json!({ "query": query, "variables": variables }),
    )
    .await
}

/// A user created by `token` under `parent` in `client`; its id.
async fn make_user(
    api: &Api,
    token: &str,
    client: &str,
    parent: &str,
    role: &str,
    name: &str,
) -> String {
    api.post(
        token,
        "/api/v1/users",
        json!({ "client_id": client, "parent_id": parent, "role": role, "username": name, "password": PASSWORD }),
    )
    .await
    .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// What a REST answer and a GraphQL field answer have in common: 200, or the error's status
/// and code.
fn rest_outcome(r: &Reply) -> (u16, String) {
    if r.status == 200 {
        (200, String::new())
    } else {
        (
            r.status,
            r.body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    }
}

fn gql_outcome(r: &Reply, field: &[&str]) -> (u16, String) {
    assert_eq!(r.status, 200, "{}", r.body);
    match r.body["errors"].as_array().and_then(|e| e.first()) {
        None => {
            let mut v = &r.body["data"];
            for f in field {
                v = &v[*f];
            }
            assert!(!v.is_null(), "no data and no error: {}", r.body);
            (200, String::new())
        }
        Some(e) => (
            e["extensions"]["status"].as_u64().unwrap() as u16,
            e["extensions"]["code"].as_str().unwrap().to_owned(),
        ),
    }
}

async fn reach_matches_rest(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let a = Tree::create(&api).await;
    let b = Tree::create(&api).await;
    let agent2 = make_user(
        &api,
        &a.admin_token,
        &a.client_id,
        &a.admin_id,
        "agent",
        "agent2",
    )
    .await;
    let outside = make_user(
        &api,
        &a.admin_token,
        &a.client_id,
        &agent2,
        "player",
        "player2",
    )
    .await;
    api.deposit(&a.admin_token, &a.player_id, "12.50").await;

    let callers = [
        ("super", a.super_token.as_str()),
        ("admin", a.admin_token.as_str()),
        ("agent", a.agent_token.as_str()),
        ("player", a.player_token.as_str()),
    ];
    let targets = [
        ("own-subtree", a.player_id.as_str()),
        ("other-subtree", outside.as_str()),
        ("other-client", b.player_id.as_str()),
    ];
    // Reach rules (DESIGN section 6): other client 404, outside the subtree 403.
    let expected_user = |who: &str, target: &str| match (who, target) {
        ("super", _) => 200,
        (_, "other-client") => 404,
        ("admin", _) => 200,
        (_, "own-subtree") => 200,
        _ => 403,
    };
    let mut differences = Vec::new();
    for (who, token) in callers {
        for (target, id) in targets {
            let cases = [
                (
                    "user",
                    format!("/api/v1/users/{id}"),
                    "query($id: String!) { user(id: $id) { id username } }",
                    vec!["user"],
                ),
                (
                    "wallet",
                    format!("/api/v1/users/{id}/wallet"),
                    "query($id: String!) { user(id: $id) { wallet { balance currency } } }",
                    vec!["user", "wallet"],
                ),
                (
                    "transactions",
                    format!("/api/v1/users/{id}/transactions"),
                    "query($id: String!) { user(id: $id) { transactions(first: 5) { edges { node { id amount } } } } }",
                    vec!["user", "transactions"],
                ),
                (
                    "game-sessions",
                    format!("/api/v1/users/{id}/game-sessions"),
                    "query($id: String!) { user(id: $id) { gameSessions(first: 5) { edges { node { id } } } } }",
                    vec!["user", "gameSessions"],
                ),
            ];
            for (what, path, query, field) in cases {
                let rest = rest_outcome(&api.get(token, &path).await);
                let graph =
                    gql_outcome(&gql(&api, token, query, json!({ "id": id })).await, &field);
                if rest != graph {
                    differences.push(format!(
                        "{who} {what} {target}: REST {rest:?}, GraphQL {graph:?}"
                    ));
                }
                if what == "user" && rest.0 != expected_user(who, target) {
                    differences.push(format!(
                        "{who} user {target}: {rest:?}, expected {}",
                        expected_user(who, target)
                    ));
                }
            }
        }
        // Clients: own and another.
        for (target, id) in [
            ("own-client", a.client_id.as_str()),
            ("other-client", b.client_id.as_str()),
        ] {
            for (what, path, query, field) in [
                (
                    "client",
                    format!("/api/v1/clients/{id}"),
                    "query($id: String!) { client(id: $id) { id code } }",
                    vec!["client"],
                ),
                (
                    "journal",
                    format!("/api/v1/clients/{id}/transactions"),
                    "query($id: String!) { client(id: $id) { transactions(first: 5) { edges { node { id postings { amount } } } } } }",
                    vec!["client", "transactions"],
                ),
                (
                    "settlements",
                    format!("/api/v1/clients/{id}/settlements"),
                    "query($id: String!) { client(id: $id) { settlements(first: 5) { edges { node { id } } } } }",
                    vec!["client", "settlements"],
                ),
            ] {
                let rest = rest_outcome(&api.get(token, &path).await);
                // The journal and settlements hang under `client`, which REST checks on its
                // own: compare what REST says for the listing with the first GraphQL refusal.
                let graph =
                    gql_outcome(&gql(&api, token, query, json!({ "id": id })).await, &field);
                if what == "client" && rest != graph {
                    differences.push(format!(
                        "{who} {what} {target}: REST {rest:?}, GraphQL {graph:?}"
                    ));
                }
                if what != "client" && rest.0 == 200 && graph.0 != 200 {
                    differences.push(format!(
                        "{who} {what} {target}: REST 200, GraphQL {graph:?}"
                    ));
                }
                if rest.0 != 200 && graph.0 == 200 {
                    differences.push(format!(
                        "{who} {what} {target}: REST {rest:?}, GraphQL let it through"
                    ));
                }
            }
        }
        // Listings: GraphQL lists exactly what REST lists.
        let rest_users = api.get(token, "/api/v1/users?limit=200").await;
        let graph_users = gql(
            &api,
            token,
            "{ users(first: 200) { edges { node { id } } } }",
            json!({}),
        )
        .await;
        let rest_ids: Option<Vec<String>> = (rest_users.status == 200).then(|| {
            rest_users.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_owned())
                .collect()
        });
        let graph_ids: Option<Vec<String>> = graph_users.body["data"]["users"]["edges"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
                    .collect()
            });
        if rest_ids != graph_ids {
            differences.push(format!(
                "{who} users listing: REST {rest_ids:?}, GraphQL {graph_ids:?}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));

    // The wallet as REST shows it, and `me`.
    let me = gql(&api, &a.player_token, "{ me { id role wallet { balance currency } transactions(first: 1) { edges { node { kind amount postings { accountId amount } } } } } }", json!({})).await.ok();
    assert_eq!(me["data"]["me"]["id"], a.player_id.as_str());
    assert_eq!(me["data"]["me"]["wallet"]["balance"], "12.50");
    let entry = &me["data"]["me"]["transactions"]["edges"][0]["node"];
    assert_eq!(entry["kind"], "deposit");
    assert_eq!(entry["amount"], "12.50");
    let postings = entry["postings"].as_array().unwrap();
    assert_eq!(postings.len(), 2, "{entry}");
    assert!(
        postings
            .iter()
            .any(|p| p["amount"] == "12.50" && p["accountId"] == format!("w:{}", a.player_id))
    );

    // No token: 401 as REST.
    let anonymous = api
        .send(
            api.http
                .post(format!("{}/graphql", api.base))
                .json(&json!({ "query": "{ me { id } }" })),
        )
        .await;
    anonymous.error(401, "unauthorized");
}

async fn pagination_follows_cursors(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let t = Tree::create(&api).await;
    for i in 0..5 {
        make_user(
            &api,
            &t.admin_token,
            &t.client_id,
            &t.agent_id,
            "player",
            &format!("pp{i}"),
        )
        .await;
        api.deposit(&t.admin_token, &t.player_id, &format!("{i}.01"))
            .await;
    }
    let query = "query($c: String, $after: String) { users(clientId: $c, first: 2, after: $after) {
        pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { id } } } }";
    let mut after = Value::Null;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = gql(
            &api,
            &t.admin_token,
            query,
            json!({ "c": t.client_id, "after": after }),
        )
        .await
        .ok();
        let conn = &r["data"]["users"];
        assert!(r["errors"].is_null(), "{r}");
        let edges = conn["edges"].as_array().unwrap();
        assert!(edges.len() <= 2);
        assert_eq!(conn["pageInfo"]["hasPreviousPage"], pages > 0);
        seen.extend(
            edges
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        if conn["pageInfo"]["hasNextPage"] == false {
            break;
        }
        assert_eq!(
            conn["pageInfo"]["endCursor"],
            edges.last().unwrap()["cursor"]
        );
        after = conn["pageInfo"]["endCursor"].clone();
        assert!(pages < 10, "pagination does not end");
    }
    let rest: Vec<String> = api
        .get(
            &t.admin_token,
            &format!("/api/v1/users?client_id={}&limit=200", t.client_id),
        )
        .await
        .ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, rest);
    assert_eq!(seen.len(), 8, "admin, agent, player and 5 players");
    assert_eq!(pages, 4);

    // A wallet's history pages by account version, newest first, without repeats.
    let history = "query($id: String!, $after: String) { user(id: $id) { transactions(first: 2, after: $after) {
        pageInfo { hasNextPage endCursor } edges { node { amount } } } } }";
    let mut after = Value::Null;
    let mut amounts = Vec::new();
    loop {
        let r = gql(
            &api,
            &t.admin_token,
            history,
            json!({ "id": t.player_id, "after": after }),
        )
        .await
        .ok();
        let conn = &r["data"]["user"]["transactions"];
        amounts.extend(
            conn["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["amount"].as_str().unwrap().to_owned()),
        );
        if conn["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(amounts, ["4.01", "3.01", "2.01", "1.01", "0.01"]);
    // Filters as REST's query parameters.
    let filtered = "query($id: String!, $kind: String, $from: String) { user(id: $id) {
        transactions(kind: $kind, from: $from) { edges { node { kind } } } } }";
    let r = gql(
        &api,
        &t.admin_token,
        filtered,
        json!({ "id": t.player_id, "kind": "deposit" }),
    )
    .await
    .ok();
    assert_eq!(
        r["data"]["user"]["transactions"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        5,
        "{r}"
    );
    let r = gql(
        &api,
        &t.admin_token,
        filtered,
        json!({ "id": t.player_id, "kind": "withdrawal" }),
    )
    .await
    .ok();
    assert_eq!(
        r["data"]["user"]["transactions"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "{r}"
    );
    let r = gql(
        &api,
        &t.admin_token,
        filtered,
        json!({ "id": t.player_id, "from": "2999-01-01T00:00:00Z" }),
    )
    .await
    .ok();
    assert_eq!(
        r["data"]["user"]["transactions"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "{r}"
    );
    for bad in [
        json!({ "id": t.player_id, "kind": "bogus" }),
        json!({ "id": t.player_id, "from": "yesterday" }),
    ] {
        let r = gql(&api, &t.admin_token, filtered, bad).await;
        assert_eq!(
            r.body["errors"][0]["extensions"]["code"], "validation_error",
            "{}",
            r.body
        );
    }

    // `first` out of range is REST's 422, as a field error.
    let r = gql(
        &api,
        &t.admin_token,
        "{ users(first: 0) { edges { cursor } } }",
        json!({}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "validation_error",
        "{}",
        r.body
    );
    assert_eq!(r.body["errors"][0]["extensions"]["status"], 422);
    let r = gql(
        &api,
        &t.admin_token,
        "{ users(first: 201) { edges { cursor } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "validation_error",
        "{}",
        r.body
    );

    // Game sessions' status is checked as REST's; a settlement, listed and in detail.
    let r = gql(&api, &t.admin_token, "query($id: String!) { user(id: $id) { gameSessions(status: \"bogus\") { edges { cursor } } } }", json!({ "id": t.player_id })).await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "validation_error",
        "{}",
        r.body
    );
    let r = gql(
        &api,
        &t.admin_token,
        "query($id: String!) { client(id: $id) { settlement(id: \"nope\") { commissionTotal } } }",
        json!({ "id": t.client_id }),
    )
    .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "not_found",
        "{}",
        r.body
    );
    assert_eq!(
        r.body["errors"][0]["extensions"]["status"], 404,
        "{}",
        r.body
    );
    let (start, end) = (
        crate::settlements::now_text(-3 * 3600 * 1000),
        crate::settlements::now_text(-2 * 3600 * 1000),
    );
    let settled =
        crate::settlements::settle(&api, &t.super_token, &t.client_id, "gq-1", &start, &end)
            .await
            .ok();
    let id = settled["id"].as_str().unwrap();
    let r = gql(&api, &t.admin_token, "query($c: String!, $s: String!) { client(id: $c) {
        settlements(first: 5) { edges { node { id ngr state } } }
        settlement(id: $s) { settlement { id periodStart } commissionTotal revenueShare { amount } } } }",
        json!({ "c": t.client_id, "s": id })).await.ok();
    assert!(r["errors"].is_null(), "{r}");
    let c = &r["data"]["client"];
    assert_eq!(c["settlements"]["edges"][0]["node"]["id"], id);
    assert_eq!(c["settlements"]["edges"][0]["node"]["ngr"], settled["ngr"]);
    assert_eq!(c["settlement"]["settlement"]["id"], id);
    assert_eq!(
        c["settlement"]["commissionTotal"],
        settled["commission_total"]
    );
    assert_eq!(
        c["settlement"]["revenueShare"]["amount"],
        settled["revenue_share"]["amount"]
    );
}

async fn limits_and_bad_queries(backend: Backend) {
    let hub = TestHub::start_with(backend, |s| {
        s.graphql_max_depth = 6;
        s.graphql_max_complexity = 5_000;
    })
    .await;
    let api = hub.api();
    let t = Tree::create(&api).await;

    // Depth 6 passes; 7 is refused before it runs.
    let ok = gql(
        &api,
        &t.admin_token,
        "{ me { parent { id } children(first: 1) { edges { node { id } } } } }",
        json!({}),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body["errors"].is_null(), "{}", ok.body);
    let deep = gql(
        &api,
        &t.admin_token,
        "{ me { children(first: 1) { edges { node { parent { parent { id } } } } } } }",
        json!({}),
    )
    .await;
    assert_eq!(deep.status, 400, "{}", deep.body);
    assert!(deep.body["data"].is_null(), "{}", deep.body);
    assert_eq!(
        deep.body["errors"][0]["extensions"]["code"], "query_too_deep",
        "{}",
        deep.body
    );

    // Complexity counts a connection's fields once per requested item.
    let small = gql(
        &api,
        &t.admin_token,
        "{ users(first: 100) { edges { node { id username wallet { balance } } } } }",
        json!({}),
    )
    .await;
    assert_eq!(small.status, 200, "{}", small.body);
    assert!(small.body["errors"].is_null(), "{}", small.body);
    let big = gql(&api, &t.admin_token, "{ users(first: 100) { edges { node { transactions(first: 100) { edges { node { id } } } } } } }", json!({})).await;
    assert_eq!(big.status, 400, "{}", big.body);
    assert_eq!(
        big.body["errors"][0]["extensions"]["code"], "query_too_complex",
        "{}",
        big.body
    );

    // Not GraphQL, an unknown field: 400 with errors, no data.
    for query in ["{ me { id ", "{ me { password_hash } }", "{ nope }"] {
        let r = gql(&api, &t.admin_token, query, json!({})).await;
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert_eq!(
            r.body["errors"][0]["extensions"]["code"], "invalid_query",
            "{}",
            r.body
        );
        assert!(!r.body["errors"][0]["message"].as_str().unwrap().is_empty());
    }
    // A body that is not a GraphQL request: REST's JSON errors.
    let r = api
        .post(&t.admin_token, "/graphql", json!({ "variables": {} }))
        .await;
    r.error(422, "validation_error");

    // The page works offline: no script or style from another host.
    let page = api
        .http
        .get(format!("{}/graphql", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<textarea") && html.contains("fetch(\"/graphql\""));
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("//cdn"),
        "{html}"
    );
}

/// Lists of users and of journal entries look up each relation in one batch, whatever their
/// length (a hub process of its own, so its loader metrics are this test's alone).
async fn loaders_batch_lookups(backend: Backend) {
    let infra = Infra::new(backend).await;
    let node = HubProcess::start(&infra);
    let api = node.api();
    let t = Tree::create(&api).await;
    const PLAYERS: usize = 12;
    for i in 0..PLAYERS {
        let id = make_user(
            &api,
            &t.admin_token,
            &t.client_id,
            &t.agent_id,
            "player",
            &format!("np{i}"),
        )
        .await;
        api.deposit(&t.admin_token, &id, "1.00").await;
    }
    let users = 3 + PLAYERS;
    let series = |name: &str, loader: &str| format!("{name}{{loader=\"{loader}\"}}");
    let read = |m: &str, name: &str, loader: &str| {
        metric_value(m, &series(name, loader)).unwrap_or_else(|| panic!("no {name} {loader}"))
    };
    let before = node.metrics().await;
    let r = gql(
        &api,
        &t.admin_token,
        "{ users(first: 100) { edges { node { username client { code } wallet { balance } } } } }",
        json!({}),
    )
    .await
    .ok();
    assert!(r["errors"].is_null(), "{r}");
    let edges = r["data"]["users"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), users);
    assert!(
        edges
            .iter()
            .all(|e| e["node"]["client"]["code"] == t.code.as_str())
    );
    let after = node.metrics().await;
    for loader in ["clients", "accounts"] {
        assert_eq!(
            read(&after, "graphql_loader_batches_total", loader)
                - read(&before, "graphql_loader_batches_total", loader),
            1.0,
            "{loader}: one query for {users} users"
        );
    }
    assert_eq!(
        read(&after, "graphql_loader_keys_total", "accounts")
            - read(&before, "graphql_loader_keys_total", "accounts"),
        users as f64
    );

    // The journal's entries: each entry's user, then their wallets, one batch each.
    let before = after;
    let r = gql(&api, &t.admin_token, "query($id: String!) { client(id: $id) { transactions(first: 100) { edges { node { kind user { username wallet { balance } } } } } } }", json!({ "id": t.client_id })).await.ok();
    assert!(r["errors"].is_null(), "{r}");
    let entries = r["data"]["client"]["transactions"]["edges"]
        .as_array()
        .unwrap();
    assert_eq!(entries.len(), PLAYERS);
    assert!(
        entries
            .iter()
            .all(|e| e["node"]["user"]["wallet"]["balance"] == "1.00"),
        "{r}"
    );
    let after = node.metrics().await;
    for loader in ["users", "accounts"] {
        assert_eq!(
            read(&after, "graphql_loader_batches_total", loader)
                - read(&before, "graphql_loader_batches_total", loader),
            1.0,
            "{loader}: one query for {PLAYERS} entries"
        );
    }
    assert_eq!(
        read(&after, "graphql_loader_keys_total", "users")
            - read(&before, "graphql_loader_keys_total", "users"),
        PLAYERS as f64
    );
}
