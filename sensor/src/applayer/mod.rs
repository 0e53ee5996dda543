//! Application layer: protocol detection, HTTP/DNS/TLS parsing, and the per-flow transaction
//! state the rule engine inspects.
//!
//! Input (one [`AppLayer`] per flow): in-order reassembled TCP bytes per direction in chunks
//! of any size ([`AppLayer::on_stream`]), lost-byte notices ([`AppLayer::on_gap`]), UDP payloads
//! ([`AppLayer::on_datagram`]) and direction closes ([`AppLayer::on_close`]).
//!
//! Output: the flow's protocol ([`AppLayer::proto`], Suricata's `app_proto`) and per-direction
//! detection labels ([`AppLayer::proto_for`], for `app_proto_ts`/`app_proto_tc`); live
//! transactions ([`AppLayer::txs`]) whose rule buffers are read through [`TxRef`] and the
//! per-protocol `*Buffer` enums (each with `from_keyword` for rule keywords); the EVE
//! `http`/`dns`/`tls` alert objects ([`TxRef::eve`]); anomaly events ([`AppLayer::events`]);
//! FTP data-connection expectations ([`AppLayer::take_ftp_expectations`]) for `ftp-data`
//! flows, which start with a known protocol ([`AppLayer::with_proto`]).
//!
//! Parsed: HTTP/1.x ([`http`]), DNS over UDP/TCP ([`dns`]), TLS ([`tls`]), FTP commands that
//! open data connections ([`ftp`]). Detected only (so `alert ssh ...` heads and
//! `app-layer-protocol` match): HTTP/2, SSH, SMTP, FTP, SMB, DCE/RPC, SIP, DHCP.
//!
//! Detection follows Suricata 7: each direction is probed on its own first bytes, by content
//! first and with ports as hints for port-bound protocols ([`detect_proto`]). The first
//! direction to identify a protocol sets it for the flow; data of both directions seen before
//! that moment is held (bounded) and handed to the parser in arrival order once the protocol is
//! known. A direction that identifies nothing is labelled `failed` (so an FTP flow whose server
//! banner came first shows `app_proto_tc: failed`, as Suricata writes it) but its data is still
//! parsed when the other direction identified the protocol. When neither direction identifies
//! anything the flow is `failed` and nothing more is parsed.
//!
//! Invariants: nothing here panics on any input (every slice access is checked; see the
//! `clippy::indexing_slicing` lint below); feeding a stream in any chunking yields the same
//! protocol, transactions and buffers as feeding it whole (property-tested).
//!
//! Caps: detection reads at most `detect_max_bytes` per direction; data held while detection is
//! pending is at most `pending_max_bytes` per direction (excess becomes a gap, with an event);
//! at most `max_events` events per flow; per-protocol caps in [`HttpConfig`], [`DnsConfig`],
//! [`TlsConfig`].

#![warn(clippy::indexing_slicing)]

pub mod detect_proto;
pub mod dns;
pub mod events;
pub mod ftp;
pub mod http;
pub(crate) mod perdir;
mod proto;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
pub mod tls;

pub use dns::{DnsBuffer, DnsConfig, DnsTx};
pub use events::{AppEvent, AppEventKind};
pub use http::{HttpBuffer, HttpConfig, HttpTx};
pub use proto::AppProto;
pub use tls::{TlsBuffer, TlsConfig, TlsTx};

use crate::{Direction, Timestamp};
use detect_proto::{Ports, Probe};
use events::Events;
use perdir::PerDir;

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// App-layer configuration (defaults follow Suricata 7's defaults).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppLayerConfig {
    /// Bytes per direction examined before detection gives up on that direction.
    pub detect_max_bytes: usize,
    /// Bytes per direction held while the flow's protocol is still unknown.
    pub pending_max_bytes: usize,
    /// Events kept per flow.
    pub max_events: usize,
    /// HTTP limits.
    pub http: HttpConfig,
    /// DNS limits.
    pub dns: DnsConfig,
    /// TLS limits.
    pub tls: TlsConfig,
}

impl Default for AppLayerConfig {
    fn default() -> Self {
        Self {
            detect_max_bytes: 4096,
            pending_max_bytes: 64 * 1024,
            max_events: 256,
            http: HttpConfig::default(),
            dns: DnsConfig::default(),
            tls: TlsConfig::default(),
        }
    }
}

