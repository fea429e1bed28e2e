//! `TestHub`: the real hub on a random port with its own fresh database, plus HTTP and
//! websocket helpers. Every test runs on SQLite with the in-process bus, and again on MariaDB
//! with Redis when `HUB_TEST_MYSQL_URL` / `HUB_TEST_REDIS_URL` are set at build time (CI sets
//! both). Without them the MariaDB variants are compiled as `#[ignore]`d tests, so `cargo test`
//! reports how many it did not run (build.rs); a set variable that cannot be reached fails.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nashub::config::Settings;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const PASSWORD: &str = "password-123";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file and the in-process bus: always.
    Sqlite,
    /// MariaDB (fresh database per hub) and Redis when configured.
    MySql,
}

impl Backend {
    /// Whether this backend can run here. The MariaDB variants are ignored unless the
    /// variable was set at build time, so one run with `--include-ignored` but no database
    /// fails here instead of passing.
    pub fn available(self) -> bool {
        match self {
            Backend::Sqlite => true,
            Backend::MySql => {
                assert!(
                    std::env::var("HUB_TEST_MYSQL_URL").is_ok(),
                    "HUB_TEST_MYSQL_URL is not set: this MariaDB variant cannot run"
                );
                true
            }
        }
    }
}

/// Declares each listed `async fn name(Backend)` as a test per backend.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(hub_mysql), ignore = "needs HUB_TEST_MYSQL_URL (MariaDB/MySQL) at build time")]
                async fn $name() {
                    assert!($crate::helpers::Backend::MySql.available());
                    super::$name($crate::helpers::Backend::MySql).await;
                }
            )*
        }
    };
}

/// A database (and bus) a test owns; dropped with it.
pub struct Infra {
    pub database_url: String,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    pub data_dir: tempfile::TempDir,
    mysql_drop: Option<(String, String)>,
}

