use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use super::*;

/// Ethernet + IPv4 + TCP SYN 10.0.0.1:1234 -> 10.0.0.2:80 with an MSS option, written
/// by hand (checksums correct), followed by 6 bytes of Ethernet padding.
const TCP_SYN: &[u8] = &[
    // ethernet: dst, src, type 0x0800
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x08, 0x00,
    // ipv4: ver/ihl 0x45, tos 0, total 44, id 0x1234, DF, ttl 64, proto 6, csum, src, dst
    0x45, 0x00, 0x00, 0x2c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x14, 0x96, 10, 0, 0, 1, 10, 0, 0,
    2, // tcp: sport 1234, dport 80, seq 1, ack 0, off 6 words, SYN, win 0xffff, csum, urg
    0x04, 0xd2, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02, 0xff, 0xff,
    0x7f, 0x01, 0x00, 0x00, // option: MSS 1460
    0x02, 0x04, 0x05, 0xb4, // padding (not payload)
    0xde, 0xad, 0xbe, 0xef, 0x00, 0x00,
];

#[test]
fn decodes_handwritten_tcp_syn_and_trims_padding() {
    let p = decode(LinkType::Ethernet, TCP_SYN, Timestamp(0), 1).unwrap();
    assert_eq!(p.ip.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(p.ip.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(p.ip.ttl, 64);
    assert_eq!(p.ip.id, 0x1234);
    assert_eq!(p.ip.header.len(), 20);
    assert_eq!(p.ip.datagram.len(), 44);
    let Transport::Tcp(t) = &p.l4 else {
        panic!("not tcp: {:?}", p.l4)
    };
    assert_eq!((t.src_port, t.dst_port, t.seq), (1234, 80, 1));
    assert_eq!(t.flags, tcpflag::SYN);
    assert_eq!(t.mss, Some(1460));
    assert_eq!(t.header.len(), 24);
    assert!(p.payload.is_empty(), "padding leaked into payload");
    assert!(p.anomaly.is_none());
    assert!(p.checksums_valid());
}

#[test]
fn checksum_detects_corruption() {
    let mut frame = TCP_SYN.to_vec();
    frame[40] ^= 0x01; // flip a bit in the TCP window
    let p = decode(LinkType::Ethernet, &frame, Timestamp(0), 1).unwrap();
    assert!(!p.checksums_valid());
}

#[test]
fn vlan_tags_are_kept_for_the_flow_key() {
    // Same packet inside two 802.1Q tags (VLAN 100 outer, 200 inner).
    let mut frame = TCP_SYN[..12].to_vec();
    frame.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x08, 0x00]);
    frame.extend_from_slice(&TCP_SYN[14..]);
    let p = decode(LinkType::Ethernet, &frame, Timestamp(0), 1).unwrap();
    assert_eq!(p.vlan, [100, 200]);
    assert_eq!(p.dst_port(), 80);
}

#[test]
fn linux_cooked_and_null_links() {
    let ip = &TCP_SYN[14..58];
    let mut sll = vec![0u8; 16];
    sll[14] = 0x08;
    sll.extend_from_slice(ip);
    assert_eq!(
        decode(LinkType::LinuxSll, &sll, Timestamp(0), 1)
            .unwrap()
            .dst_port(),
        80
    );
    let mut sll2 = vec![0x08, 0x00];
    sll2.extend_from_slice(&[0u8; 18]);
    sll2.extend_from_slice(ip);
    assert_eq!(
        decode(LinkType::LinuxSll2, &sll2, Timestamp(0), 1)
            .unwrap()
            .dst_port(),
        80
    );
    let mut null = vec![2, 0, 0, 0]; // AF_INET, little endian host
    null.extend_from_slice(ip);
    assert_eq!(
        decode(LinkType::Null, &null, Timestamp(0), 1)
            .unwrap()
            .dst_port(),
        80
    );
    assert_eq!(
        decode(LinkType::Raw, ip, Timestamp(0), 1)
            .unwrap()
            .dst_port(),
        80
    );
}

#[test]
fn errors_name_the_layer() {
    let table: &[(&[u8], DecodeError)] = &[
        (
            &TCP_SYN[..10],
            DecodeError::Truncated { layer: Layer::Link },
        ),
        (
            &TCP_SYN[..20],
            DecodeError::Truncated { layer: Layer::Ipv4 },
        ),
    ];
    for (frame, want) in table {
        assert_eq!(
            decode(LinkType::Ethernet, frame, Timestamp(0), 1).unwrap_err(),
            *want
        );
    }
    // ARP is not IP.
    let mut arp = TCP_SYN[..12].to_vec();
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    assert_eq!(
        decode(LinkType::Ethernet, &arp, Timestamp(0), 1).unwrap_err(),
        DecodeError::NotIp(0x0806)
    );
    assert_eq!(
        decode(LinkType::Other(147), &arp, Timestamp(0), 1).unwrap_err(),
        DecodeError::UnsupportedLinkType(147)
    );
}

