//! The web session under the console (issue 20), over plain HTTP: logging in through the form
//! (cookie flags), CSRF and origin refusals, renewal by the refresh cookie, logout revoking the
//! session, and `/ws` taking the session cookie from the hub's own origin only.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::backend_tests;
use crate::helpers::{Backend, PASSWORD, TestHub, Tree};

/// A browser stand-in: no redirects followed, cookies kept by name, `Origin` sent on posts.
pub struct WebClient {
    pub base: String,
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    /// Every `Set-Cookie` header seen, raw (flags are checked on them).
    pub set_cookies: Vec<String>,
}

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the first hidden field `name`.
    pub fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no field {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

impl WebClient {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            set_cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = if self.cookies.is_empty() {
            req
        } else {
            req.header("cookie", self.cookie_header())
        };
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        for value in headers.get_all("set-cookie") {
            let raw = value.to_str().unwrap().to_owned();
            let pair = raw.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
            self.set_cookies.push(raw);
        }
        let body = res.text().await.unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// A form post from `origin` (`None`: no `Origin` header at all).
    pub async fn post_from(
        &mut self,
        origin: Option<&str>,
        path: &str,
        form: &[(&str, &str)],
    ) -> Page {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        self.send(req).await
    }

    /// A form post as the hub's own pages make it.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let origin = self.base.clone();
        self.post_from(Some(&origin), path, form).await
    }

    /// Logs in through the console's form; panics unless it lands on the console.
    pub async fn login(&mut self, client: Option<&str>, username: &str, password: &str) {
        let page = self
            .post(
                "/console/login",
                &[
                    ("client", client.unwrap_or("")),
                    ("username", username),
                    ("password", password),
                    ("next", "/console"),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(page.location(), "/console");
    }
}

async fn form_login_sets_strict_http_only_cookies(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let tree = Tree::create(&hub.api()).await;
    let mut web = WebClient::new(&hub.base);

    let page = web.get("/console").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/console/login?next=%2Fconsole");
    let form = web.get("/console/login?next=%2Fconsole").await;
    assert_eq!(form.status, 200);
    let csp = form.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        form.body.contains("<label for=\"username\">"),
        "{}",
        form.body
    );

    let wrong = web
        .post(
            "/console/login",
            &[
                ("client", &tree.code),
                ("username", "boss"),
                ("password", "nope-nope-1"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.body.contains("id=\"login-error\""), "{}", wrong.body);
    assert!(web.cookies.is_empty());

    web.login(Some(&tree.code), "boss", PASSWORD).await;
    for name in ["nashub_access", "nashub_refresh"] {
        let raw = web
            .set_cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} cookie: {:?}", web.set_cookies));
        assert!(raw.contains("HttpOnly"), "{raw}");
        assert!(raw.contains("SameSite=Strict"), "{raw}");
        assert!(raw.contains("Path=/"), "{raw}");
        assert!(!raw.contains("Secure"), "plain HTTP: no Secure flag: {raw}");
    }
    let home = web.get("/console").await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("Client admin"), "{}", home.body);
    assert!(home.body.contains(&tree.admin_id), "{}", home.body);
    // The token in the cookie is an API session like any other.
    let access = web.cookies["nashub_access"].clone();
    hub.api()
        .get(&access, &format!("/api/v1/users/{}", tree.admin_id))
        .await
        .ok();

    // A player's session opens no console page.
    let mut player = WebClient::new(&hub.base);
    player.login(Some(&tree.code), "player1", PASSWORD).await;
    assert_eq!(player.get("/console").await.status, 403);
}

async fn forms_without_csrf_or_from_another_origin_are_refused(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let tree = Tree::create(&hub.api()).await;
    let mut web = WebClient::new(&hub.base);

    // The login form itself is refused from another origin (and with no origin at all).
    let evil = &[
        ("client", tree.code.as_str()),
        ("username", "boss"),
        ("password", PASSWORD),
    ];
    assert_eq!(
        web.post_from(Some("http://evil.example"), "/console/login", evil)
            .await
            .status,
        403
    );
    assert_eq!(
        web.post_from(None, "/console/login", evil).await.status,
        403
    );
    // A body that is not a form: the 400 page.
    let not_a_form = web
        .http
        .post(format!("{}/console/login", hub.base))
        .header("origin", hub.base.as_str())
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_form.status().as_u16(), 400);
    assert!(web.cookies.is_empty());

    web.login(Some(&tree.code), "boss", PASSWORD).await;
    let home = web.get("/console").await;
    let csrf = home.field("csrf");
    assert!(csrf.len() >= 40, "{csrf}");

    let no_token = web.post("/console/logout", &[]).await;
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    assert!(no_token.body.contains("Form refused"), "{}", no_token.body);
    let wrong = web
        .post(
            "/console/logout",
            &[("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
        )
        .await;
    assert_eq!(wrong.status, 403);
    let cross = web
        .post_from(
            Some("http://evil.example"),
            "/console/logout",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(cross.status, 403);
    // Another session's token does not fit this one.
    let mut other = WebClient::new(&hub.base);
    other.login(Some(&tree.code), "agent1", PASSWORD).await;
    let other_csrf = other.get("/console").await.field("csrf");
    assert_ne!(other_csrf, csrf);
    assert_eq!(
        web.post("/console/logout", &[("csrf", &other_csrf)])
            .await
            .status,
        403
    );
    assert_eq!(
        web.get("/console").await.status,
        200,
        "refusals left the session alone"
    );

    // The right token logs out, and the session is revoked for the API too.
    let access = web.cookies["nashub_access"].clone();
    let out = web.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/console/login");
    assert!(web.cookies.is_empty(), "{:?}", web.cookies);
    hub.api()
        .get(&access, &format!("/api/v1/users/{}", tree.admin_id))
        .await
        .error(401, "session_ended");
    let mut stale = WebClient::new(&hub.base);
    stale.cookies.insert("nashub_access".into(), access);
    assert_eq!(stale.get("/console").await.status, 303);
}

async fn an_expired_access_cookie_is_renewed_by_the_refresh_cookie(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let tree = Tree::create(&hub.api()).await;
    let mut web = WebClient::new(&hub.base);
    web.login(Some(&tree.code), "agent1", PASSWORD).await;
    let old_refresh = web.cookies["nashub_refresh"].clone();
    web.cookies.insert("nashub_access".into(), "expired".into());
    let page = web.get("/console").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_ne!(web.cookies["nashub_access"], "expired");
    assert_ne!(
        web.cookies["nashub_refresh"], old_refresh,
        "the refresh token rotated"
    );
    // A suspended user's session ends at once, refresh or not.
    hub.api()
        .post(
            &tree.admin_token,
            &format!("/api/v1/users/{}/suspend", tree.agent_id),
            json!({}),
        )
        .await
        .ok();
    let page = web.get("/console").await;
    assert_eq!(page.status, 303);
    assert!(
        page.location().starts_with("/console/login"),
        "{}",
        page.location()
    );
}

async fn the_websocket_takes_the_session_cookie_from_the_hubs_origin_only(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let tree = Tree::create(&hub.api()).await;
    let mut web = WebClient::new(&hub.base);
    web.login(Some(&tree.code), "boss", PASSWORD).await;
    let host = hub.base.trim_start_matches("http://").to_owned();
    let ws_url = format!("ws://{host}/ws");
    let connect = |origin: String| {
        let mut req = ws_url.as_str().into_client_request().unwrap();
        req.headers_mut()
            .insert("cookie", web.cookie_header().parse().unwrap());
        req.headers_mut().insert("origin", origin.parse().unwrap());
        req
    };
    // Own origin: authenticated, so subscribing to the own user room works without a token.
    let (mut ws, _) = tokio_tungstenite::connect_async(connect(hub.base.clone()))
        .await
        .unwrap();
    let room = format!("user:{}", tree.admin_id);
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        json!({ "type": "subscribe", "room": room }).to_string(),
    ))
    .await
    .unwrap();
    let answer = next_json(&mut ws).await;
    assert_eq!(answer["type"], "subscribed", "{answer}");

    // Another origin: the cookie is ignored, the socket is unauthenticated.
    let (mut ws, _) = tokio_tungstenite::connect_async(connect("http://evil.example".into()))
        .await
        .unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        json!({ "type": "subscribe", "room": room }).to_string(),
    ))
    .await
    .unwrap();
    let answer = next_json(&mut ws).await;
    assert_ne!(answer["type"], "subscribed", "{answer}");
}

