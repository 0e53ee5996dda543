//! Decode: one captured frame in, a borrowed [`Packet`] view out.
//!
//! Input: the frame bytes and the capture's link type. Output: a [`Packet`] whose slices
//! (`ip.header`, `l4` headers, `payload`) all point into the frame; nothing is copied.
//!
//! Layers: Ethernet II with up to three 802.1Q/802.1ad tags, Linux cooked capture v1/v2,
//! BSD null/loopback, raw IPv4/IPv6; IPv4 (options) and IPv6 (extension headers, via
//! `etherparse`'s lax slicers); TCP, UDP, ICMPv4, ICMPv6.
//!
//! Invariants: never panics, never allocates. The IP payload is trimmed to the IP length
//! field, so Ethernet padding never reaches `payload` (rules must not see trailing bytes).
//! A frame that cannot be decoded to an IP packet is a [`DecodeError`] with the layer and
//! the reason; a packet whose transport header is damaged still decodes, with
//! [`Transport::Malformed`] and the reason in [`Packet::anomaly`], so IP-level rules run.

#![warn(clippy::indexing_slicing)]

mod checksum;
mod link;
mod net;
mod transport;

use std::fmt;
use std::net::IpAddr;

pub use link::LinkType;
pub use net::{Ipv6FragHeader, Ipv6Walk, ipopt, walk_ipv6};
pub use transport::{IcmpHeader, TcpHeader, UdpHeader, tcpflag};

use crate::Timestamp;

/// IANA protocol numbers used by the decoder and the rule engine.
pub mod ipproto {
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 fragment extension header.
    pub const IPV6_FRAG: u8 = 44;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// A decoded packet. Every slice borrows the captured frame (or, after defragmentation, the
/// reassembled datagram).
#[derive(Debug, Clone)]
pub struct Packet<'a> {
    /// Capture time.
    pub ts: Timestamp,
    /// 1-based position in the capture (pcap_cnt in EVE).
    pub pcap_cnt: u64,
    /// VLAN IDs, outermost first (0 where absent). Part of the flow key, as in Suricata.
    pub vlan: [u16; 2],
    /// The IP layer.
    pub ip: IpLayer<'a>,
    /// The transport layer, if the protocol is one we decode.
    pub l4: Transport<'a>,
    /// Transport payload (TCP/UDP data, ICMP data after the 8-byte header), or the IP
    /// payload for other protocols and for fragments. Trimmed to the IP length.
    pub payload: &'a [u8],
    /// First anomaly seen while decoding (the packet is still usable above it).
    pub anomaly: Option<DecodeError>,
}

impl Packet<'_> {
    /// Source port for TCP/UDP, else 0.
    #[must_use]
    pub fn src_port(&self) -> u16 {
        match &self.l4 {
            Transport::Tcp(t) => t.src_port,
            Transport::Udp(u) => u.src_port,
            _ => 0,
        }
    }

    /// Destination port for TCP/UDP, else 0.
    #[must_use]
    pub fn dst_port(&self) -> u16 {
        match &self.l4 {
            Transport::Tcp(t) => t.dst_port,
            Transport::Udp(u) => u.dst_port,
            _ => 0,
        }
    }

    /// The TCP header, when this is a TCP packet.
    #[must_use]
    pub fn tcp(&self) -> Option<&TcpHeader<'_>> {
        match &self.l4 {
            Transport::Tcp(t) => Some(t),
            _ => None,
        }
    }

    /// Whether the IP header (and the TCP/UDP/ICMP checksum, when present) verify.
    /// Computed on demand: only `-k all` runs pay for it.
    #[must_use]
    pub fn checksums_valid(&self) -> bool {
        checksum::verify(self)
    }
}

/// IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Fragmentation fields of a packet that is a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragInfo {
    /// Offset of this fragment's data in the datagram, in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    /// Identification (IPv4 16 bits, IPv6 32 bits).
    pub id: u32,
}

/// The IP layer of a packet.
#[derive(Debug, Clone)]
pub struct IpLayer<'a> {
    /// 4 or 6.
    pub version: IpVersion,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub proto: u8,
    /// TTL / hop limit.
    pub ttl: u8,
    /// Type of service / traffic class.
    pub tos: u8,
    /// IPv4 identification (0 for IPv6 unless fragmented).
    pub id: u16,
    /// IPv4 flags and fragment offset word (bits: reserved, DF, MF; 13-bit offset); 0 for IPv6.
    pub flags_frag: u16,
    /// IPv4: the header including options; IPv6: the fixed header and extension headers.
    pub header: &'a [u8],
    /// The whole IP packet (header + payload), trimmed to its length field. Defrag keeps it.
    pub datagram: &'a [u8],
    /// Present when this packet is a fragment (MF set or non-zero offset).
    pub frag: Option<FragInfo>,
    /// IPv4 option types present (bit per option kind we know; see `ipopts`).
    pub ipv4_options: u16,
}

