//! Pure DNS wire-format parsers (RFC 1035): message header, question and resource records,
//! compressed names, TCP length framing, and the detection probes.
//!
//! Input: one whole DNS message (a UDP payload, or a TCP message without its length prefix).
//! Output: a [`DnsMessage`] owning its names (names must be decompressed, so they are copied;
//! everything else is plain integers), or a [`DnsError`].
//! Invariants: never panics, never reads outside the message; compression pointers are
//! followed at most [`MAX_POINTER_JUMPS`] times and at most [`MAX_LABELS`] labels are read per
//! name, so a pointer loop ends with [`DnsError::InfiniteLoop`] instead of spinning.
//! Caps: names are truncated at `max_name_len` bytes (flagged, like Suricata's 1025-byte
//! limit); at most `max_records` questions and records are kept per section (the rest are
//! skipped but counted).

use nom::number::complete::{be_u16, be_u32};
use nom::{IResult, Parser};

use crate::Direction;
use crate::applayer::AppProto;
use crate::applayer::detect_proto::Probe;

/// DNS header length.
pub const HEADER_LEN: usize = 12;
/// Compression pointers followed per name before giving up.
pub const MAX_POINTER_JUMPS: usize = 255;
/// Labels read per name before giving up.
pub const MAX_LABELS: usize = 255;

/// Why a DNS message could not be parsed. Cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The message ended inside a field.
    #[error("dns: message truncated at offset {offset}")]
    Truncated {
        /// Offset where more bytes were needed.
        offset: usize,
    },
    /// A label length byte used the reserved 0x40/0x80 forms.
    #[error("dns: invalid label type {byte:#04x} at offset {offset}")]
    BadLabel {
        /// The offending length byte.
        byte: u8,
        /// Its offset.
        offset: usize,
    },
    /// Compression pointers did not terminate.
    #[error("dns: compression pointer loop")]
    InfiniteLoop,
    /// A name had more than [`MAX_LABELS`] labels.
    #[error("dns: too many labels in a name")]
    TooManyLabels,
}

/// The fixed 12-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DnsHeader {
    /// Transaction identifier.
    pub id: u16,
    /// Flags word (QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode).
    pub flags: u16,
    /// Question count as written.
    pub qdcount: u16,
    /// Answer count as written.
    pub ancount: u16,
    /// Authority count as written.
    pub nscount: u16,
    /// Additional count as written.
    pub arcount: u16,
}

impl DnsHeader {
    /// QR bit: true for responses.
    #[must_use]
    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    /// The 4-bit opcode.
    #[must_use]
    pub fn opcode(&self) -> u8 {
        // masked to 4 bits, fits in u8
        u8::try_from((self.flags >> 11) & 0x0f).unwrap_or(0)
    }
    /// The 4-bit response code.
    #[must_use]
    pub fn rcode(&self) -> u8 {
        u8::try_from(self.flags & 0x0f).unwrap_or(0)
    }
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsQuery {
    /// The name, labels joined with `.`, no trailing dot; empty for the root.
    pub name: Vec<u8>,
    /// Query type (1 = A, 28 = AAAA, ...).
    pub rrtype: u16,
    /// Query class (1 = IN).
    pub rrclass: u16,
}

/// Decoded resource data for the types rules and logs care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsRdata {
    /// IPv4 address.
    A([u8; 4]),
    /// IPv6 address.
    Aaaa([u8; 16]),
    /// A single domain name (CNAME, NS, PTR, DNAME, MB, MD, MF, MG, MR).
    Name(Vec<u8>),
    /// Mail exchanger.
    Mx {
        /// Preference.
        preference: u16,
        /// Exchange host.
        exchange: Vec<u8>,
    },
    /// Start of authority (names only; the counters are kept raw in `Other` form elsewhere).
    Soa {
        /// Primary name server.
        mname: Vec<u8>,
        /// Responsible mailbox.
        rname: Vec<u8>,
    },
    /// Service location.
    Srv {
        /// Priority.
        priority: u16,
        /// Weight.
        weight: u16,
        /// Port.
        port: u16,
        /// Target host.
        target: Vec<u8>,
    },
    /// Text strings (TXT, SPF).
    Txt(Vec<Vec<u8>>),
    /// Anything else, raw.
    Other(Vec<u8>),
}