#[derive(Debug, Clone)]
enum PendingItem {
    Data(Vec<u8>),
    Gap(u64),
}

/// Bytes held for the parser while the flow's protocol is unknown.
#[derive(Debug, Clone, Default)]
struct Pending {
    items: Vec<PendingItem>,
    bytes: usize,
    overflowed: bool,
}

impl Pending {
    /// Appends `data`; beyond `cap` bytes the excess is recorded as a gap. Returns true the
    /// first time the cap is hit.
    fn push(&mut self, data: &[u8], cap: usize) -> bool {
        let room = cap.saturating_sub(self.bytes);
        let (keep, drop) = data.split_at(room.min(data.len()));
        if !keep.is_empty() {
            match self.items.last_mut() {
                Some(PendingItem::Data(d)) => d.extend_from_slice(keep),
                _ => self.items.push(PendingItem::Data(keep.to_vec())),
            }
            self.bytes += keep.len();
        }
        if drop.is_empty() {
            return false;
        }
        self.push_gap(drop.len() as u64);
        !std::mem::replace(&mut self.overflowed, true)
    }

    fn push_gap(&mut self, len: u64) {
        match self.items.last_mut() {
            Some(PendingItem::Gap(g)) => *g = g.saturating_add(len),
            _ => self.items.push(PendingItem::Gap(len)),
        }
    }

    /// The contiguous bytes from the start of the direction (up to the first gap).
    fn prefix(&self) -> &[u8] {
        match self.items.first() {
            Some(PendingItem::Data(d)) => d,
            _ => &[],
        }
    }
}

#[derive(Debug)]
enum Parser {
    None,
    Http(Box<http::HttpState>),
    Dns(Box<dns::DnsState>),
    Tls(Box<tls::TlsState>),
    Ftp(Box<ftp::FtpState>),
}

/// The app-layer state of one flow.
#[derive(Debug)]
pub struct AppLayer {
    cfg: AppLayerConfig,
    ipproto: u8,
    ports: Ports,
    proto: AppProto,
    dir_proto: PerDir<AppProto>,
    pending: PerDir<Pending>,
    /// Detection bytes of a direction still probing after the flow protocol is known.
    probe_buf: PerDir<Vec<u8>>,
    first_dir: Option<Direction>,
    closed: PerDir<bool>,
    parser: Parser,
    events: Events,
    last_ts: Timestamp,
}

impl AppLayer {
    /// State for a new flow. `server_port`/`client_port` are the responder's and initiator's
    /// ports (hints for port-bound probes); `ipproto` is 6 (TCP) or 17 (UDP).
    #[must_use]
    pub fn new(cfg: &AppLayerConfig, ipproto: u8, server_port: u16, client_port: u16) -> Self {
        Self {
            cfg: cfg.clone(),
            ipproto,
            ports: Ports {
                server: server_port,
                client: client_port,
            },
            proto: AppProto::Unknown,
            dir_proto: PerDir::new(AppProto::Unknown, AppProto::Unknown),
            pending: Default::default(),
            probe_buf: Default::default(),
            first_dir: None,
            closed: PerDir::default(),
            parser: Parser::None,
            events: Events::new(cfg.max_events),
            last_ts: Timestamp::default(),
        }
    }

    /// State for a flow whose protocol is known without detection (an FTP data connection
    /// matching an [`ftp::FtpExpectation`]): both directions are labelled `proto` at once.
    #[must_use]
    pub fn with_proto(
        cfg: &AppLayerConfig,
        ipproto: u8,
        server_port: u16,
        client_port: u16,
        proto: AppProto,
    ) -> Self {
        let mut al = Self::new(cfg, ipproto, server_port, client_port);
        al.dir_proto = PerDir::new(proto, proto);
        al.start_parser(proto);
        al
    }

    /// The flow's protocol: `Unknown` while detecting, `Failed` when detection gave up.
    #[must_use]
    pub fn proto(&self) -> AppProto {
        self.proto
    }

    /// What detection concluded for one direction (`Unknown` while it is still probing). Where
    /// it differs from [`AppLayer::proto`], Suricata writes it as `app_proto_ts`/`app_proto_tc`.
    #[must_use]
    pub fn proto_for(&self, dir: Direction) -> AppProto {
        *self.dir_proto.get(dir)
    }

    /// The timestamp of the latest data given to this flow.
    #[must_use]
    pub fn last_seen(&self) -> Timestamp {
        self.last_ts
    }

