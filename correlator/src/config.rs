//! Correlator configuration: one TOML file (`correlator.toml`), every field optional with a
//! default in code, unknown fields rejected. [`CorrelatorConfig::validate`] checks it once at
//! startup; nothing deeper down reads files or environment variables.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! allow_plain_http = false          # serve plain HTTP on a non-loopback address
//!
//! [clickhouse]
//! url = "http://127.0.0.1:8123"
//! database = "tocsin"
//! user = "default"
//! password = ""
//!
//! [tls]                             # HTTPS when both are set
//! cert = "/etc/tocsin/correlator.crt"
//! key = "/etc/tocsin/correlator.key"
//! client_ca = "/etc/tocsin/sensors-ca.crt"   # ask sensors for client certificates
//!
//! [ingest]
//! max_body_bytes = 33554432
//!
//! [dedup]
//! window = "10m"
//! key = ["signature_id", "src_ip", "dest_ip"]
//!
//! [correlation]
//! rules_file = "/etc/tocsin/correlation.toml"
//!
//! [retention]
//! alerts_days = 90
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dedup::KeyField;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown/mistyped fields.
    #[error("parsing {path}: {message}")]
    Parse {
        /// The file (or `<inline>`).
        path: PathBuf,
        /// The TOML parser's message, with line and column.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole correlator configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorrelatorConfig {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// Allow plain HTTP on a non-loopback address (alerts and tokens then cross the network
    /// in clear text). Off by default: without TLS the correlator refuses such an address.
    pub allow_plain_http: bool,
    /// Where the ClickHouse server is.
    pub clickhouse: ClickHouseConfig,
    /// HTTPS settings.
    pub tls: TlsConfig,
    /// Limits and batching of `POST /api/v1/alerts`.
    pub ingest: IngestConfig,
    /// How alerts are grouped into incidents.
    pub dedup: DedupConfig,
    /// Correlation rules.
    pub correlation: CorrelationConfig,
    /// How long data is kept.
    pub retention: RetentionConfig,
    /// Tickets: polling, escalation, the worker lease.
    pub tickets: TicketsConfig,
    /// Webhook delivery.
    pub webhooks: WebhookConfig,
    /// Which address of an alert decides the owning agency.
    pub ownership: OwnershipConfig,
    /// How long shutdown waits for in-flight batches.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
}

impl Default for CorrelatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allow_plain_http: false,
            clickhouse: ClickHouseConfig::default(),
            tls: TlsConfig::default(),
            ingest: IngestConfig::default(),
            dedup: DedupConfig::default(),
            correlation: CorrelationConfig::default(),
            retention: RetentionConfig::default(),
            tickets: TicketsConfig::default(),
            webhooks: WebhookConfig::default(),
            ownership: OwnershipConfig::default(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Connection to ClickHouse over its HTTP interface.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// Base URL of the HTTP interface: `http://host:8123` or `https://host:8443`.
    pub url: String,
    /// Database holding Tocsin's tables; created when missing.
    pub database: String,
    /// User name (HTTP basic auth).
    pub user: String,
    /// Password (HTTP basic auth). Prefer `password_file` outside tests.
    pub password: String,
    /// File whose first line is the password; wins over `password`.
    pub password_file: Option<PathBuf>,
    /// Extra CA certificate (PEM) to trust for an `https` URL.
    pub ca_cert: Option<PathBuf>,
    /// Per-request timeout.
    #[serde(with = "duration")]
    pub timeout: Duration,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".to_owned(),
            database: "tocsin".to_owned(),
            user: "default".to_owned(),
            password: String::new(),
            password_file: None,
            ca_cert: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// HTTPS for the API.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Certificate chain (PEM). HTTPS is served when both `cert` and `key` are set.
    pub cert: Option<PathBuf>,
    /// Private key (PEM, PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// CA (PEM) for client certificates: when set, the server asks clients for a certificate
    /// and verifies any it gets against this CA.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: reject clients that present no certificate.
    pub require_client_cert: bool,
}

