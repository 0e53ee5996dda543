//! Per-flow DNS state: one transaction per DNS message, as Suricata 7 keeps them.
//!
//! Input: UDP payloads (one message each) or TCP stream chunks (2-byte length framing, several
//! messages per chunk or one message split over many chunks), gaps and closes.
//! Output: [`DnsTx`]s in id order. A query and its response are two transactions (Suricata 7
//! gives them consecutive `tx_id`s and logs the response with the query's DNS `id`); each is
//! complete as soon as it exists and needs inspection only in its own direction.
//! Invariants: chunking of the TCP stream does not change the transactions produced.
//! Caps: `max_txs` live transactions (oldest dropped with an event); the partial TCP message
//! buffer holds at most one message (65,537 bytes, the format's own limit); names and record
//! counts per [`super::parser::DnsLimits`].

use std::collections::VecDeque;

use super::DnsConfig;
use super::parser::{self, DnsError, DnsLimits, DnsMessage, TcpFrame};
use crate::Direction;
use crate::applayer::detect_proto::Probe;
use crate::applayer::events::{AppEventKind, Events};
use crate::applayer::perdir::PerDir;

/// DNS anomalies (Suricata's `dns.*` app-layer events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DnsEvent {
    /// The message could not be parsed.
    MalformedData,
    /// A response (QR set) was sent to the server.
    NotRequest,
    /// A query (QR clear) was sent to the client.
    NotResponse,
    /// The reserved Z bit was set.
    ZFlagSet,
    /// The opcode is not one of the assigned ones.
    InvalidOpcode,
    /// A name exceeded the length cap and was truncated.
    NameTooLong,
    /// Compression pointers looped.
    InfiniteLoop,
    /// A name had too many labels.
    TooManyLabels,
}

impl DnsEvent {
    /// Suricata's `app-layer-event` name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::MalformedData => "dns.malformed_data",
            Self::NotRequest => "dns.not_a_request",
            Self::NotResponse => "dns.not_a_response",
            Self::ZFlagSet => "dns.z_flag_set",
            Self::InvalidOpcode => "dns.invalid_opcode",
            Self::NameTooLong => "dns.name_too_long",
            Self::InfiniteLoop => "dns.infinite_loop",
            Self::TooManyLabels => "dns.too_many_labels",
        }
    }
}

/// Byte buffers a DNS transaction exposes to rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DnsBuffer {
    /// `dns.query` (Suricata 7: to-server only): one buffer per question name.
    Query,
    /// Owner names of the answer and authority records (responses), one buffer each.
    ResponseName,
}

impl DnsBuffer {
    /// The buffer a rule keyword selects (`dns.query`, legacy `dns_query`).
    #[must_use]
    pub fn from_keyword(kw: &str) -> Option<Self> {
        match kw {
            "dns.query" | "dns_query" => Some(Self::Query),
            _ => None,
        }
    }
}

/// One DNS message.
#[derive(Debug, Clone)]
pub struct DnsTx {
    id: u64,
    dir: Direction,
    msg: DnsMessage,
    inspected: PerDir<bool>,
}

