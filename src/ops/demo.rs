//! `nashub demo`: the hub with life in it. Seeds two demo brands (codes `demo-…`, names
//! "Demo …"), each with a four-level agent tree and players with money, then keeps gentle play
//! going through the public API and the embedded provider simulators: deposits, transfers to a
//! provider, rounds with results, transfers back, withdrawals. Everything goes through the same
//! HTTP endpoints an operator uses, so every invariant holds and every page has something to show.
//!
//! Safe to run again (brands already there are left as they are) and refused on a database
//! holding any client that is not a demo brand.

use std::time::Duration;

use anyhow::Context;
use rand::RngExt;
use serde_json::{Value, json};

use crate::providers::sim::SimKind;
use crate::store::Store;

/// The demo's super admin; its password is set afresh at every start and printed.
pub const OPERATOR: &str = "demo-operator";
/// Every demo user's password (demo data only).
pub const USER_PASSWORD: &str = "demo-password-1";
/// Client codes of the demo brands start with this.
pub const CODE_PREFIX: &str = "demo-";

const BRANDS: [(&str, &str, &str); 2] = [
    ("demo-lucky", "Demo Lucky Star", "USD"),
    ("demo-dragon", "Demo Dragon Palace", "PHP"),
];

#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// Players per brand.
    pub players: usize,
    /// Play actions per second, over all brands.
    pub rate: f64,
}

/// Refuses a database with real clients; (re)sets the demo operator's password.
pub async fn prepare(store: &Store, memory_kib: u32) -> anyhow::Result<String> {
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list_clients(cursor.as_deref(), 200).await?;
        if let Some(real) = page.iter().find(|c| !c.code.starts_with(CODE_PREFIX)) {
            anyhow::bail!(
                "this database holds client `{}`, which is not demo data: `nashub demo` runs only \
                 on an empty or demo database (set NASHUB_DATA_DIR or NASHUB_DATABASE_URL to another)",
                real.code
            );
        }
        match page.last() {
            Some(last) if page.len() == 200 => cursor = Some(last.id.clone()),
            _ => break,
        }
    }
    let mut bytes = [0_u8; 12];
    rand::fill(&mut bytes);
    let password = format!("demo-{}", hex::encode(bytes));
    let existing = store
        .user_by_login(crate::users::PLATFORM_SCOPE, OPERATOR)
        .await?;
    if existing.is_some() {
        super::admin::reset_password(store, memory_kib, None, OPERATOR, Some(&password))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    } else {
        super::admin::create_super_admin(store, memory_kib, OPERATOR, Some(&password))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(password)
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("idempotency-key", crate::domain::new_id());
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await?;
        let status = res.status();
        let value: Value = res.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{path}: {status} {value}");
        Ok(value)
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, None).await
    }
}

/// A player of a demo brand, as the play loop sees it: its id and its brand admin's session
/// (provider transfers are a client's business, never the platform's).
struct Player {
    id: String,
    brand: usize,
}

/// Seeds what is missing, then plays until the process stops.
pub async fn run(
    base: String,
    password: String,
    sims: Vec<(SimKind, String)>,
    options: DemoOptions,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": OPERATOR, "password": password }))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .context("demo operator login")?
        .to_owned();
    let api = Api {
        http: http.clone(),
        base: base.clone(),
        token,
    };
    let clients = api.get("/api/v1/clients?limit=200").await?;
    let mut players = Vec::new();
    let mut admins = Vec::new();
    for (brand, (code, name, currency)) in BRANDS.into_iter().enumerate() {
        let existing = clients["items"]
            .as_array()
            .and_then(|items| items.iter().find(|c| c["code"] == code))
            .and_then(|c| c["id"].as_str())
            .map(str::to_owned);
        let client_id = match existing {
            Some(id) => id,
            None => seed_brand(&api, code, name, currency, options.players).await?,
        };
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/users?client_id={client_id}&role=player&limit=200");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = api.get(&path).await?;
            for p in page["items"].as_array().into_iter().flatten() {
                if let Some(id) = p["id"].as_str() {
                    players.push(Player {
                        id: id.to_owned(),
                        brand,
                    });
                }
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let login: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({ "client": code, "username": "admin", "password": USER_PASSWORD }))
            .send()
            .await?
            .json()
            .await?;
        admins.push(Api {
            http: http.clone(),
            base: base.clone(),
            token: login["access_token"]
                .as_str()
                .context("brand admin login")?
                .to_owned(),
        });
    }
    println!(
        "demo: seeded; {} players playing at {}/s (log in as {OPERATOR}, or as any demo user with {USER_PASSWORD})",
        players.len(),
        options.rate
    );
    anyhow::ensure!(!players.is_empty(), "no demo players");
    let pause = Duration::from_secs_f64(1.0 / options.rate.max(0.1));
    loop {
        let player = &players[rand::rng().random_range(0..players.len())];
        if let Err(e) = play_once(&admins[player.brand], &sims, player).await {
            tracing::debug!(error = %e, "demo action refused");
        }
        tokio::time::sleep(pause).await;
    }
}

