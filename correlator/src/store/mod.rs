//! Store: ClickHouse over its HTTP interface, `JSONEachRow` in both directions.
//!
//! Why plain HTTP rather than the `clickhouse` crate: Debian's 18.16 server needs the crate's
//! validation and compression turned off, and plain `JSONEachRow` already runs at about a
//! million rows a second here; one code path serves 18.16 and modern servers alike.
//!
//! Safety of SQL: row values travel as JSON bodies (serde escapes them). The few values
//! that must appear inside SQL text (an agency code in a filter, alert IDs in a dedup
//! lookup, a token hash) go through [`quote`], which escapes backslash, quote and control
//! characters the way ClickHouse string literals expect; identifiers (the database name) are
//! checked by [`validate_identifier`] once at startup. 18.16 has no server-side `{x:Type}`
//! parameters, so this is the binding mechanism that works on every version.

pub mod agencies;
pub mod local;
pub mod retention;
pub mod rows;
pub mod schema;

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::ClickHouseConfig;
use rows::{AlertRow, IncidentAlertRow, IncidentRow};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Network error, timeout, or the server refusing connections: retry later.
    #[error("ClickHouse unreachable: {0}")]
    Unavailable(String),
    /// The server answered with an exception.
    #[error("ClickHouse error (code {code}, HTTP {status}): {message}")]
    Server {
        /// ClickHouse error code (0 when none was found in the message).
        code: u32,
        /// HTTP status.
        status: u16,
        /// The server's message (first 500 characters).
        message: String,
    },
    /// The answer could not be decoded.
    #[error("decoding ClickHouse answer: {0}")]
    Decode(String),
    /// Bad configuration (URL, CA file, identifier).
    #[error("ClickHouse configuration: {0}")]
    Config(String),
}

impl StoreError {
    /// Whether retrying the same request later may succeed.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            // TIMEOUT_EXCEEDED, TOO_MANY_SIMULTANEOUS_QUERIES, SOCKET_TIMEOUT, NETWORK_ERROR,
            // MEMORY_LIMIT_EXCEEDED, TABLE_IS_READ_ONLY, TOO_MANY_PARTS, UNKNOWN_STATUS_OF_INSERT.
            Self::Server { code, status, .. } => {
                matches!(code, 159 | 202 | 209 | 210 | 241 | 242 | 252 | 319) || *status == 503
            }
            Self::Decode(_) | Self::Config(_) => false,
        }
    }
}

/// Checks a database or table name: `[A-Za-z_][A-Za-z0-9_]{0,63}`.
///
/// # Errors
/// A message saying what is allowed.
pub fn validate_identifier(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok_first = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if ok_first && name.len() <= 64 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a valid name (letters, digits and '_', not starting with a digit, at most 64)"
        ))
    }
}

