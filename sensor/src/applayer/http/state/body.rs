//! Header completion and body handling of the HTTP state machine: body framing decisions
//! (Content-Length, chunked, close-delimited, none; tunnels), host normalization, body
//! storage with limits and decoding.
//!
//! Input: the side whose header block just ended, or body bytes of the side's transaction.
//! Output: the transaction's host fields, body buffer and progress; the side's next phase.
//! Invariants and caps: as in [`super`]; kept body bytes never exceed the configured limit,
//! decoded bytes never exceed `decompress_limit`.

use super::super::decompress::{self, BodyDecoder, CodingError};
use super::super::normalize::{normalize_host, split_uri};
use super::super::parser::{self, has_token};
use super::super::{HttpEvent, progress};
use super::{HttpState, Phase, msg_mut};
use crate::Direction;
use crate::applayer::events::{AppEventKind, Events};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    None,
    Length(u64),
    Chunked,
    Close,
}

impl HttpState {
    pub(super) fn headers_done(&mut self, dir: Direction, ev: &mut Events) {
        let cfg = self.cfg.clone();
        let tx_id = self.sides.get_mut(dir).tx;
        let Some(t) = self.tx_mut(tx_id) else {
            self.sides.get_mut(dir).phase = Phase::Idle;
            return;
        };
        let mut events = Vec::new();
        let skip: &[u8] = if dir == Direction::ToServer {
            b"cookie"
        } else {
            b"set-cookie"
        };
        msg_mut(t, dir).finish_headers(skip);
        msg_mut(t, dir).progress = progress::HEADERS;
        let mut tunnel = false;
        let mut body = BodyKind::None;
        let headers = &msg_mut(t, dir).headers;
        let te = headers.get(b"transfer-encoding").map(<[u8]>::to_vec);
        let cl = headers.get(b"content-length").map(<[u8]>::to_vec);
        let ce = headers.get(b"content-encoding").map(<[u8]>::to_vec);
        let chunked = te.as_deref().is_some_and(|v| has_token(v, b"chunked"));
        if te.is_some() && !chunked {
            events.push(HttpEvent::InvalidTransferEncoding(dir));
        }
        let length = match cl.as_deref().map(parser::parse_content_length) {
            Some(None) => {
                events.push(HttpEvent::InvalidContentLength(dir));
                None
            }
            Some(Some(n)) => Some(n),
            None => None,
        };
        match dir {
            Direction::ToServer => {
                let parts = t
                    .req
                    .uri
                    .clone()
                    .map(|r| split_uri(t.req.msg.line.get(r).unwrap_or_default()));
                let authority = parts.and_then(|p| p.authority).map(<[u8]>::to_vec);
                let host_hdr = t.req.msg.headers.get(b"host").map(<[u8]>::to_vec);
                if let Some(a) = authority.filter(|a| !a.is_empty()) {
                    // An absolute target's host is fully normalized (lowercase, no trailing
                    // dots, no port) and Suricata 7 shows it in both host buffers.
                    let hp = normalize_host(&a);
                    let mut h = hp.host.to_ascii_lowercase();
                    while h.last() == Some(&b'.') {
                        h.pop();
                    }
                    t.req.host_raw = Some(h.clone());
                    t.req.host = Some(h);
                    t.req.port = hp.port;
                } else if let Some(h) = host_hdr {
                    let hp = normalize_host(&h);
                    t.req.host = Some(hp.host);
                    t.req.port = hp.port;
                    t.req.host_raw = Some(h);
                } else if t.req.protocol.clone().and_then(|p| t.req.msg.line.get(p))
                    == Some(b"HTTP/1.1")
                {
                    events.push(HttpEvent::MissingHostHeader);
                }
                body = if chunked {
                    BodyKind::Chunked
                } else {
                    length.map_or(BodyKind::None, BodyKind::Length)
                };
            }
            Direction::ToClient => {
                let method = t.method().map(<[u8]>::to_vec);
                let status = t.resp.status_number;
                if status == Some(101)
                    || (method.as_deref() == Some(b"CONNECT")
                        && status.is_some_and(|s| (200..300).contains(&s)))
                {
                    tunnel = true;
                } else if method.as_deref() == Some(b"HEAD") || matches!(status, Some(204 | 304)) {
                    body = BodyKind::None;
                } else if chunked {
                    body = BodyKind::Chunked;
                } else if let Some(n) = length {
                    body = BodyKind::Length(n);
                } else {
                    body = BodyKind::Close;
                }
            }
        }
        let decode = dir == Direction::ToClient || cfg.decompress_requests;
        let side = &mut self.sides.get_mut(dir);
        side.decoder = None;
        side.decoded = 0;
        side.limit_hit = false;
        if let (Some(ce), true) = (ce, decode && body != BodyKind::None) {
            match decompress::parse_codings(&ce, cfg.decompress_layers) {
                Ok(c) if c.is_empty() => {}
                Ok(c) => side.decoder = Some(BodyDecoder::new(&c)),
                Err(CodingError::TooManyLayers) => {
                    events.push(HttpEvent::TooManyEncodingLayers(dir));
                }
                Err(CodingError::Unknown) => events.push(HttpEvent::AbnormalCeHeader(dir)),
            }
        }
        for e in events {
            ev.push(AppEventKind::Http(e), dir, tx_id);
        }
        if tunnel {
            self.complete_side(dir);
            self.sides.ts.phase = Phase::Ignore;
            self.sides.tc.phase = Phase::Ignore;
            return;
        }
        self.sides.get_mut(dir).phase = match body {
            BodyKind::None | BodyKind::Length(0) => {
                self.complete_side(dir);
                return;
            }
            BodyKind::Length(n) => Phase::BodyLength(n),
            BodyKind::Chunked => Phase::ChunkLen,
            BodyKind::Close => Phase::BodyClose,
        };
        if let Some(t) = self.tx_mut(tx_id) {
            msg_mut(t, dir).progress = progress::BODY;
        }
    }

