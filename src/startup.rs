//! Start-up as a function tests call: connect storage, bootstrap the super admin, start the bus
//! and actors, bind (port 0 works) and return a [`Hub`] that runs until stopped.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, web};
use anyhow::Context;
use base64::Engine;

use crate::actors::wallet_registry::WalletRegistry;
use crate::auth::{Authenticator, TokenService};
use crate::config::Config;
use crate::domain::{Role, names};
use crate::realtime::bus::Bus;
use crate::realtime::room_hub::{CLOSE_GOING_AWAY, RoomHub};
use crate::state::AppState;
use crate::store::{Store, StoreError, StoreOptions};
use crate::users::{CreateUserError, NewUser, PLATFORM_SCOPE, create_user};

/// How long a shutdown waits for websocket sessions to send their close frames.
const SESSIONS_CLOSE_WAIT: Duration = Duration::from_secs(2);

pub struct Hub {
    pub addr: SocketAddr,
    pub state: AppState,
    server: Server,
}

/// The channels' clock: real time, or (tests) shifted by `test_clock_offset_file`.
fn channel_clock(settings: &crate::config::Settings) -> crate::domain::Clock {
    if settings.test_clock_offset_file.is_empty() {
        crate::domain::Clock::system()
    } else {
        crate::domain::Clock::with_offset_file(settings.test_clock_offset_file.clone().into())
    }
}

/// Opens the configured database (creating and migrating it).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    crate::store::reports::set_money_rollup(config.settings.bench_report_rollups);
    let options = StoreOptions {
        url: config.database_url.clone(),
        max_connections: config.settings.database_max_connections,
        acquire_timeout: Duration::from_secs(config.settings.database_acquire_timeout_secs),
        group_commit: crate::store::GroupCommitOptions {
            max_batch: config.settings.ledger_batch_max,
            max_wait: Duration::from_micros(config.settings.ledger_batch_wait_us),
            linger: Duration::from_micros(config.settings.ledger_commit_linger_us),
        },
        wal_sync_faults: crate::store::WalSyncFaults {
            delay: Duration::from_millis(config.settings.test_wal_sync_delay_ms),
            fail_after: std::num::NonZeroU64::new(config.settings.test_wal_sync_fail_after),
        },
    };
    // A drill that silently injects nothing would pass for a disk that held up.
    let drill = options.wal_sync_faults;
    anyhow::ensure!(
        (drill.delay.is_zero() && drill.fail_after.is_none())
            || (options.url.starts_with("sqlite:") && options.group_commit.max_batch > 1),
        "test_wal_sync_delay_ms and test_wal_sync_fail_after act on the SQLite ledger's WAL sync \
         stage, which runs only with SQLite and group commit (ledger_batch_max > 1)"
    );
    let store = Store::connect(&options).await.map_err(|e| {
        // sqlx's words for a database a newer nashub migrated: say what to do about it.
        let text = e.to_string();
        if text.contains("previously applied but is missing") {
            anyhow::anyhow!(
                "{text}: this database was migrated by a newer nashub (this one knows schema \
                 versions up to its own): run that version or a newer one"
            )
        } else {
            anyhow::Error::from(e)
        }
    });
    let store = store.with_context(|| {
        format!(
            "cannot open database {} (is it running and reachable, are the user and password in \
             NASHUB_DATABASE_URL right? unset it to use the embedded SQLite file)",
            crate::config::redact_url(&config.database_url)
        )
    })?;
    Ok(store.with_audit_key(crate::audit::chain::derive_key(config.audit_secret())))
}

impl Hub {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        crate::telemetry::prometheus();
        let settings = &config.settings;
        let store = open_store(&config).await?;
        bootstrap_admin(&store, &config).await?;

