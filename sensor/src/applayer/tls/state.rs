//! Per-flow TLS state: record and handshake reassembly, and the single handshake transaction.
//!
//! Input: in-order TCP bytes per direction (records may split anywhere; handshake messages may
//! span records), gaps and closes.
//! Output: one [`TlsTx`] per flow with the ClientHello facts (version, SNI, JA3), ServerHello
//! facts (negotiated version, cipher, JA3S, resumption) and the server certificate chain.
//! Invariants: parsing stops in a direction after ChangeCipherSpec or application data (the
//! rest is encrypted), and for the server after a TLS 1.3 ServerHello; a malformed record
//! stops that direction with an event. Chunking does not change the result.
//! Caps: a partial record is at most [`MAX_RECORD_LEN`] + 5 bytes; a partial handshake message
//! at most `max_handshake_len` (longer messages are skipped with an event); at most
//! `max_certs` certificates are kept.

use super::parser::{
    self, HandshakeFrame, MAX_RECORD_LEN, RecordFrame, TlsError, content_type, handshake_type,
};
use super::{TlsConfig, TlsTx, ja3};
use crate::Direction;
use crate::applayer::events::{AppEventKind, Events};
use crate::applayer::perdir::PerDir;

/// TLS anomalies (Suricata's `tls.*` app-layer events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsEvent {
    /// A record had an unknown content type.
    InvalidRecordType,
    /// A record had a version that is not 3.x.
    InvalidRecordVersion,
    /// A record was longer than allowed.
    InvalidRecordLength,
    /// A handshake message could not be parsed.
    InvalidHandshakeMessage,
    /// A handshake message was longer than `max_handshake_len` and was skipped.
    HandshakeInvalidLength,
    /// More than one `server_name` extension.
    MultipleSniExtensions,
    /// A certificate was not valid DER X.509.
    CertificateInvalidDer,
    /// A heartbeat record was seen.
    HeartbeatMessage,
    /// An SSLv2 record could not be parsed.
    InvalidSslv2Header,
}

impl TlsEvent {
    /// Suricata's `app-layer-event` name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::InvalidRecordType => "tls.invalid_record_type",
            Self::InvalidRecordVersion => "tls.invalid_record_version",
            Self::InvalidRecordLength => "tls.invalid_record_length",
            Self::InvalidHandshakeMessage => "tls.invalid_handshake_message",
            Self::HandshakeInvalidLength => "tls.handshake_invalid_length",
            Self::MultipleSniExtensions => "tls.multiple_sni_extensions",
            Self::CertificateInvalidDer => "tls.certificate_invalid_der",
            Self::HeartbeatMessage => "tls.heartbeat_message",
            Self::InvalidSslv2Header => "tls.invalid_sslv2_header",
        }
    }
}

/// Handshake progress values (per direction, monotone).
pub mod progress {
    /// Nothing parsed yet.
    pub const NONE: u8 = 0;
    /// The hello of this direction is parsed (SNI, JA3 / JA3S, version available).
    pub const HELLO: u8 = 1;
    /// Server only: the certificate stage is over (certificates parsed, or known absent).
    pub const CERT: u8 = 2;
    /// The clear-text handshake of this direction is over.
    pub const DONE: u8 = 3;
    /// The direction is closed.
    pub const CLOSED: u8 = 4;
}

#[derive(Debug, Clone, Default)]
struct DirState {
    rec_buf: Vec<u8>,
    hs_buf: Vec<u8>,
    /// Bytes of an oversized handshake message still to skip.
    hs_skip: usize,
    encrypted: bool,
    stopped: bool,
    seen_data: bool,
    in_sslv2: bool,
    resync: bool,
}

/// All TLS state of one flow.
#[derive(Debug, Clone)]
pub struct TlsState {
    tx: TlsTx,
    dirs: PerDir<DirState>,
    cfg: TlsConfig,
}

/// RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest.
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

impl TlsState {
    /// Empty state.
    #[must_use]
    pub fn new(cfg: &TlsConfig) -> Self {
        Self {
            tx: TlsTx::default(),
            dirs: Default::default(),
            cfg: cfg.clone(),
        }
    }

    /// The flow's handshake transaction.
    #[must_use]
    pub fn tx(&self) -> &TlsTx {
        &self.tx
    }

    /// Marks the transaction inspected in `dir` (it is never freed: Suricata keeps the TLS
    /// state for the whole flow and alerts carry its metadata).
    pub fn tx_inspected(&mut self, dir: Direction) {
        *self.tx.inspected.get_mut(dir) = true;
    }

