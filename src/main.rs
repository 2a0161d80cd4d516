//! The command line: parse, set up logging, run the chosen command.

use clap::{Parser, Subcommand};
use hostwatch::services::{Host, Services};
use hostwatch::{
    collect::Collector,
    config::{Scope, Settings},
    sampler,
    startup::Application,
    telemetry, tokens,
};
use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, Mutex},
};

#[derive(Parser)]
#[command(
    version,
    about = "Watches a Linux host: sampler, SQLite history, REST API with Swagger UI"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve {
        /// TOML config file (default: ./hostwatch.toml when it exists).
        #[arg(long, env = "HOSTWATCH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Take one check, print it as JSON, exit.
    Check {
        #[arg(long, env = "HOSTWATCH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Make a new API token; print it and the config lines that grant it.
    Token {
        #[arg(long, value_enum, default_value = "control")]
        scope: Scope,
        /// The name the audit trail shows for this token.
        #[arg(long, default_value = "ops")]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::Serve { config } => load(config).and_then(serve),
        Command::Check { config } => load(config).and_then(check),
        Command::Openapi => openapi(),
        Command::Token { scope, name } => token(scope, &name),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hostwatch: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result = std::result::Result<(), Box<dyn std::error::Error>>;

fn load(config: Option<PathBuf>) -> std::result::Result<Settings, Box<dyn std::error::Error>> {
    Ok(Settings::load(config.as_deref(), std::env::vars())?)
}

fn serve(settings: Settings) -> Result {
    hostwatch::memory::limit_arenas();
    telemetry::init();
    hostwatch::startup::raise_open_files();
    // One thread for the sampler and housekeeping; HTTP workers have their own.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result: Result = rt.block_on(async {
        let app = Application::build(settings).await?;
        let stop = app.stop_handle();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received, stopping");
            stop.stop().await;
        });
        app.run_until_stopped().await?;
        Ok(())
    });
    // Dropping the runtime would wait for every blocking task, however
    // stuck (a stat on a dead mount): give them a second, then exit.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn check(settings: Settings) -> Result {
    let collector = Collector::new(settings.sampler.top_processes)?;
    // CPU use is a difference between two readings: give the first one time.
    std::thread::sleep(collector.ready_in());
    let services = Services::new(settings.services, Host::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (check, errors) = rt.block_on(sampler::read_check(
        Arc::new(Mutex::new(collector)),
        &services,
        None,
    ))?;
    if !errors.is_empty() {
        eprintln!("hostwatch: parts not read: {errors}");
    }
    println!("{}", serde_json::to_string_pretty(&check)?);
    Ok(())
}

fn openapi() -> Result {
    println!("{}", hostwatch::api::openapi().to_pretty_json()?);
    Ok(())
}

fn token(scope: Scope, name: &str) -> Result {
    let t = tokens::generate()?;
    println!(
        "token: {t}\n\n# add to hostwatch.toml (only the hash is kept there):\n{}",
        tokens::config_entry(name, scope, &t)
    );
    Ok(())
}