/// One resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// Owner name.
    pub name: Vec<u8>,
    /// Record type.
    pub rrtype: u16,
    /// Record class.
    pub rrclass: u16,
    /// Time to live, seconds.
    pub ttl: u32,
    /// Decoded data.
    pub rdata: DnsRdata,
}

/// Anomalies found while parsing a message that did not stop the parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DnsFlags {
    /// Some name was longer than the cap and was truncated.
    pub name_too_long: bool,
    /// A later section failed to parse (the message is kept up to that point).
    pub malformed: bool,
    /// More questions/records than the cap; the excess was not kept.
    pub records_capped: bool,
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsMessage {
    /// Header.
    pub header: DnsHeader,
    /// Questions.
    pub queries: Vec<DnsQuery>,
    /// Answer section.
    pub answers: Vec<DnsRecord>,
    /// Authority section.
    pub authorities: Vec<DnsRecord>,
    /// Non-fatal anomalies.
    pub flags: DnsFlags,
}

/// Size limits for [`parse_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsLimits {
    /// Names longer than this are truncated.
    pub max_name_len: usize,
    /// Questions / records kept per section.
    pub max_records: usize,
}

impl Default for DnsLimits {
    fn default() -> Self {
        Self {
            max_name_len: 1025,
            max_records: 256,
        }
    }
}

fn truncated(msg: &[u8], rest: &[u8]) -> DnsError {
    DnsError::Truncated {
        offset: msg.len().saturating_sub(rest.len()),
    }
}

/// The six 16-bit header words.
type HeaderWords = (u16, u16, u16, u16, u16, u16);

/// Parses the 12-byte header.
///
/// # Errors
/// [`DnsError::Truncated`] when fewer than 12 bytes are given.
pub fn parse_header(msg: &[u8]) -> Result<(DnsHeader, &[u8]), DnsError> {
    let res: IResult<&[u8], HeaderWords> =
        (be_u16, be_u16, be_u16, be_u16, be_u16, be_u16).parse(msg);
    let (rest, (id, flags, qdcount, ancount, nscount, arcount)) =
        res.map_err(|_| DnsError::Truncated { offset: msg.len() })?;
    Ok((
        DnsHeader {
            id,
            flags,
            qdcount,
            ancount,
            nscount,
            arcount,
        },
        rest,
    ))
}

/// Reads a (possibly compressed) name starting at `offset` in `msg`.
///
/// Returns the name (labels joined with `.`, truncated to `max_len` bytes), the offset just
/// after the name at its original position, and whether it was truncated.
///
/// # Errors
/// [`DnsError::Truncated`], [`DnsError::BadLabel`], [`DnsError::InfiniteLoop`],
/// [`DnsError::TooManyLabels`].
pub fn parse_name(
    msg: &[u8],
    offset: usize,
    max_len: usize,
) -> Result<(Vec<u8>, usize, bool), DnsError> {
    let mut name = Vec::new();
    let mut pos = offset;
    let mut end: Option<usize> = None;
    let mut jumps = 0usize;
    let mut labels = 0usize;
    let mut too_long = false;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated { offset: pos })?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                let after = pos.saturating_add(1);
                return Ok((name, end.unwrap_or(after), too_long));
            }
            0x00 => {
                labels += 1;
                if labels > MAX_LABELS {
                    return Err(DnsError::TooManyLabels);
                }
                let start = pos.saturating_add(1);
                let stop = start.saturating_add(usize::from(len));
                let label = msg
                    .get(start..stop)
                    .ok_or(DnsError::Truncated { offset: start })?;
                let sep = usize::from(!name.is_empty());
                if name.len() + sep + label.len() <= max_len && !too_long {
                    if sep == 1 {
                        name.push(b'.');
                    }
                    name.extend_from_slice(label);
                } else {
                    too_long = true;
                }
                pos = stop;
            }
            0xc0 => {
                let low = *msg
                    .get(pos.saturating_add(1))
                    .ok_or(DnsError::Truncated { offset: pos })?;
                if end.is_none() {
                    end = Some(pos.saturating_add(2));
                }
                jumps += 1;
                if jumps > MAX_POINTER_JUMPS {
                    return Err(DnsError::InfiniteLoop);
                }
                pos = usize::from(u16::from_be_bytes([len & 0x3f, low]));
            }
            _ => {
                return Err(DnsError::BadLabel {
                    byte: len,
                    offset: pos,
                });
            }
        }
    }
}

