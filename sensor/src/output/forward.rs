//! The forwarder: EVE lines in (from the sensor's threads), batches out to the correlator's
//! `POST /api/v1/alerts`, through the durable [`spool`](super::spool).
//!
//! - [`Forwarder::submit`] appends the line to the spool (fsync per [`FsyncPolicy`]) and
//!   returns; it blocks while the unacknowledged data is at `spool_max_bytes` (never drops).
//! - A sender thread reads the spool from the acknowledged position, sends batches of up to
//!   `batch_max_alerts` lines (or what arrived within `batch_max_delay`), compressed with
//!   gzip or zstd, over HTTP(S) (rustls; a configured CA; a client certificate for mTLS).
//! - A batch is acknowledged in the spool only on a `2xx`/`422` answer, i.e. once the
//!   correlator holds it; lines it lists as rejected go to `rejected.ndjson` in the spool.
//!   Anything else (network error, `429`, `5xx`, `401`) is retried with exponential backoff
//!   and jitter (honouring `Retry-After`); a `413` halves the batch.
//! - On start, everything not acknowledged is resent (the correlator recognises duplicates).
//!
//! No tokio here: the sensor is synchronous threads. Two threads: the sender, and (for
//! [`FsyncPolicy::Interval`]) a flusher.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer};

use super::spool::{Pos, Spool, SpoolError};

/// When appended lines are fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every line (safest, slowest).
    Always,
    /// At most this long after a line (a background thread).
    Interval(Duration),
    /// Left to the OS (survives a process crash, not a power cut).
    Never,
}

impl<'de> Deserialize<'de> for FsyncPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl FsyncPolicy {
    /// Parses `always`, `never`, or an interval like `200ms` / `1s`.
    ///
    /// # Errors
    /// A message naming the accepted forms.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            other => parse_duration(other).map(Self::Interval).map_err(|_| {
                format!("fsync '{other}': use always, never, or an interval like 200ms")
            }),
        }
    }
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// None.
    None,
    /// gzip (fast level).
    Gzip,
    /// zstd (level 3).
    Zstd,
}

/// Parses `250ms`, `30s`, `10m`, `2h` (a bare number is seconds).
///
/// # Errors
/// A message.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{t}' is not a duration like 500ms or 5s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(n.saturating_mul(3600))),
        _ => Err(format!("'{t}': unknown unit (ms, s, m, h)")),
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    parse_duration(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// Settings of the forwarder (the `[sensor.forward]` TOML section).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// Correlator base URL (`https://correlator:8443`) or the full ingest URL.
    pub url: String,
    /// Sensor token (`tocsin token create --role sensor`).
    pub token: String,
    /// Spool directory.
    pub spool_dir: PathBuf,
    /// Most lines per request.
    pub batch_max_alerts: usize,
    /// Most bytes (uncompressed) per request.
    pub batch_max_bytes: usize,
    /// Longest wait to fill a batch.
    #[serde(deserialize_with = "de_duration")]
    pub batch_max_delay: Duration,
    /// When the spool is fsynced.
    pub fsync: FsyncPolicy,
    /// Most unacknowledged bytes in the spool; `submit` blocks beyond.
    pub spool_max_bytes: u64,
    /// Segment size.
    pub segment_max_bytes: u64,
    /// CA certificate (PEM) that signed the correlator's certificate.
    pub ca_cert: Option<PathBuf>,
    /// Client certificate chain (PEM), for mTLS.
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM), for mTLS.
    pub client_key: Option<PathBuf>,
    /// Body compression.
    pub compression: Compression,
    /// Per-request timeout.
    #[serde(deserialize_with = "de_duration")]
    pub request_timeout: Duration,
    /// First retry delay.
    #[serde(deserialize_with = "de_duration")]
    pub retry_initial: Duration,
    /// Longest retry delay.
    #[serde(deserialize_with = "de_duration")]
    pub retry_max: Duration,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            token: String::new(),
            spool_dir: PathBuf::from("spool"),
            batch_max_alerts: 2000,
            batch_max_bytes: 8 << 20,
            batch_max_delay: Duration::from_millis(500),
            fsync: FsyncPolicy::Interval(Duration::from_millis(200)),
            spool_max_bytes: 1 << 30,
            segment_max_bytes: 16 << 20,
            ca_cert: None,
            client_cert: None,
            client_key: None,
            compression: Compression::Zstd,
            request_timeout: Duration::from_secs(30),
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// Why the forwarder failed.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Spool trouble.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// Bad settings (URL, certificates, token).
    #[error("forward config: {0}")]
    Config(String),
    /// The line is empty or has a newline inside.
    #[error("line must be one non-empty line of JSON")]
    BadLine,
    /// `submit` after shutdown began.
    #[error("forwarder is shutting down")]
    Stopped,
    /// A stats record was not taken by the correlator.
    #[error("posting stats: {0}")]
    Stats(String),
}

