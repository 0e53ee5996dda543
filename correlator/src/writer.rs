//! The writer: one task that owns the dedup and correlation state and is the only path into
//! ClickHouse for alerts.
//!
//! Input: [`Submission`]s (the valid alerts of one request plus a reply channel) over a
//! bounded channel; at most `queue_max_alerts` alerts wait across submissions (beyond it,
//! [`WriterHandle::submit`] answers [`SubmitError::Busy`] → `429`).
//!
//! Per batch (up to `batch_max_alerts`, or what arrived within `batch_max_delay`):
//! 1. drop repeats of an `alert_id` within the batch, and IDs stored recently (in-memory
//!    ring of `recent_ids`), then ask ClickHouse which of the rest are already stored (a
//!    primary-key range read): those are duplicates too, across restarts;
//! 2. apply the new alerts to dedup and correlation;
//! 3. write links, incident versions, then alerts (see [`ClickHouse::store_batch`]);
//! 4. on success, answer every submission with its own accepted/duplicate counts; on
//!    failure, roll both engines back, mark ClickHouse down and answer `Unavailable`, so
//!    the senders retry and nothing is counted twice.
//!
//! Every second the writer also closes idle incidents and writes their final versions.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::IngestConfig;
use crate::correlate::CorrelationEngine;
use crate::dedup::DedupEngine;
use crate::ingest::Alert;
use crate::metrics::Metrics;
use crate::store::rows::{AlertRow, IncidentAlertRow, IncidentRow};
use crate::store::{ClickHouse, StoreError};

/// What a submission got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubmitResult {
    /// Alerts stored by this submission.
    pub accepted: usize,
    /// Alerts already stored (or repeated within the submission).
    pub duplicates: usize,
}

/// Why a submission was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Too many alerts are waiting: retry shortly (`429`).
    #[error("correlator busy: {queued} alerts waiting")]
    Busy {
        /// Alerts waiting.
        queued: i64,
    },
    /// ClickHouse is down or the write failed: retry later (`503`).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The correlator is shutting down (`503`).
    #[error("correlator shutting down")]
    ShuttingDown,
}

/// One request's alerts, waiting to be stored.
#[derive(Debug)]
pub struct Submission {
    alerts: Vec<Alert>,
    reply: oneshot::Sender<Result<SubmitResult, SubmitError>>,
}

/// Cheap handle for request handlers.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Submission>,
    queued: Arc<AtomicI64>,
    max_queue: i64,
    ack_timeout: Duration,
    ch_up: Arc<AtomicBool>,
}

impl WriterHandle {
    /// Hands alerts to the writer and waits until they are stored (or not).
    ///
    /// # Errors
    /// [`SubmitError`]; in every error case nothing of this submission may be assumed
    /// stored, and the sender should retry (duplicates are recognised).
    pub async fn submit(&self, alerts: Vec<Alert>) -> Result<SubmitResult, SubmitError> {
        if alerts.is_empty() {
            return Ok(SubmitResult::default());
        }
        if !self.ch_up.load(Ordering::Relaxed) {
            return Err(SubmitError::Unavailable(
                "ClickHouse is not answering".into(),
            ));
        }
        let n = i64::try_from(alerts.len()).unwrap_or(i64::MAX);
        let before = self.queued.fetch_add(n, Ordering::Relaxed);
        // One oversized submission is let through on an empty queue, else it could never pass.
        if before > 0 && before + n > self.max_queue {
            self.queued.fetch_sub(n, Ordering::Relaxed);
            return Err(SubmitError::Busy { queued: before });
        }
        let (reply, rx) = oneshot::channel();
        if let Err(e) = self.tx.try_send(Submission { alerts, reply }) {
            self.queued.fetch_sub(n, Ordering::Relaxed);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => SubmitError::Busy { queued: before },
                mpsc::error::TrySendError::Closed(_) => SubmitError::ShuttingDown,
            });
        }
        match tokio::time::timeout(self.ack_timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(SubmitError::ShuttingDown),
            Err(_) => Err(SubmitError::Unavailable(format!(
                "not stored within {:?}; retry (duplicates are recognised)",
                self.ack_timeout
            ))),
        }
    }

    /// Whether ClickHouse answered the last write or probe.
    #[must_use]
    pub fn clickhouse_up(&self) -> bool {
        self.ch_up.load(Ordering::Relaxed)
    }
}

/// Remembers recently stored alert IDs (FIFO ring of a fixed size).
#[derive(Debug)]
struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
    cap: usize,
}

