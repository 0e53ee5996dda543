//! `tocsin token`: create API tokens (stored hashed in ClickHouse).

use std::process::ExitCode;

use anyhow::Context as _;
use tocsin_correlator::auth::{Role, create_token, validate_agency};
use tocsin_correlator::config::ClickHouseConfig;
use tocsin_correlator::store::{ClickHouse, schema};

/// Subcommands of `tocsin token`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a token and print it (alone) on stdout; only its SHA-256 is stored.
    #[command(
        long_about = "Create a token and print it alone on stdout.\n\n\
The token is shown once: ClickHouse keeps only its SHA-256 (table `tokens`). A sensor token \
may post alerts, which are tagged with the token's agency; analyst tokens read incidents, \
tickets and agencies; responder tokens also act on tickets; admin tokens also read the audit \
log. Every role is scoped to the token's agency and everything below it (the root's tokens see \
all). When a directory is loaded, the agency must be in it. The schema is created first if \
missing; the creation is recorded in the audit log.",
        after_help = "Example:\n  TOKEN=$(tocsin token create --role sensor --agency MOH --name edge-1 \\\n    --clickhouse-url http://127.0.0.1:8123 --database tocsin)"
    )]
    Create(CreateArgs),
}

/// Arguments of `tocsin token create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Role: sensor, analyst, responder or admin.
    #[arg(long, value_name = "ROLE")]
    pub role: Role,
    /// Agency code the token is bound to.
    #[arg(long, value_name = "CODE")]
    pub agency: String,
    /// Name (for a sensor: the sensor's name).
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Expire after this long (e.g. 90d); default never.
    #[arg(long, value_name = "DURATION", value_parser = parse_dur)]
    pub expires_in: Option<std::time::Duration>,
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
    pub clickhouse_password_file: Option<std::path::PathBuf>,
}

fn parse_dur(s: &str) -> Result<std::time::Duration, String> {
    tocsin_correlator::config::parse_duration(s)
}

/// Runs a token subcommand.
///
/// # Errors
/// Bad arguments or ClickHouse failures.
pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Create(a) = cmd;
    validate_agency(&a.agency).map_err(anyhow::Error::msg)?;
    let cfg = ClickHouseConfig {
        url: a.clickhouse_url.clone(),
        database: a.database.clone(),
        user: a.clickhouse_user.clone(),
        password_file: a.clickhouse_password_file.clone(),
        ..ClickHouseConfig::default()
    };
    let ch = ClickHouse::new(&cfg).context("ClickHouse settings")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let token = rt.block_on(async {
        schema::migrate(&ch).await.context("creating the schema")?;
        let expires = a.expires_in.map(|d| {
            time::OffsetDateTime::now_utc().unix_timestamp()
                + i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
        });
        let dir = tocsin_correlator::store::agencies::load(&ch)
            .await
            .context("reading the agency directory")?;
        if !dir.is_empty() && dir.get(&a.agency).is_none() {
            anyhow::bail!(
                "agency '{}' is not in the loaded directory (see `tocsin agency list`)",
                a.agency
            );
        }
        let token = create_token(&ch, a.role, &a.agency, &a.name, expires)
            .await
            .context("storing the token")?;
        let now = tocsin_correlator::tickets::now_us();
        let entry = tocsin_correlator::audit::AuditEntry {
            actor: "cli".into(),
            actor_role: "admin".into(),
            agency: a.agency.clone(),
            object_type: "token".into(),
            object_id: a.name.clone(),
            after: serde_json::json!({"role": a.role.as_str(), "agency": a.agency, "name": a.name,
                                       "expires_at": expires})
            .to_string(),
            ..tocsin_correlator::audit::AuditEntry::new(now, "token.created", "ok")
        };
        if let Err(e) = tocsin_correlator::audit::write(&ch, &[entry]).await {
            tracing::warn!(error = %e, "audit entry for the new token not written");
        }
        anyhow::Ok(token)
    })?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
