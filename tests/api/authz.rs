//! The authorization matrix: every role × own client / other client × own subtree / outside
//! subtree × every endpoint, with the exact status expected. Any difference, above all an
//! unexpected 2xx, fails the test with the whole list of differences.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Api, Backend, PASSWORD, TestHub, Tree};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Super,
    Admin,
    Agent,
    Player,
}

/// Where the target lies relative to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The caller itself.
    Own,
    /// A player in client A under agent1 (inside the agent's subtree).
    Inside,
    /// A player in client A under agent2 (outside agent1's subtree).
    Outside,
    /// A player of client B.
    OtherClient,
}

/// What the caller's reach says about a target: 2xx allowed by reach, or the refusal.
fn reach(who: Who, t: Target) -> Result<(), u16> {
    match (who, t) {
        (Who::Super, _) => Ok(()),
        (_, Target::OtherClient) => Err(404),
        (Who::Admin, _) => Ok(()),
        (Who::Agent, Target::Own | Target::Inside) => Ok(()),
        (Who::Player, Target::Own) => Ok(()),
        _ => Err(403),
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Get,
    Children,
    Ancestors,
    Subtree,
    Wallet,
    Transactions,
    Permissions,
    Rename,
    Suspend,
    Reactivate,
    Grant,
    Deposit,
    Withdraw,
    Credit,
    Debit,
}

const OPS: [Op; 15] = [
    Op::Get,
    Op::Children,
    Op::Ancestors,
    Op::Subtree,
    Op::Wallet,
    Op::Transactions,
    Op::Permissions,
    Op::Rename,
    Op::Suspend,
    Op::Reactivate,
    Op::Grant,
    Op::Deposit,
    Op::Withdraw,
    Op::Credit,
    Op::Debit,
];

/// The expected status of `op` by `who` on a target at `t`.
fn expected(op: Op, who: Who, t: Target) -> u16 {
    if let Err(status) = reach(who, t) {
        return status;
    }
    let own = t == Target::Own;
    match op {
        // Reads: every role but the player reads what it reaches; a player reads itself.
        Op::Get
        | Op::Children
        | Op::Ancestors
        | Op::Subtree
        | Op::Wallet
        | Op::Transactions
        | Op::Permissions => 200,
        // Administration: never on oneself, never by a player.
        Op::Rename | Op::Suspend | Op::Reactivate => {
            if own || who == Who::Player {
                403
            } else {
                200
            }
        }
        // Permissions: admins only (agents lack `permissions.manage`).
        Op::Grant => {
            if own || !matches!(who, Who::Super | Who::Admin) {
                403
            } else {
                200
            }
        }
        // External cash: admins.
        Op::Deposit | Op::Withdraw => {
            if matches!(who, Who::Super | Who::Admin) {
                200
            } else {
                403
            }
        }
        // Downline moves: agents, on others.
        Op::Credit | Op::Debit => {
            if who == Who::Agent && !own {
                200
            } else {
                403
            }
        }
    }
}

async fn call(api: &Api, token: &str, op: Op, id: &str, username: &str) -> u16 {
    let key = uuid::Uuid::new_v4().to_string();
    let base = format!("/api/v1/users/{id}");
    let reply = match op {
        Op::Get => api.get(token, &base).await,
        Op::Children => api.get(token, &format!("{base}/children")).await,
        Op::Ancestors => api.get(token, &format!("{base}/ancestors")).await,
        Op::Subtree => api.get(token, &format!("{base}/subtree")).await,
        Op::Wallet => api.get(token, &format!("{base}/wallet")).await,
        Op::Transactions => api.get(token, &format!("{base}/transactions")).await,
        Op::Permissions => api.get(token, &format!("{base}/permissions")).await,
        Op::Rename => {
            api.patch(token, &base, json!({ "username": username }))
                .await
        }
        Op::Suspend => api.post(token, &format!("{base}/suspend"), json!({})).await,
        Op::Reactivate => {
            api.post(token, &format!("{base}/reactivate"), json!({}))
                .await
        }
        Op::Grant => {
            api.put(
                token,
                &format!("{base}/permissions/providers.transfer"),
                json!({}),
            )
            .await
        }
        Op::Deposit | Op::Withdraw | Op::Credit | Op::Debit => {
            let verb = match op {
                Op::Deposit => "deposit",
                Op::Withdraw => "withdraw",
                Op::Credit => "credit",
                _ => "debit",
            };
            api.post_key(
                token,
                &format!("{base}/wallet/{verb}"),
                &key,
                json!({ "amount": "1.00" }),
            )
            .await
        }
    };
    if !(200..300).contains(&reply.status) {
        assert!(
            reply.body["error"]["code"].is_string(),
            "{op:?}: error without a code: {}",
            reply.body
        );
    }
    reply.status
}

async fn create_user(
    api: &Api,
    token: &str,
    client_id: Option<&str>,
    parent: &str,
    role: &str,
    name: &str,
) -> Value {
    let mut body =
        json!({ "parent_id": parent, "role": role, "username": name, "password": PASSWORD });
    if let Some(c) = client_id {
        body["client_id"] = json!(c);
    }
    api.post(token, "/api/v1/users", body).await.ok()
}

async fn authorization_matrix(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let a = Tree::create(&api).await;
    let b = Tree::create(&api).await;
    let agent2 = create_user(&api, &a.admin_token, None, &a.admin_id, "agent", "agent2").await;
    let agent2_id = agent2["id"].as_str().unwrap().to_owned();
    let p_in = create_user(&api, &a.agent_token, None, &a.agent_id, "player", "p_in").await;
    let p_out = create_user(&api, &a.admin_token, None, &agent2_id, "player", "p_out").await;
    let p_in = p_in["id"].as_str().unwrap().to_owned();
    let p_out = p_out["id"].as_str().unwrap().to_owned();
    // Money for every withdrawal and debit the matrix may make.
    for id in [&a.agent_id, &p_in, &p_out, &a.player_id, &a.admin_id] {
        api.deposit(&a.admin_token, id, "1000").await;
    }
    api.deposit(&b.admin_token, &b.player_id, "1000").await;

    let callers = [
        (Who::Super, a.super_token.clone(), None),
        (
            Who::Admin,
            a.admin_token.clone(),
            Some((a.admin_id.clone(), "boss")),
        ),
        (
            Who::Agent,
            a.agent_token.clone(),
            Some((a.agent_id.clone(), "agent1")),
        ),
        (
            Who::Player,
            a.player_token.clone(),
            Some((a.player_id.clone(), "player1")),
        ),
    ];
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (who, token, me) in &callers {
        let mut targets = vec![
            (Target::Inside, p_in.clone(), "p_in"),
            (Target::Outside, p_out.clone(), "p_out"),
            (Target::OtherClient, b.player_id.clone(), "player1"),
        ];
        if let Some((id, name)) = me {
            targets.insert(0, (Target::Own, id.clone(), *name));
        }
        for (t, id, name) in &targets {
            for op in OPS {
                let want = expected(op, *who, *t);
                let got = call(&api, token, op, id, name).await;
                checked += 1;
                if got != want {
                    wrong.push(format!(
                        "{who:?} {op:?} on {t:?}: expected {want}, got {got}"
                    ));
                }
            }
        }
    }

    // Endpoints without a user in the path: (who, what, expected, actual).
    let unique = || format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    for (who, token, _) in &callers {
        let w = *who;
        let is = |x: Who| w == x;
        let admin_or_super = is(Who::Super) || is(Who::Admin);
        let mut check = |what: &str, want: u16, got: u16| {
            checked += 1;
            if want != got {
                wrong.push(format!("{w:?} {what}: expected {want}, got {got}"));
            }
        };
        // Create a player under a parent in / out of the subtree / in another client.
        let client_for = |cid: &str| {
            if is(Who::Super) {
                Some(cid.to_owned())
            } else {
                None
            }
        };
        for (place, parent, cid, want) in [
            (
                "inside",
                a.agent_id.as_str(),
                a.client_id.as_str(),
                if is(Who::Player) { 403 } else { 201 },
            ),
            (
                "outside",
                agent2_id.as_str(),
                a.client_id.as_str(),
                match w {
                    Who::Super | Who::Admin => 201,
                    _ => 403,
                },
            ),
            (
                "other client",
                b.agent_id.as_str(),
                b.client_id.as_str(),
                match w {
                    Who::Super => 201,
                    Who::Player => 403,
                    _ => 404,
                },
            ),
        ] {
            let mut body = json!({ "parent_id": parent, "role": "player", "username": unique(), "password": PASSWORD });
            if let Some(c) = client_for(cid) {
                body["client_id"] = json!(c);
            }
            let got = api.post(token, "/api/v1/users", body).await.status;
            check(&format!("create user {place}"), want, got);
        }
        // Creating a client admin is the platform's alone.
        let mut body =
            json!({ "role": "client_admin", "username": unique(), "password": PASSWORD });
        if is(Who::Super) {
            body["client_id"] = json!(a.client_id);
        }
        let got = api.post(token, "/api/v1/users", body).await.status;
        check(
            "create client admin",
            if is(Who::Super) { 201 } else { 403 },
            got,
        );

        let got = api.get(token, "/api/v1/users").await.status;
        check("list users", if is(Who::Player) { 403 } else { 200 }, got);
        let got = api
            .get(token, &format!("/api/v1/users?client_id={}", b.client_id))
            .await
            .status;
        let want = match w {
            Who::Super => 200,
            Who::Player => 403,
            _ => 404,
        };
        check("list users of the other client", want, got);

        let got = api.get(token, "/api/v1/clients").await.status;
        check("list clients", if admin_or_super { 200 } else { 403 }, got);
        let got = api
            .post(
                token,
                "/api/v1/clients",
                json!({ "code": unique(), "name": "X", "currency": "EUR" }),
            )
            .await
            .status;
        check("create client", if is(Who::Super) { 201 } else { 403 }, got);
        for (which, cid) in [("own", &a.client_id), ("other", &b.client_id)] {
            let other = which == "other";
            let read_want = if is(Who::Super) {
                200
            } else if other {
                404
            } else if is(Who::Admin) {
                200
            } else {
                403
            };
            let write_want = if is(Who::Super) {
                200
            } else if other {
                404
            } else {
                403
            };
            let got = api
                .get(token, &format!("/api/v1/clients/{cid}"))
                .await
                .status;
            check(&format!("get {which} client"), read_want, got);
            let got = api
                .get(token, &format!("/api/v1/clients/{cid}/settings"))
                .await
                .status;
            check(&format!("get {which} client settings"), read_want, got);
            let got = api
                .patch(
                    token,
                    &format!("/api/v1/clients/{cid}"),
                    json!({ "name": "Test Casino" }),
                )
                .await
                .status;
            check(&format!("update {which} client"), write_want, got);
            let got = api
                .patch(
                    token,
                    &format!("/api/v1/clients/{cid}/settings"),
                    json!({ "commission_rate": "0.01" }),
                )
                .await
                .status;
            check(&format!("update {which} client settings"), write_want, got);
            let got = api
                .put(
                    token,
                    &format!("/api/v1/clients/{cid}/credentials/jdb"),
                    json!({ "credentials": { "base_url": "http://127.0.0.1:9", "operator": "op1", "parent": "ag1", "key": "0123456789abcdef", "iv": "0123456789abcdef" } }),
                )
                .await
                .status;
            check(&format!("set {which} client credentials"), write_want, got);
        }

        let got = api.get(token, "/api/v1/audit").await.status;
        check("read audit", if admin_or_super { 200 } else { 403 }, got);
        let got = api
            .get(token, &format!("/api/v1/audit?client_id={}", b.client_id))
            .await
            .status;
        let want = match w {
            Who::Super => 200,
            Who::Admin => 404,
            _ => 403,
        };
        check("read other client's audit", want, got);
    }

    eprintln!("authorization matrix: {checked} checks");
    assert!(checked > 300, "only {checked} checks ran");
    assert!(
        wrong.is_empty(),
        "{} of {checked} checks differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    hub.infra.assert_ledger_ok();
}

/// Fields that are not the caller's to set are refused, not ignored (mass assignment).
async fn protected_fields_cannot_be_assigned(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let a = Tree::create(&api).await;
    let user = format!("/api/v1/users/{}", a.player_id);
    for field in [
        json!({ "role": "client_admin" }),
        json!({ "client_id": "x" }),
        json!({ "balance": "100.00" }),
        json!({ "parent_id": a.admin_id }),
        json!({ "status": "active" }),
        json!({ "password_hash": "x" }),
    ] {
        api.patch(&a.admin_token, &user, field.clone())
            .await
            .error(422, "validation_error");
    }
    api.patch(
        &a.super_token,
        &format!("/api/v1/clients/{}/settings", a.client_id),
        json!({ "currency": "EUR" }),
    )
    .await
    .error(422, "validation_error");
    api.patch(
        &a.super_token,
        &format!("/api/v1/clients/{}", a.client_id),
        json!({ "currency_exponent": 4 }),
    )
    .await
    .error(422, "validation_error");
    let login = api
        .send(
            api.http
                .post(format!("{}/api/v1/auth/login", api.base))
                .json(&json!({ "client": a.code, "username": "player1", "password": PASSWORD, "role": "super_admin" })),
        )
        .await;
    login.error(422, "validation_error");
    // Nothing changed.
    let me = api.get(&a.admin_token, &user).await.ok();
    assert_eq!(me["role"], "player");
    assert_eq!(me["parent_id"], json!(a.agent_id));
    assert_eq!(api.balance(&a.admin_token, &a.player_id).await, "0.00");
}

backend_tests!(
    authorization_matrix,
    protected_fields_cannot_be_assigned,
    documented_operations_need_a_token
);

/// `/openapi.json` and `/docs` need no token; every operation it marks as secured refuses a
/// request without one (401), whatever the body.
async fn documented_operations_need_a_token(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let doc: Value = api
        .send(api.http.get(format!("{}/openapi.json", api.base)))
        .await
        .ok();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let docs = api
        .http
        .get(format!("{}/docs", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status().as_u16(), 200);
    let html = docs.text().await.unwrap();
    assert!(html.contains("/openapi.json") && !html.contains("https://"));
    // Swagger UI's files come from the hub itself (vendored), not from a CDN.
    let script = api
        .http
        .get(format!("{}/docs/swagger-ui-bundle.js", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status().as_u16(), 200);

    let mut secured = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if op["security"].as_array().unwrap().is_empty() {
                continue;
            }
            let url = format!(
                "{}{}",
                api.base,
                path.replace("{id}", "x")
                    .replace("{provider}", "jdb")
                    .replace("{permission}", "users.read")
            );
            let req = match method.as_str() {
                "get" => api.http.get(&url),
                "post" => api.http.post(&url),
                "patch" => api.http.patch(&url),
                "put" => api.http.put(&url),
                "delete" => api.http.delete(&url),
                other => panic!("method {other}"),
            };
            let reply = api
                .send(req.header("Idempotency-Key", "k").json(&json!({})))
                .await;
            assert_eq!(reply.status, 401, "{method} {path}: {}", reply.body);
            secured += 1;
        }
    }
    assert!(secured >= 29, "{secured}");
}
