//! DNS parser and state tests: hand-built RFC 1035 messages (hex with ASCII comments),
//! pointer loops, caps, TCP framing, and properties.

use proptest::prelude::*;

use super::parser::{self, DnsError, DnsLimits, DnsRdata, TcpFrame, parse_message, parse_name};
use super::{DnsBuffer, DnsConfig, DnsEvent, DnsState};
use crate::Direction::{ToClient, ToServer};
use crate::applayer::events::{AppEventKind, Events};

/// Query id 0xbeef, RD, one question www.example.com A IN.
const QUERY: &[u8] = &[
    0xbe, 0xef, 0x01, 0x00, // id, flags: RD
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // qd=1
    3, b'w', b'w', b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm',
    0, // www.example.com
    0x00, 0x01, 0x00, 0x01, // A IN
];

/// The response: QR RD RA, answers CNAME -> web.example.com (compressed), A 93.184.216.34,
/// MX 10 mail.example.com, TXT "v=spf1" "-all"; authority SOA ns.example.com.
fn response() -> Vec<u8> {
    let mut m = vec![
        0xbe, 0xef, 0x81, 0x80, // id, flags QR RD RA
        0x00, 0x01, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, // qd=1 an=4 ns=1
    ];
    m.extend_from_slice(&QUERY[12..]); // question at offset 12; "example.com" at 16
    // CNAME: name ptr->12, type 5 class 1 ttl 300, rdlen 6: "web" + ptr->16
    m.extend_from_slice(&[
        0xc0, 12, 0, 5, 0, 1, 0, 0, 1, 44, 0, 6, 3, b'w', b'e', b'b', 0xc0, 16,
    ]);
    // A: name ptr->12, type 1, rdlen 4
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 34]);
    // MX: pref 10, "mail" + ptr->16
    m.extend_from_slice(&[
        0xc0, 16, 0, 15, 0, 1, 0, 0, 0, 60, 0, 9, 0, 10, 4, b'm', b'a', b'i', b'l', 0xc0, 16,
    ]);
    // TXT: two strings
    m.extend_from_slice(&[
        0xc0, 16, 0, 16, 0, 1, 0, 0, 0, 60, 0, 12, 6, b'v', b'=', b's', b'p', b'f', b'1', 4, b'-',
        b'a', b'l', b'l',
    ]);
    // SOA in authority: mname "ns" + ptr->16, rname "h" + ptr->16, then 20 bytes of counters
    let mut soa = vec![2, b'n', b's', 0xc0, 16, 1, b'h', 0xc0, 16];
    soa.extend_from_slice(&[0; 20]);
    m.extend_from_slice(&[
        0xc0,
        16,
        0,
        6,
        0,
        1,
        0,
        0,
        0,
        60,
        0,
        u8::try_from(soa.len()).unwrap(),
    ]);
    m.extend_from_slice(&soa);
    m
}

#[test]
fn query_and_response_records() {
    let lim = DnsLimits::default();
    let q = parse_message(QUERY, lim).unwrap();
    assert_eq!(
        (q.header.id, q.header.opcode(), q.header.is_response()),
        (0xbeef, 0, false)
    );
    assert_eq!(q.queries[0].name, b"www.example.com");
    assert_eq!((q.queries[0].rrtype, q.queries[0].rrclass), (1, 1));
    let r = parse_message(&response(), lim).unwrap();
    assert_eq!(r.header.rcode(), 0);
    let rdata: Vec<&DnsRdata> = r.answers.iter().map(|a| &a.rdata).collect();
    assert_eq!(rdata[0], &DnsRdata::Name(b"web.example.com".to_vec()));
    assert_eq!(rdata[1], &DnsRdata::A([93, 184, 216, 34]));
    assert_eq!(
        rdata[2],
        &DnsRdata::Mx {
            preference: 10,
            exchange: b"mail.example.com".to_vec()
        }
    );
    assert_eq!(
        rdata[3],
        &DnsRdata::Txt(vec![b"v=spf1".to_vec(), b"-all".to_vec()])
    );
    assert_eq!(r.answers[0].ttl, 300);
    assert_eq!(r.answers[2].name, b"example.com");
    assert_eq!(
        r.authorities[0].rdata,
        DnsRdata::Soa {
            mname: b"ns.example.com".to_vec(),
            rname: b"h.example.com".to_vec()
        }
    );
    assert!(!r.flags.malformed);
}

