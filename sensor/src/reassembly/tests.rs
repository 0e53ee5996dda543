//! Table-driven and property tests of sessions built from hand-made TCP headers.

use proptest::prelude::*;

use super::*;
use crate::Direction::{self, ToClient, ToServer};
use crate::decode::TcpHeader;
use crate::decode::tcpflag::{ACK, FIN, PSH, RST, SYN};

pub(super) fn hdr(seq: u32, ack: u32, flags: u8) -> TcpHeader<'static> {
    TcpHeader {
        src_port: 40_000,
        dst_port: 80,
        seq,
        ack,
        flags,
        window: 65_535,
        urgent: 0,
        mss: None,
        wscale: None,
        sack_permitted: false,
        timestamps: None,
        header: &[],
    }
}

/// A session after a three-way handshake with client ISN `c` and server ISN `s`.
struct Harness {
    ctx: Reassembler,
    sess: TcpSession,
    c: u32,
    s: u32,
}

impl Harness {
    fn new(cfg: ReassemblyConfig, c: u32, s: u32) -> Self {
        let mut ctx = Reassembler::new(cfg);
        let mut sess = ctx.new_session();
        assert!(
            sess.on_packet(&mut ctx, ToServer, &hdr(c, 0, SYN), &[])
                .tracked
        );
        sess.on_packet(
            &mut ctx,
            ToClient,
            &hdr(s, c.wrapping_add(1), SYN | ACK),
            &[],
        );
        sess.on_packet(
            &mut ctx,
            ToServer,
            &hdr(c.wrapping_add(1), s.wrapping_add(1), ACK),
            &[],
        );
        Self { ctx, sess, c, s }
    }

    fn default_at(c: u32) -> Self {
        Self::new(ReassemblyConfig::default(), c, 7_000)
    }

    /// Client data at stream offset `off`.
    fn client(&mut self, off: u64, data: &[u8]) -> PacketVerdict {
        let seq = self.c.wrapping_add(1).wrapping_add(off as u32);
        let ack = self.s.wrapping_add(1);
        self.sess
            .on_packet(&mut self.ctx, ToServer, &hdr(seq, ack, PSH | ACK), data)
    }

    /// Server ACK of client data up to offset `off`.
    fn server_ack(&mut self, off: u64) -> PacketVerdict {
        let seq = self.s.wrapping_add(1);
        let ack = self.c.wrapping_add(1).wrapping_add(off as u32);
        self.sess
            .on_packet(&mut self.ctx, ToClient, &hdr(seq, ack, ACK), &[])
    }

    /// Everything the app view hands out for `dir`, gaps as `len` '?' bytes.
    fn drain_app(&mut self, dir: Direction) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let n = match self.sess.app_data(dir) {
                AppChunk::None => break,
                AppChunk::Data { offset, data } => {
                    assert_eq!(offset, self.sess.status(dir).app_offset);
                    out.extend_from_slice(data);
                    data.len() as u64
                }
                AppChunk::Gap { len, .. } => {
                    out.extend(std::iter::repeat_n(b'?', len as usize));
                    len
                }
            };
            self.sess.app_consumed(&mut self.ctx, dir, n);
        }
        out
    }

    /// New bytes of every raw chunk due now, concatenated (overlap removed).
    fn drain_raw(&mut self, dir: Direction) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(c) = self.sess.raw_data(&self.ctx, dir) {
            let skip = (c.new_from - c.offset) as usize;
            out.extend_from_slice(&c.data[skip..]);
            let end = c.end();
            self.sess.raw_inspected(&mut self.ctx, dir, end);
        }
        out
    }
}

/// Sturges/Novak pattern as TCP segments: (letter, offset, length); all sent, then ACKed.
const NOVAK: [(u8, u64, usize); 17] = [
    (b'A', 0, 24),
    (b'B', 32, 16),
    (b'C', 48, 24),
    (b'D', 80, 8),
    (b'E', 104, 16),
    (b'F', 120, 24),
    (b'G', 144, 16),
    (b'H', 160, 16),
    (b'I', 176, 8),
    (b'J', 8, 32),
    (b'K', 48, 24),
    (b'L', 72, 24),
    (b'M', 96, 24),
    (b'N', 128, 8),
    (b'O', 152, 8),
    (b'P', 160, 8),
    (b'Q', 176, 16),
];

