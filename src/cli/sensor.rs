//! `tocsin sensor`: inspect a pcap file (`-r`) or a live interface (`-i`) with rules and
//! write EVE alerts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tocsin_sensor::capture::live::LiveCapture;
use tocsin_sensor::config::parse_interval;
use tocsin_sensor::config::{ChecksumMode, SensorConfig};
use tocsin_sensor::detect::Engine;
use tocsin_sensor::detect::rule::{self, LoadReport};
use tocsin_sensor::output::eve::{AlertSink, EveFile, stats_record};
use tocsin_sensor::output::forward::Forwarder;
use tocsin_sensor::pipeline::{LiveOptions, RunOptions, run_live, run_pcap};

/// `tocsin sensor --help`: what the sensor does, live and offline, with examples.
pub const LONG_ABOUT: &str =
    "Inspect traffic with Suricata-syntax rules and write alerts as EVE JSON.

Reads a pcap/pcapng file (`-r`) or captures live from an interface (`-i`, needs root
or CAP_NET_RAW), loads rule files (`-S`, repeatable, or `rule_files` in the config),
and writes one JSON object per alert to `LOGDIR/eve.json` (appending). Prints a
one-line summary when done. Rules that fail to parse are reported as `file:line:
reason` and skipped; the run stops only if no rule loads at all.

Live capture runs until SIGINT or SIGTERM (a second signal exits at once), writes a
`stats` record every `[stats] interval` (default 30s) with packets, bytes, drops by
reason (kernel, interface, full worker queue, ...), flows, memory, alerts and per-worker
load, and a final one with a summary line on exit. Capture settings come from
`[capture]` in the config; the flags below override them.

Without `-c`, settings equal Suricata 7's defaults (HOME_NET, HTTP_PORTS, ...,
classification), so Suricata rulesets run unchanged. Checksums are not validated on
pcap files unless `-k all` is given; on live traffic they are unless `-k none`.

Examples:
  tocsin sensor -r capture.pcap -S rules/tocsin.rules -l /var/log/tocsin
  tocsin sensor -i eth1 --bpf 'not port 22' -S rules/tocsin.rules -l /var/log/tocsin";

/// Arguments of `tocsin sensor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pcap or pcapng file to read.
    #[arg(
        short = 'r',
        long = "pcap",
        value_name = "FILE",
        required_unless_present = "interface",
        conflicts_with = "interface"
    )]
    pcap: Option<PathBuf>,
    /// Network interface to capture from live (`capture.interface` in the config).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    interface: Option<String>,
    /// Live: bytes kept per frame (128..=262144; default 262144).
    #[arg(long, value_name = "BYTES", requires = "interface")]
    snaplen: Option<u32>,
    /// Live: kernel capture buffer, bytes or with a K/M/G suffix (default 64M).
    #[arg(long = "buffer-size", value_name = "SIZE", requires = "interface", value_parser = parse_size)]
    buffer_size: Option<u64>,
    /// Live: BPF filter (tcpdump syntax), e.g. 'not port 22'.
    #[arg(long = "bpf", value_name = "EXPR", requires = "interface")]
    bpf: Option<String>,
    /// Live: do not put the interface in promiscuous mode.
    #[arg(long = "no-promisc", requires = "interface")]
    no_promisc: bool,
    /// Live: period of `stats` records, e.g. 30s, 500ms, 5m; 0 turns them off.
    #[arg(long = "stats-interval", value_name = "PERIOD", value_parser = parse_interval)]
    stats_interval: Option<Duration>,
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

