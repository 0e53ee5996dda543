//! Criterion bench: DNS app-layer throughput (UDP messages and a TCP length-framed stream).
//!
//! Corpus: 20,000 messages from a seeded generator, alternating queries (1 question) and
//! responses (the question plus 1-6 answers: A, AAAA and CNAME records with compression
//! pointers). UDP: one datagram per message through one flow; TCP: the same messages
//! length-prefixed in one stream cut into 1,460-byte segments. Transactions are marked
//! inspected as they appear. Reported throughput: message bytes per second.
//! Run: `cargo bench --bench applayer_dns`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tocsin_sensor::Direction::{self, ToClient, ToServer};
use tocsin_sensor::Timestamp;
use tocsin_sensor::applayer::{AppLayer, AppLayerConfig, IPPROTO_TCP, IPPROTO_UDP};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> usize {
        usize::try_from(self.next() % n).unwrap_or(0)
    }
}

const LABELS: [&str; 10] = [
    "www", "mail", "cdn", "api", "static", "example", "tocsin", "images", "login", "edge",
];
const TLDS: [&str; 5] = ["com", "net", "org", "io", "co"];

fn name(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..2 + rng.below(3) {
        let l = LABELS[rng.below(LABELS.len() as u64)];
        out.push(u8::try_from(l.len()).unwrap_or(0));
        out.extend_from_slice(l.as_bytes());
    }
    let t = TLDS[rng.below(5)];
    out.push(u8::try_from(t.len()).unwrap_or(0));
    out.extend_from_slice(t.as_bytes());
    out.push(0);
    out
}

fn corpus() -> Vec<(Direction, Vec<u8>)> {
    let mut rng = Rng(0xd115_0000_0000_0042);
    let mut msgs = Vec::new();
    for i in 0..10_000u16 {
        let qname = name(&mut rng);
        let qtype: u16 = if rng.below(2) == 0 { 1 } else { 28 };
        let mut q = i.to_be_bytes().to_vec();
        q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        q.extend_from_slice(&qname);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        let answers = 1 + rng.below(6);
        let mut r = i.to_be_bytes().to_vec();
        r.extend_from_slice(&[0x81, 0x80, 0, 1]);
        r.extend_from_slice(&u16::try_from(answers).unwrap_or(1).to_be_bytes());
        r.extend_from_slice(&[0, 0, 0, 0]);
        r.extend_from_slice(&qname);
        r.extend_from_slice(&qtype.to_be_bytes());
        r.extend_from_slice(&[0, 1]);
        for a in 0..answers {
            r.extend_from_slice(&[0xc0, 12]);
            if a == 0 && answers > 1 {
                // CNAME to "edge" + pointer to the question name
                r.extend_from_slice(&[
                    0, 5, 0, 1, 0, 0, 1, 0, 0, 7, 4, b'e', b'd', b'g', b'e', 0xc0, 12,
                ]);
            } else if qtype == 1 {
                r.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend_from_slice(
                    &u32::try_from(rng.below(u64::from(u32::MAX)))
                        .unwrap_or(0)
                        .to_be_bytes(),
                );
            } else {
                r.extend_from_slice(&[0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
                r.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            }
        }
        msgs.push((ToServer, q));
        msgs.push((ToClient, r));
    }
    msgs
}

fn drain(al: &mut AppLayer) -> usize {
    let txs: Vec<(u64, Direction)> = al
        .txs()
        .map(|t| {
            (
                t.id(),
                if t.inspect_direction(ToServer) {
                    ToServer
                } else {
                    ToClient
                },
            )
        })
        .collect();
    for (id, dir) in &txs {
        al.tx_inspected(*id, *dir);
    }
    txs.len()
}

fn run_udp(cfg: &AppLayerConfig, msgs: &[(Direction, Vec<u8>)]) -> usize {
    let mut al = AppLayer::new(cfg, IPPROTO_UDP, 53, 40000);
    let mut n = 0;
    for (dir, m) in msgs {
        al.on_datagram(*dir, m, Timestamp(0));
        n += drain(&mut al);
    }
    n
}

fn run_tcp(cfg: &AppLayerConfig, segs: &[(Direction, Vec<u8>)]) -> usize {
    let mut al = AppLayer::new(cfg, IPPROTO_TCP, 53, 40000);
    let mut n = 0;
    for (dir, s) in segs {
        al.on_stream(*dir, s, Timestamp(0));
        n += drain(&mut al);
    }
    n
}

fn bench(c: &mut Criterion) {
    let msgs = corpus();
    let bytes: usize = msgs.iter().map(|(_, m)| m.len()).sum();
    let cfg = AppLayerConfig::default();
    assert_eq!(run_udp(&cfg, &msgs), msgs.len());
    // TCP: each direction's messages framed into one stream, segmented, sent in turn.
    let mut streams = [Vec::new(), Vec::new()];
    for (dir, m) in &msgs {
        let s = &mut streams[dir.index()];
        s.extend_from_slice(&u16::try_from(m.len()).unwrap_or(0).to_be_bytes());
        s.extend_from_slice(m);
    }
    let mut segs = Vec::new();
    let (mut a, mut b) = (streams[0].chunks(1460), streams[1].chunks(1460));
    loop {
        let (x, y) = (a.next(), b.next());
        if x.is_none() && y.is_none() {
            break;
        }
        segs.extend(x.map(|x| (ToServer, x.to_vec())));
        segs.extend(y.map(|y| (ToClient, y.to_vec())));
    }
    let tcp_bytes: usize = segs.iter().map(|(_, s)| s.len()).sum();
    assert!(run_tcp(&cfg, &segs) > msgs.len() - 10);
    let mut g = c.benchmark_group("applayer_dns");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("udp_20000_messages", |b| b.iter(|| run_udp(&cfg, &msgs)));
    g.throughput(Throughput::Bytes(tcp_bytes as u64));
    g.bench_function("tcp_stream_mss1460", |b| b.iter(|| run_tcp(&cfg, &segs)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
