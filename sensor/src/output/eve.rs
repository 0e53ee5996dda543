//! EVE alert records: an engine [`Alert`] plus packet and flow context to a Suricata-style
//! JSON line (see `tocsin_eve::EveAlert` for the fields).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tocsin_eve::{AlertId, AlertInfo, EveAlert, SensorInfo};

use crate::Direction;
use crate::decode::{IpVersion, Packet, Transport, ipproto};
use crate::detect::{Alert, Engine};

/// What an alert record needs beyond the engine's [`Alert`].
#[derive(Debug)]
pub struct AlertContext<'a> {
    /// The packet that triggered it.
    pub pkt: &'a Packet<'a>,
    /// Flow id.
    pub flow_id: u64,
    /// Packet direction in the flow.
    pub dir: Direction,
    /// Detected app protocol, as EVE writes it.
    pub app_proto: Option<&'a str>,
    /// Names of the flowbits set on the flow after the packet was inspected.
    pub flowbits: Vec<&'a str>,
    /// App-layer metadata objects (`http`, `dns`, `tls`), when the alert is on a transaction.
    pub app_meta: Option<(&'static str, serde_json::Value)>,
    /// The packet is a flow-end pseudo packet (`pkt_src: "stream (flow timeout)"`, no
    /// `pcap_cnt`).
    pub flow_end: bool,
}

/// EVE's `proto` string for an IP protocol number.
#[must_use]
pub fn proto_name(proto: u8, version: IpVersion) -> String {
    match proto {
        ipproto::TCP => "TCP".to_owned(),
        ipproto::UDP => "UDP".to_owned(),
        ipproto::ICMP if version == IpVersion::V4 => "ICMP".to_owned(),
        ipproto::ICMPV6 => "IPv6-ICMP".to_owned(),
        ipproto::SCTP => "SCTP".to_owned(),
        other => format!("{other:03}"),
    }
}

/// Builds the EVE record of one alert.
#[must_use]
pub fn alert_record(
    engine: &Engine,
    alert: &Alert,
    ctx: &AlertContext<'_>,
    sensor: &SensorInfo,
    id: &AlertId,
) -> Option<EveAlert> {
    let sig = engine.sig(alert.sig)?;
    let pkt = ctx.pkt;
    let ports = matches!(pkt.l4, Transport::Tcp(_) | Transport::Udp(_));
    let (icmp_type, icmp_code) = match &pkt.l4 {
        Transport::Icmpv4(i) | Transport::Icmpv6(i) => (Some(i.icmp_type), Some(i.code)),
        _ => (None, None),
    };
    let metadata =
        (!ctx.flowbits.is_empty()).then(|| serde_json::json!({ "flowbits": ctx.flowbits }));
    let mut rec = EveAlert {
        timestamp: pkt.ts.to_string(),
        flow_id: Some(ctx.flow_id),
        pcap_cnt: (!ctx.flow_end).then_some(pkt.pcap_cnt),
        event_type: "alert".to_owned(),
        src_ip: pkt.ip.src.to_string(),
        src_port: ports.then(|| pkt.src_port()),
        dest_ip: pkt.ip.dst.to_string(),
        dest_port: ports.then(|| pkt.dst_port()),
        proto: proto_name(pkt.ip.proto, pkt.ip.version),
        icmp_type,
        icmp_code,
        pkt_src: Some(
            if ctx.flow_end {
                "stream (flow timeout)"
            } else {
                "wire/pcap"
            }
            .to_owned(),
        ),
        metadata,
        tx_id: alert.tx_id,
        alert: AlertInfo {
            action: "allowed".to_owned(),
            gid: sig.gid,
            signature_id: sig.sid,
            rev: sig.rev,
            signature: sig.msg.clone(),
            category: sig.category.clone(),
            severity: sig.priority,
            metadata: sig.metadata.clone(),
        },
        app_proto: ctx.app_proto.map(str::to_owned),
        direction: Some(ctx.dir.as_eve_str().to_owned()),
        http: None,
        dns: None,
        tls: None,
        sensor: Some(sensor.clone()),
        alert_id: Some(id.to_string()),
    };
    if let Some((kind, value)) = &ctx.app_meta {
        match *kind {
            "http" => rec.http = Some(value.clone()),
            "dns" => rec.dns = Some(value.clone()),
            "tls" => rec.tls = Some(value.clone()),
            _ => {}
        }
    }
    Some(rec)
}

/// An EVE `stats` record (Suricata's event type for counters) with the sensor identity.
#[must_use]
pub fn stats_record(
    ts: crate::Timestamp,
    stats: &crate::stats::RunStats,
    elapsed: std::time::Duration,
    sensor: &SensorInfo,
) -> serde_json::Value {
    serde_json::json!({
        "timestamp": ts.to_string(),
        "event_type": "stats",
        "stats": stats.to_json(elapsed),
        "sensor": sensor,
    })
}

/// Where alert lines go: the EVE file, and optionally a forwarder.
pub trait AlertSink {
    /// Takes one serialized EVE line (without the newline).
    ///
    /// # Errors
    /// An I/O error when the line cannot be stored; the sensor stops rather than lose it.
    fn write_line(&mut self, line: &[u8]) -> io::Result<()>;

    /// Flushes buffered lines.
    ///
    /// # Errors
    /// An I/O error from the underlying file.
    fn flush(&mut self) -> io::Result<()>;

    /// Takes one serialized `stats` record. By default it goes where alerts go; a sink
    /// that forwards alerts sends stats to the correlator's stats endpoint instead of the
    /// alert spool (see `tocsin sensor`'s sink).
    ///
    /// # Errors
    /// As [`AlertSink::write_line`].
    fn write_stats(&mut self, line: &[u8]) -> io::Result<()> {
        self.write_line(line)
    }
}

/// Appends EVE lines to a file (`LOGDIR/eve.json`), buffered.
#[derive(Debug)]
pub struct EveFile {
    out: io::BufWriter<std::fs::File>,
    path: PathBuf,
}

impl EveFile {
    /// Creates (or appends to) `path`.
    ///
    /// # Errors
    /// The I/O error, e.g. when the directory does not exist or is not writable.
    pub fn create(path: &Path) -> io::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            out: io::BufWriter::with_capacity(1 << 16, f),
            path: path.to_owned(),
        })
    }

    /// The file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AlertSink for EveFile {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.out.write_all(line)?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Collects lines in memory (tests, and callers that post-process).
#[derive(Debug, Default)]
pub struct MemorySink {
    /// Lines written so far.
    pub lines: Vec<Vec<u8>>,
}

impl AlertSink for MemorySink {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.lines.push(line.to_vec());
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
