//! The `nashub` binary: `serve` (default), `migrate`, `check-ledger`, `audit-verify`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nashub::config::Settings;

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
            Command::CheckLedger => {
                let store = nashub::startup::open_store(&config).await?;
                match nashub::ops::check_ledger(&store).await? {
                    Ok(()) => {
                        println!("ledger ok");
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(violation) => {
                        println!("ledger violation: {violation}");
                        Ok(ExitCode::from(1))
                    }
                }
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
