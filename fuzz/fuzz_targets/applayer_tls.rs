//! Fuzz the TLS record/handshake parser: the input is split into client and server streams
//! and fed in chunks whose size the first byte picks; buffers and the EVE object are read back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin_sensor::Direction::{ToClient, ToServer};
use tocsin_sensor::applayer::events::Events;
use tocsin_sensor::applayer::tls::{TlsBuffer, TlsConfig, TlsState, eve};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let mid = usize::from(seed) * rest.len() / 255;
    let (ts, tc) = rest.split_at(mid.min(rest.len()));
    let step = 1 + usize::from(seed % 97);
    let mut st = TlsState::new(&TlsConfig {
        max_handshake_len: 64 * 1024,
        ..TlsConfig::default()
    });
    let mut ev = Events::new(64);
    for c in ts.chunks(step) {
        st.on_stream(ToServer, c, &mut ev);
    }
    for c in tc.chunks(step) {
        st.on_stream(ToClient, c, &mut ev);
    }
    st.on_close(ToServer);
    st.on_close(ToClient);
    let tx = st.tx();
    for b in [
        TlsBuffer::Sni,
        TlsBuffer::CertSubject,
        TlsBuffer::Ja3String,
        TlsBuffer::Ja3sHash,
    ] {
        let _ = tx.buffer(b, 0);
    }
    let _ = eve::alert_object(tx);
});