async fn next_json<S>(ws: &mut S) -> serde_json::Value
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .expect("frame");
        match msg {
            tokio_tungstenite::tungstenite::Message::Text(text) => {
                let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                if value["type"] != "pong" {
                    return value;
                }
            }
            tokio_tungstenite::tungstenite::Message::Close(frame) => {
                return json!({ "type": "closed", "frame": format!("{frame:?}") });
            }
            _ => {}
        }
    }
}

async fn a_double_submitted_deposit_form_moves_money_once(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let tree = Tree::create(&hub.api()).await;
    let mut web = WebClient::new(&hub.base);
    web.login(Some(&tree.code), "boss", PASSWORD).await;
    let page = web.get(&format!("/console/users/{}", tree.player_id)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"form-deposit\""), "{}", page.body);
    let csrf = page.field("csrf");
    let key = page.field("idempotency_key");
    let path = format!("/console/users/{}/wallet/deposit", tree.player_id);
    let form = [
        ("csrf", csrf.as_str()),
        ("idempotency_key", key.as_str()),
        ("amount", "12.50"),
        ("memo", ""),
    ];
    for _ in 0..2 {
        let done = web.post(&path, &form).await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(
            done.location(),
            format!("/console/users/{}?done=deposit", tree.player_id)
        );
    }
    assert_eq!(
        hub.api().balance(&tree.admin_token, &tree.player_id).await,
        "12.50"
    );
    let page = web
        .get(&format!("/console/users/{}?done=deposit", tree.player_id))
        .await;
    assert!(page.body.contains(">12.50<"), "{}", page.body);
    assert_eq!(
        page.body.matches("<td>deposit</td>").count(),
        1,
        "{}",
        page.body
    );
    // A fresh rendering has a fresh key: a second deposit is a second movement.
    assert_ne!(page.field("idempotency_key"), key);

    // Bad amounts are refused in place, nothing moves.
    let bad = web
        .post(
            &path,
            &[
                ("csrf", csrf.as_str()),
                ("idempotency_key", "k-bad-1"),
                ("amount", "1.234"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("id=\"deposit-error\""), "{}", bad.body);
    assert!(
        bad.body.contains("value=\"1.234\""),
        "the typed amount is kept: {}",
        bad.body
    );
    let withdraw = format!("/console/users/{}/wallet/withdraw", tree.player_id);
    let short = web
        .post(
            &withdraw,
            &[
                ("csrf", csrf.as_str()),
                ("idempotency_key", "k-bad-2"),
                ("amount", "100"),
            ],
        )
        .await;
    assert_eq!(short.status, 409, "{}", short.body);
    assert!(
        short.body.contains("id=\"withdraw-error\""),
        "{}",
        short.body
    );
    // Credit is an agent's (wallets.downline): no such form for a client admin.
    assert!(!short.body.contains("id=\"form-credit\""), "{}", short.body);
    assert_eq!(
        hub.api().balance(&tree.admin_token, &tree.player_id).await,
        "12.50"
    );

    // Without the CSRF token nothing moves either.
    let forged = web
        .post(&path, &[("idempotency_key", "k-forged"), ("amount", "5")])
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        hub.api().balance(&tree.admin_token, &tree.player_id).await,
        "12.50"
    );

    // CSV export of the same history.
    let csv = web
        .get(&format!(
            "/console/users/{}/transactions.csv",
            tree.player_id
        ))
        .await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "id,kind,amount,balance_after,currency,created_at,memo"
    );
    assert_eq!(lines.len(), 2, "{}", csv.body);
    assert!(
        lines[1].contains("\"deposit\",\"12.50\",\"12.50\",\"USD\""),
        "{}",
        csv.body
    );
}

