//! Fuzz the correlator's ingest entry: body decoding (identity, gzip, zstd, with a decoded
//! size cap) and NDJSON line parsing. Must never panic; every non-empty line is either an
//! alert or a rejection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin_correlator::ingest::{Encoding, LineContext, decode_body, parse_batch};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let encoding = match selector % 3 {
        0 => Encoding::Identity,
        1 => Encoding::Gzip,
        _ => Encoding::Zstd,
    };
    let ctx = LineContext {
        agency: "FUZZ".into(),
        token_name: "fuzz".into(),
        now_us: 1_700_000_000_000_000,
        max_future_skew_us: 300_000_000,
        max_line_bytes: 4096,
    };
    let Ok(decoded) = decode_body(body, encoding, 1 << 20) else { return };
    if let Ok(batch) = parse_batch(&decoded, &ctx, 10_000) {
        let lines = decoded.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()).count();
        assert_eq!(batch.alerts.len() + batch.rejected.len(), lines);
    }
});
