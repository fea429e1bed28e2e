//! The player site (issue 27) over plain HTTP: brands themed from their settings and found by
//! code or host name, the brand's login, reach (another brand's session, another player's
//! transfer id), CSRF and origin refusals on money forms, and a double-submitted transfer
//! moving money once.

use serde_json::json;

use crate::backend_tests;
use crate::console_http::{Page, WebClient};
use crate::helpers::{Api, Backend, PASSWORD, TestHub, Tree};

/// The games catalogue filled from the simulators (the start-up refresh may not have run yet).
pub async fn fill_catalogue(api: &Api, super_token: &str) {
    for p in ["jdb", "luckysports"] {
        api.post(
            super_token,
            &format!("/api/v1/providers/{p}/games/refresh"),
            json!({}),
        )
        .await
        .ok();
    }
}

/// Logs in through a brand's login form; panics unless it lands on `next`.
async fn site_login(web: &mut WebClient, code: &str, username: &str, next: &str) {
    let page = web
        .post(
            &format!("/play/{code}/login"),
            &[
                ("username", username),
                ("password", PASSWORD),
                ("next", next),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), next);
}

fn brand_css(page: &Page) -> String {
    let start = page.body.find("/brand.css?v=").expect("brand stylesheet");
    let from = page.body[..start].rfind('"').unwrap() + 1;
    let end = page.body[start..].find('"').unwrap() + start;
    page.body[from..end].to_owned()
}

