//! TLS state tests on hand-built handshakes (RFC 8446 / RFC 5246 layouts), plus properties.
//! JA3 expectations were computed by hand from the field lists and hashed with Python's
//! `hashlib.md5`.

use proptest::prelude::*;

use super::parser::{self, RecordFrame};
use super::{TlsBuffer, TlsConfig, TlsEvent, TlsState, progress, version_name};
use crate::Direction::{ToClient, ToServer};
use crate::applayer::events::{AppEventKind, Events};

fn u16b(v: usize) -> [u8; 2] {
    u16::try_from(v).unwrap().to_be_bytes()
}

fn ext(t: u16, data: &[u8]) -> Vec<u8> {
    let mut v = t.to_be_bytes().to_vec();
    v.extend_from_slice(&u16b(data.len()));
    v.extend_from_slice(data);
    v
}

fn handshake(t: u8, body: &[u8]) -> Vec<u8> {
    let n = u32::try_from(body.len()).unwrap().to_be_bytes();
    let mut v = vec![t, n[1], n[2], n[3]];
    v.extend_from_slice(body);
    v
}

fn record(ct: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ct, 3, 1];
    v.extend_from_slice(&u16b(body.len()));
    v.extend_from_slice(body);
    v
}

/// ClientHello: TLS 1.2 legacy version, ciphers {GREASE, 0xc02b, 0x002f}, extensions
/// {GREASE, server_name "www.example.org", supported_groups {GREASE, x25519, secp256r1},
/// ec_point_formats {uncompressed}, supported_versions {1.3, 1.2}}, session id 4 bytes.
fn client_hello_msg() -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[7; 32]);
    b.extend_from_slice(&[4, 1, 2, 3, 4]);
    b.extend_from_slice(&[0, 6, 0x0a, 0x0a, 0xc0, 0x2b, 0x00, 0x2f]);
    b.extend_from_slice(&[1, 0]);
    let name = b"www.example.org";
    let mut sni = u16b(name.len() + 3).to_vec();
    sni.push(0);
    sni.extend_from_slice(&u16b(name.len()));
    sni.extend_from_slice(name);
    let mut exts = ext(0x1a1a, &[]);
    exts.extend(ext(0, &sni));
    exts.extend(ext(10, &[0, 6, 0x2a, 0x2a, 0x00, 0x1d, 0x00, 0x17]));
    exts.extend(ext(11, &[1, 0]));
    exts.extend(ext(43, &[4, 3, 4, 3, 3]));
    b.extend_from_slice(&u16b(exts.len()));
    b.extend(exts);
    handshake(1, &b)
}

/// ServerHello selecting TLS 1.3 (supported_versions) with cipher 0x1301 and a key_share.
fn server_hello_13() -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[9; 32]);
    b.push(0);
    b.extend_from_slice(&[0x13, 0x01, 0]);
    let mut exts = ext(43, &[3, 4]);
    exts.extend(ext(51, &[0, 0x1d, 0, 2, 0xaa, 0xbb]));
    b.extend_from_slice(&u16b(exts.len()));
    b.extend(exts);
    handshake(2, &b)
}

fn run(ts: &[u8], tc: &[u8], step: usize) -> (TlsState, Events) {
    let mut st = TlsState::new(&TlsConfig::default());
    let mut ev = Events::new(100);
    for c in ts.chunks(step) {
        st.on_stream(ToServer, c, &mut ev);
    }
    for c in tc.chunks(step) {
        st.on_stream(ToClient, c, &mut ev);
    }
    (st, ev)
}

#[test]
fn client_hello_facts_and_ja3() {
    let ch = record(22, &client_hello_msg());
    let (st, _) = run(&ch, &[], 10_000);
    let t = st.tx();
    assert_eq!(t.buffer(TlsBuffer::Sni, 0), Some(&b"www.example.org"[..]));
    assert_eq!(
        t.buffer(TlsBuffer::Ja3String, 0),
        Some(&b"771,49195-47,0-10-11-43,29-23,0"[..])
    );
    assert_eq!(
        t.buffer(TlsBuffer::Ja3Hash, 0),
        Some(&b"f8ef54e90b590c26aefedc13dc590c2a"[..])
    );
    assert_eq!(t.client_version(), Some(0x0303));
    assert_eq!(t.progress(ToServer), progress::HELLO);
    assert_eq!(t.version(), 0);
    assert_eq!(version_name(t.version()), "UNDETERMINED");
}

#[test]
fn tls13_server_hello_then_encrypted() {
    let ch = record(22, &client_hello_msg());
    let mut tc = record(22, &server_hello_13());
    tc.extend(record(20, &[1]));
    // "Encrypted" handshake content that would parse as a Certificate if it were read.
    tc.extend(record(23, &handshake(11, &[0, 0, 0])));
    tc.extend(record(22, &handshake(11, &[0, 0, 0])));
    let (st, ev) = run(&ch, &tc, 10_000);
    let t = st.tx();
    assert_eq!(t.version(), 0x0304);
    assert_eq!(version_name(t.version()), "TLS 1.3");
    assert_eq!(t.cipher(), Some(0x1301));
    assert_eq!(
        t.buffer(TlsBuffer::Ja3sString, 0),
        Some(&b"771,4865,43-51"[..])
    );
    assert_eq!(
        t.buffer(TlsBuffer::Ja3sHash, 0),
        Some(&b"f4febc55ea12b31ae17cfb7e614afda8"[..])
    );
    assert!(t.certs().is_empty());
    assert_eq!(t.progress(ToClient), progress::DONE);
    assert!(ev.as_slice().is_empty(), "{:?}", ev.as_slice());
}

