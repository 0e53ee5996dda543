//! `tocsin agency`: load the agency directory into ClickHouse, list it.
//!
//! `load FILE` validates the whole file first (every problem is printed with its line and
//! nothing is written), then stores it as a new version (agencies missing from the file are
//! marked deleted) and prints the number of agencies alone on stdout; a summary goes to
//! stderr. Running correlators pick the new version up within `tickets.directory_refresh`.
//! `list` prints one agency per line in tree order (root first):
//! `CODE<TAB>LEVEL<TAB>PARENT<TAB>NAME<TAB>PREFIXES` (prefixes comma-separated, `-` for none).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use tocsin_correlator::agency::parse_directory;
use tocsin_correlator::audit::{self, AuditEntry};
use tocsin_correlator::config::ClickHouseConfig;
use tocsin_correlator::store::{ClickHouse, agencies, schema};

/// Subcommands of `tocsin agency`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Validate a directory file and store it; prints the number of agencies.
    #[command(
        long_about = "Validate a directory file (TOML; format in rules/agencies/README.md) and \
store it in ClickHouse as a new version. Every problem is reported with its line and nothing is \
written when there is one. Agencies stored before but absent from the file are marked deleted. \
Prints the number of agencies alone on stdout.",
        after_help = "Example:\n  tocsin agency load rules/agencies/national.toml \\\n    --clickhouse-url http://127.0.0.1:8123 --database tocsin"
    )]
    Load(LoadArgs),
    /// Print the stored directory, one agency per line, root first.
    #[command(
        long_about = "Print the stored directory in tree order (the root first, then each \
subtree depth-first, children by code), one agency per line: \
CODE<TAB>LEVEL<TAB>PARENT<TAB>NAME<TAB>PREFIXES."
    )]
    List(StoreArgs),
}

/// Where the directory is stored.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// ClickHouse HTTP URL.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8123")]
    pub clickhouse_url: String,
    /// ClickHouse database.
    #[arg(long, value_name = "NAME", default_value = "tocsin")]
    pub database: String,
    /// ClickHouse user.
    #[arg(long, value_name = "USER", default_value = "default")]
    pub clickhouse_user: String,
    /// File holding the ClickHouse password.
    #[arg(long, value_name = "FILE")]
    pub clickhouse_password_file: Option<PathBuf>,
}

/// Arguments of `tocsin agency load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The directory file (TOML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Validate only; store nothing.
    #[arg(long)]
    pub check: bool,
    /// Where to store it.
    #[command(flatten)]
    pub store: StoreArgs,
}

fn connect(a: &StoreArgs) -> anyhow::Result<ClickHouse> {
    let cfg = ClickHouseConfig {
        url: a.clickhouse_url.clone(),
        database: a.database.clone(),
        user: a.clickhouse_user.clone(),
        password_file: a.clickhouse_password_file.clone(),
        ..ClickHouseConfig::default()
    };
    ClickHouse::new(&cfg).context("ClickHouse settings")
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs an agency subcommand.
///
/// # Errors
/// An invalid file (every problem listed), or ClickHouse failures.
pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Load(a) => load(&a),
        Command::List(a) => list(&a),
    }
}

fn load(a: &LoadArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let base = a
        .file
        .parent()
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let name = a.file.display().to_string();
    let parsed = match parse_directory(&name, &text, &base) {
        Ok(list) => list,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let count = parsed.len();
    if a.check {
        eprintln!("{name}: {count} agencies, valid");
        println!("{count}");
        return Ok(ExitCode::SUCCESS);
    }
    let ch = connect(&a.store)?;
    let summary = runtime()?.block_on(async {
        schema::migrate(&ch).await.context("creating the schema")?;
        let now = tocsin_correlator::tickets::now_us();
        let s = agencies::save(&ch, parsed, now)
            .await
            .context("storing the directory")?;
        let entry = AuditEntry {
            actor: "cli".into(),
            actor_role: "admin".into(),
            object_type: "agency_directory".into(),
            object_id: name.chars().take(200).collect(),
            after: serde_json::json!({
                "version": s.version, "agencies": s.total, "added": s.added,
                "changed": s.changed, "removed": s.removed,
            })
            .to_string(),
            ..AuditEntry::new(now, "agency.directory_loaded", "ok")
        };
        if let Err(e) = audit::write(&ch, &[entry]).await {
            tracing::warn!(error = %e, "audit entry for the directory load not written");
        }
        anyhow::Ok(s)
    })?;
    eprintln!(
        "{name}: {} agencies stored as version {} ({} added, {} changed, {} removed)",
        summary.total, summary.version, summary.added, summary.changed, summary.removed
    );
    println!("{count}");
    Ok(ExitCode::SUCCESS)
}

fn list(a: &StoreArgs) -> anyhow::Result<ExitCode> {
    let ch = connect(a)?;
    let dir = runtime()?.block_on(async {
        agencies::load(&ch)
            .await
            .context("reading the directory (was `tocsin agency load` run?)")
    })?;
    if dir.is_empty() {
        eprintln!("no agency directory stored in {}", a.database);
        return Ok(ExitCode::from(1));
    }
    let mut out = String::new();
    for ag in dir.preorder() {
        let prefixes: Vec<String> = ag.prefixes.iter().map(ToString::to_string).collect();
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            ag.code,
            ag.level,
            ag.parent.as_deref().unwrap_or("-"),
            ag.name,
            if prefixes.is_empty() {
                "-".to_owned()
            } else {
                prefixes.join(",")
            }
        ));
    }
    // A reader that stops early (`| head -1`) is not an error.
    match std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
