//! Configuration: a TOML file (`--config` / `NASHUB_CONFIG`) overlaid by `NASHUB_*` variables
//! (variables win), resolved into a [`Config`] whose secrets are always present: those left
//! unset are generated once into the data directory, so every subcommand started with the same
//! variables finds the same database and keys.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize};

/// Settings as an operator writes them. Names match DESIGN section 8.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address and port the hub listens on (HTTP, websockets and `/socket.io/` on one port).
    pub bind: String,
    /// Directory for the SQLite database, generated secrets and the embedded simulators' state.
    pub data_dir: PathBuf,
    /// `sqlite://FILE` or `mysql://user:password@host:port/db`; unset: `<data_dir>/nashub.db`.
    #[serde(deserialize_with = "opt_text")]
    pub database_url: Option<String>,
    /// Database connections for reads (and, on MySQL, writes) per node.
    pub database_max_connections: u32,
    /// How long startup and each request wait for a database connection (seconds): at startup,
    /// how long an unreachable database is retried before the hub gives up.
    pub database_acquire_timeout_secs: u64,
    /// Redis carrying events between hub nodes (`redis://host:6379`); unset: one node, in-process bus.
    #[serde(deserialize_with = "opt_text")]
    pub redis_url: Option<String>,
    /// Namespace of every Redis key and channel, so several hubs can share one Redis.
    #[serde(deserialize_with = "text")]
    pub redis_prefix: String,
    /// HS256 signing secret of access tokens (≥ 32 bytes); unset: generated once into the data
    /// directory. Every node of one platform needs the same.
    #[serde(deserialize_with = "opt_text")]
    pub jwt_secret: Option<String>,
    /// Signing secrets used before the current one, comma-separated: they verify access
    /// tokens (selected by the token's `kid`), never sign. An entry `base64:<text>` is decoded
    /// first (for a generated `jwt_secret` file's content). Rotation without downtime: list the
    /// new secret here on every node, then make it `jwt_secret` with the old one listed here,
    /// and remove the old one after `access_token_ttl_secs` (deploy/RUNBOOK.md).
    #[serde(deserialize_with = "text")]
    pub jwt_previous_secrets: String,
    /// Base64 of 32 bytes: AES-256-GCM key sealing provider credentials; unset: generated once
    /// into the data directory. Every node needs the same; rotate with `nashub rotate-secrets`.
    #[serde(deserialize_with = "opt_text")]
    pub secrets_key: Option<String>,
    /// Keys used before the current one (base64, comma-separated, newest first): they open
    /// values sealed before a rotation, never seal. The last one listed keys the audit chain
    /// when any is listed: keep the original key here for as long as the audit log matters.
    #[serde(deserialize_with = "text")]
    pub secrets_previous_keys: String,
    /// Username of the super admin created on first start.
    #[serde(deserialize_with = "text")]
    pub admin_username: String,
    /// Its password; unset: generated and printed once on first start (`nashub admin
    /// reset-password` if lost).
    #[serde(deserialize_with = "opt_text")]
    pub admin_password: Option<String>,
    /// Requests per second per authenticated caller; 0 turns the limit off.
    pub rate_limit_per_user: u32,
    /// Login and refresh requests per second per client IP (burst twice that); 0 turns it
    /// off. Failed logins are also throttled per account (`auth::throttle`).
    pub rate_limit_auth_per_ip: u32,
    /// Provider callbacks per second per provider and client IP (burst twice that); 0 off.
    pub rate_limit_callbacks_per_ip: u32,
    /// Browser origins allowed to call the API from any client's pages (the console, say):
    /// comma-separated `scheme://host[:port]`. Each client adds its own in its settings
    /// (`allowed_origins`).
    #[serde(deserialize_with = "text")]
    pub cors_origins: String,
    /// Send `Strict-Transport-Security` (set it when a TLS-terminating proxy fronts the hub).
    pub hsts: bool,
    /// `text` or `json`.
    #[serde(deserialize_with = "text")]
    pub log_format: String,
    /// OpenTelemetry traces: base URL of an OTLP/HTTP receiver (protobuf), e.g.
    /// `http://otel-collector:4318` (`/v1/traces` is added). Unset: no trace is recorded or
    /// exported, and no `traceparent` is read or sent. The `OTEL_BSP_*` variables tune the batch
    /// exporter (`OTEL_BSP_SCHEDULE_DELAY`, ms between exports, default 5000).
    #[serde(deserialize_with = "opt_text")]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported traces (one per deployment; nodes share it).
    #[serde(deserialize_with = "text")]
    pub otlp_service_name: String,
    /// Share of new traces recorded (0.0–1.0); a request carrying a `traceparent` follows its
    /// caller's sampling decision instead.
    pub otlp_sample_ratio: f64,
    /// HTTP worker threads; default: one per core.
    pub http_workers: Option<usize>,
    /// Lifetime of an access token (seconds).
    pub access_token_ttl_secs: i64,
    /// Lifetime of a refresh token family (seconds).
    pub refresh_token_ttl_secs: i64,
    /// A wallet actor with no message for this long stops.
    pub wallet_idle_secs: u64,
    /// Frames queued for one websocket before it counts as too slow (close 4008).
    pub ws_outbound_queue: usize,
    /// Seconds a websocket may stay silent (no frame, no pong) before it is closed.
    pub ws_idle_timeout_secs: u64,
    /// Most journal entries committed in one database transaction (group commit); 1 commits
    /// each mutation alone (the naive baseline).
    pub ledger_batch_max: usize,
    /// Microseconds a batch that is not full waits for more entries; 0 takes what is queued.
    pub ledger_batch_wait_us: u64,
    /// MySQL: longest a lone mutation's commit waits for one more to share its transaction,
    /// when mutations arrive about that often (microseconds; 0 = never). At ordinary rates the
    /// database does about half the transactions; the first of a pair waits up to this long.
    pub ledger_commit_linger_us: u64,
    /// A settlement period must have ended at least this long ago, so that late game results
    /// (JDB shows rounds after 3 minutes; pulls run every reconcile interval) are in it.
    pub settlement_grace_secs: i64,
    /// How often each node tries the settlement scheduler's lease and settles the periods
    /// clients' `settlement_schedule` closed (ms; 0 = never on this node).
    pub settlement_scheduler_interval_ms: u64,
    /// How often each node's channel dispatcher looks for due email/SMS messages (ms; 0 = the
    /// node sends none). A message queued on this node wakes it at once.
    pub channel_dispatch_interval_ms: u64,
    /// How long a node's claim on a message it is sending lasts (ms); after that another node
    /// may take it (as in doubt: see `channels::dispatcher`).
    pub channel_lease_ms: u64,
    /// Send attempts before a message is dead-lettered (`failed`).
    pub channel_max_attempts: u32,
    /// First retry delay (ms), doubled per attempt up to `channel_retry_max_ms`.
    pub channel_retry_base_ms: u64,
    /// Longest retry delay (ms).
    pub channel_retry_max_ms: u64,
    /// Messages per client per minute, all channels (0 = no limit); beyond it they wait.
    pub channel_rate_per_client_per_minute: u32,
    /// Messages per recipient address per hour (0 = no limit); beyond it they wait.
    pub channel_rate_per_recipient_per_hour: u32,
    /// Minutes a contact verification code stays valid.
    pub channel_code_ttl_minutes: u32,
    /// Public base URL of this hub that SMS gateways send delivery reports to
    /// (`<base>/callbacks/sms/<client id>`); empty: `http://<bind address>`.
    #[serde(deserialize_with = "text")]
    pub channel_callback_base_url: String,
    /// Tests only: a file holding milliseconds added to the channels' clock (code expiry,
    /// retry backoff, rate windows), so tests move time without sleeping. Empty: real time.
    #[serde(deserialize_with = "text")]
    pub test_clock_offset_file: String,
    /// Seconds between in-process ledger checks (the `ledger_imbalance` metric); 0 = off.
    pub ledger_check_interval_secs: u64,
    /// Argon2 memory cost in KiB (the argon2 crate's default is 19456).
    pub password_hash_memory_kib: u32,
    /// Game provider accounts. Empty (the embedded default): the hub starts both simulators on
    /// loopback and enables both providers for every client.
    pub providers: Vec<ProviderAccountSettings>,
    /// How often the reconciler looks for unresolved transfers.
    pub provider_reconcile_interval_ms: u64,
    /// Start the Stripe payment simulator on loopback (in memory) and serve every client
    /// without gateway credentials of its own with it (issue 18). Off in production.
    pub payment_sim: bool,
    /// How often the payment reconciler looks for open payments.
    pub payment_reconcile_interval_ms: u64,
    /// A payment untouched this long is settled from the gateway's view by the reconciler.
    pub payment_reconcile_after_ms: u64,
    /// Load tests only: enables `POST /api/v1/bench/events` (synthetic events, super admin).
    pub bench_events: bool,
    /// Deepest field nesting a `/graphql` query may have (deeper: refused before it runs).
    pub graphql_max_depth: usize,
    /// Largest `/graphql` query complexity: one per field, a connection's fields counted once
    /// per requested item (`first`); larger: refused before it runs.
    pub graphql_max_complexity: usize,
    /// Load tests only: false stops the periodic report feed (journal entries into the
    /// `report_money` rollup), to measure what it costs; reports still feed what waits before
    /// they read.
    pub bench_report_rollups: bool,
    /// How often the report feed adds newly committed journal entries to the report rollups
    /// (reports also catch it up before they read, so this only bounds how much one has to).
    /// Its cost is per transaction: 1000 instead of 250 took ~6% off a deposit's CPU at 500/s.
    pub report_feed_interval_ms: u64,
    /// Most journal entries the periodic report feed takes in one transaction (on SQLite the
    /// money path waits for the write lock while a feed transaction holds it; each transaction
    /// also costs a fixed share, so 250 cost ~17% of ledger throughput, 1000 ~4%).
    pub report_feed_batch: u32,
    /// How often each node records its websocket users per client (concurrent users in client
    /// metrics); 0 = never.
    pub report_ws_sample_secs: u64,
    /// Fault drills only (SQLite): each ledger WAL sync first sleeps this long, as a slow disk
    /// would. 0 = off.
    pub test_wal_sync_delay_ms: u64,
    /// Fault drills only (SQLite): the ledger WAL sync after this many succeeds fails, as a
    /// dying disk would (the hub stops). 0 = off.
    pub test_wal_sync_fail_after: u64,
    /// Tests only: enables `POST /api/v1/test/clock` (super admin), which moves this hub's
    /// player-protection clock forward (cooling-off, limit windows, exclusions, reality checks).
    pub test_clock: bool,
    /// Platform usernames that may log in with a password alone although super admins must
    /// use a second factor (comma-separated; empty = none). For the embedded quickstart and
    /// test harnesses; each such login is audited (`auth.login_second_factor_exempt`).
    #[serde(deserialize_with = "text")]
    pub second_factor_exempt: String,

    // --- Availability under attack (issue 25) ---
    /// Milliseconds a request body may take in all, from the request head to its last byte;
    /// past it the answer is 408 `request_timeout` and the connection is closed. 0 = off.
    pub request_body_timeout_ms: u64,
    /// Slowest accepted request body, in bytes per second, after the grace period below (the
    /// body is late once it holds fewer than `rate × (elapsed − grace)` bytes). 0 = off.
    pub request_body_min_rate: u64,
    /// Milliseconds a request body may send nothing before the minimum rate applies.
    pub request_body_grace_ms: u64,
    /// Milliseconds a connection may go without a request in progress before it is closed,
    /// whatever it sends: actix-http times out only a connection's first request head, so a
    /// later head trickled byte by byte on a kept-alive connection would otherwise last forever.
    /// 0 = off.
    pub connection_idle_max_ms: u64,
    /// Connections from one IP address that have not (yet) authenticated, open at once; more
    /// are refused at accept. A connection counts as authenticated once a request on it carried
    /// a valid access token, or its websocket authenticated. 0 = no cap.
    pub max_unauthenticated_connections_per_ip: usize,
    /// File descriptors kept free for the database pool, Redis, provider calls and the listener
    /// itself: the hub refuses new connections when its open connections reach the process's
    /// descriptor limit (`RLIMIT_NOFILE`) minus this reserve.
    pub fd_reserve: usize,
    /// Most open client connections (HTTP and websocket) per node; unset: the descriptor limit
    /// minus `fd_reserve`. The lower of the two applies.
    pub max_connections: Option<usize>,
    /// Concurrent websockets per user on this node (per role and per client below override it);
    /// 0 = no cap.
    pub ws_max_per_user: usize,
    /// Per-role caps (`{player = 16, agent = 64}`), over `ws_max_per_user`.
    pub ws_max_per_user_by_role: std::collections::BTreeMap<String, usize>,
    /// Per-client caps, keyed by client id, over the role's; `platform` for platform users.
    pub ws_max_per_user_by_client: std::collections::BTreeMap<String, usize>,
    /// Concurrent websockets from one IP address on this node. 0 = no cap.
    pub ws_max_per_ip: usize,
    /// Client frames per second one websocket may send on average (token bucket); a socket
    /// that exceeds it is closed with 4029. 0 = off.
    pub ws_frames_per_sec: u32,
    /// Frames a websocket may send in one burst above that rate (the bucket's size).
    pub ws_frames_burst: u32,
}