/// The transport layer.
#[derive(Debug, Clone)]
pub enum Transport<'a> {
    /// TCP.
    Tcp(TcpHeader<'a>),
    /// UDP.
    Udp(UdpHeader<'a>),
    /// ICMPv4.
    Icmpv4(IcmpHeader<'a>),
    /// ICMPv6.
    Icmpv6(IcmpHeader<'a>),
    /// A fragment other than the first: no transport header to read.
    Fragment,
    /// A protocol we do not decode (GRE, ESP, SCTP, ...).
    Other,
    /// The transport header was truncated or invalid (see [`Packet::anomaly`]).
    Malformed,
}

/// The protocol layer at which decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Ethernet / cooked / null link header.
    Link,
    /// 802.1Q / 802.1ad tag.
    Vlan,
    /// IPv4 header.
    Ipv4,
    /// IPv6 header or extension header.
    Ipv6,
    /// TCP header.
    Tcp,
    /// UDP header.
    Udp,
    /// ICMPv4 header.
    Icmpv4,
    /// ICMPv6 header.
    Icmpv6,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Link => "link",
            Self::Vlan => "vlan",
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Icmpv4 => "icmpv4",
            Self::Icmpv6 => "icmpv6",
        })
    }
}

/// Why a frame (or one of its layers) could not be decoded. Cheap: `Copy`, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the layer's fixed header.
    #[error("{layer}: truncated header")]
    Truncated {
        /// Where.
        layer: Layer,
    },
    /// A length or header-length field is inconsistent.
    #[error("{layer}: invalid length field")]
    BadLength {
        /// Where.
        layer: Layer,
    },
    /// A version or other field has an impossible value.
    #[error("{layer}: invalid header")]
    Invalid {
        /// Where.
        layer: Layer,
    },
    /// The IP payload is shorter than the IP length field says (captured with a short snaplen
    /// or cut); decoded as far as it goes.
    #[error("{layer}: packet shorter than its length field")]
    Incomplete {
        /// Where.
        layer: Layer,
    },
    /// Not IP (ARP, LLDP, ...): not an error, but nothing for the IDS to do.
    #[error("not IP (ethertype {0:#06x})")]
    NotIp(u16),
    /// A link type we cannot decode.
    #[error("unsupported link type {0}")]
    UnsupportedLinkType(u32),
}

impl DecodeError {
    /// A short stable name for counters (`tocsin_decode_errors_total{kind}`).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Truncated { layer } => match layer {
                Layer::Link => "link_truncated",
                Layer::Vlan => "vlan_truncated",
                Layer::Ipv4 => "ipv4_truncated",
                Layer::Ipv6 => "ipv6_truncated",
                Layer::Tcp => "tcp_truncated",
                Layer::Udp => "udp_truncated",
                Layer::Icmpv4 => "icmpv4_truncated",
                Layer::Icmpv6 => "icmpv6_truncated",
            },
            Self::BadLength { layer } => match layer {
                Layer::Ipv4 => "ipv4_bad_length",
                Layer::Ipv6 => "ipv6_bad_length",
                Layer::Tcp => "tcp_bad_header_length",
                Layer::Udp => "udp_bad_length",
                _ => "bad_length",
            },
            Self::Invalid { layer } => match layer {
                Layer::Ipv4 => "ipv4_invalid",
                Layer::Ipv6 => "ipv6_invalid",
                _ => "invalid_header",
            },
            Self::Incomplete { .. } => "ip_incomplete",
            Self::NotIp(_) => "not_ip",
            Self::UnsupportedLinkType(_) => "unsupported_linktype",
        }
    }
}

/// Decodes one frame captured on a link of type `link`.
///
/// # Errors
/// [`DecodeError`] when no IP packet can be found in the frame. Damage above the IP layer
/// is reported in [`Packet::anomaly`] instead, so IP-level rules still see the packet.
pub fn decode(
    link: LinkType,
    frame: &[u8],
    ts: Timestamp,
    pcap_cnt: u64,
) -> Result<Packet<'_>, DecodeError> {
    let l3 = link::strip(link, frame)?;
    decode_ip(l3.ip, l3.vlan, ts, pcap_cnt)
}

/// Decodes a bare IP datagram (used for reassembled fragments and raw-IP links).
///
/// # Errors
/// [`DecodeError`] when `data` is not a decodable IPv4/IPv6 header.
pub fn decode_ip(
    data: &[u8],
    vlan: [u16; 2],
    ts: Timestamp,
    pcap_cnt: u64,
) -> Result<Packet<'_>, DecodeError> {
    let parsed = net::parse(data)?;
    let mut anomaly = parsed.anomaly;
    let (l4, payload) = if parsed.ip.frag.is_some_and(|f| f.offset != 0) {
        (Transport::Fragment, parsed.payload)
    } else if parsed.ip.frag.is_some() {
        // First fragment: the transport header may be complete but the payload is not.
        // Defragmentation decodes the whole datagram; keep the first fragment raw.
        (Transport::Fragment, parsed.payload)
    } else {
        match transport::parse(parsed.ip.proto, parsed.ip.version, parsed.payload) {
            Ok(t) => t,
            Err(e) => {
                anomaly.get_or_insert(e);
                (Transport::Malformed, &[][..])
            }
        }
    };
    Ok(Packet {
        ts,
        pcap_cnt,
        vlan,
        ip: parsed.ip,
        l4,
        payload,
        anomaly,
    })
}

#[cfg(test)]
mod tests;
