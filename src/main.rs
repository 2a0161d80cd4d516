//! The command line: parse, set up logging, run the chosen command.

use clap::{Args, Parser, Subcommand};
use hostwatch::services::{Host, Services};
use hostwatch::{
    collect::Collector,
    config::{Scope, Settings},
    generate::{self, Shape},
    sampler,
    startup::Application,
    store::Store,
    telemetry, tokens,
};
use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

#[derive(Parser)]
#[command(
    version,
    about = "Watches a Linux host: sampler, SQLite history, REST API with Swagger UI"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML config file (default: ./hostwatch.toml when it exists); the
    /// client finds the agent and its token from it too.
    #[arg(long, env = "HOSTWATCH_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// The client: the agent's base URL (default: from the config's
    /// server.listen).
    #[arg(long, env = "HOSTWATCH_URL", global = true, hide_env_values = true)]
    url: Option<String>,
    /// The client: a file holding the token (HOSTWATCH_TOKEN also gives
    /// one; default: the generated token beside the database, if readable).
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
    /// The client: PEM certificates to trust for https (default: the
    /// config's server.tls_cert).
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// The client: print the API's answer as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Take one check, print it as JSON, exit.
    Check,
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
    /// Fill a database with N days of made-up, realistic checks (benchmarks).
    Generate(GenerateArgs),
    #[command(flatten)]
    Client(hostwatch::cli::ClientCommand),
    /// Print a shell's completions for hostwatch (bash, zsh, fish, …).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `hostwatch man | man -l -`.
    Man,
}

#[derive(Args)]
struct GenerateArgs {
    /// The database to fill; created when missing.
    #[arg(long)]
    db: PathBuf,
    /// How many days back from now the checks start.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    days: u32,
    /// Time between checks (10ms or more).
    #[arg(long, default_value = "60s", value_parser = interval)]
    interval: Duration,
    #[arg(long, default_value_t = 3)]
    mounts: usize,
    #[arg(long, default_value_t = 1)]
    services: usize,
    /// Top processes per check.
    #[arg(long, default_value_t = 5)]
    processes: usize,
    /// The same seed makes the same checks (at other times).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Add to a database that already holds checks.
    #[arg(long)]
    append: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli.config.clone();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => load(config).and_then(serve),
        Command::Check => load(config).and_then(check),
        Command::Client(cmd) => {
            let target = hostwatch::cli::Target {
                config,
                url: cli.url,
                token: std::env::var("HOSTWATCH_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty()),
                token_file: cli.token_file,
                ca: cli.ca,
            };
            return match hostwatch::cli::run(&cmd, &target, cli.json) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // The detail may quote what a status command wrote.
                    eprintln!("hostwatch: {}", hostwatch::cli::clean(&e.to_string()));
                    e.exit_code()
                }
            };
        }
        Command::Openapi => openapi(),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "hostwatch",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(Into::into)
        }
        Command::Token { scope, name } => token(scope, &name),
        Command::Generate(args) => generate(args),
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

/// `--interval`: a duration as the config writes it, one the sampler could
/// take checks at.
fn interval(s: &str) -> std::result::Result<Duration, String> {
    use hostwatch::{config::MIN_INTERVAL, domain::time};
    let d = time::parse_duration(s).map_err(|e| e.to_string())?;
    if d < MIN_INTERVAL {
        return Err(format!(
            "'{s}' is shorter than the sampler's shortest interval ({})",
            time::format_duration(MIN_INTERVAL)
        ));
    }
    Ok(d)
}

fn generate(a: GenerateArgs) -> Result {
    // Looked at before opening it for writing, which would migrate it.
    generate::may_fill(&a.db, a.append)?;
    let store = Store::open(&a.db)?;
    let shape = Shape {
        mounts: a.mounts,
        services: a.services,
        processes: a.processes,
    };
    let started = Instant::now();
    let mut shown = started;
    let written = generate::fill(&store, a.days, a.interval, shape, a.seed, |done, total| {
        if shown.elapsed() >= Duration::from_secs(1) {
            shown = Instant::now();
            eprintln!("{done} of {total} checks ({}%)", done * 100 / total.max(1));
        }
    })?;
    let seconds = started.elapsed().as_secs_f64();
    // Fold the WAL in, so the size is the file's own.
    store.checkpoint()?;
    println!(
        "wrote {written} checks in {seconds:.1} s ({:.0}/s); {} is {:.1} MiB",
        written as f64 / seconds.max(1e-9),
        a.db.display(),
        store.size_bytes() as f64 / (1u64 << 20) as f64
    );
    Ok(())
}
