//! Wiring: capture → decode → defrag → flow → reassembly → app layer → detect → output.
//! No protocol logic lives here.
//!
//! A [`Worker`] owns a flow table, a defragmenter, a reassembly context and detection
//! scratch space, and processes decoded packets in order; nothing in it is shared, so
//! several workers can run on separate threads with packets split by
//! [`crate::flow::FlowKey::hash`]. [`run_pcap`] drives one worker over a pcap file
//! (Suricata's `single` runmode).
//!
//! Per packet: a fragment is inspected as an IP packet, then handed to the defragmenter;
//! a rebuilt datagram is decoded and processed like a captured packet. TCP packets go
//! through their session's reassembly; data released (ACKed by the other side, as in
//! Suricata's IDS mode) is fed to the app layer, UDP payloads go to it directly. Detection
//! then runs on the packet with the raw stream chunk ready for its direction, and on the
//! flow's transactions. When a flow ends (timeout, eviction, end of input), its streams are
//! flushed and inspected one last time through pseudo packets, as Suricata does at flow
//! timeout (`pkt_src: "stream (flow timeout)"`).

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use sha2::Digest as _;
use tocsin_eve::{AlertId, SensorInfo};

use crate::Direction;
use crate::applayer::{AppLayer, AppLayerConfig, AppProto};
use crate::capture::{CaptureError, PcapFile};
use crate::config::{ChecksumMode, SensorConfig};
use crate::decode::{
    self, IpLayer, IpVersion, Packet, TcpHeader, Transport, UdpHeader, ipproto, tcpflag,
};
use crate::defrag::Defragmenter;
use crate::detect::{Alert, DetectThread, Engine, FlowDetect, PacketInput};
use crate::flow::{Flow, FlowTable};
use crate::output::eve::{AlertContext, AlertSink, alert_record};
use crate::reassembly::{AppChunk, Reassembler, TcpSession};
use crate::stats::RunStats;

/// Per-flow state of the stages after the flow table.
#[derive(Debug)]
pub struct FlowExt {
    /// Detection state (flowbits, transaction progress).
    pub detect: FlowDetect,
    /// TCP reassembly (TCP flows only).
    pub tcp: Option<TcpSession>,
    /// App layer (TCP and UDP flows).
    pub app: Option<AppLayer>,
    /// Directions whose end was reported to the app layer (index: [`Direction::index`]).
    pub app_closed: [bool; 2],
    /// Per direction, the highest transaction id whose completion triggered raw stream
    /// inspection.
    pub raw_triggered: [Option<u64>; 2],
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
    defrag: Defragmenter,
    reasm: Reassembler,
    app_cfg: AppLayerConfig,
    detect: DetectThread,
    alerts: Vec<Alert>,
    ended: Vec<Flow<FlowExt>>,
    out: AlertWriter<'e>,
    checksums: bool,
    /// Counters.
    pub stats: RunStats,
}

/// Turns engine alerts into EVE lines with stable IDs.
#[derive(Debug)]
struct AlertWriter<'e> {
    engine: &'e Engine,
    sensor: SensorInfo,
    stream_id: u64,
    seq: u64,
    line: Vec<u8>,
    written: u64,
}

/// Where an alert's packet came from, for `pkt_src`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Wire,
    FlowEnd,
}

