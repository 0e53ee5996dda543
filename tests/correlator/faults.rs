//! Fault tests: ClickHouse stopped for 30 s, the correlator SIGKILLed, the forwarding
//! process SIGKILLed. Each must end with every alert stored exactly once.

use std::path::Path;
use std::time::Duration;

use crate::common::{
    CorrelatorProc, ForwardProc, ch_query, create_token, eve_line, fresh_db, now_us,
    start_clickhouse, wait_until,
};

fn write_alerts(path: &Path, sensor: &str, n: u64) {
    write_alert_range(path, sensor, 1..=n);
}

/// Alerts with sequence numbers `seqs` (a sensor's stream continues across files).
fn write_alert_range(path: &Path, sensor: &str, seqs: std::ops::RangeInclusive<u64>) {
    let t0 = now_us() - 86_400_000_000;
    let mut text = String::with_capacity(seqs.clone().count() * 400);
    for i in seqs {
        let ts = t0 + i64::try_from(i).unwrap() * 1000;
        let dst = format!("10.50.{}.{}", (i / 250) % 250, i % 250);
        text.push_str(&eve_line(
            sensor,
            i,
            ts,
            3000 + u32::try_from(i % 50).unwrap(),
            "Misc activity",
            "192.0.2.10",
            &dst,
            443,
        ));
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

fn count(url: &str, db: &str) -> u64 {
    ch_query(url, &format!("SELECT count() FROM {db}.alerts"))
        .parse()
        .unwrap_or(0)
}

fn assert_exactly_once(url: &str, db: &str, n: u64) {
    assert_eq!(
        ch_query(
            url,
            &format!("SELECT count(), uniqExact(alert_id) FROM {db}.alerts")
        ),
        format!("{n}\t{n}"),
        "every alert stored, none twice (count() counts physical rows, before any merge)"
    );
    assert_eq!(
        ch_query(
            url,
            &format!("SELECT sum(alert_count) FROM {db}.incidents FINAL")
        ),
        n.to_string()
    );
}

#[test]
fn clickhouse_down_30s_while_50000_alerts_are_forwarded() {
    // Deterministic order of events: the first 5,000 alerts are delivered while ClickHouse
    // runs; then ClickHouse stops and the sensor sends the other 45,000 while it is down for
    // 30 s; it comes back and everything must end up stored exactly once.
    let dir = tempfile::tempdir().unwrap();
    let mut ch = start_clickhouse(Some(&dir.path().join("ch")));
    let url = ch.url();
    let db = fresh_db("chdown");
    let token = create_token(&url, &db, "sensor", "MOH", "edge-f1");
    let c = CorrelatorProc::start(&url, &db, 0, None);
    let spool = dir.path().join("spool");
    let forward = |file: &Path| {
        ForwardProc::start(&[
            file.to_str().unwrap(),
            "--forward",
            &c.url,
            "--token",
            &token,
            "--spool",
            spool.to_str().unwrap(),
            "--batch-max-alerts",
            "5000",
            "--batch-max-delay",
            "50ms",
        ])
    };
    let first = dir.path().join("first.ndjson");
    write_alert_range(&first, "edge-f1", 1..=5_000);
    let mut fwd = forward(&first);
    assert!(
        fwd.wait(),
        "first part delivered: {:?}",
        fwd.lines.lock().unwrap()
    );
    assert_eq!(count(&url, &db), 5_000);
    ch.stop();
    let stopped = std::time::Instant::now();
    let rest = dir.path().join("rest.ndjson");
    write_alert_range(&rest, "edge-f1", 5_001..=50_000);
    let mut fwd = forward(&rest);
    // While it is down the correlator answers 503 and the forwarder keeps retrying.
    std::thread::sleep(Duration::from_secs(30));
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/alerts", c.url))
        .bearer_auth(&token)
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    ch.start().unwrap();
    eprintln!("ClickHouse was down for {:?}", stopped.elapsed());
    let back = std::time::Instant::now();
    assert!(
        fwd.wait(),
        "forwarder delivered everything: {:?}",
        fwd.lines.lock().unwrap()
    );
    eprintln!(
        "delivered the rest {:?} after ClickHouse came back",
        back.elapsed()
    );
    let stats = fwd.wait_line("stats", Duration::from_secs(1));
    assert!(stats.contains("pending_bytes=0"), "{stats}");
    assert!(!stats.contains("retries=0 "), "it had to retry: {stats}");
    assert_exactly_once(&url, &db, 50_000);
}

#[test]
fn correlator_sigkilled_mid_stream_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let ch = start_clickhouse(Some(&dir.path().join("ch")));
    let url = ch.url();
    let db = fresh_db("corrkill");
    let token = create_token(&url, &db, "sensor", "MOH", "edge-f2");
    let mut c = CorrelatorProc::start(&url, &db, 0, None);
    let file = dir.path().join("alerts.ndjson");
    write_alerts(&file, "edge-f2", 20_000);
    let spool = dir.path().join("spool");
    let mut fwd = ForwardProc::start(&[
        file.to_str().unwrap(),
        "--forward",
        &c.url,
        "--token",
        &token,
        "--spool",
        spool.to_str().unwrap(),
        "--batch-max-alerts",
        "200",
        "--batch-max-delay",
        "20ms",
    ]);
    assert!(
        wait_until(Duration::from_secs(60), || count(&url, &db) >= 2000),
        "delivery under way"
    );
    let port = c.port;
    c.kill(); // SIGKILL, with requests in flight
    let at_kill = count(&url, &db);
    assert!(at_kill < 20_000, "killed mid-stream ({at_kill} stored)");
    std::thread::sleep(Duration::from_secs(2));
    let _c = CorrelatorProc::start(&url, &db, port, None);
    assert!(
        fwd.wait(),
        "forwarder delivered everything after the restart"
    );
    assert_exactly_once(&url, &db, 20_000);
}

#[test]
fn forwarder_sigkilled_then_restarted_resends_from_its_spool() {
    let dir = tempfile::tempdir().unwrap();
    let ch = start_clickhouse(Some(&dir.path().join("ch")));
    let url = ch.url();
    let db = fresh_db("fwdkill");
    let token = create_token(&url, &db, "sensor", "MOH", "edge-f3");
    let port = crate::common::free_port();
    let file = dir.path().join("alerts.ndjson");
    write_alerts(&file, "edge-f3", 10_000);
    let spool = dir.path().join("spool");
    let spool_s = spool.to_str().unwrap().to_owned();
    let fwd_url = format!("http://127.0.0.1:{port}");
    // Phase 1: no correlator yet. Everything is spooled, nothing acknowledged; SIGKILL.
    let mut f1 = ForwardProc::start(&[
        file.to_str().unwrap(),
        "--forward",
        &fwd_url,
        "--token",
        &token,
        "--spool",
        &spool_s,
    ]);
    assert_eq!(
        f1.wait_line("submitted=", Duration::from_secs(60)),
        "submitted=10000"
    );
    let _ = f1.child.kill();
    let _ = f1.child.wait();
    // Phase 2: correlator up; a drain-only restart resends the spool: all 10,000 arrive.
    let c = CorrelatorProc::start(&url, &db, port, None);
    let mut f2 = ForwardProc::start(&[
        "--drain-only",
        "--forward",
        &c.url,
        "--token",
        &token,
        "--spool",
        &spool_s,
    ]);
    assert!(f2.wait());
    let stats = f2.wait_line("stats", Duration::from_secs(1));
    assert!(stats.contains("recovered=10000"), "{stats}");
    assert!(stats.contains("accepted=10000"), "{stats}");
    assert_exactly_once(&url, &db, 10_000);
    // Phase 3: a second file, killed mid-delivery, then rerun over the same file (as a
    // restarted sensor re-reading its input): the spool resends, duplicates are recognised.
    let file2 = dir.path().join("alerts2.ndjson");
    write_alerts(&file2, "edge-f3b", 20_000);
    let mut f3 = ForwardProc::start(&[
        file2.to_str().unwrap(),
        "--forward",
        &c.url,
        "--token",
        &token,
        "--spool",
        &spool_s,
        "--batch-max-alerts",
        "100",
        "--batch-max-delay",
        "10ms",
    ]);
    assert!(
        wait_until(Duration::from_secs(60), || count(&url, &db) >= 10_500),
        "delivery under way"
    );
    let _ = f3.child.kill();
    let _ = f3.child.wait();
    let mid = count(&url, &db);
    assert!(mid < 30_000, "killed mid-file ({mid} stored)");
    let mut f4 = ForwardProc::start(&[
        file2.to_str().unwrap(),
        "--forward",
        &c.url,
        "--token",
        &token,
        "--spool",
        &spool_s,
    ]);
    assert!(f4.wait());
    let stats = f4.wait_line("stats", Duration::from_secs(1));
    assert!(
        !stats.contains("duplicates=0 "),
        "the rerun met already-stored alerts: {stats}"
    );
    assert_exactly_once(&url, &db, 30_000);
}