/// One operator account at one provider (`[[providers]]` in the configuration file).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ProviderAccountSettings {
    /// Our name for the account (metrics, transfer rows).
    pub name: String,
    /// `jdb` or `luckysports`.
    pub provider: String,
    pub base_url: String,
    /// JDB `dc` (domain code) / LuckySports `X-Operator`.
    pub operator: String,
    /// JDB agent id (`parent`).
    pub parent: String,
    /// JDB AES key and iv (16 characters each).
    pub key: String,
    pub iv: String,
    /// LuckySports HMAC secret.
    pub secret: String,
    /// Client codes served by this account; empty or `*` = every client.
    pub clients: Vec<String>,
    /// Timeout of one provider call.
    pub timeout_ms: u64,
    /// The provider's request-validity window plus clock-skew margin (a "not found" proves a
    /// transfer never happened only after this since our last send).
    pub request_window_ms: i64,
    /// Consecutive unavailable answers that open the breaker, and for how long.
    pub breaker_failures: u32,
    pub breaker_open_ms: u64,
    /// Concurrent calls to this account.
    pub max_in_flight: usize,
    /// JDB game history (action 29): how long after a round it becomes visible (3 minutes), and
    /// the time step of query windows (JDB wants whole minutes).
    pub results_delay_ms: i64,
    pub results_step_ms: i64,
}