    /// Anomaly events, oldest first (bounded; see [`AppLayer::events_dropped`]).
    #[must_use]
    pub fn events(&self) -> &[AppEvent] {
        self.events.as_slice()
    }

    /// Events not kept because the per-flow list was full.
    #[must_use]
    pub fn events_dropped(&self) -> u64 {
        self.events.dropped()
    }

    fn set_dir(&mut self, dir: Direction, p: AppProto) {
        *self.dir_proto.get_mut(dir) = p;
    }

    /// Applies a probe answer for `dir`; `len` is how many bytes the probe saw.
    fn conclude(&mut self, dir: Direction, probe: Probe, len: usize, final_data: bool) {
        let p = match probe {
            Probe::Match(p) => p,
            Probe::NoMatch => AppProto::Failed,
            Probe::NeedMore if final_data || len >= self.cfg.detect_max_bytes => AppProto::Failed,
            Probe::NeedMore => return,
        };
        self.set_dir(dir, p);
        *self.probe_buf.get_mut(dir) = Vec::new();
        if p.is_known() && self.proto.is_known() && !p.matches_flow(self.proto) {
            self.events
                .push(AppEventKind::MismatchProtocolBothDirections, dir, None);
        }
    }

    /// Reassembled, in-order TCP bytes for `dir` (any chunk size; data may split anywhere).
    pub fn on_stream(&mut self, dir: Direction, data: &[u8], ts: Timestamp) {
        if data.is_empty() {
            return;
        }
        self.last_ts = ts;
        self.first_dir.get_or_insert(dir);
        if self.proto == AppProto::Failed {
            return;
        }
        if self.proto == AppProto::Unknown {
            let cap = self.cfg.pending_max_bytes;
            let hit = self.pending.get_mut(dir).push(data, cap);
            if hit {
                self.events
                    .push(AppEventKind::DetectionBufferFull, dir, None);
            }
            if self.proto_for(dir) == AppProto::Unknown {
                let prefix = self.pending.get(dir).prefix();
                let probe = detect_proto::probe_tcp(dir, prefix, self.ports);
                let len = prefix.len();
                self.conclude(dir, probe, len, false);
            }
            self.after_detection();
            return;
        }
        if self.proto_for(dir) == AppProto::Unknown {
            self.label_more(dir, data);
        }
        self.parse(dir, data);
    }

    /// Keeps probing a direction after the flow protocol is known (for its label only).
    fn label_more(&mut self, dir: Direction, data: &[u8]) {
        let max = self.cfg.detect_max_bytes;
        let buf = self.probe_buf.get_mut(dir);
        let take = max.saturating_sub(buf.len()).min(data.len());
        buf.extend_from_slice(data.get(..take).unwrap_or_default());
        let probe = if self.ipproto == IPPROTO_UDP {
            detect_proto::probe_udp(dir, buf, self.ports)
        } else {
            detect_proto::probe_tcp(dir, buf, self.ports)
        };
        let len = buf.len();
        self.conclude(dir, probe, len, false);
    }

    /// After a detection step while the flow protocol was unknown: set it, or fail the flow.
    fn after_detection(&mut self) {
        let PerDir { ts, tc } = self.dir_proto;
        let found = [ts, tc].into_iter().find(|p| p.is_known());
        if let Some(p) = found {
            self.start_parser(p);
        } else if ts == AppProto::Failed && tc == AppProto::Failed {
            self.proto = AppProto::Failed;
            self.pending = Default::default();
            self.probe_buf = Default::default();
        }
    }

    /// The protocol is known: create the parser and replay held data in arrival order.
    fn start_parser(&mut self, p: AppProto) {
        self.proto = p;
        self.parser = match p {
            AppProto::Http => Parser::Http(Box::new(http::HttpState::new(&self.cfg.http))),
            AppProto::Dns => Parser::Dns(Box::new(dns::DnsState::new(&self.cfg.dns))),
            AppProto::Tls => Parser::Tls(Box::new(tls::TlsState::new(&self.cfg.tls))),
            AppProto::Ftp => Parser::Ftp(Box::default()),
            _ => Parser::None,
        };
        let first = self.first_dir.unwrap_or(Direction::ToServer);
        let max = self.cfg.detect_max_bytes;
        for dir in [first, first.reverse()] {
            let held = std::mem::take(self.pending.get_mut(dir));
            if self.proto_for(dir) == AppProto::Unknown {
                let prefix = held.prefix();
                let keep = prefix
                    .get(..max.min(prefix.len()))
                    .unwrap_or_default()
                    .to_vec();
                *self.probe_buf.get_mut(dir) = keep;
            }
            for item in held.items {
                match item {
                    PendingItem::Data(d) => self.parse(dir, &d),
                    PendingItem::Gap(n) => self.parser_gap(dir, n),
                }
            }
            if *self.closed.get(dir) {
                self.parser_close(dir);
            }
        }
    }