    fn bump(&mut self, dir: Direction, p: u8) {
        let slot = self.tx.progress.get_mut(dir);
        *slot = (*slot).max(p);
    }

    /// In-order stream bytes for one direction.
    pub fn on_stream(&mut self, dir: Direction, mut data: &[u8], ev: &mut Events) {
        if self.dirs.get_mut(dir).stopped || data.is_empty() {
            return;
        }
        if self.dirs.get_mut(dir).resync {
            if matches!(parser::split_record(data), RecordFrame::Invalid(_)) {
                return;
            }
            self.dirs.get_mut(dir).resync = false;
        }
        let first_is_v2 = data.first().is_some_and(|b| b & 0x80 != 0);
        if self.dirs.get_mut(dir).in_sslv2 || (!self.dirs.get_mut(dir).seen_data && first_is_v2) {
            self.dirs.get_mut(dir).in_sslv2 = true;
            self.sslv2(dir, data, ev);
            return;
        }
        self.dirs.get_mut(dir).seen_data = true;
        // Finish a record split over earlier chunks.
        while !self.dirs.get_mut(dir).rec_buf.is_empty() && !data.is_empty() {
            let needed = match parser::split_record(&self.dirs.get_mut(dir).rec_buf) {
                RecordFrame::Incomplete { needed } => needed,
                RecordFrame::Invalid(e) => return self.invalid(dir, e, ev),
                RecordFrame::Record(..) => 0,
            };
            let (head, rest) = data.split_at(needed.min(data.len()));
            self.dirs.get_mut(dir).rec_buf.extend_from_slice(head);
            data = rest;
            let buf = std::mem::take(&mut self.dirs.get_mut(dir).rec_buf);
            match parser::split_record(&buf) {
                RecordFrame::Record(h, body, _) => self.record(dir, h.content_type, body, ev),
                RecordFrame::Invalid(e) => return self.invalid(dir, e, ev),
                RecordFrame::Incomplete { .. } => self.dirs.get_mut(dir).rec_buf = buf,
            }
        }
        // Whole records straight from the input.
        while !data.is_empty() && !self.dirs.get_mut(dir).stopped {
            match parser::split_record(data) {
                RecordFrame::Record(h, body, rest) => {
                    self.record(dir, h.content_type, body, ev);
                    data = rest;
                }
                RecordFrame::Incomplete { .. } => {
                    self.dirs.get_mut(dir).rec_buf.extend_from_slice(data);
                    break;
                }
                RecordFrame::Invalid(e) => return self.invalid(dir, e, ev),
            }
        }
    }

    /// An SSLv2-format first record: a ClientHello (to server) or an SSLv2 server reply.
    fn sslv2(&mut self, dir: Direction, data: &[u8], ev: &mut Events) {
        self.dirs.get_mut(dir).rec_buf.extend_from_slice(data);
        if self.dirs.get_mut(dir).rec_buf.len() > MAX_RECORD_LEN {
            self.dirs.get_mut(dir).rec_buf.clear();
            return self.invalid(dir, TlsError::Malformed("sslv2"), ev);
        }
        match dir {
            Direction::ToServer => {
                let buf = std::mem::take(&mut self.dirs.get_mut(dir).rec_buf);
                match parser::parse_sslv2_client_hello(&buf) {
                    Ok(None) => self.dirs.get_mut(dir).rec_buf = buf,
                    Ok(Some(hello)) => {
                        self.dirs.get_mut(dir).in_sslv2 = false;
                        self.tx.client_version = Some(hello.version);
                        self.tx.sslv2_client_hello = true;
                        self.bump(dir, progress::HELLO);
                        self.dirs.get_mut(dir).seen_data = true;
                        // A TLS-capable client continues with ordinary records.
                        let rest = buf.get(hello.record_len..).unwrap_or_default();
                        self.on_stream(dir, rest, ev);
                    }
                    Err(_) => {
                        ev.push(
                            AppEventKind::Tls(TlsEvent::InvalidSslv2Header),
                            dir,
                            Some(0),
                        );
                        self.dirs.get_mut(dir).stopped = true;
                        self.dirs.get_mut(dir).in_sslv2 = false;
                    }
                }
            }
            Direction::ToClient => {
                // SSLv2 ServerHello: message type 4 after the 2-byte header.
                if let Some(&t) = self.dirs.get_mut(dir).rec_buf.get(2) {
                    if t == 4 {
                        self.tx.version = 0x0002;
                        self.bump(dir, progress::DONE);
                    } else {
                        ev.push(
                            AppEventKind::Tls(TlsEvent::InvalidSslv2Header),
                            dir,
                            Some(0),
                        );
                    }
                    self.dirs.get_mut(dir).rec_buf.clear();
                    self.dirs.get_mut(dir).stopped = true;
                    self.dirs.get_mut(dir).in_sslv2 = false;
                }
            }
        }
    }