    /// Body bytes for the side's transaction: counted, decoded if needed, kept up to the limit.
    pub(super) fn body(&mut self, dir: Direction, data: &[u8], ev: &mut Events) {
        let limit = match dir {
            Direction::ToServer => self.cfg.request_body_limit,
            Direction::ToClient => self.cfg.response_body_limit,
        };
        let dlimit = self.cfg.decompress_limit;
        let tx_id = self.sides.get_mut(dir).tx;
        let Some(pos) = tx_id.and_then(|id| self.txs.iter().rposition(|t| t.id == id)) else {
            return;
        };
        let Some(t) = self.txs.get_mut(pos) else {
            return;
        };
        let side = &mut self.sides.get_mut(dir);
        let m = msg_mut(t, dir);
        m.body_len = m.body_len.saturating_add(data.len() as u64);
        m.progress = m.progress.max(progress::BODY);
        let room = limit.saturating_sub(m.body.len());
        let mut failed = false;
        let full = match side.decoder.as_mut() {
            Some(d) => {
                let droom = room.min(dlimit.saturating_sub(side.decoded));
                let before = m.body.len();
                let r = d.push(data, &mut m.body, droom);
                side.decoded += m.body.len() - before;
                failed = r.failed;
                r.limit_reached
            }
            None => {
                let n = room.min(data.len());
                m.body.extend_from_slice(data.get(..n).unwrap_or_default());
                n < data.len()
            }
        };
        if full {
            m.body_truncated = true;
        }
        let first_hit = full && !side.limit_hit;
        side.limit_hit |= full;
        if failed {
            ev.push(
                AppEventKind::Http(HttpEvent::GzipDecompressionFailed(dir)),
                dir,
                tx_id,
            );
        }
        if first_hit {
            ev.push(
                AppEventKind::Http(HttpEvent::BodyLimitReached(dir)),
                dir,
                tx_id,
            );
        }
    }
}
