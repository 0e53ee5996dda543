//! Pure TLS/SSL parsers (RFC 5246, RFC 8446, RFC 6066): record framing, handshake message
//! framing, ClientHello, ServerHello, Certificate, and the SSLv2-compatible ClientHello.
//!
//! Input: byte slices (a stream prefix for [`split_record`], one handshake body otherwise).
//! Output: borrowed views ([`ClientHello<'a>`], [`ServerHello<'a>`], certificate DER slices)
//! or a [`TlsError`]. Nothing is copied here; the state keeps what outlives the packet.
//! Invariants: never panics; every length read from the wire is checked against the bytes
//! present before slicing (nom `length_data`/`take`).
//! Caps: records longer than [`MAX_RECORD_LEN`] are rejected; at most [`MAX_LIST_ITEMS`]
//! ciphers/extensions/groups are kept per hello; certificate lists stop at the caller's cap.

use nom::bytes::complete::take;
use nom::multi::length_data;
use nom::number::complete::{be_u8, be_u16, be_u24};
use nom::{IResult, Parser};

/// Largest record body accepted: 2^14 plaintext plus 2048 bytes of expansion (RFC 5246 6.2.3).
pub const MAX_RECORD_LEN: usize = 16384 + 2048;
/// Record header length.
pub const RECORD_HEADER_LEN: usize = 5;
/// Items kept per cipher / extension / group list.
pub const MAX_LIST_ITEMS: usize = 512;

/// Record content types.
pub mod content_type {
    /// change_cipher_spec
    pub const CCS: u8 = 20;
    /// alert
    pub const ALERT: u8 = 21;
    /// handshake
    pub const HANDSHAKE: u8 = 22;
    /// application_data
    pub const APPLICATION_DATA: u8 = 23;
    /// heartbeat (RFC 6520)
    pub const HEARTBEAT: u8 = 24;
}

/// Handshake message types used here.
pub mod handshake_type {
    /// client_hello
    pub const CLIENT_HELLO: u8 = 1;
    /// server_hello
    pub const SERVER_HELLO: u8 = 2;
    /// certificate
    pub const CERTIFICATE: u8 = 11;
}

/// Why TLS bytes could not be parsed. Cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// A record header names an unknown content type.
    #[error("tls: invalid record type {0}")]
    RecordType(u8),
    /// A record header names a version that is not 3.x.
    #[error("tls: invalid record version {0:#06x}")]
    RecordVersion(u16),
    /// A record is longer than [`MAX_RECORD_LEN`].
    #[error("tls: record length {0} over the limit")]
    RecordLength(usize),
    /// A handshake body ended inside a field or a length overran it.
    #[error("tls: malformed {0} message")]
    Malformed(&'static str),
}

/// A record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Content type (20..=24).
    pub content_type: u8,
    /// Record-layer version.
    pub version: u16,
}

/// What [`split_record`] found at the front of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFrame<'a> {
    /// A whole record: header, body, and the bytes after it.
    Record(RecordHeader, &'a [u8], &'a [u8]),
    /// Not enough bytes for the next record; `needed` more are required.
    Incomplete {
        /// Bytes still missing (at least 1).
        needed: usize,
    },
    /// The bytes are not a TLS record.
    Invalid(TlsError),
}

/// Splits one TLS record off the front of `input`.
#[must_use]
pub fn split_record(input: &[u8]) -> RecordFrame<'_> {
    let Some(h) = input.first_chunk::<RECORD_HEADER_LEN>() else {
        // Validate what we have of the header so garbage fails fast.
        if let Some(&t) = input.first()
            && !(20..=24).contains(&t)
        {
            return RecordFrame::Invalid(TlsError::RecordType(t));
        }
        if let Some(&major) = input.get(1)
            && major != 3
        {
            return RecordFrame::Invalid(TlsError::RecordVersion(u16::from(major) << 8));
        }
        return RecordFrame::Incomplete {
            needed: RECORD_HEADER_LEN - input.len(),
        };
    };
    let content_type = h[0];
    let version = u16::from_be_bytes([h[1], h[2]]);
    let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
    if !(20..=24).contains(&content_type) {
        return RecordFrame::Invalid(TlsError::RecordType(content_type));
    }
    if version >> 8 != 3 {
        return RecordFrame::Invalid(TlsError::RecordVersion(version));
    }
    if len > MAX_RECORD_LEN {
        return RecordFrame::Invalid(TlsError::RecordLength(len));
    }
    let rest = input.get(RECORD_HEADER_LEN..).unwrap_or_default();
    match rest.split_at_checked(len) {
        Some((body, after)) => RecordFrame::Record(
            RecordHeader {
                content_type,
                version,
            },
            body,
            after,
        ),
        None => RecordFrame::Incomplete {
            needed: len - rest.len(),
        },
    }
}

