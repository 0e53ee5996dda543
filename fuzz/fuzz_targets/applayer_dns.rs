//! Fuzz the DNS parser: the whole input as one UDP message, then as a TCP stream split at a
//! point the first byte picks; names, buffers and EVE objects are read back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin_sensor::Direction::{ToClient, ToServer};
use tocsin_sensor::applayer::dns::{DnsBuffer, DnsConfig, DnsState, eve, parser};
use tocsin_sensor::applayer::events::Events;

fuzz_target!(|data: &[u8]| {
    let _ = parser::parse_message(data, parser::DnsLimits::default());
    let mut st = DnsState::new(&DnsConfig {
        max_txs: 8,
        ..DnsConfig::default()
    });
    let mut ev = Events::new(64);
    st.on_datagram(ToServer, data, &mut ev);
    st.on_datagram(ToClient, data, &mut ev);
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (a, b) = data.split_at(cut);
    st.on_stream(ToServer, a, &mut ev);
    st.on_stream(ToServer, b, &mut ev);
    st.on_gap(ToServer);
    st.on_stream(ToServer, data, &mut ev);
    st.on_close(ToServer, &mut ev);
    for tx in st.txs() {
        let _ = tx.buffer(DnsBuffer::Query, 0);
        let _ = tx.buffer(DnsBuffer::ResponseName, 1);
        let _ = eve::alert_object(tx);
    }
});
