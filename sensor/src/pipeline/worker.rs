//! A worker: one flow table and everything per flow behind it (defragmentation, TCP
//! reassembly, app layer, detection state), processing decoded packets in order.
//!
//! Per packet: a fragment is inspected as an IP packet, then handed to the defragmenter;
//! a rebuilt datagram is decoded and processed like a captured packet. TCP packets go
//! through their session's reassembly; data released (ACKed by the other side, as in
//! Suricata's IDS mode) is fed to the app layer, UDP payloads go to it directly. Detection
//! then runs on the packet with the raw stream chunk ready for its direction, and on the
//! flow's transactions. When a flow ends (timeout, eviction, end of input), its streams are
//! flushed and inspected one last time through pseudo packets, as Suricata does at flow
//! timeout (`pkt_src: "stream (flow timeout)"`).

use std::io;

use tocsin_eve::{AlertId, SensorInfo};

use crate::Direction;
use crate::applayer::{AppLayer, AppLayerConfig, AppProto};
use crate::config::SensorConfig;
use crate::decode::{
    self, IpLayer, IpVersion, Packet, TcpHeader, Transport, UdpHeader, ipproto, tcpflag,
};
use crate::defrag::Defragmenter;
use crate::detect::{Alert, DetectThread, Engine, FlowDetect, PacketInput};
use crate::flow::{Flow, FlowTable};
use crate::output::eve::{AlertContext, AlertSink, alert_record};
use crate::reassembly::{AppChunk, MemBudget, Reassembler, TcpSession};
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
    /// This worker's alerts are numbered `seq * stride + offset`, so IDs of several workers
    /// never collide and stay the same when the same input is split the same way.
    seq: u64,
    stride: u64,
    offset: u64,
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
        Self::with_budget(
            engine,
            cfg,
            stream_id,
            checksums,
            MemBudget::new(cfg.stream.memcap),
            (0, 1),
        )
    }

    /// A worker sharing the reassembly `budget` with others, the `index`-th of `count`
    /// (`ids` = (index, count)), for multi-threaded runs.
    #[must_use]
    pub fn with_budget(
        engine: &'e Engine,
        cfg: &SensorConfig,
        stream_id: u64,
        checksums: bool,
        budget: MemBudget,
        ids: (u64, u64),
    ) -> Self {
        let mut flow_cfg = cfg.flow.clone();
        flow_cfg.midstream = cfg.stream.midstream;
        // Flow and fragment tables are per worker: split their caps.
        let n = usize::try_from(ids.1.max(1)).unwrap_or(1);
        flow_cfg.max_flows = (flow_cfg.max_flows / n).max(1);
        let mut defrag_cfg = cfg.defrag.clone();
        defrag_cfg.memcap = (defrag_cfg.memcap / n).max(1);
        defrag_cfg.max_trackers = (defrag_cfg.max_trackers / n).max(1);
        Self {
            engine,
            flows: FlowTable::new(flow_cfg),
            defrag: Defragmenter::new(defrag_cfg),
            reasm: Reassembler::with_budget(cfg.stream.clone(), budget),
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
                stride: ids.1.max(1),
                offset: ids.0,
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
        // The chunk borrows the session's buffer (no copy) while detection runs.
        let FlowExt {
            detect, tcp, app, ..
        } = ext;
        let chunk = tcp.as_ref().and_then(|s| s.raw_data(&self.reasm, dir));
        let chunk_end = chunk.as_ref().map(crate::reassembly::RawChunk::end);
        let mut input = PacketInput {
            pkt,
            dir,
            flow_id,
            established,
            app_proto,
            stream_bytes,
            stream: chunk.map(|c| c.data),
            in_stream,
            reassembled_frag: reassembled,
            pseudo: false,
            flow: detect,
        };
        engine.inspect_packet(&mut self.detect, &mut input, &mut self.alerts);
        if let Some(app) = app.as_ref() {
            engine.inspect_txs(&mut self.detect, &mut input, app, false, &mut self.alerts);
        }
        if let (Some(end), Some(session)) = (chunk_end, tcp.as_mut()) {
            session.raw_inspected(&mut self.reasm, dir, end);
        }
        mark_inspected(app.as_mut(), dir, false);
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

    /// Counters so far plus the stage counters and gauges of this moment (flows held,
    /// defragmentation memory), for periodic stats. The worker keeps running; the final
    /// figures come from [`Worker::finish`].
    #[must_use]
    pub fn snapshot(&self) -> RunStats {
        let mut s = self.stats.clone();
        let fs = self.flows.stats();
        s.flows_evicted = fs.evicted;
        s.alerts = self.out.written;
        s.flows_active = self.flows.len() as u64;
        s.add_stage(&fs.counters());
        s.add_stage(&self.defrag.stats().counters());
        s.add_stage(&self.reasm.stats().counters());
        s
    }

    /// Bytes this worker's defragmenter holds.
    #[must_use]
    pub fn defrag_bytes(&self) -> u64 {
        self.defrag.stats().mem_used
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
        self.stats.add_stage(&fs.counters());
        self.stats.add_stage(&self.defrag.stats().counters());
        self.stats.add_stage(&self.reasm.stats().counters());
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
                seq: (self.seq - 1) * self.stride + self.offset + 1,
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
    // Usually zero or one transaction is done: a small inline buffer, no allocation.
    let mut done: smallvec::SmallVec<[u64; 8]> = smallvec::SmallVec::new();
    done.extend(
        app.txs()
            .filter(|t| ended || t.is_complete(dir) || !t.inspect_direction(dir))
            .map(|t| t.id()),
    );
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