/// Counters, also returned by [`Forwarder::shutdown`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardStats {
    /// Lines submitted (this process).
    pub submitted: u64,
    /// Lines the correlator stored.
    pub accepted: u64,
    /// Lines the correlator already had.
    pub duplicates: u64,
    /// Lines refused as invalid (in `rejected.ndjson`).
    pub rejected: u64,
    /// Requests answered 2xx/422.
    pub batches: u64,
    /// Failed attempts that were retried.
    pub retries: u64,
    /// Unacknowledged bytes left in the spool.
    pub pending_bytes: u64,
    /// Records found unacknowledged at start.
    pub recovered: u64,
}

#[derive(Default)]
struct Counters {
    submitted: AtomicU64,
    accepted: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    batches: AtomicU64,
    retries: AtomicU64,
}

struct Shared {
    spool: Mutex<Spool>,
    appended: Condvar,
    acked: Condvar,
    stop: AtomicBool,
    deadline: Mutex<Option<Instant>>,
    counters: Counters,
    recovered: u64,
    cfg: ForwardConfig,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Spool> {
        // A panic while holding the lock leaves the spool consistent on disk; keep going.
        self.spool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn past_deadline(&self) -> bool {
        self.deadline
            .lock()
            .map(|d| d.is_some_and(|d| Instant::now() >= d))
            .unwrap_or(true)
    }
}

/// The forwarder handle.
pub struct Forwarder {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// For stats records, sent directly (not spooled: they are cumulative counters).
    client: reqwest::blocking::Client,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("url", &self.shared.cfg.url)
            .finish_non_exhaustive()
    }
}

fn ingest_url(url: &str) -> String {
    let u = url.trim_end_matches('/');
    if u.ends_with("/api/v1/alerts") {
        u.to_owned()
    } else {
        format!("{u}/api/v1/alerts")
    }
}

/// `POST` target of stats records, next to the alerts endpoint.
fn stats_url(url: &str) -> String {
    let u = url.trim_end_matches('/');
    let base = u.strip_suffix("/api/v1/alerts").unwrap_or(u);
    format!("{base}/api/v1/sensor-stats")
}

fn build_client(cfg: &ForwardConfig) -> Result<reqwest::blocking::Client, ForwardError> {
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| ForwardError::Config(format!("reading {}: {e}", p.display())))
    };
    let mut b = reqwest::blocking::Client::builder()
        .timeout(cfg.request_timeout)
        .connect_timeout(Duration::from_secs(10))
        .use_rustls_tls()
        .no_gzip()
        .no_zstd();
    if let Some(ca) = &cfg.ca_cert {
        let cert = reqwest::Certificate::from_pem(&read(ca)?)
            .map_err(|e| ForwardError::Config(format!("{}: {e}", ca.display())))?;
        b = b.add_root_certificate(cert);
    }
    match (&cfg.client_cert, &cfg.client_key) {
        (Some(c), Some(k)) => {
            let mut pem = read(c)?;
            pem.push(b'\n');
            pem.extend(read(k)?);
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| ForwardError::Config(format!("client certificate: {e}")))?;
            b = b.identity(id);
        }
        (None, None) => {}
        _ => {
            return Err(ForwardError::Config(
                "client_cert and client_key go together".into(),
            ));
        }
    }
    b.build().map_err(|e| ForwardError::Config(e.to_string()))
}