impl std::fmt::Debug for ProviderAccountSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys and secrets never reach a log line.
        f.debug_struct("ProviderAccountSettings")
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("operator", &self.operator)
            .field("clients", &self.clients)
            .finish_non_exhaustive()
    }
}

impl Default for ProviderAccountSettings {
    fn default() -> Self {
        Self {
            name: String::new(),
            provider: String::new(),
            base_url: String::new(),
            operator: String::new(),
            parent: String::new(),
            key: String::new(),
            iv: String::new(),
            secret: String::new(),
            clients: Vec::new(),
            timeout_ms: 5000,
            request_window_ms: 0,
            breaker_failures: 5,
            breaker_open_ms: 5000,
            max_in_flight: 64,
            results_delay_ms: 180_000,
            results_step_ms: 60_000,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_max_connections: 16,
            database_acquire_timeout_secs: 30,
            redis_url: None,
            redis_prefix: "nashub".into(),
            jwt_secret: None,
            jwt_previous_secrets: String::new(),
            secrets_key: None,
            secrets_previous_keys: String::new(),
            admin_username: "admin".into(),
            admin_password: None,
            rate_limit_per_user: 2000,
            rate_limit_auth_per_ip: 20,
            rate_limit_callbacks_per_ip: 1000,
            cors_origins: String::new(),
            hsts: false,
            log_format: "text".into(),
            otlp_endpoint: None,
            otlp_service_name: "nashub".into(),
            otlp_sample_ratio: 1.0,
            http_workers: None,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            wallet_idle_secs: 120,
            ws_outbound_queue: 256,
            ws_idle_timeout_secs: 60,
            password_hash_memory_kib: 19456,
            providers: Vec::new(),
            provider_reconcile_interval_ms: 1000,
            payment_sim: true,
            payment_reconcile_interval_ms: 5000,
            payment_reconcile_after_ms: 30_000,
            bench_events: false,
            graphql_max_depth: 12,
            graphql_max_complexity: 20_000,
            bench_report_rollups: true,
            report_feed_interval_ms: 1000,
            report_feed_batch: 1000,
            report_ws_sample_secs: 60,
            test_wal_sync_delay_ms: 0,
            test_wal_sync_fail_after: 0,
            test_clock: false,
            second_factor_exempt: String::new(),
            ledger_batch_max: 256,
            ledger_batch_wait_us: 0,
            ledger_commit_linger_us: 5_000,
            ledger_check_interval_secs: 300,
            channel_dispatch_interval_ms: 1_000,
            channel_lease_ms: 60_000,
            channel_max_attempts: 5,
            channel_retry_base_ms: 30_000,
            channel_retry_max_ms: 3_600_000,
            channel_rate_per_client_per_minute: 600,
            channel_rate_per_recipient_per_hour: 20,
            channel_code_ttl_minutes: 15,
            test_clock_offset_file: String::new(),
            channel_callback_base_url: String::new(),
            settlement_grace_secs: 900,
            settlement_scheduler_interval_ms: 60_000,
            request_body_timeout_ms: 10_000,
            request_body_min_rate: 1024,
            request_body_grace_ms: 2_000,
            connection_idle_max_ms: 30_000,
            max_unauthenticated_connections_per_ip: 1024,
            fd_reserve: 1024,
            max_connections: None,
            ws_max_per_user: 16,
            ws_max_per_user_by_role: std::collections::BTreeMap::new(),
            ws_max_per_user_by_client: std::collections::BTreeMap::new(),
            ws_max_per_ip: 1024,
            ws_frames_per_sec: 50,
            ws_frames_burst: 200,
        }
    }
}