fn unique(tag: &str) -> String {
    format!("{tag}_{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
}

/// `mysql://u@h:p/db?x` → (`mysql://u@h:p`, `?x`).
fn split_mysql_url(url: &str) -> (String, String) {
    let (main, params) = match url.split_once('?') {
        Some((m, p)) => (m, format!("?{p}")),
        None => (url, String::new()),
    };
    let after_scheme = main.find("://").map_or(0, |i| i + 3);
    let server = match main[after_scheme..].find('/') {
        Some(slash) => &main[..after_scheme + slash],
        None => main,
    };
    (server.to_owned(), params)
}

impl Infra {
    pub async fn new(backend: Backend) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let redis_prefix = unique("nashub_t");
        match backend {
            Backend::Sqlite => Infra {
                database_url: format!("sqlite://{}", data_dir.path().join("hub.db").display()),
                redis_url: None,
                redis_prefix,
                data_dir,
                mysql_drop: None,
            },
            Backend::MySql => {
                let admin_url = std::env::var("HUB_TEST_MYSQL_URL").expect("HUB_TEST_MYSQL_URL");
                let (server, params) = split_mysql_url(&admin_url);
                let name = unique("nashub_t");
                let mut conn = <sqlx::MySqlConnection as sqlx::Connection>::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("HUB_TEST_MYSQL_URL is set but MySQL cannot be reached: {e}")
                    });
                sqlx::Executor::execute(
                    &mut conn,
                    sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
                )
                .await
                .expect("create test database");
                Infra {
                    database_url: format!("{server}/{name}{params}"),
                    redis_url: std::env::var("HUB_TEST_REDIS_URL").ok(),
                    redis_prefix,
                    data_dir,
                    mysql_drop: Some((admin_url, name)),
                }
            }
        }
    }

    /// Settings a hub process or thread runs with on this infrastructure.
    pub fn settings(&self) -> Settings {
        Settings {
            bind: "127.0.0.1:0".into(),
            data_dir: self.data_dir.path().to_path_buf(),
            database_url: Some(self.database_url.clone()),
            redis_url: self.redis_url.clone(),
            redis_prefix: self.redis_prefix.clone(),
            admin_password: Some(ADMIN_PASSWORD.into()),
            http_workers: Some(2),
            password_hash_memory_kib: 1024,
            // Player-protection tests move time through `POST /api/v1/test/clock`.
            test_clock: true,
            // The bootstrap super admin logs in with a password alone (audited exception).
            second_factor_exempt: "admin".into(),
            ..Settings::default()
        }
    }

    /// The environment that makes a `nashub` process use this infrastructure.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "NASHUB_DATA_DIR".to_owned(),
                self.data_dir.path().display().to_string(),
            ),
            ("NASHUB_DATABASE_URL".to_owned(), self.database_url.clone()),
            ("NASHUB_REDIS_PREFIX".to_owned(), self.redis_prefix.clone()),
            (
                "NASHUB_ADMIN_PASSWORD".to_owned(),
                ADMIN_PASSWORD.to_owned(),
            ),
            (
                "NASHUB_PASSWORD_HASH_MEMORY_KIB".to_owned(),
                "1024".to_owned(),
            ),
            ("NASHUB_HTTP_WORKERS".to_owned(), "2".to_owned()),
            ("NASHUB_SECOND_FACTOR_EXEMPT".to_owned(), "admin".to_owned()),
        ];
        if let Some(redis) = &self.redis_url {
            env.push(("NASHUB_REDIS_URL".to_owned(), redis.clone()));
        }
        env
    }

    /// One value from the hub's database, read as an operator's query would.
    pub async fn query_one<T>(&self, sql: &str) -> T
    where
        T: sqlx::Type<sqlx::Sqlite>
            + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
            + sqlx::Type<sqlx::MySql>
            + for<'r> sqlx::Decode<'r, sqlx::MySql>
            + Send
            + Unpin,
    {
        use sqlx::Connection;
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        if self.database_url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::query_scalar::<_, T>(sql)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        } else {
            let mut conn = sqlx::MySqlConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::query_scalar::<_, T>(sql)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }
    }

    /// Runs one statement straight on the database, as an operator's tool could.
    /// A store of its own on the test's database (for what no API shows: audit chain rows,
    /// bulk user inserts, client rows).
    pub async fn store(&self) -> nashub::store::Store {
        nashub::store::Store::connect(&nashub::store::StoreOptions {
            url: self.database_url.clone(),
            max_connections: 2,
            acquire_timeout: std::time::Duration::from_secs(30),
            group_commit: Default::default(),
            wal_sync_faults: Default::default(),
        })
        .await
        .unwrap()
    }

    pub async fn execute(&self, sql: &str) {
        use sqlx::{Connection, Executor};
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        if self.database_url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .unwrap();
            conn.execute(sql).await.unwrap();
        } else {
            let mut conn = sqlx::MySqlConnection::connect(&self.database_url)
                .await
                .unwrap();
            conn.execute(sql).await.unwrap();
        }
    }

    /// Runs a `nashub` subcommand on this infrastructure: (exit code, stdout).
    pub fn run_nashub(&self, command: &str) -> (Option<i32>, String) {
        self.run_nashub_with(command, &[])
    }

    /// `run_nashub` with extra `NASHUB_*` variables.
    pub fn run_nashub_with(&self, command: &str, extra: &[(&str, &str)]) -> (Option<i32>, String) {
        self.run_nashub_args(&[command], extra)
    }

    /// A `nashub` command line (subcommand and its arguments) on this infrastructure.
    pub fn run_nashub_args(&self, args: &[&str], extra: &[(&str, &str)]) -> (Option<i32>, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_nashub"))
            .args(args)
            .env_clear()
            .envs(self.env())
            .envs(extra.iter().copied())
            .output()
            .expect("run nashub");
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Runs `nashub audit-verify`; returns how many rows the intact chain holds.
    pub fn assert_audit_ok(&self) -> i64 {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_nashub"))
            .arg("audit-verify")
            .env_clear()
            .envs(self.env())
            .output()
            .expect("run nashub audit-verify");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "audit-verify failed: {stdout}");
        stdout
            .trim()
            .strip_prefix("audit log ok: ")
            .and_then(|s| s.strip_suffix(" rows"))
            .unwrap_or_else(|| panic!("{stdout}"))
            .parse()
            .unwrap()
    }

    /// Runs `nashub check-ledger` against this database, as an operator would.
    pub fn assert_ledger_ok(&self) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_nashub"))
            .arg("check-ledger")
            .env_clear()
            .envs(self.env())
            .output()
            .expect("run nashub check-ledger");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "check-ledger failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("ledger ok"), "{stdout}");
    }
}

