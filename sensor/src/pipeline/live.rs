//! Live runs: one capture thread → flow-hash dispatch → N detection workers → one writer.
//!
//! Input: an opened [`LiveCapture`], an [`Engine`], and a stop flag the caller sets (on
//! SIGINT/SIGTERM). Output: alert lines and periodic `stats` records to the caller's
//! [`AlertSink`], and a [`LiveSummary`] with the final counters.
//!
//! Threads and edges:
//! - The capture thread reads frames, picks each one's worker with [`dispatch_hash`] (the
//!   address pair, as offline), and copies it into that worker's pending [`Batch`]. A batch
//!   goes out when it holds [`BATCH_PACKETS`] frames, when the link goes idle, or after
//!   [`FLUSH_EVERY`], so alerts on a quiet link are not held back.
//! - Capture → worker queues are bounded (`queue_batches` batches each) and never wait: the
//!   NIC does not, so a full queue drops the batch and counts its packets per worker
//!   (`capture.queue_drops`). The kernel ring's own drops are read from libpcap
//!   (`capture.kernel_drops`, `kernel_ifdrops`).
//! - Worker → writer: EVE lines per batch over a bounded channel that blocks (alert output
//!   never drops). A flow lives in one worker, so its lines stay in order.
//!
//! Stats: every `stats_interval` the writer raises an epoch; each thread publishes a copy
//! of its counters into its slot when it sees the new epoch (workers check after every
//! batch and every [`IDLE_TICK`] when idle), and the writer sums the slots into one `stats`
//! record. No counter is shared on the hot path.
//!
//! Shutdown: when `stop` is set, the capture thread stops reading, sends its pending
//! batches (waiting, so nothing captured is lost), reads the kernel counters one last time
//! and drops its senders; workers drain their queues, end their flows (flow-end inspection)
//! and exit; the writer writes what remains. The run also ends when the interface goes
//! away ([`LiveSummary::capture_error`]), with the same draining.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};

use super::dispatch::{Batch, dispatch_hash};
use super::offline::{BATCH_PACKETS, ChannelSink, LineBatch, PipelineError};
use super::worker::Worker;
use crate::Timestamp;
use crate::capture::live::LiveCapture;
use crate::config::{ChecksumMode, SensorConfig};
use crate::decode;
use crate::detect::Engine;
use crate::output::eve::{AlertSink, stats_record};
use crate::reassembly::MemBudget;
use crate::stats::{CaptureCounters, MemoryGauges, RunStats};

/// Longest time a partly filled batch waits in the capture thread.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// How often an idle worker wakes to answer a stats request.
pub const IDLE_TICK: Duration = Duration::from_millis(50);
/// Longest the writer waits for every thread to publish its counters for a record.
const SNAPSHOT_WAIT: Duration = Duration::from_millis(500);

/// Options of a live run.
#[derive(Debug, Clone, Copy)]
pub struct LiveOptions {
    /// Detection worker threads (at least 1; the capture thread comes on top).
    pub workers: usize,
    /// Batches (of up to [`BATCH_PACKETS`] frames) queued per worker before the capture
    /// thread drops.
    pub queue_batches: usize,
    /// Period of `stats` records; `None`: only the final one (written by the caller).
    pub stats_interval: Option<Duration>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            workers: 1,
            queue_batches: 64,
            stats_interval: Some(Duration::from_secs(30)),
        }
    }
}

/// The outcome of a live run.
#[derive(Debug)]
pub struct LiveSummary {
    /// Final counters, including [`RunStats::capture`] and [`RunStats::memory`].
    pub stats: RunStats,
    /// Wall time from start to the last line written.
    pub elapsed: Duration,
    /// Periodic `stats` records written.
    pub stats_records: u64,
    /// Set when the capture ended by itself (interface down or gone) rather than by the
    /// stop flag: the message. Everything captured before it was inspected.
    pub capture_error: Option<String>,
}

/// What the capture thread publishes.
#[derive(Debug, Default)]
struct CaptureSlot {
    epoch: u64,
    packets: u64,
    bytes: u64,
    counters: CaptureCounters,
}

/// What a worker publishes.
#[derive(Debug, Default)]
struct WorkerSlot {
    epoch: u64,
    stats: RunStats,
    busy_us: u64,
    defrag_bytes: u64,
}