impl<'e> Worker<'e> {
    /// A worker for `engine`. `stream_id` identifies the capture run in alert IDs.
    #[must_use]
    pub fn new(engine: &'e Engine, cfg: &SensorConfig, stream_id: u64, checksums: bool) -> Self {
        let mut flow_cfg = cfg.flow.clone();
        flow_cfg.midstream = cfg.stream.midstream;
        Self {
            engine,
            flows: FlowTable::new(flow_cfg),
            defrag: Defragmenter::new(cfg.defrag.clone()),
            reasm: Reassembler::new(cfg.stream.clone()),
            app_cfg: cfg.app_layer.clone(),
            detect: DetectThread::new(),
            alerts: Vec::new(),
            ended: Vec::new(),
            out: AlertWriter {
                engine,
                sensor: SensorInfo {
                    id: cfg.sensor.id.clone(),
                    agency: cfg.sensor.agency.clone(),
                },
                stream_id,
                seq: 0,
                line: Vec::with_capacity(1024),
                written: 0,
            },
            checksums,
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
        self.end_flows(sink)?;
        if pkt.ip.frag.is_none() {
            return self.inspect(pkt, false, sink);
        }
        // The fragment itself is a packet IP-level rules see (fragbits, ttl, ...).
        self.inspect(pkt, false, sink)?;
        let Some(datagram) = self.defrag.process(pkt) else {
            return Ok(());
        };
        match decode::decode_ip(&datagram, pkt.vlan, pkt.ts, pkt.pcap_cnt) {
            // A rebuilt datagram that is itself a fragment (nested IPv6 fragmentation) is
            // not fed back: one level is what hosts accept.
            Ok(whole) if whole.ip.frag.is_none() => self.inspect(&whole, true, sink),
            Ok(_) => Ok(()),
            Err(e) => {
                *self.stats.decode_errors.entry(e.kind()).or_insert(0) += 1;
                Ok(())
            }
        }
    }

    /// Flow lookup, reassembly, app layer and detection for one (possibly rebuilt) packet.
    fn inspect(
        &mut self,
        pkt: &Packet<'_>,
        reassembled: bool,
        sink: &mut dyn AlertSink,
    ) -> io::Result<()> {
        let engine = self.engine;
        let app_cfg = &self.app_cfg;
        let reasm = &self.reasm;
        let lookup = self.flows.lookup(
            pkt,
            |key| FlowExt {
                detect: FlowDetect::default(),
                tcp: (key.proto == ipproto::TCP).then(|| reasm.new_session()),
                app: None,
                app_closed: [false; 2],
                raw_triggered: [None; 2],
            },
            &mut self.ended,
        );
        if lookup.created {
            self.stats.flows += 1;
        }
        let flow = lookup.flow;
        let dir = lookup.dir;
        let (flow_id, established) = (flow.id, flow.is_established());
        let ext = &mut flow.ext;
        if ext.app.is_none() && matches!(pkt.l4, Transport::Tcp(_) | Transport::Udp(_)) {
            ext.app = Some(AppLayer::new(
                app_cfg,
                flow.proto,
                flow.server_port,
                flow.client_port,
            ));
        }
        // Reassembly and app-layer parsing.
        let mut in_stream = false;
        match (&pkt.l4, ext.tcp.as_mut()) {
            (Transport::Tcp(t), Some(session)) => {
                let verdict = session.on_packet(&mut self.reasm, dir, t, pkt.payload);
                in_stream = verdict.stream_add;
                if let Some(app) = ext.app.as_mut() {
                    // An ACK in one direction releases the other direction's data.
                    for d in [dir.reverse(), dir] {
                        feed_app(session, &mut self.reasm, app, d, pkt.ts);
                        trigger_raw(session, app, d, &mut ext.raw_triggered[d.index()]);
                        // A direction ends for the parser once its data up to the FIN (or
                        // a RST) has been handed over, not when the FIN is first seen.
                        let st = session.status(d);
                        let drained = st.app_offset >= st.next_offset;
                        let closed = &mut ext.app_closed[d.index()];
                        if !*closed && (session.is_reset() || (st.fin && drained)) {
                            *closed = true;
                            app.on_close(d);
                        }
                    }
                }
            }
            (Transport::Udp(_), _) => {
                if let Some(app) = ext.app.as_mut() {
                    app.on_datagram(dir, pkt.payload, pkt.ts);
                }
            }
            _ => {}
        }
        let app_proto = ext.app.as_ref().map_or(AppProto::Unknown, AppLayer::proto);
        let stream_bytes = stream_sizes(ext.tcp.as_ref());
        self.alerts.clear();
        // Packet signatures, with the raw stream chunk of this direction.
        let chunk = ext
            .tcp
            .as_ref()
            .and_then(|s| s.raw_data(&self.reasm, dir))
            .map(|c| (c.data.to_vec(), c.end()));
        let mut input = PacketInput {
            pkt,
            dir,
            flow_id,
            established,
            app_proto,
            stream_bytes,
            stream: chunk.as_ref().map(|(d, _)| d.as_slice()),
            in_stream,
            reassembled_frag: reassembled,
            pseudo: false,
            flow: &mut ext.detect,
        };
        engine.inspect_packet(&mut self.detect, &mut input, &mut self.alerts);
        if let Some(app) = ext.app.as_ref() {
            engine.inspect_txs(&mut self.detect, &mut input, app, false, &mut self.alerts);
        }
        if let (Some((_, end)), Some(session)) = (chunk, ext.tcp.as_mut()) {
            session.raw_inspected(&mut self.reasm, dir, end);
        }
        mark_inspected(ext.app.as_mut(), dir, false);
        let ctx = AlertSource {
            pkt,
            flow_id,
            dir,
            app_proto,
            origin: Origin::Wire,
        };
        self.out
            .emit(&self.alerts, &ctx, &ext.detect, ext.app.as_ref(), sink)
    }

    /// Final inspection of flows that ended (timeout, eviction, end of input).
    fn end_flows(&mut self, sink: &mut dyn AlertSink) -> io::Result<()> {
        let ended = std::mem::take(&mut self.ended);
        for mut flow in ended {
            self.end_flow(&mut flow, sink)?;
        }
        Ok(())
    }

    fn end_flow(&mut self, flow: &mut Flow<FlowExt>, sink: &mut dyn AlertSink) -> io::Result<()> {
        let engine = self.engine;
        let established = flow.is_established();
        let ext = &mut flow.ext;
        if let Some(session) = ext.tcp.as_mut() {
            session.flush();
            if let Some(app) = ext.app.as_mut() {
                for d in [Direction::ToServer, Direction::ToClient] {
                    feed_app(session, &mut self.reasm, app, d, flow.last_ts);
                }
            }
        }
        if let Some(app) = ext.app.as_mut() {
            app.on_close(Direction::ToServer);
            app.on_close(Direction::ToClient);
        }
        let app_proto = ext.app.as_ref().map_or(AppProto::Unknown, AppLayer::proto);
        let stream_bytes = stream_sizes(ext.tcp.as_ref());
        for dir in [Direction::ToServer, Direction::ToClient] {
            let (src, sport, dst, dport) = if dir == Direction::ToServer {
                (
                    flow.client_addr,
                    flow.client_port,
                    flow.server_addr,
                    flow.server_port,
                )
            } else {
                (
                    flow.server_addr,
                    flow.server_port,
                    flow.client_addr,
                    flow.client_port,
                )
            };
            let pkt = pseudo_packet(
                flow.proto,
                src,
                sport,
                dst,
                dport,
                flow.last_ts,
                flow.key.vlan,
            );
            self.alerts.clear();
            // Remaining raw stream of this direction, chunk by chunk; transactions are
            // inspected with each chunk (their stream part) and once at the end.
            let mut chunks = 0;
            loop {
                let chunk = ext
                    .tcp
                    .as_ref()
                    .and_then(|s| s.raw_data(&self.reasm, dir))
                    .map(|c| (c.data.to_vec(), c.end()));
                if chunk.is_none() && chunks > 0 {
                    break;
                }
                chunks += 1;
                let mut input = PacketInput {
                    pkt: &pkt,
                    dir,
                    flow_id: flow.id,
                    established,
                    app_proto,
                    stream_bytes,
                    stream: chunk.as_ref().map(|(d, _)| d.as_slice()),
                    in_stream: true,
                    reassembled_frag: false,
                    pseudo: true,
                    flow: &mut ext.detect,
                };
                if input.stream.is_some() {
                    engine.inspect_packet(&mut self.detect, &mut input, &mut self.alerts);
                }
                if let Some(app) = ext.app.as_ref() {
                    engine.inspect_txs(&mut self.detect, &mut input, app, true, &mut self.alerts);
                }
                match (chunk, ext.tcp.as_mut()) {
                    (Some((_, end)), Some(session)) => {
                        session.raw_inspected(&mut self.reasm, dir, end);
                    }
                    _ => break,
                }
            }
            let src = AlertSource {
                pkt: &pkt,
                flow_id: flow.id,
                dir,
                app_proto,
                origin: Origin::FlowEnd,
            };
            self.out
                .emit(&self.alerts, &src, &ext.detect, ext.app.as_ref(), sink)?;
        }
        Ok(())
    }

    /// Alerts written so far.
    #[must_use]
    pub fn alerts_written(&self) -> u64 {
        self.out.written
    }

    /// Ends all flows (end of input), inspecting what they still hold.
    ///
    /// # Errors
    /// An I/O error from the sink.
    pub fn finish(&mut self, sink: &mut dyn AlertSink) -> io::Result<()> {
        self.flows.drain(&mut self.ended);
        self.end_flows(sink)?;
        let fs = self.flows.stats();
        self.stats.flows_evicted = fs.evicted;
        self.stats.alerts = self.out.written;
        Ok(())
    }
}

impl AlertWriter<'_> {
    /// Writes `alerts` (raised on one packet of a flow) as EVE lines.
    fn emit(
        &mut self,
        alerts: &[Alert],
        src: &AlertSource<'_, '_>,
        detect: &FlowDetect,
        app: Option<&AppLayer>,
        sink: &mut dyn AlertSink,
    ) -> io::Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        let engine = self.engine;
        let flowbits: Vec<&str> = detect
            .bits()
            .iter()
            .map(|&b| engine.flowbit_name(b))
            .collect();
        let app_proto = (src.app_proto != AppProto::Unknown).then(|| src.app_proto.as_eve_str());
        for alert in alerts {
            self.seq += 1;
            let app_meta = alert
                .tx_id
                .and_then(|id| app?.tx(id))
                .map(|t| (t.eve_key(), t.eve()));
            let ctx = AlertContext {
                pkt: src.pkt,
                flow_id: src.flow_id,
                dir: src.dir,
                app_proto,
                flowbits: flowbits.clone(),
                app_meta,
                flow_end: src.origin == Origin::FlowEnd,
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
                self.written += 1;
            }
        }
        Ok(())
    }
}

