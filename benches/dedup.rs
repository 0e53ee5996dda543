//! Criterion bench of the dedup stage (`tocsin_correlator::dedup`) and the line parser:
//! alerts/s through `DedupEngine::apply` for batches of 10,000 alerts over 2,000 keys, and
//! through `ingest::parse_line` for Tocsin EVE lines.

#![allow(clippy::unwrap_used, missing_docs, reason = "bench harness")]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tocsin_correlator::config::DedupConfig;
use tocsin_correlator::dedup::DedupEngine;
use tocsin_correlator::ingest::{Alert, LineContext, SourceFormat, parse_line};
use tocsin_eve::Timestamp;

const BATCH: u64 = 10_000;
const NOW: i64 = 1_700_000_000_000_000;

fn alerts(offset: u64) -> Vec<Alert> {
    (0..BATCH)
        .map(|i| {
            let n = offset + i;
            let k = n % 2000;
            Alert {
                alert_id: format!("bench:00000000000000b0:{n}"),
                agency: "MOH".into(),
                owner: "MOH".into(),
                sensor: "bench".into(),
                ts: Timestamp(NOW - 60_000_000 + i64::try_from(i).unwrap() * 1000),
                gid: 1,
                signature_id: 2_000_000 + u32::try_from(k % 17).unwrap(),
                rev: 1,
                signature: "BENCH".into(),
                category: "Misc activity".into(),
                severity: 2,
                src_ip: format!("10.0.{}.{}", k / 250, k % 250),
                src_port: 1024,
                dest_ip: format!("192.168.0.{}", k % 13),
                dest_port: 443,
                proto: "TCP".into(),
                app_proto: String::new(),
                flow_id: n,
                source: SourceFormat::Tocsin,
                app: String::new(),
            }
        })
        .collect()
}

fn bench_dedup(c: &mut Criterion) {
    let mut g = c.benchmark_group("dedup");
    g.throughput(Throughput::Elements(BATCH));
    let batch = alerts(0);
    g.bench_function("apply_10k_alerts_2k_keys", |b| {
        let mut engine = DedupEngine::new(&DedupConfig::default());
        b.iter(|| black_box(engine.apply(black_box(&batch), NOW)));
    });
    g.finish();

    let ctx = LineContext {
        agency: "MOH".into(),
        token_name: "bench".into(),
        now_us: NOW,
        max_future_skew_us: 300_000_000,
        max_line_bytes: 65_536,
    };
    let line = br#"{"timestamp":"2023-11-14T22:12:20.000001+0000","flow_id":1,"event_type":"alert","src_ip":"10.0.0.1","src_port":1024,"dest_ip":"192.168.0.1","dest_port":443,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2000001,"rev":1,"signature":"BENCH","category":"Misc activity","severity":2},"app_proto":"tls","sensor":{"id":"bench"},"alert_id":"bench:00000000000000b0:1"}"#;
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_line", |b| {
        b.iter(|| black_box(parse_line(black_box(line), &ctx).unwrap()));
    });
    g.finish();
}

criterion_group!(benches, bench_dedup);
criterion_main!(benches);
