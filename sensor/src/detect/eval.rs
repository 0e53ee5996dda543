//! Evaluation of one signature against one packet: header, flow, checks, flowbits, lists.

use super::compile::{CFlowbit, ProtoFilter, Sig};
use super::content::{InspectCtx, inspect};
use super::rule::ast::{Check, FlagsModifier, StreamSide};
use super::rule::buffers::BufferId;
use super::{DetectThread, transform};
use crate::Direction;
use crate::applayer::AppProto;
use crate::decode::{IpVersion, Packet, Transport};

/// Per-flow detection state.
#[derive(Debug, Default, Clone)]
pub struct FlowDetect {
    /// Set flowbits (ids), sorted.
    bits: Vec<u32>,
    /// Transactions inspected so far, with the progress of the last round.
    pub(super) txs: Vec<super::tx::TxSeen>,
}

impl FlowDetect {
    /// Whether flowbit `id` is set.
    #[must_use]
    pub fn is_set(&self, id: u32) -> bool {
        self.bits.binary_search(&id).is_ok()
    }

    fn set(&mut self, id: u32) {
        if let Err(pos) = self.bits.binary_search(&id) {
            self.bits.insert(pos, id);
        }
    }

    fn unset(&mut self, id: u32) {
        if let Ok(pos) = self.bits.binary_search(&id) {
            self.bits.remove(pos);
        }
    }

    /// Ids of the set flowbits, ascending.
    #[must_use]
    pub fn bits(&self) -> &[u32] {
        &self.bits
    }
}

/// What the engine needs to know about a packet and its flow.
#[derive(Debug)]
pub struct PacketInput<'a, 'p> {
    /// The packet.
    pub pkt: &'a Packet<'p>,
    /// Its direction in the flow.
    pub dir: Direction,
    /// Flow id (for `by_flow` tracking).
    pub flow_id: u64,
    /// `flow:established` holds.
    pub established: bool,
    /// The flow's application protocol (`Unknown` until detected, `Failed` when detection
    /// gave up).
    pub app_proto: AppProto,
    /// Payload bytes seen so far per direction (for `stream_size`).
    pub stream_bytes: [u64; 2],
    /// Reassembled stream data to inspect with this packet (TCP), if any.
    pub stream: Option<&'a [u8]>,
    /// Whether this packet's payload is part of the reassembled stream.
    pub in_stream: bool,
    /// The packet came out of IP defragmentation.
    pub reassembled_frag: bool,
    /// A flow-end pseudo packet: only stream and transaction inspection apply to it.
    pub pseudo: bool,
    /// Per-flow detection state.
    pub flow: &'a mut FlowDetect,
}

/// Packet-level buffers (`ipv4.hdr`, `tcp.hdr`, ...) of `pkt`.
pub(super) fn packet_buffer<'p>(pkt: &Packet<'p>, buf: BufferId) -> Option<&'p [u8]> {
    match (buf, &pkt.l4) {
        (BufferId::Ipv4Hdr, _) if pkt.ip.version == IpVersion::V4 => Some(pkt.ip.header),
        (BufferId::Ipv6Hdr, _) if pkt.ip.version == IpVersion::V6 => Some(pkt.ip.header),
        (BufferId::TcpHdr, Transport::Tcp(t)) => Some(t.header),
        (BufferId::UdpHdr, Transport::Udp(u)) => Some(u.header),
        (BufferId::Icmpv4Hdr, Transport::Icmpv4(i)) => Some(i.header),
        (BufferId::Icmpv6Hdr, Transport::Icmpv6(i)) => Some(i.header),
        _ => None,
    }
}

fn proto_ok(sig: &Sig, pkt: &Packet<'_>) -> bool {
    let v = match pkt.ip.version {
        IpVersion::V4 => 4,
        IpVersion::V6 => 6,
    };
    match &sig.proto {
        ProtoFilter::Ip(want) => want.is_none_or(|w| w == v),
        ProtoFilter::Tcp { .. } => matches!(pkt.l4, Transport::Tcp(_)),
        ProtoFilter::Udp => matches!(pkt.l4, Transport::Udp(_)),
        ProtoFilter::Icmp(want) => match pkt.l4 {
            Transport::Icmpv4(_) => want.is_none_or(|w| w == 4),
            Transport::Icmpv6(_) => want.is_none_or(|w| w == 6),
            _ => false,
        },
        ProtoFilter::Sctp => pkt.ip.proto == crate::decode::ipproto::SCTP,
    }
}

fn addresses_ok(sig: &Sig, pkt: &Packet<'_>) -> bool {
    let h = &sig.header;
    let (s, d, sp, dp) = (pkt.ip.src, pkt.ip.dst, pkt.src_port(), pkt.dst_port());
    let fwd = h.src.contains(s)
        && h.dst.contains(d)
        && h.src_ports.contains(sp)
        && h.dst_ports.contains(dp);
    fwd || (h.bidirectional
        && h.src.contains(d)
        && h.dst.contains(s)
        && h.src_ports.contains(dp)
        && h.dst_ports.contains(sp))
}