/// Expected 8-byte blocks, derived by hand from the TCP rules in the module header.
/// linux: K starts and ends with C (C stays), P starts with H but ends before it (H stays),
/// Q starts with I and ends after it (Q wins). solaris: J ends after A (J takes 8..24) but
/// before B's end (B stays), K ends with C and starts with it (K wins), M ends with E and
/// starts before it (M wins), O ends with G but starts after it (G stays), Q ends after I.
const NOVAK_TCP: [(OverlapPolicy, &str); 7] = [
    (OverlapPolicy::First, "AAAJBBCCCLDLMEEFFFGGHHIQ"),
    (OverlapPolicy::Last, "AJJJJBKKKLLLMMMFNFGOPHQQ"),
    (OverlapPolicy::Bsd, "AAAJJBCCCLLLMMMFFFGGHHIQ"),
    (OverlapPolicy::BsdRight, "AAAJJBCCCLLLMMMFFFGGHHIQ"),
    (OverlapPolicy::Windows, "AAAJJBCCCLLLMMMFFFGGHHIQ"),
    (OverlapPolicy::Linux, "AAAJJBCCCLLLMMMFFFGGHHQQ"),
    (OverlapPolicy::Solaris, "AJJJBBKKKLLLMMMFFFGGHHQQ"),
];

#[test]
fn sturges_novak_pattern_per_policy_tcp() {
    for (policy, expected) in NOVAK_TCP {
        let cfg = ReassemblyConfig {
            policy,
            ..ReassemblyConfig::default()
        };
        let mut h = Harness::new(cfg, 1_000, 5_000);
        for (i, &(letter, off, len)) in NOVAK.iter().enumerate() {
            let v = h.client(off, &vec![letter; len]);
            assert!(v.stream_add, "{policy}: segment {i} not added");
            assert_eq!(v.events.has(StreamEvents::OVERLAP), i >= 9, "{policy} {i}");
            // Nothing is ACKed yet: nothing is visible.
            assert_eq!(h.sess.app_data(ToServer), AppChunk::None);
        }
        h.server_ack(192);
        let want: Vec<u8> = expected.bytes().flat_map(|b| [b; 8]).collect();
        assert_eq!(
            String::from_utf8_lossy(&h.drain_app(ToServer)),
            String::from_utf8_lossy(&want),
            "{policy}"
        );
        let st = h.ctx.stats();
        assert_eq!(st.overlaps, 8, "{policy}");
        assert_eq!(st.overlap_different_data, 8, "{policy}");
    }
}

#[test]
fn app_view_waits_for_acks_and_reports_lost_data_as_a_gap() {
    let mut h = Harness::default_at(100);
    assert!(h.client(0, b"GET / HTTP/1.1\r\n").stream_add);
    assert_eq!(h.sess.app_data(ToServer), AppChunk::None, "not ACKed yet");
    h.server_ack(4);
    assert_eq!(
        h.sess.app_data(ToServer),
        AppChunk::Data {
            offset: 0,
            data: b"GET "
        }
    );
    h.server_ack(16);
    assert_eq!(h.drain_app(ToServer), b"GET / HTTP/1.1\r\n");
    // 10 bytes lost in the capture; the server ACKs past them.
    h.client(26, b"Host: x\r\n");
    h.server_ack(35);
    assert_eq!(
        h.sess.app_data(ToServer),
        AppChunk::Gap {
            offset: 16,
            len: 10
        }
    );
    assert_eq!(h.drain_app(ToServer), b"??????????Host: x\r\n");
    let st = h.sess.status(ToServer);
    assert_eq!((st.gaps, st.app_offset, st.next_offset), (1, 35, 35));
}