impl RecentIds {
    fn new(cap: usize) -> Self {
        Self {
            set: HashSet::with_capacity(cap.min(1 << 20)),
            order: VecDeque::with_capacity(cap.min(1 << 20)),
            cap,
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }

    fn insert(&mut self, id: String) {
        if self.cap == 0 || !self.set.insert(id.clone()) {
            return;
        }
        self.order.push_back(id);
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

/// The writer task's state.
pub struct Writer {
    rx: mpsc::Receiver<Submission>,
    ch: ClickHouse,
    dedup: DedupEngine,
    correlate: CorrelationEngine,
    recent: RecentIds,
    /// Per (agency, `sensor:stream`): highest sequence number known to be stored. Tocsin
    /// alerts above it are new without asking ClickHouse (see `store`).
    watermarks: HashMap<(String, String), u64>,
    pending_rows: Vec<IncidentRow>,
    dir: crate::agency::DirHandle,
    source_first: HashSet<String>,
    cfg: IngestConfig,
    queued: Arc<AtomicI64>,
    ch_up: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

fn now_us() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).unwrap_or(0)
}

/// Builds a writer and its handle.
#[must_use]
pub fn writer(
    ch: ClickHouse,
    dedup: DedupEngine,
    correlate: CorrelationEngine,
    cfg: &IngestConfig,
    ownership: (crate::agency::DirHandle, &crate::config::OwnershipConfig),
    metrics: Arc<Metrics>,
) -> (Writer, WriterHandle) {
    // Channel slots are submissions; the alert count is bounded separately.
    let (tx, rx) = mpsc::channel(cfg.max_concurrent_requests.max(1) * 2);
    let queued = Arc::new(AtomicI64::new(0));
    let ch_up = Arc::new(AtomicBool::new(true));
    let handle = WriterHandle {
        tx,
        queued: queued.clone(),
        max_queue: i64::try_from(cfg.queue_max_alerts).unwrap_or(i64::MAX),
        ack_timeout: cfg.ack_timeout,
        ch_up: ch_up.clone(),
    };
    let w = Writer {
        rx,
        ch,
        dedup,
        correlate,
        recent: RecentIds::new(cfg.recent_ids),
        watermarks: HashMap::new(),
        pending_rows: Vec::new(),
        dir: ownership.0,
        source_first: ownership
            .1
            .source_first_categories
            .iter()
            .cloned()
            .collect(),
        cfg: cfg.clone(),
        queued,
        ch_up,
        metrics,
    };
    (w, handle)
}

impl Writer {
    /// Runs until `cancel` fires and the queue is drained (or the channel closes).
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let first = tokio::select! {
                biased;
                sub = self.rx.recv() => match sub {
                    Some(s) => s,
                    None => break,
                },
                () = cancel.cancelled() => {
                    // Stop taking new work; finish what is queued.
                    self.rx.close();
                    continue;
                }
                _ = tick.tick() => {
                    self.housekeeping().await;
                    continue;
                }
            };
            let mut batch = vec![first];
            let mut n: usize = batch.iter().map(|s| s.alerts.len()).sum();
            let deadline = tokio::time::Instant::now() + self.cfg.batch_max_delay;
            while n < self.cfg.batch_max_alerts {
                tokio::select! {
                    sub = self.rx.recv() => match sub {
                        Some(s) => { n += s.alerts.len(); batch.push(s); }
                        None => break,
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            self.process(batch).await;
        }
        self.housekeeping().await;
    }

    async fn housekeeping(&mut self) {
        let now = now_us();
        self.pending_rows.extend(self.dedup.sweep(now));
        self.pending_rows.extend(self.correlate.sweep(now));
        self.metrics.incidents_open.store(
            i64::try_from(self.dedup.open_count()).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
        if !self.ch_up.load(Ordering::Relaxed) {
            if self.ch.ping().await.is_ok() {
                tracing::info!("ClickHouse answers again; accepting alerts");
                self.ch_up.store(true, Ordering::Relaxed);
                self.metrics.clickhouse_up.store(1, Ordering::Relaxed);
            } else {
                return;
            }
        }
        if !self.pending_rows.is_empty() {
            match self.ch.insert("incidents", &self.pending_rows).await {
                Ok(()) => {
                    Metrics::add(&self.metrics.incident_rows, self.pending_rows.len() as u64);
                    self.pending_rows.clear();
                }
                Err(e) => self.mark_down(&e),
            }
        }
    }

    fn mark_down(&self, e: &StoreError) {
        tracing::warn!(error = %e, retriable = e.is_retriable(), "ClickHouse write failed; answering 503 until it recovers");
        Metrics::add(&self.metrics.store_errors, 1);
        self.ch_up.store(false, Ordering::Relaxed);
        self.metrics.clickhouse_up.store(0, Ordering::Relaxed);
    }

    async fn process(&mut self, mut batch: Vec<Submission>) {
        let total: usize = batch.iter().map(|s| s.alerts.len()).sum();
        let started = Instant::now();
        let result = self.store(&mut batch).await;
        self.queued
            .fetch_sub(i64::try_from(total).unwrap_or(i64::MAX), Ordering::Relaxed);
        match result {
            Ok(per_sub) => {
                Metrics::add(&self.metrics.store_batches, 1);
                Metrics::add(
                    &self.metrics.store_latency_us_sum,
                    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                );
                for (sub, r) in batch.into_iter().zip(per_sub) {
                    Metrics::add(&self.metrics.alerts_accepted, r.accepted as u64);
                    Metrics::add(&self.metrics.alerts_duplicate, r.duplicates as u64);
                    let _ = sub.reply.send(Ok(r));
                }
            }
            Err(e) => {
                self.mark_down(&e);
                for sub in batch {
                    let _ = sub.reply.send(Err(SubmitError::Unavailable(e.to_string())));
                }
            }
        }
    }

    /// Stores the batch; returns per-submission counts.
    async fn store(&mut self, batch: &mut [Submission]) -> Result<Vec<SubmitResult>, StoreError> {
        let mut results = vec![SubmitResult::default(); batch.len()];
        // 1. Repeats within the batch and recently stored IDs. `fresh_flags[s][i]`: alert i
        // of submission s is (so far) new.
        let mut fresh_flags: Vec<Vec<bool>> = Vec::with_capacity(batch.len());
        let stored: HashSet<String> = {
            let mut seen: HashSet<&str> = HashSet::new();
            let mut candidates: Vec<&Alert> = Vec::new();
            for (si, sub) in batch.iter().enumerate() {
                let mut flags = Vec::with_capacity(sub.alerts.len());
                for a in &sub.alerts {
                    let new =
                        seen.insert(a.alert_id.as_str()) && !self.recent.contains(&a.alert_id);
                    if new {
                        candidates.push(a);
                    } else if let Some(r) = results.get_mut(si) {
                        r.duplicates += 1;
                    }
                    flags.push(new);
                }
                fresh_flags.push(flags);
            }
            // 2. Already in ClickHouse (stored before a restart, or by another correlator)?
            // A Tocsin alert whose sequence number is above its stream's stored watermark
            // cannot be; only the others are looked up. Unknown streams get their watermark
            // from ClickHouse once.
            for a in &candidates {
                if let Some((prefix, _)) = tocsin_stream(a) {
                    let key = (a.agency.clone(), prefix.to_owned());
                    if !self.watermarks.contains_key(&key) {
                        let w = self.ch.stream_watermark(&a.agency, prefix).await?;
                        self.watermarks.insert(key, w);
                    }
                }
            }
            let wm = &self.watermarks;
            candidates.retain(|a| match tocsin_stream(a) {
                Some((prefix, seq)) => wm
                    .get(&(a.agency.clone(), prefix.to_owned()))
                    .is_none_or(|&w| seq <= w),
                None => true,
            });
            if candidates.is_empty() {
                HashSet::new()
            } else {
                let mut agencies: Vec<&str> =
                    candidates.iter().map(|a| a.agency.as_str()).collect();
                agencies.sort_unstable();
                agencies.dedup();
                let min = candidates.iter().map(|a| a.ts.secs()).min().unwrap_or(0);
                let max = candidates.iter().map(|a| a.ts.secs()).max().unwrap_or(0);
                let ids: Vec<&str> = candidates.iter().map(|a| a.alert_id.as_str()).collect();
                self.ch
                    .existing_alert_ids(&agencies, min, max, &ids)
                    .await?
                    .into_iter()
                    .collect()
            }
        };
        let t_apply = Instant::now();
        let mut fresh: Vec<Alert> = Vec::new();
        let mut owner: Vec<usize> = Vec::new();
        for (si, (sub, flags)) in batch.iter_mut().zip(fresh_flags).enumerate() {
            for (a, new) in std::mem::take(&mut sub.alerts).into_iter().zip(flags) {
                if !new {
                    continue;
                }
                if stored.contains(&a.alert_id) {
                    if let Some(r) = results.get_mut(si) {
                        r.duplicates += 1;
                    }
                    self.recent.insert(a.alert_id);
                } else {
                    fresh.push(a);
                    owner.push(si);
                }
            }
        }
        if fresh.is_empty() && self.pending_rows.is_empty() {
            return Ok(results);
        }
        set_owners(&mut fresh, &self.dir.get(), &self.source_first);
        // 3. Dedup and correlation.
        let now = now_us();
        let now_s = now.div_euclid(1_000_000);
        let dd = self.dedup.apply(&fresh, now);
        let cc = self.correlate.apply(&fresh, now);
        let alert_rows: Vec<AlertRow> = fresh
            .iter()
            .zip(&dd.incident_of)
            .map(|(a, id)| AlertRow::new(a, now_s, id))
            .collect();
        let mut links: Vec<IncidentAlertRow> = fresh
            .iter()
            .zip(&dd.incident_of)
            .map(|(a, id)| link_row(id, &a.alert_id, &a.agency, a.ts.0, 0, now_s))
            .collect();
        links.extend(cc.links.iter().map(|l| {
            link_row(
                &l.incident_id,
                &l.alert_id,
                &l.agency,
                l.ts_us,
                l.step,
                now_s,
            )
        }));
        let mut incidents = dd.rows;
        incidents.extend(cc.rows);
        let n_pending = self.pending_rows.len();
        incidents.extend(self.pending_rows.iter().cloned());
        let apply_ms = t_apply.elapsed().as_millis();
        // 4. Store, or undo.
        let t_store = Instant::now();
        if let Err(e) = self.ch.store_batch(&alert_rows, &links, &incidents).await {
            self.correlate.rollback(cc.undo);
            self.dedup.rollback(dd.undo);
            return Err(e);
        }
        tracing::debug!(
            alerts = alert_rows.len(),
            incidents = incidents.len(),
            apply_ms,
            store_ms = t_store.elapsed().as_millis(),
            "batch stored"
        );
        self.pending_rows.drain(..n_pending);
        Metrics::add(&self.metrics.incident_rows, incidents.len() as u64);
        for a in &fresh {
            if let Some((prefix, seq)) = tocsin_stream(a)
                && let Some(w) = self
                    .watermarks
                    .get_mut(&(a.agency.clone(), prefix.to_owned()))
            {
                *w = (*w).max(seq);
            }
        }
        for (a, si) in fresh.into_iter().zip(owner) {
            if let Some(r) = results.get_mut(si) {
                r.accepted += 1;
            }
            self.recent.insert(a.alert_id);
        }
        Ok(results)
    }
}

/// Sets each alert's owning agency: the directory's owner of its destination (source first
/// for `source_first` categories), else of the other address, else the sensor's agency.
pub fn set_owners(
    alerts: &mut [Alert],
    dir: &crate::agency::Directory,
    source_first: &HashSet<String>,
) {
    if dir.is_empty() {
        return;
    }
    for a in alerts {
        let src_first = source_first.contains(&a.category);
        if let Some(o) = dir.owner_for(&a.src_ip, &a.dest_ip, src_first) {
            o.clone_into(&mut a.owner);
        }
    }
}

/// `(sensor:stream, seq)` of a Tocsin alert ID; `None` for derived (Suricata) IDs.
fn tocsin_stream(a: &Alert) -> Option<(&str, u64)> {
    if a.source != crate::ingest::SourceFormat::Tocsin {
        return None;
    }
    let (prefix, seq) = a.alert_id.rsplit_once(':')?;
    Some((prefix, seq.parse().ok()?))
}

fn link_row<'a>(
    incident: &Uuid,
    alert_id: &'a str,
    agency: &'a str,
    ts_us: i64,
    step: u8,
    now_s: i64,
) -> IncidentAlertRow<'a> {
    IncidentAlertRow {
        incident_id: *incident,
        alert_id,
        agency,
        ts: ts_us.div_euclid(1_000_000),
        ts_us,
        step,
        received_at: now_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_ring_forgets_oldest() {
        let mut r = RecentIds::new(2);
        r.insert("a".into());
        r.insert("b".into());
        r.insert("a".into());
        assert!(r.contains("a") && r.contains("b"));
        r.insert("c".into());
        assert!(!r.contains("a"));
        assert!(r.contains("b") && r.contains("c"));
    }
}