fn flow_ok(sig: &Sig, input: &PacketInput<'_, '_>) -> bool {
    let f = &sig.flow;
    if let Some(to_server) = f.to_server
        && (input.dir == Direction::ToServer) != to_server
    {
        return false;
    }
    if f.established && !input.established {
        return false;
    }
    if f.not_established && input.established {
        return false;
    }
    if f.only_frag && !input.reassembled_frag {
        return false;
    }
    if f.no_frag && input.reassembled_frag {
        return false;
    }
    if let Some(app) = sig.app_proto
        && !app.matches_flow(input.app_proto)
    {
        return false;
    }
    true
}

fn flags_match(have: u8, want: u8, mask: u8, m: FlagsModifier) -> bool {
    let have = have & !mask;
    match m {
        FlagsModifier::Exact => have == want,
        FlagsModifier::Plus => have & want == want,
        FlagsModifier::Any => have & want != 0 || want == 0 && have == 0,
        FlagsModifier::Not => have & want != want,
    }
}

fn check_ok(c: &Check, input: &PacketInput<'_, '_>) -> bool {
    let pkt = input.pkt;
    let icmp = match &pkt.l4 {
        Transport::Icmpv4(i) | Transport::Icmpv6(i) => Some(i),
        _ => None,
    };
    match c {
        Check::Dsize(cmp) => cmp.matches(pkt.payload.len() as u64),
        Check::Ttl(cmp) => cmp.matches(u64::from(pkt.ip.ttl)),
        Check::Itype(cmp) => icmp.is_some_and(|i| cmp.matches(u64::from(i.icmp_type))),
        Check::Icode(cmp) => icmp.is_some_and(|i| cmp.matches(u64::from(i.code))),
        Check::IcmpId(id) => icmp.and_then(|i| i.id) == Some(*id),
        Check::IcmpSeq(seq) => icmp.and_then(|i| i.seq) == Some(*seq),
        Check::IpProto(p, neg) => (pkt.ip.proto == *p) != *neg,
        Check::IpId(id) => pkt.ip.version == IpVersion::V4 && pkt.ip.id == *id,
        Check::Fragbits(bits, m) => {
            // M = 0x2000 (more fragments), D = 0x4000 (don't fragment), R = 0x8000.
            let f = pkt.ip.flags_frag;
            let have = u8::from(f & 0x2000 != 0)
                | u8::from(f & 0x4000 != 0) << 1
                | u8::from(f & 0x8000 != 0) << 2;
            flags_match(have, *bits, 0, *m)
        }
        Check::FragOffset(cmp) => cmp.matches(u64::from(pkt.ip.flags_frag & 0x1fff) * 8),
        Check::IpOpts(bit) => pkt.ip.ipv4_options & bit != 0,
        Check::SameIp => pkt.ip.src == pkt.ip.dst,
        Check::Flags(fm) => pkt
            .tcp()
            .is_some_and(|t| flags_match(t.flags, fm.flags, fm.mask, fm.modifier)),
        Check::Window(w, neg) => pkt.tcp().is_some_and(|t| (t.window == *w) != *neg),
        Check::Seq(s) => pkt.tcp().is_some_and(|t| t.seq == *s),
        Check::Ack(a) => pkt.tcp().is_some_and(|t| t.ack == *a),
        Check::TcpMss(cmp) => pkt
            .tcp()
            .and_then(|t| t.mss)
            .is_some_and(|m| cmp.matches(u64::from(m))),
        Check::StreamSize(side, cmp) => {
            if pkt.tcp().is_none() {
                return false;
            }
            let client = input.stream_bytes[Direction::ToServer.index()];
            let server = input.stream_bytes[Direction::ToClient.index()];
            match side {
                StreamSide::Client => cmp.matches(client),
                StreamSide::Server => cmp.matches(server),
                StreamSide::Both => cmp.matches(client) && cmp.matches(server),
                StreamSide::Either => cmp.matches(client) || cmp.matches(server),
            }
        }
        Check::AppLayerProtocol(want, neg) => {
            // Until the flow's protocol is known, neither form matches (as in Suricata).
            input.app_proto != AppProto::Unknown && want.matches_flow(input.app_proto) != *neg
        }
        // Transaction-level checks are evaluated with the transaction (detect::tx).
        Check::Urilen(..)
        | Check::TlsVersion(_)
        | Check::TlsFingerprint(_)
        | Check::SslVersion(_)
        | Check::SslState(..) => true,
    }
}

fn flowbit_conditions_ok(sig: &Sig, flow: &FlowDetect) -> bool {
    sig.flowbits.iter().all(|f| match f {
        CFlowbit::IsSet(ids) => ids.iter().any(|&id| flow.is_set(id)),
        CFlowbit::IsNotSet(ids) => ids.iter().all(|&id| !flow.is_set(id)),
        _ => true,
    })
}

