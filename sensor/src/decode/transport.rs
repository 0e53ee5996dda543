//! The transport layer: TCP, UDP, ICMPv4, ICMPv6 headers as borrowed views.

use etherparse::{TcpHeaderSlice, UdpHeaderSlice};

use super::{DecodeError, IpVersion, Layer, Transport, ipproto};

/// TCP flag bits as they sit in byte 13 of the header.
pub mod tcpflag {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

/// A TCP header.
#[derive(Debug, Clone)]
pub struct TcpHeader<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags byte (see [`tcpflag`]).
    pub flags: u8,
    /// Receive window (unscaled).
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// MSS option value, if present.
    pub mss: Option<u16>,
    /// Window scale option, if present.
    pub wscale: Option<u8>,
    /// SACK permitted option present.
    pub sack_permitted: bool,
    /// Timestamp option value (TSval, TSecr), if present.
    pub timestamps: Option<(u32, u32)>,
    /// The header including options (`tcp.hdr`).
    pub header: &'a [u8],
}

impl TcpHeader<'_> {
    /// Whether all bits of `mask` are set.
    #[must_use]
    pub fn has(&self, mask: u8) -> bool {
        self.flags & mask == mask
    }
}

/// A UDP header.
#[derive(Debug, Clone)]
pub struct UdpHeader<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length field (header + data).
    pub length: u16,
    /// The 8-byte header (`udp.hdr`).
    pub header: &'a [u8],
}

/// An ICMPv4 or ICMPv6 header.
#[derive(Debug, Clone)]
pub struct IcmpHeader<'a> {
    /// Type.
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// Identifier, for echo-like messages.
    pub id: Option<u16>,
    /// Sequence number, for echo-like messages.
    pub seq: Option<u16>,
    /// The header (`icmpv4.hdr` / `icmpv6.hdr`): 8 bytes plus type-specific fixed fields.
    pub header: &'a [u8],
}

/// Parses the transport header for `proto` and returns it with the payload after it.
pub(super) fn parse(
    proto: u8,
    version: IpVersion,
    data: &[u8],
) -> Result<(Transport<'_>, &[u8]), DecodeError> {
    match proto {
        ipproto::TCP => parse_tcp(data),
        ipproto::UDP => parse_udp(data),
        ipproto::ICMP if version == IpVersion::V4 => {
            parse_icmp(data, Layer::Icmpv4).map(|(h, p)| (Transport::Icmpv4(h), p))
        }
        ipproto::ICMPV6 if version == IpVersion::V6 => {
            parse_icmp(data, Layer::Icmpv6).map(|(h, p)| (Transport::Icmpv6(h), p))
        }
        _ => Ok((Transport::Other, data)),
    }
}

fn parse_tcp(data: &[u8]) -> Result<(Transport<'_>, &[u8]), DecodeError> {
    let h = TcpHeaderSlice::from_slice(data).map_err(|e| {
        use etherparse::err::tcp::HeaderSliceError;
        match e {
            HeaderSliceError::Len(_) => DecodeError::Truncated { layer: Layer::Tcp },
            HeaderSliceError::Content(_) => DecodeError::BadLength { layer: Layer::Tcp },
        }
    })?;
    let header = h.slice();
    let payload = data.get(header.len()..).unwrap_or_default();
    let mut tcp = TcpHeader {
        src_port: h.source_port(),
        dst_port: h.destination_port(),
        seq: h.sequence_number(),
        ack: h.acknowledgment_number(),
        flags: header.get(13).copied().unwrap_or(0),
        window: h.window_size(),
        urgent: h.urgent_pointer(),
        mss: None,
        wscale: None,
        sack_permitted: false,
        timestamps: None,
        header,
    };
    read_tcp_options(h.options(), &mut tcp);
    Ok((Transport::Tcp(tcp), payload))
}

/// Walks the options by hand (kind, length, value): a damaged option ends the walk without
/// failing the packet, as in Suricata.
fn read_tcp_options(mut opts: &[u8], tcp: &mut TcpHeader<'_>) {
    while let Some((&kind, rest)) = opts.split_first() {
        match kind {
            0 => break,
            1 => {
                opts = rest;
                continue;
            }
            _ => {}
        }
        let Some(&len) = rest.first() else { break };
        let len = usize::from(len);
        let Some(value) = opts.get(2..len) else { break };
        match (kind, value) {
            (2, &[a, b]) => tcp.mss = Some(u16::from_be_bytes([a, b])),
            (3, &[s]) => tcp.wscale = Some(s),
            (4, &[]) => tcp.sack_permitted = true,
            (8, v) => {
                if let (Some(a), Some(b)) = (v.first_chunk::<4>(), v.get(4..8)) {
                    let b: [u8; 4] = b.try_into().unwrap_or_default();
                    tcp.timestamps = Some((u32::from_be_bytes(*a), u32::from_be_bytes(b)));
                }
            }
            _ => {}
        }
        if len < 2 {
            break;
        }
        opts = opts.get(len..).unwrap_or_default();
    }
}

fn parse_udp(data: &[u8]) -> Result<(Transport<'_>, &[u8]), DecodeError> {
    let h = UdpHeaderSlice::from_slice(data)
        .map_err(|_| DecodeError::Truncated { layer: Layer::Udp })?;
    let header = h.slice();
    let length = h.length();
    let len = usize::from(length);
    // Trim to the UDP length when it is sane; trailing bytes are not payload.
    let payload = if len >= 8 {
        data.get(8..len)
            .unwrap_or_else(|| data.get(8..).unwrap_or_default())
    } else {
        return Err(DecodeError::BadLength { layer: Layer::Udp });
    };
    Ok((
        Transport::Udp(UdpHeader {
            src_port: h.source_port(),
            dst_port: h.destination_port(),
            length,
            header,
        }),
        payload,
    ))
}

/// ICMPv4 header length by type, as Suricata's `icmpv4.hdr` sees it: the 8-byte common
/// part, plus the type-specific fixed fields of router advertisements (address entries),
/// timestamps and address masks.
fn icmpv4_header_len(h: &[u8; 8], available: usize) -> usize {
    let len = match h[0] {
        // Router advertisement: num_addrs * entry_size (32-bit words) after the 8 bytes.
        9 => 8 + usize::from(h[4]) * usize::from(h[5]) * 4,
        13 | 14 => 20,
        17 | 18 => 12,
        _ => 8,
    };
    len.min(available)
}

fn parse_icmp(data: &[u8], layer: Layer) -> Result<(IcmpHeader<'_>, &[u8]), DecodeError> {
    let Some(h) = data.first_chunk::<8>() else {
        return Err(DecodeError::Truncated { layer });
    };
    let hlen = if layer == Layer::Icmpv4 {
        icmpv4_header_len(h, data.len())
    } else {
        8
    };
    let (Some(header), Some(payload)) = (data.get(..hlen), data.get(hlen..)) else {
        return Err(DecodeError::Truncated { layer });
    };
    let icmp_type = h[0]; // constant indexes into [u8; 8]
    let code = h[1];
    let echo_like = match layer {
        Layer::Icmpv4 => matches!(icmp_type, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18),
        _ => matches!(icmp_type, 128 | 129),
    };
    let (id, seq) = if echo_like {
        (
            Some(u16::from_be_bytes([h[4], h[5]])),
            Some(u16::from_be_bytes([h[6], h[7]])),
        )
    } else {
        (None, None)
    };
    Ok((
        IcmpHeader {
            icmp_type,
            code,
            id,
            seq,
            header,
        },
        payload,
    ))
}