#[test]
fn retransmissions_and_conflicting_overlaps_are_flagged() {
    let mut h = Harness::default_at(0);
    h.client(0, b"abcdef");
    let v = h.client(0, b"abcdef");
    assert!(v.retransmission && v.stream_add);
    assert!(v.events.has(StreamEvents::OVERLAP));
    assert!(!v.events.has(StreamEvents::OVERLAP_DIFFERENT_DATA));
    let v = h.client(2, b"XY");
    assert!(v.retransmission && v.events.has(StreamEvents::OVERLAP_DIFFERENT_DATA));
    h.server_ack(6);
    // bsd: the later segment starts after the original, so the original stays.
    assert_eq!(h.drain_app(ToServer), b"abcdef");
    // Consumed data retransmitted: not part of the stream any more.
    h.sess.set_raw_enabled(&h.ctx, ToServer, false);
    let v = h.client(0, b"abc");
    assert!(v.retransmission && !v.stream_add);
    assert_eq!(h.ctx.stats().retransmissions, 3);
}

#[test]
fn raw_view_follows_acks_chunk_size_triggers_and_flush() {
    let cfg = ReassemblyConfig {
        toserver_chunk_size: 10,
        raw_overlap: 4,
        ..ReassemblyConfig::default()
    };
    let mut h = Harness::new(cfg, 10, 20);
    h.sess.set_app_enabled(&h.ctx, ToServer, false);
    h.client(0, b"0123456789abcdefghij");
    h.server_ack(8);
    assert!(
        h.sess.raw_data(&h.ctx, ToServer).is_none(),
        "8 < chunk size 10"
    );
    h.server_ack(12);
    let c = h.sess.raw_data(&h.ctx, ToServer).unwrap();
    assert_eq!((c.offset, c.new_from, c.data), (0, 0, &b"0123456789ab"[..]));
    h.sess.raw_inspected(&mut h.ctx, ToServer, c.end());
    // The app layer finished a request: inspect without a full chunk; 4 bytes overlap.
    h.server_ack(15);
    h.sess.trigger_raw(ToServer);
    let c = h.sess.raw_data(&h.ctx, ToServer).unwrap();
    assert_eq!((c.offset, c.new_from, c.data), (8, 12, &b"89abcde"[..]));
    h.sess.raw_inspected(&mut h.ctx, ToServer, c.end());
    assert!(h.sess.raw_data(&h.ctx, ToServer).is_none());
    // Flow end: the un-ACKed tail once, then nothing.
    h.sess.flush();
    assert_eq!(h.drain_raw(ToServer), b"fghij");
    assert!(h.sess.raw_data(&h.ctx, ToServer).is_none());
}

#[test]
fn pattern_across_raw_chunks_is_inside_one_chunk_thanks_to_overlap() {
    let cfg = ReassemblyConfig {
        toserver_chunk_size: 8,
        raw_overlap: 8,
        ..ReassemblyConfig::default()
    };
    let mut h = Harness::new(cfg, 0, 0);
    h.sess.set_app_enabled(&h.ctx, ToServer, false);
    h.client(0, b"xxxxxxEV");
    h.server_ack(8);
    let c = h.sess.raw_data(&h.ctx, ToServer).unwrap();
    assert!(!c.data.windows(4).any(|w| w == b"EVIL"));
    h.sess.raw_inspected(&mut h.ctx, ToServer, c.end());
    h.client(8, b"ILyyyyyy");
    h.server_ack(16);
    let c = h.sess.raw_data(&h.ctx, ToServer).unwrap();
    let pos = c.data.windows(4).position(|w| w == b"EVIL").unwrap() as u64;
    assert!(
        c.offset + pos + 4 > c.new_from,
        "match ends in new bytes: report it"
    );
}

#[test]
fn rst_payload_is_not_stream_data_and_closes_the_session() {
    // Shape of suricata-verify bug-6244-tcp-rst-with-data-02: server data never ACKed,
    // then a RST with a payload from the server.
    let mut h = Harness::default_at(1);
    let sseq = h.s.wrapping_add(1);
    let mut off = 0u32;
    for part in [&b"Please "[..], b"Let ", b"Me ", b"In!"] {
        let v = h
            .sess
            .on_packet(&mut h.ctx, ToClient, &hdr(sseq + off, 2, PSH | ACK), part);
        assert!(v.stream_add);
        off += part.len() as u32;
    }
    let v = h.sess.on_packet(
        &mut h.ctx,
        ToClient,
        &hdr(sseq + off, 0, RST),
        b"Access Denied",
    );
    assert!(!v.stream_add && v.events.has(StreamEvents::RST_WITH_DATA));
    assert!(h.sess.is_reset());
    // Closing: raw inspection is due, but only ACKed data (none) until flow end.
    assert!(h.drain_raw(ToClient).is_empty());
    let v = h.client(0, b"late");
    assert!(!v.stream_add && v.events.has(StreamEvents::DATA_AFTER_CLOSE));
    h.sess.flush();
    assert_eq!(h.drain_raw(ToClient), b"Please Let Me In!");
    assert_eq!(h.drain_app(ToClient), b"Please Let Me In!");
}

