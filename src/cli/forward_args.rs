//! Forwarding flags shared by `tocsin sensor` (flattened into its arguments) and the hidden
//! `tocsin forward-file` debug subcommand, which submits EVE lines from a file through the
//! same durable forwarder (used by the fault tests until the sensor loop forwards itself).

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use tocsin_sensor::output::forward::{Compression, ForwardConfig, Forwarder, FsyncPolicy};

/// `--forward URL --token TOKEN --spool DIR ...`
#[derive(Debug, Clone, clap::Args)]
pub struct ForwardArgs {
    /// Forward alerts to this correlator (e.g. https://correlator:8443).
    #[arg(long = "forward", value_name = "URL")]
    pub forward: Option<String>,
    /// Sensor token for the correlator (or $TOCSIN_TOKEN).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TOCSIN_TOKEN",
        hide_env_values = true,
        requires = "forward"
    )]
    pub token: Option<String>,
    /// Spool directory: alerts stay here until the correlator has stored them.
    #[arg(long, value_name = "DIR", requires = "forward")]
    pub spool: Option<PathBuf>,
    /// CA certificate (PEM) to verify the correlator's HTTPS certificate.
    #[arg(long, value_name = "FILE", requires = "forward")]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for mTLS.
    #[arg(long, value_name = "FILE", requires_all = ["forward", "client_key"])]
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM) for mTLS.
    #[arg(long, value_name = "FILE", requires_all = ["forward", "client_cert"])]
    pub client_key: Option<PathBuf>,
    /// Spool fsync policy: always, never, or an interval such as 200ms.
    #[arg(long, value_name = "POLICY", value_parser = FsyncPolicy::parse, requires = "forward")]
    pub fsync: Option<FsyncPolicy>,
    /// Most alerts per request.
    #[arg(long, value_name = "N", requires = "forward")]
    pub batch_max_alerts: Option<usize>,
    /// Longest wait to fill a batch (e.g. 500ms).
    #[arg(long, value_name = "DURATION", value_parser = tocsin_sensor::output::forward::parse_duration, requires = "forward")]
    pub batch_max_delay: Option<Duration>,
    /// Spool size cap in MiB; the sensor waits (never drops) when it is full.
    #[arg(long, value_name = "MIB", requires = "forward")]
    pub spool_max_mib: Option<u64>,
    /// Body compression: none, gzip or zstd.
    #[arg(long, value_name = "ALGO", value_parser = parse_compression, requires = "forward")]
    pub compression: Option<Compression>,
}

fn parse_compression(s: &str) -> Result<Compression, String> {
    match s {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "zstd" => Ok(Compression::Zstd),
        _ => Err(format!("'{s}': use none, gzip or zstd")),
    }
}

impl ForwardArgs {
    /// The forwarder settings, `None` without `--forward`. `base` holds the TOML
    /// `[sensor.forward]` values (or defaults); flags override them.
    ///
    /// # Errors
    /// `--forward` without a token.
    pub fn to_config(&self, base: Option<ForwardConfig>) -> anyhow::Result<Option<ForwardConfig>> {
        let Some(url) = self
            .forward
            .clone()
            .or_else(|| base.as_ref().map(|b| b.url.clone()))
        else {
            return Ok(None);
        };
        let mut cfg = base.unwrap_or_default();
        cfg.url = url;
        if let Some(t) = &self.token {
            cfg.token.clone_from(t);
        }
        anyhow::ensure!(
            !cfg.token.is_empty(),
            "--forward needs --token (or $TOCSIN_TOKEN)"
        );
        if let Some(d) = &self.spool {
            cfg.spool_dir.clone_from(d);
        }
        if self.ca_cert.is_some() {
            cfg.ca_cert.clone_from(&self.ca_cert);
        }
        if self.client_cert.is_some() {
            cfg.client_cert.clone_from(&self.client_cert);
            cfg.client_key.clone_from(&self.client_key);
        }
        if let Some(f) = self.fsync {
            cfg.fsync = f;
        }
        if let Some(n) = self.batch_max_alerts {
            cfg.batch_max_alerts = n;
        }
        if let Some(d) = self.batch_max_delay {
            cfg.batch_max_delay = d;
        }
        if let Some(m) = self.spool_max_mib {
            cfg.spool_max_bytes = m.saturating_mul(1 << 20);
        }
        if let Some(c) = self.compression {
            cfg.compression = c;
        }
        Ok(Some(cfg))
    }
}

/// Arguments of the hidden `tocsin forward-file` debug subcommand.
#[derive(Debug, clap::Args)]
pub struct ForwardFileArgs {
    /// NDJSON file of EVE alerts (Tocsin or Suricata); omit with --drain-only.
    #[arg(value_name = "FILE", required_unless_present = "drain_only")]
    pub file: Option<PathBuf>,
    /// Submit nothing; only deliver what the spool still holds.
    #[arg(long)]
    pub drain_only: bool,
    /// Give up delivering after this long (what is left stays spooled).
    #[arg(long, value_name = "DURATION", default_value = "600s", value_parser = tocsin_sensor::output::forward::parse_duration)]
    pub grace: Duration,
    /// Forwarding settings.
    #[command(flatten)]
    pub forward: ForwardArgs,
}

/// Submits each line of FILE through the forwarder, then waits until everything is
/// delivered (or `--grace` passes). Prints `submitted=N` after submitting and a final
/// `stats ...` line on stdout. Exit status 0 when the spool is empty at the end, 3 otherwise.
///
/// # Errors
/// Bad arguments, unreadable file, spool errors.
#[expect(
    clippy::needless_pass_by_value,
    reason = "every subcommand's run() takes its Args"
)]
pub fn run_forward_file(args: ForwardFileArgs) -> anyhow::Result<ExitCode> {
    let cfg = args
        .forward
        .to_config(None)?
        .context("--forward URL is required")?;
    let fwd = Forwarder::start(cfg).context("starting the forwarder")?;
    let mut n = 0u64;
    if let Some(path) = &args.file {
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        for line in std::io::BufReader::new(f).split(b'\n') {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            fwd.submit(&line).context("spooling a line")?;
            n += 1;
        }
    }
    println!("submitted={n}");
    let deadline = std::time::Instant::now() + args.grace;
    while fwd.stats().pending_bytes > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = fwd.shutdown(Duration::from_secs(1));
    println!(
        "stats submitted={} accepted={} duplicates={} rejected={} batches={} retries={} recovered={} pending_bytes={}",
        st.submitted,
        st.accepted,
        st.duplicates,
        st.rejected,
        st.batches,
        st.retries,
        st.recovered,
        st.pending_bytes
    );
    Ok(if st.pending_bytes == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
