//! Fuzzes IP defragmentation. The input is a sequence of records, each `kind(1) len(2)
//! body`: kind bit 0 clear = the body is an IPv4 packet as raw bytes; set = an IPv6
//! fragment built from `id(2) offset(2) more|proto(1) payload` (fixed header, optional
//! destination options, fragment header). Every packet that decodes as a fragment goes to a
//! defragmenter with small caps. Checks: no panic, caps hold, rebuilt datagrams decode.
//!
//! IPv6 is built rather than raw: etherparse 0.21's `LaxIpv6Slice::extensions()` iterator,
//! which `decode` walks, reads extension headers it never length-checked on malformed
//! chains (out of bounds in release, an unsafe-precondition abort in debug). That is a
//! decode bug (reported); this target is about defrag.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin_sensor::Timestamp;
use tocsin_sensor::decode::decode_ip;
use tocsin_sensor::defrag::{DefragConfig, Defragmenter, OverlapPolicy};

/// Upper-layer protocols for built IPv6 fragments (no extension-header numbers).
const PROTOS: [u8; 8] = [1, 6, 17, 47, 58, 59, 132, 253];

fn ipv6_fragment(body: &[u8], dst_opts: bool) -> Option<Vec<u8>> {
    let (head, payload) = body.split_first_chunk::<5>()?;
    let off = u16::from_be_bytes([head[2], head[3]]) & 0xfff8;
    let more = head[4] & 0x80 != 0;
    let proto = PROTOS[usize::from(head[4] & 7)];
    let ext = if dst_opts { 8 } else { 0 };
    let plen = u16::try_from(ext + 8 + payload.len()).ok()?;
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&plen.to_be_bytes());
    p.extend_from_slice(&[if dst_opts { 60 } else { 44 }, 64]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    if dst_opts {
        p.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
    }
    p.extend_from_slice(&[proto, 0]);
    p.extend_from_slice(&(off | u16::from(more)).to_be_bytes());
    p.extend_from_slice(&[0, 0, head[0], head[1]]);
    p.extend_from_slice(payload);
    Some(p)
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let cfg = DefragConfig {
        policy: OverlapPolicy::ALL[usize::from(sel) % OverlapPolicy::ALL.len()],
        policy_v6: OverlapPolicy::ALL[usize::from(sel >> 4) % OverlapPolicy::ALL.len()],
        memcap: 64 * 1024,
        max_trackers: 8,
        max_fragments: 64,
        timeout_secs: 2,
    };
    let mut d = Defragmenter::new(cfg.clone());
    let mut n = 0i64;
    while let Some((head, tail)) = rest.split_first_chunk::<3>() {
        let len = usize::from(u16::from_be_bytes([head[1], head[2]])).min(tail.len());
        let (body, tail) = tail.split_at(len);
        rest = tail;
        n += 1;
        let owned;
        let pkt: &[u8] = if head[0] & 1 == 1 {
            match ipv6_fragment(body, head[0] & 2 != 0) {
                Some(p) => {
                    owned = p;
                    &owned
                }
                None => continue,
            }
        } else if body.first().map(|b| b >> 4) == Some(4) {
            body
        } else {
            continue;
        };
        if let Ok(p) = decode_ip(pkt, [0, 0], Timestamp(n * 100_000), n as u64) {
            if let Some(dg) = d.process(&p) {
                assert!(decode_ip(&dg, [0, 0], Timestamp(0), 0).is_ok());
            }
        }
        let s = d.stats();
        assert!(s.mem_used <= cfg.memcap as u64);
        assert!(s.trackers <= cfg.max_trackers as u64);
    }
});
