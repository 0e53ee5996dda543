//! Link layers: find the IP packet inside a frame.
//!
//! Supported: Ethernet II (with up to three 802.1Q / 802.1ad / 0x9100 tags; the first two
//! VLAN IDs are kept for the flow key), Linux cooked v1 (SLL) and v2 (SLL2), BSD null and
//! OpenBSD loopback (4-byte address family), and raw IP (DLT_RAW, LINKTYPE_IPV4/IPV6).

use etherparse::{Ethernet2HeaderSlice, SingleVlanHeaderSlice};

use super::{DecodeError, Layer};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
/// Tags beyond this many are treated as malformed (Suricata allows three too).
const MAX_VLAN_TAGS: usize = 3;

/// A capture's link type, from the pcap header (`LINKTYPE_*` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1).
    Ethernet,
    /// LINKTYPE_LINUX_SLL (113).
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2 (276).
    LinuxSll2,
    /// LINKTYPE_NULL (0): 4-byte host-order address family.
    Null,
    /// LINKTYPE_LOOP (108): 4-byte network-order address family.
    Loop,
    /// LINKTYPE_RAW (101, also DLT_RAW 12/14), LINKTYPE_IPV4 (228), LINKTYPE_IPV6 (229).
    Raw,
    /// Anything else, with its number, rejected at decode.
    Other(u32),
}

impl LinkType {
    /// Maps a pcap `LINKTYPE_*` / `DLT_*` number.
    #[must_use]
    pub fn from_pcap(linktype: u32) -> Self {
        match linktype {
            1 => Self::Ethernet,
            113 => Self::LinuxSll,
            276 => Self::LinuxSll2,
            0 => Self::Null,
            108 => Self::Loop,
            12 | 14 | 101 | 228 | 229 => Self::Raw,
            other => Self::Other(other),
        }
    }

    /// Whether the decoder handles this link type.
    #[must_use]
    pub fn is_supported(self) -> bool {
        !matches!(self, Self::Other(_))
    }
}

/// The network layer found inside a frame.
pub(super) struct L3<'a> {
    pub ip: &'a [u8],
    pub vlan: [u16; 2],
}

/// Strips the link header (and VLAN tags) from `frame`.
pub(super) fn strip(link: LinkType, frame: &[u8]) -> Result<L3<'_>, DecodeError> {
    match link {
        LinkType::Ethernet => {
            let eth = Ethernet2HeaderSlice::from_slice(frame)
                .map_err(|_| DecodeError::Truncated { layer: Layer::Link })?;
            let rest = frame
                .get(eth.slice().len()..)
                .ok_or(DecodeError::Truncated { layer: Layer::Link })?;
            by_ethertype(eth.ether_type().0, rest)
        }
        LinkType::LinuxSll => {
            // 16 bytes: packet type, ARPHRD, addr len, addr[8], protocol (big endian).
            let (Some(hdr), Some(rest)) = (frame.first_chunk::<16>(), frame.get(16..)) else {
                return Err(DecodeError::Truncated { layer: Layer::Link });
            };
            let proto = u16::from_be_bytes([hdr[14], hdr[15]]); // constant indexes into [u8; 16]
            by_ethertype(proto, rest)
        }
        LinkType::LinuxSll2 => {
            // 20 bytes: protocol (big endian), reserved, ifindex, ARPHRD, type, addr len, addr[8].
            let (Some(hdr), Some(rest)) = (frame.first_chunk::<20>(), frame.get(20..)) else {
                return Err(DecodeError::Truncated { layer: Layer::Link });
            };
            let proto = u16::from_be_bytes([hdr[0], hdr[1]]); // constant indexes into [u8; 20]
            by_ethertype(proto, rest)
        }
        LinkType::Null | LinkType::Loop => {
            let (Some(raw), Some(rest)) = (frame.first_chunk::<4>(), frame.get(4..)) else {
                return Err(DecodeError::Truncated { layer: Layer::Link });
            };
            let raw = *raw;
            // NULL is in the capturing host's byte order: accept either.
            let family = if link == LinkType::Loop {
                u32::from_be_bytes(raw)
            } else {
                let le = u32::from_le_bytes(raw);
                if le < 256 {
                    le
                } else {
                    u32::from_be_bytes(raw)
                }
            };
            match family {
                // AF_INET everywhere; AF_INET6 is 24 (BSDs), 28 (FreeBSD), 30 (macOS), 10 (Linux).
                2 => Ok(L3 {
                    ip: rest,
                    vlan: [0; 2],
                }),
                10 | 24 | 28 | 30 => Ok(L3 {
                    ip: rest,
                    vlan: [0; 2],
                }),
                other => Err(DecodeError::NotIp(u16::try_from(other).unwrap_or(u16::MAX))),
            }
        }
        LinkType::Raw => Ok(L3 {
            ip: frame,
            vlan: [0; 2],
        }),
        LinkType::Other(n) => Err(DecodeError::UnsupportedLinkType(n)),
    }
}

/// Follows VLAN tags from `ethertype` until IP.
fn by_ethertype(mut ethertype: u16, mut rest: &[u8]) -> Result<L3<'_>, DecodeError> {
    let mut vlan = [0u16; 2];
    let mut tags = 0usize;
    loop {
        match ethertype {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => return Ok(L3 { ip: rest, vlan }),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                if tags >= MAX_VLAN_TAGS {
                    return Err(DecodeError::Invalid { layer: Layer::Vlan });
                }
                let tag = SingleVlanHeaderSlice::from_slice(rest)
                    .map_err(|_| DecodeError::Truncated { layer: Layer::Vlan })?;
                if let Some(slot) = vlan.get_mut(tags) {
                    *slot = tag.vlan_identifier().value();
                }
                tags += 1;
                ethertype = tag.ether_type().0;
                rest = rest
                    .get(tag.slice().len()..)
                    .ok_or(DecodeError::Truncated { layer: Layer::Vlan })?;
            }
            other => return Err(DecodeError::NotIp(other)),
        }
    }
}