fn offset_of(msg: &[u8], rest: &[u8]) -> usize {
    msg.len().saturating_sub(rest.len())
}

fn parse_question<'a>(
    msg: &'a [u8],
    rest: &'a [u8],
    lim: DnsLimits,
) -> Result<(DnsQuery, bool, &'a [u8]), DnsError> {
    let (name, next, long) = parse_name(msg, offset_of(msg, rest), lim.max_name_len)?;
    let after = msg
        .get(next..)
        .ok_or(DnsError::Truncated { offset: next })?;
    let res: IResult<&[u8], (u16, u16)> = (be_u16, be_u16).parse(after);
    let (rest, (rrtype, rrclass)) = res.map_err(|_| truncated(msg, after))?;
    Ok((
        DnsQuery {
            name,
            rrtype,
            rrclass,
        },
        long,
        rest,
    ))
}

fn parse_record<'a>(
    msg: &'a [u8],
    rest: &'a [u8],
    lim: DnsLimits,
) -> Result<(DnsRecord, bool, &'a [u8]), DnsError> {
    let (name, next, mut long) = parse_name(msg, offset_of(msg, rest), lim.max_name_len)?;
    let after = msg
        .get(next..)
        .ok_or(DnsError::Truncated { offset: next })?;
    let res: IResult<&[u8], (u16, u16, u32, &[u8])> =
        (be_u16, be_u16, be_u32, nom::multi::length_data(be_u16)).parse_complete(after);
    let (rest, (rrtype, rrclass, ttl, data)) = res.map_err(|_| truncated(msg, after))?;
    // `rest` runs to the end of the message, `data` ends where `rest` starts.
    let data_off = offset_of(msg, rest).saturating_sub(data.len());
    let name_at = |off: usize| -> Result<Vec<u8>, DnsError> {
        parse_name(msg, off, lim.max_name_len).map(|(n, _, _)| n)
    };
    let rdata = match rrtype {
        1 => data
            .first_chunk::<4>()
            .map_or_else(|| DnsRdata::Other(data.to_vec()), |a| DnsRdata::A(*a)),
        28 => data
            .first_chunk::<16>()
            .map_or_else(|| DnsRdata::Other(data.to_vec()), |a| DnsRdata::Aaaa(*a)),
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 39 => {
            let (n, _, l) = parse_name(msg, data_off, lim.max_name_len)?;
            long |= l;
            DnsRdata::Name(n)
        }
        15 => {
            let preference = data
                .first_chunk::<2>()
                .map_or(0, |p| u16::from_be_bytes(*p));
            DnsRdata::Mx {
                preference,
                exchange: name_at(data_off.saturating_add(2))?,
            }
        }
        6 => {
            let (mname, m_end, _) = parse_name(msg, data_off, lim.max_name_len)?;
            let (rname, _, _) = parse_name(msg, m_end, lim.max_name_len)?;
            DnsRdata::Soa { mname, rname }
        }
        33 => {
            let f = |i: usize| {
                data.get(i..)
                    .and_then(<[u8]>::first_chunk::<2>)
                    .map_or(0, |b| u16::from_be_bytes(*b))
            };
            DnsRdata::Srv {
                priority: f(0),
                weight: f(2),
                port: f(4),
                target: name_at(data_off.saturating_add(6))?,
            }
        }
        16 | 99 => DnsRdata::Txt(parse_txt(data)),
        _ => DnsRdata::Other(data.to_vec()),
    };
    Ok((
        DnsRecord {
            name,
            rrtype,
            rrclass,
            ttl,
            rdata,
        },
        long,
        rest,
    ))
}

/// TXT character-strings; a trailing partial string is kept as far as it goes.
fn parse_txt(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let n = usize::from(len).min(rest.len());
        let (s, tail) = rest.split_at(n); // n <= rest.len()
        out.push(s.to_vec());
        data = tail;
    }
    out
}

