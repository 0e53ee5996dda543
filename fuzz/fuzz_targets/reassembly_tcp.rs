//! Fuzzes TCP reassembly in two modes (first input byte, low bit):
//! - packets: the rest is a sequence of records `dir|flags(1) seq(4) ack(4) len(1) data`
//!   driven through one session with a small memory budget; both views are drained after
//!   every packet and at the end. Checks: no panic, the budget holds, everything is given
//!   back when the session is dropped.
//! - order: the rest is `data_len(2) data cuts...`; the data is cut into segments at the
//!   given sizes, sent in an input-chosen order with duplicates, ACKed, and the app view
//!   must return exactly the data ("random segment orders produce the same stream").
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin_sensor::decode::tcpflag::{ACK, PSH, SYN};
use tocsin_sensor::decode::TcpHeader;
use tocsin_sensor::reassembly::{
    AppChunk, OverlapPolicy, Reassembler, ReassemblyConfig, TcpSession,
};
use tocsin_sensor::Direction::{self, ToClient, ToServer};

fn hdr(seq: u32, ack: u32, flags: u8) -> TcpHeader<'static> {
    TcpHeader {
        src_port: 1,
        dst_port: 2,
        seq,
        ack,
        flags,
        window: 65535,
        urgent: 0,
        mss: None,
        wscale: None,
        sack_permitted: false,
        timestamps: None,
        header: &[],
    }
}

fn drain(s: &mut TcpSession, ctx: &mut Reassembler, dir: Direction, out: &mut Vec<u8>) {
    for _ in 0..100_000 {
        let n = match s.app_data(dir) {
            AppChunk::None => break,
            AppChunk::Data { data, .. } => {
                out.extend_from_slice(data);
                data.len() as u64
            }
            AppChunk::Gap { len, .. } => len,
        };
        s.app_consumed(ctx, dir, n);
    }
    while let Some(c) = s.raw_data(ctx, dir) {
        let end = c.end();
        s.raw_inspected(ctx, dir, end);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let policy = OverlapPolicy::ALL[usize::from(sel >> 1) % OverlapPolicy::ALL.len()];
    if sel & 1 == 0 {
        packets(rest, policy, sel & 0x80 != 0);
    } else {
        order(rest, policy);
    }
});

fn packets(mut rest: &[u8], policy: OverlapPolicy, midstream: bool) {
    let cap = 32 * 1024;
    let mut ctx = Reassembler::new(ReassemblyConfig {
        policy,
        memcap: cap,
        depth: 4096,
        midstream,
        toserver_chunk_size: 64,
        toclient_chunk_size: 64,
        raw_overlap: 16,
        ..ReassemblyConfig::default()
    });
    let mut s = ctx.new_session();
    let mut sink = Vec::new();
    while let Some((head, tail)) = rest.split_first_chunk::<10>() {
        let dir = if head[0] & 0x80 == 0 { ToServer } else { ToClient };
        let flags = head[0] & 0x3f;
        let seq = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        let ack = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
        let len = usize::from(head[9]).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        s.on_packet(&mut ctx, dir, &hdr(seq, ack, flags), payload);
        drain(&mut s, &mut ctx, dir, &mut sink);
        drain(&mut s, &mut ctx, dir.reverse(), &mut sink);
        assert!(ctx.budget().used() <= cap);
    }
    s.flush();
    drain(&mut s, &mut ctx, ToServer, &mut sink);
    drain(&mut s, &mut ctx, ToClient, &mut sink);
    drop(s);
    assert_eq!(ctx.budget().used(), 0);
}

fn order(rest: &[u8], policy: OverlapPolicy) {
    let Some((len, rest)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_be_bytes(*len)).min(rest.len()).min(8192);
    let (stream, cuts) = rest.split_at(len);
    if stream.is_empty() || cuts.is_empty() {
        return;
    }
    // Segments: consecutive cuts of sizes 1..=64 covering the stream, then extra segments
    // at input-chosen offsets (same bytes: consistent overlaps).
    let mut segs = Vec::new();
    let mut pos = 0usize;
    let mut i = 0usize;
    while pos < stream.len() {
        let c = usize::from(cuts[i % cuts.len()] % 64) + 1;
        segs.push((pos, (pos + c).min(stream.len())));
        pos += c;
        i += 1;
    }
    for pair in cuts.chunks_exact(2).take(32) {
        let at = usize::from(pair[0]) * stream.len() / 256;
        let end = (at + usize::from(pair[1] % 64) + 1).min(stream.len());
        segs.push((at, end));
    }
    // Input-chosen permutation (a keyed sort).
    let mut keyed: Vec<(u8, usize)> = segs
        .iter()
        .enumerate()
        .map(|(k, _)| (cuts[(k * 7) % cuts.len()].wrapping_mul(k as u8 | 1), k))
        .collect();
    keyed.sort_unstable();
    let isn = u32::from_be_bytes([cuts[0], cuts[cuts.len() - 1], 0xff, 0xf0]);
    let mut ctx = Reassembler::new(ReassemblyConfig {
        policy,
        ..ReassemblyConfig::default()
    });
    let mut s = ctx.new_session();
    s.on_packet(&mut ctx, ToServer, &hdr(isn, 0, SYN), &[]);
    s.on_packet(&mut ctx, ToClient, &hdr(9, isn.wrapping_add(1), SYN | ACK), &[]);
    for (_, k) in keyed {
        let (a, b) = segs[k];
        let seq = isn.wrapping_add(1).wrapping_add(a as u32);
        s.on_packet(&mut ctx, ToServer, &hdr(seq, 10, PSH | ACK), &stream[a..b]);
    }
    let end = isn.wrapping_add(1).wrapping_add(stream.len() as u32);
    s.on_packet(&mut ctx, ToClient, &hdr(10, end, ACK), &[]);
    let mut got = Vec::new();
    drain(&mut s, &mut ctx, ToServer, &mut got);
    assert_eq!(got, stream);
}
