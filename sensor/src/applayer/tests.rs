//! App-layer tests: detection labels and failure, bounded holding of pre-detection data, the
//! cross-protocol properties (no panic, chunking invariance), and shared helpers for the
//! real-capture tests in [`captures`].
//!
//! Expected values come from tshark's dissection of the same captures, from Suricata 7.0.10's
//! own output on them (EVE records quoted in comments), or from reading the bytes by hand;
//! never from running this code.

use proptest::prelude::*;

use super::testutil::{Ev, TestFlow, flows, real_pcap, sv_pcap};
use super::*;
use crate::Direction::{ToClient, ToServer};

fn cfg() -> AppLayerConfig {
    AppLayerConfig::default()
}

fn http_txs(al: &AppLayer) -> Vec<&HttpTx> {
    al.txs()
        .filter_map(|t| match t {
            TxRef::Http(h) => Some(h),
            _ => None,
        })
        .collect()
}

fn dns_txs(al: &AppLayer) -> Vec<&DnsTx> {
    al.txs()
        .filter_map(|t| match t {
            TxRef::Dns(d) => Some(d),
            _ => None,
        })
        .collect()
}

fn tls_tx(al: &AppLayer) -> &TlsTx {
    match al.txs().next() {
        Some(TxRef::Tls(t)) => t,
        other => panic!("expected a TLS tx, got {other:?}"),
    }
}

fn one_flow(test: &str, file: &str) -> Option<TestFlow> {
    let p = sv_pcap(test, file)?;
    let mut f = flows(&p);
    assert!(!f.is_empty(), "no flow in {test}");
    Some(f.remove(0))
}

fn b(s: &str) -> Option<&[u8]> {
    Some(s.as_bytes())
}

/// Every buffer of every transaction, as text, for equality checks across chunkings.
pub(crate) fn snapshot(al: &AppLayer) -> Vec<String> {
    use HttpBuffer as H;
    const ALL: [HttpBuffer; 30] = [
        H::Method,
        H::Uri,
        H::UriRaw,
        H::Protocol,
        H::RequestLine,
        H::Host,
        H::HostRaw,
        H::UserAgent,
        H::Referer,
        H::Accept,
        H::AcceptEnc,
        H::AcceptLang,
        H::Connection,
        H::ContentType,
        H::ContentLen,
        H::Cookie,
        H::Header,
        H::HeaderRaw,
        H::HeaderNames,
        H::Start,
        H::RequestBody,
        H::StatCode,
        H::StatMsg,
        H::ResponseLine,
        H::Server,
        H::Location,
        H::ResponseBody,
        H::FileData,
        H::RequestHeader,
        H::ResponseHeader,
    ];
    let mut out = vec![format!(
        "proto={:?} ts={:?} tc={:?}",
        al.proto(),
        al.proto_for(ToServer),
        al.proto_for(ToClient)
    )];
    for t in al.txs() {
        out.push(format!(
            "tx {} p={}/{} eve={}",
            t.id(),
            t.progress(ToServer),
            t.progress(ToClient),
            t.eve()
        ));
        match t {
            TxRef::Http(h) => {
                for b in ALL {
                    for d in [ToServer, ToClient] {
                        for i in 0..64 {
                            match h.multi_buffer(b, d, i) {
                                Some(v) => out.push(format!("{b:?}/{d:?}/{i}={v:?}")),
                                None => break,
                            }
                        }
                    }
                }
            }
            TxRef::Dns(d) => out.push(format!("{:?}", d.message())),
            TxRef::Tls(t) => {
                use TlsBuffer as T;
                for b in [
                    T::Sni,
                    T::CertSubject,
                    T::CertIssuer,
                    T::CertSerial,
                    T::CertFingerprint,
                    T::Ja3Hash,
                    T::Ja3String,
                    T::Ja3sHash,
                    T::Ja3sString,
                ] {
                    out.push(format!("{b:?}={:?}", t.buffer(b, 0)));
                }
                out.push(format!(
                    "certs={} version={:#x}",
                    t.certs().len(),
                    t.version()
                ));
            }
        }
    }
    out.push(format!(
        "events={:?}",
        al.events()
            .iter()
            .map(|e| e.kind.name())
            .collect::<Vec<_>>()
    ));
    out
}

/// Feeds `flow` with every data event cut into pieces of `step` bytes.
fn run_chunked(flow: &TestFlow, step: usize) -> AppLayer {
    let mut f = flow.clone();
    if f.ipproto == IPPROTO_TCP {
        f.events = flow
            .events
            .iter()
            .flat_map(|(e, ts)| match e {
                Ev::Data(d, bytes) => bytes
                    .chunks(step)
                    .map(|c| (Ev::Data(*d, c.to_vec()), *ts))
                    .collect::<Vec<_>>(),
                other => vec![(other.clone(), *ts)],
            })
            .collect();
    }
    f.run(&cfg())
}