/// Limits and batching of the ingest endpoint.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Largest request body as sent (compressed or not), in bytes → `413` above.
    pub max_body_bytes: usize,
    /// Largest body after decompression, in bytes → `413` above (bounds zip bombs).
    pub max_decoded_bytes: usize,
    /// Longest NDJSON line, in bytes; longer lines are rejected one by one.
    pub max_line_bytes: usize,
    /// Most lines in one request → `413` above.
    pub max_lines: usize,
    /// Alerts stamped further in the future than this (against the correlator's clock) are
    /// rejected as clock-skewed.
    #[serde(with = "duration")]
    pub max_future_skew: Duration,
    /// The writer stores at most this many alerts per ClickHouse insert.
    pub batch_max_alerts: usize,
    /// The writer waits at most this long to fill a batch.
    #[serde(with = "duration")]
    pub batch_max_delay: Duration,
    /// Alerts waiting for the writer, across requests; beyond this new requests get `429`.
    pub queue_max_alerts: usize,
    /// A request waits at most this long for its alerts to be stored, then gets `503`.
    #[serde(with = "duration")]
    pub ack_timeout: Duration,
    /// Requests served at once (tower concurrency limit); more are shed with `503`.
    pub max_concurrent_requests: usize,
    /// Seconds put in `Retry-After` on `503` (ClickHouse down).
    pub retry_after_unavailable_secs: u32,
    /// Seconds put in `Retry-After` on `429` (writer behind).
    pub retry_after_busy_secs: u32,
    /// Alert IDs remembered in memory to answer duplicates without asking ClickHouse.
    pub recent_ids: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 << 20,
            max_decoded_bytes: 64 << 20,
            max_line_bytes: 64 << 10,
            max_lines: 100_000,
            max_future_skew: Duration::from_secs(300),
            batch_max_alerts: 50_000,
            batch_max_delay: Duration::from_millis(100),
            queue_max_alerts: 400_000,
            ack_timeout: Duration::from_secs(30),
            max_concurrent_requests: 256,
            retry_after_unavailable_secs: 2,
            retry_after_busy_secs: 1,
            recent_ids: 1_000_000,
        }
    }
}

/// Default dedup key and per-category overrides.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// An incident stays open while alerts keep arriving within this window (event time).
    #[serde(with = "duration")]
    pub window: Duration,
    /// An incident never spans more than this (event time); a later alert opens a new one.
    #[serde(with = "duration")]
    pub max_lifetime: Duration,
    /// Fields of the dedup key; the agency is always part of it.
    pub key: Vec<KeyField>,
    /// Cap on each incident's address, sensor and signature sets.
    pub max_set: usize,
    /// Cap on incidents held open in memory; the least recently updated is closed first.
    pub max_open_incidents: usize,
    /// Per-signature or per-category keys, first match wins.
    #[serde(rename = "override")]
    pub overrides: Vec<DedupOverride>,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(86_400),
            key: vec![KeyField::SignatureId, KeyField::SrcIp, KeyField::DestIp],
            max_set: 100,
            max_open_incidents: 500_000,
            overrides: Vec::new(),
        }
    }
}

/// A dedup key for some signatures or categories (e.g. scans: by source only).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DedupOverride {
    /// Name, stored in the incident's `rule` column.
    pub name: String,
    /// Signature IDs this override applies to.
    #[serde(default)]
    pub signature_ids: Vec<u32>,
    /// EVE `alert.category` values (classtype descriptions) this override applies to.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Key fields (agency is implicit).
    pub key: Vec<KeyField>,
    /// Window for these incidents (default: the global one).
    #[serde(default, with = "opt_duration")]
    pub window: Option<Duration>,
}

/// Where the correlation rules are.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorrelationConfig {
    /// TOML file of `[[rule]]` entries (see `correlate::rules`); none when unset.
    pub rules_file: Option<PathBuf>,
}

/// Retention of stored data.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days of alerts, incident links and incidents kept, by the day they were received
    /// (0 keeps everything).
    pub alerts_days: u32,
    /// Days of rollups kept (0 keeps everything).
    pub rollup_days: u32,
    /// How often expired partitions are looked for (servers without TTL).
    #[serde(with = "duration")]
    pub check_interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            alerts_days: 90,
            rollup_days: 400,
            check_interval: Duration::from_secs(3600),
        }
    }
}