        let rooms = Arc::new(RoomHub::new());
        let bus = match &settings.redis_url {
            Some(url) => Bus::redis(url, &settings.redis_prefix, rooms.clone())
                .await
                .with_context(|| {
                    format!(
                        "cannot reach Redis at {}: start it, fix NASHUB_REDIS_URL, or unset it to run one node with the in-process bus",
                        crate::config::redact_url(url)
                    )
                })?,
            None => Bus::local(rooms.clone()),
        };
        let tokens = Arc::new(TokenService::with_previous(
            &config.jwt_secret,
            &config.jwt_previous,
            settings.access_token_ttl_secs,
        ));
        let auth = Arc::new(Authenticator::new(tokens, store.clone()));
        crate::ops::spawn_ledger_watch(
            store.clone(),
            Duration::from_secs(settings.ledger_check_interval_secs),
        );
        let protection =
            crate::protection::Protection::new(store.clone(), crate::protection::Clock::default());
        let wallets = WalletRegistry::new(
            store.clone(),
            bus.clone(),
            Duration::from_secs(settings.wallet_idle_secs),
            protection,
        );
        let secrets = Arc::new(config.secret_box());
        refuse_unopenable_secrets(&store, &secrets).await?;
        // Which providers exist is data (`providers` table, issue 21); configured accounts
        // that give no base URL take their provider row's.
        let provider_rows = store.provider_rows().await?;
        let mut accounts = settings.providers.clone();
        crate::transfers::catalog::default_base_urls(&mut accounts, &provider_rows);
        let providers = crate::transfers::Providers::start(
            &accounts,
            &settings.data_dir.join("sims"),
            store.clone(),
            wallets.clone(),
            bus.clone(),
            secrets.clone(),
        )
        .context("cannot set up game providers")?;
        providers.set_provider_rows(provider_rows);
        let gateways =
            crate::payments::registry::Gateways::start(settings.payment_sim, secrets.clone())
                .context("cannot start the payment simulator")?;
        let payments =
            crate::payments::Payments::new(store.clone(), wallets.clone(), bus.clone(), gateways);
        let state = AppState {
            config: Arc::new(config.clone()),
            store,
            auth,
            wallets,
            rooms,
            bus,
            providers,
            payments,
            limiter: Arc::new(crate::auth::rate_limit::RateLimiter::new(
                settings.rate_limit_per_user,
            )),
            origins: Arc::new(
                crate::clients::origins::AllowedOrigins::new(&settings.cors_origins)
                    .map_err(anyhow::Error::msg)?,
            ),
            hsts: settings.hsts,
            ip_limits: Arc::new(crate::auth::rate_limit::IpLimits::new(
                settings.rate_limit_auth_per_ip,
                settings.rate_limit_callbacks_per_ip,
            )),
            secrets,
            channels: Arc::new(crate::channels::Runtime::new(
                channel_clock(settings),
                settings.channel_code_ttl_minutes.max(1),
            )),
        };