impl Drop for Infra {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.mysql_drop.take() {
            // Drop runs outside any runtime guarantee: use a private one on a plain thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) =
                        <sqlx::MySqlConnection as sqlx::Connection>::connect(&admin_url).await
                    {
                        let _ = sqlx::Executor::execute(
                            &mut conn,
                            sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")),
                        )
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

/// The hub running in this test process, on its own actix system thread.
pub struct TestHub {
    pub base: String,
    pub http: reqwest::Client,
    server: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    pub infra: Infra,
}

impl TestHub {
    pub async fn start(backend: Backend) -> Self {
        Self::start_on(Infra::new(backend).await).await
    }

    /// A hub whose settings `tweak` adjusts first (rate limits and the like).
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Self {
        let infra = Infra::new(backend).await;
        let mut settings = infra.settings();
        tweak(&mut settings);
        Self::start_settings(infra, settings).await
    }

    pub async fn start_on(infra: Infra) -> Self {
        let settings = infra.settings();
        Self::start_settings(infra, settings).await
    }

    /// Starts on `infra` with settings adjusted by `tune` (queue sizes, Redis URL, ...).
    pub async fn start_on_with(infra: Infra, tune: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = infra.settings();
        tune(&mut settings);
        Self::start_settings(infra, settings).await
    }

    async fn start_settings(infra: Infra, settings: Settings) -> Self {
        // `RUST_LOG=nashub=debug cargo test ... -- --nocapture` shows the hub's logs.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let config = settings.resolve().expect("resolve settings");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let hub = nashub::startup::Hub::build(config)
                    .await
                    .expect("hub starts");
                let _ = tx.send((hub.addr, hub.handle()));
                let _ = hub.run().await;
            });
        });
        let (addr, server) = rx.await.expect("hub started");
        TestHub {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            server,
            thread: Some(thread),
            infra,
        }
    }

    pub fn api(&self) -> Api {
        Api {
            base: self.base.clone(),
            http: self.http.clone(),
        }
    }

    pub fn ws_url(&self, token: &str) -> String {
        ws_url(&self.base, token)
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        // Sends the stop command at once; `run()` then returns and the thread ends.
        let _stopping = self.server.stop(false);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn ws_url(base: &str, token: &str) -> String {
    format!("{}/ws?token={token}", base.replacen("http", "ws", 1))
}

/// A `nashub serve` process; killed when dropped.
pub struct HubProcess {
    child: std::process::Child,
    pub base: String,
}

impl HubProcess {
    pub fn start(infra: &Infra) -> HubProcess {
        Self::start_with_env(infra, &[])
    }

    /// Started with extra `NASHUB_*` variables (fault drills).
    pub fn start_with_env(infra: &Infra, extra: &[(&str, &str)]) -> HubProcess {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nashub"))
            .arg("serve")
            .env_clear()
            .envs(infra.env())
            .env("NASHUB_BIND", "127.0.0.1:0")
            .env("NASHUB_LOG", "warn")
            .envs(extra.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start nashub serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in
                std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok)
            {
                if let Some(base) = line.strip_prefix("nashub listening on ") {
                    let _ = tx.send(base.to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("node prints its address");
        HubProcess { child, base }
    }

    /// SIGKILL: no shutdown code runs, as in a crash or power loss of the process.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn api(&self) -> Api {
        Api::new(&self.base)
    }

    /// SIGTERM: the hub shuts down gracefully.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// How the process ended, if it ends by itself within `wait`.
    pub fn exit_within(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + wait;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("child status") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The process's `/metrics` text (its registry is its own); read one series with
    /// [`metric_value`].
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HTTP calls against any hub base URL (in-process or a separate process).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
}

impl Reply {
    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(
            (200..300).contains(&self.status),
            "expected 2xx, got {} {}",
            self.status,
            self.body
        );
        self.body
    }

    #[track_caller]
    pub fn error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            self.body
        );
    }
}

impl Api {
    pub fn new(base: &str) -> Self {
        Api {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = res.text().await.unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            body,
            retry_after,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, token: &str, path: &str) -> Reply {
        self.send(self.http.get(self.url(path)).bearer_auth(token))
            .await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Reply {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    pub async fn patch(&self, token: &str, path: &str, body: Value) -> Reply {
        self.send(
            self.http
                .patch(self.url(path))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    pub async fn put(&self, token: &str, path: &str, body: Value) -> Reply {
        self.send(self.http.put(self.url(path)).bearer_auth(token).json(&body))
            .await
    }

    pub async fn delete(&self, token: &str, path: &str) -> Reply {
        self.send(self.http.delete(self.url(path)).bearer_auth(token))
            .await
    }

    /// A login attempt as sent, whatever its outcome.
    pub async fn try_login(&self, client: Option<&str>, username: &str, password: &str) -> Reply {
        let mut body = json!({ "username": username, "password": password });
        if let Some(code) = client {
            body["client"] = json!(code);
        }
        self.send(self.http.post(self.url("/api/v1/auth/login")).json(&body))
            .await
    }

    pub async fn post_key(&self, token: &str, path: &str, key: &str, body: Value) -> Reply {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&body),
        )
        .await
    }

    /// POSTs `body` once per key, all at once (races on one wallet); replies in key order.
    pub async fn post_keys_concurrently(
        &self,
        token: &str,
        path: &str,
        keys: impl IntoIterator<Item = String>,
        body: Value,
    ) -> Vec<Reply> {
        let body = &body;
        futures_util::future::join_all(
            keys.into_iter()
                .map(|key| async move { self.post_key(token, path, &key, body.clone()).await }),
        )
        .await
    }

    pub async fn login(&self, client: Option<&str>, username: &str, password: &str) -> Value {
        let mut body = json!({ "username": username, "password": password });
        if let Some(code) = client {
            body["client"] = json!(code);
        }
        self.send(self.http.post(self.url("/api/v1/auth/login")).json(&body))
            .await
            .ok()
    }

    pub async fn token(&self, client: Option<&str>, username: &str) -> String {
        let password = if client.is_none() {
            ADMIN_PASSWORD
        } else {
            PASSWORD
        };
        self.login(client, username, password).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn deposit(&self, token: &str, user_id: &str, amount: &str) -> Value {
        let key = uuid::Uuid::new_v4().to_string();
        self.post_key(
            token,
            &format!("/api/v1/users/{user_id}/wallet/deposit"),
            &key,
            json!({ "amount": amount }),
        )
        .await
        .ok()
    }

    pub async fn balance(&self, token: &str, user_id: &str) -> String {
        let wallet = self
            .get(token, &format!("/api/v1/users/{user_id}/wallet"))
            .await
            .ok();
        wallet["balance"].as_str().unwrap().to_owned()
    }
}

/// A client with an admin, an agent under it and a player under the agent, all logged in.
pub struct Tree {
    pub client_id: String,
    pub code: String,
    pub super_token: String,
    pub admin_id: String,
    pub admin_token: String,
    pub agent_id: String,
    pub agent_token: String,
    pub player_id: String,
    pub player_token: String,
}

impl Tree {
    pub async fn create(api: &Api) -> Tree {
        let super_token = api.token(None, "admin").await;
        let code = unique("c").to_lowercase();
        let client = api
            .post(&super_token, "/api/v1/clients", json!({ "code": code, "name": "Test Casino", "currency": "USD", "currency_exponent": 2 }))
            .await
            .ok();
        let client_id = client["id"].as_str().unwrap().to_owned();
        let user = |parent: Option<&str>, role: &str, name: &str| {
            let mut body = json!({ "client_id": client_id, "role": role, "username": name, "password": PASSWORD });
            if let Some(p) = parent {
                body["parent_id"] = json!(p);
            }
            body
        };
        let admin_id = api
            .post(
                &super_token,
                "/api/v1/users",
                user(None, "client_admin", "boss"),
            )
            .await
            .ok()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let admin_token = api.token(Some(&code), "boss").await;
        let agent_id = api
            .post(
                &admin_token,
                "/api/v1/users",
                user(Some(&admin_id), "agent", "agent1"),
            )
            .await
            .ok()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let agent_token = api.token(Some(&code), "agent1").await;
        let player_id = api
            .post(
                &agent_token,
                "/api/v1/users",
                user(Some(&agent_id), "player", "player1"),
            )
            .await
            .ok()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let player_token = api.token(Some(&code), "player1").await;
        Tree {
            client_id,
            code,
            super_token,
            admin_id,
            admin_token,
            agent_id,
            agent_token,
            player_id,
            player_token,
        }
    }
}

/// A websocket client that reads JSON frames.
pub struct WsClient {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl WsClient {
    pub async fn connect(url: &str) -> WsClient {
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        WsClient { stream }
    }

    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::text(frame.to_string()))
            .await
            .expect("frame sent");
    }

    /// The next JSON frame, or None if nothing arrives in time.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??;
            match msg.expect("websocket frame") {
                Message::Text(text) => {
                    return Some(serde_json::from_str(&text).expect("frames are JSON"));
                }
                Message::Close(frame) => {
                    return Some(
                        json!({ "type": "closed", "code": frame.map(|f| u16::from(f.code)) }),
                    );
                }
                _ => continue,
            }
        }
    }

    /// `next_within`, but a connection that died (its node was killed) ends the stream with
    /// None instead of failing the test.
    pub async fn next_unless_gone(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??
            {
                Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Connects with a tiny socket receive buffer, so a client that stops reading stalls the
    /// server quickly (slow-consumer tests).
    pub async fn connect_small_buffer(url: &str) -> WsClient {
        let addr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(addr).await.expect("tcp connects");
        let (stream, _) =
            tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(tcp))
                .await
                .expect("websocket connects");
        WsClient { stream }
    }

    pub async fn next(&mut self) -> Value {
        self.next_within(Duration::from_secs(10))
            .await
            .expect("a frame within 10 s")
    }

    /// The next frame whose type is one of `kinds`, skipping others.
    pub async fn next_of_any(&mut self, kinds: &[&str]) -> Value {
        loop {
            let frame = self.next().await;
            if kinds.iter().any(|k| frame["type"] == *k) {
                return frame;
            }
        }
    }

    /// The next frame of `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }
}

/// Value of one Prometheus series line (`name{labels} value`) in a `/metrics` text.
pub fn metric_value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
