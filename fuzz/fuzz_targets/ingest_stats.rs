//! Fuzz the sensor stats ingest (`POST /api/v1/sensor-stats`): any body must never panic, and
//! every non-empty line is either a stored row or a rejection with its line number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin_correlator::ingest::stats::parse_stats_body;

fuzz_target!(|data: &[u8]| {
    let (rows, rejected) = parse_stats_body(data, "FUZZ", 1_700_000_000, 4096);
    let lines = data.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()).count();
    assert_eq!(rows.len() + rejected.len(), lines);
    for r in &rows {
        assert_eq!(r.agency, "FUZZ");
        assert!(!r.sensor.is_empty());
    }
});