/// Splits one handshake message (type, 24-bit length, body) off the front of `input`.
/// Returns `Ok(None)` with the total length needed when the message is not complete yet.
#[must_use]
pub fn split_handshake(input: &[u8]) -> HandshakeFrame<'_> {
    let Some(h) = input.first_chunk::<4>() else {
        return HandshakeFrame::Incomplete { total: None };
    };
    let len = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
    let rest = input.get(4..).unwrap_or_default();
    match rest.split_at_checked(len) {
        Some((body, after)) => HandshakeFrame::Message(h[0], body, after),
        None => HandshakeFrame::Incomplete {
            total: Some(len + 4),
        },
    }
}

/// What [`split_handshake`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFrame<'a> {
    /// Message type, body, and the bytes after it.
    Message(u8, &'a [u8], &'a [u8]),
    /// The message is not complete; `total` is its full length once the header is known.
    Incomplete {
        /// Header plus body length, when the 4-byte header is present.
        total: Option<usize>,
    },
}

/// One hello extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// Extension type.
    pub ext_type: u16,
    /// Extension data.
    pub data: &'a [u8],
}

/// A parsed ClientHello.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHello<'a> {
    /// `legacy_version` (0x0303 for TLS 1.2 and 1.3).
    pub version: u16,
    /// Session id.
    pub session_id: &'a [u8],
    /// Cipher suites in offered order.
    pub ciphers: Vec<u16>,
    /// Extensions in order.
    pub extensions: Vec<Extension<'a>>,
}

/// A parsed ServerHello.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerHello<'a> {
    /// `legacy_version`.
    pub version: u16,
    /// The 32-byte server random (identifies a HelloRetryRequest).
    pub random: &'a [u8],
    /// Session id echoed or assigned.
    pub session_id: &'a [u8],
    /// Chosen cipher suite.
    pub cipher: u16,
    /// Extensions in order.
    pub extensions: Vec<Extension<'a>>,
}

type Res<'a, T> = IResult<&'a [u8], T>;

/// Big-endian u16 from the first two bytes (0 when shorter; callers pass 2-byte chunks).
fn be16(c: &[u8]) -> u16 {
    c.first_chunk::<2>().map_or(0, |b| u16::from_be_bytes(*b))
}

fn extensions(input: &[u8]) -> Vec<Extension<'_>> {
    // Extensions are optional: an absent block is an empty list.
    let Ok((_, mut block)) = length_data(be_u16::<&[u8], nom::error::Error<&[u8]>>).parse(input)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while !block.is_empty() && out.len() < MAX_LIST_ITEMS {
        let r: Res<'_, (u16, &[u8])> = (be_u16, length_data(be_u16)).parse(block);
        let Ok((rest, (ext_type, data))) = r else {
            break;
        };
        out.push(Extension { ext_type, data });
        block = rest;
    }
    out
}

/// Version, random, session id, cipher bytes, compression methods.
type ClientHelloFixed<'a> = (u16, &'a [u8], &'a [u8], &'a [u8], &'a [u8]);
/// Version, random, session id, cipher, compression method.
type ServerHelloFixed<'a> = (u16, &'a [u8], &'a [u8], u16, u8);

/// Parses a ClientHello body.
///
/// # Errors
/// [`TlsError::Malformed`] when the fixed part or the cipher list overruns the body.
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHello<'_>, TlsError> {
    let r: Res<'_, ClientHelloFixed<'_>> = (
        be_u16,
        take(32usize),
        length_data(be_u8),
        length_data(be_u16),
        length_data(be_u8),
    )
        .parse(body);
    let (rest, (version, _random, session_id, cipher_bytes, _compression)) =
        r.map_err(|_| TlsError::Malformed("client hello"))?;
    let ciphers = cipher_bytes
        .chunks_exact(2)
        .take(MAX_LIST_ITEMS)
        .map(be16)
        .collect();
    Ok(ClientHello {
        version,
        session_id,
        ciphers,
        extensions: extensions(rest),
    })
}