        let listener = TcpListener::bind(&settings.bind).map_err(|e| {
            let fix = match e.kind() {
                std::io::ErrorKind::AddrInUse => {
                    "another program (or hub) is listening there: stop it, or set NASHUB_BIND to a free port"
                }
                std::io::ErrorKind::PermissionDenied => {
                    "ports below 1024 need privileges: use a higher port in NASHUB_BIND"
                }
                _ => "check NASHUB_BIND (host:port)",
            };
            anyhow::anyhow!("cannot listen on {}: {e}; {fix}", settings.bind)
        })?;
        let addr = listener.local_addr()?;
        state.providers.set_callback_base(&format!("http://{addr}"));
        state
            .payments
            .gateways()
            .set_webhook_base(&format!("http://{addr}"));
        if let Some(url) = state.payments.gateways().embedded_base_url() {
            tracing::info!(%url, "embedded payment gateway simulator (stripe)");
        }
        crate::rt::spawn(crate::payments::reconciler::run(
            state.payments.clone(),
            Duration::from_millis(settings.payment_reconcile_interval_ms.max(10)),
            Duration::from_millis(settings.payment_reconcile_after_ms),
        ));
        state.channels.set_callback_base(
            if settings.channel_callback_base_url.is_empty() {
                format!("http://{addr}")
            } else {
                settings.channel_callback_base_url.clone()
            }
            .as_str(),
        );
        if settings.channel_dispatch_interval_ms > 0 {
            crate::rt::spawn(
                crate::channels::dispatcher::Dispatcher::new(
                    state.store.clone(),
                    state.secrets.clone(),
                    state.channels.clock.clone(),
                    crate::channels::dispatcher::DispatchSettings::from_config(settings),
                    state.channels.callback_base(),
                )
                .run(),
            );
        }
        for (kind, url) in state.providers.embedded_sims() {
            tracing::info!(?kind, %url, "embedded provider simulator");
        }
        crate::rt::spawn(crate::reports::feed::run(
            state.store.clone(),
            Duration::from_millis(settings.report_feed_interval_ms.max(1)),
            i64::from(settings.report_feed_batch),
        ));
        if settings.report_ws_sample_secs > 0 {
            crate::rt::spawn(crate::reports::presence::run(
                state.store.clone(),
                state.rooms.clone(),
                Duration::from_secs(settings.report_ws_sample_secs),
            ));
        }
        crate::rt::spawn(crate::transfers::reconciler::run(
            state.providers.clone(),
            Duration::from_millis(settings.provider_reconcile_interval_ms.max(10)),
            Duration::from_millis(settings.provider_reconcile_interval_ms.max(10) * 2),
        ));
        crate::rt::spawn(crate::transfers::reality::run(
            state.store.clone(),
            state.bus.clone(),
            state.wallets.protection().clone(),
        ));
        // Provider rows reloaded, the games catalogue refreshed now and hourly (background).
        crate::rt::spawn(crate::transfers::catalog::run(state.providers.clone()));
        crate::rt::spawn(crate::settlements::poster::resume_pending(
            state.store.clone(),
            state.wallets.clone(),
        ));
        if settings.settlement_scheduler_interval_ms > 0 {
            crate::rt::spawn(crate::settlements::scheduler::run(
                state.store.clone(),
                state.wallets.clone(),
                Duration::from_millis(settings.settlement_scheduler_interval_ms),
                settings.settlement_grace_secs,
            ));
        }
        let data = web::Data::new(state.clone());
        // `/openapi.json` shows the API and the web pages (issue 20).
        let full_doc = web::Data::new(crate::http::openapi::FullDocument(Arc::new(
            crate::web::openapi::merged(crate::http::openapi::document()),
        )));
        let ws_state = state.clone();
        // actix-web's HttpServer, built by hand so HTTP upgrade requests (websockets) can be
        // handed to the lean `/ws` path with their raw connection (src/http/ws.rs).
        let app = move || {
            App::new()
                .app_data(data.clone())
                .app_data(full_doc.clone())
                .wrap(from_fn(crate::http::body_deadline::enforce))
                .wrap(from_fn(crate::http::cors::apply))
                .wrap(from_fn(crate::http::middleware::observe))
                .wrap(
                    DefaultHeaders::new()
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("X-Frame-Options", "DENY"))
                        .add(("Referrer-Policy", "no-referrer"))
                        .add(("Cache-Control", "no-store")),
                )
                // Outermost: a request in flight when the worker stops is dropped in its runtime.
                .wrap(from_fn(crate::http::middleware::drop_in_runtime))
                // The API first: most requests are its (`http::routes` says why order counts).
                .configure(crate::http::routes)
                .configure(crate::web::routes)
        };
        let mut builder = actix_server::Server::build()
            .shutdown_timeout(5)
            .disable_signals();
        if let Some(workers) = settings.http_workers {
            builder = builder.workers(workers);
        }
        // Every connection is admitted (counted per IP and against the descriptor budget)
        // before actix-http sees it (src/http/admission.rs).
        let admission = Arc::new(crate::admission::Admission::new(settings));
        tracing::info!(
            max_connections = admission.max_connections(),
            "connection budget"
        );
        let server = builder
            .max_concurrent_connections(admission.max_connections())
            .listen("nashub", listener, move || {
                let ws_state = ws_state.clone();
                let upgrade = actix_service::fn_service(move |(req, framed)| {
                    crate::rt::InRuntime::new(crate::http::ws::upgrade(
                        ws_state.clone(),
                        req,
                        framed,
                    ))
                });
                let http = actix_http::HttpService::build()
                    .keep_alive(actix_http::KeepAlive::Timeout(Duration::from_secs(5)))
                    .client_request_timeout(Duration::from_secs(5))
                    .local_addr(addr)
                    .on_connect_ext(crate::admission::attach)
                    .upgrade(upgrade)
                    .finish(actix_service::map_config(
                        actix_service::IntoServiceFactory::into_factory(app()),
                        |_| actix_web::dev::AppConfig::default(),
                    ));
                let admission = admission.clone();
                actix_service::apply_fn_factory(http, move |io, http| {
                    crate::admission::serve(&admission, io, http)
                })
            })?
            .run();
        tracing::info!(%addr, database = state.store.backend_name(), redis = state.bus.is_redis(), "nashub ready");
        Ok(Self {
            addr,
            state,
            server,
        })
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until `stop` is called on a handle or the process gets SIGINT/SIGTERM; then tells
    /// websockets to reconnect (1001), drains requests and flushes the bus.
    pub async fn run(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let rooms = self.state.rooms.clone();
        crate::rt::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            rooms.close_all(CLOSE_GOING_AWAY);
            // Give sessions a moment to write their 1001 before the workers stop.
            let deadline = std::time::Instant::now() + SESSIONS_CLOSE_WAIT;
            while rooms.session_count() > 0 && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            handle.stop(true).await;
        });
        let result = self.server.await;
        self.state.rooms.close_all(CLOSE_GOING_AWAY);
        self.state.bus.shutdown().await;
        result
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Creates the super admin on first start. A generated password is printed once.
/// A hub that cannot open the provider credentials it stores would fail every transfer of
/// those clients: refuse to start, naming the key ids and the fix.
async fn refuse_unopenable_secrets(
    store: &Store,
    secrets: &crate::secrets::SecretBox,
) -> anyhow::Result<()> {
    let mut missing: Vec<String> = store
        .sealed_not_under(secrets.current_key_id())
        .await?
        .into_iter()
        .filter(|v| !secrets.knows(&v.key_id))
        .map(|v| v.key_id)
        .collect();
    missing.sort();
    missing.dedup();
    anyhow::ensure!(
        missing.is_empty(),
        "stored provider credentials are sealed with key id(s) {} that no configured key opens: \
         set NASHUB_SECRETS_KEY to the key they were sealed with, or list it in \
         NASHUB_SECRETS_PREVIOUS_KEYS (a lost key means storing those credentials again)",
        missing.join(", ")
    );
    Ok(())
}

