//! Criterion bench: TLS app-layer throughput: record framing, handshake reassembly,
//! ClientHello/ServerHello parsing with JA3/JA3S, certificate parsing (x509-parser, SHA-1
//! fingerprint), then encrypted application data that is framed and skipped.
//!
//! Corpus: 500 flows from a seeded generator. Each client sends a ClientHello (GREASE, SNI,
//! 16 ciphers, 9 extensions) and a CCS; each server sends ServerHello + Certificate (a
//! 2-certificate chain built here as DER) + ServerHelloDone in one record and a CCS. The
//! `with_app_data` variant adds 4 application-data records of 4 KiB from the client and 8 of
//! 16 KiB from the server (framed and skipped). Streams are cut into 1,460-byte segments. Reported throughput: bytes of both directions per second, a fresh flow per
//! handshake (one transaction per flow, as TLS has).
//! Run: `cargo bench --bench applayer_tls`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tocsin_sensor::Direction::{self, ToClient, ToServer};
use tocsin_sensor::Timestamp;
use tocsin_sensor::applayer::{AppLayer, AppLayerConfig, IPPROTO_TCP, TlsBuffer, TxRef};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next().to_le_bytes()[3]).collect()
    }
}

/// DER TLV with definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = content.len();
    if n < 128 {
        v.push(u8::try_from(n).unwrap_or(0));
    } else if n < 256 {
        v.extend_from_slice(&[0x81, u8::try_from(n).unwrap_or(0)]);
    } else {
        v.push(0x82);
        v.extend_from_slice(&u16::try_from(n).unwrap_or(0).to_be_bytes());
    }
    v.extend_from_slice(content);
    v
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn name(cn: &str) -> Vec<u8> {
    let rdn = |oid: &[u8], v: &str| tlv(0x31, &seq(&[tlv(0x06, oid), tlv(0x13, v.as_bytes())]));
    seq(&[
        rdn(&[0x55, 4, 6], "US"),
        rdn(&[0x55, 4, 10], "Tocsin Bench Inc"),
        rdn(&[0x55, 4, 3], cn),
    ])
}

/// A structurally valid X.509 v3 certificate (RSA key and signature bytes are random).
fn cert(rng: &mut Rng, subject: &str, issuer: &str) -> Vec<u8> {
    let sha256_rsa = seq(&[
        tlv(0x06, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 11]),
        tlv(0x05, &[]),
    ]);
    let rsa = seq(&[
        tlv(0x06, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 1]),
        tlv(0x05, &[]),
    ]);
    let mut modulus = vec![0];
    modulus.extend(rng.bytes(256));
    let key = seq(&[tlv(0x02, &modulus), tlv(0x02, &[1, 0, 1])]);
    let mut bits = vec![0];
    bits.extend(key);
    let spki = seq(&[rsa, tlv(0x03, &bits)]);
    let validity = seq(&[tlv(0x17, b"240101000000Z"), tlv(0x17, b"340101000000Z")]);
    let mut serial = vec![0x01];
    serial.extend(rng.bytes(15));
    let tbs = seq(&[
        tlv(0xa0, &tlv(0x02, &[2])),
        tlv(0x02, &serial),
        sha256_rsa.clone(),
        name(issuer),
        validity,
        name(subject),
        spki,
    ]);
    let mut sig = vec![0];
    sig.extend(rng.bytes(256));
    seq(&[tbs, sha256_rsa, tlv(0x03, &sig)])
}

fn u16b(n: usize) -> [u8; 2] {
    u16::try_from(n).unwrap_or(0).to_be_bytes()
}

fn u24b(n: usize) -> [u8; 3] {
    let b = u32::try_from(n).unwrap_or(0).to_be_bytes();
    [b[1], b[2], b[3]]
}

fn hs(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![t];
    v.extend_from_slice(&u24b(body.len()));
    v.extend_from_slice(body);
    v
}

fn record(ct: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ct, 3, 3];
    v.extend_from_slice(&u16b(body.len()));
    v.extend_from_slice(body);
    v
}

fn ext(t: u16, data: &[u8]) -> Vec<u8> {
    let mut v = t.to_be_bytes().to_vec();
    v.extend_from_slice(&u16b(data.len()));
    v.extend_from_slice(data);
    v
}