/// Parses a whole message. Sections after the questions are parsed as far as they go: a
/// broken answer section sets [`DnsFlags::malformed`] but keeps the header and questions.
///
/// # Errors
/// A [`DnsError`] when the header or the question section cannot be parsed.
pub fn parse_message(msg: &[u8], lim: DnsLimits) -> Result<DnsMessage, DnsError> {
    let (header, mut rest) = parse_header(msg)?;
    let mut out = DnsMessage {
        header,
        ..DnsMessage::default()
    };
    for _ in 0..header.qdcount {
        let (q, long, r) = parse_question(msg, rest, lim)?;
        out.flags.name_too_long |= long;
        if out.queries.len() < lim.max_records {
            out.queries.push(q);
        } else {
            out.flags.records_capped = true;
        }
        rest = r;
    }
    for (count, section) in [(header.ancount, 0), (header.nscount, 1)] {
        for _ in 0..count {
            match parse_record(msg, rest, lim) {
                Ok((rec, long, r)) => {
                    out.flags.name_too_long |= long;
                    let list = if section == 0 {
                        &mut out.answers
                    } else {
                        &mut out.authorities
                    };
                    if list.len() < lim.max_records {
                        list.push(rec);
                    } else {
                        out.flags.records_capped = true;
                    }
                    rest = r;
                }
                Err(_) => {
                    out.flags.malformed = true;
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

/// What [`split_tcp_message`] found at the front of a TCP byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpFrame<'a> {
    /// A whole message (without its 2-byte length) and the bytes after it.
    Message(&'a [u8], &'a [u8]),
    /// Not enough bytes yet; `needed` more are required for the next message.
    Incomplete {
        /// Bytes still missing.
        needed: usize,
    },
}

/// Splits one length-prefixed DNS-over-TCP message (RFC 1035 4.2.2) off the front of `input`.
#[must_use]
pub fn split_tcp_message(input: &[u8]) -> TcpFrame<'_> {
    let res: IResult<&[u8], &[u8]> =
        nom::multi::length_data(nom::number::streaming::be_u16).parse(input);
    match res {
        Ok((rest, msg)) => TcpFrame::Message(msg, rest),
        Err(nom::Err::Incomplete(nom::Needed::Size(n))) => TcpFrame::Incomplete { needed: n.get() },
        Err(_) => TcpFrame::Incomplete { needed: 1 },
    }
}

/// Header sanity shared by the probes: a query to the server (QR clear) or a response to the
/// client (QR set), opcode at most 6 (RFC 6895 assigns 0-6), at least one question for
/// queries, and the question section must parse.
fn plausible(msg: &[u8], dir: Direction) -> bool {
    let Ok((h, _)) = parse_header(msg) else {
        return false;
    };
    let dir_ok = match dir {
        Direction::ToServer => !h.is_response() && h.qdcount >= 1,
        Direction::ToClient => h.is_response(),
    };
    if !dir_ok || h.opcode() > 6 || h.qdcount > 64 {
        return false;
    }
    let lim = DnsLimits::default();
    let mut rest = msg.get(HEADER_LEN..).unwrap_or_default();
    for _ in 0..h.qdcount {
        match parse_question(msg, rest, lim) {
            Ok((_, _, r)) => rest = r,
            Err(_) => return false,
        }
    }
    true
}

/// Probes a UDP payload on a DNS port.
#[must_use]
pub fn probe_udp(data: &[u8], dir: Direction) -> Probe {
    if plausible(data, dir) {
        Probe::Match(AppProto::Dns)
    } else {
        Probe::NoMatch
    }
}

/// Probes the first bytes of a TCP direction on a DNS port: the first framed message must be
/// plausible. Waits for the whole first message (at most 65537 bytes; the caller's detection
/// byte limit applies).
#[must_use]
pub fn probe_tcp(data: &[u8], dir: Direction) -> Probe {
    match split_tcp_message(data) {
        TcpFrame::Message(msg, _) => probe_udp(msg, dir),
        TcpFrame::Incomplete { .. } => {
            // Judge the header early when it is already there.
            match data.get(2..2 + HEADER_LEN).map(parse_header) {
                Some(Ok((h, _))) => {
                    let dir_ok = match dir {
                        Direction::ToServer => !h.is_response() && h.qdcount >= 1,
                        Direction::ToClient => h.is_response(),
                    };
                    if dir_ok && h.opcode() <= 6 && h.qdcount <= 64 {
                        Probe::NeedMore
                    } else {
                        Probe::NoMatch
                    }
                }
                _ => Probe::NeedMore,
            }
        }
    }
}
