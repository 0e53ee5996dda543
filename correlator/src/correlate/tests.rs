//! Table-style tests of the three rule kinds; expected firings are worked out by hand from
//! the semantics in the module header.

use tocsin_eve::Timestamp;

use super::*;
use crate::ingest::SourceFormat;

fn alert(id: u32, ts_s: i64, sid: u32, src: &str, dst: &str) -> Alert {
    Alert {
        alert_id: format!("s:0000000000000001:{id}"),
        agency: "MOH".into(),
        owner: "MOH".into(),
        sensor: "s".into(),
        ts: Timestamp::from_secs_micros(ts_s, 0),
        gid: 1,
        signature_id: sid,
        rev: 1,
        signature: format!("sig {sid}"),
        category: "Misc".into(),
        severity: 3,
        src_ip: src.into(),
        src_port: 1000,
        dest_ip: dst.into(),
        dest_port: 22,
        proto: "TCP".into(),
        app_proto: String::new(),
        flow_id: 0,
        source: SourceFormat::Tocsin,
        app: String::new(),
    }
}

const NOW: i64 = 1_700_000_000_000_000;

fn engine(text: &str) -> CorrelationEngine {
    CorrelationEngine::new(parse_rules(text, "test").unwrap(), 100)
}

const THRESHOLD: &str = r#"
[[rule]]
name = "brute"
kind = "threshold"
signature_ids = [10]
group_by = ["src_ip"]
count = 3
timeframe = "60s"
severity = 1
"#;

fn raised(out: &CorrelateOutput) -> Vec<(u64, String)> {
    out.rows
        .iter()
        .map(|r| (r.alert_count, r.status.clone()))
        .collect()
}

#[test]
fn threshold_fires_at_the_nth_alert_within_t() {
    let mut e = engine(THRESHOLD);
    // Two alerts: nothing yet.
    let out = e.apply(
        &[alert(1, 0, 10, "A", "V"), alert(2, 20, 10, "A", "V")],
        NOW,
    );
    assert!(out.rows.is_empty() && out.links.is_empty());
    // Third at t=40 (40 - 0 < 60): fires with all three members.
    let out = e.apply(&[alert(3, 40, 10, "A", "V")], NOW);
    assert_eq!(raised(&out), vec![(3, "open".to_owned())]);
    assert_eq!(out.links.len(), 3);
    assert_eq!(out.rows[0].severity, 1, "rule severity wins");
    assert_eq!(out.rows[0].kind, "threshold");
    let id = out.rows[0].id.clone();
    assert_eq!(
        id,
        crate::dedup::incident_id("MOH", "brute\u{1f}agency=MOH|src_ip=A", 0).to_string()
    );
    // t=90: within 60 s of the last member (40): joins.
    let out = e.apply(&[alert(4, 90, 10, "A", "V")], NOW);
    assert_eq!(raised(&out), vec![(4, "open".to_owned())]);
    assert_eq!(out.rows[0].id, id);
    // t=200: 110 s gap ends it (closed row); one fresh alert does not fire.
    let out = e.apply(&[alert(5, 200, 10, "A", "V")], NOW);
    assert_eq!(raised(&out), vec![(4, "closed".to_owned())]);
    assert!(out.links.is_empty());
}

#[test]
fn threshold_boundary_and_non_matching() {
    let mut e = engine(THRESHOLD);
    // 0, 30, 60: at t=60 the alert at 0 is exactly T old and drops out: no fire.
    let out = e.apply(
        &[
            alert(1, 0, 10, "A", "V"),
            alert(2, 30, 10, "A", "V"),
            alert(3, 60, 10, "A", "V"),
        ],
        NOW,
    );
    assert!(out.rows.is_empty());
    // Other sid and other source do not count.
    let out = e.apply(
        &[alert(4, 61, 11, "A", "V"), alert(5, 62, 10, "B", "V")],
        NOW,
    );
    assert!(out.rows.is_empty());
    // t=70: 30, 60, 70 are within 60 s: fires.
    let out = e.apply(&[alert(6, 70, 10, "A", "V")], NOW);
    assert_eq!(raised(&out), vec![(3, "open".to_owned())]);
    assert_eq!(out.rows[0].first_seen_us, 30_000_000);
}

const DISTINCT: &str = r#"
[[rule]]
name = "scan"
kind = "distinct_count"
group_by = ["src_ip"]
distinct = "dest_ip"
count = 3
timeframe = "60s"
"#;