/// Slots the threads publish into when the writer raises `epoch`.
#[derive(Debug)]
struct Shared {
    epoch: AtomicU64,
    capture: Mutex<CaptureSlot>,
    workers: Vec<Mutex<WorkerSlot>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned slot only means a thread panicked mid-copy; the counters are still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs live traffic from `capture` through the engine until `stop` is set or the capture
/// ends, writing alerts and periodic `stats` records to `sink`.
///
/// # Errors
/// [`PipelineError::Output`] when alerts cannot be written, or a thread cannot be started;
/// [`PipelineError::WorkerPanicked`] when a thread panicked. A capture that ends (interface
/// removed) is not an error: see [`LiveSummary::capture_error`].
pub fn run_live(
    engine: &Engine,
    cfg: &SensorConfig,
    capture: LiveCapture,
    sink: &mut dyn AlertSink,
    opts: LiveOptions,
    stop: &AtomicBool,
) -> Result<LiveSummary, PipelineError> {
    let start = Instant::now();
    let n = opts.workers.max(1);
    let depth = opts.queue_batches.max(1);
    // Checksums: `auto` validates on live traffic (a tap sees what the wire carries).
    let checksums = cfg.checksums != ChecksumMode::None;
    let stream_id = live_stream_id(capture.interface());
    let budget = MemBudget::new(cfg.stream.memcap);
    let shared = Shared {
        epoch: AtomicU64::new(0),
        capture: Mutex::new(CaptureSlot::default()),
        workers: (0..n).map(|_| Mutex::new(WorkerSlot::default())).collect(),
    };
    let (line_tx, line_rx) = bounded::<LineBatch>(n * depth);
    let (recycle_tx, recycle_rx) = bounded::<Batch>(n * (depth + 2));
    let link = capture.linktype();
    thread::scope(|scope| {
        let shared = &shared;
        let mut senders: Vec<Sender<Batch>> = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for k in 0..n {
            let (tx, rx): (Sender<Batch>, Receiver<Batch>) = bounded(depth);
            senders.push(tx);
            let (line_tx, recycle_tx, budget) =
                (line_tx.clone(), recycle_tx.clone(), budget.clone());
            let ids = (k as u64, n as u64);
            let handle = thread::Builder::new()
                .name(format!("tocsin-worker-{k}"))
                .spawn_scoped(scope, move || -> io::Result<(RunStats, u64)> {
                    let mut worker =
                        Worker::with_budget(engine, cfg, stream_id, checksums, budget, ids);
                    let mut sink = ChannelSink {
                        lines: Vec::new(),
                        tx: line_tx,
                    };
                    let mut busy = Duration::ZERO;
                    let mut seen_epoch = 0;
                    loop {
                        match rx.recv_timeout(IDLE_TICK) {
                            Ok(batch) => {
                                let t = Instant::now();
                                worker.stats.packets += batch.len() as u64;
                                for p in batch.packets() {
                                    match decode::decode(link, p.data, p.ts, p.pcap_cnt) {
                                        Ok(pkt) => worker.process(&pkt, &mut sink)?,
                                        Err(e) => {
                                            *worker
                                                .stats
                                                .decode_errors
                                                .entry(e.kind())
                                                .or_insert(0) += 1;
                                        }
                                    }
                                }
                                busy += t.elapsed();
                                sink.flush()?;
                                let _ = recycle_tx.try_send(batch.cleared());
                            }
                            Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Disconnected) => break,
                        }
                        let want = shared.epoch.load(Ordering::Acquire);
                        if want != seen_epoch {
                            seen_epoch = want;
                            if let Some(slot) = shared.workers.get(k) {
                                let mut slot = lock(slot);
                                slot.stats = worker.snapshot();
                                slot.busy_us = duration_us(busy);
                                slot.defrag_bytes = worker.defrag_bytes();
                                slot.epoch = want;
                            }
                        }
                    }
                    let t = Instant::now();
                    worker.finish(&mut sink)?;
                    busy += t.elapsed();
                    sink.flush()?;
                    Ok((worker.stats, duration_us(busy)))
                })
                .map_err(PipelineError::Output)?;
            handles.push(handle);
        }
        drop(line_tx);
        drop(recycle_tx);
        let reader = thread::Builder::new()
            .name("tocsin-capture".into())
            .spawn_scoped(scope, move || {
                capture_loop(capture, link, senders, &recycle_rx, shared, stop)
            })
            .map_err(PipelineError::Output)?;

        // This thread writes lines as they come and a stats record every interval.
        let mut write_err = None;
        let mut write = |lines: &LineBatch, sink: &mut dyn AlertSink| {
            for l in lines {
                if let Err(e) = sink.write_line(l) {
                    write_err.get_or_insert(e);
                }
            }
        };
        let mut next_stats = opts.stats_interval.map(|i| start + i);
        let mut records = 0u64;
        loop {
            let wait = next_stats.map_or(Duration::from_millis(200), |t| {
                t.saturating_duration_since(Instant::now())
            });
            match line_rx.recv_timeout(wait) {
                Ok(lines) => write(&lines, sink),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let (Some(due), Some(every)) = (next_stats, opts.stats_interval) else {
                continue;
            };
            if Instant::now() < due {
                continue;
            }
            // Raise the epoch, keep writing lines while the threads answer.
            let want = shared.epoch.fetch_add(1, Ordering::AcqRel) + 1;
            let asked = Instant::now();
            while asked.elapsed() < SNAPSHOT_WAIT && !all_published(shared, want) {
                if let Ok(lines) = line_rx.recv_timeout(Duration::from_millis(5)) {
                    write(&lines, sink);
                }
            }
            let snap = sum_slots(shared, &budget);
            let elapsed = start.elapsed();
            let rec = stats_record(now_ts(), &snap, elapsed, &cfg_sensor(cfg));
            sink.write_stats(rec.to_string().as_bytes())?;
            sink.flush()?;
            records += 1;
            tracing::info!(
                packets = snap.packets,
                alerts = snap.alerts,
                dropped = snap.dropped_total(),
                flows_active = snap.flows_active,
                "stats: {}",
                snap.summary(elapsed)
            );
            // Skip periods missed while the writer was busy rather than bunching records.
            let mut next = due + every;
            while next <= Instant::now() {
                next += every;
            }
            next_stats = Some(next);
        }
        let capture_error = reader
            .join()
            .map_err(|_| PipelineError::WorkerPanicked(n))?;
        let mut stats = {
            let c = lock(&shared.capture);
            RunStats {
                packets: c.packets,
                bytes: c.bytes,
                capture: Some(c.counters.clone()),
                ..RunStats::default()
            }
        };
        let mut defrag_bytes = 0;
        for (k, h) in handles.into_iter().enumerate() {
            let (worker_stats, busy_us) =
                h.join().map_err(|_| PipelineError::WorkerPanicked(k))??;
            stats.merge_worker(&worker_stats, busy_us);
            if let Some(slot) = shared.workers.get(k) {
                defrag_bytes += lock(slot).defrag_bytes;
            }
        }
        stats.memory = Some(MemoryGauges {
            rss_bytes: MemoryGauges::process_rss(),
            stream_bytes: budget.used() as u64,
            stream_memcap: budget.cap() as u64,
            defrag_bytes,
        });
        if let Some(e) = write_err {
            return Err(PipelineError::Output(e));
        }
        sink.flush()?;
        Ok(LiveSummary {
            stats,
            elapsed: start.elapsed(),
            stats_records: records,
            capture_error,
        })
    })
}

/// Whether every thread has published for epoch `want`.
fn all_published(shared: &Shared, want: u64) -> bool {
    lock(&shared.capture).epoch >= want && shared.workers.iter().all(|w| lock(w).epoch >= want)
}

/// One snapshot from the latest published slots.
fn sum_slots(shared: &Shared, budget: &MemBudget) -> RunStats {
    let c = lock(&shared.capture);
    let mut stats = RunStats {
        packets: c.packets,
        bytes: c.bytes,
        capture: Some(c.counters.clone()),
        ..RunStats::default()
    };
    drop(c);
    let mut defrag_bytes = 0;
    for w in &shared.workers {
        let w = lock(w);
        stats.merge_worker(&w.stats, w.busy_us);
        defrag_bytes += w.defrag_bytes;
    }
    stats.memory = Some(MemoryGauges {
        rss_bytes: MemoryGauges::process_rss(),
        stream_bytes: budget.used() as u64,
        stream_memcap: budget.cap() as u64,
        defrag_bytes,
    });
    stats
}

fn cfg_sensor(cfg: &SensorConfig) -> tocsin_eve::SensorInfo {
    tocsin_eve::SensorInfo {
        id: cfg.sensor.id.clone(),
        agency: cfg.sensor.agency.clone(),
    }
}

/// The wall clock as an EVE timestamp.
fn now_ts() -> Timestamp {
    let us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    Timestamp(i64::try_from(us).unwrap_or(i64::MAX))
}

fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Identifies a live run for alert IDs: start time and interface, so two runs (or two
/// sensors' interfaces) never share IDs.
fn live_stream_id(iface: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = ahash::RandomState::with_seeds(1, 2, 3, 4).build_hasher();
    h.write(iface.as_bytes());
    h.write_i64(now_ts().0);
    h.finish()
}

/// Where the capture thread sends frames, and what it counts on the way.
struct Dispatcher<'a> {
    senders: Vec<Sender<Batch>>,
    pending: Vec<Batch>,
    recycle: &'a Receiver<Batch>,
    queue_dropped: Vec<u64>,
    /// Set when a worker has gone (it failed; its error is reported by the join).
    broken: bool,
}

impl Dispatcher<'_> {
    /// Hands worker `k`'s pending batch over, dropping it (counted) if the queue is full.
    fn send_or_drop(&mut self, k: usize) {
        let (Some(slot), Some(tx)) = (self.pending.get_mut(k), self.senders.get(k)) else {
            return;
        };
        if slot.is_empty() {
            return;
        }
        let fresh = self.recycle.try_recv().unwrap_or_default();
        let full = std::mem::replace(slot, fresh);
        match tx.try_send(full) {
            Ok(()) => {}
            Err(TrySendError::Full(lost)) => {
                if let Some(d) = self.queue_dropped.get_mut(k) {
                    *d += lost.len() as u64;
                }
                // Keep the dropped batch's allocation for the next frames.
                *slot = lost.cleared();
            }
            Err(TrySendError::Disconnected(_)) => self.broken = true,
        }
    }