#[test]
fn detection_labels_and_failure() {
    // FTP: the server's "220 " banner comes first and identifies nothing, the client's USER
    // does (Suricata writes app_proto "ftp", app_proto_tc "failed").
    let mut al = AppLayer::new(&cfg(), IPPROTO_TCP, 21, 40000);
    al.on_stream(
        ToClient,
        b"220 ProFTPD Server ready.\r\n",
        Timestamp::default(),
    );
    assert_eq!(al.proto(), AppProto::Unknown);
    assert_eq!(al.proto_for(ToClient), AppProto::Failed);
    al.on_stream(ToServer, b"USER anonymous\r\n", Timestamp::default());
    assert_eq!(al.proto(), AppProto::Ftp);
    assert_eq!(al.proto_for(ToClient), AppProto::Failed);
    al.on_stream(ToServer, b"PORT 10,0,0,1,4,1\r\n", Timestamp::default());
    let exp = al.take_ftp_expectations();
    assert_eq!(exp.len(), 1);
    assert_eq!((exp[0].port, exp[0].initiator), (1025, ToClient));
    let data = AppLayer::with_proto(&cfg(), IPPROTO_TCP, 1025, 20, AppProto::FtpData);
    assert_eq!(
        (data.proto(), data.proto_for(ToServer)),
        (AppProto::FtpData, AppProto::FtpData)
    );
    // Neither side speaks anything known: failed, and it stays failed.
    let mut al = AppLayer::new(&cfg(), IPPROTO_TCP, 4321, 1032);
    al.on_stream(
        ToServer,
        b"\x01\x02garbage that is no protocol",
        Timestamp::default(),
    );
    al.on_stream(ToClient, b"\x99more garbage", Timestamp::default());
    assert_eq!(al.proto(), AppProto::Failed);
    al.on_stream(ToServer, b"GET / HTTP/1.1\r\n\r\n", Timestamp::default());
    assert_eq!(al.proto(), AppProto::Failed);
    assert_eq!(al.txs().count(), 0);
    // Response first, request second: both are parsed once HTTP is known.
    let mut al = AppLayer::new(&cfg(), IPPROTO_TCP, 80, 40000);
    al.on_stream(ToServer, b"GE", Timestamp::default());
    al.on_stream(
        ToServer,
        b"T /a HTTP/1.1\r\nHost: x\r\n\r\n",
        Timestamp::default(),
    );
    assert_eq!(al.proto(), AppProto::Http);
    al.on_stream(
        ToClient,
        b"HTTP/1.1 204 No Content\r\n\r\n",
        Timestamp::default(),
    );
    let t = http_txs(&al)[0];
    assert_eq!(t.buffer(HttpBuffer::UriRaw, ToServer), b("/a"));
    assert_eq!(t.buffer(HttpBuffer::StatCode, ToClient), b("204"));
    assert!(t.is_complete(ToClient));
}

mod captures;

#[test]
fn app_layer_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<AppLayer>();
    assert_send::<AppLayerConfig>();
}

#[test]
fn pending_data_is_bounded() {
    let small = AppLayerConfig {
        pending_max_bytes: 100,
        detect_max_bytes: 50,
        ..cfg()
    };
    let mut al = AppLayer::new(&small, IPPROTO_TCP, 9999, 40000);
    // The server talks a lot in something unknown; the client has not spoken yet.
    for _ in 0..100 {
        al.on_stream(ToClient, &[0x42; 1000], Timestamp::default());
    }
    assert_eq!(al.proto_for(ToClient), AppProto::Failed);
    assert!(
        al.events()
            .iter()
            .any(|e| e.kind == AppEventKind::DetectionBufferFull)
    );
    // Now the client says HTTP: the held server bytes (100) plus a gap reach the parser.
    al.on_stream(ToServer, b"GET / HTTP/1.1\r\n\r\n", Timestamp::default());
    assert_eq!(al.proto(), AppProto::Http);
    assert_eq!(http_txs(&al).len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_panic_on_arbitrary_streams(
        port in prop::sample::select(vec![80u16, 443, 53, 21, 25, 445, 5060, 9999]),
        chunks in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..300)), 0..12),
        gap in prop::option::of((any::<bool>(), 1u64..5000)),
    ) {
        let mut al = AppLayer::new(&cfg(), IPPROTO_TCP, port, 40000);
        for (i, (to_server, data)) in chunks.iter().enumerate() {
            let dir = if *to_server { ToServer } else { ToClient };
            al.on_stream(dir, data, Timestamp::default());
            if i == 3 && let Some((g, n)) = gap {
                al.on_gap(if g { ToServer } else { ToClient }, n);
            }
        }
        al.on_close(ToServer);
        al.on_close(ToClient);
        let _ = snapshot(&al);
        let mut udp = AppLayer::new(&cfg(), IPPROTO_UDP, port, 40000);
        for (to_server, data) in &chunks {
            udp.on_datagram(if *to_server { ToServer } else { ToClient }, data, Timestamp::default());
        }
        let _ = snapshot(&udp);
    }

    #[test]
    fn protocol_prefixed_garbage_never_panics(
        prefix in prop::sample::select(vec![
            &b"GET / HTTP/1.1\r\n"[..], b"HTTP/1.1 200 OK\r\n", b"\x16\x03\x01", b"\x16\x03\x03\x00\x40\x02",
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"\x00\x1d\x12\x34\x01\x00",
        ]),
        tail in prop::collection::vec(any::<u8>(), 0..600),
        split in 0usize..600,
    ) {
        let mut data = prefix.to_vec();
        data.extend_from_slice(&tail);
        let to_client = prefix.starts_with(b"HTTP/") || prefix.get(5) == Some(&2);
        let dir = if to_client { ToClient } else { ToServer };
        let mut whole = AppLayer::new(&cfg(), IPPROTO_TCP, 53, 40000);
        whole.on_stream(dir, &data, Timestamp::default());
        let (a, b2) = data.split_at(split.min(data.len()));
        let mut parts = AppLayer::new(&cfg(), IPPROTO_TCP, 53, 40000);
        parts.on_stream(dir, a, Timestamp::default());
        parts.on_stream(dir, b2, Timestamp::default());
        prop_assert_eq!(snapshot(&whole), snapshot(&parts));
    }
}