#[test]
fn handshake_split_over_records_and_chunks() {
    // The ClientHello is cut into three handshake records; any chunking of the stream gives
    // the same facts as one record.
    let msg = client_hello_msg();
    let mut ts = Vec::new();
    for part in [&msg[..3], &msg[3..50], &msg[50..]] {
        ts.extend(record(22, part));
    }
    for step in [1, 2, 5, 64, 10_000] {
        let (st, _) = run(&ts, &[], step);
        assert_eq!(
            st.tx().buffer(TlsBuffer::Ja3Hash, 0),
            Some(&b"f8ef54e90b590c26aefedc13dc590c2a"[..]),
            "step {step}"
        );
        assert_eq!(
            st.tx().buffer(TlsBuffer::Sni, 0),
            Some(&b"www.example.org"[..])
        );
    }
}

#[test]
fn oversized_handshake_is_skipped_then_parsing_resumes() {
    let cfg = TlsConfig {
        max_handshake_len: 1000,
        ..TlsConfig::default()
    };
    let mut st = TlsState::new(&cfg);
    let mut ev = Events::new(100);
    // Certificate message claiming 5000 bytes, sent in 4 records, then ServerHelloDone.
    let big = handshake(11, &vec![0u8; 5000]);
    let mut tc = Vec::new();
    for part in big.chunks(1400) {
        tc.extend(record(22, part));
    }
    tc.extend(record(22, &handshake(14, &[])));
    st.on_stream(ToClient, &tc, &mut ev);
    assert!(ev.contains(AppEventKind::Tls(TlsEvent::HandshakeInvalidLength)));
    assert_eq!(st.tx().progress(ToClient), progress::CERT);
}

#[test]
fn invalid_records_and_special_cases() {
    // Not TLS at all after a good record: event, direction stops.
    let mut ts = record(22, &client_hello_msg());
    ts.extend_from_slice(b"GET / HTTP/1.1\r\n");
    let (st, ev) = run(&ts, &[], 10_000);
    assert!(ev.contains(AppEventKind::Tls(TlsEvent::InvalidRecordType)));
    assert!(st.tx().buffer(TlsBuffer::Sni, 0).is_some());
    // Heartbeat.
    let (_, ev) = run(&record(24, &[1, 0, 16]), &[], 10_000);
    assert!(ev.contains(AppEventKind::Tls(TlsEvent::HeartbeatMessage)));
    // SSLv2 ClientHello offering TLS 1.0 (len 46: 9 header bytes, 21 cipher, 16 challenge).
    let mut v2 = vec![
        0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10,
    ];
    v2.extend_from_slice(&[0; 21 + 16]);
    for step in [1, 3, 100] {
        let (st, ev) = run(&v2, &[], step);
        assert_eq!(st.tx().client_version(), Some(0x0301), "step {step}");
        assert!(ev.as_slice().is_empty());
    }
    // Record framing helper.
    assert_eq!(
        parser::split_record(&[22, 3]),
        RecordFrame::Incomplete { needed: 3 }
    );
    assert!(matches!(
        parser::split_record(&[22, 3, 1, 0xff, 0xff]),
        RecordFrame::Invalid(_)
    ));
    assert!(matches!(
        parser::split_record(&[22, 2]),
        RecordFrame::Invalid(_)
    ));
    assert_eq!(version_name(0x0301), "TLSv1");
    assert_eq!(version_name(0x7f1c), "TLS 1.3 draft-28");
    assert_eq!(version_name(0x1234), "0x1234");
}

proptest! {
    #[test]
    fn no_panic_on_arbitrary_bytes(a in prop::collection::vec(any::<u8>(), 0..800), b in prop::collection::vec(any::<u8>(), 0..800)) {
        let (mut st, mut ev) = run(&a, &b, 37);
        st.on_gap(ToClient);
        st.on_stream(ToClient, &a, &mut ev);
        let _ = parser::parse_client_hello(&a);
        let _ = parser::parse_server_hello(&a);
        let _ = parser::parse_certificates(&a, 4);
        let _ = parser::parse_sslv2_client_hello(&a);
    }

    #[test]
    fn mutated_hellos_never_panic(flips in prop::collection::vec((0usize..300, any::<u8>()), 1..8), step in 1usize..50) {
        let mut ts = record(22, &client_hello_msg());
        let mut tc = record(22, &server_hello_13());
        for (i, v) in &flips {
            let n = ts.len();
            ts[i % n] = *v;
            let n = tc.len();
            tc[i % n] = *v;
        }
        let whole = run(&ts, &tc, 100_000);
        let parts = run(&ts, &tc, step);
        prop_assert_eq!(format!("{:?}", whole.0.tx()), format!("{:?}", parts.0.tx()));
    }
}