    fn flush_all(&mut self) {
        for k in 0..self.pending.len() {
            self.send_or_drop(k);
        }
    }

    /// At shutdown: send what is pending, waiting for room (nothing captured is lost).
    fn drain_blocking(&mut self) {
        for (slot, tx) in self.pending.iter_mut().zip(&self.senders) {
            if !slot.is_empty() {
                let _ = tx.send(std::mem::take(slot));
            }
        }
    }
}

/// The capture thread. Returns the capture's error message when it ended by itself.
fn capture_loop(
    mut capture: LiveCapture,
    link: decode::LinkType,
    senders: Vec<Sender<Batch>>,
    recycle: &Receiver<Batch>,
    shared: &Shared,
    stop: &AtomicBool,
) -> Option<String> {
    let n = senders.len();
    let mut d = Dispatcher {
        senders,
        pending: (0..n).map(|_| Batch::default()).collect(),
        recycle,
        queue_dropped: vec![0; n],
        broken: false,
    };
    let (mut packets, mut bytes, mut truncated, mut pcap_cnt) = (0u64, 0u64, 0u64, 0u64);
    let mut last_flush = Instant::now();
    let mut seen_epoch = 0;
    let mut ended = None;
    let publish = |capture: &mut LiveCapture,
                   d: &Dispatcher<'_>,
                   packets: u64,
                   bytes: u64,
                   truncated: u64,
                   epoch: u64| {
        let kernel = match capture.stats() {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        };
        let mut slot = lock(&shared.capture);
        slot.packets = packets;
        slot.bytes = bytes;
        if let Some(k) = kernel {
            slot.counters.kernel_received = k.received;
            slot.counters.kernel_dropped = k.dropped;
            slot.counters.if_dropped = k.if_dropped;
        }
        slot.counters.queue_dropped.clone_from(&d.queue_dropped);
        slot.counters.truncated = truncated;
        slot.epoch = epoch;
    };
    while !stop.load(Ordering::Relaxed) && !d.broken {
        match capture.next_frame() {
            Ok(Some(frame)) => {
                pcap_cnt += 1;
                packets += 1;
                bytes += frame.data.len() as u64;
                if (frame.data.len() as u64) < u64::from(frame.wire_len) {
                    truncated += 1;
                }
                let k = dispatch_hash(link, frame.data).map_or(0, |h| (h % n as u64) as usize);
                if let Some(slot) = d.pending.get_mut(k) {
                    slot.push(frame.ts, pcap_cnt, frame.data);
                    if slot.len() >= BATCH_PACKETS {
                        d.send_or_drop(k);
                    }
                }
            }
            // Idle link: hand partial batches over so their alerts come out now.
            Ok(None) => {
                d.flush_all();
                last_flush = Instant::now();
            }
            Err(e) => {
                tracing::error!("{e}");
                ended = Some(e.to_string());
                break;
            }
        }
        if last_flush.elapsed() >= FLUSH_EVERY {
            d.flush_all();
            last_flush = Instant::now();
        }
        let want = shared.epoch.load(Ordering::Acquire);
        if want != seen_epoch {
            seen_epoch = want;
            publish(&mut capture, &d, packets, bytes, truncated, want);
        }
    }
    d.drain_blocking();
    publish(
        &mut capture,
        &d,
        packets,
        bytes,
        truncated,
        shared.epoch.load(Ordering::Acquire),
    );
    drop(d);
    ended
}
