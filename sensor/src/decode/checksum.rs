//! Internet checksums (RFC 1071), verified only when the user asks (`-k all`).

use std::net::IpAddr;

use super::{IpVersion, Packet, Transport, ipproto};

/// Ones'-complement sum of `data` folded into `acc` (not yet complemented).
fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        if let Some(pair) = c.first_chunk::<2>() {
            acc = acc.wrapping_add(u32::from(u16::from_be_bytes(*pair)));
        }
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // acc fits in 16 bits after folding.
    u16::try_from(acc).unwrap_or(0)
}

fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    let mut acc = 0;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc = sum(acc, &s.octets());
            acc = sum(acc, &d.octets());
        }
        (s, d) => {
            let s = match s {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            let d = match d {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            acc = sum(acc, &s);
            acc = sum(acc, &d);
        }
    }
    acc.wrapping_add(u32::from(proto))
        .wrapping_add(len >> 16)
        .wrapping_add(len & 0xffff)
}

/// Verifies the IPv4 header checksum and the transport checksum of `p`.
pub(super) fn verify(p: &Packet<'_>) -> bool {
    if p.ip.version == IpVersion::V4 && fold(sum(0, p.ip.header)) != 0xffff {
        return false;
    }
    // The transport segment is the IP payload (after IPv6 extension headers too).
    let Some(segment) = p.ip.datagram.get(p.ip.header.len()..) else {
        return false;
    };
    match &p.l4 {
        Transport::Tcp(_) => {
            fold(sum(
                pseudo_header(p.ip.src, p.ip.dst, ipproto::TCP, segment.len()),
                segment,
            )) == 0xffff
        }
        Transport::Udp(u) => {
            // IPv4 UDP may omit its checksum.
            let stored = u
                .header
                .get(6..8)
                .and_then(|b| b.first_chunk::<2>())
                .map_or(0, |b| u16::from_be_bytes(*b));
            if stored == 0 && p.ip.version == IpVersion::V4 {
                return true;
            }
            let len = usize::from(u.length).min(segment.len());
            let seg = segment.get(..len).unwrap_or(segment);
            fold(sum(
                pseudo_header(p.ip.src, p.ip.dst, ipproto::UDP, seg.len()),
                seg,
            )) == 0xffff
        }
        Transport::Icmpv4(_) => fold(sum(0, segment)) == 0xffff,
        Transport::Icmpv6(_) => {
            fold(sum(
                pseudo_header(p.ip.src, p.ip.dst, ipproto::ICMPV6, segment.len()),
                segment,
            )) == 0xffff
        }
        _ => true,
    }
}