    fn invalid(&mut self, dir: Direction, e: TlsError, ev: &mut Events) {
        let kind = match e {
            TlsError::RecordType(_) => TlsEvent::InvalidRecordType,
            TlsError::RecordVersion(_) => TlsEvent::InvalidRecordVersion,
            TlsError::RecordLength(_) => TlsEvent::InvalidRecordLength,
            TlsError::Malformed(_) => TlsEvent::InvalidSslv2Header,
        };
        ev.push(AppEventKind::Tls(kind), dir, Some(0));
        let d = &mut self.dirs.get_mut(dir);
        d.stopped = true;
        d.rec_buf.clear();
        d.hs_buf.clear();
    }

    fn record(&mut self, dir: Direction, ct: u8, body: &[u8], ev: &mut Events) {
        match ct {
            content_type::CCS | content_type::APPLICATION_DATA => {
                self.dirs.get_mut(dir).encrypted = true;
                self.dirs.get_mut(dir).hs_buf.clear();
                self.bump(dir, progress::DONE);
            }
            content_type::HANDSHAKE if !self.dirs.get_mut(dir).encrypted => {
                self.handshake_bytes(dir, body, ev);
            }
            content_type::HEARTBEAT => {
                ev.push(AppEventKind::Tls(TlsEvent::HeartbeatMessage), dir, Some(0));
            }
            _ => {}
        }
    }

    /// Feeds handshake-record payload; complete messages are parsed, a partial one is kept.
    /// A partial message only ever receives the bytes it still lacks, so reassembling a
    /// message from many tiny records stays linear.
    fn handshake_bytes(&mut self, dir: Direction, mut body: &[u8], ev: &mut Events) {
        if self.dirs.get_mut(dir).hs_skip > 0 {
            let n = self.dirs.get_mut(dir).hs_skip.min(body.len());
            self.dirs.get_mut(dir).hs_skip -= n;
            body = body.get(n..).unwrap_or_default();
        }
        while !body.is_empty() && !self.dirs.get_mut(dir).hs_buf.is_empty() {
            let have = self.dirs.get_mut(dir).hs_buf.len();
            let need = match parser::split_handshake(&self.dirs.get_mut(dir).hs_buf) {
                HandshakeFrame::Incomplete { total: Some(t) } if t > self.cfg.max_handshake_len => {
                    ev.push(
                        AppEventKind::Tls(TlsEvent::HandshakeInvalidLength),
                        dir,
                        Some(0),
                    );
                    self.dirs.get_mut(dir).hs_buf.clear();
                    self.dirs.get_mut(dir).hs_skip = t.saturating_sub(have);
                    return self.handshake_bytes(dir, body, ev);
                }
                HandshakeFrame::Incomplete { total: Some(t) } => t.saturating_sub(have),
                HandshakeFrame::Incomplete { total: None } => 4usize.saturating_sub(have),
                HandshakeFrame::Message(..) => 0,
            };
            let (head, rest) = body.split_at(need.min(body.len()));
            self.dirs.get_mut(dir).hs_buf.extend_from_slice(head);
            body = rest;
            let buf = std::mem::take(&mut self.dirs.get_mut(dir).hs_buf);
            match parser::split_handshake(&buf) {
                HandshakeFrame::Message(t, msg, _) => self.handshake(dir, t, msg, ev),
                HandshakeFrame::Incomplete { .. } => self.dirs.get_mut(dir).hs_buf = buf,
            }
        }
        if !body.is_empty() && !self.dirs.get_mut(dir).encrypted {
            self.handshake_messages(dir, body, ev);
        }
    }

