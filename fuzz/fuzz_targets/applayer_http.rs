//! Fuzz the HTTP/1.x stream parser: the input is split into a request and a response stream
//! and fed in interleaved chunks whose size the first byte picks, then both directions close.
//! Every transaction's buffers and EVE object are read back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin_sensor::Direction::{ToClient, ToServer};
use tocsin_sensor::applayer::events::Events;
use tocsin_sensor::applayer::http::{HttpBuffer, HttpConfig, HttpState, eve};

const BUFFERS: [HttpBuffer; 8] = [
    HttpBuffer::Uri,
    HttpBuffer::Host,
    HttpBuffer::Header,
    HttpBuffer::HeaderNames,
    HttpBuffer::Start,
    HttpBuffer::RequestBody,
    HttpBuffer::ResponseBody,
    HttpBuffer::StatCode,
];

fuzz_target!(|data: &[u8]| {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let mid = usize::from(seed) * rest.len() / 255;
    let (req, resp) = rest.split_at(mid.min(rest.len()));
    let step = 1 + usize::from(seed % 61);
    let cfg = HttpConfig {
        max_line_len: 512,
        max_headers: 16,
        max_txs: 8,
        ..HttpConfig::default()
    };
    let mut st = HttpState::new(&cfg);
    let mut ev = Events::new(64);
    let (mut a, mut b) = (req.chunks(step), resp.chunks(step));
    loop {
        let (x, y) = (a.next(), b.next());
        if x.is_none() && y.is_none() {
            break;
        }
        if let Some(x) = x {
            st.on_stream(ToServer, x, &mut ev);
        }
        if let Some(y) = y {
            st.on_stream(ToClient, y, &mut ev);
        }
    }
    st.on_close(ToServer, &mut ev);
    st.on_close(ToClient, &mut ev);
    for tx in st.txs() {
        for b in BUFFERS {
            let _ = tx.buffer(b, ToServer);
            let _ = tx.buffer(b, ToClient);
        }
        let _ = tx.multi_buffer(HttpBuffer::RequestHeader, ToServer, 0);
        let _ = eve::alert_object(tx);
    }
});
