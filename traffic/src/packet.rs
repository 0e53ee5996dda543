//! Ethernet/IPv4/TCP/UDP frame construction with correct checksums, and IPv4 fragmentation.

use std::net::Ipv4Addr;

/// A frame with its capture time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Microseconds since the Unix epoch.
    pub ts_micros: i64,
    /// Ethernet frame bytes.
    pub data: Vec<u8>,
}

/// An endpoint: address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    /// IPv4 address.
    pub ip: Ipv4Addr,
    /// Port (TCP/UDP).
    pub port: u16,
}

impl Host {
    /// `a.b.c.d:port`.
    #[must_use]
    pub fn new(ip: [u8; 4], port: u16) -> Self {
        Self {
            ip: Ipv4Addr::from(ip),
            port,
        }
    }
}

/// TCP flags.
pub mod flags {
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
}

fn checksum_add(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

fn checksum_fold(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !u16::try_from(acc).unwrap_or(0)
}

fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

/// Wraps an IPv4 packet in Ethernet II.
#[must_use]
pub fn ethernet(src: Ipv4Addr, dst: Ipv4Addr, ip_packet: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + ip_packet.len());
    f.extend_from_slice(&mac_of(dst));
    f.extend_from_slice(&mac_of(src));
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(ip_packet);
    f
}

/// Builds an IPv4 packet (no options) around `payload`.
#[must_use]
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, id: u16, ttl: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_with_frag(src, dst, proto, id, ttl, 0, false, payload)
}

/// Builds an IPv4 packet with explicit fragment fields (offset in bytes, multiple of 8).
#[allow(clippy::too_many_arguments, reason = "mirrors the header fields")]
#[must_use]
pub fn ipv4_with_frag(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    id: u16,
    ttl: u8,
    frag_offset: usize,
    more: bool,
    payload: &[u8],
) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).unwrap_or(u16::MAX);
    let frag_word =
        u16::try_from(frag_offset / 8).unwrap_or(0) & 0x1fff | if more { 0x2000 } else { 0 };
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&frag_word.to_be_bytes());
    h.extend_from_slice(&[ttl, proto, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = checksum_fold(checksum_add(0, &h));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn pseudo(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    let mut acc = checksum_add(0, &src.octets());
    acc = checksum_add(acc, &dst.octets());
    acc + u32::from(proto) + u32::try_from(len).unwrap_or(0)
}

/// A TCP segment (header with optional MSS option on SYNs, and data), checksum included.
#[allow(clippy::too_many_arguments, reason = "mirrors the header fields")]
#[must_use]
pub fn tcp_segment(
    src: Host,
    dst: Host,
    seq: u32,
    ack: u32,
    tcp_flags: u8,
    window: u16,
    data: &[u8],
) -> Vec<u8> {
    let with_mss = tcp_flags & flags::SYN != 0;
    let hlen: u8 = if with_mss { 24 } else { 20 };
    let mut s = Vec::with_capacity(usize::from(hlen) + data.len());
    s.extend_from_slice(&src.port.to_be_bytes());
    s.extend_from_slice(&dst.port.to_be_bytes());
    s.extend_from_slice(&seq.to_be_bytes());
    s.extend_from_slice(&ack.to_be_bytes());
    s.extend_from_slice(&[(hlen / 4) << 4, tcp_flags]);
    s.extend_from_slice(&window.to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 0]);
    if with_mss {
        s.extend_from_slice(&[2, 4, 0x05, 0xb4]);
    }
    s.extend_from_slice(data);
    let c = checksum_fold(checksum_add(pseudo(src.ip, dst.ip, 6, s.len()), &s));
    s[16..18].copy_from_slice(&c.to_be_bytes());
    s
}

/// A UDP datagram, checksum included.
#[must_use]
pub fn udp_datagram(src: Host, dst: Host, data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + data.len()).unwrap_or(u16::MAX);
    let mut d = Vec::with_capacity(8 + data.len());
    d.extend_from_slice(&src.port.to_be_bytes());
    d.extend_from_slice(&dst.port.to_be_bytes());
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(data);
    let c = checksum_fold(checksum_add(pseudo(src.ip, dst.ip, 17, d.len()), &d));
    d[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
    d
}

/// A complete Ethernet frame carrying a UDP datagram.
#[must_use]
pub fn udp_frame(ts_micros: i64, src: Host, dst: Host, ip_id: u16, data: &[u8]) -> Frame {
    let ip = ipv4(src.ip, dst.ip, 17, ip_id, 64, &udp_datagram(src, dst, data));
    Frame {
        ts_micros,
        data: ethernet(src.ip, dst.ip, &ip),
    }
}

/// Splits an IPv4 packet's payload into fragments of at most `size` bytes (rounded down
/// to a multiple of 8), each a complete Ethernet frame.
#[must_use]
pub fn fragment(ts_micros: i64, ip_packet: &[u8], size: usize) -> Vec<Frame> {
    let size = (size / 8).max(1) * 8;
    let (Some(h), Some(payload)) = (ip_packet.get(..20), ip_packet.get(20..)) else {
        return Vec::new();
    };
    let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
    let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
    let id = u16::from_be_bytes([h[4], h[5]]);
    let mut out = Vec::new();
    let mut off = 0;
    for chunk in payload.chunks(size) {
        let more = off + chunk.len() < payload.len();
        let ip = ipv4_with_frag(src, dst, h[9], id, h[8], off, more, chunk);
        out.push(Frame {
            ts_micros,
            data: ethernet(src, dst, &ip),
        });
        off += chunk.len();
    }
    out
}