    fn handshake_messages(&mut self, dir: Direction, mut data: &[u8], ev: &mut Events) {
        while !data.is_empty() && !self.dirs.get_mut(dir).encrypted {
            match parser::split_handshake(data) {
                HandshakeFrame::Message(t, body, rest) => {
                    self.handshake(dir, t, body, ev);
                    data = rest;
                }
                HandshakeFrame::Incomplete { total } => {
                    if total.is_some_and(|t| t > self.cfg.max_handshake_len) {
                        ev.push(
                            AppEventKind::Tls(TlsEvent::HandshakeInvalidLength),
                            dir,
                            Some(0),
                        );
                        self.dirs.get_mut(dir).hs_skip =
                            total.unwrap_or(0).saturating_sub(data.len());
                    } else {
                        self.dirs.get_mut(dir).hs_buf = data.to_vec();
                    }
                    return;
                }
            }
        }
    }

    fn handshake(&mut self, dir: Direction, t: u8, body: &[u8], ev: &mut Events) {
        let bad = |ev: &mut Events| {
            ev.push(
                AppEventKind::Tls(TlsEvent::InvalidHandshakeMessage),
                dir,
                Some(0),
            );
        };
        match (dir, t) {
            (Direction::ToServer, handshake_type::CLIENT_HELLO) => {
                let Ok(ch) = parser::parse_client_hello(body) else {
                    return bad(ev);
                };
                self.tx.client_version = Some(ch.version);
                self.tx.client_session_id = ch.session_id.to_vec();
                let mut snis = ch.extensions.iter().filter(|e| e.ext_type == 0);
                if let Some(e) = snis.next() {
                    self.tx.sni = parser::parse_sni(e.data).map(<[u8]>::to_vec);
                }
                if snis.next().is_some() {
                    ev.push(
                        AppEventKind::Tls(TlsEvent::MultipleSniExtensions),
                        dir,
                        Some(0),
                    );
                }
                if self.cfg.ja3 {
                    let s = ja3::ja3_string(&ch);
                    self.tx.ja3_hash = Some(ja3::md5_hex(&s));
                    self.tx.ja3_string = Some(s);
                }
                self.bump(dir, progress::HELLO);
            }
            (Direction::ToClient, handshake_type::SERVER_HELLO) => {
                let Ok(sh) = parser::parse_server_hello(body) else {
                    return bad(ev);
                };
                if sh.random == HRR_RANDOM {
                    return; // HelloRetryRequest: the real ServerHello follows in clear text.
                }
                let selected = sh
                    .extensions
                    .iter()
                    .find(|e| e.ext_type == 43)
                    .and_then(|e| parser::parse_supported_versions(e.data, true));
                self.tx.version = selected.unwrap_or(sh.version);
                self.tx.cipher = Some(sh.cipher);
                if !self.tx.client_session_id.is_empty()
                    && sh.session_id == self.tx.client_session_id.as_slice()
                {
                    self.tx.session_resumed = true;
                }
                if self.cfg.ja3 {
                    let s = ja3::ja3s_string(&sh);
                    self.tx.ja3s_hash = Some(ja3::md5_hex(&s));
                    self.tx.ja3s_string = Some(s);
                }
                self.bump(dir, progress::HELLO);
                if self.tx.version == 0x0304 || self.tx.version >> 8 == 0x7f {
                    // TLS 1.3: everything after the ServerHello is encrypted, certs included.
                    self.dirs.get_mut(dir).encrypted = true;
                    self.bump(dir, progress::DONE);
                }
            }
            (Direction::ToClient, handshake_type::CERTIFICATE) => {
                let Ok(ders) = parser::parse_certificates(body, self.cfg.max_certs) else {
                    return bad(ev);
                };
                self.tx.certs.clear();
                for der in ders {
                    let cert = super::CertInfo::from_der(der);
                    if cert.subject.is_none() {
                        ev.push(
                            AppEventKind::Tls(TlsEvent::CertificateInvalidDer),
                            dir,
                            Some(0),
                        );
                    }
                    self.tx.certs.push(cert);
                }
                self.bump(dir, progress::CERT);
            }
            // ServerHelloDone / ServerKeyExchange: the certificate stage is over.
            (Direction::ToClient, 12 | 14) => self.bump(dir, progress::CERT),
            _ => {}
        }
    }

    /// Lost bytes: partial buffers are dropped and the direction resumes at the next chunk
    /// that starts with a valid record header.
    pub fn on_gap(&mut self, dir: Direction) {
        let d = &mut self.dirs.get_mut(dir);
        d.rec_buf.clear();
        d.hs_buf.clear();
        d.hs_skip = 0;
        d.resync = true;
        d.seen_data = true;
    }

    /// End of a direction.
    pub fn on_close(&mut self, dir: Direction) {
        self.bump(dir, progress::CLOSED);
    }
}
