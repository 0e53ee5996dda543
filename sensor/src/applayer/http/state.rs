//! The HTTP/1.x stream state machine of one flow (both directions).
//!
//! Input: in-order bytes per direction in chunks of any size, gaps, closes.
//! Output: [`HttpTx`]s in id order; requests create transactions, responses attach to the
//! oldest transaction still waiting for one (pipelining), or create one with an event.
//! Invariants: a line is processed straight from the input when it lies within one chunk; only
//! a line split across chunks is copied into the side's line buffer. Splitting the stream
//! anywhere gives the same transactions. Progress only grows; interim `1xx` responses are
//! parsed and dropped without touching the transaction (Suricata briefly exposes them; we keep
//! progress monotone instead). After a `CONNECT` 2xx or a `101`, both directions stop (tunnel).
//! Caps: `max_line_len` per line (longer lines are truncated, event), `max_headers` fields per
//! message (event), body limits and decompression limits from [`HttpConfig`], `max_txs`
//! transactions (oldest dropped, event).

use std::collections::VecDeque;

use super::decompress::BodyDecoder;
use super::normalize::normalize_uri;
use super::parser::{self, is_lws};
use super::tx::{HttpTx, Message, range_in};
use super::{HttpConfig, HttpEvent, progress};
use crate::Direction;
use crate::applayer::events::{AppEventKind, Events};

mod body;
use crate::applayer::perdir::PerDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    /// Waiting for a request/status line (empty lines are skipped).
    #[default]
    Idle,
    /// A request line had no protocol: the next line decides between headers and HTTP/0.9.
    Probe09,
    Headers,
    Trailers,
    BodyLength(u64),
    ChunkLen,
    ChunkData(u64),
    ChunkEnd,
    /// Body until the direction closes.
    BodyClose,
    /// Nothing more is parsed in this direction.
    Ignore,
    /// After a gap: wait for a line that starts a message.
    Resync,
}

#[derive(Debug, Default)]
struct Side {
    phase: Phase,
    /// A line split across chunks (bounded by `max_line_len`).
    line: Vec<u8>,
    line_overflow: bool,
    /// The header being assembled (folded continuation lines appended).
    folded: Option<Vec<u8>>,
    /// The transaction this side is filling.
    tx: Option<u64>,
    /// Interim (1xx) response being skipped.
    interim: bool,
    too_many_headers: bool,
    decoder: Option<BodyDecoder>,
    decoded: usize,
    limit_hit: bool,
}

/// HTTP state of one flow.
#[derive(Debug)]
pub struct HttpState {
    txs: VecDeque<HttpTx>,
    next_id: u64,
    sides: PerDir<Side>,
    cfg: HttpConfig,
}

enum LineStep<'a> {
    Borrowed(&'a [u8], &'a [u8]),
    Owned(Vec<u8>, &'a [u8]),
    Pending,
}

impl HttpState {
    /// Empty state.
    #[must_use]
    pub fn new(cfg: &HttpConfig) -> Self {
        Self {
            txs: VecDeque::new(),
            next_id: 0,
            sides: Default::default(),
            cfg: cfg.clone(),
        }
    }