/// Environment values are parsed by figment (`"123"` becomes a number); these fields take the text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Text {
    S(String),
    I(i64),
    U(u64),
    F(f64),
    B(bool),
}

impl Text {
    fn into_string(self) -> String {
        match self {
            Text::S(s) => s,
            Text::I(i) => i.to_string(),
            Text::U(u) => u.to_string(),
            Text::F(f) => f.to_string(),
            Text::B(b) => b.to_string(),
        }
    }
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Text::deserialize(d)?.into_string())
}

fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Text>::deserialize(d)?
        .map(Text::into_string)
        .filter(|s| !s.is_empty()))
}

include!(concat!(env!("OUT_DIR"), "/settings_docs.rs"));

/// `NASHUB_*` variables read outside `Settings` (so not unknown settings).
const OTHER_VARIABLES: &[&str] = &["NASHUB_CONFIG", "NASHUB_LOG", "NASHUB_NEW_PASSWORD"];
/// Settings whose values `nashub config` never prints.
const SECRETS: &[&str] = &[
    "jwt_secret",
    "jwt_previous_secrets",
    "secrets_key",
    "secrets_previous_keys",
    "admin_password",
];

/// Where a setting's effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Variable(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Variable(v) => write!(f, "variable {v}"),
        }
    }
}

