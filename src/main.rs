//! The `nashub` binary: `serve` (default), `migrate`, `check-ledger`, `audit-verify`,
//! `sim <provider>`.

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

#[derive(Parser)]
#[command(
    name = "nashub",
    version,
    about = "Real-time game hub for white-label casino operators"
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
    Serve,
    /// Create the database if needed and apply migrations, then exit.
    Migrate,
    /// Verify the ledger; exits 1 and names the first violation if the books do not balance.
    CheckLedger,
    /// Verify the audit log's hash chain; exits 1 and names the first bad row if it was
    /// altered, or rows were removed or reordered.
    AuditVerify,
    /// Re-seal every stored secret under the current secrets key (after a rotation: the old
    /// key listed in NASHUB_SECRETS_PREVIOUS_KEYS). Exits 1 if some value no key opens.
    RotateSecrets,
    /// Run a provider simulator (`jdb` or `luckysports`) over HTTP.
    Sim {
        /// `jdb` or `luckysports`.
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Settings::load(cli.config.as_deref()).and_then(Settings::resolve) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nashub: {e:#}");
            return ExitCode::from(2);
        }
    };
    nashub::telemetry::init_logging(&config.settings.log_format);
    let result = actix_web::rt::System::new().block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                let hub = nashub::startup::Hub::build(config).await?;
                println!("nashub listening on http://{}", hub.addr);
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
                use nashub::providers::sim;
                let kind = sim::SimKind::parse(&provider).ok_or_else(|| {
                    anyhow::anyhow!("unknown provider {provider:?}: jdb or luckysports")
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
    result.unwrap_or_else(|e: anyhow::Error| {
        eprintln!("nashub: {e:#}");
        ExitCode::from(2)
    })
}