async fn site_brands_are_themed_and_found_by_code_or_host(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let a = Tree::create(&api).await;
    let b = Tree::create(&api).await;
    api.patch(
        &a.super_token,
        &format!("/api/v1/clients/{}/settings", a.client_id),
        json!({ "branding": { "display_name": "Aurora Casino", "primary_color": "#7b1fa2",
                "logo_url": "https://cdn.example/logo.png" },
                "site_hosts": ["Aurora.Example:8080"] }),
    )
    .await
    .ok();
    api.patch(
        &b.super_token,
        &format!("/api/v1/clients/{}/settings", b.client_id),
        json!({ "branding": { "display_name": "Borealis Bet", "primary_color": "#00796b",
                "logo_url": "data:image/png;base64,iVBORw0KGgo=" } }),
    )
    .await
    .ok();
    let mut web = WebClient::new(&hub.base);

    let login_a = web.get(&format!("/play/{}/login", a.code)).await;
    assert_eq!(login_a.status, 200, "{}", login_a.body);
    assert!(login_a.body.contains("Aurora Casino"), "{}", login_a.body);
    // A third-party logo would break the CSP (and leak the visit): not shown.
    assert!(!login_a.body.contains("cdn.example"), "{}", login_a.body);
    let login_b = web.get(&format!("/play/{}/login", b.code)).await;
    assert!(login_b.body.contains("Borealis Bet"), "{}", login_b.body);
    assert!(
        login_b.body.contains("id=\"brand-logo\""),
        "{}",
        login_b.body
    );
    let css_a = web.get(&brand_css(&login_a)).await;
    assert_eq!(css_a.status, 200);
    assert!(css_a.body.contains("#7b1fa2"), "{}", css_a.body);
    let css_b = web.get(&brand_css(&login_b)).await;
    assert!(css_b.body.contains("#00796b"), "{}", css_b.body);

    // Unknown brands: the 404 page.
    assert_eq!(web.get("/play/no-such-brand/login").await.status, 404);
    assert_eq!(web.get("/play/no-such-brand").await.status, 404);
    assert_eq!(web.get("/play/x").await.status, 404);

    // No session: via the site's login bounce to the brand's own login page.
    let lobby = web.get(&format!("/play/{}", a.code)).await;
    assert_eq!(lobby.status, 303);
    assert_eq!(
        lobby.location(),
        format!("/play/-/login?next=%2Fplay%2F{}", a.code)
    );
    let bounce = web.get(lobby.location()).await;
    assert_eq!(bounce.status, 303);
    assert_eq!(
        bounce.location(),
        format!("/play/{}/login?next=%2Fplay%2F{}", a.code, a.code)
    );

    // The brand's own host name serves its site; another client cannot take it.
    let on_host = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = on_host
        .get(format!("{}/", hub.base))
        .header("host", "aurora.example:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 303);
    assert_eq!(
        root.headers()["location"],
        format!("/play/{}", a.code).as_str()
    );
    let elsewhere = on_host.get(format!("{}/", hub.base)).send().await.unwrap();
    assert_eq!(elsewhere.status(), 404);
    api.patch(
        &b.super_token,
        &format!("/api/v1/clients/{}/settings", b.client_id),
        json!({ "site_hosts": ["aurora.example:8080"] }),
    )
    .await
    .error(409, "site_host_taken");
    api.patch(
        &b.super_token,
        &format!("/api/v1/clients/{}/settings", b.client_id),
        json!({ "site_hosts": ["https://x.example/"] }),
    )
    .await
    .error(422, "validation_error");
}

async fn site_login_follows_the_brand_and_its_rules(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let a = Tree::create(&api).await;
    let b = Tree::create(&api).await;
    let mut web = WebClient::new(&hub.base);
    let login = format!("/play/{}/login", a.code);

    // Another origin's login post is refused before the password is looked at.
    let evil = web
        .post_from(
            Some("http://evil.example"),
            &login,
            &[("username", "player1"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(evil.status, 403);
    let wrong = web
        .post(
            &login,
            &[("username", "player1"), ("password", "nope-nope-1")],
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.body.contains("id=\"login-error\""), "{}", wrong.body);
    assert!(web.cookies.is_empty());
    // The brand is the URL's: brand B's player is unknown at brand A.
    let a_home = format!("/play/{}", a.code);
    site_login(&mut web, &a.code, "player1", &a_home).await;
    let lobby = web.get(&a_home).await;
    assert_eq!(lobby.status, 200, "{}", lobby.body);
    assert!(lobby.body.contains(&a.player_id), "{}", lobby.body);
    // A session of brand A opens nothing of brand B: log in there first.
    let at_b = web.get(&format!("/play/{}/history", b.code)).await;
    assert_eq!(at_b.status, 303, "{}", at_b.body);
    assert!(
        at_b.location().starts_with("/play/-/login"),
        "{}",
        at_b.location()
    );
    // A `next` outside the brand's site is not followed.
    let mut other = WebClient::new(&hub.base);
    site_login(&mut other, &b.code, "player1", &format!("/play/{}", b.code)).await;
    let off_site = other
        .post(
            &format!("/play/{}/login", b.code),
            &[
                ("username", "player1"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(off_site.location(), format!("/play/{}", b.code));
    // Staff of the brand: the site is not theirs (agents get the shop).
    let mut boss = WebClient::new(&hub.base);
    site_login(&mut boss, &a.code, "boss", &a_home).await;
    assert_eq!(boss.get(&a_home).await.status, 403);

    // Logout needs the session's CSRF token, and revokes the session at once.
    let csrf = lobby.field("csrf");
    let logout = format!("/play/{}/logout", a.code);
    assert_eq!(web.post(&logout, &[]).await.status, 403);
    assert_eq!(
        web.post_from(Some("http://evil.example"), &logout, &[("csrf", &csrf)])
            .await
            .status,
        403
    );
    let access = web.cookies["nashub_access"].clone();
    let out = web.post(&logout, &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), login);
    api.get(&access, &format!("/api/v1/users/{}", a.player_id))
        .await
        .error(401, "session_ended");

    // Throttling is the API login's: the sixth failure is refused before the password.
    for _ in 0..5 {
        web.post(
            &login,
            &[("username", "player1"), ("password", "nope-nope-1")],
        )
        .await;
    }
    let locked = web
        .post(&login, &[("username", "player1"), ("password", PASSWORD)])
        .await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert!(
        locked.body.contains("id=\"login-error\""),
        "{}",
        locked.body
    );
}

async fn site_money_forms_need_csrf_and_move_money_once(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let second = Tree::create(&api).await;
    fill_catalogue(&api, &tree.super_token).await;
    api.deposit(&tree.admin_token, &tree.player_id, "100.00")
        .await;
    let mut web = WebClient::new(&hub.base);
    let home = format!("/play/{}", tree.code);
    site_login(&mut web, &tree.code, "player1", &home).await;

    let lobby = web.get(&home).await;
    assert!(lobby.body.contains("100.00"), "{}", lobby.body);
    assert!(lobby.body.contains("/games/jdb/0-8001"), "{}", lobby.body);
    let filtered = web.get(&format!("{home}?provider=luckysports")).await;
    assert!(!filtered.body.contains("/games/jdb/"), "{}", filtered.body);
    let game = format!("{home}/games/jdb/0-8001");
    assert_eq!(
        web.get(&format!("{home}/games/jdb/no-such-game"))
            .await
            .status,
        404
    );
    let page = web.get(&game).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.field("csrf");
    let key = page.field("idempotency_key");
    let transfer_in = format!("{game}/transfer-in");

    // No token, a wrong token, another origin: refused, nothing moved.
    let no_csrf = web
        .post(
            &transfer_in,
            &[("amount", "10.00"), ("idempotency_key", &key)],
        )
        .await;
    assert_eq!(no_csrf.status, 403);
    let cross = web
        .post_from(
            Some("http://evil.example"),
            &transfer_in,
            &[
                ("csrf", &csrf),
                ("amount", "10.00"),
                ("idempotency_key", &key),
            ],
        )
        .await;
    assert_eq!(cross.status, 403);
    assert_eq!(
        api.balance(&tree.admin_token, &tree.player_id).await,
        "100.00"
    );
    // A bad amount is shown beside the form.
    let bad = web
        .post(
            &transfer_in,
            &[
                ("csrf", &csrf),
                ("amount", "1.234"),
                ("idempotency_key", &key),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("id=\"game-error\""), "{}", bad.body);
    // Submitted twice with the key of one rendering: one transfer.
    let form = [
        ("csrf", csrf.as_str()),
        ("amount", "10.00"),
        ("idempotency_key", key.as_str()),
    ];
    let first = web.post(&transfer_in, &form).await;
    let again = web.post(&transfer_in, &form).await;
    assert_eq!(first.status, 303, "{}", first.body);
    assert_eq!(again.location(), first.location());
    assert_eq!(
        api.balance(&tree.admin_token, &tree.player_id).await,
        "90.00"
    );
    let state = web.get(first.location()).await;
    assert_eq!(state.status, 200);
    assert!(state.body.contains(">succeeded<"), "{}", state.body);
    // More than the wallet holds: the API's refusal in place.
    let too_much = web
        .post(
            &transfer_in,
            &[
                ("csrf", &csrf),
                ("amount", "1000.00"),
                ("idempotency_key", &page.field("idempotency_key")),
            ],
        )
        .await;
    assert_eq!(too_much.status, 409, "{}", too_much.body);
    assert!(
        too_much.body.contains("id=\"game-error\""),
        "{}",
        too_much.body
    );

    // Another player's transfer id in this player's URL: nothing of it is shown.
    api.deposit(&second.admin_token, &second.player_id, "1.00")
        .await;
    let other = api
        .post_key(
            &second.player_token,
            &format!(
                "/api/v1/users/{}/providers/jdb/transfer-in",
                second.player_id
            ),
            "other-1",
            json!({ "amount": "0.50" }),
        )
        .await
        .ok();
    let other_id = other["transfer_id"].as_str().unwrap();
    let foreign = web.get(&format!("{game}/transfers/{other_id}")).await;
    assert_eq!(foreign.status, 404, "{}", foreign.body);
    assert!(!foreign.body.contains("0.50"), "{}", foreign.body);
    assert_eq!(
        web.get(&format!("{game}/transfers/not-an-id")).await.status,
        404
    );

    // Launch and transfer back.
    let launch = web
        .post(&format!("{game}/launch"), &[("csrf", &csrf)])
        .await;
    assert_eq!(launch.status, 200, "{}", launch.body);
    assert!(
        launch.body.contains("<a href=\"http://") && launch.body.contains("id=\"launch-url\""),
        "{}",
        launch.body
    );
    let page = web.get(&game).await;
    let out = web
        .post(
            &format!("{game}/transfer-out"),
            &[
                ("csrf", &csrf),
                ("amount", "10.00"),
                ("idempotency_key", &page.field("idempotency_key")),
            ],
        )
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(
        api.balance(&tree.admin_token, &tree.player_id).await,
        "100.00"
    );
    let history = web.get(&format!("{home}/history")).await;
    assert_eq!(history.status, 200);
    assert!(history.body.contains("0-8001"), "{}", history.body);
    assert!(history.body.contains("-10.00"), "{}", history.body);
}

/// The value of the `n`th (0-based) hidden field `name`.
fn nth_field(page: &Page, name: &str, n: usize) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .body
        .match_indices(&marker)
        .nth(n)
        .unwrap_or_else(|| panic!("no field {name} #{n} in {}", page.body))
        .0
        + marker.len();
    let end = page.body[start..].find('"').unwrap() + start;
    page.body[start..end].to_owned()
}

async fn site_cashier_shop_and_self_exclusion(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let other = Tree::create(&api).await;
    let home = format!("/play/{}", tree.code);
    let mut web = WebClient::new(&hub.base);
    site_login(&mut web, &tree.code, "player1", &home).await;

    // Cashier: a deposit request leads to its payment page with the checkout link.
    let cashier = web.get(&format!("{home}/cashier")).await;
    assert_eq!(cashier.status, 200, "{}", cashier.body);
    let csrf = cashier.field("csrf");
    let deposit_key = nth_field(&cashier, "idempotency_key", 0);
    let form = [
        ("csrf", csrf.as_str()),
        ("amount", "20.00"),
        ("idempotency_key", deposit_key.as_str()),
    ];
    let requested = web.post(&format!("{home}/cashier/deposit"), &form).await;
    assert_eq!(requested.status, 303, "{}", requested.body);
    let again = web.post(&format!("{home}/cashier/deposit"), &form).await;
    assert_eq!(
        again.location(),
        requested.location(),
        "one payment per key"
    );
    let payment = web.get(requested.location()).await;
    assert_eq!(payment.status, 200, "{}", payment.body);
    assert!(
        payment.body.contains("id=\"checkout-url\""),
        "{}",
        payment.body
    );
    assert!(payment.body.contains("20.00 USD"), "{}", payment.body);
    // A withdrawal larger than the wallet: the API's refusal in place, nothing held.
    let withdraw_key = nth_field(&cashier, "idempotency_key", 1);
    let too_much = web
        .post(
            &format!("{home}/cashier/withdraw"),
            &[
                ("csrf", csrf.as_str()),
                ("amount", "5.00"),
                ("destination", "ba_player_1"),
                ("idempotency_key", withdraw_key.as_str()),
            ],
        )
        .await;
    assert_eq!(too_much.status, 409, "{}", too_much.body);
    assert!(
        too_much.body.contains("id=\"cashier-error\""),
        "{}",
        too_much.body
    );
    // Another brand's player's payment id: nothing of it.
    let theirs = api
        .post_key(
            &other.player_token,
            "/api/v1/payments/deposits",
            "their-deposit",
            json!({ "gateway": "stripe", "amount": "33.00" }),
        )
        .await
        .ok();
    let theirs = web
        .get(&format!(
            "{home}/payments/{}",
            theirs["id"].as_str().unwrap()
        ))
        .await;
    assert!(matches!(theirs.status, 403 | 404), "{}", theirs.body);
    assert!(!theirs.body.contains("33.00"), "{}", theirs.body);
    // Players have no shop.
    assert_eq!(web.get(&format!("{home}/shop")).await.status, 403);

    // The agent's shop: find the player, credit them once per rendered key.
    api.deposit(&tree.admin_token, &tree.agent_id, "50.00")
        .await;
    let mut agent = WebClient::new(&hub.base);
    site_login(&mut agent, &tree.code, "agent1", &home).await;
    let to_shop = agent.get(&home).await;
    assert_eq!(to_shop.location(), format!("{home}/shop"));
    let shop = agent.get(&format!("{home}/shop?username=play")).await;
    assert_eq!(shop.status, 200, "{}", shop.body);
    assert!(shop.body.contains(&tree.player_id), "{}", shop.body);
    let agent_csrf = shop.field("csrf");
    let key = shop.field("idempotency_key");
    let credit = format!("{home}/shop/{}/credit", tree.player_id);
    let form = [
        ("csrf", agent_csrf.as_str()),
        ("amount", "10.00"),
        ("idempotency_key", key.as_str()),
        ("username", "play"),
    ];
    let done = agent.post(&credit, &form).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location().contains("done=1"), "{}", done.location());
    agent.post(&credit, &form).await;
    assert_eq!(
        api.balance(&tree.admin_token, &tree.player_id).await,
        "10.00"
    );
    assert_eq!(
        api.balance(&tree.admin_token, &tree.agent_id).await,
        "40.00"
    );
    // Outside the agent's reach (another brand's player): refused, nothing moved.
    let foreign = agent
        .post(
            &format!("{home}/shop/{}/credit", other.player_id),
            &[
                ("csrf", agent_csrf.as_str()),
                ("amount", "1.00"),
                ("idempotency_key", "foreign-1"),
            ],
        )
        .await;
    assert!(matches!(foreign.status, 403 | 404), "{}", foreign.body);
    assert_eq!(
        api.balance(&other.admin_token, &other.player_id).await,
        "0.00"
    );
    let no_csrf = agent
        .post(&credit, &[("amount", "1.00"), ("idempotency_key", "x-2")])
        .await;
    assert_eq!(no_csrf.status, 403);

    // Protection: a limit, then a time-out that ends the session; the login says why.
    let protection = format!("{home}/protection");
    let saved = web
        .post(
            &format!("{protection}/limit"),
            &[
                ("csrf", &csrf),
                ("name", "deposit_daily"),
                ("value", "50.00"),
            ],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(
        saved.body.contains("id=\"protection-notice\""),
        "{}",
        saved.body
    );
    assert!(saved.body.contains("50.00"), "{}", saved.body);
    let unconfirmed = web
        .post(
            &format!("{protection}/exclusion"),
            &[("csrf", &csrf), ("kind", "timeout"), ("hours", "24")],
        )
        .await;
    assert_eq!(unconfirmed.status, 422, "{}", unconfirmed.body);
    let excluded = web
        .post(
            &format!("{protection}/exclusion"),
            &[
                ("csrf", &csrf),
                ("kind", "timeout"),
                ("hours", "24"),
                ("confirm", "on"),
            ],
        )
        .await;
    assert_eq!(excluded.status, 303, "{}", excluded.body);
    assert_eq!(excluded.location(), format!("{home}/login"));
    assert_eq!(web.get(&home).await.status, 303, "the session ended");
    let refused = web
        .post(
            &format!("{home}/login"),
            &[("username", "player1"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("on a time-out until"),
        "{}",
        refused.body
    );
}

backend_tests!(
    site_cashier_shop_and_self_exclusion,
    site_brands_are_themed_and_found_by_code_or_host,
    site_login_follows_the_brand_and_its_rules,
    site_money_forms_need_csrf_and_move_money_once,
);