#[test]
fn depth_stops_reassembly_and_says_so() {
    let cfg = ReassemblyConfig {
        depth: 10,
        ..ReassemblyConfig::default()
    };
    let mut h = Harness::new(cfg, 0, 0);
    assert!(h.client(0, b"01234567").stream_add);
    let v = h.client(8, b"89abcd");
    assert!(v.stream_add && v.events.has(StreamEvents::DEPTH_REACHED));
    let v = h.client(14, b"efgh");
    assert!(!v.stream_add);
    assert!(h.sess.status(ToServer).depth_reached);
    h.server_ack(18);
    assert_eq!(h.drain_app(ToServer), b"0123456789");
    let st = h.ctx.stats();
    assert_eq!((st.depth_reached, st.bytes_beyond_depth), (1, 8));
    // Depth reached: raw inspection runs without waiting for a chunk.
    assert_eq!(h.drain_raw(ToServer), b"0123456789");
}

#[test]
fn midstream_pickup_is_off_by_default() {
    let mut ctx = Reassembler::new(ReassemblyConfig::default());
    let mut s = ctx.new_session();
    let v = s.on_packet(&mut ctx, ToServer, &hdr(500, 900, PSH | ACK), b"hello");
    assert!(!v.tracked && !v.stream_add);
    assert_eq!(ctx.stats().untracked_packets, 1);

    let mut ctx = Reassembler::new(ReassemblyConfig {
        midstream: true,
        ..ReassemblyConfig::default()
    });
    let mut s = ctx.new_session();
    let v = s.on_packet(&mut ctx, ToServer, &hdr(500, 900, PSH | ACK), b"hello");
    assert!(v.tracked && v.stream_add);
    assert_eq!(v.rel_seq, Some(0));
    s.on_packet(&mut ctx, ToClient, &hdr(900, 505, ACK), b"");
    assert_eq!(
        s.app_data(ToServer),
        AppChunk::Data {
            offset: 0,
            data: b"hello"
        }
    );
    assert_eq!(ctx.stats().midstream_pickups, 1);
}

#[test]
fn fin_ack_does_not_look_like_a_gap() {
    let mut h = Harness::default_at(0);
    h.sess.on_packet(
        &mut h.ctx,
        ToServer,
        &hdr(1, 7_001, FIN | PSH | ACK),
        b"bye",
    );
    h.server_ack(4); // ACKs the FIN's sequence number too
    assert_eq!(h.drain_app(ToServer), b"bye");
    assert_eq!(h.sess.status(ToServer).gaps, 0);
}

#[test]
fn flood_of_half_open_sessions_stays_under_the_memcap() {
    let cap = 256 * 1024;
    let mut ctx = Reassembler::new(ReassemblyConfig {
        memcap: cap,
        ..ReassemblyConfig::default()
    });
    let mut sessions = Vec::new();
    for i in 0..2_000u32 {
        let mut s = ctx.new_session();
        s.on_packet(&mut ctx, ToServer, &hdr(i, 0, SYN), &[]);
        // Out-of-order data that is never ACKed: held until the flow ends.
        s.on_packet(&mut ctx, ToServer, &hdr(i + 1000, 0, ACK), &[0x41; 400]);
        assert!(
            ctx.budget().used() <= cap,
            "at {i}: {}",
            ctx.budget().used()
        );
        sessions.push(s);
    }
    let st = ctx.stats();
    // Each stored segment costs 400 + 64 (block) + 48 (segment record) = 512 bytes.
    assert_eq!(st.data_packets, 2_000);
    assert_eq!(st.memcap_drops, 2_000 - (cap / 512) as u64);
    assert_eq!(st.mem_used, (cap / 512 * 512) as u64);
    drop(sessions);
    assert_eq!(
        ctx.budget().used(),
        0,
        "dropped sessions give their bytes back"
    );
}

