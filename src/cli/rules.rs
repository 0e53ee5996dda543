//! `tocsin rules`: check rule files the way the sensor loads them.

use std::path::PathBuf;
use std::process::ExitCode;

use tocsin_sensor::config::SensorConfig;
use tocsin_sensor::detect::rule;

/// Subcommands of `tocsin rules`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Parse rule files and report what loads and what does not.
    ///
    /// Prints `file:line: reason` for every rejected rule, then a summary with counts by
    /// reason. Variables ($HOME_NET, $HTTP_PORTS, ...) default to Suricata 7's defaults;
    /// `-c` reads them from a Tocsin config. Exits 0 when at least one rule loaded and no
    /// file was unreadable, 1 otherwise.
    Check(CheckArgs),
}

/// Arguments of `tocsin rules check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Rule files.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Print one JSON object: {"loaded":N,"rejected":M,"by_reason":{...},"rejections":[...]}.
    #[arg(long)]
    json: bool,
    /// Tocsin config file (for rule variables).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Only print the summary, not each rejection.
    #[arg(short, long)]
    quiet: bool,
}

/// Runs a rules subcommand.
pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Check(args) => check(&args),
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(p) => SensorConfig::load(p)?,
        None => SensorConfig::default(),
    };
    let vars = config.rule_vars()?;
    let report = rule::load_files(&args.files, &vars);
    let by_reason = report.by_reason();
    if args.json {
        let rejections: Vec<_> = report
            .rejected
            .iter()
            .map(|r| {
                serde_json::json!({
                    "file": r.file.display().to_string(),
                    "line": r.line,
                    "reason": r.error.to_string(),
                })
            })
            .collect();
        let out = serde_json::json!({
            "loaded": report.rules.len(),
            "rejected": report.rejected.len(),
            "by_reason": by_reason,
            "rejections": rejections,
        });
        println!("{out}");
    } else {
        if !args.quiet {
            for r in &report.rejected {
                println!("{r}");
            }
        }
        println!(
            "{} rules loaded, {} rejected",
            report.rules.len(),
            report.rejected.len()
        );
        let mut sorted: Vec<(&String, &usize)> = by_reason.iter().collect();
        sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (reason, n) in sorted {
            println!("  {n:>6}  {reason}");
        }
    }
    Ok(if report.rules.is_empty() || report.unreadable_files > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
