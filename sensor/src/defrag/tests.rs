use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::capture::PcapFile;
use crate::decode::{self, Transport, decode_ip};

/// IPv4 fragment 1.1.1.1 -> 2.2.2.2, `proto`, id, offset in bytes, MF, payload.
fn v4_frag(proto: u8, id: u16, offset: u32, more: bool, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).unwrap();
    let off_word = u16::try_from(offset / 8).unwrap() | if more { 0x2000 } else { 0 };
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&off_word.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    let c = ipv4_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// IPv6 fragment 2001:db8::1 -> 2001:db8::2 with a fragment header straight after the
/// fixed header.
fn v6_frag(proto: u8, id: u32, offset: u32, more: bool, payload: &[u8]) -> Vec<u8> {
    let plen = u16::try_from(8 + payload.len()).unwrap();
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&plen.to_be_bytes());
    p.extend_from_slice(&[ipproto::IPV6_FRAG, 64]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    let off = u16::try_from(offset).unwrap() | u16::from(more);
    p.extend_from_slice(&[proto, 0]);
    p.extend_from_slice(&off.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn feed(d: &mut Defragmenter, bytes: &[u8], ts: i64) -> Option<Vec<u8>> {
    let pkt = decode_ip(bytes, [0, 0], Timestamp(ts), 1).unwrap();
    assert!(pkt.ip.frag.is_some(), "test packet is not a fragment");
    d.process(&pkt)
}

fn with_policy(policy: OverlapPolicy) -> Defragmenter {
    Defragmenter::new(DefragConfig {
        policy,
        policy_v6: policy,
        ..DefragConfig::default()
    })
}

/// The Sturges/Novak pattern: (letter, offset, length, more). Nine originals with gaps,
/// then eight overlapping subsequent fragments; Q is the last fragment (MF clear).
const NOVAK: [(u8, u32, usize, bool); 17] = [
    (b'A', 0, 24, true),
    (b'B', 32, 16, true),
    (b'C', 48, 24, true),
    (b'D', 80, 8, true),
    (b'E', 104, 16, true),
    (b'F', 120, 24, true),
    (b'G', 144, 16, true),
    (b'H', 160, 16, true),
    (b'I', 176, 8, true),
    (b'J', 8, 32, true),
    (b'K', 48, 24, true),
    (b'L', 72, 24, true),
    (b'M', 96, 24, true),
    (b'N', 128, 8, true),
    (b'O', 152, 8, true),
    (b'P', 160, 8, true),
    (b'Q', 176, 16, false),
];

/// Expected 8-byte blocks per policy, derived by hand from the rules in the module header.
/// Example (bsd, "new wins iff it starts before the original"): J (8..40) starts after A
/// (0..24), so A keeps 8..24; J starts before B (32..48), so J takes 32..40; K starts with
/// C (same offset), so C stays; L starts before D, M before E: L and M win; N starts after
/// F, O after G: F and G stay; P and Q start with H and I: H and I stay; Q alone covers
/// 184..192.
const NOVAK_EXPECTED: [(OverlapPolicy, &str); 7] = [
    (OverlapPolicy::First, "AAAJBBCCCLDLMEEFFFGGHHIQ"),
    (OverlapPolicy::Last, "AJJJJBKKKLLLMMMFNFGOPHQQ"),
    (OverlapPolicy::Bsd, "AAAJJBCCCLLLMMMFFFGGHHIQ"),
    (OverlapPolicy::BsdRight, "AJJJBBKKKLDLMEEFNFGOPHQQ"),
    (OverlapPolicy::Linux, "AAAJJBKKKLLLMMMFFFGGPHQQ"),
    (OverlapPolicy::Windows, "AAAJBBCCCLLLMEEFFFGGHHIQ"),
    (OverlapPolicy::Solaris, "AAAJBBCCCLLLMMMFFFGGHHIQ"),
];

fn blocks(s: &str) -> Vec<u8> {
    s.bytes().flat_map(|b| [b; 8]).collect()
}

#[test]
fn sturges_novak_pattern_per_policy_ipv4_and_ipv6() {
    for (policy, expected) in NOVAK_EXPECTED {
        for v6 in [false, true] {
            let mut d = with_policy(policy);
            let mut out = None;
            for (i, &(letter, off, len, more)) in NOVAK.iter().enumerate() {
                // Protocol 253 (experimental): no transport header to get in the way.
                let payload = vec![letter; len];
                let pkt = if v6 {
                    v6_frag(253, 7, off, more, &payload)
                } else {
                    v4_frag(253, 7, off, more, &payload)
                };
                let r = feed(&mut d, &pkt, 1_000_000);
                if i + 1 < NOVAK.len() {
                    assert!(r.is_none(), "{policy}: completed early at {i}");
                } else {
                    out = r;
                }
            }
            let dgram = out.unwrap_or_else(|| panic!("{policy} v6={v6}: not reassembled"));
            let hdr = if v6 { 40 } else { 20 };
            assert_eq!(
                String::from_utf8_lossy(&dgram[hdr..]),
                String::from_utf8_lossy(&blocks(expected)),
                "{policy} v6={v6}"
            );
            let s = d.stats();
            assert_eq!(
                (s.fragments, s.reassembled, s.trackers, s.mem_used),
                (17, 1, 0, 0)
            );
            assert_eq!(
                s.overlaps, 8,
                "{policy}: the eight subsequent fragments overlap"
            );
        }
    }
    // Every policy gives a different string for this pattern.
    let mut all: Vec<&str> = NOVAK_EXPECTED.iter().map(|&(_, e)| e).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 7);
}

/// A UDP datagram 1.1.1.1:1000 -> 2.2.2.2:53 with a correct checksum and `n` payload bytes.
fn udp_datagram_v4(id: u16, n: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
    let ulen = u16::try_from(8 + n).unwrap();
    let mut udp = vec![0x03, 0xe8, 0, 53];
    udp.extend_from_slice(&ulen.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&payload);
    // Pseudo-header checksum.
    let mut ph = vec![1, 1, 1, 1, 2, 2, 2, 2, 0, 17];
    ph.extend_from_slice(&ulen.to_be_bytes());
    ph.extend_from_slice(&udp);
    let c = ipv4_checksum(&ph);
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    let mut d = v4_frag(17, id, 0, false, &udp);
    // v4_frag with offset 0 and MF clear is a whole datagram.
    d[6] = 0;
    d[7] = 0;
    d[10] = 0;
    d[11] = 0;
    let c = ipv4_checksum(&d[..20]);
    d[10..12].copy_from_slice(&c.to_be_bytes());
    d
}

/// Splits `dgram`'s payload into fragments of `sizes` (multiples of 8 except the last).
fn fragment_v4(dgram: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let id = u16::from_be_bytes([dgram[4], dgram[5]]);
    let payload = &dgram[20..];
    let mut out = Vec::new();
    let mut start = 0;
    let mut bounds: Vec<usize> = cuts
        .iter()
        .copied()
        .filter(|&c| c > 0 && c < payload.len())
        .collect();
    bounds.push(payload.len());
    for end in bounds {
        out.push(v4_frag(
            17,
            id,
            start as u32,
            end < payload.len(),
            &payload[start..end],
        ));
        start = end;
    }
    out
}

#[test]
fn rebuilt_udp_datagram_equals_the_original_and_decodes() {
    let original = udp_datagram_v4(0x4242, 100);
    let frags = fragment_v4(&original, &[24, 48, 96]);
    assert_eq!(frags.len(), 4);
    let mut d = Defragmenter::new(DefragConfig::default());
    // Out of order, with a duplicate.
    for i in [2, 0, 3, 2] {
        assert!(feed(&mut d, &frags[i], 10).is_none());
    }
    let out = feed(&mut d, &frags[1], 11).expect("complete");
    assert_eq!(
        out, original,
        "header fields rewritten exactly as the unfragmented original"
    );
    let pkt = decode_ip(&out, [0, 0], Timestamp(11), 5).unwrap();
    assert!(pkt.ip.frag.is_none());
    assert!(matches!(pkt.l4, Transport::Udp(_)));
    assert_eq!(pkt.payload.len(), 100);
    assert!(pkt.checksums_valid());
    let s = d.stats();
    assert_eq!((s.fragments, s.reassembled, s.overlaps), (5, 1, 1));
}

#[test]
fn ipv6_rebuild_removes_the_fragment_header_behind_a_destination_option() {
    // Fixed header -> destination options (8 bytes) -> fragment header -> UDP-ish payload.
    let mk = |offset: u32, more: bool, payload: &[u8]| {
        let mut p = v6_frag(17, 99, offset, more, payload);
        p[6] = 60; // next header: destination options
        let dst_opts = [ipproto::IPV6_FRAG, 0, 1, 4, 0, 0, 0, 0];
        p.splice(40..40, dst_opts);
        let plen = u16::from_be_bytes([p[4], p[5]]) + 8;
        p[4..6].copy_from_slice(&plen.to_be_bytes());
        p
    };
    let mut d = Defragmenter::new(DefragConfig::default());
    assert!(feed(&mut d, &mk(16, false, b"tail"), 1).is_none());
    let out = feed(&mut d, &mk(0, true, b"0123456789abcdef"), 1).unwrap();
    assert_eq!(
        out[6], 60,
        "fixed header still points at the destination options"
    );
    assert_eq!(out[40], 17, "destination options now point at UDP");
    assert_eq!(u16::from_be_bytes([out[4], out[5]]), 8 + 20);
    assert_eq!(&out[48..], b"0123456789abcdeftail");
}

#[test]
fn tiny_invalid_and_too_many_fragments_are_counted() {
    let mut d = Defragmenter::new(DefragConfig {
        max_fragments: 3,
        ..DefragConfig::default()
    });
    // TCP first fragment of 8 bytes cannot hold a 20-byte TCP header.
    assert!(feed(&mut d, &v4_frag(6, 1, 0, true, &[0; 8]), 0).is_none());
    assert_eq!(d.stats().tiny_fragments, 1);
    // Offset 65528 + 16 bytes + header passes 65535.
    assert!(feed(&mut d, &v4_frag(6, 1, 65_528, false, &[0; 16]), 0).is_none());
    assert_eq!(d.stats().invalid, 1);
    // Fourth fragment of datagram 2 exceeds max_fragments = 3.
    for (i, off) in [0u32, 8, 16, 24].into_iter().enumerate() {
        assert!(
            feed(&mut d, &v4_frag(17, 2, off, true, &[1; 8]), 0).is_none(),
            "{i}"
        );
    }
    assert_eq!(d.stats().max_fragments_exceeded, 1);
    assert_eq!(d.stats().fragments, 6);
}

#[test]
fn trackers_time_out_on_packet_time() {
    let mut d = Defragmenter::new(DefragConfig::default());
    assert!(feed(&mut d, &v4_frag(17, 1, 8, false, &[1; 8]), 0).is_none());
    d.expire(Timestamp(59_999_999));
    assert_eq!(d.stats().trackers, 1);
    d.expire(Timestamp(60_000_000));
    let s = d.stats();
    assert_eq!((s.trackers, s.timeouts, s.mem_used), (0, 1, 0));
    // A late first half does not complete anything: the tail was expired.
    assert!(feed(&mut d, &v4_frag(17, 1, 0, true, &[1; 8]), 61_000_000).is_none());
}

#[test]
fn flood_of_never_completed_fragments_stays_under_the_caps() {
    let cfg = DefragConfig {
        memcap: 64 * 1024,
        max_trackers: 100,
        ..DefragConfig::default()
    };
    let mut d = Defragmenter::new(cfg.clone());
    // 10,000 datagrams, each a lone middle fragment of 512 bytes: none can complete.
    for i in 0..10_000u32 {
        let pkt = v4_frag(
            17,
            (i % 65_536) as u16,
            8 + (i / 65_536) * 8,
            true,
            &[0xaa; 512],
        );
        let mut pkt = pkt;
        // Vary the source so ids do not collide.
        pkt[12..16].copy_from_slice(&i.to_be_bytes());
        let c = {
            pkt[10] = 0;
            pkt[11] = 0;
            ipv4_checksum(&pkt[..20])
        };
        pkt[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(feed(&mut d, &pkt, i64::from(i)).is_none());
        let s = d.stats();
        assert!(
            s.mem_used <= cfg.memcap as u64,
            "memcap passed at {i}: {s:?}"
        );
        assert!(s.trackers <= cfg.max_trackers as u64);
    }
    let s = d.stats();
    assert_eq!(s.fragments, 10_000);
    // Each tracker costs 512 + 64 + 128 bytes: 93 fit in 64 KiB, the rest are dropped.
    assert_eq!(s.trackers, 93);
    assert_eq!(s.memcap_drops, 10_000 - 93);
    assert_eq!(s.reassembled, 0);
}

#[test]
fn tracker_cap_drops_new_datagrams() {
    let mut d = Defragmenter::new(DefragConfig {
        max_trackers: 10,
        ..DefragConfig::default()
    });
    for id in 0..50u16 {
        assert!(feed(&mut d, &v4_frag(17, id, 8, true, &[0; 8]), 0).is_none());
    }
    let s = d.stats();
    assert_eq!((s.trackers, s.tracker_drops), (10, 40));
}

/// Frames 6 and 7 of suricata-verify's `ipv6-malformed-fragments-35` are two fragments of
/// one datagram whose payload starts with a second fragment header. Expected payload from
/// `tshark -r frag-35.pcap -Y 'frame.number==7' -T fields -e ipv6.reassembled.data`:
/// 408 bytes, starting `3a0000010001bbbb 80007917facebabe` then 'A's.
#[test]
fn suricata_verify_ipv6_nested_fragment_pcaps() {
    let base = Path::new("../../shared/testdata/suricata-verify/tests/ipv6-evasion");
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join(base);
    if !base.exists() {
        eprintln!("skipping: {} absent", base.display());
        return;
    }
    // (pcap, payload length, first payload bytes, where the 'A's start, trackers left).
    // Frames 8 and 9 carry the outer identifications 0x0001bbbb twice (frag-35) and
    // 0x0002bbbb, 0x0002cccc (frag-36) (`tshark -o ipv6.defragment:FALSE -T fields -e
    // ipv6.fraghdr.ident`), without an offset-0 fragment: they stay pending.
    for (n, expected_len, expected_head, a_from, pending) in [
        (
            35,
            408,
            &[0x3a, 0, 0, 1, 0, 1, 0xbb, 0xbb, 0x80, 0, 0x79, 0x17][..],
            56,
            1,
        ),
        (
            36,
            416,
            &[0x2c, 0, 0, 1, 0, 2, 0xbb, 0xbb, 0x3a, 0, 0, 1][..],
            64,
            2,
        ),
    ] {
        let path = base.join(format!("ipv6-malformed-fragments-{n}/frag-{n}.pcap"));
        let mut file = PcapFile::open(&path).unwrap();
        let link = file.linktype();
        let mut d = Defragmenter::new(DefragConfig::default());
        let mut rebuilt = Vec::new();
        let mut count = 0u64;
        while let Some(frame) = file.next_frame().unwrap() {
            count += 1;
            let Ok(pkt) = decode::decode(link, frame.data, frame.ts, count) else {
                continue;
            };
            if let Some(dg) = d.process(&pkt) {
                rebuilt.push(dg);
            }
        }
        assert_eq!(rebuilt.len(), 1, "frag-{n}");
        let dg = &rebuilt[0];
        assert_eq!(dg.len(), 40 + expected_len, "frag-{n}");
        assert_eq!(u16::from_be_bytes([dg[4], dg[5]]) as usize, expected_len);
        assert_eq!(dg[6], ipproto::IPV6_FRAG, "inner fragment header follows");
        assert_eq!(&dg[40..40 + expected_head.len()], expected_head, "frag-{n}");
        assert!(dg[a_from..].iter().all(|&b| b == b'A'), "frag-{n}: payload");
        // Frames 6-9 carry a top-level fragment header (frame 10 only quotes one inside an
        // ICMPv6 error); 8 and 9 belong to a datagram whose first fragment never comes.
        let s = d.stats();
        assert_eq!(
            (s.fragments, s.reassembled, s.trackers),
            (4, 1, pending),
            "frag-{n}: {s:?}"
        );
    }
}

proptest! {
    #[test]
    fn arbitrary_fragments_never_panic_or_pass_caps(
        frags in proptest::collection::vec(
            (0u16..4, 0u32..8200, any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300), any::<bool>(), 0u8..255),
            1..80),
        policy in proptest::sample::select(OverlapPolicy::ALL.to_vec()),
    ) {
        let cfg = DefragConfig { policy, policy_v6: policy, memcap: 8 * 1024, max_trackers: 3, max_fragments: 16, ..DefragConfig::default() };
        let mut d = Defragmenter::new(cfg.clone());
        for (i, (id, off8, more, payload, v6, proto)) in frags.into_iter().enumerate() {
            let off = off8 * 8;
            // IPv6: keep the fragment's next header off the extension-header numbers (0, 43,
            // 51, 60): etherparse 0.21's lax IPv6 slice then hands `decode` an extension
            // header it never length-checked (an out-of-bounds read upstream, reported), and
            // this test is about defrag, not decode.
            let proto6 = [1, 6, 17, 47, 58, 59, 132, 253][usize::from(proto % 8)];
            let bytes = if v6 { v6_frag(proto6, u32::from(id), off.min(65_528), more, &payload) }
                        else { v4_frag(proto, id, off.min(65_528), more, &payload) };
            if let Ok(pkt) = decode_ip(&bytes, [0, 0], Timestamp(i as i64 * 1000), 1)
                && let Some(dg) = d.process(&pkt)
            {
                // Whatever comes out decodes as IP.
                prop_assert!(decode_ip(&dg, [0, 0], Timestamp(0), 1).is_ok());
            }
            let s = d.stats();
            prop_assert!(s.mem_used <= cfg.memcap as u64);
            prop_assert!(s.trackers <= cfg.max_trackers as u64);
        }
    }

    #[test]
    fn any_order_and_duplication_of_consistent_fragments_rebuilds_the_original(
        n in 9usize..400,
        cuts in proptest::collection::vec(1usize..50, 0..12),
        order in proptest::collection::vec(any::<prop::sample::Index>(), 1..30),
        policy in proptest::sample::select(OverlapPolicy::ALL.to_vec()),
    ) {
        let original = udp_datagram_v4(7, n);
        let mut cut_points = vec![8];
        cut_points.extend(cuts.iter().scan(8, |acc, c| { *acc += c * 8; Some(*acc) }));
        let frags = fragment_v4(&original, &cut_points);
        // Send every fragment once in a shuffled order, plus random duplicates; the
        // datagram must complete exactly when the last missing piece arrives.
        let mut seq: Vec<usize> = order.iter().map(|i| i.index(frags.len())).collect();
        seq.extend(0..frags.len());
        let mut d = with_policy(policy);
        let mut got = None;
        for i in seq {
            if let Some(out) = feed(&mut d, &frags[i], 1) {
                prop_assert!(got.is_none(), "completed twice");
                got = Some(out);
                break;
            }
        }
        prop_assert_eq!(got, Some(original));
    }
}