/// The packet an alert is attached to.
struct AlertSource<'a, 'p> {
    pkt: &'a Packet<'p>,
    flow_id: u64,
    dir: Direction,
    app_proto: AppProto,
    origin: Origin,
}

/// Hands released stream data of direction `d` to the app layer.
fn feed_app(
    session: &mut TcpSession,
    reasm: &mut Reassembler,
    app: &mut AppLayer,
    d: Direction,
    ts: crate::Timestamp,
) {
    loop {
        match session.app_data(d) {
            AppChunk::Data { data, .. } => {
                let n = data.len() as u64;
                app.on_stream(d, data, ts);
                session.app_consumed(reasm, d, n);
            }
            AppChunk::Gap { len, .. } => {
                app.on_gap(d, len);
                session.app_consumed(reasm, d, len);
            }
            AppChunk::None => break,
        }
    }
}

/// Makes raw stream inspection of `d` run at its next packet when the app layer finished
/// a transaction there, as Suricata's parsers trigger it (HTTP, DNS, TLS: each completed
/// request or response). Other flows wait for a full chunk (`*_chunk_size`) or the flow's
/// end; measured against Suricata 7 on suricata-verify and ET Open, triggering on every
/// chunk of protocols Tocsin does not parse produced alerts Suricata does not.
fn trigger_raw(
    session: &mut TcpSession,
    app: &AppLayer,
    d: Direction,
    triggered: &mut Option<u64>,
) {
    match app.proto() {
        AppProto::Http | AppProto::HttpAny | AppProto::Dns | AppProto::Tls => {
            let newest = app
                .txs()
                .filter(|t| t.inspect_direction(d) && t.is_complete(d))
                .map(|t| t.id())
                .max();
            if newest.is_some() && newest > *triggered {
                *triggered = newest;
                session.trigger_raw(d);
            }
        }
        _ => {}
    }
}

