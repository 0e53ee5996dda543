//! Decode throughput: every frame of the demo scenario through `decode::decode`.
//! Run: cargo bench --bench decode

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tocsin_sensor::Timestamp;
use tocsin_sensor::decode::{LinkType, decode};
use tocsin_traffic::{Scenario, ScenarioConfig};

fn bench(c: &mut Criterion) {
    let scenario = Scenario::generate(ScenarioConfig {
        benign_sessions: 200,
        ..ScenarioConfig::default()
    });
    let frames: Vec<Vec<u8>> = scenario
        .sites
        .iter()
        .flat_map(|s| s.frames.iter().map(|f| f.data.clone()))
        .collect();
    let bytes: usize = frames.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("scenario_frames", |b| {
        b.iter(|| {
            let mut payload = 0usize;
            for f in &frames {
                if let Ok(p) = decode(LinkType::Ethernet, f, Timestamp(0), 1) {
                    payload += p.payload.len();
                }
            }
            payload
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
