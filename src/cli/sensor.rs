//! `tocsin sensor`: inspect a pcap file with rules and write EVE alerts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tocsin_sensor::config::{ChecksumMode, SensorConfig};
use tocsin_sensor::detect::Engine;
use tocsin_sensor::detect::rule::{self, LoadReport};
use tocsin_sensor::output::eve::{AlertSink, EveFile, stats_record};
use tocsin_sensor::output::forward::Forwarder;
use tocsin_sensor::pipeline::{RunOptions, run_pcap};

/// Inspect traffic with Suricata-syntax rules and write alerts as EVE JSON.
///
/// Reads a pcap/pcapng file (`-r`), loads rule files (`-S`, repeatable, or `rule_files`
/// in the config), and writes one JSON object per alert to `LOGDIR/eve.json` (appending).
/// Prints a one-line summary when done. Rules that fail to parse are reported as
/// `file:line: reason` and skipped; the run stops only if no rule loads at all.
///
/// Without `-c`, settings equal Suricata 7's defaults (HOME_NET, HTTP_PORTS, ...,
/// classification), so Suricata rulesets run unchanged. Checksums are not validated on
/// pcap files unless `-k all` is given.
///
/// Example:
///   tocsin sensor -r capture.pcap -S rules/tocsin.rules -l /var/log/tocsin
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Pcap or pcapng file to read.
    #[arg(short = 'r', long = "pcap", value_name = "FILE", required = true)]
    pcap: PathBuf,
    /// Rule file; repeat for several. Defaults to `rule_files` from the config.
    #[arg(short = 'S', long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Directory for eve.json (created if missing).
    #[arg(short = 'l', long = "log-dir", value_name = "DIR", default_value = ".")]
    log_dir: PathBuf,
    /// Config file (tocsin.toml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Checksum validation: `all` drops packets with bad checksums, `none` never checks.
    #[arg(short = 'k', value_name = "all|none", value_parser = ["all", "none"])]
    checksums: Option<String>,
    /// Override a config value, e.g. `vars.address.HOME_NET=any`, `sensor.id=tap-3`,
    /// `sensor.agency=MIC.DEPT-3`, `vars.port.HTTP_PORTS=[80,8080]`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Worker threads (default: one per CPU core, or `workers` from the config).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// `single`: everything on one thread (Suricata's single runmode); `workers`: a
    /// reading thread feeding --workers detection threads (default).
    #[arg(long, value_name = "MODE", value_parser = ["single", "workers"], default_value = "workers")]
    runmode: String,
    /// Do not show progress, even on a terminal.
    #[arg(long)]
    no_progress: bool,
    /// Forwarding to a correlator.
    #[command(flatten)]
    forward: super::forward_args::ForwardArgs,
}

/// Applies one `--set KEY=VALUE`.
fn apply_set(cfg: &mut SensorConfig, kv: &str) -> anyhow::Result<()> {
    let (key, value) = kv
        .split_once('=')
        .with_context(|| format!("--set {kv}: expected KEY=VALUE"))?;
    let value = value.to_owned();
    match key.split('.').collect::<Vec<_>>().as_slice() {
        ["vars", "address" | "address-groups", name] => {
            cfg.vars.address.insert((*name).to_owned(), value);
        }
        ["vars", "port" | "port-groups", name] => {
            cfg.vars.port.insert((*name).to_owned(), value);
        }
        ["sensor", "id"] => cfg.sensor.id = value,
        ["sensor", "agency"] => cfg.sensor.agency = value,
        _ => bail!(
            "--set {kv}: unknown key '{key}' (known: vars.address.NAME, vars.port.NAME, sensor.id, sensor.agency)"
        ),
    }
    Ok(())
}

/// Loads rules and builds the engine, reporting rejections on stderr. Returns the engine and
/// the number of rejected rules (for the stats record).
pub fn load_engine(cfg: &SensorConfig, files: &[PathBuf]) -> anyhow::Result<(Engine, usize)> {
    let start = Instant::now();
    let vars = cfg.rule_vars()?;
    let classes = cfg.classifications()?;
    let report: LoadReport = rule::load_files(files, &vars);
    if report.unreadable_files == files.len() {
        let why: Vec<String> = report.rejected.iter().map(ToString::to_string).collect();
        bail!("no rule file could be read: {}", why.join("; "));
    }
    let (engine, compile_rejects) = Engine::build(&report.rules, &classes, cfg.detect.clone())
        .context("building the detection engine")?;
    let rejected: Vec<_> = report.rejected.iter().chain(&compile_rejects).collect();
    const SHOWN: usize = 20;
    for r in rejected.iter().take(SHOWN) {
        tracing::warn!("rule rejected: {r}");
    }
    if rejected.len() > SHOWN {
        tracing::warn!(
            "... and {} more rejected rules (run `tocsin rules check` to list them all)",
            rejected.len() - SHOWN
        );
    }
    let loaded = engine.stats().signatures;
    if loaded == 0 {
        bail!("no rule loaded ({} rejected)", rejected.len());
    }
    tracing::info!(
        loaded,
        rejected = rejected.len(),
        elapsed_ms = start.elapsed().as_millis() as u64,
        "rules loaded"
    );
    Ok((engine, rejected.len()))
}

