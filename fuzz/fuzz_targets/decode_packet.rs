//! Fuzzes the packet decoder on every link type: decode never panics, and what it returns
//! stays inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin_sensor::Timestamp;
use tocsin_sensor::decode::{LinkType, decode};

fuzz_target!(|data: &[u8]| {
    let Some((&link, frame)) = data.split_first() else { return };
    let link = LinkType::from_pcap(match link % 6 {
        0 => 1,
        1 => 113,
        2 => 276,
        3 => 0,
        4 => 101,
        _ => 108,
    });
    if let Ok(pkt) = decode(link, frame, Timestamp(0), 1) {
        assert!(pkt.payload.len() <= frame.len());
        let _ = pkt.checksums_valid();
    }
});
