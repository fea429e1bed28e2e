//! The game service (issue 21): game sessions ended by a player, by whoever reaches them and by
//! a provider's report; the games catalogue filled from the simulators and listed across
//! providers per client; provider rows as data (a disabled one takes no new money).

use nashub::config::Settings;
use nashub::providers::provider_uid;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Api, Backend, PASSWORD, TestHub, Tree};
use crate::providers::{accounts, move_money, place_bet, scalar, start_sims};

fn sessions(user: &str) -> String {
    format!("/api/v1/users/{user}/game-sessions")
}

async fn launch(api: &Api, token: &str, user: &str, provider: &str, game: &str) -> String {
    api.post(
        token,
        &format!("/api/v1/users/{user}/providers/{provider}/launch"),
        json!({ "game": game }),
    )
    .await
    .ok()["session_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn end(user: &str, session: &str) -> String {
    format!("{}/{session}/end", sessions(user))
}

/// A second player under the same agent (same client, outside the first player's reach).
async fn other_player(api: &Api, tree: &Tree) -> (String, String) {
    let id = api
        .post(
            &tree.agent_token,
            "/api/v1/users",
            json!({ "client_id": tree.client_id, "parent_id": tree.agent_id, "role": "player", "username": "player2", "password": PASSWORD }),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, api.token(Some(&tree.code), "player2").await)
}

/// A player ends their session (twice: the same answer), an agent ends another; other
/// players and other clients' users cannot; the listing shows status and pages.
async fn games_session_end_by_player_and_agent(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;
    let first = launch(&api, &tree.player_token, &tree.player_id, "jdb", "0-8001").await;
    let second = launch(&api, &tree.player_token, &tree.player_id, "jdb", "0-8003").await;

    let listed = api
        .get(&tree.player_token, &sessions(&tree.player_id))
        .await
        .ok();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{listed}");
    assert_eq!(items[0]["id"], second, "newest first");
    assert!(
        items
            .iter()
            .all(|s| s["status"] == "open" && s["ended_at"].is_null())
    );

    // Refused: another client's player (404), another player of the client (403), a session
    // that is not the named user's (404).
    let stranger = Tree::create(&api).await;
    api.post(
        &stranger.player_token,
        &end(&tree.player_id, &first),
        json!({}),
    )
    .await
    .error(404, "not_found");
    api.get(&stranger.admin_token, &sessions(&tree.player_id))
        .await
        .error(404, "not_found");
    let (player2, player2_token) = other_player(&api, &tree).await;
    api.post(&player2_token, &end(&tree.player_id, &first), json!({}))
        .await
        .error(403, "forbidden");
    api.get(&player2_token, &sessions(&tree.player_id))
        .await
        .error(403, "forbidden");
    api.post(&player2_token, &end(&player2, &first), json!({}))
        .await
        .error(404, "not_found");
    api.post(
        &tree.player_token,
        &end(&tree.player_id, "nosuch"),
        json!({}),
    )
    .await
    .error(404, "not_found");

    let ended = api
        .post(&tree.player_token, &end(&tree.player_id, &first), json!({}))
        .await
        .ok();
    assert_eq!(ended["id"], first);
    assert_eq!(ended["status"], "ended");
    assert_eq!(ended["ended_by"], tree.player_id);
    assert!(ended["ended_at"].is_string(), "{ended}");
    let again = api
        .post(&tree.player_token, &end(&tree.player_id, &first), json!({}))
        .await
        .ok();
    assert_eq!(again, ended, "ending twice answers the same body");

    let by_agent = api
        .post(&tree.agent_token, &end(&tree.player_id, &second), json!({}))
        .await
        .ok();
    assert_eq!(by_agent["ended_by"], tree.agent_id);
    let audited = scalar(
        &hub.infra,
        &format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'game_session.end' AND target_id = '{second}'"
        ),
    )
    .await;
    assert_eq!(audited, 1);

    let third = launch(
        &api,
        &tree.player_token,
        &tree.player_id,
        "luckysports",
        "sportsbook",
    )
    .await;
    let open = api
        .get(
            &tree.admin_token,
            &format!("{}?status=open", sessions(&tree.player_id)),
        )
        .await
        .ok();
    let open: Vec<&Value> = open["items"].as_array().unwrap().iter().collect();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["id"], third);
    let page = api
        .get(
            &tree.player_token,
            &format!("{}?status=ended&limit=1", sessions(&tree.player_id)),
        )
        .await
        .ok();
    assert_eq!(page["items"][0]["id"], second);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = api
        .get(
            &tree.player_token,
            &format!(
                "{}?status=ended&limit=1&cursor={cursor}",
                sessions(&tree.player_id)
            ),
        )
        .await
        .ok();
    assert_eq!(rest["items"][0]["id"], first);
    assert!(rest["next_cursor"].is_null());
    api.get(
        &tree.player_token,
        &format!("{}?status=closed", sessions(&tree.player_id)),
    )
    .await
    .error(422, "validation_error");
}