impl DnsTx {
    /// Transaction id within the flow.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }
    /// The direction the message travelled.
    #[must_use]
    pub fn direction(&self) -> Direction {
        self.dir
    }
    /// The parsed message.
    #[must_use]
    pub fn message(&self) -> &DnsMessage {
        &self.msg
    }
    /// True for a query (QR clear).
    #[must_use]
    pub fn is_request(&self) -> bool {
        !self.msg.header.is_response()
    }
    /// DNS transaction id from the header.
    #[must_use]
    pub fn dns_id(&self) -> u16 {
        self.msg.header.id
    }
    /// The opcode (`dns.opcode`).
    #[must_use]
    pub fn opcode(&self) -> u8 {
        self.msg.header.opcode()
    }
    /// The response code.
    #[must_use]
    pub fn rcode(&self) -> u8 {
        self.msg.header.rcode()
    }
    /// The raw flags word.
    #[must_use]
    pub fn flags(&self) -> u16 {
        self.msg.header.flags
    }
    /// The query types, one per question (`dns.rrtype`).
    pub fn rrtypes(&self) -> impl Iterator<Item = u16> + '_ {
        self.msg.queries.iter().map(|q| q.rrtype)
    }
    /// Multi-buffer access: the `index`-th buffer of `which`, or `None` past the end.
    #[must_use]
    pub fn buffer(&self, which: DnsBuffer, index: usize) -> Option<&[u8]> {
        match which {
            DnsBuffer::Query => self.msg.queries.get(index).map(|q| q.name.as_slice()),
            DnsBuffer::ResponseName => {
                let n = self.msg.answers.len();
                match index.checked_sub(n) {
                    None => self.msg.answers.get(index).map(|r| r.name.as_slice()),
                    Some(i) => self.msg.authorities.get(i).map(|r| r.name.as_slice()),
                }
            }
        }
    }
    /// Whether the engine still needs to inspect this transaction in `dir` (only the
    /// message's own direction).
    #[must_use]
    pub fn wants_inspection(&self, dir: Direction) -> bool {
        dir == self.dir && !*self.inspected.get(dir)
    }
}

#[derive(Debug, Default, Clone)]
struct TcpDir {
    /// A partial message (with its length prefix) waiting for the rest.
    buf: Vec<u8>,
    /// After a gap: drop data until something that looks like a message start.
    resync: bool,
}

/// All DNS state of one flow.
#[derive(Debug, Clone)]
pub struct DnsState {
    txs: VecDeque<DnsTx>,
    next_id: u64,
    tcp: PerDir<TcpDir>,
    cfg: DnsConfig,
}

impl DnsState {
    /// Empty state.
    #[must_use]
    pub fn new(cfg: &DnsConfig) -> Self {
        Self {
            txs: VecDeque::new(),
            next_id: 0,
            tcp: Default::default(),
            cfg: cfg.clone(),
        }
    }

    fn limits(&self) -> DnsLimits {
        DnsLimits {
            max_name_len: self.cfg.max_name_len,
            max_records: self.cfg.max_records,
        }
    }

    /// One UDP payload: exactly one message.
    pub fn on_datagram(&mut self, dir: Direction, payload: &[u8], ev: &mut Events) {
        self.handle_message(dir, payload, ev);
    }

    /// In-order TCP bytes for one direction.
    pub fn on_stream(&mut self, dir: Direction, mut data: &[u8], ev: &mut Events) {
        if self.tcp.get_mut(dir).resync {
            if parser::probe_tcp(data, dir) == Probe::NoMatch {
                return;
            }
            self.tcp.get_mut(dir).resync = false;
        }
        // Finish a message split over earlier chunks: append exactly what it still needs.
        while !self.tcp.get_mut(dir).buf.is_empty() && !data.is_empty() {
            match parser::split_tcp_message(&self.tcp.get_mut(dir).buf) {
                TcpFrame::Incomplete { needed } => {
                    let (head, rest) = data.split_at(needed.min(data.len()));
                    self.tcp.get_mut(dir).buf.extend_from_slice(head);
                    data = rest;
                }
                TcpFrame::Message(..) => break,
            }
            let buf = std::mem::take(&mut self.tcp.get_mut(dir).buf);
            if let TcpFrame::Message(msg, _) = parser::split_tcp_message(&buf) {
                self.handle_message(dir, msg, ev);
            } else {
                self.tcp.get_mut(dir).buf = buf;
            }
        }
        // Whole messages straight from the input, no copy.
        while !data.is_empty() {
            match parser::split_tcp_message(data) {
                TcpFrame::Message(msg, rest) => {
                    self.handle_message(dir, msg, ev);
                    data = rest;
                }
                TcpFrame::Incomplete { .. } => {
                    self.tcp.get_mut(dir).buf.extend_from_slice(data);
                    break;
                }
            }
        }
    }