/// The names of every setting, as the file and `NASHUB_<NAME>` spell them.
pub fn setting_names() -> Vec<&'static str> {
    SETTINGS_DOCS.iter().map(|(name, _)| *name).collect()
}

/// Top-level keys of a TOML file (unknown ones are refused before anything else is read).
fn file_keys(path: &Path) -> anyhow::Result<Vec<String>> {
    use figment::Provider;
    let data = Toml::file(path)
        .data()
        .with_context(|| format!("configuration file {}", path.display()))?;
    Ok(data
        .values()
        .flat_map(|dict| dict.keys().cloned())
        .collect())
}

impl Settings {
    /// Defaults, then the file (if any), then `NASHUB_*` variables. A key or variable that names
    /// no setting is refused with its name (a typo must not silently leave a default in place).
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Ok(Self::load_with_sources(file)?.0)
    }

    /// `load`, and where each setting's value came from.
    pub fn load_with_sources(
        file: Option<&Path>,
    ) -> anyhow::Result<(Self, Vec<(&'static str, Source)>)> {
        let names = setting_names();
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        let mut from_file = Vec::new();
        if let Some(path) = file {
            anyhow::ensure!(
                path.exists(),
                "configuration file {} does not exist",
                path.display()
            );
            for key in file_keys(path)? {
                anyhow::ensure!(
                    names.contains(&key.as_str()),
                    "configuration file {}: unknown setting `{key}` (`nashub config --example` lists every setting)",
                    path.display()
                );
                from_file.push(key);
            }
            figment = figment.merge(Toml::file(path));
        }
        let mut from_env = Vec::new();
        for (var, _) in std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))) {
            let Some(rest) = var.strip_prefix("NASHUB_") else {
                continue;
            };
            if OTHER_VARIABLES.contains(&var.as_str()) {
                continue;
            }
            let key = rest.to_ascii_lowercase();
            anyhow::ensure!(
                names.contains(&key.as_str()),
                "unknown setting in variable {var} (`nashub config --example` lists every setting)"
            );
            from_env.push((key, var));
        }
        figment =
            figment.merge(Env::prefixed("NASHUB_").ignore(&["config", "log", "new_password"]));
        let settings: Settings = figment.extract().map_err(|e| {
            let key = e.path.join(".");
            anyhow::anyhow!("invalid configuration: {key}: {}", e.kind)
        })?;
        let sources = names
            .iter()
            .map(|name| {
                let source = if let Some((_, var)) = from_env.iter().find(|(k, _)| k == name) {
                    Source::Variable(var.clone())
                } else if from_file.iter().any(|k| k == name) {
                    Source::File(file.map(Path::to_path_buf).unwrap_or_default())
                } else {
                    Source::Default
                };
                (*name, source)
            })
            .collect();
        Ok((settings, sources))
    }

    /// `nashub config`: every setting's effective value (secrets and URL passwords redacted)
    /// and where it came from.
    pub fn describe(&self, sources: &[(&'static str, Source)]) -> String {
        let values = serde_json::to_value(self).unwrap_or_default();
        let mut out = String::new();
        for (name, source) in sources {
            let value = &values[*name];
            let shown = if SECRETS.contains(name) {
                if value.is_null() || value == "" {
                    "(unset: generated into the data directory)".to_owned()
                } else {
                    "(set, redacted)".to_owned()
                }
            } else if matches!(*name, "database_url" | "redis_url") {
                value.as_str().map_or_else(
                    || "(unset)".to_owned(),
                    |u| toml_literal(&serde_json::json!(redact_url(u))),
                )
            } else if value.is_null() {
                "(unset)".to_owned()
            } else {
                toml_literal(value)
            };
            out.push_str(&format!("{name} = {shown}  # {source}\n"));
        }
        out
    }
}

/// `nashub config --example`: every setting with its documentation and default, as a TOML file
/// an operator can copy (`nashub.example.toml` is this text; a test keeps them equal).
pub fn example_toml() -> String {
    let defaults = serde_json::to_value(Settings::default()).unwrap_or_default();
    let mut out = String::from(
        "# nashub configuration: every setting with its default. Copy what you change into your\n\
         # own file (`nashub --config FILE` or NASHUB_CONFIG); each is also the variable\n\
         # NASHUB_<NAME IN CAPITALS>, which wins over the file. `nashub config` prints the\n\
         # effective values and where each came from. Generated by `nashub config --example`.\n",
    );
    for (name, doc) in SETTINGS_DOCS {
        out.push('\n');
        for line in wrap(doc, 96) {
            out.push_str(&format!("# {line}\n"));
        }
        let value = &defaults[*name];
        match value {
            serde_json::Value::Null => out.push_str(&format!("# {name} =\n")),
            serde_json::Value::Array(a) if a.is_empty() && *name == "providers" => {
                out.push_str("# [[providers]]\n# name = \"jdb-main\"\n# provider = \"jdb\"\n# base_url = \"https://...\"\n");
            }
            v => out.push_str(&format!("{name} = {}\n", toml_literal(v))),
        }
    }
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push("(no description)".into());
    }
    lines
}

