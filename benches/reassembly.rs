//! TCP reassembly throughput: one 1 MiB client stream in 1448-byte segments, handed to the
//! app view as it is ACKed, in order and with every pair of segments swapped (reordered),
//! plus a run where every segment is sent twice (retransmissions).
//!
//! `cargo bench --bench reassembly`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tocsin_sensor::Direction::{ToClient, ToServer};
use tocsin_sensor::decode::TcpHeader;
use tocsin_sensor::decode::tcpflag::{ACK, PSH, SYN};
use tocsin_sensor::reassembly::{AppChunk, Reassembler, ReassemblyConfig};

const STREAM: usize = 1 << 20;
const MSS: usize = 1448;

fn hdr(seq: u32, ack: u32, flags: u8) -> TcpHeader<'static> {
    TcpHeader {
        src_port: 40_000,
        dst_port: 80,
        seq,
        ack,
        flags,
        window: 65_535,
        urgent: 0,
        mss: None,
        wscale: None,
        sack_permitted: false,
        timestamps: None,
        header: &[],
    }
}

/// Sends `order` (segment indexes) then ACKs every 8 segments and drains the app view.
fn run(data: &[u8], order: &[usize]) -> u64 {
    let mut ctx = Reassembler::new(ReassemblyConfig {
        depth: 0,
        raw: false,
        ..ReassemblyConfig::default()
    });
    let mut s = ctx.new_session();
    let isn = 0xffff_0000u32; // wraps inside the stream
    s.on_packet(&mut ctx, ToServer, &hdr(isn, 0, SYN), &[]);
    s.on_packet(
        &mut ctx,
        ToClient,
        &hdr(1, isn.wrapping_add(1), SYN | ACK),
        &[],
    );
    let mut seen = 0u64;
    let mut high = 0usize;
    for (n, &i) in order.iter().enumerate() {
        let off = i * MSS;
        let end = (off + MSS).min(data.len());
        let seq = isn.wrapping_add(1).wrapping_add(off as u32);
        s.on_packet(&mut ctx, ToServer, &hdr(seq, 2, PSH | ACK), &data[off..end]);
        high = high.max(end);
        if n % 8 == 7 || n + 1 == order.len() {
            let ack = isn.wrapping_add(1).wrapping_add(high as u32);
            s.on_packet(&mut ctx, ToClient, &hdr(2, ack, ACK), &[]);
            while let AppChunk::Data { data, .. } = s.app_data(ToServer) {
                seen += black_box(data).len() as u64;
                let n = data.len() as u64;
                s.app_consumed(&mut ctx, ToServer, n);
            }
        }
    }
    seen
}

fn bench(c: &mut Criterion) {
    let data: Vec<u8> = (0..STREAM).map(|i| (i * 31 + 7) as u8).collect();
    let n = STREAM.div_ceil(MSS);
    let in_order: Vec<usize> = (0..n).collect();
    let swapped: Vec<usize> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                (i + 1).min(n - 1)
            } else {
                i - 1
            }
        })
        .collect();
    let mut swapped = swapped;
    if n % 2 == 1 {
        swapped[n - 1] = n - 1;
    }
    let doubled: Vec<usize> = (0..n).flat_map(|i| [i, i]).collect();
    assert_eq!(run(&data, &in_order), STREAM as u64);
    assert_eq!(run(&data, &swapped), STREAM as u64);
    assert_eq!(run(&data, &doubled), STREAM as u64);

    let mut g = c.benchmark_group("reassembly");
    g.throughput(Throughput::Bytes(STREAM as u64));
    g.bench_function("in_order_1MiB", |b| b.iter(|| run(&data, &in_order)));
    g.bench_function("pairs_swapped_1MiB", |b| b.iter(|| run(&data, &swapped)));
    g.bench_function("every_segment_twice_1MiB", |b| {
        b.iter(|| run(&data, &doubled));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