    /// Lost bytes: a partial message is dropped and the direction resynchronises on the next
    /// chunk that starts like a DNS message.
    pub fn on_gap(&mut self, dir: Direction) {
        let d = &mut self.tcp.get_mut(dir);
        d.buf.clear();
        d.resync = true;
    }

    /// End of a direction: a partial TCP message can never complete.
    pub fn on_close(&mut self, dir: Direction, ev: &mut Events) {
        let d = &mut self.tcp.get_mut(dir);
        if !d.buf.is_empty() {
            d.buf.clear();
            ev.push(AppEventKind::Dns(DnsEvent::MalformedData), dir, None);
        }
    }

    fn handle_message(&mut self, dir: Direction, bytes: &[u8], ev: &mut Events) {
        let lim = self.limits();
        let msg = match parser::parse_message(bytes, lim) {
            Ok(m) => m,
            Err(e) => {
                let kind = match e {
                    DnsError::InfiniteLoop => DnsEvent::InfiniteLoop,
                    DnsError::TooManyLabels => DnsEvent::TooManyLabels,
                    DnsError::Truncated { .. } | DnsError::BadLabel { .. } => {
                        DnsEvent::MalformedData
                    }
                };
                // Keep the header when there is one so `dns.opcode` and friends still apply.
                match parser::parse_header(bytes) {
                    Ok((header, _)) => {
                        let id = self.push_tx(
                            dir,
                            DnsMessage {
                                header,
                                ..DnsMessage::default()
                            },
                            ev,
                        );
                        ev.push(AppEventKind::Dns(kind), dir, Some(id));
                    }
                    Err(_) => ev.push(AppEventKind::Dns(kind), dir, None),
                }
                return;
            }
        };
        let h = msg.header;
        let mut kinds = Vec::new();
        match (dir, h.is_response()) {
            (Direction::ToServer, true) => kinds.push(DnsEvent::NotRequest),
            (Direction::ToClient, false) => kinds.push(DnsEvent::NotResponse),
            _ => {}
        }
        if h.flags & 0x0040 != 0 {
            kinds.push(DnsEvent::ZFlagSet);
        }
        if !matches!(h.opcode(), 0..=2 | 4..=6) {
            kinds.push(DnsEvent::InvalidOpcode);
        }
        if msg.flags.name_too_long {
            kinds.push(DnsEvent::NameTooLong);
        }
        if msg.flags.malformed {
            kinds.push(DnsEvent::MalformedData);
        }
        let id = self.push_tx(dir, msg, ev);
        for k in kinds {
            ev.push(AppEventKind::Dns(k), dir, Some(id));
        }
    }

    fn push_tx(&mut self, dir: Direction, msg: DnsMessage, ev: &mut Events) -> u64 {
        if self.txs.len() >= self.cfg.max_txs.max(1)
            && let Some(old) = self.txs.pop_front()
        {
            ev.push(AppEventKind::TooManyTransactions, dir, Some(old.id));
        }
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        self.txs.push_back(DnsTx {
            id,
            dir,
            msg,
            inspected: PerDir::default(),
        });
        id
    }

    /// Live transactions in id order.
    pub fn txs(&self) -> std::collections::vec_deque::Iter<'_, DnsTx> {
        self.txs.iter()
    }

    /// Marks `id` inspected in `dir`; a transaction inspected in its own direction is freed.
    pub fn tx_inspected(&mut self, id: u64, dir: Direction) {
        if let Some(pos) = self.txs.iter().position(|t| t.id == id) {
            let done = self.txs.get_mut(pos).is_some_and(|t| {
                *t.inspected.get_mut(dir) = true;
                *t.inspected.get(t.dir)
            });
            if done {
                self.txs.remove(pos);
            }
        }
    }
}
