//! Offline runs: a pcap file through one worker (Suricata's `single` runmode) or through
//! N worker threads fed by the reading thread (Suricata's `autofp`).
//!
//! Multi-worker: the reading thread decodes each frame just far enough to pick its worker
//! ([`dispatch_hash`]: the address pair, so fragments, their rebuilt datagram and the flow
//! all meet in one worker), copies frames into batches (one allocation per batch, batches
//! recycled), and sends them over bounded channels. Offline runs never drop: a full queue
//! makes the reader wait. Workers send their EVE lines to the calling thread, which owns
//! the sink; lines of one flow keep their order (a flow lives in one worker, and a worker's
//! lines arrive in order).

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender, bounded};
use sha2::Digest as _;

use super::dispatch::{Batch, dispatch_hash};
use super::worker::Worker;
use crate::capture::{CaptureError, PcapFile};
use crate::config::{ChecksumMode, SensorConfig};
use crate::decode;
use crate::detect::Engine;
use crate::output::eve::AlertSink;
use crate::reassembly::MemBudget;
use crate::stats::RunStats;

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The capture could not be opened.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Alerts could not be written.
    #[error("writing alerts: {0}")]
    Output(#[from] io::Error),
    /// A worker thread panicked (a bug); the run's results are incomplete.
    #[error("worker thread {0} panicked")]
    WorkerPanicked(usize),
}

/// Options of an offline run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Validate checksums (`-k all`).
    pub checksums: bool,
    /// Show progress on stderr (only when stderr is a terminal).
    pub progress: bool,
    /// Worker threads (1: everything on the calling thread).
    pub workers: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            checksums: false,
            progress: false,
            workers: 1,
        }
    }
}

/// The outcome of an offline run.
#[derive(Debug)]
pub struct RunSummary {
    /// Counters.
    pub stats: RunStats,
    /// Wall time.
    pub elapsed: Duration,
    /// Set when the file ended inside a packet record: the message, after which
    /// everything read so far was processed.
    pub truncated: Option<String>,
}

/// Identifies an offline run for alert IDs: a hash of the file's size and first 64 KiB,
/// so re-running the same file yields the same IDs (and the correlator stores each alert
/// once), while different files differ.
///
/// # Errors
/// The I/O error when the file cannot be read.
pub fn file_stream_id(path: &Path) -> io::Result<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut head = vec![0u8; 1 << 16];
    let n = f.read(&mut head)?;
    let mut h = sha2::Sha256::new();
    h.update(len.to_le_bytes());
    h.update(head.get(..n).unwrap_or_default());
    let d = h.finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(d.get(..8).unwrap_or(&[0; 8]));
    Ok(u64::from_le_bytes(id))
}

/// Progress on stderr, at most twice a second, only on a terminal.
struct Progress {
    on: bool,
    last: Instant,
}

impl Progress {
    fn new(on: bool) -> Self {
        Self {
            on: on && io::stderr().is_terminal(),
            last: Instant::now(),
        }
    }

    fn tick(&mut self, file: &PcapFile, packets: u64, alerts: u64) {
        if !self.on
            || !packets.is_multiple_of(4096)
            || self.last.elapsed() < Duration::from_millis(500)
        {
            return;
        }
        self.last = Instant::now();
        let pct = file.bytes_read() as f64 * 100.0 / file.file_len().max(1) as f64;
        eprint!("\r{pct:5.1}%  {packets} packets  {alerts} alerts");
        let _ = io::stderr().flush();
    }

    fn done(&self) {
        if self.on {
            eprint!("\r\x1b[K");
        }
    }
}