#[test]
fn name_edge_cases() {
    type Case<'a> = (&'a [u8], usize, Result<&'a [u8], DnsError>);
    let table: &[Case<'_>] = &[
        (b"\x00", 0, Ok(b"")),
        (b"\x01a\x00", 0, Ok(b"a")),
        // pointer to itself
        (b"\xc0\x00", 0, Err(DnsError::InfiniteLoop)),
        // two pointers pointing at each other
        (b"\xc0\x02\xc0\x00", 0, Err(DnsError::InfiniteLoop)),
        // label then a loop back to the label
        (b"\x01a\xc0\x00", 0, Err(DnsError::TooManyLabels)),
        (b"\x05ab", 0, Err(DnsError::Truncated { offset: 1 })),
        (
            b"\x40abc",
            0,
            Err(DnsError::BadLabel {
                byte: 0x40,
                offset: 0,
            }),
        ),
        (b"\x01a", 0, Err(DnsError::Truncated { offset: 2 })),
        (b"\xc0", 0, Err(DnsError::Truncated { offset: 0 })),
        (b"\xc0\x09", 0, Err(DnsError::Truncated { offset: 9 })),
    ];
    for (msg, off, want) in table {
        let got = parse_name(msg, *off, 1025).map(|(n, _, _)| n);
        assert_eq!(got.as_deref().map_err(|e| *e), *want, "{msg:?}");
    }
    // Too long: 20 labels of 63 bytes (1279 bytes) are truncated at the cap and flagged.
    let mut long = Vec::new();
    for _ in 0..20 {
        long.push(63);
        long.extend_from_slice(&[b'x'; 63]);
    }
    long.push(0);
    let (name, end, too_long) = parse_name(&long, 0, 1025).unwrap();
    assert!(too_long && name.len() <= 1025);
    assert_eq!(end, long.len());
    // Too many labels: 300 one-byte labels.
    let many: Vec<u8> = std::iter::repeat_n([1u8, b'a'], 300)
        .flatten()
        .chain([0])
        .collect();
    assert_eq!(parse_name(&many, 0, 1025), Err(DnsError::TooManyLabels));
}

#[test]
fn tcp_framing_and_events() {
    let mut st = DnsState::new(&DnsConfig::default());
    let mut ev = Events::new(100);
    let mut stream = Vec::new();
    for m in [QUERY, QUERY] {
        stream.extend_from_slice(&u16::try_from(m.len()).unwrap().to_be_bytes());
        stream.extend_from_slice(m);
    }
    // split inside the first length prefix and inside the second message
    st.on_stream(ToServer, &stream[..1], &mut ev);
    st.on_stream(ToServer, &stream[1..40], &mut ev);
    st.on_stream(ToServer, &stream[40..], &mut ev);
    assert_eq!(st.txs().count(), 2);
    // A query sent to the client and a Z flag raise events; the tx is still made.
    let mut odd = QUERY.to_vec();
    odd[3] |= 0x40;
    st.on_datagram(ToClient, &odd, &mut ev);
    assert!(ev.contains(AppEventKind::Dns(DnsEvent::NotResponse)));
    assert!(ev.contains(AppEventKind::Dns(DnsEvent::ZFlagSet)));
    // Garbage after a valid header: kept as a tx with the malformed event.
    st.on_datagram(
        ToServer,
        b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c",
        &mut ev,
    );
    assert!(ev.contains(AppEventKind::Dns(DnsEvent::InfiniteLoop)));
    assert_eq!(st.txs().count(), 4);
    // A partial message at close is reported.
    st.on_stream(ToClient, &stream[..10], &mut ev);
    st.on_close(ToClient, &mut ev);
    assert!(ev.contains(AppEventKind::Dns(DnsEvent::MalformedData)));
}