    fn parse(&mut self, dir: Direction, data: &[u8]) {
        let ev = &mut self.events;
        match &mut self.parser {
            Parser::Http(s) => s.on_stream(dir, data, ev),
            Parser::Dns(s) if self.ipproto == IPPROTO_UDP => s.on_datagram(dir, data, ev),
            Parser::Dns(s) => s.on_stream(dir, data, ev),
            Parser::Tls(s) => s.on_stream(dir, data, ev),
            Parser::Ftp(s) => s.on_stream(dir, data),
            Parser::None => {}
        }
    }

    fn parser_gap(&mut self, dir: Direction, len: u64) {
        let ev = &mut self.events;
        match &mut self.parser {
            Parser::Http(s) => s.on_gap(dir, len, ev),
            Parser::Dns(s) => s.on_gap(dir),
            Parser::Tls(s) => s.on_gap(dir),
            Parser::Ftp(_) | Parser::None => {}
        }
    }

    fn parser_close(&mut self, dir: Direction) {
        let ev = &mut self.events;
        match &mut self.parser {
            Parser::Http(s) => s.on_close(dir, ev),
            Parser::Dns(s) => s.on_close(dir, ev),
            Parser::Tls(s) => s.on_close(dir),
            Parser::Ftp(_) | Parser::None => {}
        }
    }

    /// `len` bytes of `dir` were lost. While detecting, the direction gives up (its start is
    /// unreliable); afterwards the parser resynchronises or skips as its protocol allows.
    pub fn on_gap(&mut self, dir: Direction, len: u64) {
        if len == 0 || self.proto == AppProto::Failed {
            return;
        }
        if self.proto_for(dir) == AppProto::Unknown {
            self.events.push(AppEventKind::DetectionGap, dir, None);
            self.set_dir(dir, AppProto::Failed);
        }
        if self.proto == AppProto::Unknown {
            self.pending.get_mut(dir).push_gap(len);
            self.after_detection();
            return;
        }
        self.parser_gap(dir, len);
    }

    /// One UDP payload. Each datagram is probed on its own until its direction is decided,
    /// then parsed (DNS: one message per datagram).
    pub fn on_datagram(&mut self, dir: Direction, payload: &[u8], ts: Timestamp) {
        self.last_ts = ts;
        self.first_dir.get_or_insert(dir);
        if self.proto == AppProto::Failed {
            return;
        }
        if self.proto_for(dir) == AppProto::Unknown {
            let probe = detect_proto::probe_udp(dir, payload, self.ports);
            self.conclude(dir, probe, payload.len(), true);
            if self.proto == AppProto::Unknown {
                self.after_detection();
            }
        }
        if self.proto.is_known() {
            let ev = &mut self.events;
            if let Parser::Dns(s) = &mut self.parser {
                s.on_datagram(dir, payload, ev);
            }
        }
    }

    /// `dir` ended (FIN, RST or flow end): bodies without a length end, transactions become
    /// complete in that direction, a still-probing direction is labelled `failed`.
    pub fn on_close(&mut self, dir: Direction) {
        if std::mem::replace(self.closed.get_mut(dir), true) {
            return;
        }
        if self.proto_for(dir) == AppProto::Unknown {
            self.set_dir(dir, AppProto::Failed);
        }
        match self.proto {
            AppProto::Unknown => self.after_detection(),
            AppProto::Failed => {}
            _ => self.parser_close(dir),
        }
    }

