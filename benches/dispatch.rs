//! The sensor's dispatch stage (packets/s on a fixed corpus: the frames of the demo
//! scenario with 200 benign sessions per site):
//! - `dispatch/hash`: picking a frame's worker (`dispatch_hash`: a light decode and the
//!   address-pair hash), on the capture thread;
//! - `dispatch/queue/N`: the whole capture → worker edge with N worker threads: hash, copy
//!   into 64-frame batches, bounded crossbeam channels (64 batches deep, the sensor's
//!   default), batches recycled back to the sender; each worker walks its frames and sums
//!   their bytes, so the figure is the edge's cost, not detection's.
//!
//! Run: cargo bench --bench dispatch

use std::thread;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crossbeam::channel::{Receiver, Sender, bounded};
use tocsin_sensor::Timestamp;
use tocsin_sensor::decode::LinkType;
use tocsin_sensor::pipeline::dispatch::{Batch, dispatch_hash};
use tocsin_traffic::{Scenario, ScenarioConfig};

const BATCH_PACKETS: usize = 64;
const QUEUE_BATCHES: usize = 64;

fn corpus() -> Vec<Vec<u8>> {
    let scenario = Scenario::generate(ScenarioConfig {
        benign_sessions: 200,
        ..ScenarioConfig::default()
    });
    scenario
        .sites
        .iter()
        .flat_map(|s| s.frames.iter().map(|f| f.data.clone()))
        .collect()
}

/// Sends every frame of `frames` through `n` worker threads; returns the bytes they saw.
fn run_edge(frames: &[Vec<u8>], n: usize) -> u64 {
    let (recycle_tx, recycle_rx) = bounded::<Batch>(n * (QUEUE_BATCHES + 2));
    thread::scope(|s| {
        let mut senders: Vec<Sender<Batch>> = Vec::with_capacity(n);
        let mut workers = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx): (Sender<Batch>, Receiver<Batch>) = bounded(QUEUE_BATCHES);
            senders.push(tx);
            let recycle_tx = recycle_tx.clone();
            workers.push(s.spawn(move || {
                let mut seen = 0u64;
                for batch in rx {
                    for p in batch.packets() {
                        seen +=
                            p.data.len() as u64 + u64::from(p.data.first().copied().unwrap_or(0));
                    }
                    let _ = recycle_tx.try_send(batch.cleared());
                }
                seen
            }));
        }
        drop(recycle_tx);
        let mut pending: Vec<Batch> = (0..n).map(|_| Batch::default()).collect();
        for (i, f) in frames.iter().enumerate() {
            let k = dispatch_hash(LinkType::Ethernet, f).map_or(0, |h| (h % n as u64) as usize);
            let slot = &mut pending[k];
            slot.push(Timestamp(0), i as u64, f);
            if slot.len() >= BATCH_PACKETS {
                let fresh = recycle_rx.try_recv().unwrap_or_default();
                let full = std::mem::replace(slot, fresh);
                // A worker cannot stop before the senders are dropped.
                let _ = senders[k].send(full);
            }
        }
        for (k, b) in pending.into_iter().enumerate() {
            if !b.is_empty() {
                let _ = senders[k].send(b);
            }
        }
        drop(senders);
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .sum()
    })
}

fn bench(c: &mut Criterion) {
    let frames = corpus();
    let mut g = c.benchmark_group("dispatch");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("hash", |b| {
        b.iter(|| {
            frames
                .iter()
                .filter_map(|f| dispatch_hash(LinkType::Ethernet, f))
                .fold(0u64, u64::wrapping_add)
        });
    });
    for n in [1usize, 2, 4] {
        g.bench_with_input(BenchmarkId::new("queue", n), &n, |b, &n| {
            b.iter(|| run_edge(&frames, n));
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