/// Quotes `s` as a ClickHouse string literal.
#[must_use]
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Server version as reported by `SELECT version()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    /// Major (18, 19, ..., 24, 26).
    pub major: u32,
    /// Minor.
    pub minor: u32,
}

impl ServerVersion {
    /// Parses `18.16.1` or `24.3.2.23`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let mut it = text.trim().split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        Some(Self { major, minor })
    }

    /// Table-level `TTL` exists from 19.6 on.
    #[must_use]
    pub fn has_ttl(self) -> bool {
        self >= Self {
            major: 19,
            minor: 6,
        }
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A ClickHouse HTTP client bound to one database.
#[derive(Debug, Clone)]
pub struct ClickHouse {
    http: reqwest::Client,
    url: String,
    database: String,
    user: String,
    password: String,
}

impl ClickHouse {
    /// Builds a client (no connection is made yet).
    ///
    /// # Errors
    /// [`StoreError::Config`] for a bad database name, CA file or password file.
    pub fn new(cfg: &ClickHouseConfig) -> Result<Self, StoreError> {
        validate_identifier(&cfg.database).map_err(StoreError::Config)?;
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(16)
            .no_gzip()
            .no_zstd();
        if let Some(ca) = &cfg.ca_cert {
            let pem = std::fs::read(ca)
                .map_err(|e| StoreError::Config(format!("reading {}: {e}", ca.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| StoreError::Config(format!("{}: {e}", ca.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        let password = match &cfg.password_file {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| StoreError::Config(format!("reading {}: {e}", p.display())))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            None => cfg.password.clone(),
        };
        let http = builder
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(Self {
            http,
            url: cfg.url.trim_end_matches('/').to_owned(),
            database: cfg.database.clone(),
            user: cfg.user.clone(),
            password,
        })
    }

    /// The database name (validated identifier).
    #[must_use]
    pub fn database(&self) -> &str {
        &self.database
    }

    async fn post(
        &self,
        params: &[(&str, &str)],
        body: Vec<u8>,
        with_db: bool,
    ) -> Result<bytes::Bytes, StoreError> {
        let mut req = self
            .http
            .post(format!("{}/", self.url))
            .basic_auth(&self.user, Some(&self.password))
            .query(params);
        if with_db {
            req = req.query(&[("database", self.database.as_str())]);
        }
        let resp = req.body(body).send().await.map_err(|e| {
            StoreError::Unavailable(if e.is_timeout() {
                "request timed out".to_owned()
            } else {
                format!("{e}")
            })
        })?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        if status.is_success() {
            return Ok(body);
        }
        Err(server_error(
            status.as_u16(),
            &String::from_utf8_lossy(&body),
        ))
    }

    /// Runs a statement in the configured database.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn execute(&self, sql: &str) -> Result<(), StoreError> {
        self.post(&[], sql.as_bytes().to_vec(), true)
            .await
            .map(|_| ())
    }

    /// Runs a statement without selecting the database (to create it).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn execute_no_db(&self, sql: &str) -> Result<(), StoreError> {
        self.post(&[], sql.as_bytes().to_vec(), false)
            .await
            .map(|_| ())
    }

    /// Runs a `SELECT` and decodes each `JSONEachRow` line as `T`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn query_rows<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, StoreError> {
        let sql = format!("{sql} FORMAT JSONEachRow");
        let body = self
            .post(
                &[
                    ("output_format_json_quote_64bit_integers", "0"),
                    // Dedup lookups list thousands of IDs; the default cap is 256 KiB.
                    ("max_query_size", "67108864"),
                ],
                sql.into_bytes(),
                true,
            )
            .await?;
        body.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).map_err(|e| StoreError::Decode(e.to_string())))
            .collect()
    }

    /// Pings the server (`SELECT 1`).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.post(&[], b"SELECT 1".to_vec(), false)
            .await
            .map(|_| ())
    }

    /// The server's version.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn version(&self) -> Result<ServerVersion, StoreError> {
        let body = self.post(&[], b"SELECT version()".to_vec(), false).await?;
        let text = String::from_utf8_lossy(&body);
        ServerVersion::parse(&text)
            .ok_or_else(|| StoreError::Decode(format!("version '{}'", text.trim())))
    }

    /// Inserts rows into `table` of the configured database in one `INSERT` (one block:
    /// atomic on a MergeTree table below `max_insert_block_size` rows).
    ///
    /// # Errors
    /// [`StoreError`]; nothing is inserted then (see above).
    pub async fn insert<T: Serialize>(&self, table: &str, rows: &[T]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut body = Vec::with_capacity(rows.len() * 256);
        for r in rows {
            serde_json::to_writer(&mut body, r).map_err(|e| StoreError::Decode(e.to_string()))?;
            body.push(b'\n');
        }
        self.insert_raw(table, body).await
    }

    /// Inserts a prepared `JSONEachRow` body.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_raw(&self, table: &str, body: Vec<u8>) -> Result<(), StoreError> {
        let query = format!("INSERT INTO {}.{table} FORMAT JSONEachRow", self.database);
        self.post(
            &[
                ("query", query.as_str()),
                ("input_format_skip_unknown_fields", "0"),
            ],
            body,
            true,
        )
        .await
        .map(|_| ())
    }

    /// Which of `ids` are already in `alerts` (of `agencies`, between `min_ts_s` and
    /// `max_ts_s`: the primary key prefix, so the lookup reads few granules).
    ///
    /// The IDs travel as ClickHouse *external data* (a temporary table `ids` uploaded with
    /// the query as multipart/form-data, TabSeparated), not as an `IN (...)` literal list:
    /// parsing 50,000 string literals would cost the server more than the lookup itself.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn existing_alert_ids(
        &self,
        agencies: &[&str],
        min_ts_s: i64,
        max_ts_s: i64,
        ids: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut agency_list = String::new();
        push_list(&mut agency_list, agencies);
        let sql = format!(
            "SELECT alert_id FROM {}.alerts WHERE agency IN ({agency_list}) \
             AND ts >= toDateTime({min_ts_s}) AND ts <= toDateTime({max_ts_s}) \
             AND alert_id IN ids FORMAT TabSeparated",
            self.database
        );
        let boundary = "tocsin-ids-7d41c0b6e2f94a3b";
        let mut body = Vec::with_capacity(ids.len() * 40 + 256);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"ids\"; filename=\"ids\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        for id in ids {
            push_tsv(&mut body, id);
            body.push(b'\n');
        }
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let resp = self
            .http
            .post(format!("{}/", self.url))
            .basic_auth(&self.user, Some(&self.password))
            .query(&[
                ("database", self.database.as_str()),
                ("query", sql.as_str()),
                ("ids_structure", "alert_id String"),
                ("ids_format", "TabSeparated"),
            ])
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        if !status.is_success() {
            return Err(server_error(status.as_u16(), &text));
        }
        Ok(text.lines().map(unescape_tsv).collect())
    }

    /// The highest sequence number stored for the alert-ID prefix `sensor:stream` of
    /// `agency` (0 when none): Tocsin sensors number a stream's alerts upwards, so a higher
    /// one cannot be stored yet.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn stream_watermark(&self, agency: &str, prefix: &str) -> Result<u64, StoreError> {
        let with_colon = format!("{prefix}:");
        #[derive(serde::Deserialize)]
        struct Max {
            seq: u64,
        }
        let rows: Vec<Max> = self
            .query_rows(&format!(
                "SELECT max(toUInt64OrZero(substring(alert_id, {}))) AS seq FROM {}.alerts \
                 WHERE agency = {} AND startsWith(alert_id, {})",
                with_colon.len() + 1,
                self.database,
                quote(agency),
                quote(&with_colon)
            ))
            .await?;
        Ok(rows.first().map_or(0, |m| m.seq))
    }

    /// Stores one batch: links and incident versions first, alerts last, so a stored alert
    /// always has its incident (a retry after a partial failure rewrites the same rows).
    ///
    /// # Errors
    /// [`StoreError`] from the first insert that fails.
    pub async fn store_batch(
        &self,
        alerts: &[AlertRow<'_>],
        links: &[IncidentAlertRow<'_>],
        incidents: &[IncidentRow],
    ) -> Result<(), StoreError> {
        let t = std::time::Instant::now();
        self.insert("incident_alerts", links).await?;
        let links_ms = t.elapsed().as_millis();
        self.insert("incidents", incidents).await?;
        let incidents_ms = t.elapsed().as_millis();
        self.insert("alerts", alerts).await?;
        tracing::trace!(
            links_ms,
            incidents_ms,
            all_ms = t.elapsed().as_millis(),
            "store_batch"
        );
        Ok(())
    }

    /// Open incidents updated within the last `horizon_s` seconds (for restart).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn recent_open_incidents(
        &self,
        horizon_s: i64,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        let db = &self.database;
        self.query_rows(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM {db}.incidents FINAL \
             WHERE status = 'open' AND updated_at >= now() - {horizon_s}"
        ))
        .await
    }

    /// A page of incidents, newest first (by first alert, then ID).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn list_incidents(&self, q: &IncidentQuery) -> Result<Vec<IncidentRow>, StoreError> {
        let db = &self.database;
        let mut conds = vec![q.scope_sql.clone()];
        conds.extend(q.extra.iter().cloned());
        if let Some(since) = q.since_s {
            conds.push(format!("last_seen >= toDateTime({since})"));
        }
        if let Some((fs, id)) = &q.before {
            conds.push(format!(
                "(first_seen_us < {fs} OR (first_seen_us = {fs} AND toString(id) < {}))",
                quote(id)
            ));
        }
        self.query_rows(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM {db}.incidents FINAL WHERE {} \
             ORDER BY first_seen_us DESC, toString(id) DESC LIMIT {}",
            conds.join(" AND "),
            q.limit
        ))
        .await
    }
}

/// Filters of [`ClickHouse::list_incidents`].
#[derive(Debug, Clone, Default)]
pub struct IncidentQuery {
    /// SQL condition on `agency` (the caller's scope; see `agency::subtree_sql`).
    pub scope_sql: String,
    /// More SQL conditions (values quoted by the caller).
    pub extra: Vec<String>,
    /// Only incidents whose last alert is at or after this, seconds.
    pub since_s: Option<i64>,
    /// Keyset cursor: only incidents strictly before (first_seen_us, id).
    pub before: Option<(i64, String)>,
    /// Page size.
    pub limit: u32,
}

/// Column list reading an [`IncidentRow`] (DateTime columns as Unix seconds).
pub const INCIDENT_COLUMNS: &str = "id, agency, kind, rule, dedup_key, \
    toUnixTimestamp(window_start) AS window_start, window_start_us, \
    toUnixTimestamp(first_seen) AS first_seen, first_seen_us, \
    toUnixTimestamp(last_seen) AS last_seen, last_seen_us, alert_count, sensors, src_ips, \
    dest_ips, signature_ids, signatures, severity, status, version, \
    toUnixTimestamp(updated_at) AS updated_at";

fn server_error(status: u16, text: &str) -> StoreError {
    let code = text
        .strip_prefix("Code: ")
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    StoreError::Server {
        code,
        status,
        message: text.chars().take(500).collect(),
    }
}

/// Appends `s` as one TabSeparated field (backslash, tab, newline, CR escaped).
fn push_tsv(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\0' => out.extend_from_slice(b"\\0"),
            b => out.push(b),
        }
    }
}

/// Reads one TabSeparated field back.
fn unescape_tsv(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('0') => out.push('\0'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn push_list(sql: &mut String, items: &[&str]) {
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&quote(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's"), r"'it\'s'");
        assert_eq!(quote(r"back\slash"), r"'back\\slash'");
        assert_eq!(quote("a\nb\0"), r"'a\nb\0'");
        assert_eq!(quote("\u{1}"), r"'\x01'");
        assert_eq!(quote("x' OR 1=1 --"), r"'x\' OR 1=1 --'");
    }

    #[test]
    fn tsv_round_trip() {
        for s in [
            "plain:00000000000000ab:1",
            "tab\there",
            "back\\slash",
            "nl\nx",
            "\0",
        ] {
            let mut buf = Vec::new();
            push_tsv(&mut buf, s);
            assert!(!buf.contains(&b'\n') && !buf.contains(&b'\t'));
            assert_eq!(unescape_tsv(std::str::from_utf8(&buf).unwrap()), s);
        }
    }

    #[test]
    fn identifiers() {
        assert!(validate_identifier("tocsin_test_1").is_ok());
        assert!(validate_identifier("_x").is_ok());
        for bad in ["", "1abc", "a-b", "a;drop", "a b", &"x".repeat(65)] {
            assert!(validate_identifier(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions() {
        let v = ServerVersion::parse("18.16.1\n").unwrap();
        assert_eq!(
            v,
            ServerVersion {
                major: 18,
                minor: 16
            }
        );
        assert!(!v.has_ttl());
        assert!(ServerVersion::parse("19.6.2.11").unwrap().has_ttl());
        assert!(!ServerVersion::parse("19.5.1").unwrap().has_ttl());
        assert!(ServerVersion::parse("26.9.1.1").unwrap().has_ttl());
        assert_eq!(ServerVersion::parse("garbage"), None);
    }
}