/// Runs a pcap file through the engine.
///
/// # Errors
/// [`PipelineError`] when the file cannot be opened or alerts cannot be written. A
/// truncated file is not an error: see [`RunSummary::truncated`].
pub fn run_pcap(
    engine: &Engine,
    cfg: &SensorConfig,
    path: &Path,
    sink: &mut dyn AlertSink,
    opts: RunOptions,
) -> Result<RunSummary, PipelineError> {
    let start = Instant::now();
    let file = PcapFile::open(path)?;
    let stream_id = file_stream_id(path)?;
    let checksums = match cfg.checksums {
        ChecksumMode::All => true,
        ChecksumMode::None => false,
        ChecksumMode::Auto => opts.checksums,
    };
    let (stats, truncated) = if opts.workers <= 1 {
        run_single(engine, cfg, file, sink, stream_id, checksums, opts.progress)?
    } else {
        run_workers(engine, cfg, file, sink, stream_id, checksums, opts)?
    };
    sink.flush()?;
    Ok(RunSummary {
        stats,
        elapsed: start.elapsed(),
        truncated,
    })
}

fn run_single(
    engine: &Engine,
    cfg: &SensorConfig,
    mut file: PcapFile,
    sink: &mut dyn AlertSink,
    stream_id: u64,
    checksums: bool,
    progress: bool,
) -> Result<(RunStats, Option<String>), PipelineError> {
    let mut worker = Worker::new(engine, cfg, stream_id, checksums);
    let link = file.linktype();
    let mut progress = Progress::new(progress);
    let mut truncated = None;
    let mut pcap_cnt = 0u64;
    loop {
        let frame = match file.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                truncated = Some(e.to_string());
                break;
            }
        };
        pcap_cnt += 1;
        worker.stats.packets += 1;
        worker.stats.bytes += frame.data.len() as u64;
        match decode::decode(link, frame.data, frame.ts, pcap_cnt) {
            Ok(pkt) => worker.process(&pkt, sink)?,
            Err(e) => *worker.stats.decode_errors.entry(e.kind()).or_insert(0) += 1,
        }
        progress.tick(&file, pcap_cnt, worker.alerts_written());
    }
    progress.done();
    worker.finish(sink)?;
    Ok((worker.stats, truncated))
}

/// Lines a worker produced for one batch of packets.
pub(super) type LineBatch = Vec<Vec<u8>>;

/// Collects a worker's EVE lines and ships them to the writing thread per batch. Sending
/// blocks when the writer is behind: alert output never drops.
pub(super) struct ChannelSink {
    pub(super) lines: LineBatch,
    pub(super) tx: Sender<LineBatch>,
}

impl AlertSink for ChannelSink {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.lines.push(line.to_vec());
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.lines.is_empty() {
            let batch = std::mem::take(&mut self.lines);
            self.tx
                .send(batch)
                .map_err(|_| io::Error::other("alert writer stopped"))?;
        }
        Ok(())
    }
}

/// Packets per batch sent to a worker.
pub(super) const BATCH_PACKETS: usize = 64;
/// Batches queued per worker before the reader waits.
const QUEUE_BATCHES: usize = 64;

