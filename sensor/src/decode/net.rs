//! The IP layer: IPv4 (with options) and IPv6 (with extension headers).
//!
//! Header parsing is `etherparse`'s; this module trims the payload to the length field,
//! extracts the fields rules inspect, and turns etherparse's errors into [`DecodeError`].

use std::net::IpAddr;

use etherparse::{Ipv4HeaderSlice, Ipv6HeaderSlice};

use super::{DecodeError, FragInfo, IpLayer, IpVersion, Layer};

/// An IP packet split into its header fields and payload.
pub(super) struct Parsed<'a> {
    pub ip: IpLayer<'a>,
    pub payload: &'a [u8],
    pub anomaly: Option<DecodeError>,
}

/// Parses the IP header at the start of `data`.
pub(super) fn parse(data: &[u8]) -> Result<Parsed<'_>, DecodeError> {
    match data.first().map(|b| b >> 4) {
        Some(4) => parse_v4(data),
        Some(6) => parse_v6(data),
        Some(_) => Err(DecodeError::Invalid { layer: Layer::Ipv4 }),
        None => Err(DecodeError::Truncated { layer: Layer::Ipv4 }),
    }
}

fn parse_v4(data: &[u8]) -> Result<Parsed<'_>, DecodeError> {
    let header = Ipv4HeaderSlice::from_slice(data).map_err(|e| {
        use etherparse::err::ipv4::HeaderSliceError;
        match e {
            HeaderSliceError::Len(_) => DecodeError::Truncated { layer: Layer::Ipv4 },
            HeaderSliceError::Content(_) => DecodeError::BadLength { layer: Layer::Ipv4 },
        }
    })?;
    let header_bytes = header.slice();
    let header_len = header_bytes.len();
    let total_len = usize::from(header.total_len());
    if total_len < header_len {
        return Err(DecodeError::BadLength { layer: Layer::Ipv4 });
    }
    let mut anomaly = None;
    // Trim Ethernet padding; a packet cut short by the snaplen keeps what was captured.
    let datagram = if let Some(d) = data.get(..total_len) {
        d
    } else {
        anomaly = Some(DecodeError::Incomplete { layer: Layer::Ipv4 });
        data
    };
    let payload = datagram.get(header_len..).unwrap_or_default();
    let offset_units = header.fragments_offset().value();
    let more = header.more_fragments();
    let frag = (more || offset_units != 0).then(|| FragInfo {
        offset: u32::from(offset_units) * 8,
        more,
        id: u32::from(header.identification()),
    });
    let flags_frag = u16::from_be_bytes([
        header_bytes.get(6).copied().unwrap_or(0),
        header_bytes.get(7).copied().unwrap_or(0),
    ]);
    Ok(Parsed {
        ip: IpLayer {
            version: IpVersion::V4,
            src: IpAddr::V4(header.source_addr()),
            dst: IpAddr::V4(header.destination_addr()),
            proto: header.protocol().0,
            ttl: header.ttl(),
            tos: header_bytes.get(1).copied().unwrap_or(0),
            id: header.identification(),
            flags_frag,
            header: header_bytes,
            datagram,
            frag,
            ipv4_options: ipv4_option_bits(header.options()),
        },
        payload,
        anomaly,
    })
}

/// The result of walking IPv6 extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Walk {
    /// Upper-layer protocol (the next header after the last extension header walked).
    pub proto: u8,
    /// Bytes from the start of the IPv6 header to the upper-layer payload.
    pub header_len: usize,
    /// The first fragment header, if any.
    pub frag: Option<Ipv6FragHeader>,
    /// The walk stopped at a truncated or over-long extension header.
    pub damaged: bool,
}

/// The first IPv6 fragment header of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6FragHeader {
    /// Offset of the 8-byte fragment header from the start of the IPv6 header.
    pub at: usize,
    /// Offset of the next-header byte that names the fragment header (6 for the fixed
    /// header, or the first byte of the preceding extension header).
    pub named_at: usize,
    /// The fragment header's own next header (the fragmented payload's protocol).
    pub next_header: u8,
    /// Fragment offset in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    /// Identification.
    pub id: u32,
}

/// Most extension headers walked before giving up (hostile chains).
const MAX_IPV6_EXTS: usize = 8;