/// Runs the sensor.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut cfg = match &args.config {
        Some(p) => SensorConfig::load(p)?,
        None => SensorConfig::default(),
    };
    for kv in &args.set {
        apply_set(&mut cfg, kv)?;
    }
    if let Some(k) = &args.checksums {
        cfg.checksums = if k == "all" {
            ChecksumMode::All
        } else {
            ChecksumMode::None
        };
    }
    cfg.validate()?;
    let files = if args.rules.is_empty() {
        cfg.rule_files.clone()
    } else {
        args.rules.clone()
    };
    if files.is_empty() {
        bail!("no rules: give -S FILE or set rule_files in the config");
    }
    if !args.pcap.exists() {
        bail!("{}: no such file", args.pcap.display());
    }
    let forward = args.forward.to_config(cfg.forward.clone())?;
    let (engine, rules_failed) = load_engine(&cfg, &files)?;
    let rules_loaded = engine.stats().signatures;
    std::fs::create_dir_all(&args.log_dir)
        .with_context(|| format!("creating log dir {}", args.log_dir.display()))?;
    let eve_path = args.log_dir.join("eve.json");
    let file =
        EveFile::create(&eve_path).with_context(|| format!("opening {}", eve_path.display()))?;
    let forwarder = match forward {
        Some(fc) => Some(
            Forwarder::start(fc.clone())
                .with_context(|| format!("starting the forwarder to {}", fc.url))?,
        ),
        None => None,
    };
    let mut sink = TeeSink {
        file,
        forwarder: forwarder.as_ref(),
    };
    let workers = match args.runmode.as_str() {
        "single" => 1,
        _ => args
            .workers
            .or((cfg.workers > 0).then_some(cfg.workers))
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
    };
    let summary = run_pcap(
        &engine,
        &cfg,
        &args.pcap,
        &mut sink,
        RunOptions {
            checksums: false,
            progress: !args.no_progress,
            workers: workers.max(1),
        },
    )
    .with_context(|| format!("reading {}", args.pcap.display()))?;
    if let Some(t) = &summary.truncated {
        tracing::warn!("{t}; alerts up to that point were written");
    }
    // A final `stats` record in the EVE file (not forwarded: the correlator takes alerts).
    let now = tocsin_sensor::Timestamp(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros()),
        )
        .unwrap_or(0),
    );
    let sensor = tocsin_eve::SensorInfo {
        id: cfg.sensor.id.clone(),
        agency: cfg.sensor.agency.clone(),
    };
    let mut record = stats_record(now, &summary.stats, summary.elapsed, &sensor);
    if let Some(st) = record.get_mut("stats").and_then(|v| v.as_object_mut()) {
        if let Some(detect) = st.get_mut("detect").and_then(|v| v.as_object_mut()) {
            detect.insert("rules_loaded".into(), rules_loaded.into());
            detect.insert("rules_failed".into(), rules_failed.into());
        }
        if let Some(rss) = rss_bytes() {
            st.insert("memory".into(), serde_json::json!({ "rss_bytes": rss }));
        }
        if let Some(f) = forwarder.as_ref() {
            st.insert(
                "forward".into(),
                serde_json::json!({ "spool_bytes": f.stats().pending_bytes }),
            );
        }
    }
    sink.file.write_line(record.to_string().as_bytes())?;
    sink.file.flush()?;
    // The correlator keeps the sensors' stats for the sensor operations dashboard.
    if let Some(f) = forwarder.as_ref()
        && let Err(e) = f.post_stats(record.to_string().as_bytes())
    {
        tracing::warn!(error = %e, "the correlator did not take the stats record");
    }
    println!(
        "tocsin: {} -> {}",
        summary.stats.summary(summary.elapsed),
        eve_path.display()
    );
    if let Some(f) = forwarder {
        let grace = Duration::from_secs(30);
        let st = f.shutdown(grace);
        println!(
            "tocsin: forwarded {} alerts ({} stored, {} duplicates, {} rejected, {} bytes still spooled)",
            st.submitted, st.accepted, st.duplicates, st.rejected, st.pending_bytes
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Resident memory of this process (Linux `VmRSS`), in bytes.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

/// Writes each alert to the EVE file and, when forwarding, to the durable spool.
struct TeeSink<'f> {
    file: EveFile,
    forwarder: Option<&'f Forwarder>,
}

impl AlertSink for TeeSink<'_> {
    fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.file.write_line(line)?;
        if let Some(f) = self.forwarder {
            f.submit(line).map_err(std::io::Error::other)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}