async fn seed_brand(
    api: &Api,
    code: &str,
    name: &str,
    currency: &str,
    players: usize,
) -> anyhow::Result<String> {
    let client = api
        .post(
            "/api/v1/clients",
            json!({ "code": code, "name": name, "currency": currency, "currency_exponent": 2 }),
        )
        .await?;
    let client_id = client["id"].as_str().context("client id")?.to_owned();
    api.send(
        reqwest::Method::PATCH,
        &format!("/api/v1/clients/{client_id}/settings"),
        Some(json!({ "commission_rate": "0.4000", "revenue_share_rate": "0.1000" })),
    )
    .await?;
    let user = |role: &str, username: String, parent: Option<&str>| {
        let mut body = json!({ "client_id": client_id, "role": role, "username": username, "password": USER_PASSWORD });
        if let Some(p) = parent {
            body["parent_id"] = json!(p);
        }
        body
    };
    let admin = api
        .post("/api/v1/users", user("client_admin", "admin".into(), None))
        .await?;
    let admin_id = admin["id"].as_str().context("admin id")?.to_owned();
    // Four levels: master → 2 super agents → 2 agents each → 1 sub-agent each; players hang
    // below the bottom two levels.
    let master = api
        .post(
            "/api/v1/users",
            user("agent", "master".into(), Some(&admin_id)),
        )
        .await?;
    let master_id = master["id"].as_str().context("agent id")?.to_owned();
    let mut leaves = Vec::new();
    for s in 1..=2 {
        let sup = api
            .post(
                "/api/v1/users",
                user("agent", format!("super{s}"), Some(&master_id)),
            )
            .await?;
        let sup_id = sup["id"].as_str().context("agent id")?.to_owned();
        for a in 1..=2 {
            let agent = api
                .post(
                    "/api/v1/users",
                    user("agent", format!("agent{s}{a}"), Some(&sup_id)),
                )
                .await?;
            let agent_id = agent["id"].as_str().context("agent id")?.to_owned();
            let sub = api
                .post(
                    "/api/v1/users",
                    user("agent", format!("sub{s}{a}"), Some(&agent_id)),
                )
                .await?;
            leaves.push(agent_id);
            leaves.push(sub["id"].as_str().context("agent id")?.to_owned());
        }
    }
    for (rate, id) in [("0.4000", &master_id)] {
        api.send(
            reqwest::Method::PUT,
            &format!("/api/v1/users/{id}/commission"),
            Some(json!({ "rate": rate })),
        )
        .await?;
    }
    for i in 0..players {
        let parent = &leaves[i % leaves.len()];
        let player = api
            .post(
                "/api/v1/users",
                user("player", format!("player{:03}", i + 1), Some(parent)),
            )
            .await?;
        let id = player["id"].as_str().context("player id")?;
        api.post(
            &format!("/api/v1/users/{id}/wallet/deposit"),
            json!({ "amount": "500.00", "memo": "demo welcome deposit" }),
        )
        .await?;
    }
    Ok(client_id)
}

/// One gentle action: a deposit, a withdrawal, or a short session at a provider.
async fn play_once(api: &Api, sims: &[(SimKind, String)], player: &Player) -> anyhow::Result<()> {
    let (roll, amount) = {
        let mut rng = rand::rng();
        (rng.random_range(0..10), rng.random_range(5..50))
    };
    let wallet = format!("/api/v1/users/{}", player.id);
    match roll {
        0 | 1 => {
            api.post(
                &format!("{wallet}/wallet/deposit"),
                json!({ "amount": format!("{amount}.00") }),
            )
            .await?;
        }
        2 => {
            api.post(
                &format!("{wallet}/wallet/withdraw"),
                json!({ "amount": format!("{}.00", amount / 2 + 1) }),
            )
            .await?;
        }
        _ => {
            let Some((kind, sim)) = sims.get(roll as usize % sims.len().max(1)) else {
                return Ok(());
            };
            let provider = match kind {
                SimKind::Jdb => "jdb",
                SimKind::LuckySports => "luckysports",
            };
            api.post(
                &format!("{wallet}/providers/{provider}/transfer-in"),
                json!({ "amount": format!("{amount}.00") }),
            )
            .await?;
            let uid = crate::providers::provider_uid(&player.id);
            for _ in 0..3 {
                let (stake, win) = {
                    let mut rng = rand::rng();
                    let stake = rng.random_range(100..=(amount * 100 / 3).max(101));
                    let win = if rng.random_bool(0.45) {
                        stake * rng.random_range(1..4)
                    } else {
                        0
                    };
                    (stake, win)
                };
                let (path, body) = match kind {
                    SimKind::Jdb => ("/sim/play", json!({ "uid": uid, "bet": stake, "win": win })),
                    SimKind::LuckySports => (
                        "/sim/bet",
                        json!({ "member_id": uid, "stake": stake, "payout": win }),
                    ),
                };
                let _ = api
                    .http
                    .post(format!("{sim}{path}"))
                    .json(&body)
                    .send()
                    .await;
            }
            let balance = api
                .get(&format!("{wallet}/providers/{provider}/balance"))
                .await?;
            if let Some(b) = balance["balance"].as_str()
                && b != "0.00"
                && b != "0"
            {
                api.post(
                    &format!("{wallet}/providers/{provider}/transfer-out"),
                    json!({ "amount": b }),
                )
                .await?;
            }
        }
    }
    Ok(())
}