fn flow(rng: &mut Rng, i: usize, chain: &[Vec<u8>], app_data: bool) -> Vec<(Direction, Vec<u8>)> {
    let host = format!("host{i}.bench.example");
    let mut ch = vec![3, 3];
    ch.extend(rng.bytes(32));
    ch.push(32);
    ch.extend(rng.bytes(32));
    let ciphers: [u16; 16] = [
        0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
        0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
    ];
    ch.extend_from_slice(&u16b(32));
    for c in ciphers {
        ch.extend_from_slice(&c.to_be_bytes());
    }
    ch.extend_from_slice(&[1, 0]);
    let mut sni = u16b(host.len() + 3).to_vec();
    sni.push(0);
    sni.extend_from_slice(&u16b(host.len()));
    sni.extend_from_slice(host.as_bytes());
    let mut exts = ext(0x2a2a, &[]);
    exts.extend(ext(0, &sni));
    exts.extend(ext(23, &[]));
    exts.extend(ext(0xff01, &[0]));
    exts.extend(ext(10, &[0, 8, 0x2a, 0x2a, 0, 0x1d, 0, 0x17, 0, 0x18]));
    exts.extend(ext(11, &[1, 0]));
    exts.extend(ext(35, &[]));
    exts.extend(ext(
        16,
        &[
            0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
        ],
    ));
    exts.extend(ext(13, &[0, 8, 4, 3, 8, 4, 4, 1, 5, 1]));
    ch.extend_from_slice(&u16b(exts.len()));
    ch.extend(exts);
    let mut sh = vec![3, 3];
    sh.extend(rng.bytes(32));
    sh.push(0);
    sh.extend_from_slice(&[0xc0, 0x2f, 0]);
    let sexts = [ext(0xff01, &[0]), ext(11, &[1, 0]), ext(23, &[])].concat();
    sh.extend_from_slice(&u16b(sexts.len()));
    sh.extend(sexts);
    let mut list = Vec::new();
    for c in chain {
        list.extend_from_slice(&u24b(c.len()));
        list.extend_from_slice(c);
    }
    let mut certs = u24b(list.len()).to_vec();
    certs.extend(list);
    let flight = [hs(2, &sh), hs(11, &certs), hs(14, &[])].concat();
    let mut ts = record(22, &hs(1, &ch));
    ts.extend(record(20, &[1]));
    let mut tc = record(22, &flight);
    tc.extend(record(20, &[1]));
    if app_data {
        for _ in 0..4 {
            ts.extend(record(23, &rng.bytes(4096)));
        }
        for _ in 0..8 {
            tc.extend(record(23, &rng.bytes(16_384)));
        }
    }
    let mut segs: Vec<(Direction, Vec<u8>)> =
        ts.chunks(1460).map(|c| (ToServer, c.to_vec())).collect();
    segs.extend(tc.chunks(1460).map(|c| (ToClient, c.to_vec())));
    segs
}

fn run(cfg: &AppLayerConfig, flows: &[Vec<(Direction, Vec<u8>)>]) -> usize {
    let mut ok = 0;
    for f in flows {
        let mut al = AppLayer::new(cfg, IPPROTO_TCP, 443, 40000);
        for (dir, seg) in f {
            al.on_stream(*dir, seg, Timestamp(0));
        }
        if let Some(TxRef::Tls(t)) = al.txs().next() {
            ok += usize::from(
                t.buffer(TlsBuffer::CertSubject, 0).is_some()
                    && t.buffer(TlsBuffer::Ja3Hash, 0).is_some(),
            );
        }
    }
    ok
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(0x7157_0000_0000_0007);
    let chain = vec![
        cert(&mut rng, "*.bench.example", "Tocsin Bench CA"),
        cert(&mut rng, "Tocsin Bench CA", "Tocsin Root"),
    ];
    let flows: Vec<_> = (0..500).map(|i| flow(&mut rng, i, &chain, true)).collect();
    let bytes: usize = flows.iter().flatten().map(|(_, s)| s.len()).sum();
    let cfg = AppLayerConfig::default();
    assert_eq!(
        run(&cfg, &flows),
        flows.len(),
        "every flow must yield SNI, JA3 and a parsed certificate"
    );
    let mut g = c.benchmark_group("applayer_tls");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("500_handshakes_with_app_data", |b| {
        b.iter(|| run(&cfg, &flows));
    });
    let handshakes: Vec<Vec<(Direction, Vec<u8>)>> = flows
        .iter()
        .map(|f| {
            f.iter()
                .filter(|(_, s)| s.first() != Some(&23) || s.len() < 1460)
                .take(4)
                .cloned()
                .collect()
        })
        .collect();
    let hs_bytes: usize = handshakes.iter().flatten().map(|(_, s)| s.len()).sum();
    g.throughput(Throughput::Bytes(hs_bytes as u64));
    g.bench_function("500_handshakes_only", |b| b.iter(|| run(&cfg, &handshakes)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