/// A JSON value written as a TOML value (strings quoted with JSON escapes, which TOML's basic
/// strings share for everything settings hold).
fn toml_literal(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(toml_literal)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k} = {}", toml_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl Settings {
    /// Creates the data directory and fills in every secret, generating missing ones once.
    pub fn resolve(self) -> anyhow::Result<Config> {
        std::fs::create_dir_all(&self.data_dir).with_context(|| {
            format!(
                "cannot create data directory {}: make it writable by this user, or set \
                     NASHUB_DATA_DIR to a directory that is",
                self.data_dir.display()
            )
        })?;
        let database_url = match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("nashub.db").display()),
        };
        let jwt_secret = match &self.jwt_secret {
            Some(s) => s.clone().into_bytes(),
            None => persistent_secret(&self.data_dir.join("jwt_secret"))?,
        };
        anyhow::ensure!(
            jwt_secret.len() >= 32,
            "NASHUB_JWT_SECRET must be at least 32 bytes"
        );
        let mut jwt_previous = Vec::new();
        for text in self
            .jwt_previous_secrets
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let secret = match text.strip_prefix("base64:") {
                Some(b64) => base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .context(
                        "NASHUB_JWT_PREVIOUS_SECRETS: an entry after `base64:` must be base64",
                    )?,
                None => text.as_bytes().to_vec(),
            };
            anyhow::ensure!(
                secret.len() >= 32,
                "NASHUB_JWT_PREVIOUS_SECRETS: each secret must be at least 32 bytes"
            );
            jwt_previous.push(secret);
        }
        let secrets_key = match &self.secrets_key {
            Some(s) => base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .context("NASHUB_SECRETS_KEY must be base64")?,
            None => persistent_secret(&self.data_dir.join("secrets_key"))?,
        };
        let secrets_key: [u8; 32] = secrets_key
            .try_into()
            .map_err(|_| anyhow::anyhow!("NASHUB_SECRETS_KEY must decode to 32 bytes (AES-256)"))?;
        let mut secrets_previous = Vec::new();
        for text in self
            .secrets_previous_keys
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let key: [u8; 32] = base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "NASHUB_SECRETS_PREVIOUS_KEYS: each key must be base64 of 32 bytes"
                    )
                })?;
            secrets_previous.push(key);
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            anyhow::ensure!(
                endpoint.starts_with("http://") || endpoint.starts_with("https://"),
                "NASHUB_OTLP_ENDPOINT must be an http:// or https:// URL (an OTLP/HTTP receiver)"
            );
        }
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.otlp_sample_ratio),
            "NASHUB_OTLP_SAMPLE_RATIO must be between 0 and 1"
        );
        Ok(Config {
            database_url,
            jwt_secret,
            jwt_previous,
            secrets_key,
            secrets_previous,
            settings: self,
        })
    }
}