/// Walks the extension headers (hop-by-hop, routing, destination options, fragment, AH,
/// mobility, HIP, shim6) of the IPv6 packet `d` (fixed header included). Never reads past
/// `d`. A non-first fragment ends the walk: what follows its fragment header is data.
#[must_use]
pub fn walk_ipv6(d: &[u8]) -> Ipv6Walk {
    let mut next = d.get(6).copied().unwrap_or(59);
    let mut named_at = 6;
    let mut pos = 40usize;
    let mut frag = None;
    let mut damaged = false;
    for _ in 0..MAX_IPV6_EXTS {
        let len = match next {
            44 => 8,
            51 => match d.get(pos + 1) {
                Some(&l) => (usize::from(l) + 2) * 4,
                None => {
                    damaged = true;
                    break;
                }
            },
            0 | 43 | 60 | 135 | 139 | 140 => match d.get(pos + 1) {
                Some(&l) => (usize::from(l) + 1) * 8,
                None => {
                    damaged = true;
                    break;
                }
            },
            _ => break,
        };
        let Some(ext) = d.get(pos..pos + len) else {
            damaged = true;
            break;
        };
        let this_next = ext.first().copied().unwrap_or(59);
        if next == 44
            && let Some(f) = ext.first_chunk::<8>()
        {
            let word = u16::from_be_bytes([f[2], f[3]]);
            let offset = u32::from(word >> 3) * 8;
            let more = word & 1 != 0;
            if frag.is_none() {
                frag = Some(Ipv6FragHeader {
                    at: pos,
                    named_at,
                    next_header: this_next,
                    offset,
                    more,
                    id: u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
                });
            }
            if offset != 0 {
                next = this_next;
                pos += len;
                break;
            }
        }
        named_at = pos;
        next = this_next;
        pos += len;
    }
    Ipv6Walk {
        proto: next,
        header_len: pos.min(d.len()),
        frag,
        damaged,
    }
}

fn parse_v6(data: &[u8]) -> Result<Parsed<'_>, DecodeError> {
    let header = Ipv6HeaderSlice::from_slice(data).map_err(|e| {
        use etherparse::err::ipv6::HeaderSliceError;
        match e {
            HeaderSliceError::Len(_) => DecodeError::Truncated { layer: Layer::Ipv6 },
            HeaderSliceError::Content(_) => DecodeError::Invalid { layer: Layer::Ipv6 },
        }
    })?;
    let mut anomaly = None;
    // Trim to the payload length (0 is a jumbogram: take what was captured).
    let plen = usize::from(header.payload_length());
    let datagram = if plen == 0 {
        data
    } else if let Some(d) = data.get(..40 + plen) {
        d
    } else {
        anomaly = Some(DecodeError::Incomplete { layer: Layer::Ipv6 });
        data
    };
    let walk = walk_ipv6(datagram);
    if walk.damaged {
        anomaly.get_or_insert(DecodeError::BadLength { layer: Layer::Ipv6 });
    }
    let frag = walk
        .frag
        .filter(|f| f.offset != 0 || f.more)
        .map(|f| FragInfo {
            offset: f.offset,
            more: f.more,
            id: f.id,
        });
    // `ipv6.hdr` covers the fixed header and the extension headers before the payload.
    let header_bytes = datagram
        .get(..walk.header_len)
        .unwrap_or_else(|| header.slice());
    let payload = datagram.get(walk.header_len..).unwrap_or_default();
    Ok(Parsed {
        ip: IpLayer {
            version: IpVersion::V6,
            src: IpAddr::V6(header.source_addr()),
            dst: IpAddr::V6(header.destination_addr()),
            proto: walk.proto,
            ttl: header.hop_limit(),
            tos: header.traffic_class(),
            id: 0,
            flags_frag: 0,
            header: header_bytes,
            datagram,
            frag,
            ipv4_options: 0,
        },
        payload,
        anomaly,
    })
}

/// Bit positions in [`IpLayer::ipv4_options`], for the `ipopts` keyword.
pub mod ipopt {
    /// Record route (7).
    pub const RR: u16 = 1 << 0;
    /// End of list (0).
    pub const EOL: u16 = 1 << 1;
    /// No-op (1).
    pub const NOP: u16 = 1 << 2;
    /// Timestamp (68).
    pub const TS: u16 = 1 << 3;
    /// Security (130).
    pub const SEC: u16 = 1 << 4;
    /// Extended security (133).
    pub const ESEC: u16 = 1 << 5;
    /// Loose source route (131).
    pub const LSRR: u16 = 1 << 6;
    /// Strict source route (137).
    pub const SSRR: u16 = 1 << 7;
    /// Stream identifier (136).
    pub const SATID: u16 = 1 << 8;
    /// Any option at all.
    pub const ANY: u16 = 1 << 15;
}

/// Walks IPv4 options (type, length, data) and records which kinds occur.
fn ipv4_option_bits(mut options: &[u8]) -> u16 {
    let mut bits = 0u16;
    if !options.is_empty() {
        bits |= ipopt::ANY;
    }
    while let Some((&kind, rest)) = options.split_first() {
        bits |= match kind {
            0 => ipopt::EOL,
            1 => ipopt::NOP,
            7 => ipopt::RR,
            68 => ipopt::TS,
            130 => ipopt::SEC,
            133 => ipopt::ESEC,
            131 => ipopt::LSRR,
            137 => ipopt::SSRR,
            136 => ipopt::SATID,
            _ => 0,
        };
        if kind == 0 {
            break;
        }
        if kind == 1 {
            options = rest;
            continue;
        }
        let len = usize::from(rest.first().copied().unwrap_or(0));
        if len < 2 {
            break;
        }
        options = options.get(len..).unwrap_or_default();
    }
    bits
}
