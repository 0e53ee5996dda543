//! Prefilter scan speed (MB/s) on a fixed corpus: the payloads of the demo scenario,
//! scanned with 100, 1,000 and 10,000 generated literal patterns, on each backend
//! (aho-corasick, and Hyperscan when the `hyperscan` feature is on).
//! Run: cargo bench --bench detect_prefilter

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tocsin_sensor::Timestamp;
use tocsin_sensor::decode::{LinkType, decode};
use tocsin_sensor::detect::prefilter::{Backend, Candidates, Mpm};
use tocsin_traffic::{Rng, Scenario, ScenarioConfig};

fn corpus() -> Vec<Vec<u8>> {
    let scenario = Scenario::generate(ScenarioConfig {
        benign_sessions: 200,
        ..ScenarioConfig::default()
    });
    scenario
        .sites
        .iter()
        .flat_map(|s| s.frames.iter())
        .filter_map(|f| {
            let p = decode(LinkType::Ethernet, &f.data, Timestamp(0), 1).ok()?;
            (!p.payload.is_empty()).then(|| p.payload.to_vec())
        })
        .collect()
}

/// Patterns shaped like rule fast patterns: words, paths, hex-ish tokens (4-16 bytes).
fn patterns(n: usize) -> Vec<(Vec<u8>, u32)> {
    let mut rng = Rng::new(7);
    let prefixes: [&str; 6] = ["/", "User-Agent: ", ".php?", "cmd=", "GET /", ""];
    (0..n)
        .map(|i| {
            let len = 4 + usize::try_from(rng.below(12)).unwrap_or(0);
            let p = format!("{}{}", rng.pick(&prefixes), rng.alnum(len));
            (p.into_bytes(), u32::try_from(i).unwrap_or(0))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let payloads = corpus();
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    let mut backends = vec![("prefilter_aho_corasick", Backend::AhoCorasick)];
    if Backend::hyperscan_compiled() {
        backends.push(("prefilter_hyperscan", Backend::Hyperscan));
    }
    for (group, backend) in backends {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Bytes(bytes as u64));
        for n in [100usize, 1_000, 10_000] {
            let mpm = match Mpm::build_with(&patterns(n), backend) {
                Ok(m) => m,
                Err(e) => panic!("{backend} prefilter build failed for {n} patterns: {e}"),
            };
            let mut cands = Candidates::default();
            g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter(|| {
                    let mut hits = 0usize;
                    for p in &payloads {
                        cands.reset(n, n);
                        mpm.scan(p, &mut cands);
                        hits += cands.list.len();
                    }
                    hits
                });
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