impl Forwarder {
    /// Opens the spool (recovering it) and starts the sender; what was not acknowledged
    /// before is sent first.
    ///
    /// # Errors
    /// [`ForwardError::Config`] for bad settings, [`ForwardError::Spool`].
    pub fn start(cfg: ForwardConfig) -> Result<Self, ForwardError> {
        if !(cfg.url.starts_with("http://") || cfg.url.starts_with("https://")) {
            return Err(ForwardError::Config(format!(
                "url '{}' must start with http:// or https://",
                cfg.url
            )));
        }
        if cfg.token.is_empty()
            || cfg
                .token
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ForwardError::Config(
                "token must be set (tocsin token create --role sensor)".into(),
            ));
        }
        if cfg.batch_max_alerts == 0 || cfg.spool_max_bytes == 0 {
            return Err(ForwardError::Config(
                "batch_max_alerts and spool_max_bytes must be above 0".into(),
            ));
        }
        let client = build_client(&cfg)?;
        let stats_client = client.clone();
        let (spool, rec) = Spool::open(&cfg.spool_dir, cfg.segment_max_bytes)?;
        if rec.pending_records > 0 || rec.truncated_bytes > 0 {
            tracing::info!(
                pending = rec.pending_records,
                truncated_bytes = rec.truncated_bytes,
                cursor_reset = rec.cursor_reset,
                "spool recovered; resending what was not acknowledged"
            );
        }
        let shared = Arc::new(Shared {
            spool: Mutex::new(spool),
            appended: Condvar::new(),
            acked: Condvar::new(),
            stop: AtomicBool::new(false),
            deadline: Mutex::new(None),
            counters: Counters::default(),
            recovered: rec.pending_records,
            cfg,
        });
        let mut threads = Vec::new();
        let s = shared.clone();
        threads.push(
            std::thread::Builder::new()
                .name("forward-send".into())
                .spawn(move || sender(&s, &client))
                .map_err(|e| ForwardError::Config(format!("spawning the sender: {e}")))?,
        );
        if let FsyncPolicy::Interval(every) = shared.cfg.fsync {
            let s = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("forward-fsync".into())
                    .spawn(move || {
                        while !s.stop.load(Ordering::Relaxed) {
                            std::thread::sleep(every.max(Duration::from_millis(1)));
                            if let Err(e) = s.lock().sync() {
                                tracing::error!(error = %e, "spool fsync failed");
                            }
                        }
                    })
                    .map_err(|e| ForwardError::Config(format!("spawning the flusher: {e}")))?,
            );
        }
        Ok(Self {
            shared,
            threads,
            client: stats_client,
        })
    }

    /// Posts one EVE `stats` record to the correlator's `/api/v1/sensor-stats`, once, now.
    /// Stats bypass the spool: each record holds cumulative counters, so a lost one costs
    /// resolution on the dashboard, never an alert.
    ///
    /// # Errors
    /// [`ForwardError::Stats`] when the correlator is unreachable or refuses the record.
    pub fn post_stats(&self, record: &[u8]) -> Result<(), ForwardError> {
        let resp = self
            .client
            .post(stats_url(&self.shared.cfg.url))
            .bearer_auth(&self.shared.cfg.token)
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(record.to_vec())
            .send()
            .map_err(|e| ForwardError::Stats(e.to_string()))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            let text = resp.text().unwrap_or_default();
            Err(ForwardError::Stats(format!(
                "{status}: {}",
                text.chars().take(200).collect::<String>()
            )))
        }
    }

    /// Appends one EVE line (a trailing newline is allowed) to the spool. Blocks while the
    /// spool holds `spool_max_bytes` of unacknowledged data.
    ///
    /// # Errors
    /// [`ForwardError::BadLine`], [`ForwardError::Stopped`], [`ForwardError::Spool`].
    pub fn submit(&self, eve_line: &[u8]) -> Result<(), ForwardError> {
        let line = eve_line.strip_suffix(b"\n").unwrap_or(eve_line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line.contains(&b'\n') {
            return Err(ForwardError::BadLine);
        }
        let s = &self.shared;
        let mut spool = s.lock();
        while spool.pending_bytes() >= s.cfg.spool_max_bytes {
            if s.stop.load(Ordering::Relaxed) {
                return Err(ForwardError::Stopped);
            }
            spool = s
                .acked
                .wait_timeout(spool, Duration::from_millis(200))
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
        spool.append(line)?;
        if s.cfg.fsync == FsyncPolicy::Always {
            spool.sync()?;
        }
        drop(spool);
        s.counters.submitted.fetch_add(1, Ordering::Relaxed);
        s.appended.notify_one();
        Ok(())
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> ForwardStats {
        let c = &self.shared.counters;
        ForwardStats {
            submitted: c.submitted.load(Ordering::Relaxed),
            accepted: c.accepted.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            pending_bytes: self.shared.lock().pending_bytes(),
            recovered: self.shared.recovered,
        }
    }

    /// Delivers what it can within `grace`, then stops; the rest stays spooled for the next
    /// start.
    #[must_use]
    pub fn shutdown(mut self, grace: Duration) -> ForwardStats {
        if let Ok(mut d) = self.shared.deadline.lock() {
            *d = Some(Instant::now() + grace);
        }
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.appended.notify_all();
        self.shared.acked.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Err(e) = self.shared.lock().sync() {
            tracing::error!(error = %e, "final spool fsync failed");
        }
        self.stats()
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            if let Ok(mut d) = self.shared.deadline.lock() {
                *d = Some(Instant::now());
            }
            self.shared.stop.store(true, Ordering::Relaxed);
            self.shared.appended.notify_all();
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

/// Collects the next batch from `reader`: (lines, position after the last).
fn collect(
    s: &Shared,
    reader: &mut super::spool::SpoolReader,
    max_lines: usize,
) -> Result<(Vec<Vec<u8>>, Pos), SpoolError> {
    let cfg = &s.cfg;
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0usize;
    let mut end = reader.pos();
    let mut first_at: Option<Instant> = None;
    loop {
        {
            let spool = s.lock();
            let limit = spool.write_pos();
            while lines.len() < max_lines && bytes < cfg.batch_max_bytes {
                match reader.next(limit, &|n| spool.segment_len(n))? {
                    Some((line, pos)) => {
                        bytes += line.len() + 1;
                        lines.push(line);
                        end = pos;
                    }
                    None => break,
                }
            }
            if lines.len() >= max_lines || bytes >= cfg.batch_max_bytes {
                return Ok((lines, end));
            }
            let stopping = s.stop.load(Ordering::Relaxed);
            if !lines.is_empty() {
                let started = *first_at.get_or_insert_with(Instant::now);
                if stopping || started.elapsed() >= cfg.batch_max_delay {
                    return Ok((lines, end));
                }
            } else if stopping {
                return Ok((lines, end));
            }
            let wait = first_at.map_or(Duration::from_millis(200), |f| {
                cfg.batch_max_delay
                    .saturating_sub(f.elapsed())
                    .max(Duration::from_millis(1))
            });
            let _ = s.appended.wait_timeout(spool, wait);
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    accepted: u64,
    #[serde(default)]
    duplicates: u64,
    #[serde(default)]
    rejected: Vec<RejectedLine>,
}

#[derive(Deserialize)]
struct RejectedLine {
    line: usize,
    error: String,
}

enum Outcome {
    Delivered,
    TooLarge,
    Retry(Option<Duration>),
}

fn compress(body: &[u8], c: Compression) -> std::io::Result<(Vec<u8>, Option<&'static str>)> {
    match c {
        Compression::None => Ok((body.to_vec(), None)),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            e.write_all(body)?;
            Ok((e.finish()?, Some("gzip")))
        }
        Compression::Zstd => Ok((zstd::encode_all(body, 3)?, Some("zstd"))),
    }
}

fn send(s: &Shared, client: &reqwest::blocking::Client, url: &str, lines: &[Vec<u8>]) -> Outcome {
    let mut body = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        body.extend_from_slice(l);
        body.push(b'\n');
    }
    let (body, encoding) = match compress(&body, s.cfg.compression) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "compressing a batch failed; sending it uncompressed");
            (body, None)
        }
    };
    let mut req = client
        .post(url)
        .bearer_auth(&s.cfg.token)
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
        .body(body);
    if let Some(enc) = encoding {
        req = req.header(reqwest::header::CONTENT_ENCODING, enc);
    }
    let resp = match req.send() {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "correlator unreachable; will retry");
            return Outcome::Retry(None);
        }
    };
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| Duration::from_secs(secs.min(300)));
    if status.is_success() || status == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
        let answer: Answer = match resp.json() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, %status, "unreadable answer; will resend (duplicates are recognised)");
                return Outcome::Retry(None);
            }
        };
        let c = &s.counters;
        c.accepted.fetch_add(answer.accepted, Ordering::Relaxed);
        c.duplicates.fetch_add(answer.duplicates, Ordering::Relaxed);
        c.rejected
            .fetch_add(answer.rejected.len() as u64, Ordering::Relaxed);
        c.batches.fetch_add(1, Ordering::Relaxed);
        if !answer.rejected.is_empty() {
            let spool = s.lock();
            for r in &answer.rejected {
                if let Some(line) = r.line.checked_sub(1).and_then(|i| lines.get(i))
                    && let Err(e) = spool.dead_letter(line, &r.error)
                {
                    tracing::error!(error = %e, "could not keep a rejected line");
                }
            }
            tracing::warn!(count = answer.rejected.len(), first = %answer.rejected.first().map_or("", |r| r.error.as_str()), "correlator rejected lines; kept in rejected.ndjson");
        }
        return Outcome::Delivered;
    }
    let text: String = resp.text().unwrap_or_default().chars().take(300).collect();
    match status.as_u16() {
        413 => Outcome::TooLarge,
        401 | 403 => {
            tracing::error!(%status, body = %text, "correlator refused the token; fix the token, alerts stay spooled");
            Outcome::Retry(Some(s.cfg.retry_max))
        }
        _ => {
            tracing::warn!(%status, body = %text, "correlator did not store the batch; will retry");
            Outcome::Retry(retry_after)
        }
    }
}

