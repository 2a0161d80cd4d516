//! Structured logs to stderr, filtered by `RUST_LOG` (default `info`).
//! `Targets` reads the usual `info,hostwatch=debug` directives without
//! pulling a regex engine into an agent that counts its resident bytes.

use std::io::IsTerminal;
use tracing_subscriber::{filter::Targets, fmt, prelude::*};

pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let layer = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init();
}