#[test]
fn distinct_count_counts_distinct_values_only() {
    let mut e = engine(DISTINCT);
    let out = e.apply(
        &[
            alert(1, 0, 1, "S", "d1"),
            alert(2, 1, 1, "S", "d1"),
            alert(3, 2, 1, "S", "d1"),
            alert(4, 3, 1, "S", "d2"),
        ],
        NOW,
    );
    assert!(out.rows.is_empty(), "four alerts but two distinct targets");
    let out = e.apply(&[alert(5, 4, 1, "S", "d3")], NOW);
    assert_eq!(raised(&out), vec![(3, "open".to_owned())]);
    let mut dests = out.rows[0].dest_ips.clone();
    dests.sort();
    assert_eq!(dests, vec!["d1", "d2", "d3"]);
}

#[test]
fn distinct_count_forgets_targets_older_than_t() {
    let mut e = engine(DISTINCT);
    let out = e.apply(
        &[
            alert(1, 0, 1, "S", "d1"),
            alert(2, 20, 1, "S", "d2"),
            alert(3, 70, 1, "S", "d3"),
        ],
        NOW,
    );
    assert!(out.rows.is_empty(), "d1 is 70 s old when d3 arrives");
    let out = e.apply(&[alert(4, 71, 1, "S", "d4")], NOW);
    assert_eq!(raised(&out), vec![(3, "open".to_owned())]);
}

const SEQUENCE: &str = r#"
[[rule]]
name = "exploit-then-beacon"
kind = "sequence"
timeframe = "10m"
[[rule.step]]
signature_ids = [100]
host = "dest_ip"
[[rule.step]]
signature_ids = [200]
host = "src_ip"
"#;

#[test]
fn sequence_fires_only_in_order_within_t_on_the_same_host() {
    // A on H, then B from H 100 s later: fires.
    let mut e = engine(SEQUENCE);
    let out = e.apply(
        &[alert(1, 0, 100, "E", "H"), alert(2, 100, 200, "H", "C2")],
        NOW,
    );
    assert_eq!(raised(&out), vec![(2, "open".to_owned())]);
    let steps: Vec<u8> = out.links.iter().map(|l| l.step).collect();
    assert_eq!(steps, vec![0, 1]);
    assert_eq!(out.rows[0].kind, "sequence");
    assert!(out.rows[0].version > 0);

    // B before A: nothing.
    let mut e = engine(SEQUENCE);
    let out = e.apply(
        &[alert(1, 0, 200, "H", "C2"), alert(2, 100, 100, "E", "H")],
        NOW,
    );
    assert!(out.rows.is_empty());

    // A then B after 700 s (> 10 min): nothing.
    let mut e = engine(SEQUENCE);
    let out = e.apply(
        &[alert(1, 0, 100, "E", "H"), alert(2, 700, 200, "H", "C2")],
        NOW,
    );
    assert!(out.rows.is_empty());

    // A on H, B from another host: nothing.
    let mut e = engine(SEQUENCE);
    let out = e.apply(
        &[alert(1, 0, 100, "E", "H"), alert(2, 100, 200, "X", "C2")],
        NOW,
    );
    assert!(out.rows.is_empty());

    // Across batches, exactly at T: fires (step within T of the run's first alert).
    let mut e = engine(SEQUENCE);
    let out = e.apply(&[alert(1, 0, 100, "E", "H")], NOW);
    assert!(out.rows.is_empty());
    let out = e.apply(&[alert(2, 600, 200, "H", "C2")], NOW);
    assert_eq!(out.rows.len(), 1);
}

#[test]
fn rollback_forgets_a_failed_batch() {
    let mut e = engine(THRESHOLD);
    let _ = e.apply(&[alert(1, 0, 10, "A", "V"), alert(2, 1, 10, "A", "V")], NOW);
    let out = e.apply(&[alert(3, 2, 10, "A", "V")], NOW);
    assert_eq!(out.rows.len(), 1);
    e.rollback(out.undo);
    let again = e.apply(&[alert(3, 2, 10, "A", "V")], NOW);
    assert_eq!(
        raised(&again),
        vec![(3, "open".to_owned())],
        "same result on retry"
    );
}

#[test]
fn sweep_closes_idle_incidents() {
    let mut e = engine(THRESHOLD);
    let _ = e.apply(
        &[
            alert(1, 0, 10, "A", "V"),
            alert(2, 1, 10, "A", "V"),
            alert(3, 2, 10, "A", "V"),
        ],
        NOW,
    );
    assert!(e.sweep(NOW + 60_000_000).is_empty());
    let rows = e.sweep(NOW + 60_001_000);
    assert_eq!(raised_rows(&rows), vec![(3, "closed".to_owned())]);
}

fn raised_rows(rows: &[IncidentRow]) -> Vec<(u64, String)> {
    rows.iter()
        .map(|r| (r.alert_count, r.status.clone()))
        .collect()
}