/// Segments `(offset, len)` cut from `data`, as a client would send them.
fn send_all(h: &mut Harness, data: &[u8], segs: &[(usize, usize)]) {
    for &(off, len) in segs {
        let end = (off + len).min(data.len());
        if off < end {
            h.client(off as u64, &data[off..end]);
        }
    }
}

proptest! {
    #[test]
    fn any_order_and_duplication_gives_the_same_stream(
        data in proptest::collection::vec(any::<u8>(), 1..600),
        cuts in proptest::collection::vec(1usize..80, 1..20),
        extra in proptest::collection::vec((0usize..600, 1usize..90), 0..20),
        order in any::<prop::sample::Index>(),
        policy in proptest::sample::select(OverlapPolicy::ALL.to_vec()),
        isn in any::<u32>(),
    ) {
        // A cover of the data by consecutive segments, plus overlapping extras carrying the
        // same bytes, in a rotated order.
        let mut segs = Vec::new();
        let mut pos = 0;
        for c in cuts.iter().cycle() {
            if pos >= data.len() { break; }
            segs.push((pos, *c));
            pos += c;
        }
        segs.extend(extra);
        let k = order.index(segs.len());
        segs.rotate_left(k);
        let cfg = ReassemblyConfig { policy, ..ReassemblyConfig::default() };
        let mut h = Harness::new(cfg, isn, 3);
        send_all(&mut h, &data, &segs);
        h.server_ack(data.len() as u64);
        prop_assert_eq!(h.drain_app(ToServer), data.clone());
        prop_assert_eq!(h.ctx.stats().overlap_different_data, 0);
    }

    #[test]
    fn wraparound_isn_gives_the_same_stream_as_isn_zero(
        data in proptest::collection::vec(any::<u8>(), 1..3000),
        seg in 1usize..700,
        back in 0u32..3000,
    ) {
        let segs: Vec<(usize, usize)> = (0..data.len()).step_by(seg).map(|o| (o, seg)).rev().collect();
        let mut a = Harness::default_at(0);
        let mut b = Harness::default_at(u32::MAX - back);
        send_all(&mut a, &data, &segs);
        send_all(&mut b, &data, &segs);
        a.server_ack(data.len() as u64);
        b.server_ack(data.len() as u64);
        let sa = a.drain_app(ToServer);
        prop_assert_eq!(&sa, &data);
        prop_assert_eq!(b.drain_app(ToServer), sa);
    }

    #[test]
    fn arbitrary_packets_never_panic_or_pass_the_memcap(
        pkts in proptest::collection::vec(
            (any::<bool>(), any::<u32>(), any::<u32>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..200)),
            1..120),
        near in proptest::collection::vec((0u32..4000, 0usize..300), 0..60),
        policy in proptest::sample::select(OverlapPolicy::ALL.to_vec()),
        midstream in any::<bool>(),
    ) {
        let cap = 16 * 1024;
        let mut ctx = Reassembler::new(ReassemblyConfig { policy, memcap: cap, midstream, depth: 2000, ..ReassemblyConfig::default() });
        let mut s = ctx.new_session();
        s.on_packet(&mut ctx, ToServer, &hdr(77, 0, SYN), &[]);
        for (to_server, seq, ack, flags, payload) in pkts {
            let dir = if to_server { ToServer } else { ToClient };
            s.on_packet(&mut ctx, dir, &hdr(seq, ack, flags), &payload);
            let _ = s.app_data(dir);
            let _ = s.raw_data(&ctx, dir);
            prop_assert!(ctx.budget().used() <= cap);
        }
        // Plausible in-window segments too, then consume everything.
        for (off, len) in near {
            s.on_packet(&mut ctx, ToServer, &hdr(78 + off, 0, ACK), &vec![1; len]);
            prop_assert!(ctx.budget().used() <= cap);
        }
        s.flush();
        for dir in [ToServer, ToClient] {
            for _ in 0..10_000 {
                let n = match s.app_data(dir) {
                    AppChunk::None => break,
                    AppChunk::Data { data, .. } => data.len() as u64,
                    AppChunk::Gap { len, .. } => len,
                };
                s.app_consumed(&mut ctx, dir, n);
            }
            while let Some(c) = s.raw_data(&ctx, dir) {
                let end = c.end();
                s.raw_inspected(&mut ctx, dir, end);
            }
        }
        prop_assert!(ctx.budget().used() <= cap);
        drop(s);
        prop_assert_eq!(ctx.budget().used(), 0);
    }
}

