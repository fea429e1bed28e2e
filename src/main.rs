//! The `nashub` binary: `serve` (default), `migrate`, `check-ledger`, `audit-verify`,
//! `backup`, `sim <provider>`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nashub::config::Settings;

// glibc malloc was a fifth of the hub's CPU under load (arena locks, consolidation); mimalloc's
// per-thread free lists suit many small short-lived allocations (JSON, SQL binds, frames).
// Built with `no_thp`: mimalloc otherwise asks for transparent huge pages on its arenas, and
// 19,000 idle websockets then held 211 MB instead of 136 MB (ARCHITECTURE.md, "Memory").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `nashub --version`: the release, the commit it was built from and the schema it migrates to.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BUILD_GIT_COMMIT"),
    ", schema ",
    env!("BUILD_SCHEMA_VERSION"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "nashub",
    version = VERSION,
    about = "Real-time game hub for white-label casino operators",
    after_help = "Examples:\n  nashub                      run the hub (SQLite in ./data, simulators on loopback)\n  nashub config               print the effective configuration and where each value came from\n  nashub check-ledger         verify the books (exit 1 on an imbalance)\n  nashub admin reset-password admin"
)]
struct Cli {
    /// TOML configuration file; NASHUB_* variables override it.
    #[arg(long, env = "NASHUB_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub (the default).
    /// Example: NASHUB_BIND=0.0.0.0:8080 NASHUB_DATABASE_URL=mysql://hub:pw@db/hub nashub serve
    Serve,
    /// Create the database if needed and apply migrations, then exit.
    /// Example: NASHUB_DATABASE_URL=mysql://hub:pw@db/hub nashub migrate
    Migrate,
    /// Verify the ledger; exits 1 and names the first violation if the books do not balance.
    /// Example: nashub check-ledger && echo books balance
    CheckLedger,
    /// Recompute every report rollup from the journal and the game rounds; exits 1 and names
    /// the first bucket that differs. Example: nashub check-reports && echo reports agree
    CheckReports,
    /// Verify the audit log's hash chain; exits 1 and names the first bad row if it was
    /// altered, or rows were removed or reordered.
    /// Example: nashub audit-verify
    AuditVerify,
    /// Run the hub with demo data: two demo brands, a four-level agent tree, players with
    /// money, and gentle play through the provider simulators. Refused on a database holding
    /// real clients. Example: NASHUB_DATA_DIR=./demo nashub demo
    Demo {
        /// Players per brand.
        #[arg(long, default_value_t = 150)]
        players: usize,
        /// Play actions per second.
        #[arg(long, default_value_t = 2.0)]
        rate: f64,
    },
    /// Print the effective configuration (secrets redacted) and where each value came from:
    /// default, file or variable. With --example: every setting, documented, with its default.
    /// Example: NASHUB_BIND=0.0.0.0:8080 nashub config
    Config {
        #[arg(long)]
        example: bool,
    },
    /// Copy the SQLite database to a new file while the hub runs (a consistent snapshot,
    /// checked and synced); restore by stopping every node and putting the copy in place.
    /// MySQL: use its own tools (deploy/RUNBOOK.md).
    /// Example: nashub backup /backups/nashub-$(date +%F).db
    Backup {
        /// Where to write the copy; must not exist.
        path: PathBuf,
    },
    /// Re-seal every stored secret under the current secrets key (after a rotation: the old
    /// key listed in NASHUB_SECRETS_PREVIOUS_KEYS). Exits 1 if some value no key opens.
    /// Example: NASHUB_SECRETS_KEY=<new> NASHUB_SECRETS_PREVIOUS_KEYS=<old> nashub rotate-secrets
    RotateSecrets,
    /// Print the GraphQL schema (SDL) served at /graphql; needs no configuration.
    /// Example: nashub graphql-schema > schema.graphql
    GraphqlSchema,
    /// The way back in: reset a password, create a super admin, lift a login lock. Runs on
    /// the hub's database (same configuration as `serve`); each action is audited.
    /// Example: nashub admin reset-password admin
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Run a provider simulator (`jdb` or `luckysports`), the payment gateway simulator (`pay`,
    /// Stripe) or the SMS gateway simulator (`sms`: Twilio's protocol, account `ACsimulator`,
    /// token `simulator-auth-token`) over HTTP.
    /// Example: nashub sim luckysports --bind 127.0.0.1:9002 --state ./ls.sqlite
    Sim {
        /// `jdb`, `luckysports`, `pay` or `sms`.
        provider: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9001")]
        bind: String,
        /// Fault rates and durations as JSON (see `providers::sim::Faults`), e.g.
        /// '{"drop_after_rate":0.1,"drop_ms":6000}'. Change later with POST /sim/faults.
        #[arg(long)]
        faults: Option<String>,
        /// SQLite file keeping the simulator's players, balances, transfers and rounds across
        /// restarts (created if missing); without it the state is in memory only.
        #[arg(long)]
        state: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// New password for a user (generated and printed once unless --password); every session
    /// of the user ends and its login lock is lifted.
    /// Example: nashub admin reset-password admin
    ResetPassword {
        username: String,
        /// The user's client code; omit for a platform user.
        #[arg(long)]
        client: Option<String>,
        /// Use this password instead of a generated one.
        #[arg(long, env = "NASHUB_NEW_PASSWORD")]
        password: Option<String>,
    },
    /// Create another super admin (platform user).
    /// Example: nashub admin create-super-admin ops2
    CreateSuperAdmin {
        username: String,
        #[arg(long, env = "NASHUB_NEW_PASSWORD")]
        password: Option<String>,
    },
    /// Clear a user's failed-login count (the 5-per-15-minutes throttle).
    /// Example: nashub admin unlock player1 --client acme
    Unlock {
        username: String,
        #[arg(long)]
        client: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::GraphqlSchema) = &cli.command {
        print!("{}", nashub::http::graphql::sdl());
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Config { example }) = &cli.command {
        if *example {
            print!("{}", nashub::config::example_toml());
            return ExitCode::SUCCESS;
        }
        return match Settings::load_with_sources(cli.config.as_deref()) {
            Ok((settings, sources)) => {
                print!("{}", settings.describe(&sources));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("nashub: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let config = match Settings::load(cli.config.as_deref()).and_then(Settings::resolve) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nashub: {e:#}");
            return ExitCode::from(2);
        }
    };
    // Traces are the serving hub's: one-shot commands export none.
    let serving = matches!(
        cli.command,
        None | Some(Command::Serve) | Some(Command::Demo { .. })
    );
    let traces = config
        .settings
        .otlp_endpoint
        .as_ref()
        .filter(|_| serving)
        .map(|endpoint| nashub::otel::export::OtlpOptions {
            endpoint: endpoint.clone(),
            service_name: config.settings.otlp_service_name.clone(),
            sample_ratio: config.settings.otlp_sample_ratio,
        });
    if let Err(e) = nashub::telemetry::init_logging(&config.settings.log_format, traces.as_ref()) {
        eprintln!("nashub: {e:#}");
        return ExitCode::from(2);
    }
    let result = actix_web::rt::System::new().block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                let hub = nashub::startup::Hub::build(config).await?;
                println!("nashub listening on http://{}", hub.addr);
                hub.run().await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Demo { players, rate } => {
                // The demo's own operator logs in with a password (audited exception).
                let mut config = config;
                let exempt = &mut config.settings.second_factor_exempt;
                if !exempt.is_empty() {
                    exempt.push(',');
                }
                exempt.push_str(nashub::ops::demo::OPERATOR);
                let store = nashub::startup::open_store(&config).await?;
                let password =
                    nashub::ops::demo::prepare(&store, config.settings.password_hash_memory_kib)
                        .await?;
                drop(store);
                let hub = nashub::startup::Hub::build(config).await?;
                let base = format!("http://{}", hub.addr);
                println!("nashub listening on {base}");
                println!(
                    "demo: log in as {} with password {password} (demo data only)",
                    nashub::ops::demo::OPERATOR
                );
                let sims = hub.state.providers.embedded_sims();
                nashub::rt::spawn(async move {
                    let options = nashub::ops::demo::DemoOptions { players, rate };
                    if let Err(e) = nashub::ops::demo::run(base, password, sims, options).await {
                        eprintln!("nashub demo: {e:#}");
                    }
                });
                hub.run().await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Migrate => {
                let store = nashub::startup::open_store(&config).await?;
                println!("nashub: {} database is migrated", store.backend_name());
                Ok(ExitCode::SUCCESS)
            }
            Command::Sim {
                provider,
                bind,
                faults,
                state,
            } => {
                if provider == "pay" {
                    // The Stripe simulator (issue 18): `--faults` takes `payments::sim::PayFaults`.
                    let faults = match f_or_none(&faults) {
                        Some(f) => {
                            serde_json::from_str(f).map_err(|e| anyhow::anyhow!("--faults: {e}"))?
                        }
                        None => nashub::payments::sim::PayFaults::default(),
                    };
                    nashub::payments::sim::run(&bind, faults, None).await?;
                    return Ok(ExitCode::SUCCESS);
                }
                use nashub::providers::sim;
                if provider == "sms" {
                    let mut config = nashub::channels::sim::SmsSimConfig {
                        bind,
                        ..Default::default()
                    };
                    if let Some(f) = faults {
                        config.faults = serde_json::from_str(&f)
                            .map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
                    }
                    nashub::channels::sim::run(config).await?;
                    return Ok(ExitCode::SUCCESS);
                }
                let kind = sim::SimKind::parse(&provider).ok_or_else(|| {
                    anyhow::anyhow!("unknown simulator {provider:?}: jdb, luckysports, pay or sms")
                })?;
                let mut config = sim::default_config(kind);
                config.bind = bind;
                config.state_path = state;
                if let Some(f) = faults {
                    config.faults =
                        serde_json::from_str(&f).map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
                }
                sim::run(kind, config).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::CheckLedger => {
                let store = nashub::startup::open_store(&config).await?;
                match nashub::ops::check_ledger(&store).await {
                    // A check that could not run is neither clean (0) nor an imbalance (1).
                    Err(e) => {
                        eprintln!("nashub: ledger check could not run: {e:#}");
                        Ok(ExitCode::from(nashub::ops::CHECK_COULD_NOT_RUN))
                    }
                    Ok(Ok(())) => {
                        println!("ledger ok");
                        Ok(ExitCode::SUCCESS)
                    }
                    Ok(Err(violation)) => {
                        println!("ledger violation: {violation}");
                        Ok(ExitCode::from(1))
                    }
                }
            }
            Command::CheckReports => {
                let store = nashub::startup::open_store(&config).await?;
                match store.report_rollup_violation().await {
                    Err(e) => {
                        eprintln!("nashub: report check could not run: {e:#}");
                        Ok(ExitCode::from(nashub::ops::CHECK_COULD_NOT_RUN))
                    }
                    Ok(None) => {
                        println!("reports ok");
                        Ok(ExitCode::SUCCESS)
                    }
                    Ok(Some(difference)) => {
                        println!("report rollup differs: {difference}");
                        Ok(ExitCode::from(1))
                    }
                }
            }
            Command::Admin(command) => {
                use nashub::ops::admin::{self, AdminError};
                let store = nashub::startup::open_store(&config).await?;
                let memory = config.settings.password_hash_memory_kib;
                let done = match command {
                    AdminCommand::ResetPassword {
                        username,
                        client,
                        password,
                    } => admin::reset_password(
                        &store,
                        memory,
                        client.as_deref(),
                        &username,
                        password.as_deref(),
                    )
                    .await
                    .map(|(user, secret, generated)| {
                        if generated {
                            println!("password of '{}' reset to: {secret}", user.username);
                        } else {
                            println!("password of '{}' reset", user.username);
                        }
                        println!("every session of the user has ended; its login lock is lifted");
                    }),
                    AdminCommand::CreateSuperAdmin { username, password } => {
                        admin::create_super_admin(&store, memory, &username, password.as_deref())
                            .await
                            .map(|(user, secret, generated)| {
                                if generated {
                                    println!(
                                        "super admin '{}' created with password: {secret}",
                                        user.username
                                    );
                                } else {
                                    println!("super admin '{}' created", user.username);
                                }
                            })
                    }
                    AdminCommand::Unlock { username, client } => {
                        admin::unlock(&store, client.as_deref(), &username)
                            .await
                            .map(|user| println!("login lock of '{}' lifted", user.username))
                    }
                };
                match done {
                    Ok(()) => Ok(ExitCode::SUCCESS),
                    Err(AdminError::Other(e)) => Err(e),
                    Err(e) => {
                        eprintln!("nashub admin: {e}");
                        Ok(ExitCode::from(1))
                    }
                }
            }
            Command::Backup { path } => {
                let report = nashub::ops::backup::sqlite_backup(&config.database_url, &path)?;
                println!(
                    "backup written to {}: {} bytes, {} journal entries",
                    report.path.display(),
                    report.bytes,
                    report.journal_entries
                );
                Ok(ExitCode::SUCCESS)
            }
            Command::Config { .. } | Command::GraphqlSchema => {
                unreachable!("handled before the configuration is resolved")
            }
            Command::RotateSecrets => {
                let store = nashub::startup::open_store(&config).await?;
                let report =
                    nashub::ops::rotate_secrets::rotate(&store, &config.secret_box()).await?;
                println!(
                    "secrets resealed under key {}: {} (changed meanwhile: {}, unopenable: {})",
                    nashub::secrets::key_id(&config.secrets_key),
                    report.resealed,
                    report.raced,
                    report.unopenable.len()
                );
                for (id, version, key) in &report.unopenable {
                    println!("  secret {id} version {version}: no configured key {key} opens it");
                }
                Ok(if report.unopenable.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
            Command::AuditVerify => {
                let store = nashub::startup::open_store(&config).await?;
                match nashub::audit::chain::verify(&store).await? {
                    Ok(rows) => {
                        println!("audit log ok: {rows} rows");
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(broken) => {
                        println!("audit log broken at {broken}");
                        Ok(ExitCode::from(1))
                    }
                }
            }
        }
    });
    // The spans of the last requests, still queued.
    nashub::otel::export::shutdown();
    result.unwrap_or_else(|e: anyhow::Error| {
        eprintln!("nashub: {e:#}");
        ExitCode::from(2)
    })
}

/// The `--faults` text, if given.
fn f_or_none(faults: &Option<String>) -> Option<&str> {
    faults.as_deref()
}