/// A provider's report of a finished round ends the player's open session there; the round's
/// money is applied all the same, and a session already ended stays as it was.
async fn games_session_ended_by_provider_report(backend: Backend) {
    let sims = start_sims();
    let configured = accounts(&sims);
    let hub = TestHub::start_with(backend, move |s: &mut Settings| {
        s.providers = configured;
        s.provider_reconcile_interval_ms = 200;
    })
    .await;
    sims.ls
        .set_callback_url(&format!("{}/callbacks/luckysports", hub.base));
    let api = hub.api();
    let tree = crate::providers::player_at_provider(&api, "100", "luckysports", "50").await;
    let session = launch(
        &api,
        &tree.player_token,
        &tree.player_id,
        "luckysports",
        "sportsbook",
    )
    .await;
    let jdb = launch(&api, &tree.player_token, &tree.player_id, "jdb", "0-8001").await;

    let placed = place_bet(&sims, &provider_uid(&tree.player_id), 1000, 2500, None).await;
    assert!(placed["delivered"].as_i64().unwrap() >= 2, "{placed}");
    let listed = api
        .get(&tree.player_token, &sessions(&tree.player_id))
        .await
        .ok();
    let find = |id: &str| {
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap()
    };
    let ended = find(&session);
    assert_eq!(ended["status"], "ended", "{listed}");
    assert_eq!(ended["ended_by"], "provider");
    assert_eq!(
        find(&jdb)["status"],
        "open",
        "other providers' sessions stay open"
    );
    let held = format!("h:{}:held_at_provider:luckysports", tree.client_id);
    assert_eq!(
        crate::providers::account_balance(&hub.infra, &held).await,
        5000 + 1500
    );

    // Ending it again by hand answers the provider's end, unchanged.
    let again = api
        .post(
            &tree.player_token,
            &end(&tree.player_id, &session),
            json!({}),
        )
        .await
        .ok();
    assert_eq!(again, ended);
    // A later round (the session already over) is still applied: the money is real.
    place_bet(&sims, &provider_uid(&tree.player_id), 500, 0, None).await;
    assert_eq!(
        crate::providers::account_balance(&hub.infra, &held).await,
        5000 + 1500 - 500
    );
    hub.infra.assert_ledger_ok();
}

fn codes(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            format!(
                "{}/{}",
                g["provider"].as_str().unwrap(),
                g["code"].as_str().unwrap()
            )
        })
        .collect()
}

