//! Criterion bench: HTTP/1.1 app-layer throughput (detection, parsing, normalization, buffer
//! construction) over a fixed, generated keep-alive flow.
//!
//! Corpus: 2,000 request/response exchanges from a seeded generator (GETs and POSTs with
//! 6-10 headers, Content-Length and chunked bodies of 200 B to 6 KiB), cut into 1,460-byte
//! segments per direction and fed in exchange order; complete transactions are marked
//! inspected as the rule engine would, so the live set stays small.
//! Reported throughput: bytes of both directions per second.
//! Run: `cargo bench --bench applayer_http`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tocsin_sensor::Direction::{self, ToClient, ToServer};
use tocsin_sensor::Timestamp;
use tocsin_sensor::applayer::{AppLayer, AppLayerConfig, IPPROTO_TCP};

/// A small deterministic PRNG (xorshift64*), so the corpus is identical on every run.
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

const WORDS: [&str; 12] = [
    "index", "api", "v1", "images", "static", "login", "search", "cart", "news", "assets", "js",
    "user",
];
const UAS: [&str; 3] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36",
    "curl/7.88.1",
    "python-requests/2.31.0",
];

fn corpus() -> Vec<(Direction, Vec<u8>)> {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut segs = Vec::new();
    for i in 0..2000 {
        let mut path = String::new();
        for _ in 0..1 + rng.below(4) {
            path.push('/');
            path.push_str(WORDS[rng.below(WORDS.len() as u64)]);
        }
        let post = rng.below(4) == 0;
        let mut req = format!(
            "{} {path}?id={i}&q=%41b%2Fc HTTP/1.1\r\nHost: www.example{}.com\r\nUser-Agent: {}\r\nAccept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\nCookie: session={:016x}\r\n",
            if post { "POST" } else { "GET" },
            rng.below(50),
            UAS[rng.below(3)],
            rng.next()
        );
        let mut req_body = Vec::new();
        if post {
            let body: String = (0..200 + rng.below(800))
                .map(|k| char::from(b'a' + (k % 26) as u8))
                .collect();
            req.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
            req_body = body.into_bytes();
        }
        req.push_str("\r\n");
        let mut req = req.into_bytes();
        req.extend_from_slice(&req_body);
        let len = 200 + rng.below(6000);
        let body: Vec<u8> = (0..len)
            .map(|k| b"<html><body>lorem ipsum dolor sit amet</body></html>\n"[k % 52])
            .collect();
        let mut resp = format!(
            "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: max-age=3600\r\nSet-Cookie: id={i}; Path=/\r\n"
        )
        .into_bytes();
        if rng.below(3) == 0 {
            resp.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for chunk in body.chunks(1024) {
                resp.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                resp.extend_from_slice(chunk);
                resp.extend_from_slice(b"\r\n");
            }
            resp.extend_from_slice(b"0\r\n\r\n");
        } else {
            resp.extend_from_slice(format!("Content-Length: {len}\r\n\r\n").as_bytes());
            resp.extend_from_slice(&body);
        }
        segs.extend(req.chunks(1460).map(|c| (ToServer, c.to_vec())));
        segs.extend(resp.chunks(1460).map(|c| (ToClient, c.to_vec())));
    }
    segs
}

fn run(cfg: &AppLayerConfig, segs: &[(Direction, Vec<u8>)]) -> usize {
    let mut al = AppLayer::new(cfg, IPPROTO_TCP, 80, 40000);
    let mut done = 0;
    for (i, (dir, data)) in segs.iter().enumerate() {
        al.on_stream(*dir, data, Timestamp(0));
        if i % 8 == 0 {
            let ids: Vec<u64> = al
                .txs()
                .filter(|t| t.is_complete(ToServer) && t.is_complete(ToClient))
                .map(|t| t.id())
                .collect();
            for id in ids {
                al.tx_inspected(id, ToServer);
                al.tx_inspected(id, ToClient);
                done += 1;
            }
        }
    }
    done
}

fn bench(c: &mut Criterion) {
    let segs = corpus();
    let bytes: usize = segs.iter().map(|(_, d)| d.len()).sum();
    let cfg = AppLayerConfig::default();
    assert!(
        run(&cfg, &segs) > 1900,
        "corpus must parse into transactions"
    );
    let mut g = c.benchmark_group("applayer_http");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(20);
    g.bench_function("keepalive_2000_exchanges_mss1460", |b| {
        b.iter(|| run(&cfg, &segs));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