#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the pieces of a run"
)]
fn run_workers(
    engine: &Engine,
    cfg: &SensorConfig,
    mut file: PcapFile,
    sink: &mut dyn AlertSink,
    stream_id: u64,
    checksums: bool,
    opts: RunOptions,
) -> Result<(RunStats, Option<String>), PipelineError> {
    let n = opts.workers;
    let link = file.linktype();
    let budget = MemBudget::new(cfg.stream.memcap);
    let (line_tx, line_rx) = bounded::<LineBatch>(n * QUEUE_BATCHES);
    let (recycle_tx, recycle_rx) = bounded::<Batch>(n * (QUEUE_BATCHES + 2));
    thread::scope(|scope| {
        let mut senders: Vec<Sender<Batch>> = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for k in 0..n {
            let (tx, rx): (Sender<Batch>, Receiver<Batch>) = bounded(QUEUE_BATCHES);
            senders.push(tx);
            let (line_tx, recycle_tx, budget) =
                (line_tx.clone(), recycle_tx.clone(), budget.clone());
            let ids = (k as u64, n as u64);
            let handle = thread::Builder::new()
                .name(format!("tocsin-worker-{k}"))
                .spawn_scoped(scope, move || -> io::Result<RunStats> {
                    let mut worker =
                        Worker::with_budget(engine, cfg, stream_id, checksums, budget, ids);
                    let mut sink = ChannelSink {
                        lines: Vec::new(),
                        tx: line_tx,
                    };
                    for batch in rx {
                        worker.stats.packets += batch.len() as u64;
                        for p in batch.packets() {
                            match decode::decode(link, p.data, p.ts, p.pcap_cnt) {
                                Ok(pkt) => worker.process(&pkt, &mut sink)?,
                                Err(e) => {
                                    *worker.stats.decode_errors.entry(e.kind()).or_insert(0) += 1;
                                }
                            }
                        }
                        sink.flush()?;
                        let _ = recycle_tx.try_send(batch.cleared());
                    }
                    worker.finish(&mut sink)?;
                    sink.flush()?;
                    Ok(worker.stats)
                })
                .map_err(PipelineError::Output)?;
            handles.push(handle);
        }
        drop(line_tx);
        drop(recycle_tx);
        // The reader runs on a thread of its own; this thread writes lines as they come.
        let reader = scope.spawn(move || {
            let mut pending: Vec<Batch> = (0..n).map(|_| Batch::default()).collect();
            let mut stats = RunStats::default();
            let mut truncated = None;
            let mut pcap_cnt = 0u64;
            let mut progress = Progress::new(opts.progress);
            loop {
                let frame = match file.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        truncated = Some(e.to_string());
                        break;
                    }
                };
                pcap_cnt += 1;
                stats.packets += 1;
                stats.bytes += frame.data.len() as u64;
                let k = dispatch_hash(link, frame.data).map_or(0, |h| (h % n as u64) as usize);
                let Some(slot) = pending.get_mut(k) else {
                    continue;
                };
                slot.push(frame.ts, pcap_cnt, frame.data);
                if slot.len() >= BATCH_PACKETS {
                    let fresh = recycle_rx.try_recv().unwrap_or_default();
                    let full = std::mem::replace(slot, fresh);
                    if senders.get(k).is_some_and(|s| s.send(full).is_err()) {
                        break; // the worker died; its error is reported below
                    }
                }
                progress.tick(&file, pcap_cnt, 0);
            }
            for (k, batch) in pending.into_iter().enumerate() {
                if !batch.is_empty()
                    && let Some(s) = senders.get(k)
                {
                    let _ = s.send(batch);
                }
            }
            drop(senders);
            progress.done();
            (stats, truncated)
        });
        let mut write_err = None;
        for lines in line_rx {
            for l in &lines {
                if let Err(e) = sink.write_line(l) {
                    write_err.get_or_insert(e);
                }
            }
        }
        let (mut stats, truncated) = reader
            .join()
            .map_err(|_| PipelineError::WorkerPanicked(n))?;
        for (k, h) in handles.into_iter().enumerate() {
            let worker_stats = h.join().map_err(|_| PipelineError::WorkerPanicked(k))??;
            // The reader counted packets and bytes; take the rest from the workers.
            let RunStats {
                decode_errors,
                decode_anomalies,
                bad_checksums,
                alerts,
                flows,
                flows_evicted,
                stages,
                packets,
                ..
            } = worker_stats;
            for (name, v) in stages {
                *stats.stages.entry(name).or_insert(0) += v;
            }
            stats.worker_packets.push(packets);
            for (kind, v) in decode_errors {
                *stats.decode_errors.entry(kind).or_insert(0) += v;
            }
            for (kind, v) in decode_anomalies {
                *stats.decode_anomalies.entry(kind).or_insert(0) += v;
            }
            stats.bad_checksums += bad_checksums;
            stats.alerts += alerts;
            stats.flows += flows;
            stats.flows_evicted += flows_evicted;
        }
        if let Some(e) = write_err {
            return Err(PipelineError::Output(e));
        }
        Ok((stats, truncated))
    })
}