/// The ticket worker (one correlator at a time holds its lease).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketsConfig {
    /// Run the ticket worker (open tickets, escalate, deliver webhooks) when holding the lease.
    pub enabled: bool,
    /// How often new incidents are looked for and the lease is renewed.
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// How often the escalator re-reads active tickets (it also wakes at each deadline).
    #[serde(with = "duration")]
    pub refresh_interval: Duration,
    /// Escalate level-1 agencies' tickets on to the root (default: stop at level 1).
    pub escalate_to_root: bool,
    /// Lease lifetime; a dead holder is replaced after about this long.
    #[serde(with = "duration")]
    pub lease_ttl: Duration,
    /// Wait between claiming the lease and reading who won.
    #[serde(with = "duration")]
    pub lease_settle: Duration,
    /// How far back a new lease holder looks for incidents without tickets.
    #[serde(with = "duration")]
    pub scan_horizon: Duration,
    /// How often a new agency directory load is looked for.
    #[serde(with = "duration")]
    pub directory_refresh: Duration,
    /// How often ticket gauges for `/metrics` are read.
    #[serde(with = "duration")]
    pub metrics_refresh: Duration,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval: Duration::from_secs(1),
            refresh_interval: Duration::from_secs(5),
            escalate_to_root: false,
            lease_ttl: Duration::from_secs(10),
            lease_settle: Duration::from_millis(500),
            scan_horizon: Duration::from_secs(3600),
            directory_refresh: Duration::from_secs(5),
            metrics_refresh: Duration::from_secs(10),
        }
    }
}

/// Webhook delivery.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Per-request timeout.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Wait before the second attempt; doubles each time.
    #[serde(with = "duration")]
    pub initial_backoff: Duration,
    /// Longest wait between attempts.
    #[serde(with = "duration")]
    pub max_backoff: Duration,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: u16,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            max_attempts: 8,
        }
    }
}

/// Which address decides an incident's owner.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OwnershipConfig {
    /// Alert categories whose *source* is the agency's host (outbound: a trojan calling home):
    /// the source's owner is tried first. Every other alert tries the destination first.
    pub source_first_categories: Vec<String>,
}

impl Default for OwnershipConfig {
    fn default() -> Self {
        Self {
            source_first_categories: vec![
                "A Network Trojan was detected".into(),
                "Malware Command and Control Activity Detected".into(),
            ],
        }
    }
}