/// Tells the app layer which transactions are fully inspected in `dir` (complete there, or
/// the flow ended), so it can free them.
fn mark_inspected(app: Option<&mut AppLayer>, dir: Direction, ended: bool) {
    let Some(app) = app else { return };
    let done: Vec<u64> = app
        .txs()
        .filter(|t| ended || t.is_complete(dir) || !t.inspect_direction(dir))
        .map(|t| t.id())
        .collect();
    for id in done {
        app.tx_inspected(id, dir);
    }
}

/// `stream_size` values per direction (0 without TCP reassembly).
fn stream_sizes(session: Option<&TcpSession>) -> [u64; 2] {
    session.map_or([0; 2], |s| {
        [
            s.status(Direction::ToServer).stream_size(),
            s.status(Direction::ToClient).stream_size(),
        ]
    })
}

/// A header-only packet standing for a flow direction at flow end (Suricata's pseudo
/// packets): addresses and ports from the flow, no payload.
fn pseudo_packet(
    proto: u8,
    src: std::net::IpAddr,
    sport: u16,
    dst: std::net::IpAddr,
    dport: u16,
    ts: crate::Timestamp,
    vlan: [u16; 2],
) -> Packet<'static> {
    let version = if src.is_ipv4() {
        IpVersion::V4
    } else {
        IpVersion::V6
    };
    let l4 = match proto {
        ipproto::TCP => Transport::Tcp(TcpHeader {
            src_port: sport,
            dst_port: dport,
            seq: 0,
            ack: 0,
            flags: tcpflag::ACK,
            window: 0,
            urgent: 0,
            mss: None,
            wscale: None,
            sack_permitted: false,
            timestamps: None,
            header: &[],
        }),
        ipproto::UDP => Transport::Udp(UdpHeader {
            src_port: sport,
            dst_port: dport,
            length: 8,
            header: &[],
        }),
        _ => Transport::Other,
    };
    Packet {
        ts,
        pcap_cnt: 0,
        vlan,
        ip: IpLayer {
            version,
            src,
            dst,
            proto,
            ttl: 0,
            tos: 0,
            id: 0,
            flags_frag: 0,
            header: &[],
            datagram: &[],
            frag: None,
            ipv4_options: 0,
        },
        l4,
        payload: &[],
        anomaly: None,
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
                worker.stats.packets,
                worker.alerts_written()
            );
            let _ = io::stderr().flush();
        }
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    worker.finish(sink)?;
    sink.flush()?;
    Ok(RunSummary {
        stats: worker.stats,
        elapsed: start.elapsed(),
        truncated,
    })
}