/// Backoff: `initial × 2^attempt` capped at `max`, with ±25 % jitter.
fn backoff(cfg: &ForwardConfig, attempt: u32) -> Duration {
    let base = cfg
        .retry_initial
        .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
        .min(cfg.retry_max);
    // Jitter from the clock's nanoseconds: no RNG needed, different per call.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let frac = f64::from(nanos % 1000) / 1000.0; // 0..1
    base.mul_f64(0.75 + frac * 0.5)
}

fn sleep_unless_stopped(s: &Shared, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if s.stop.load(Ordering::Relaxed) && s.past_deadline() {
            return false;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
    }
    true
}

fn sender(s: &Shared, client: &reqwest::blocking::Client) {
    let url = ingest_url(&s.cfg.url);
    let mut reader = s.lock().reader();
    let mut max_lines = s.cfg.batch_max_alerts;
    loop {
        if s.stop.load(Ordering::Relaxed) && s.past_deadline() {
            return;
        }
        let (lines, end) = match collect(s, &mut reader, max_lines) {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "reading the spool failed; retrying from the acknowledged position");
                let ack = s.lock().ack_pos();
                reader.seek(ack);
                if !sleep_unless_stopped(s, Duration::from_secs(1)) {
                    return;
                }
                continue;
            }
        };
        if lines.is_empty() {
            if s.stop.load(Ordering::Relaxed) {
                return; // drained
            }
            continue;
        }
        let mut attempt = 0u32;
        loop {
            match send(s, client, &url, &lines) {
                Outcome::Delivered => {
                    let mut spool = s.lock();
                    if let Err(e) = spool.ack(end) {
                        tracing::error!(error = %e, "persisting the spool cursor failed; the batch may be resent");
                    }
                    drop(spool);
                    s.acked.notify_all();
                    max_lines = s.cfg.batch_max_alerts;
                    break;
                }
                Outcome::TooLarge if lines.len() > 1 => {
                    max_lines = (lines.len() / 2).max(1);
                    tracing::warn!(max_lines, "correlator says the batch is too large; halving");
                    let ack = s.lock().ack_pos();
                    reader.seek(ack);
                    break;
                }
                Outcome::TooLarge => {
                    // One line alone is too large for this correlator: keep it, move on.
                    let mut spool = s.lock();
                    if let Some(l) = lines.first() {
                        let _ = spool.dead_letter(l, "line too large for the correlator (413)");
                    }
                    s.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    let _ = spool.ack(end);
                    drop(spool);
                    s.acked.notify_all();
                    break;
                }
                Outcome::Retry(after) => {
                    s.counters.retries.fetch_add(1, Ordering::Relaxed);
                    let wait = after
                        .unwrap_or_else(|| backoff(&s.cfg, attempt))
                        .min(s.cfg.retry_max);
                    attempt = attempt.saturating_add(1);
                    if !sleep_unless_stopped(s, wait) {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_from_toml_with_defaults() {
        let cfg: ForwardConfig = toml::from_str(
            "url = \"https://c:8443\"\ntoken = \"t\"\nspool_dir = \"/var/spool/tocsin\"\nfsync = \"always\"\nbatch_max_delay = \"250ms\"\ncompression = \"gzip\"\n",
        )
        .unwrap();
        assert_eq!(cfg.fsync, FsyncPolicy::Always);
        assert_eq!(cfg.batch_max_delay, Duration::from_millis(250));
        assert_eq!(cfg.compression, Compression::Gzip);
        assert_eq!(cfg.batch_max_alerts, 2000);
        let err = toml::from_str::<ForwardConfig>("urll = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field"), "{err}");
        assert_eq!(
            FsyncPolicy::parse("200ms"),
            Ok(FsyncPolicy::Interval(Duration::from_millis(200)))
        );
        assert!(FsyncPolicy::parse("sometimes").is_err());
    }

    #[test]
    fn urls_and_backoff() {
        assert_eq!(ingest_url("http://c:8080"), "http://c:8080/api/v1/alerts");
        assert_eq!(
            stats_url("http://c:8080/"),
            "http://c:8080/api/v1/sensor-stats"
        );
        assert_eq!(
            stats_url("http://c/x/api/v1/alerts"),
            "http://c/x/api/v1/sensor-stats"
        );
        assert_eq!(ingest_url("http://c:8080/"), "http://c:8080/api/v1/alerts");
        assert_eq!(
            ingest_url("http://c/api/v1/alerts"),
            "http://c/api/v1/alerts"
        );
        let cfg = ForwardConfig::default();
        for attempt in 0..30 {
            let d = backoff(&cfg, attempt);
            let base = cfg
                .retry_initial
                .saturating_mul(1 << attempt.min(20))
                .min(cfg.retry_max);
            assert!(
                d >= base.mul_f64(0.75) && d <= base.mul_f64(1.25),
                "{attempt}: {d:?}"
            );
        }
    }

    #[test]
    fn bad_settings_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ForwardConfig {
            url: "ftp://x".into(),
            token: "t".into(),
            spool_dir: dir.path().to_owned(),
            ..ForwardConfig::default()
        };
        assert!(matches!(
            Forwarder::start(cfg.clone()),
            Err(ForwardError::Config(_))
        ));
        // Nothing listens on port 9 of loopback: lines stay spooled, submit still succeeds.
        let f = Forwarder::start(ForwardConfig {
            url: "http://127.0.0.1:9".into(),
            retry_initial: Duration::from_millis(10),
            ..cfg
        })
        .unwrap();
        assert!(matches!(f.submit(b""), Err(ForwardError::BadLine)));
        assert!(matches!(f.submit(b"a\nb"), Err(ForwardError::BadLine)));
        f.submit(b"{\"x\":1}\n").unwrap();
        let st = f.shutdown(Duration::from_millis(100));
        assert_eq!(st.submitted, 1);
        assert_eq!(st.accepted, 0);
        assert_eq!(st.pending_bytes, 12 + 7);
        // A restart finds it.
        let (_, rec) = Spool::open(dir.path(), 16 << 20).unwrap();
        assert_eq!(rec.pending_records, 1);
    }
}
