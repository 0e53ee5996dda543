//! Wiring: capture → decode → flow → detect → output. No protocol logic lives here.
//!
//! A [`Worker`] owns a flow table and detection scratch space and processes decoded
//! packets in order; nothing in it is shared, so several workers can run on separate
//! threads with packets split by [`crate::flow::FlowKey::hash`]. [`run_pcap`] drives one
//! worker over a pcap file (Suricata's `single` runmode).

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use sha2::Digest as _;
use tocsin_eve::{AlertId, SensorInfo};

use crate::capture::{CaptureError, PcapFile};
use crate::config::{ChecksumMode, SensorConfig};
use crate::decode::{self, Packet};
use crate::detect::{Alert, DetectThread, Engine, FlowDetect, PacketInput};
use crate::flow::{Flow, FlowTable};
use crate::output::eve::{AlertContext, AlertSink, alert_record};
use crate::stats::RunStats;

/// Per-flow state of the stages after the flow table.
#[derive(Debug, Default)]
pub struct FlowExt {
    /// Detection state (flowbits, ...).
    pub detect: FlowDetect,
    /// TCP sequence space used per direction (SYN/FIN count one, like relative sequence
    /// numbers): what `stream_size` compares.
    pub seq_space: [u64; 2],
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The capture could not be opened.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Alerts could not be written.
    #[error("writing alerts: {0}")]
    Output(#[from] io::Error),
}

/// Processes decoded packets for a set of flows.
#[derive(Debug)]
pub struct Worker<'e> {
    engine: &'e Engine,
    flows: FlowTable<FlowExt>,
    detect: DetectThread,
    alerts: Vec<Alert>,
    ended: Vec<Flow<FlowExt>>,
    sensor: SensorInfo,
    stream_id: u64,
    seq: u64,
    checksums: bool,
    line: Vec<u8>,
    /// Counters.
    pub stats: RunStats,
}

impl<'e> Worker<'e> {
    /// A worker for `engine`. `stream_id` identifies the capture run in alert IDs.
    #[must_use]
    pub fn new(engine: &'e Engine, cfg: &SensorConfig, stream_id: u64, checksums: bool) -> Self {
        Self {
            engine,
            flows: FlowTable::new(cfg.flow.clone()),
            detect: DetectThread::new(),
            alerts: Vec::new(),
            ended: Vec::new(),
            sensor: SensorInfo {
                id: cfg.sensor.id.clone(),
                agency: cfg.sensor.agency.clone(),
            },
            stream_id,
            seq: 0,
            checksums,
            line: Vec::with_capacity(1024),
            stats: RunStats::default(),
        }
    }

    /// Processes one decoded packet, writing its alerts to `sink`.
    ///
    /// # Errors
    /// An I/O error from the sink.
    pub fn process(&mut self, pkt: &Packet<'_>, sink: &mut dyn AlertSink) -> io::Result<()> {
        if let Some(a) = pkt.anomaly {
            *self.stats.decode_anomalies.entry(a.kind()).or_insert(0) += 1;
        }
        if self.checksums && !pkt.checksums_valid() {
            self.stats.bad_checksums += 1;
            return Ok(());
        }
        self.flows.expire(pkt.ts, &mut self.ended);
        self.ended.clear();
        let engine = self.engine;
        let lookup = self
            .flows
            .lookup(pkt, |_| FlowExt::default(), &mut self.ended);
        if lookup.created {
            self.stats.flows += 1;
        }
        let flow = lookup.flow;
        let dir = lookup.dir;
        if let Some(t) = pkt.tcp() {
            use crate::decode::tcpflag::{FIN, SYN};
            let used = pkt.payload.len() as u64
                + u64::from(t.flags & SYN != 0)
                + u64::from(t.flags & FIN != 0);
            if let Some(s) = flow.ext.seq_space.get_mut(dir.index()) {
                *s += used;
            }
        }
        let flow_id = flow.id;
        let established = flow.is_established();
        self.alerts.clear();
        let mut input = PacketInput {
            pkt,
            dir,
            flow_id,
            established,
            app_proto: None,
            stream_bytes: flow.ext.seq_space,
            stream: None,
            in_stream: false,
            reassembled_frag: false,
            flow: &mut flow.ext.detect,
        };
        engine.inspect_packet(&mut self.detect, &mut input, &mut self.alerts);
        if self.alerts.is_empty() {
            return Ok(());
        }
        let flowbits: Vec<&str> = flow
            .ext
            .detect
            .bits()
            .iter()
            .map(|&b| engine.flowbit_name(b))
            .collect();
        for alert in &self.alerts {
            self.seq += 1;
            let ctx = AlertContext {
                pkt,
                flow_id,
                dir,
                app_proto: None,
                flowbits: flowbits.clone(),
                app_meta: None,
            };
            let id = AlertId {
                sensor: self.sensor.id.clone(),
                stream: self.stream_id,
                seq: self.seq,
            };
            if let Some(rec) = alert_record(engine, alert, &ctx, &self.sensor, &id) {
                self.line.clear();
                serde_json::to_writer(&mut self.line, &rec).map_err(io::Error::other)?;
                sink.write_line(&self.line)?;
                self.stats.alerts += 1;
            }
        }
        Ok(())
    }

    /// Ends all flows (end of input).
    pub fn finish(&mut self) {
        self.flows.drain(&mut self.ended);
        self.ended.clear();
        let fs = self.flows.stats();
        self.stats.flows_evicted = fs.evicted;
    }
}

/// Options of an offline run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Validate checksums (`-k all`).
    pub checksums: bool,
    /// Show progress on stderr (only when stderr is a terminal).
    pub progress: bool,
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

/// Runs one worker over a pcap file.
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
    let mut file = PcapFile::open(path)?;
    let stream_id = file_stream_id(path)?;
    let checksums = match cfg.checksums {
        ChecksumMode::All => true,
        ChecksumMode::None => false,
        ChecksumMode::Auto => opts.checksums,
    };
    let mut worker = Worker::new(engine, cfg, stream_id, checksums);
    let link = file.linktype();
    let progress = opts.progress && io::stderr().is_terminal();
    let mut last_progress = Instant::now();
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
        if progress
            && pcap_cnt.is_multiple_of(4096)
            && last_progress.elapsed() > Duration::from_millis(500)
        {
            last_progress = Instant::now();
            let pct = file.bytes_read() as f64 * 100.0 / file.file_len().max(1) as f64;
            eprint!(
                "\r{pct:5.1}%  {} packets  {} alerts",
                worker.stats.packets, worker.stats.alerts
            );
            let _ = io::stderr().flush();
        }
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    worker.finish();
    sink.flush()?;
    Ok(RunSummary {
        stats: worker.stats,
        elapsed: start.elapsed(),
        truncated,
    })
}