#[test]
fn truncated_tcp_header_keeps_ip_layer() {
    // IPv4 header claims 44 bytes, frame carries only 10 bytes of TCP.
    let frame = &TCP_SYN[..44];
    let p = decode(LinkType::Ethernet, frame, Timestamp(0), 1).unwrap();
    assert!(matches!(p.l4, Transport::Malformed));
    assert_eq!(
        p.anomaly,
        Some(DecodeError::Incomplete { layer: Layer::Ipv4 })
    );
}

#[test]
fn udp_length_trims_trailing_bytes() {
    // IPv4/UDP whose UDP length (8 + 4) is shorter than the IP payload (8 + 6).
    let udp: &[u8] = &[
        0x45, 0x00, 0x00, 0x22, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, 1, 1, 1, 1, 2, 2,
        2, 2, // udp: 53 -> 53, len 12, csum 0
        0x00, 0x35, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, b'a', b'b', b'c', b'd', b'X', b'Y',
    ];
    let p = decode(LinkType::Raw, udp, Timestamp(0), 1).unwrap();
    assert_eq!(p.payload, b"abcd");
}

#[test]
fn ipv4_fragments_are_flagged() {
    // A non-first fragment: offset 8 (1 unit), MF clear.
    let frag: &[u8] = &[
        0x45, 0x00, 0x00, 0x1c, 0xab, 0xcd, 0x00, 0x01, 0x40, 0x11, 0x00, 0x00, 1, 1, 1, 1, 2, 2,
        2, 2, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    let p = decode(LinkType::Raw, frag, Timestamp(0), 1).unwrap();
    assert_eq!(
        p.ip.frag,
        Some(FragInfo {
            offset: 8,
            more: false,
            id: 0xabcd
        })
    );
    assert!(matches!(p.l4, Transport::Fragment));
    assert_eq!(p.payload, &[1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn ipv6_udp_with_destination_options() {
    let mut pkt = vec![
        0x60, 0, 0, 0, // version 6
        0x00, 0x18, 60, 64, // payload len 24, next = dest opts, hop limit 64
    ];
    pkt.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    pkt.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    // dest opts: next UDP, len 0 (8 bytes), PadN 4
    pkt.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
    // udp 1000 -> 2000, len 16
    pkt.extend_from_slice(&[0x03, 0xe8, 0x07, 0xd0, 0x00, 0x10, 0x00, 0x00]);
    pkt.extend_from_slice(b"payload!");
    let p = decode(LinkType::Raw, &pkt, Timestamp(0), 1).unwrap();
    assert_eq!(p.ip.proto, ipproto::UDP);
    assert_eq!(p.ip.ttl, 64);
    assert_eq!(p.ip.header.len(), 48, "ipv6.hdr includes extension headers");
    assert_eq!((p.src_port(), p.dst_port()), (1000, 2000));
    assert_eq!(p.payload, b"payload!");
}

#[test]
fn icmp_echo_fields() {
    let icmp: &[u8] = &[
        0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x40, 0x01, 0x00, 0x00, 1, 1, 1, 1, 2, 2,
        2, 2, // echo request id 0x0102 seq 7
        8, 0, 0, 0, 0x01, 0x02, 0x00, 0x07, b'p', b'i', b'n', b'g',
    ];
    let p = decode(LinkType::Raw, icmp, Timestamp(0), 1).unwrap();
    let Transport::Icmpv4(h) = &p.l4 else {
        panic!()
    };
    assert_eq!(
        (h.icmp_type, h.code, h.id, h.seq),
        (8, 0, Some(0x0102), Some(7))
    );
    assert_eq!(p.payload, b"ping");
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_frames(frame in proptest::collection::vec(any::<u8>(), 0..200), link in 0u32..300) {
        if let Ok(p) = decode(LinkType::from_pcap(link), &frame, Timestamp(0), 1) {
            let _ = p.checksums_valid();
            prop_assert!(p.payload.len() <= frame.len());
        }
    }

    #[test]
    fn never_panics_on_mutated_valid_frames(idx in 0usize..64, byte in any::<u8>(), cut in 0usize..64) {
        let mut frame = TCP_SYN.to_vec();
        if let Some(b) = frame.get_mut(idx) { *b = byte; }
        frame.truncate(TCP_SYN.len() - cut.min(TCP_SYN.len()));
        if let Ok(p) = decode(LinkType::Ethernet, &frame, Timestamp(0), 1) {
            let _ = p.checksums_valid();
        }
    }
}