/// The catalogue is fetched from the simulators (refresh by super admins), served by the
/// per-provider listing in its old shape, and listed across providers per client: switched-off
/// games and providers and the client's `enabled_providers` are left out.
async fn games_catalogue_refresh_and_listing(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = Tree::create(&api).await;

    api.post(
        &tree.admin_token,
        "/api/v1/providers/jdb/games/refresh",
        json!({}),
    )
    .await
    .error(403, "forbidden");
    let jdb = api
        .post(
            &tree.super_token,
            "/api/v1/providers/jdb/games/refresh",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(jdb["games"], 3, "{jdb}");
    let ls = api
        .post(
            &tree.super_token,
            "/api/v1/providers/luckysports/games/refresh",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(ls["games"], 1, "{ls}");
    // Again: nothing new (the start-up refresh may have run first, too).
    let again = api
        .post(
            &tree.super_token,
            "/api/v1/providers/jdb/games/refresh",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(
        (again["added"].as_i64(), again["removed"].as_i64()),
        (Some(0), Some(0))
    );
    api.post(
        &tree.super_token,
        "/api/v1/providers/nosuch/games/refresh",
        json!({}),
    )
    .await
    .error(404, "not_found");
    assert_eq!(
        scalar(
            &hub.infra,
            "SELECT COUNT(*) FROM games WHERE status = 'active'"
        )
        .await,
        4
    );
    let fishing: String = hub
        .infra
        .query_one("SELECT game_type FROM games WHERE provider = 'jdb' AND code = '7-7001'")
        .await;
    assert_eq!(fishing, "fishing");

    // The per-provider listing keeps its shape: {provider, games: [{code, name}]}.
    let per = api
        .get(&tree.player_token, "/api/v1/providers/jdb/games")
        .await
        .ok();
    assert_eq!(per["provider"], "jdb");
    assert_eq!(per["games"].as_array().unwrap().len(), 3);
    assert_eq!(
        per["games"][0],
        json!({ "code": "0-8001", "name": "Lucky Dragon" })
    );

    let all = api.get(&tree.player_token, "/api/v1/games").await.ok();
    assert_eq!(
        codes(&all),
        [
            "jdb/0-8001",
            "jdb/0-8003",
            "jdb/7-7001",
            "luckysports/sportsbook"
        ]
    );
    assert_eq!(
        all["items"][3],
        json!({ "provider": "luckysports", "code": "sportsbook", "name": "LuckySports", "type": "sports" })
    );
    let fish = api
        .get(&tree.agent_token, "/api/v1/games?type=fishing")
        .await
        .ok();
    assert_eq!(codes(&fish), ["jdb/7-7001"]);
    let ls_only = api
        .get(&tree.player_token, "/api/v1/games?provider=luckysports")
        .await
        .ok();
    assert_eq!(codes(&ls_only), ["luckysports/sportsbook"]);
    let first = api
        .get(&tree.player_token, "/api/v1/games?limit=3")
        .await
        .ok();
    assert_eq!(codes(&first).len(), 3);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = api
        .get(
            &tree.player_token,
            &format!("/api/v1/games?limit=3&cursor={cursor}"),
        )
        .await
        .ok();
    assert_eq!(codes(&second), ["luckysports/sportsbook"]);
    assert!(second["next_cursor"].is_null());
    api.get(&tree.player_token, "/api/v1/games?type=poker")
        .await
        .error(422, "validation_error");
    api.get(
        &tree.player_token,
        &format!(
            "/api/v1/games?client_id={}",
            Tree::create(&api).await.client_id
        ),
    )
    .await
    .error(404, "not_found");

    // Switches: one game, then the whole provider.
    let switch = format!("/api/v1/clients/{}/providers", tree.client_id);
    api.put(
        &tree.admin_token,
        &format!("{switch}/jdb/games/0-8001"),
        json!({ "enabled": false }),
    )
    .await
    .ok();
    api.put(
        &tree.admin_token,
        &format!("{switch}/luckysports"),
        json!({ "enabled": false }),
    )
    .await
    .ok();
    let switched = api.get(&tree.player_token, "/api/v1/games").await.ok();
    assert_eq!(codes(&switched), ["jdb/0-8003", "jdb/7-7001"]);
    // The platform's view of the client is the same; its own view has everything.
    let as_client = api
        .get(
            &tree.super_token,
            &format!("/api/v1/games?client_id={}", tree.client_id),
        )
        .await
        .ok();
    assert_eq!(codes(&as_client), codes(&switched));
    assert_eq!(
        codes(&api.get(&tree.super_token, "/api/v1/games").await.ok()).len(),
        4
    );

    // The client's settings: luckysports back on by switch, off by enabled_providers.
    api.put(
        &tree.admin_token,
        &format!("{switch}/luckysports"),
        json!({ "enabled": true }),
    )
    .await
    .ok();
    assert_eq!(
        codes(&api.get(&tree.player_token, "/api/v1/games").await.ok()).len(),
        3
    );
    api.patch(
        &tree.super_token,
        &format!("/api/v1/clients/{}/settings", tree.client_id),
        json!({ "enabled_providers": ["jdb"] }),
    )
    .await
    .ok();
    let settled = api.get(&tree.player_token, "/api/v1/games").await.ok();
    assert_eq!(codes(&settled), ["jdb/0-8003", "jdb/7-7001"]);
}

/// Provider rows are data: super admins list and update them; a disabled provider takes no
/// new money and launches nothing, but money there comes back.
async fn games_provider_row_disabled(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let api = hub.api();
    let tree = crate::providers::player_at_provider(&api, "50", "jdb", "20").await;

    let rows = api.get(&tree.super_token, "/api/v1/providers").await.ok();
    let list: Vec<(&str, &str, &str)> = rows["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["code"].as_str().unwrap(),
                r["protocol"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        list,
        [
            ("jdb", "jdb", "active"),
            ("luckysports", "luckysports", "active")
        ]
    );
    api.get(&tree.admin_token, "/api/v1/providers")
        .await
        .error(403, "forbidden");
    api.patch(
        &tree.admin_token,
        "/api/v1/providers/jdb",
        json!({ "status": "disabled" }),
    )
    .await
    .error(403, "forbidden");
    api.patch(
        &tree.super_token,
        "/api/v1/providers/nosuch",
        json!({ "status": "disabled" }),
    )
    .await
    .error(404, "not_found");
    for bad in [
        json!({ "status": "gone" }),
        json!({ "base_url": "ftp://x.example" }),
        json!({ "name": "" }),
        json!({}),
    ] {
        api.patch(&tree.super_token, "/api/v1/providers/jdb", bad)
            .await
            .error(422, "validation_error");
    }
    let disabled = api
        .patch(
            &tree.super_token,
            "/api/v1/providers/jdb",
            json!({ "status": "disabled", "base_url": "https://api.jdb.example/" }),
        )
        .await
        .ok();
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(disabled["base_url"], "https://api.jdb.example");
    assert_eq!(
        api.get(&tree.super_token, "/api/v1/providers/jdb")
            .await
            .ok(),
        disabled
    );

    move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "jdb",
        "transfer-in",
        "5",
    )
    .await
    .error(403, "provider_inactive");
    api.post(
        &tree.player_token,
        &format!("/api/v1/users/{}/providers/jdb/launch", tree.player_id),
        json!({ "game": "0-8001" }),
    )
    .await
    .error(403, "provider_inactive");
    let out = move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "jdb",
        "transfer-out",
        "5",
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(out.body["state"], "succeeded");
    let balance = api
        .get(
            &tree.player_token,
            &format!("/api/v1/users/{}/providers/jdb/balance", tree.player_id),
        )
        .await
        .ok();
    assert_eq!(balance["balance"], "15.00");
    // The cross-provider listing leaves it out; the other provider is untouched.
    api.post(
        &tree.super_token,
        "/api/v1/providers/luckysports/games/refresh",
        json!({}),
    )
    .await
    .ok();
    let listed = api.get(&tree.player_token, "/api/v1/games").await.ok();
    assert_eq!(codes(&listed), ["luckysports/sportsbook"]);
    let ls = move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "luckysports",
        "transfer-in",
        "1",
    )
    .await;
    assert_eq!(ls.status, 200, "{}", ls.body);

    let active = api
        .patch(
            &tree.super_token,
            "/api/v1/providers/jdb",
            json!({ "status": "active", "base_url": null }),
        )
        .await
        .ok();
    assert_eq!(
        (active["status"].as_str(), active["base_url"].is_null()),
        (Some("active"), true)
    );
    let back = move_money(
        &api,
        &tree.player_token,
        &tree.player_id,
        "jdb",
        "transfer-in",
        "5",
    )
    .await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(
        scalar(
            &hub.infra,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'provider.update' AND target_id = 'jdb'"
        )
        .await,
        2
    );
    assert_eq!(
        api.balance(&tree.player_token, &tree.player_id).await,
        "29.00"
    );
    hub.infra.assert_ledger_ok();
}

backend_tests!(
    games_session_end_by_player_and_agent,
    games_session_ended_by_provider_report,
    games_catalogue_refresh_and_listing,
    games_provider_row_disabled,
);
