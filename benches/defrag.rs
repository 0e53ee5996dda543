//! Defragmentation rate: IPv4 datagrams of 8 fragments (1480 bytes each) in order, and in
//! reverse order, decoded and reassembled; throughput in fragments.
//!
//! `cargo bench --bench defrag`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tocsin_sensor::Timestamp;
use tocsin_sensor::decode::decode_ip;
use tocsin_sensor::defrag::{DefragConfig, Defragmenter};

const FRAGS: usize = 8;
const FRAG_LEN: usize = 1480;
const DATAGRAMS: usize = 1000;

fn fragment(id: u16, index: usize) -> Vec<u8> {
    let more = index + 1 < FRAGS;
    let off = u16::try_from(index * FRAG_LEN / 8).unwrap_or(0) | if more { 0x2000 } else { 0 };
    let total = u16::try_from(20 + FRAG_LEN).unwrap_or(0);
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&off.to_be_bytes());
    p.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    p.resize(20 + FRAG_LEN, (index as u8).wrapping_mul(37));
    p
}

fn run(packets: &[Vec<u8>]) -> usize {
    let mut d = Defragmenter::new(DefragConfig::default());
    let mut done = 0;
    for (i, p) in packets.iter().enumerate() {
        if let Ok(pkt) = decode_ip(p, [0, 0], Timestamp(i as i64), i as u64)
            && let Some(dg) = d.process(&pkt)
        {
            done += black_box(dg).len();
        }
    }
    done
}

fn bench(c: &mut Criterion) {
    let in_order: Vec<Vec<u8>> = (0..DATAGRAMS)
        .flat_map(|id| (0..FRAGS).map(move |i| fragment(id as u16, i)))
        .collect();
    let reversed: Vec<Vec<u8>> = (0..DATAGRAMS)
        .flat_map(|id| (0..FRAGS).rev().map(move |i| fragment(id as u16, i)))
        .collect();
    let want = DATAGRAMS * (20 + FRAGS * FRAG_LEN);
    assert_eq!(run(&in_order), want);
    assert_eq!(run(&reversed), want);

    let mut g = c.benchmark_group("defrag");
    g.throughput(Throughput::Elements((DATAGRAMS * FRAGS) as u64));
    g.bench_function("ipv4_8x1480_in_order", |b| b.iter(|| run(&in_order)));
    g.bench_function("ipv4_8x1480_reversed", |b| b.iter(|| run(&reversed)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