impl CorrelatorConfig {
    /// Reads and parses a TOML file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`] (unknown fields included).
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`].
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<inline>"),
            message: e.to_string(),
        })
    }

    /// Checks ranges and combinations once, at startup.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        let tls = self.tls.cert.is_some() || self.tls.key.is_some();
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return bad("tls.cert and tls.key must be set together");
        }
        if !tls && !self.listen.ip().is_loopback() && !self.allow_plain_http {
            return Err(ConfigError::Invalid(format!(
                "listen = {} is not a loopback address and no tls.cert/tls.key is set; \
                 set allow_plain_http = true (or --allow-plain-http) to serve plain HTTP anyway",
                self.listen
            )));
        }
        if self.tls.require_client_cert && self.tls.client_ca.is_none() {
            return bad("tls.require_client_cert needs tls.client_ca");
        }
        if !self.clickhouse.url.starts_with("http://")
            && !self.clickhouse.url.starts_with("https://")
        {
            return bad("clickhouse.url must start with http:// or https://");
        }
        crate::store::validate_identifier(&self.clickhouse.database)
            .map_err(|e| ConfigError::Invalid(format!("clickhouse.database: {e}")))?;
        let i = &self.ingest;
        if i.max_body_bytes == 0 || i.max_decoded_bytes == 0 || i.max_line_bytes == 0 {
            return bad("ingest byte limits must be above 0");
        }
        if i.max_lines == 0 || i.batch_max_alerts == 0 || i.queue_max_alerts == 0 {
            return bad("ingest.max_lines, batch_max_alerts and queue_max_alerts must be above 0");
        }
        if i.batch_max_alerts > 500_000 {
            return bad(
                "ingest.batch_max_alerts above 500000 would split ClickHouse insert blocks",
            );
        }
        if i.max_concurrent_requests == 0 {
            return bad("ingest.max_concurrent_requests must be above 0");
        }
        if self.dedup.window.is_zero() || self.dedup.max_lifetime < self.dedup.window {
            return bad("dedup.window must be above 0 and at most dedup.max_lifetime");
        }
        if self.dedup.key.is_empty() {
            return bad("dedup.key needs at least one field (agency is implicit)");
        }
        if self.dedup.max_set == 0 || self.dedup.max_open_incidents == 0 {
            return bad("dedup.max_set and dedup.max_open_incidents must be above 0");
        }
        let t = &self.tickets;
        if t.poll_interval.is_zero()
            || t.refresh_interval.is_zero()
            || t.lease_ttl < Duration::from_secs(1)
        {
            return bad(
                "tickets.poll_interval and refresh_interval must be above 0, lease_ttl at least 1s",
            );
        }
        if t.lease_settle * 2 >= t.lease_ttl {
            return bad("tickets.lease_settle must be under half of tickets.lease_ttl");
        }
        if self.webhooks.max_attempts == 0 || self.webhooks.initial_backoff.is_zero() {
            return bad("webhooks.max_attempts and initial_backoff must be above 0");
        }
        for o in &self.dedup.overrides {
            if o.key.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "dedup.override '{}': key needs at least one field",
                    o.name
                )));
            }
            if o.signature_ids.is_empty() && o.categories.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "dedup.override '{}': set signature_ids or categories",
                    o.name
                )));
            }
        }
        Ok(())
    }
}

/// Parses durations written as `250ms`, `30s`, `10m`, `2h`, `7d` (a bare number is seconds).
///
/// # Errors
/// A message naming the accepted units.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 250ms, 30s, 10m, 2h or 7d"))?;
    let secs = |mult: u64| {
        n.checked_mul(mult)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("'{text}' is too long"))
    };
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        _ => Err(format!(
            "'{text}': unknown unit '{unit}' (use ms, s, m, h or d)"
        )),
    }
}

/// Formats a duration the way [`parse_duration`] reads it.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else {
        let s = d.as_secs();
        if s != 0 && s.is_multiple_of(86_400) {
            format!("{}d", s / 86_400)
        } else if s != 0 && s.is_multiple_of(3600) {
            format!("{}h", s / 3600)
        } else if s != 0 && s.is_multiple_of(60) {
            format!("{}m", s / 60)
        } else {
            format!("{s}s")
        }
    }
}

/// Serde helpers for [`Duration`] fields written as `"30s"`.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as `"30s"`.
    ///
    /// # Errors
    /// Never (the serializer's own errors only).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    /// Reads `"30s"` or an integer number of seconds.
    ///
    /// # Errors
    /// A message naming the accepted forms.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Secs(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => super::parse_duration(&t).map_err(serde::de::Error::custom),
            Raw::Secs(s) => Ok(Duration::from_secs(s)),
        }
    }
}

/// Serde helpers for `Option<Duration>` fields.
pub mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes `Some` as `"30s"`, `None` as nothing.
    ///
    /// # Errors
    /// Never (the serializer's own errors only).
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads `"30s"`.
    ///
    /// # Errors
    /// A message naming the accepted forms.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        for d in ["250ms", "30s", "10m", "2h", "7d", "0s"] {
            assert_eq!(format_duration(parse_duration(d).unwrap()), d);
        }
    }

    #[test]
    fn defaults_validate_and_unknown_fields_fail() {
        let cfg = CorrelatorConfig::from_toml("").unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.dedup.window, Duration::from_secs(600));
        let err = CorrelatorConfig::from_toml("listn = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("unknown field `listn`"), "{err}");
        let cfg = CorrelatorConfig::from_toml(
            "listen = \"0.0.0.0:8080\"\n[dedup]\nwindow = \"5m\"\nkey = [\"src_ip\"]\n",
        )
        .unwrap();
        assert_eq!(cfg.dedup.key, vec![KeyField::SrcIp]);
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("allow_plain_http"), "{err}");
        let err = CorrelatorConfig::from_toml("[dedup]\nwindow = \"5 fortnights\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown unit"), "{err}");
    }
}