#[test]
fn tx_cap_and_freeing() {
    let mut st = DnsState::new(&DnsConfig {
        max_txs: 2,
        ..DnsConfig::default()
    });
    let mut ev = Events::new(100);
    for _ in 0..3 {
        st.on_datagram(ToServer, QUERY, &mut ev);
    }
    let ids: Vec<u64> = st.txs().map(super::DnsTx::id).collect();
    assert_eq!(ids, vec![1, 2]);
    assert!(ev.contains(AppEventKind::TooManyTransactions));
    st.tx_inspected(1, ToClient);
    assert_eq!(st.txs().count(), 2, "wrong direction does not free a query");
    st.tx_inspected(1, ToServer);
    assert_eq!(st.txs().count(), 1);
    let tx = st.txs().next().unwrap();
    assert_eq!(
        tx.buffer(DnsBuffer::Query, 0),
        Some(&b"www.example.com"[..])
    );
    assert_eq!(tx.buffer(DnsBuffer::Query, 1), None);
    st.on_datagram(ToClient, &response(), &mut ev);
    let resp = st.txs().last().unwrap();
    let names: Vec<&[u8]> = (0..)
        .map_while(|i| resp.buffer(DnsBuffer::ResponseName, i))
        .collect();
    assert_eq!(names.len(), 5);
    assert_eq!(resp.rrtypes().collect::<Vec<_>>(), vec![1]);
    assert_eq!(
        super::eve::alert_object(resp),
        serde_json::json!({"version":2,"answer":{"version":2,"type":"answer","id":48879,"flags":"8180","qr":true,"rd":true,"ra":true,"opcode":0,"rrname":"www.example.com","rrtype":"A","rcode":"NOERROR"}})
    );
}

#[test]
fn probes() {
    assert_eq!(
        parser::probe_udp(QUERY, ToServer),
        crate::applayer::detect_proto::Probe::Match(crate::applayer::AppProto::Dns)
    );
    assert_eq!(
        parser::probe_udp(QUERY, ToClient),
        crate::applayer::detect_proto::Probe::NoMatch
    );
    assert_eq!(
        parser::probe_udp(&response(), ToClient),
        crate::applayer::detect_proto::Probe::Match(crate::applayer::AppProto::Dns)
    );
    assert_eq!(
        parser::split_tcp_message(b"\x00"),
        TcpFrame::Incomplete { needed: 1 }
    );
    assert_eq!(
        parser::split_tcp_message(b"\x00\x05ab"),
        TcpFrame::Incomplete { needed: 3 }
    );
    assert_eq!(
        parser::split_tcp_message(b"\x00\x02abc"),
        TcpFrame::Message(b"ab", b"c")
    );
}

proptest! {
    #[test]
    fn no_panic_on_arbitrary_messages(msg in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_message(&msg, DnsLimits::default());
        let _ = parser::probe_tcp(&msg, ToServer);
        let mut st = DnsState::new(&DnsConfig::default());
        let mut ev = Events::new(10);
        st.on_datagram(ToClient, &msg, &mut ev);
        st.on_stream(ToServer, &msg, &mut ev);
        st.on_gap(ToServer);
        st.on_stream(ToServer, &msg, &mut ev);
    }

    #[test]
    fn mutated_responses_never_panic(flips in prop::collection::vec((0usize..200, any::<u8>()), 1..6)) {
        let mut m = response();
        for (i, v) in flips {
            let n = m.len();
            m[i % n] = v;
        }
        let _ = parse_message(&m, DnsLimits::default());
    }

    #[test]
    fn tcp_chunking_invariance(cuts in prop::collection::vec(0usize..200, 0..10)) {
        let mut stream = Vec::new();
        for m in [QUERY.to_vec(), response(), QUERY.to_vec()] {
            stream.extend_from_slice(&u16::try_from(m.len()).unwrap().to_be_bytes());
            stream.extend_from_slice(&m);
        }
        let run = |cuts: &[usize]| {
            let mut st = DnsState::new(&DnsConfig::default());
            let mut ev = Events::new(10);
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.sort_unstable();
            let mut prev = 0;
            for c in cuts.into_iter().chain([stream.len()]) {
                st.on_stream(ToServer, &stream[prev..c], &mut ev);
                prev = c;
            }
            st.txs().map(|t| format!("{:?}", t.message())).collect::<Vec<_>>()
        };
        let whole = run(&[]);
        prop_assert_eq!(whole.len(), 3);
        prop_assert_eq!(run(&cuts), whole);
    }
}
