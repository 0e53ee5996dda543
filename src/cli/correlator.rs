//! `tocsin correlator`: run the correlator service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use tocsin_correlator::{Correlator, CorrelatorConfig};
use tokio_util::sync::CancellationToken;

/// Arguments of `tocsin correlator`.
/// Long help of `tocsin correlator` (set on the subcommand in `cli/mod.rs`).
pub const LONG_ABOUT: &str = "Run the correlator service.\n\n\
Sensors POST NDJSON batches of EVE alerts (Tocsin or plain Suricata records) to \
/api/v1/alerts with a sensor token (see `tocsin token create`). The correlator groups alerts \
into incidents, applies correlation rules, and answers a batch only once it is stored in \
ClickHouse. GET /api/v1/incidents lists incidents; GET /healthz answers 200 once the schema \
is ready; GET /metrics serves Prometheus text.\n\n\
Settings come from the TOML file given with -c (every field optional; see \
correlator/README.md); the flags below override it. The schema is created or migrated on \
start; while ClickHouse is unreachable the correlator keeps retrying and answers 503.\n\n\
Without TLS the correlator only listens on loopback addresses unless --allow-plain-http is \
given. Stop it with SIGINT or SIGTERM: it stops taking requests and stores what is queued.";

/// Example shown after the help of `tocsin correlator`.
pub const AFTER_HELP: &str = "Example:\n  tocsin correlator --listen 127.0.0.1:8080 \\\n    --clickhouse-url http://127.0.0.1:8123 --database tocsin -c correlator.toml";

/// Arguments of `tocsin correlator`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file (TOML).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides `listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// ClickHouse HTTP URL, e.g. http://127.0.0.1:8123 (overrides `clickhouse.url`).
    #[arg(long, value_name = "URL")]
    pub clickhouse_url: Option<String>,
    /// ClickHouse database (overrides `clickhouse.database`).
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,
    /// ClickHouse user (overrides `clickhouse.user`).
    #[arg(long, value_name = "USER")]
    pub clickhouse_user: Option<String>,
    /// File holding the ClickHouse password (overrides `clickhouse.password_file`).
    #[arg(long, value_name = "FILE")]
    pub clickhouse_password_file: Option<PathBuf>,
    /// Correlation rules file (overrides `correlation.rules_file`).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// TLS certificate chain, PEM (serve HTTPS; needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key, PEM.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA for client certificates (ask sensors for one: mTLS).
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address.
    #[arg(long)]
    pub allow_plain_http: bool,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// Builds the effective configuration: file, then flags.
///
/// # Errors
/// Unreadable or invalid file.
pub fn effective_config(args: &Args) -> anyhow::Result<CorrelatorConfig> {
    let mut cfg = match &args.config {
        Some(p) => CorrelatorConfig::from_file(p)?,
        None => CorrelatorConfig::default(),
    };
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if let Some(u) = &args.clickhouse_url {
        cfg.clickhouse.url.clone_from(u);
    }
    if let Some(d) = &args.database {
        cfg.clickhouse.database.clone_from(d);
    }
    if let Some(u) = &args.clickhouse_user {
        cfg.clickhouse.user.clone_from(u);
    }
    if let Some(p) = &args.clickhouse_password_file {
        cfg.clickhouse.password_file = Some(p.clone());
    }
    if let Some(r) = &args.rules {
        cfg.correlation.rules_file = Some(r.clone());
    }
    if args.tls_cert.is_some() {
        cfg.tls.cert.clone_from(&args.tls_cert);
        cfg.tls.key.clone_from(&args.tls_key);
    }
    if args.tls_client_ca.is_some() {
        cfg.tls.client_ca.clone_from(&args.tls_client_ca);
    }
    if args.allow_plain_http {
        cfg.allow_plain_http = true;
    }
    Ok(cfg)
}

/// Runs the correlator until SIGINT/SIGTERM.
///
/// # Errors
/// Bad configuration, bind failure, server failure.
#[expect(
    clippy::needless_pass_by_value,
    reason = "every subcommand's run() takes its Args"
)]
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = effective_config(&args)?;
    if args.print_config {
        print!(
            "{}",
            toml::to_string(&cfg).context("rendering the configuration")?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("correlator")
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let correlator = Correlator::bind(cfg).context("starting the correlator")?;
        let token = CancellationToken::new();
        let t2 = token.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested");
            t2.cancel();
        });
        correlator.run(token).await.context("correlator failed")?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