/// Applies a matched signature's set/unset/toggle commands, in rule order.
pub(super) fn apply_flowbits(sig: &Sig, flow: &mut FlowDetect) {
    for f in &sig.flowbits {
        match f {
            CFlowbit::Set(ids) => ids.iter().for_each(|&id| flow.set(id)),
            CFlowbit::Unset(ids) => ids.iter().for_each(|&id| flow.unset(id)),
            CFlowbit::Toggle(ids) => {
                for &id in ids {
                    if flow.is_set(id) {
                        flow.unset(id);
                    } else {
                        flow.set(id);
                    }
                }
            }
            CFlowbit::IsSet(_) | CFlowbit::IsNotSet(_) => {}
        }
    }
}

/// Header, flow state, packet-level checks and flowbits conditions: everything about a
/// signature that does not look at a buffer.
pub(super) fn pre_checks(sig: &Sig, input: &PacketInput<'_, '_>) -> bool {
    proto_ok(sig, input.pkt)
        && addresses_ok(sig, input.pkt)
        && flow_ok(sig, input)
        && sig.checks.iter().all(|c| check_ok(c, input))
        && flowbit_conditions_ok(sig, input.flow)
}

/// Evaluates `sig`'s packet lists (payload/stream and header buffers) on the packet.
/// `Some(stream_match)` when all of them match (vacuously for none).
pub(super) fn packet_lists_match(
    sig: &Sig,
    th: &mut DetectThread,
    input: &PacketInput<'_, '_>,
) -> Option<bool> {
    th.vars.clear();
    th.vars.resize(usize::from(sig.nvars), 0);
    let mut stream_match = false;
    for list in &sig.lists {
        if list.key.buffer == BufferId::Payload {
            match payload_match(sig, list, th, input) {
                Some(s) => stream_match |= s,
                None => return None,
            }
            continue;
        }
        if !packet_buffer_kind(list.key.buffer) {
            // App-layer lists are evaluated against transactions (detect::tx).
            continue;
        }
        let buf = packet_buffer(input.pkt, list.key.buffer)?;
        let ok = if list.key.transforms.is_empty() {
            inspect(&list.steps, buf, &mut InspectCtx::new(&mut th.vars))
        } else {
            let tbuf = transformed(th, &list.key, buf);
            inspect(&list.steps, &tbuf, &mut InspectCtx::new(&mut th.vars))
        };
        if !ok {
            return None;
        }
    }
    Some(stream_match)
}

/// Evaluates a packet signature on the packet. `Some(stream_match)` when it matches.
pub(super) fn match_packet(
    sig: &Sig,
    th: &mut DetectThread,
    input: &PacketInput<'_, '_>,
) -> Option<bool> {
    if sig.needs_tx || !pre_checks(sig, input) {
        return None;
    }
    // Header-only signatures never match a pseudo packet (it has no real header).
    if input.pseudo && !sig.lists.iter().any(|l| l.key.buffer == BufferId::Payload) {
        return None;
    }
    packet_lists_match(sig, th, input)
}

/// Whether a buffer comes from the packet (not from a transaction).
fn packet_buffer_kind(b: BufferId) -> bool {
    matches!(
        b,
        BufferId::Ipv4Hdr
            | BufferId::Ipv6Hdr
            | BufferId::TcpHdr
            | BufferId::UdpHdr
            | BufferId::Icmpv4Hdr
            | BufferId::Icmpv6Hdr
    )
}

/// Applies (and caches, for this packet) a transform chain.
fn transformed(th: &mut DetectThread, key: &super::BufferKey, buf: &[u8]) -> Vec<u8> {
    if let Some((_, v)) = th.transformed.iter().find(|(k, _)| k == key) {
        return v.clone();
    }
    let v = transform::apply(&key.transforms, buf);
    th.transformed.push((key.clone(), v.clone()));
    v
}

/// The payload list: stream first for stream-capable TCP rules, then the packet.
/// `Some(true)` when the stream matched, `Some(false)` for the packet, `None` no match.
pub(super) fn payload_match(
    sig: &Sig,
    list: &super::compile::CList,
    th: &mut DetectThread,
    input: &PacketInput<'_, '_>,
) -> Option<bool> {
    let (packets, stream) = match sig.proto {
        ProtoFilter::Tcp { packets, stream } => (packets, stream),
        ProtoFilter::Ip(_) if matches!(input.pkt.l4, Transport::Tcp(_)) => (true, true),
        _ => (true, false),
    };
    let stream = stream && !sig.flow.no_stream;
    let packets = packets && !sig.flow.only_stream;
    if stream
        && let Some(chunk) = input.stream.filter(|c| !c.is_empty())
        && inspect(&list.steps, chunk, &mut InspectCtx::new(&mut th.vars))
    {
        return Some(true);
    }
    // A packet whose payload went into the stream is covered by stream inspection, unless
    // the rule also wants packets (Suricata's SIG_FLAG_REQUIRE_PACKET).
    if !packets
        || (stream && input.in_stream && !sig.require_packet)
        || input.pkt.payload.is_empty()
    {
        return None;
    }
    inspect(
        &list.steps,
        input.pkt.payload,
        &mut InspectCtx::new(&mut th.vars),
    )
    .then_some(false)
}
