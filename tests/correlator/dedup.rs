//! Dedup of a 10,000-alert scanner burst into the expected incidents.

use crate::common::{
    CorrelatorProc, ch_query, clickhouse, create_token, eve_line, fresh_db, now_us, post_alerts,
};

const CONFIG: &str = r#"
[dedup]
window = "5m"
max_lifetime = "24h"
key = ["signature_id", "src_ip", "dest_ip"]
max_set = 100

[[dedup.override]]
name = "scan-by-source"
categories = ["Attempted Information Leak"]
key = ["src_ip"]
"#;

#[test]
fn scanner_burst_of_10000_alerts_becomes_two_incidents() {
    let ch = clickhouse();
    let db = fresh_db("burst");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("correlator.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let token = create_token(&ch.url(), &db, "sensor", "MOH", "edge-scan");
    let c = CorrelatorProc::start(&ch.url(), &db, 0, Some(&cfg));
    // One scanner, 10,000 alerts over 2,500 hosts x 4 ports, 3 signatures of the scan
    // category. Phase 1: alerts 0..5000 every 100 ms (0-500 s). Then a 400 s silence
    // (> the 5 min window). Phase 2: 5000..10000 from 900 s on. Expected by the dedup rules:
    // one incident per phase, keyed by source only: 2 incidents of 5,000 alerts.
    // Plus 40 unrelated alerts (sid 7, 4 sources x 10 targets) under the default key:
    // 40 distinct (sid, src, dst) → 40 incidents of 1.
    let t0 = now_us() - 7_200_000_000;
    let mut lines = Vec::new();
    for i in 0..10_000u64 {
        let ii = i64::try_from(i).unwrap();
        let ts = if i < 5000 {
            t0 + ii * 100_000
        } else {
            t0 + 900_000_000 + (ii - 5000) * 100_000
        };
        let host = format!("10.20.{}.{}", (i / 4) / 250, (i / 4) % 250);
        let port = [22u16, 80, 443, 3389][usize::try_from(i % 4).unwrap()];
        lines.push(eve_line(
            "edge-scan",
            i + 1,
            ts,
            2_010_935 + u32::try_from(i % 3).unwrap(),
            "Attempted Information Leak",
            "198.51.100.66",
            &host,
            port,
        ));
    }
    for i in 0..40u64 {
        let src = format!("10.30.0.{}", i % 4);
        let dst = format!("10.40.0.{}", i / 4);
        lines.push(eve_line(
            "edge-scan",
            20_000 + i,
            t0 + i64::try_from(i).unwrap() * 1_000_000,
            7,
            "Misc activity",
            &src,
            &dst,
            80,
        ));
    }
    for chunk in lines.chunks(1000) {
        let (st, a) = post_alerts(&c.url, &token, (chunk.join("\n") + "\n").into_bytes(), None);
        assert_eq!(st, 200, "{a}");
        assert_eq!(a["accepted"].as_u64(), Some(chunk.len() as u64));
    }
    let url = ch.url();
    assert_eq!(
        ch_query(&url, &format!("SELECT count() FROM {db}.alerts")),
        "10040"
    );
    let scans = ch_query(
        &url,
        &format!(
            "SELECT alert_count, length(dest_ips), arrayStringConcat(arrayMap(x -> toString(x), signature_ids), ','), dedup_key \
             FROM {db}.incidents FINAL WHERE rule = 'scan-by-source' ORDER BY first_seen_us"
        ),
    );
    assert_eq!(
        scans,
        "5000\t100\t2010935,2010936,2010937\tsrc_ip=198.51.100.66\n5000\t100\t2010935,2010936,2010937\tsrc_ip=198.51.100.66",
        "two incidents, dest set capped at max_set = 100"
    );
    assert_eq!(
        ch_query(
            &url,
            &format!(
                "SELECT count(), sum(alert_count) FROM {db}.incidents FINAL WHERE rule = 'default'"
            )
        ),
        "40\t40"
    );
    // Each alert is linked to its incident exactly once, and carries the incident's ID.
    assert_eq!(
        ch_query(
            &url,
            &format!("SELECT count(), uniqExact(alert_id) FROM {db}.incident_alerts FINAL")
        ),
        "10040\t10040"
    );
    assert_eq!(
        ch_query(
            &url,
            &format!(
                "SELECT count() FROM {db}.alerts WHERE incident_id IN (SELECT id FROM {db}.incidents FINAL)"
            )
        ),
        "10040"
    );
}