    /// Live transactions in id order.
    pub fn txs(&self) -> impl Iterator<Item = TxRef<'_>> {
        match &self.parser {
            Parser::Http(s) => TxIter::Http(s.txs()),
            Parser::Dns(s) => TxIter::Dns(s.txs()),
            Parser::Tls(s) => TxIter::Tls(Some(s.tx())),
            Parser::Ftp(_) | Parser::None => TxIter::Empty,
        }
    }

    /// The transaction with id `id`, if it is live.
    #[must_use]
    pub fn tx(&self, id: u64) -> Option<TxRef<'_>> {
        self.txs().find(|t| t.id() == id)
    }

    /// The engine has fully inspected transaction `id` in `dir`. Transactions complete in both
    /// directions and inspected in both (DNS: in their own direction) are freed; the TLS
    /// transaction lives as long as the flow.
    pub fn tx_inspected(&mut self, id: u64, dir: Direction) {
        match &mut self.parser {
            Parser::Http(s) => s.tx_inspected(id, dir),
            Parser::Dns(s) => s.tx_inspected(id, dir),
            Parser::Tls(s) => s.tx_inspected(dir),
            Parser::Ftp(_) | Parser::None => {}
        }
    }

    /// Data connections announced on an FTP control flow since the last call (empty for
    /// other protocols). The flow layer creates those flows with [`AppLayer::with_proto`].
    pub fn take_ftp_expectations(&mut self) -> Vec<ftp::FtpExpectation> {
        match &mut self.parser {
            Parser::Ftp(s) => s.take_expectations(),
            _ => Vec::new(),
        }
    }
}

/// Iterator behind [`AppLayer::txs`].
enum TxIter<'a> {
    Http(std::collections::vec_deque::Iter<'a, HttpTx>),
    Dns(std::collections::vec_deque::Iter<'a, DnsTx>),
    Tls(Option<&'a TlsTx>),
    Empty,
}

impl<'a> Iterator for TxIter<'a> {
    type Item = TxRef<'a>;
    fn next(&mut self) -> Option<TxRef<'a>> {
        match self {
            Self::Http(it) => it.next().map(TxRef::Http),
            Self::Dns(it) => it.next().map(TxRef::Dns),
            Self::Tls(t) => t.take().map(TxRef::Tls),
            Self::Empty => None,
        }
    }
}

/// A borrowed transaction of any protocol.
#[derive(Debug, Clone, Copy)]
pub enum TxRef<'a> {
    /// An HTTP request/response pair.
    Http(&'a HttpTx),
    /// One DNS message.
    Dns(&'a DnsTx),
    /// The TLS handshake (one per flow).
    Tls(&'a TlsTx),
}

impl TxRef<'_> {
    /// Transaction id within the flow (the EVE `tx_id`).
    #[must_use]
    pub fn id(&self) -> u64 {
        match self {
            Self::Http(t) => t.id(),
            Self::Dns(t) => t.id(),
            Self::Tls(t) => t.id(),
        }
    }

    /// Protocol-specific progress in `dir`; monotone. HTTP: [`http::progress`]; TLS:
    /// [`tls::progress`]; DNS: always 1 (a message is complete when it exists).
    #[must_use]
    pub fn progress(&self, dir: Direction) -> u8 {
        match self {
            Self::Http(t) => t.progress(dir),
            Self::Dns(_) => 1,
            Self::Tls(t) => t.progress(dir),
        }
    }

    /// Whether `dir` of the transaction is complete (its buffers are final).
    #[must_use]
    pub fn is_complete(&self, dir: Direction) -> bool {
        match self {
            Self::Http(t) => t.is_complete(dir),
            Self::Dns(_) => true,
            Self::Tls(t) => t.progress(dir) >= tls::progress::DONE,
        }
    }

    /// Whether the engine needs to inspect this transaction in `dir` at all (DNS messages are
    /// unidirectional and are inspected only in their own direction, as in Suricata 7).
    #[must_use]
    pub fn inspect_direction(&self, dir: Direction) -> bool {
        match self {
            Self::Dns(t) => t.direction() == dir,
            _ => true,
        }
    }

    /// The `http`/`dns`/`tls` object Suricata 7 writes in alert records for this transaction.
    #[must_use]
    pub fn eve(&self) -> serde_json::Value {
        match self {
            Self::Http(t) => http::eve::alert_object(t),
            Self::Dns(t) => dns::eve::alert_object(t),
            Self::Tls(t) => tls::eve::alert_object(t),
        }
    }

    /// The key under which [`TxRef::eve`] goes in the alert record.
    #[must_use]
    pub fn eve_key(&self) -> &'static str {
        match self {
            Self::Http(_) => "http",
            Self::Dns(_) => "dns",
            Self::Tls(_) => "tls",
        }
    }
}