async fn bootstrap_admin(store: &Store, config: &Config) -> anyhow::Result<()> {
    let settings = &config.settings;
    let username = names::username(&settings.admin_username)
        .map_err(|e| anyhow::anyhow!("NASHUB_ADMIN_USERNAME: {e}"))?;
    if store
        .user_by_login(PLATFORM_SCOPE, &username)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let (secret, generated) = match &settings.admin_password {
        Some(p) => {
            names::password(p).map_err(|e| anyhow::anyhow!("NASHUB_ADMIN_PASSWORD: {e}"))?;
            (p.clone(), false)
        }
        None => {
            let mut bytes = [0_u8; 15];
            rand::fill(&mut bytes);
            (
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
                true,
            )
        }
    };
    let admin = NewUser {
        role: Role::SuperAdmin,
        username: username.clone(),
        password: secret.clone(),
        client: None,
        parent: None,
    };
    match create_user(store, settings.password_hash_memory_kib, admin).await {
        // Another node created it at the same moment.
        Err(CreateUserError::Store(StoreError::Duplicate(_))) => return Ok(()),
        other => other?,
    };
    if generated {
        println!("nashub: created super admin '{username}' with password: {secret}");
        println!(
            "nashub: this password is shown once; set NASHUB_ADMIN_PASSWORD to choose it instead"
        );
    }
    Ok(())
}