async fn pages_follow_the_apis_reach(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    // A second agent with its own player.
    let other_agent = api
        .post(
            &tree.admin_token,
            "/api/v1/users",
            json!({ "role": "agent", "username": "agent2", "password": PASSWORD }),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_token = api.token(Some(&tree.code), "agent2").await;
    let other_player = api
        .post(
            &other_token,
            "/api/v1/users",
            json!({ "role": "player", "username": "player2", "password": PASSWORD }),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut agent = WebClient::new(&hub.base);
    agent.login(Some(&tree.code), "agent1", PASSWORD).await;
    // Its own player: the page, with credit/debit forms.
    let own = agent
        .get(&format!("/console/users/{}", tree.player_id))
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert!(own.body.contains("id=\"form-credit\""), "{}", own.body);
    // Another agent's player and the other agent: refused as the API refuses them.
    let api_status = api
        .get(&tree.agent_token, &format!("/api/v1/users/{other_player}"))
        .await
        .status;
    let refused = agent.get(&format!("/console/users/{other_player}")).await;
    assert_eq!(refused.status, api_status, "{}", refused.body);
    assert!(refused.status == 403 || refused.status == 404);
    assert_eq!(
        agent
            .get(&format!("/console/users/{other_agent}"))
            .await
            .status,
        403
    );
    // ... and so is moving money to it, even with a valid token and key.
    let csrf = own.field("csrf");
    let credit = agent
        .post(
            &format!("/console/users/{other_player}/wallet/credit"),
            &[
                ("csrf", csrf.as_str()),
                ("idempotency_key", "k-x"),
                ("amount", "1"),
            ],
        )
        .await;
    assert_eq!(credit.status, api_status, "{}", credit.body);
    // The agent's list shows its downline only.
    let list = agent.get("/console/users").await;
    assert_eq!(list.status, 200);
    assert!(
        list.body.contains("player1") && !list.body.contains("player2"),
        "{}",
        list.body
    );

    // Another client's user: 404 for a client admin, as in the API.
    let other_tree = Tree::create(&api).await;
    let mut admin = WebClient::new(&hub.base);
    admin.login(Some(&tree.code), "boss", PASSWORD).await;
    assert_eq!(
        admin
            .get(&format!("/console/users/{}", other_tree.player_id))
            .await
            .status,
        404
    );

    // Creating a player through the form lands on its page.
    let list = admin.get("/console/users").await;
    let csrf = list.field("csrf");
    let created = admin
        .post(
            "/console/users",
            &[
                ("csrf", csrf.as_str()),
                ("role", "player"),
                ("username", "newbie"),
                ("password", PASSWORD),
                ("parent_id", tree.agent_id.as_str()),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let page = admin.get(created.location()).await;
    assert!(page.body.contains("newbie"), "{}", page.body);
    let dup = admin
        .post(
            "/console/users",
            &[
                ("csrf", csrf.as_str()),
                ("role", "player"),
                ("username", "newbie"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(dup.status, 409, "{}", dup.body);
    assert!(dup.body.contains("id=\"create-error\""), "{}", dup.body);

    // Suspending through the page ends the player's sessions (API token refused).
    let player_page = admin
        .get(&format!("/console/users/{}", tree.player_id))
        .await;
    let csrf = player_page.field("csrf");
    let done = admin
        .post(
            &format!("/console/users/{}/status", tree.player_id),
            &[("csrf", csrf.as_str()), ("action", "suspend")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    api.get(
        &tree.player_token,
        &format!("/api/v1/users/{}", tree.player_id),
    )
    .await
    .error(401, "session_ended");
}

async fn the_withdrawal_queue_approves_and_rejects_through_the_api(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.player_id, "50.00")
        .await;
    let request = |key: &'static str| {
        api.post_key(
            &tree.player_token,
            "/api/v1/payments/withdrawals",
            key,
            json!({ "gateway": "stripe", "amount": "20.00", "destination": "ba_player_1" }),
        )
    };
    let first = request("w-1").await.ok();
    let first = first["id"].as_str().unwrap().to_owned();
    assert_eq!(
        api.balance(&tree.admin_token, &tree.player_id).await,
        "30.00"
    );

    let mut admin = WebClient::new(&hub.base);
    admin.login(Some(&tree.code), "boss", PASSWORD).await;
    let queue = admin.get("/console/payments").await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    assert!(
        queue.body.contains(&format!("id=\"payment-{first}\"")),
        "{}",
        queue.body
    );
    assert!(
        queue
            .body
            .contains(&format!("data-rooms=\"payments:{}\"", tree.client_id))
    );
    let csrf = queue.field("csrf");

    // The agent may not decide (the API's permission), whatever the page.
    let mut agent = WebClient::new(&hub.base);
    agent.login(Some(&tree.code), "agent1", PASSWORD).await;
    let agent_csrf = agent.get("/console").await.field("csrf");
    let refused = agent
        .post(
            &format!("/console/payments/{first}/approve"),
            &[("csrf", agent_csrf.as_str())],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    // A rejection needs a reason (in place), then returns the money.
    let path = format!("/console/payments/{first}/reject");
    let no_reason = admin
        .post(&path, &[("csrf", csrf.as_str()), ("reason", " ")])
        .await;
    assert_eq!(no_reason.status, 422, "{}", no_reason.body);
    assert!(
        no_reason.body.contains("id=\"payment-error\""),
        "{}",
        no_reason.body
    );
    let rejected = admin
        .post(
            &path,
            &[("csrf", csrf.as_str()), ("reason", "documents missing")],
        )
        .await;
    assert_eq!(rejected.status, 303, "{}", rejected.body);
    assert_eq!(rejected.location(), "/console/payments?done=reject");
    assert_eq!(
        api.balance(&tree.admin_token, &tree.player_id).await,
        "50.00"
    );
    let payment = api
        .get(&tree.admin_token, &format!("/api/v1/payments/{first}"))
        .await
        .ok();
    assert_eq!(payment["reason"], "documents missing", "{payment}");
    // Deciding twice: 409 in place.
    let again = admin
        .post(
            &format!("/console/payments/{first}/approve"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);

    // Approval of a second request.
    let second = request("w-2").await.ok();
    let second = second["id"].as_str().unwrap().to_owned();
    let approved = admin
        .post(
            &format!("/console/payments/{second}/approve"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(approved.status, 303, "{}", approved.body);
    let payment = api
        .get(&tree.admin_token, &format!("/api/v1/payments/{second}"))
        .await
        .ok();
    assert_ne!(payment["state"], "requested", "{payment}");
    assert!(!admin.get("/console/payments").await.body.contains(&second));
}

async fn super_admin_pages_clients_and_the_audit_chain(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let tree = Tree::create(&hub.api()).await;
    let mut root = WebClient::new(&hub.base);
    root.login(None, "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let clients = root.get("/console/clients").await;
    assert_eq!(clients.status, 200, "{}", clients.body);
    assert!(clients.body.contains(&tree.code), "{}", clients.body);
    let csrf = clients.field("csrf");
    let form = |code: &'static str| {
        [
            ("code", code),
            ("name", "Web Casino"),
            ("currency", "EUR"),
            ("currency_exponent", "2"),
        ]
    };
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend(form("webcasino"));
    let created = root.post("/console/clients", &fields).await;
    assert_eq!(created.status, 303, "{}", created.body);
    assert!(
        root.get("/console/clients")
            .await
            .body
            .contains("webcasino")
    );
    let again = root.post("/console/clients", &fields).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("id=\"client-error\""), "{}", again.body);

    let audit = root.get("/console/audit?action=client.create").await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    assert!(
        audit.body.contains("<td>client.create</td>"),
        "{}",
        audit.body
    );
    let verified = root.get("/console/audit?verify=1").await;
    assert_eq!(verified.status, 200);
    assert!(verified.body.contains("Chain intact"), "{}", verified.body);

    // Below the platform: no clients page; a client admin reads its own audit rows but does
    // not run the platform's chain check.
    let mut admin = WebClient::new(&hub.base);
    admin.login(Some(&tree.code), "boss", PASSWORD).await;
    assert_eq!(admin.get("/console/clients").await.status, 403);
    let own = admin.get("/console/audit").await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert!(own.body.contains("<td>auth.login</td>"), "{}", own.body);
    assert!(!own.body.contains("id=\"verify-chain\""), "{}", own.body);
    assert_eq!(admin.get("/console/audit?verify=1").await.status, 403);
    let mut agent = WebClient::new(&hub.base);
    agent.login(Some(&tree.code), "agent1", PASSWORD).await;
    assert_eq!(agent.get("/console/audit").await.status, 403);
    let forged = agent.post("/console/clients", &fields).await;
    assert_eq!(forged.status, 403);
}

async fn notices_go_to_a_user_or_the_whole_client(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let mut admin = WebClient::new(&hub.base);
    admin.login(Some(&tree.code), "boss", PASSWORD).await;
    let form = admin.get("/console/notifications").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.field("csrf");
    let sent = admin
        .post(
            "/console/notifications",
            &[
                ("csrf", csrf.as_str()),
                ("user_id", tree.player_id.as_str()),
                ("title", "Hello"),
                ("body", "Just you"),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let everyone = admin
        .post(
            "/console/notifications",
            &[
                ("csrf", csrf.as_str()),
                ("user_id", ""),
                ("title", "All"),
                ("body", "Everyone"),
            ],
        )
        .await;
    assert_eq!(everyone.status, 303, "{}", everyone.body);
    let empty = admin
        .post(
            "/console/notifications",
            &[("csrf", csrf.as_str()), ("title", ""), ("body", "x")],
        )
        .await;
    assert_eq!(empty.status, 422, "{}", empty.body);
    assert!(empty.body.contains("id=\"notify-error\""), "{}", empty.body);
    let inbox = api
        .get(
            &tree.player_token,
            &format!("/api/v1/users/{}/notifications", tree.player_id),
        )
        .await
        .ok();
    let titles: Vec<&str> = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert!(
        titles.contains(&"Hello") && titles.contains(&"All"),
        "{inbox}"
    );
    // An agent has no notifications.send by default: refused.
    let mut agent = WebClient::new(&hub.base);
    agent.login(Some(&tree.code), "agent1", PASSWORD).await;
    let agent_csrf = agent.get("/console").await.field("csrf");
    let refused = agent
        .post(
            "/console/notifications",
            &[("csrf", agent_csrf.as_str()), ("title", "x"), ("body", "y")],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
}

/// The form fields of the client page's settings form, with `changes` replacing some.
fn settings_form<'a>(csrf: &'a str, changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("csrf", csrf),
        ("commission_rate", "0.0750"),
        ("revenue_share_rate", "0.1200"),
        ("commission_basis", "turnover"),
        ("commission_negative_carryover", "on"),
        ("settlement_schedule", "weekly"),
        ("timezone", "Europe/Berlin"),
        ("limit_raise_cooloff_hours", "48"),
        ("max_deposit", "500"),
        ("max_withdrawal", ""),
        ("max_transfer", ""),
        (
            "allowed_origins",
            "https://play.web.example\r\nhttps://m.web.example",
        ),
        ("site_hosts", ""),
    ];
    for (k, v) in changes {
        fields.retain(|(name, _)| name != k);
        fields.push((k, v));
    }
    fields
}

async fn a_client_page_edits_settings_branding_providers_and_credentials(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let settings_url = format!("/api/v1/clients/{}/settings", tree.client_id);
    let page_url = format!("/console/clients/{}", tree.client_id);
    let mut root = WebClient::new(&hub.base);
    root.login(None, "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let list = root.get("/console/clients").await;
    assert!(
        list.body.contains(&format!("href=\"{page_url}\"")),
        "{}",
        list.body
    );
    let page = root.get(&page_url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&tree.code), "{}", page.body);
    let stored = api.get(&tree.super_token, &settings_url).await.ok();
    let rate = stored["commission_rate"].as_str().unwrap();
    assert!(
        page.body
            .contains(&format!("name=\"commission_rate\" value=\"{rate}\"")),
        "{}",
        page.body
    );
    let csrf = page.field("csrf");

    // Settings: saved through the API's PATCH, read back there.
    let saved = root
        .post(&format!("{page_url}/settings"), &settings_form(&csrf, &[]))
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location(), format!("{page_url}?done=settings"));
    let s = api.get(&tree.super_token, &settings_url).await.ok();
    assert_eq!(s["commission_rate"], "0.0750", "{s}");
    assert_eq!(s["revenue_share_rate"], "0.1200", "{s}");
    assert_eq!(s["commission_basis"], "turnover", "{s}");
    assert_eq!(s["commission_negative_carryover"], true, "{s}");
    assert_eq!(s["settlement_schedule"], "weekly", "{s}");
    assert_eq!(s["timezone"], "Europe/Berlin", "{s}");
    assert_eq!(s["limit_raise_cooloff_hours"], 48, "{s}");
    assert_eq!(s["limits"]["max_deposit"], "500.00", "{s}");
    assert!(s["limits"]["max_withdrawal"].is_null(), "{s}");
    assert_eq!(
        s["allowed_origins"],
        json!(["https://play.web.example", "https://m.web.example"]),
        "{s}"
    );
    let shown = root.get(&format!("{page_url}?done=settings")).await;
    assert!(shown.body.contains("id=\"notice\""), "{}", shown.body);
    assert!(
        shown.body.contains("value=\"Europe/Berlin\""),
        "{}",
        shown.body
    );

    // The API's refusal in place, the typed values kept, nothing stored.
    let bad = root
        .post(
            &format!("{page_url}/settings"),
            &settings_form(
                &csrf,
                &[("commission_rate", "1.5"), ("timezone", "Mars/Base")],
            ),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("id=\"settings-error\""), "{}", bad.body);
    assert!(bad.body.contains("commission_rate"), "{}", bad.body);
    assert!(bad.body.contains("value=\"Mars/Base\""), "{}", bad.body);
    let s = api.get(&tree.super_token, &settings_url).await.ok();
    assert_eq!(s["commission_rate"], "0.0750", "{s}");

    // Branding.
    let branded = root
        .post(
            &format!("{page_url}/branding"),
            &[
                ("csrf", csrf.as_str()),
                ("display_name", "Lucky Web"),
                ("logo_url", ""),
                ("primary_color", "#112233"),
            ],
        )
        .await;
    assert_eq!(branded.status, 303, "{}", branded.body);
    let s = api.get(&tree.super_token, &settings_url).await.ok();
    assert_eq!(s["branding"]["display_name"], "Lucky Web", "{s}");
    assert_eq!(s["branding"]["primary_color"], "#112233", "{s}");
    assert!(s["branding"]["logo_url"].is_null(), "{s}");

    // Enabled providers: the checked boxes only.
    let only_jdb = root
        .post(
            &format!("{page_url}/providers"),
            &[("csrf", csrf.as_str()), ("provider", "jdb")],
        )
        .await;
    assert_eq!(only_jdb.status, 303, "{}", only_jdb.body);
    let s = api.get(&tree.super_token, &settings_url).await.ok();
    assert_eq!(s["enabled_providers"], json!(["jdb"]), "{s}");
    let page = root.get(&page_url).await;
    assert!(
        page.body
            .contains("id=\"p-jdb\" name=\"provider\" value=\"jdb\" checked"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("value=\"luckysports\" checked"),
        "{}",
        page.body
    );

    // Credentials: stored sealed, described, never shown; a bad one named, its secret dropped.
    let secret = "s3cret-never-shown-42";
    let stored = root
        .post(
            &format!("{page_url}/credentials/luckysports"),
            &[
                ("csrf", csrf.as_str()),
                ("base_url", "http://127.0.0.1:9"),
                ("operator", "webop"),
                ("secret", secret),
            ],
        )
        .await;
    assert_eq!(stored.status, 303, "{}", stored.body);
    let s = api.get(&tree.super_token, &settings_url).await.ok();
    let creds = s["credentials"].as_array().unwrap();
    assert!(
        creds
            .iter()
            .any(|c| c["provider"] == "luckysports" && c["configured"] == true),
        "{s}"
    );
    let page = root.get(&format!("{page_url}?done=credentials")).await;
    assert!(
        page.body
            .contains("id=\"credentials-luckysports-state\">Configured"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(secret),
        "a stored secret is never shown"
    );
    let short_key = "tooshort-key-99";
    let refused = root
        .post(
            &format!("{page_url}/credentials/jdb"),
            &[
                ("csrf", csrf.as_str()),
                ("base_url", "http://127.0.0.1:9"),
                ("operator", "kept-operator"),
                ("parent", "ag1"),
                ("key", short_key),
                ("iv", "0123456789abcdef"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("id=\"credentials-jdb-error\""),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("credentials.key"), "{}", refused.body);
    assert!(
        refused.body.contains("value=\"kept-operator\""),
        "{}",
        refused.body
    );
    assert!(!refused.body.contains(short_key) && !refused.body.contains("0123456789abcdef"));

    // The client's admin reads its page without forms; its posts are the API's 403.
    let mut admin = WebClient::new(&hub.base);
    admin.login(Some(&tree.code), "boss", PASSWORD).await;
    let home = admin.get("/console").await;
    assert!(
        home.body.contains("href=\"/console/client\""),
        "{}",
        home.body
    );
    let own = admin.get("/console/client").await;
    assert_eq!((own.status, own.location()), (303, page_url.as_str()));
    assert_eq!(root.get("/console/client").await.status, 404);
    let read = admin.get(&page_url).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert!(
        read.body
            .contains("<a href=\"/console/client\" aria-current=\"page\">"),
        "{}",
        read.body
    );
    assert!(
        read.body.contains("value=\"Europe/Berlin\""),
        "{}",
        read.body
    );
    assert!(!read.body.contains("id=\"settings-save\""), "{}", read.body);
    assert!(!read.body.contains("name=\"secret\""), "{}", read.body);
    let admin_csrf = read.field("csrf");
    let forged = admin
        .post(
            &format!("{page_url}/settings"),
            &settings_form(&admin_csrf, &[("commission_rate", "0.9000")]),
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let forged = admin
        .post(
            &format!("{page_url}/credentials/jdb"),
            &[("csrf", admin_csrf.as_str()), ("operator", "x")],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let s = api.get(&tree.super_token, &settings_url).await.ok();
    assert_eq!(s["commission_rate"], "0.0750", "{s}");
    // Another client's page is not in its reach; an agent has no clients.read.
    let other = api
        .post(
            &tree.super_token,
            "/api/v1/clients",
            json!({ "code": "otherweb", "name": "Other", "currency": "USD" }),
        )
        .await
        .ok();
    let other_url = format!("/console/clients/{}", other["id"].as_str().unwrap());
    assert_eq!(admin.get(&other_url).await.status, 404);
    let mut agent = WebClient::new(&hub.base);
    agent.login(Some(&tree.code), "agent1", PASSWORD).await;
    assert_eq!(agent.get(&page_url).await.status, 403);
    // No CSRF token: refused before the API is called.
    let no_csrf = root
        .post(&format!("{page_url}/branding"), &[("display_name", "x")])
        .await;
    assert_eq!(no_csrf.status, 403);
}

async fn super_admin_sees_provider_health_and_system_status(backend: Backend) {
    // The reconciler's periodic pass waits an hour: an open transfer made below stays open.
    let hub = TestHub::start_with(backend, |s| {
        s.provider_reconcile_interval_ms = 3_600_000;
    })
    .await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.deposit(&tree.admin_token, &tree.player_id, "100").await;
    for provider in ["jdb", "jdb", "luckysports"] {
        let moved = api
            .post_key(
                &tree.player_token,
                &format!(
                    "/api/v1/users/{}/providers/{provider}/transfer-in",
                    tree.player_id
                ),
                &uuid::Uuid::new_v4().to_string(),
                json!({ "amount": "5" }),
            )
            .await;
        assert_eq!(moved.status, 200, "{}", moved.body);
    }
    let mut root = WebClient::new(&hub.base);
    root.login(None, "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let page = root.get("/console/providers").await;
    assert_eq!(page.status, 200, "{}", page.body);
    // pending, unknown, succeeded, failed per provider.
    assert!(
        page.body.contains("<tr data-provider=\"jdb\"><td>jdb</td>")
            && page
                .body
                .contains("<td>0</td><td>0</td><td>2</td><td>0</td></tr>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<td>0</td><td>0</td><td>1</td><td>0</td></tr>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("data-breaker=\"closed\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("id=\"reconciler-backlog\">0<"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"no-stuck\""), "{}", page.body);

    // A transfer left `unknown` three hours ago: in flight, stuck, and the reconciler's backlog.
    let three_hours_ago = chrono::Utc::now().timestamp_millis() - 3 * 3600 * 1000;
    hub.infra
        .execute(&format!(
            "UPDATE provider_transfers SET state = 'unknown', updated_at = {three_hours_ago} \
             WHERE provider = 'luckysports'"
        ))
        .await;
    let stuck_id: String = hub
        .infra
        .query_one("SELECT id FROM provider_transfers WHERE provider = 'luckysports'")
        .await;
    let page = root.get("/console/providers").await;
    assert!(
        page.body
            .contains("<td>0</td><td>1</td><td>0</td><td>0</td></tr>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("id=\"reconciler-backlog\">1<"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!("<code>{stuck_id}</code>")),
        "{}",
        page.body
    );

    let status = root.get("/console/system").await;
    assert_eq!(status.status, 200, "{}", status.body);
    assert!(
        status.body.contains(&format!(
            "id=\"sys-version\">{}<",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        status.body
    );
    let db = match backend {
        Backend::Sqlite => "sqlite",
        Backend::MySql => "mysql",
    };
    assert!(
        status.body.contains(&format!("id=\"sys-database\">{db}")),
        "{}",
        status.body
    );
    let bus = if hub.infra.redis_url.is_some() {
        "redis"
    } else {
        "in-process"
    };
    assert!(
        status
            .body
            .contains(&format!("id=\"sys-bus\">{bus} <span class=\"state-ok\"")),
        "{}",
        status.body
    );
    assert!(
        status.body.contains("data-queue=\"system.transfer_backlog\"><td>Provider transfers waiting for the reconciler</td><td>1</td>"),
        "{}",
        status.body
    );

    // Below the platform: both pages refused, whatever the link shows.
    for (client, name) in [
        (Some(tree.code.as_str()), "boss"),
        (Some(tree.code.as_str()), "agent1"),
    ] {
        let mut web = WebClient::new(&hub.base);
        web.login(client, name, PASSWORD).await;
        let home = web.get("/console").await;
        assert!(
            !home.body.contains("href=\"/console/providers\""),
            "{}",
            home.body
        );
        assert_eq!(web.get("/console/providers").await.status, 403);
        assert_eq!(web.get("/console/system").await.status, 403);
    }
}

async fn settlements_are_settled_listed_and_their_commission_paid(backend: Backend) {
    let sims = crate::providers::start_sims();
    let hub = crate::settlements::start(backend, &sims).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    api.patch(
        &tree.super_token,
        &format!("/api/v1/clients/{}/settings", tree.client_id),
        json!({ "commission_rate": "0.1" }),
    )
    .await
    .ok();
    // The player loses 10.00 in the period: the agent earns 1.00.
    let start = crate::settlements::now_text(-60_000);
    crate::settlements::play(
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
    let end = crate::settlements::now_text(0);

    let mut root = WebClient::new(&hub.base);
    root.login(None, "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let list_url = format!("/console/settlements?client_id={}", tree.client_id);
    let list = root.get(&list_url).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("id=\"no-settlements\""), "{}", list.body);
    let (csrf, key) = (list.field("csrf"), list.field("idempotency_key"));
    let form = [
        ("csrf", csrf.as_str()),
        ("idempotency_key", key.as_str()),
        ("client_id", tree.client_id.as_str()),
        ("period_start", start.as_str()),
        ("period_end", end.as_str()),
    ];
    let settled = root.post("/console/settlements", &form).await;
    assert_eq!(settled.status, 303, "{}", settled.body);
    // The same form again (a double click): the same settlement, nothing settled twice.
    let again = root.post("/console/settlements", &form).await;
    assert_eq!(again.location(), settled.location());
    let listed = api
        .get(
            &tree.super_token,
            &format!("/api/v1/clients/{}/settlements", tree.client_id),
        )
        .await
        .ok();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    let sid = listed["items"][0]["id"].as_str().unwrap().to_owned();
    assert!(
        settled
            .location()
            .starts_with(&format!("/console/settlements/{sid}?"))
    );
    // An overlapping period under a new key: the API's 409 in place.
    let fresh = root.get(&list_url).await.field("idempotency_key");
    let overlap = root
        .post(
            "/console/settlements",
            &[
                ("csrf", csrf.as_str()),
                ("idempotency_key", fresh.as_str()),
                ("client_id", tree.client_id.as_str()),
                (
                    "period_start",
                    crate::settlements::now_text(-30_000).as_str(),
                ),
                ("period_end", end.as_str()),
            ],
        )
        .await;
    assert_eq!(overlap.status, 409, "{}", overlap.body);
    assert!(
        overlap.body.contains("id=\"settle-error\""),
        "{}",
        overlap.body
    );

    // The client's admin: its list, the settlement's lines, approve then pay.
    let mut admin = WebClient::new(&hub.base);
    admin.login(Some(&tree.code), "boss", PASSWORD).await;
    let own = admin.get("/console/settlements").await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert!(
        own.body
            .contains(&format!("/console/settlements/{sid}?client_id=")),
        "{}",
        own.body
    );
    assert!(!own.body.contains("id=\"settle-form\""), "{}", own.body);
    let detail = admin.get(&format!("/console/settlements/{sid}")).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert!(
        detail
            .body
            .contains(&format!("<tr data-agent=\"{}\">", tree.agent_id)),
        "{}",
        detail.body
    );
    assert!(
        detail
            .body
            .contains("<td>1.00</td><td class=\"line-status\">calculated</td>"),
        "{}",
        detail.body
    );
    assert!(
        detail
            .body
            .contains(&format!("id=\"approve-{}\"", tree.agent_id)),
        "{}",
        detail.body
    );
    let admin_csrf = detail.field("csrf");
    let step = |what: &str| {
        format!(
            "/console/settlements/{sid}/commissions/{}/{what}",
            tree.agent_id
        )
    };
    let fields = [("csrf", admin_csrf.as_str()), ("client_id", "")];
    assert_eq!(admin.post(&step("approve"), &fields).await.status, 303);
    let paid = admin.post(&step("pay"), &fields).await;
    assert_eq!(paid.status, 303, "{}", paid.body);
    let s = api
        .get(
            &tree.admin_token,
            &format!("/api/v1/clients/{}/settlements/{sid}", tree.client_id),
        )
        .await
        .ok();
    assert_eq!(s["commissions"][0]["status"], "paid", "{s}");
    assert_eq!(
        crate::providers::cents(&api.balance(&tree.admin_token, &tree.agent_id).await),
        100
    );
    let late = admin.post(&step("hold"), &fields).await;
    assert_eq!(late.status, 409, "{}", late.body);
    assert!(late.body.contains("id=\"line-error\""), "{}", late.body);
    // Settling is the platform's: the admin's forged form is the API's 403.
    let forged = admin.post("/console/settlements", &form).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    // An agent reads no settlements; another client's admin finds none of these.
    let mut agent = WebClient::new(&hub.base);
    agent.login(Some(&tree.code), "agent1", PASSWORD).await;
    assert_eq!(agent.get("/console/settlements").await.status, 403);
    let other = Tree::create(&api).await;
    let mut stranger = WebClient::new(&hub.base);
    stranger.login(Some(&other.code), "boss", PASSWORD).await;
    assert_eq!(
        stranger
            .get(&format!(
                "/console/settlements/{sid}?client_id={}",
                tree.client_id
            ))
            .await
            .status,
        404
    );
}

async fn permissions_are_granted_and_revoked_within_the_callers_own(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let api_url = format!("/api/v1/users/{}/permissions", tree.agent_id);
    let page_url = format!("/console/users/{}/permissions", tree.agent_id);
    let mut admin = WebClient::new(&hub.base);
    admin.login(Some(&tree.code), "boss", PASSWORD).await;
    let user = admin
        .get(&format!("/console/users/{}", tree.agent_id))
        .await;
    assert!(
        user.body.contains(&format!("href=\"{page_url}\"")),
        "{}",
        user.body
    );
    let page = admin.get(&page_url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("id=\"revoke-users.create\""),
        "{}",
        page.body
    );
    let csrf = page.field("csrf");
    let change = |permission: &'static str, effect: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("permission", permission.into()),
            ("effect", effect.into()),
        ]
    };

    let revoked = admin
        .post(&page_url, &form_refs(&change("users.create", "revoke")))
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    let p = api.get(&tree.admin_token, &api_url).await.ok();
    assert!(
        !p["effective"]
            .as_array()
            .unwrap()
            .contains(&json!("users.create")),
        "{p}"
    );
    assert_eq!(
        p["overrides"],
        json!([{ "permission": "users.create", "effect": "revoke" }]),
        "{p}"
    );
    let page = admin.get(&format!("{page_url}?done=1")).await;
    assert!(page.body.contains("id=\"notice\""), "{}", page.body);
    assert!(
        page.body.contains("id=\"grant-users.create\""),
        "{}",
        page.body
    );
    let granted = admin
        .post(&page_url, &form_refs(&change("users.create", "grant")))
        .await;
    assert_eq!(granted.status, 303, "{}", granted.body);
    let p = api.get(&tree.admin_token, &api_url).await.ok();
    assert!(
        p["effective"]
            .as_array()
            .unwrap()
            .contains(&json!("users.create")),
        "{p}"
    );

    // The API's refusals: a power an agent cannot hold (in place), one the admin lacks (403).
    let bad = admin
        .post(
            &page_url,
            &form_refs(&change("notifications.send", "grant")),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("id=\"perm-error\""), "{}", bad.body);
    let escalate = admin
        .post(&page_url, &form_refs(&change("clients.manage", "grant")))
        .await;
    assert_eq!(escalate.status, 403, "{}", escalate.body);
    let p = api.get(&tree.admin_token, &api_url).await.ok();
    assert!(
        !p["effective"]
            .as_array()
            .unwrap()
            .contains(&json!("clients.manage")),
        "{p}"
    );

    // An agent reads its player's permissions without buttons, and cannot change them.
    let mut agent = WebClient::new(&hub.base);
    agent.login(Some(&tree.code), "agent1", PASSWORD).await;
    let player_page = format!("/console/users/{}/permissions", tree.player_id);
    let read = agent.get(&player_page).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert!(!read.body.contains("id=\"grant-"), "{}", read.body);
    let agent_csrf = read.field("csrf");
    let forged = agent
        .post(
            &player_page,
            &[
                ("csrf", agent_csrf.as_str()),
                ("permission", "wallets.downline"),
                ("effect", "grant"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(
        agent
            .get(&format!("/console/users/{}/permissions", tree.admin_id))
            .await
            .status,
        403
    );
}

fn form_refs<'a>(fields: &'a [(&'static str, String); 3]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

backend_tests!(
    settlements_are_settled_listed_and_their_commission_paid,
    permissions_are_granted_and_revoked_within_the_callers_own,
    a_client_page_edits_settings_branding_providers_and_credentials,
    super_admin_sees_provider_health_and_system_status,
    notices_go_to_a_user_or_the_whole_client,
    super_admin_pages_clients_and_the_audit_chain,
    the_withdrawal_queue_approves_and_rejects_through_the_api,
    a_double_submitted_deposit_form_moves_money_once,
    pages_follow_the_apis_reach,
    form_login_sets_strict_http_only_cookies,
    forms_without_csrf_or_from_another_origin_are_refused,
    an_expired_access_cookie_is_renewed_by_the_refresh_cookie,
    the_websocket_takes_the_session_cookie_from_the_hubs_origin_only,
);