    /// Live transactions in id order.
    pub fn txs(&self) -> std::collections::vec_deque::Iter<'_, HttpTx> {
        self.txs.iter()
    }

    fn tx_mut(&mut self, id: Option<u64>) -> Option<&mut HttpTx> {
        let id = id?;
        self.txs.iter_mut().rev().find(|t| t.id == id)
    }

    fn side_tx(&mut self, dir: Direction) -> Option<&mut HttpTx> {
        let id = self.sides.get_mut(dir).tx;
        self.tx_mut(id)
    }

    fn new_tx(&mut self, dir: Direction, ev: &mut Events) -> u64 {
        if self.txs.len() >= self.cfg.max_txs.max(1)
            && let Some(old) = self.txs.pop_front()
        {
            ev.push(AppEventKind::TooManyTransactions, dir, Some(old.id));
        }
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        self.txs.push_back(HttpTx {
            id,
            ..HttpTx::default()
        });
        id
    }

    /// Marks `id` inspected in `dir`; transactions complete and inspected in both directions
    /// are freed.
    pub fn tx_inspected(&mut self, id: u64, dir: Direction) {
        if let Some(t) = self.tx_mut(Some(id)) {
            *t.inspected.get_mut(dir) = true;
        }
        self.txs.retain(|t| {
            !(t.inspected == PerDir::new(true, true)
                && t.is_complete(Direction::ToServer)
                && t.is_complete(Direction::ToClient))
        });
    }

    /// In-order bytes for `dir`.
    pub fn on_stream(&mut self, dir: Direction, mut data: &[u8], ev: &mut Events) {
        while !data.is_empty() {
            match self.sides.get_mut(dir).phase {
                Phase::Ignore => return,
                Phase::BodyClose => {
                    self.body(dir, data, ev);
                    return;
                }
                Phase::BodyLength(rem) | Phase::ChunkData(rem) => {
                    let by_length = matches!(self.sides.get_mut(dir).phase, Phase::BodyLength(_));
                    let n = usize::try_from(rem).unwrap_or(usize::MAX).min(data.len());
                    let (chunk, rest) = data.split_at(n);
                    self.body(dir, chunk, ev);
                    data = rest;
                    let left = rem.saturating_sub(n as u64);
                    match (by_length, left) {
                        // Body done: no recursion, the loop goes on with the next message.
                        (true, 0) => self.complete_side(dir),
                        (true, l) => self.sides.get_mut(dir).phase = Phase::BodyLength(l),
                        (false, 0) => self.sides.get_mut(dir).phase = Phase::ChunkEnd,
                        (false, l) => self.sides.get_mut(dir).phase = Phase::ChunkData(l),
                    }
                }
                _ => match self.next_line(dir, data, ev) {
                    LineStep::Pending => return,
                    LineStep::Borrowed(raw, rest) => {
                        self.line(dir, raw, ev);
                        data = rest;
                    }
                    LineStep::Owned(raw, rest) => {
                        self.line(dir, &raw, ev);
                        data = rest;
                    }
                },
            }
        }
    }

    /// Takes the next complete line (raw, with terminator), copying only when it spans chunks.
    fn next_line<'a>(&mut self, dir: Direction, data: &'a [u8], ev: &mut Events) -> LineStep<'a> {
        let cap = self.cfg.max_line_len.max(1);
        let tx = self.sides.get_mut(dir).tx;
        let side = &mut self.sides.get_mut(dir);
        let lf = memchr::memchr(b'\n', data);
        if side.line.is_empty()
            && !side.line_overflow
            && let Some(pos) = lf
        {
            let (raw, rest) = data.split_at(pos + 1);
            if raw.len() > cap {
                ev.push(AppEventKind::Http(HttpEvent::FieldTooLong(dir)), dir, tx);
                return LineStep::Borrowed(raw.get(..cap).unwrap_or(raw), rest);
            }
            return LineStep::Borrowed(raw, rest);
        }
        let upto = lf.map_or(data.len(), |p| p + 1);
        let (part, rest) = data.split_at(upto);
        let room = cap.saturating_sub(side.line.len());
        if part.len() > room && !side.line_overflow {
            side.line_overflow = true;
            ev.push(AppEventKind::Http(HttpEvent::FieldTooLong(dir)), dir, tx);
        }
        side.line
            .extend_from_slice(part.get(..room.min(part.len())).unwrap_or_default());
        if lf.is_none() {
            return LineStep::Pending;
        }
        side.line_overflow = false;
        LineStep::Owned(std::mem::take(&mut side.line), rest)
    }

    /// Dispatches one complete line.
    fn line(&mut self, dir: Direction, raw: &[u8], ev: &mut Events) {
        let line = parser::chomp(raw);
        match self.sides.get_mut(dir).phase {
            Phase::Idle => match dir {
                Direction::ToServer => self.request_line(raw, ev),
                Direction::ToClient => self.response_line(raw, ev),
            },
            Phase::Resync => {
                let plausible = match dir {
                    Direction::ToServer => {
                        crate::applayer::detect_proto::probe_tcp(dir, line, PORTS_NONE)
                            == crate::applayer::detect_proto::Probe::Match(
                                crate::applayer::AppProto::Http,
                            )
                    }
                    Direction::ToClient => line.starts_with(b"HTTP/"),
                };
                if plausible {
                    self.sides.get_mut(dir).phase = Phase::Idle;
                    self.line(dir, raw, ev);
                }
            }
            Phase::Probe09 => {
                if parser::looks_like_header(line) {
                    if let Some(t) = self.side_tx(dir) {
                        t.req.is_09 = false;
                    }
                    self.sides.get_mut(dir).phase = Phase::Headers;
                    self.line(dir, raw, ev);
                } else {
                    // HTTP/0.9: no headers; libhtp ignores what follows on this side.
                    self.complete_side(dir);
                    self.sides.get_mut(dir).phase = Phase::Ignore;
                }
            }
            Phase::Headers | Phase::Trailers => self.header_line(dir, raw, ev),
            Phase::ChunkLen => {
                // libhtp counts chunk framing in the message length (Suricata's `length`).
                self.count_framing(dir, raw.len());
                if line.is_empty() {
                    return;
                }
                match parser::parse_chunk_len(line) {
                    Some(0) => {
                        self.sides.get_mut(dir).phase = Phase::Trailers;
                        if let Some(t) = self.side_tx(dir) {
                            let m = msg_mut(t, dir);
                            m.progress = m.progress.max(progress::TRAILER);
                        }
                    }
                    Some(n) => self.sides.get_mut(dir).phase = Phase::ChunkData(n),
                    None => {
                        let tx = self.sides.get_mut(dir).tx;
                        ev.push(AppEventKind::Http(HttpEvent::InvalidChunkLen(dir)), dir, tx);
                        match dir {
                            Direction::ToServer => {
                                self.complete_side(dir);
                                self.sides.get_mut(dir).phase = Phase::Ignore;
                            }
                            Direction::ToClient => {
                                self.sides.get_mut(dir).phase = Phase::BodyClose;
                                self.body(dir, raw, ev);
                            }
                        }
                    }
                }
            }
            Phase::ChunkEnd => {
                self.count_framing(dir, raw.len());
                self.sides.get_mut(dir).phase = Phase::ChunkLen;
            }
            Phase::BodyLength(_) | Phase::ChunkData(_) | Phase::BodyClose | Phase::Ignore => {}
        }
    }

    fn count_framing(&mut self, dir: Direction, n: usize) {
        if let Some(t) = self.side_tx(dir) {
            let m = msg_mut(t, dir);
            m.body_len = m.body_len.saturating_add(n as u64);
        }
    }

    fn request_line(&mut self, raw: &[u8], ev: &mut Events) {
        let dir = Direction::ToServer;
        let line = parser::chomp(raw);
        if line.is_empty() {
            return;
        }
        let id = self.new_tx(dir, ev);
        self.sides.ts.tx = Some(id);
        self.sides.ts.too_many_headers = false;
        let rl = parser::parse_request_line(line);
        let mut events = Vec::new();
        if rl.leading_whitespace {
            events.push(HttpEvent::RequestLineLeadingWhitespace);
        }
        if rl.non_compliant_delimiter {
            events.push(HttpEvent::MethodDelimNonCompliant);
        }
        let missing_protocol = rl.protocol.is_none();
        if missing_protocol {
            events.push(HttpEvent::RequestLineMissingProtocol);
        }
        let (method, uri, protocol) = (
            range_in(line, rl.method),
            rl.uri.map(|u| range_in(line, u)),
            rl.protocol.map(|p| range_in(line, p)),
        );
        let uri_norm = rl.uri.map(normalize_uri).unwrap_or_default();
        if let Some(t) = self.tx_mut(Some(id)) {
            t.req.msg.line = line.to_vec();
            t.req.method = method;
            t.req.uri = uri;
            t.req.protocol = protocol;
            t.req.uri_norm = uri_norm;
            t.req.is_09 = missing_protocol;
            t.req.msg.progress = progress::LINE;
        }
        for e in events {
            ev.push(AppEventKind::Http(e), dir, Some(id));
        }
        self.sides.ts.phase = if missing_protocol {
            Phase::Probe09
        } else {
            Phase::Headers
        };
    }

    fn response_line(&mut self, raw: &[u8], ev: &mut Events) {
        let dir = Direction::ToClient;
        let line = parser::chomp(raw);
        if line.is_empty() {
            return;
        }
        let id = self.bind_response(ev);
        self.sides.tc.tx = Some(id);
        self.sides.tc.too_many_headers = false;
        let is_09 = self.tx_mut(Some(id)).is_some_and(|t| t.req.is_09);
        if is_09 || parser::response_line_is_body(line) {
            // Not an HTTP status line: the whole response is body until close.
            if let Some(t) = self.tx_mut(Some(id)) {
                t.resp.as_body = true;
                t.resp.msg.progress = progress::HEADERS;
            }
            self.sides.tc.phase = Phase::BodyClose;
            self.body(dir, raw, ev);
            return;
        }
        let rl = parser::parse_response_line(line);
        if let Some(code @ 100..=199) = rl.status_number
            && code != 101
        {
            let seen = self
                .tx_mut(Some(id))
                .is_some_and(|t| std::mem::replace(&mut t.resp.seen_100, true));
            if seen {
                ev.push(
                    AppEventKind::Http(HttpEvent::ContinueAlreadySeen),
                    dir,
                    Some(id),
                );
            }
            self.sides.tc.interim = true;
            self.sides.tc.phase = Phase::Headers;
            return;
        }
        if rl.status_number.is_none() {
            ev.push(
                AppEventKind::Http(HttpEvent::ResponseInvalidStatus),
                dir,
                Some(id),
            );
        }
        let (p, s, m) = (
            range_in(line, rl.protocol),
            range_in(line, rl.status),
            range_in(line, rl.message),
        );
        if let Some(t) = self.tx_mut(Some(id)) {
            t.resp.msg.line = line.to_vec();
            t.resp.protocol = p;
            t.resp.status = s;
            t.resp.message = m;
            t.resp.status_number = rl.status_number;
            t.resp.msg.progress = progress::LINE;
        }
        self.sides.tc.phase = Phase::Headers;
    }

    /// The oldest transaction whose response has not started, or a new one (with an event).
    fn bind_response(&mut self, ev: &mut Events) -> u64 {
        if let Some(t) = self
            .txs
            .iter()
            .find(|t| t.resp.msg.progress == progress::NOT_STARTED)
        {
            return t.id;
        }
        let id = self.new_tx(Direction::ToClient, ev);
        ev.push(
            AppEventKind::Http(HttpEvent::UnableToMatchResponseToRequest),
            Direction::ToClient,
            Some(id),
        );
        if let Some(t) = self.tx_mut(Some(id)) {
            t.req.msg.progress = progress::COMPLETE;
        }
        id
    }

    fn header_line(&mut self, dir: Direction, raw: &[u8], ev: &mut Events) {
        let line = parser::chomp(raw);
        let trailers = self.sides.get_mut(dir).phase == Phase::Trailers;
        if !trailers
            && !self.sides.get_mut(dir).interim
            && let Some(t) = self.side_tx(dir)
        {
            msg_mut(t, dir).headers_raw.extend_from_slice(raw);
        }
        if line.is_empty() {
            self.flush_header(dir, ev);
            if self.sides.get_mut(dir).interim {
                self.sides.get_mut(dir).interim = false;
                self.sides.get_mut(dir).phase = Phase::Idle;
            } else if trailers {
                self.trailers_done(dir);
            } else {
                self.headers_done(dir, ev);
            }
            return;
        }
        if line.first().is_some_and(|&b| is_lws(b)) {
            if let Some(f) = self.sides.get_mut(dir).folded.as_mut() {
                if f.len() + line.len() <= self.cfg.max_line_len {
                    f.extend_from_slice(line);
                }
                return;
            }
            let tx = self.sides.get_mut(dir).tx;
            ev.push(
                AppEventKind::Http(HttpEvent::InvalidFieldFolding(dir)),
                dir,
                tx,
            );
        }
        self.flush_header(dir, ev);
        self.sides.get_mut(dir).folded = Some(line.to_vec());
    }

    /// Adds the assembled header (if any) to the message.
    fn flush_header(&mut self, dir: Direction, ev: &mut Events) {
        let Some(field) = self.sides.get_mut(dir).folded.take() else {
            return;
        };
        if self.sides.get_mut(dir).interim {
            return;
        }
        let max = self.cfg.max_headers;
        let mut events = Vec::new();
        let mut too_many = self.sides.get_mut(dir).too_many_headers;
        let tx = self.sides.get_mut(dir).tx;
        if let Some(t) = self.side_tx(dir) {
            let h = parser::parse_header_line(&field);
            if h.missing_colon {
                events.push(HttpEvent::FieldMissingColon(dir));
            }
            let table = &mut msg_mut(t, dir).headers;
            if table.len() >= max && table.get(h.name).is_none() {
                if !too_many {
                    events.push(HttpEvent::TooManyHeaders(dir));
                }
                too_many = true;
            } else if let super::headers::Added::DuplicateContentLength(true) =
                table.add(h.name, h.value)
            {
                events.push(HttpEvent::DuplicateContentLength(dir));
            }
        }
        self.sides.get_mut(dir).too_many_headers = too_many;
        for e in events {
            ev.push(AppEventKind::Http(e), dir, tx);
        }
    }

    fn trailers_done(&mut self, dir: Direction) {
        let skip: &[u8] = if dir == Direction::ToServer {
            b"cookie"
        } else {
            b"set-cookie"
        };
        if let Some(t) = self.side_tx(dir) {
            msg_mut(t, dir).finish_headers(skip);
        }
        self.complete_side(dir);
    }

    /// The side's transaction is complete in `dir`; the side waits for the next message.
    fn complete_side(&mut self, dir: Direction) {
        if let Some(t) = self.side_tx(dir) {
            msg_mut(t, dir).progress = progress::COMPLETE;
        }
        let side = &mut self.sides.get_mut(dir);
        side.tx = None;
        side.decoder = None;
        side.folded = None;
        side.interim = false;
        side.phase = Phase::Idle;
    }

    /// Lost bytes in `dir`.
    pub fn on_gap(&mut self, dir: Direction, len: u64, _ev: &mut Events) {
        let mark_gap = |s: &mut Self| {
            if let Some(t) = s.side_tx(dir) {
                let m = msg_mut(t, dir);
                m.body_gap = true;
                m.body_len = m.body_len.saturating_add(len);
            }
        };
        match self.sides.get_mut(dir).phase {
            Phase::Ignore => {}
            Phase::BodyClose => mark_gap(self),
            Phase::BodyLength(rem) | Phase::ChunkData(rem) => {
                mark_gap(self);
                let left = rem.saturating_sub(len);
                let chunked = matches!(self.sides.get_mut(dir).phase, Phase::ChunkData(_));
                self.sides.get_mut(dir).phase = match (chunked, left) {
                    (false, 0) => return self.complete_side(dir),
                    (false, l) => Phase::BodyLength(l),
                    (true, 0) => Phase::ChunkEnd,
                    (true, l) => Phase::ChunkData(l),
                };
                // A gap longer than the chunk leaves us inside unknown framing.
                if chunked && len > rem {
                    self.complete_side(dir);
                    self.sides.get_mut(dir).phase = Phase::Resync;
                }
            }
            _ => {
                if self.sides.get_mut(dir).tx.is_some() {
                    self.complete_side(dir);
                }
                let side = &mut self.sides.get_mut(dir);
                side.line.clear();
                side.line_overflow = false;
                side.phase = Phase::Resync;
            }
        }
    }

    /// End of `dir`: bodies without length end here; every transaction becomes complete in
    /// this direction.
    pub fn on_close(&mut self, dir: Direction, ev: &mut Events) {
        // A last line without terminator still counts.
        if !self.sides.get_mut(dir).line.is_empty()
            && !matches!(
                self.sides.get_mut(dir).phase,
                Phase::Ignore | Phase::BodyClose
            )
        {
            let raw = std::mem::take(&mut self.sides.get_mut(dir).line);
            self.line(dir, &raw, ev);
        }
        match self.sides.get_mut(dir).phase {
            Phase::Headers | Phase::Trailers => {
                self.flush_header(dir, ev);
                if self.sides.get_mut(dir).phase == Phase::Headers
                    && !self.sides.get_mut(dir).interim
                {
                    self.headers_done(dir, ev);
                }
            }
            Phase::Probe09 => {}
            _ => {}
        }
        if self.sides.get_mut(dir).tx.is_some() {
            self.complete_side(dir);
        }
        for t in &mut self.txs {
            let m = msg_mut(t, dir);
            if m.progress < progress::COMPLETE {
                m.progress = progress::COMPLETE;
            }
        }
        self.sides.get_mut(dir).phase = Phase::Ignore;
    }
}

/// No port hints: the resync probe only looks at content.
const PORTS_NONE: crate::applayer::detect_proto::Ports = crate::applayer::detect_proto::Ports {
    server: 0,
    client: 0,
};

fn msg_mut(t: &mut HttpTx, dir: Direction) -> &mut Message {
    match dir {
        Direction::ToServer => &mut t.req.msg,
        Direction::ToClient => &mut t.resp.msg,
    }
}
