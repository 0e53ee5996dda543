//! The IP layer: IPv4 (with options) and IPv6 (with extension headers).
//!
//! Header parsing is `etherparse`'s; this module trims the payload to the length field,
//! extracts the fields rules inspect, and turns etherparse's errors into [`DecodeError`].

use std::net::IpAddr;

use etherparse::{Ipv4HeaderSlice, Ipv6ExtensionSlice, LaxIpv6Slice};

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

fn parse_v6(data: &[u8]) -> Result<Parsed<'_>, DecodeError> {
    let (slice, ext_err) = LaxIpv6Slice::from_slice(data).map_err(|e| {
        use etherparse::err::ipv6::HeaderSliceError;
        match e {
            HeaderSliceError::Len(_) => DecodeError::Truncated { layer: Layer::Ipv6 },
            HeaderSliceError::Content(_) => DecodeError::Invalid { layer: Layer::Ipv6 },
        }
    })?;
    let header = slice.header();
    let payload = slice.payload();
    let mut anomaly = None;
    if payload.incomplete {
        anomaly = Some(DecodeError::Incomplete { layer: Layer::Ipv6 });
    }
    if ext_err.is_some() {
        anomaly.get_or_insert(DecodeError::BadLength { layer: Layer::Ipv6 });
    }
    let mut frag = None;
    for ext in slice.extensions().clone() {
        if let Ipv6ExtensionSlice::Fragment(f) = ext {
            let offset = u32::from(f.fragment_offset().value()) * 8;
            let more = f.more_fragments();
            // An "atomic fragment" (offset 0, no more) is a whole packet: decode it as one.
            if offset != 0 || more {
                frag = Some(FragInfo {
                    offset,
                    more,
                    id: f.identification(),
                });
            }
        }
    }
    // `ipv6.hdr` covers the fixed header and the extension headers before the payload.
    let header_len = offset_in(data, payload.payload).unwrap_or(40);
    let header_bytes = data.get(..header_len).unwrap_or_else(|| header.slice());
    let datagram_len = header_len + payload.payload.len();
    let datagram = data.get(..datagram_len).unwrap_or(data);
    Ok(Parsed {
        ip: IpLayer {
            version: IpVersion::V6,
            src: IpAddr::V6(header.source_addr()),
            dst: IpAddr::V6(header.destination_addr()),
            proto: payload.ip_number.0,
            ttl: header.hop_limit(),
            tos: header.traffic_class(),
            id: 0,
            flags_frag: 0,
            header: header_bytes,
            datagram,
            frag,
            ipv4_options: 0,
        },
        payload: payload.payload,
        anomaly,
    })
}

/// Offset of `inner` within `outer`, when `inner` is a sub-slice of it.
fn offset_in(outer: &[u8], inner: &[u8]) -> Option<usize> {
    let off = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    (off <= outer.len()).then_some(off)
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
