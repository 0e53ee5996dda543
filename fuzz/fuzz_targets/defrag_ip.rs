//! Fuzzes IP defragmentation: the input is a sequence of IP packets, each prefixed by a
//! 2-byte big-endian length; every one that decodes as a fragment goes to a defragmenter
//! with small caps. Checks: no panic, caps hold, rebuilt datagrams decode as IP.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin_sensor::decode::decode_ip;
use tocsin_sensor::defrag::{DefragConfig, Defragmenter, OverlapPolicy};
use tocsin_sensor::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let cfg = DefragConfig {
        policy: OverlapPolicy::ALL[usize::from(sel) % OverlapPolicy::ALL.len()],
        memcap: 64 * 1024,
        max_trackers: 8,
        max_fragments: 64,
        timeout_secs: 2,
    };
    let mut d = Defragmenter::new(cfg.clone());
    let mut n = 0i64;
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len));
        let Some((pkt, tail)) = tail.split_at_checked(len.min(tail.len())) else {
            return;
        };
        rest = tail;
        n += 1;
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