/// Evasion end to end: an HTTP request whose TCP segment travels in overlapping IPv4
/// fragments, then through a session. Fragment 1 holds the TCP header and "GET ", fragment
/// 2 (original) "/good.ph" at IP payload offset 24, fragment 3 (later) 16 bytes at offset 16
/// over the end of fragment 1 ("xxxx" over "GET ") and all of fragment 2 ("/evil.ph"),
/// fragment 4 the rest. bsd: fragment 3 starts after fragment 1 (1 keeps 16..24) but before
/// fragment 2 (3 wins 24..32): "GET /evil.ph". first: the originals keep everything.
#[test]
fn overlapping_fragments_then_stream_follow_the_policy() {
    use crate::Timestamp;
    use crate::decode::{Transport, decode_ip};
    use crate::defrag::{DefragConfig, Defragmenter};

    fn frag(offset: u16, more: bool, data: &[u8]) -> Vec<u8> {
        let total = u16::try_from(20 + data.len()).unwrap();
        let word = (offset / 8) | if more { 0x2000 } else { 0 };
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0x12, 0x34]);
        p.extend_from_slice(&word.to_be_bytes());
        p.extend_from_slice(&[64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend_from_slice(data);
        p
    }
    // TCP header: 40000 -> 80, seq 1001, ack 1, data offset 5, PSH|ACK, window 65535.
    let mut tcp = vec![
        0x9c, 0x40, 0, 80, 0, 0, 0x03, 0xe9, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff,
    ];
    tcp.extend_from_slice(&[0, 0, 0, 0]);
    let mut first = tcp.clone();
    first.extend_from_slice(b"GET ");
    let fragments = [
        frag(0, true, &first),
        frag(24, true, b"/good.ph"),
        frag(16, true, b"\0\0\0\0xxxx/evil.ph"),
        frag(32, false, b"p HTTP/1.0\r\n\r\n"),
    ];
    for (policy, path) in [
        (OverlapPolicy::Bsd, "/evil.ph"),
        (OverlapPolicy::First, "/good.ph"),
    ] {
        let mut d = Defragmenter::new(DefragConfig {
            policy,
            ..DefragConfig::default()
        });
        let mut dgram = None;
        for f in &fragments {
            let pkt = decode_ip(f, [0, 0], Timestamp(0), 1).unwrap();
            dgram = d.process(&pkt).or(dgram);
        }
        let dgram = dgram.expect("reassembled");
        let pkt = decode_ip(&dgram, [0, 0], Timestamp(0), 1).unwrap();
        let Transport::Tcp(t) = &pkt.l4 else {
            panic!("not tcp")
        };
        let mut ctx = Reassembler::new(ReassemblyConfig {
            policy,
            ..ReassemblyConfig::default()
        });
        let mut s = ctx.new_session();
        s.on_packet(&mut ctx, ToServer, &hdr(1000, 0, SYN), &[]);
        s.on_packet(&mut ctx, ToClient, &hdr(0, 1001, SYN | ACK), &[]);
        assert!(s.on_packet(&mut ctx, ToServer, t, pkt.payload).stream_add);
        s.on_packet(&mut ctx, ToClient, &hdr(1, 1001 + 26, ACK), &[]);
        let AppChunk::Data { data, .. } = s.app_data(ToServer) else {
            panic!("{policy}: no data")
        };
        let want = format!("GET {path}p HTTP/1.0\r\n\r\n");
        assert_eq!(String::from_utf8_lossy(data), want, "{policy}");
    }
}
