//! The three correlation rule kinds, end to end through HTTP and ClickHouse.

use crate::common::{
    CorrelatorProc, ch_query, clickhouse, create_token, eve_line, fresh_db, now_us, post_alerts,
};

const RULES: &str = r#"
[[rule]]
name = "ssh-brute"
kind = "threshold"
signature_ids = [2001219]
group_by = ["src_ip"]
count = 5
timeframe = "60s"
severity = 1

[[rule]]
name = "sweep"
kind = "distinct_count"
signature_ids = [2002910]
group_by = ["src_ip"]
distinct = "dest_ip"
count = 4
timeframe = "2m"

[[rule]]
name = "exploit-then-beacon"
kind = "sequence"
timeframe = "10m"
[[rule.step]]
signature_ids = [2100001]
host = "dest_ip"
[[rule.step]]
signature_ids = [2100002]
host = "src_ip"
"#;

#[test]
fn each_rule_kind_fires_exactly_when_it_should() {
    let ch = clickhouse();
    let db = fresh_db("rules");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let cfg = dir.path().join("correlator.toml");
    std::fs::write(
        &cfg,
        format!(
            "[correlation]\nrules_file = {:?}\n",
            rules.display().to_string()
        ),
    )
    .unwrap();
    let token = create_token(&ch.url(), &db, "sensor", "MOH", "edge-r");
    let c = CorrelatorProc::start(&ch.url(), &db, 0, Some(&cfg));
    let t0 = now_us() - 3_600_000_000;
    let s = |n: i64| t0 + n * 1_000_000;
    let mut seq = 0u64;
    let mut line = |ts: i64, sid: u32, src: &str, dst: &str| {
        seq += 1;
        eve_line("edge-r", seq, ts, sid, "Misc", src, dst, 22)
    };
    let lines = vec![
        // Threshold: A makes 5 attempts in 40 s → fires. B makes 5 attempts spread over
        // 100 s (never 5 within 60 s) → does not.
        line(s(0), 2_001_219, "203.0.113.1", "10.0.0.5"),
        line(s(10), 2_001_219, "203.0.113.1", "10.0.0.5"),
        line(s(20), 2_001_219, "203.0.113.1", "10.0.0.5"),
        line(s(30), 2_001_219, "203.0.113.1", "10.0.0.5"),
        line(s(40), 2_001_219, "203.0.113.1", "10.0.0.5"),
        line(s(0), 2_001_219, "203.0.113.2", "10.0.0.5"),
        line(s(25), 2_001_219, "203.0.113.2", "10.0.0.5"),
        line(s(50), 2_001_219, "203.0.113.2", "10.0.0.5"),
        line(s(75), 2_001_219, "203.0.113.2", "10.0.0.5"),
        line(s(100), 2_001_219, "203.0.113.2", "10.0.0.5"),
        // Distinct count: C touches 4 distinct hosts (one twice) in 90 s → fires; D touches
        // the same host 6 times → does not.
        line(s(0), 2_002_910, "203.0.113.3", "10.0.1.1"),
        line(s(30), 2_002_910, "203.0.113.3", "10.0.1.2"),
        line(s(31), 2_002_910, "203.0.113.3", "10.0.1.2"),
        line(s(60), 2_002_910, "203.0.113.3", "10.0.1.3"),
        line(s(90), 2_002_910, "203.0.113.3", "10.0.1.4"),
        line(s(0), 2_002_910, "203.0.113.4", "10.0.1.9"),
        line(s(1), 2_002_910, "203.0.113.4", "10.0.1.9"),
        line(s(2), 2_002_910, "203.0.113.4", "10.0.1.9"),
        line(s(3), 2_002_910, "203.0.113.4", "10.0.1.9"),
        line(s(4), 2_002_910, "203.0.113.4", "10.0.1.9"),
        line(s(5), 2_002_910, "203.0.113.4", "10.0.1.9"),
        // Sequence: exploit on 10.0.2.1, then 10.0.2.1 beacons 5 min later → fires.
        // 10.0.2.2 beacons first, exploit later → does not. 10.0.2.3: exploit, beacon
        // 11 min later → does not.
        line(s(0), 2_100_001, "198.51.100.9", "10.0.2.1"),
        line(s(300), 2_100_002, "10.0.2.1", "192.0.2.77"),
        line(s(0), 2_100_002, "10.0.2.2", "192.0.2.77"),
        line(s(60), 2_100_001, "198.51.100.9", "10.0.2.2"),
        line(s(0), 2_100_001, "198.51.100.9", "10.0.2.3"),
        line(s(660), 2_100_002, "10.0.2.3", "192.0.2.77"),
    ];
    let (st, a) = post_alerts(&c.url, &token, (lines.join("\n") + "\n").into_bytes(), None);
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["accepted"].as_u64(), Some(lines.len() as u64));
    let url = ch.url();
    let got = ch_query(
        &url,
        &format!(
            "SELECT kind, rule, dedup_key, alert_count, severity FROM {db}.incidents FINAL \
             WHERE kind != 'dedup' ORDER BY rule"
        ),
    );
    assert_eq!(
        got,
        "sequence\texploit-then-beacon\tagency=MOH|host=10.0.2.1\t2\t2\n\
         threshold\tssh-brute\tagency=MOH|src_ip=203.0.113.1\t5\t1\n\
         distinct_count\tsweep\tagency=MOH|src_ip=203.0.113.3\t4\t2"
    );
    // Member links: 5 + 4 + 2, the sequence with its steps.
    assert_eq!(
        ch_query(
            &url,
            &format!(
                "SELECT count() FROM {db}.incident_alerts FINAL WHERE incident_id IN (SELECT id FROM {db}.incidents FINAL WHERE kind != 'dedup')"
            )
        ),
        "11"
    );
    assert_eq!(
        ch_query(
            &url,
            &format!(
                "SELECT groupArray(step) FROM (SELECT step FROM {db}.incident_alerts FINAL WHERE incident_id IN (SELECT id FROM {db}.incidents FINAL WHERE kind = 'sequence') ORDER BY step)"
            )
        ),
        "[0,1]"
    );
}
