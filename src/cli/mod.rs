//! Command-line interface: one module per subcommand, each with its `Args` and `run`.

mod agency;
mod clickhouse;
mod correlator;
mod demo;
mod forward_args;
mod rules;
mod sensor;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tocsin: network intrusion detection sensor and incident-response correlator.
///
/// A sensor reads packets (a pcap file or a live interface), runs Suricata-syntax rules and
/// writes alerts as EVE JSON, optionally forwarding them to a correlator. The correlator
/// groups alerts into incidents, stores them in ClickHouse and routes tickets to agencies.
#[derive(Debug, Parser)]
#[command(
    name = "tocsin",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Log filter, e.g. `info`, `debug`, `tocsin_sensor=debug` (default: `info`, or $RUST_LOG).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Write logs as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect a pcap file or a live interface with rules; write EVE alerts.
    #[command(long_about = sensor::LONG_ABOUT)]
    Sensor(Box<sensor::Args>),
    /// Run the correlator service (ingest, incidents, tickets, API).
    #[command(long_about = correlator::LONG_ABOUT, after_help = correlator::AFTER_HELP)]
    Correlator(correlator::Args),
    /// Work with rule files: check syntax and support.
    #[command(subcommand)]
    Rules(rules::Command),
    /// Load and list the agency directory (who owns which network, SLAs).
    #[command(subcommand)]
    Agency(agency::Command),
    /// Manage API tokens (sensor, analyst, responder, admin).
    #[command(subcommand)]
    Token(token::Command),
    /// Demo helpers (traffic generation); `./run demo` drives the whole demo.
    #[command(subcommand)]
    Demo(demo::Command),
    /// Run a private ClickHouse server (tests, benches, demo).
    #[command(subcommand)]
    Clickhouse(clickhouse::Command),
    /// Debug: submit EVE lines from a file through the durable forwarder.
    #[command(hide = true)]
    ForwardFile(forward_args::ForwardFileArgs),
}

/// Runs one subcommand to completion.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Sensor(args) => sensor::run(&args),
        Command::Correlator(args) => correlator::run(args),
        Command::Rules(cmd) => rules::run(cmd),
        Command::Agency(cmd) => agency::run(cmd),
        Command::Token(cmd) => token::run(cmd),
        Command::Demo(cmd) => demo::run(&cmd),
        Command::Clickhouse(cmd) => clickhouse::run(cmd),
        Command::ForwardFile(args) => forward_args::run_forward_file(args),
    }
}

/// Sets up `tracing` to stderr. `RUST_LOG` wins over `--log-level` when set.
pub fn init_logging(level: Option<&str>, json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| level.map(str::to_owned))
        .unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless: ignore the error.
    if json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}