/// Parses a ServerHello body.
///
/// # Errors
/// [`TlsError::Malformed`] when the fixed part overruns the body.
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello<'_>, TlsError> {
    let r: Res<'_, ServerHelloFixed<'_>> =
        (be_u16, take(32usize), length_data(be_u8), be_u16, be_u8).parse(body);
    let (rest, (version, random, session_id, cipher, _compression)) =
        r.map_err(|_| TlsError::Malformed("server hello"))?;
    Ok(ServerHello {
        version,
        random,
        session_id,
        cipher,
        extensions: extensions(rest),
    })
}

/// Parses a (TLS 1.0-1.2) Certificate message body into DER certificates, keeping at most
/// `max_certs`. A truncated entry ends the list.
///
/// # Errors
/// [`TlsError::Malformed`] when the list length overruns the body.
pub fn parse_certificates(body: &[u8], max_certs: usize) -> Result<Vec<&[u8]>, TlsError> {
    let r: Res<'_, &[u8]> = length_data(be_u24).parse(body);
    let (_, mut list) = r.map_err(|_| TlsError::Malformed("certificate"))?;
    let mut out = Vec::new();
    while !list.is_empty() && out.len() < max_certs {
        let r: Res<'_, &[u8]> = length_data(be_u24).parse(list);
        let (rest, der) = r.map_err(|_| TlsError::Malformed("certificate"))?;
        out.push(der);
        list = rest;
    }
    Ok(out)
}

/// The host name from a `server_name` extension (RFC 6066 3): the first `host_name` entry.
#[must_use]
pub fn parse_sni(data: &[u8]) -> Option<&[u8]> {
    let r: Res<'_, &[u8]> = length_data(be_u16).parse(data);
    let (_, mut list) = r.ok()?;
    while !list.is_empty() {
        let r: Res<'_, (u8, &[u8])> = (be_u8, length_data(be_u16)).parse(list);
        let (rest, (name_type, name)) = r.ok()?;
        if name_type == 0 {
            return Some(name);
        }
        list = rest;
    }
    None
}

/// A list of 16-bit values with a 16-bit byte-length prefix (`supported_groups`).
#[must_use]
pub fn parse_u16_list(data: &[u8]) -> Vec<u16> {
    let r: Res<'_, &[u8]> = length_data(be_u16).parse(data);
    r.map(|(_, l)| l.chunks_exact(2).take(MAX_LIST_ITEMS).map(be16).collect())
        .unwrap_or_default()
}

/// A list of 8-bit values with an 8-bit length prefix (`ec_point_formats`).
#[must_use]
pub fn parse_u8_list(data: &[u8]) -> Vec<u8> {
    let r: Res<'_, &[u8]> = length_data(be_u8).parse(data);
    r.map(|(_, l)| l.iter().take(MAX_LIST_ITEMS).copied().collect())
        .unwrap_or_default()
}

/// The highest non-GREASE version in a ClientHello `supported_versions` extension (8-bit
/// length, then 16-bit versions), or a ServerHello's single selected version.
#[must_use]
pub fn parse_supported_versions(data: &[u8], server: bool) -> Option<u16> {
    if server {
        return data.first_chunk::<2>().map(|v| u16::from_be_bytes(*v));
    }
    let r: Res<'_, &[u8]> = length_data(be_u8).parse(data);
    let (_, l) = r.ok()?;
    l.chunks_exact(2)
        .map(be16)
        .filter(|v| !crate::applayer::tls::ja3::is_grease(*v))
        .max()
}

/// An SSLv2-format ClientHello (2-byte record header with the high bit set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sslv2ClientHello {
    /// Version the client asks for (0x0002 for SSL 2.0, 0x0300+ for SSL 3 / TLS).
    pub version: u16,
    /// Total bytes of the record (header included).
    pub record_len: usize,
}

/// Parses an SSLv2-format ClientHello at the front of `input`; `Ok(None)` when more bytes are
/// needed.
///
/// # Errors
/// [`TlsError::Malformed`] when the header is not an SSLv2 ClientHello.
pub fn parse_sslv2_client_hello(input: &[u8]) -> Result<Option<Sslv2ClientHello>, TlsError> {
    let Some(h) = input.first_chunk::<5>() else {
        return Ok(None);
    };
    if h[0] & 0x80 == 0 || h[2] != 1 {
        return Err(TlsError::Malformed("sslv2 client hello"));
    }
    let record_len = 2 + usize::from(u16::from_be_bytes([h[0] & 0x7f, h[1]]));
    if input.len() < record_len {
        return Ok(None);
    }
    Ok(Some(Sslv2ClientHello {
        version: u16::from_be_bytes([h[3], h[4]]),
        record_len,
    }))
}