/// Parses `65536`, `64K`, `64M`, `1G` (binary multiples).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("'{text}' is not a size (examples: 262144, 64M, 1G)"))
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
    let mut report: LoadReport = rule::load_files(files, &vars);
    if report.unreadable_files == files.len() {
        let why: Vec<String> = report.rejected.iter().map(ToString::to_string).collect();
        bail!("no rule file could be read: {}", why.join("; "));
    }
    // Parsed rules are freed as they compile (lower peak RSS on big rulesets).
    let parsed = std::mem::take(&mut report.rules);
    let (engine, compile_rejects) = Engine::build_owned(parsed, &classes, cfg.detect.clone())
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
    if let Some(i) = &args.interface {
        cfg.capture.interface.clone_from(i);
    }
    if let Some(v) = args.snaplen {
        cfg.capture.snaplen = v;
    }
    if let Some(v) = args.buffer_size {
        cfg.capture.buffer_bytes = v;
    }
    if let Some(v) = &args.bpf {
        cfg.capture.bpf_filter.clone_from(v);
    }
    if args.no_promisc {
        cfg.capture.promiscuous = false;
    }
    if let Some(v) = args.stats_interval {
        cfg.stats.interval = v;
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
    if let Some(pcap) = &args.pcap
        && !pcap.exists()
    {
        bail!("{}: no such file", pcap.display());
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
        rules: (rules_loaded, rules_failed),
    };
    let workers = match args.runmode.as_str() {
        "single" => 1,
        _ => args
            .workers
            .or((cfg.workers > 0).then_some(cfg.workers))
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
    }
    .max(1);
    let (stats, elapsed, failure) = match &args.pcap {
        Some(pcap) => {
            let summary = run_pcap(
                &engine,
                &cfg,
                pcap,
                &mut sink,
                RunOptions {
                    checksums: false,
                    progress: !args.no_progress,
                    workers,
                },
            )
            .with_context(|| format!("reading {}", pcap.display()))?;
            if let Some(t) = &summary.truncated {
                tracing::warn!("{t}; alerts up to that point were written");
            }
            (summary.stats, summary.elapsed, None)
        }
        None => {
            let stop = stop_on_signals()?;
            let capture = LiveCapture::open(&cfg.capture)?;
            let iface = cfg.capture.interface.clone();
            eprintln!(
                "tocsin: capturing on {iface} with {workers} worker(s); SIGINT/SIGTERM stops"
            );
            let summary = run_live(
                &engine,
                &cfg,
                capture,
                &mut sink,
                LiveOptions {
                    workers,
                    queue_batches: cfg.queue_batches,
                    stats_interval: (!cfg.stats.interval.is_zero()).then_some(cfg.stats.interval),
                },
                &stop,
            )
            .with_context(|| format!("capturing on {iface}"))?;
            (summary.stats, summary.elapsed, summary.capture_error)
        }
    };
    // A final `stats` record: EVE file, and the correlator when forwarding.
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
    let record = stats_record(now, &stats, elapsed, &sensor);
    sink.write_stats(record.to_string().as_bytes())?;
    sink.file.flush()?;
    println!(
        "tocsin: {} -> {}",
        stats.summary(elapsed),
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
    if let Some(why) = failure {
        bail!("capture ended: {why} (everything captured before was inspected)");
    }
    Ok(ExitCode::SUCCESS)
}

/// A flag set by the first SIGINT or SIGTERM; a second one exits at once (status 130).
/// The handlers are installed before this returns, so a signal from then on stops the
/// capture cleanly instead of killing the process.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("starting the signal thread")?;
    let (mut term, mut int) = {
        let _guard = rt.enter();
        (
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        )
    };
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("tocsin-signals".into())
        .spawn(move || {
            rt.block_on(async move {
                loop {
                    let name = tokio::select! {
                        _ = term.recv() => "SIGTERM",
                        _ = int.recv() => "SIGINT",
                    };
                    if flag.swap(true, Ordering::SeqCst) {
                        eprintln!("tocsin: second {name}, exiting without draining");
                        std::process::exit(130);
                    }
                    eprintln!("tocsin: {name}, stopping (draining queues, ending flows)");
                }
            });
        })
        .context("starting the signal thread")?;
    Ok(stop)
}

/// Writes each alert to the EVE file and, when forwarding, to the durable spool.
struct TeeSink<'f> {
    file: EveFile,
    forwarder: Option<&'f Forwarder>,
    /// Rules loaded and rejected, added to every stats record.
    rules: (usize, usize),
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

    /// Stats records (periodic and final) get the rule counts, resident memory and the
    /// spool backlog, go to the EVE file, and when forwarding are posted to the correlator
    /// for the sensor operations dashboard (best effort: a lost record costs resolution).
    fn write_stats(&mut self, line: &[u8]) -> std::io::Result<()> {
        let mut record: serde_json::Value =
            serde_json::from_slice(line).map_err(std::io::Error::other)?;
        if let Some(st) = record.get_mut("stats").and_then(|v| v.as_object_mut()) {
            if let Some(detect) = st.get_mut("detect").and_then(|v| v.as_object_mut()) {
                detect.insert("rules_loaded".into(), self.rules.0.into());
                detect.insert("rules_failed".into(), self.rules.1.into());
            }
            // Live runs carry memory gauges already; offline runs get the process RSS.
            if !st.contains_key("memory") {
                let rss = tocsin_sensor::stats::MemoryGauges::process_rss();
                if rss > 0 {
                    st.insert("memory".into(), serde_json::json!({ "rss_bytes": rss }));
                }
            }
            if let Some(f) = self.forwarder {
                st.insert(
                    "forward".into(),
                    serde_json::json!({ "spool_bytes": f.stats().pending_bytes }),
                );
            }
        }
        let line = record.to_string();
        self.file.write_line(line.as_bytes())?;
        if let Some(f) = self.forwarder
            && let Err(e) = f.post_stats(line.as_bytes())
        {
            tracing::warn!(error = %e, "the correlator did not take a stats record");
        }
        Ok(())
    }
}