/// Reads a 32-byte secret stored (base64) in `path`, creating it on first use with mode 0600.
///
/// Race-free: several processes may start on a fresh data directory at once (two nodes, or
/// `serve` beside `check-ledger`). Each candidate is written and synced under a unique temporary
/// name and then hard-linked to `path`, which fails if another process got there first; the
/// loser reads the winner's value. So `path` only ever appears complete, and all agree on it.
fn persistent_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    match read_secret(path)? {
        Some(secret) => Ok(secret),
        None => create_secret(path),
    }
}

fn read_secret(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let engine = base64::engine::general_purpose::STANDARD;
    match std::fs::read_to_string(path) {
        Ok(text) => engine
            .decode(text.trim())
            .map(Some)
            .with_context(|| format!("{} is not base64", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn create_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut secret = vec![0_u8; 32];
    rand::fill(&mut secret[..]);
    let mut nonce = [0_u8; 8];
    rand::fill(&mut nonce);
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("secret");
    let tmp = path.with_file_name(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        hex::encode(nonce)
    ));
    write_private(&tmp, engine.encode(&secret).as_bytes())?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(path);
            Ok(secret)
        }
        // Another process created it first: its value is the one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_secret(path)?
            .ok_or_else(|| anyhow::anyhow!("{} vanished while being created", path.display())),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// Makes a new directory entry durable (best effort: not every platform can open a directory).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// Settings with every secret and default resolved.
#[derive(Clone)]
pub struct Config {
    pub settings: Settings,
    pub database_url: String,
    pub jwt_secret: Vec<u8>,
    /// Earlier signing secrets: they verify, never sign.
    pub jwt_previous: Vec<Vec<u8>>,
    pub secrets_key: [u8; 32],
    /// Earlier keys, newest first: they open, never seal.
    pub secrets_previous: Vec<[u8; 32]>,
}

impl Config {
    /// The secrets box: the current key seals, every key opens what names it.
    pub fn secret_box(&self) -> crate::secrets::SecretBox {
        crate::secrets::SecretBox::with_previous(&self.secrets_key, &self.secrets_previous)
    }

    /// The key the audit chain is linked with: the oldest secrets key configured, so rotating
    /// the secrets key leaves every existing link verifiable.
    pub fn audit_secret(&self) -> &[u8; 32] {
        self.secrets_previous.last().unwrap_or(&self.secrets_key)
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach a log line.
        f.debug_struct("Config")
            .field("bind", &self.settings.bind)
            .field("data_dir", &self.settings.data_dir)
            .field("database", &redact_url(&self.database_url))
            .field("redis", &self.settings.redis_url.as_deref().map(redact_url))
            .field(
                "providers",
                &self
                    .settings
                    .providers
                    .iter()
                    .map(|p| &p.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// `mysql://user:pass@host/db` → `mysql://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    /// Many starters on a fresh data directory at once: every one succeeds and all read the
    /// same secrets (the loser of the race never sees a missing or half-written file).
    #[test]
    fn concurrent_first_start_agrees_on_generated_secrets() {
        for _round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let settings = Settings {
                        data_dir: dir.path().join("data"),
                        ..Settings::default()
                    };
                    let barrier = barrier.clone();
                    std::thread::spawn(move || {
                        barrier.wait();
                        settings.resolve().map(|c| (c.jwt_secret, c.secrets_key))
                    })
                })
                .collect();
            let results: Vec<_> = handles
                .into_iter()
                .map(|h| h.join().unwrap().expect("every starter resolves"))
                .collect();
            assert!(results.windows(2).all(|w| w[0] == w[1]));
            // No temporary file is left behind.
            let left: Vec<_> = std::fs::read_dir(dir.path().join("data"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".tmp"))
                .collect();
            assert!(left.is_empty(), "{left:?}");
        }
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    #[test]
    fn the_example_file_is_the_generated_one_and_loads_as_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("nashub.example.toml");
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == example_toml(),
            "nashub.example.toml is stale: run `cargo run -- config --example > nashub.example.toml`"
        );
        let (loaded, sources) = Settings::load_with_sources(Some(&path)).unwrap();
        assert_eq!(
            serde_json::to_value(&loaded).unwrap(),
            serde_json::to_value(Settings::default()).unwrap()
        );
        assert_eq!(sources.len(), SETTINGS_DOCS.len());
        for (name, doc) in SETTINGS_DOCS {
            assert!(!doc.is_empty(), "setting {name} has no documentation");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "bind = \"127.0.0.1:1\"\nledgr_batch_max = 3\n").unwrap();
        let e = Settings::load(Some(&file)).unwrap_err().to_string();
        assert!(e.contains("unknown setting `ledgr_batch_max`"), "{e}");
        std::fs::write(&file, "ledger_batch_max = \"many\"\n").unwrap();
        let e = format!("{:#}", Settings::load(Some(&file)).unwrap_err());
        assert!(e.contains("ledger_batch_max"), "{e}");
        std::fs::write(&file, "bind = \"0.0.0.0:9\"\n").unwrap();
        let (s, sources) = Settings::load_with_sources(Some(&file)).unwrap();
        assert_eq!(s.bind, "0.0.0.0:9");
        assert!(sources.contains(&("bind", Source::File(file.clone()))));
        assert!(sources.contains(&("data_dir", Source::Default)));
        let shown = s.describe(&sources);
        assert!(shown.contains("bind = \"0.0.0.0:9\"  # file"), "{shown}");
    }

    #[test]
    fn secrets_and_url_passwords_are_never_printed() {
        let s = Settings {
            jwt_secret: Some("x".repeat(40)),
            database_url: Some("mysql://root:hunter2@db:3306/hub".into()),
            ..Settings::default()
        };
        let sources: Vec<_> = setting_names()
            .into_iter()
            .map(|n| (n, Source::Default))
            .collect();
        let shown = s.describe(&sources);
        assert!(
            !shown.contains("hunter2") && !shown.contains(&"x".repeat(40)),
            "{shown}"
        );
        assert!(shown.contains("jwt_secret = (set, redacted)"), "{shown}");
    }
}
