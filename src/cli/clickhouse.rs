//! `tocsin clickhouse serve`: run a private ClickHouse server (tests, benches, the demo).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use tocsin_correlator::store::local::{DEFAULT_SERVER_BIN, LocalClickHouse, LocalOptions};

/// Subcommands of `tocsin clickhouse`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run a private clickhouse-server in the foreground until SIGINT/SIGTERM.
    #[command(
        long_about = "Run a private clickhouse-server in the foreground.\n\n\
Writes config.xml and users.xml into DIR (user `default`, no password, loopback only), \
starts /usr/sbin/clickhouse-server on free (or the given) ports, waits until it answers, \
then prints `CLICKHOUSE_URL=http://127.0.0.1:PORT` and `CLICKHOUSE_TCP_PORT=PORT` on \
stdout, one per line. Data stays in DIR/data across runs. SIGINT or SIGTERM stops the \
server (SIGTERM to it, SIGKILL after 10 s); so does the server dying on its own, with \
exit status 1. Not for production: point Tocsin at your own server instead.",
        after_help = "Example:\n  tocsin clickhouse serve --dir .demo/clickhouse --http-port 18123 &"
    )]
    Serve(ServeArgs),
}

/// Arguments of `tocsin clickhouse serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Directory for config, data and logs (created if missing).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// HTTP port (default: a free one).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub http_port: u16,
    /// Native TCP port (default: a free one).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub tcp_port: u16,
    /// The server binary.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SERVER_BIN)]
    pub server_bin: PathBuf,
    /// Write the clickhouse-server process ID here once it is ready.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
}

/// Runs a clickhouse subcommand.
///
/// # Errors
/// Start failure.
pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Serve(a) = cmd;
    let opts = LocalOptions {
        server_bin: a.server_bin,
        http_port: a.http_port,
        tcp_port: a.tcp_port,
        ..LocalOptions::default()
    };
    let mut server =
        LocalClickHouse::start_in(&a.dir, opts).context("starting clickhouse-server")?;
    if let (Some(f), Some(pid)) = (&a.pid_file, server.pid()) {
        std::fs::write(f, format!("{pid}\n"))
            .with_context(|| format!("writing {}", f.display()))?;
    }
    println!("CLICKHOUSE_URL={}", server.url());
    println!("CLICKHOUSE_TCP_PORT={}", server.tcp_port());
    tracing::info!(url = %server.url(), dir = %server.dir().display(), "clickhouse-server ready");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let died = rt.block_on(async {
        let mut poll = tokio::time::interval(std::time::Duration::from_secs(1));
        let mut misses = 0u32;
        loop {
            tokio::select! {
                () = super::correlator::shutdown_signal() => return false,
                _ = poll.tick() => {
                    // Three missed pings in a row (a busy server may miss one).
                    misses = if server.ping() { 0 } else { misses + 1 };
                    if misses >= 3 {
                        return true;
                    }
                }
            }
        }
    });
    server.stop();
    if died {
        anyhow::bail!(
            "clickhouse-server stopped answering; see {}/log/error.log",
            a.dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
