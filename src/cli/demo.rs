//! `tocsin demo`: helpers for the end-to-end demo (`./run demo`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tocsin_traffic::{PcapWriter, Scenario, ScenarioConfig};

/// Subcommands of `tocsin demo`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write the demo scenario's pcaps (one per sensor site) into a directory.
    ///
    /// Two agency networks with background web/DNS traffic and five attacks: a port scan,
    /// SSH and web-login brute force, exploit attempts, DNS tunnelling, and a TLS
    /// connection to a known-bad server name. `rules/tocsin.rules` detects them. The output
    /// is deterministic for a given --seed and --start.
    GenTraffic(GenArgs),
}

/// Arguments of `tocsin demo gen-traffic`.
#[derive(Debug, clap::Args)]
pub struct GenArgs {
    /// Output directory (created if missing); writes ministry.pcap and province.pcap.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Time of the first packet: `now`, or seconds since the Unix epoch.
    #[arg(long, default_value = "now")]
    start: String,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Background web sessions per site.
    #[arg(long, default_value_t = 40)]
    benign_sessions: usize,
}

/// Runs a demo subcommand.
pub fn run(cmd: &Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::GenTraffic(args) => gen_traffic(args),
    }
}

fn gen_traffic(args: &GenArgs) -> anyhow::Result<ExitCode> {
    let start_secs: i64 = if args.start == "now" {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("system clock before 1970")?;
        // Start ten minutes ago so the traffic ends around now.
        i64::try_from(now.as_secs()).context("clock overflow")? - 600
    } else {
        args.start
            .parse()
            .with_context(|| format!("--start {}: expected 'now' or epoch seconds", args.start))?
    };
    let scenario = Scenario::generate(ScenarioConfig {
        start_micros: start_secs * 1_000_000,
        seed: args.seed,
        benign_sessions: args.benign_sessions,
    });
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    for site in &scenario.sites {
        let path = args.out.join(format!("{}.pcap", site.name));
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = PcapWriter::new(std::io::BufWriter::new(file))?;
        for f in &site.frames {
            w.write(f)?;
        }
        let (frames, bytes) = (w.frames, w.bytes);
        w.finish()?;
        println!("{}: {frames} packets, {bytes} bytes", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
