//! Ingest through HTTP: exactly-once storage, Suricata EVE files, bad input, the API.

use std::io::Write as _;

use crate::common::{
    CorrelatorProc, ch_query, clickhouse, create_token, eve_line, fresh_db, now_us, post_alerts,
    shared_testdata,
};

fn batch(sensor: &str, seqs: std::ops::Range<u64>, base_us: i64) -> Vec<u8> {
    let mut body = String::new();
    for s in seqs {
        let ts = base_us + i64::try_from(s).unwrap() * 1000;
        body.push_str(&eve_line(
            sensor,
            s,
            ts,
            1000 + u32::try_from(s % 3).unwrap(),
            "Misc activity",
            "10.1.1.1",
            "10.2.2.2",
            80,
        ));
        body.push('\n');
    }
    body.into_bytes()
}

#[test]
fn duplicate_delivery_is_stored_once_across_restarts() {
    let ch = clickhouse();
    let db = fresh_db("dup");
    let token = create_token(&ch.url(), &db, "sensor", "MOH", "edge-1");
    let mut c = CorrelatorProc::start(&ch.url(), &db, 0, None);
    let base = now_us() - 3_600_000_000;
    let (st, a) = post_alerts(&c.url, &token, batch("edge-1", 1..101, base), None);
    assert_eq!(st, 200, "{a}");
    assert_eq!(
        (a["accepted"].as_u64(), a["duplicates"].as_u64()),
        (Some(100), Some(0))
    );
    // Same batch again: all duplicates.
    let (_, a) = post_alerts(&c.url, &token, batch("edge-1", 1..101, base), None);
    assert_eq!(
        (a["accepted"].as_u64(), a["duplicates"].as_u64()),
        (Some(0), Some(100))
    );
    // Repeats inside one body count once.
    let mut twice = batch("edge-1", 101..111, base);
    twice.extend(batch("edge-1", 101..111, base));
    let (_, a) = post_alerts(&c.url, &token, twice, None);
    assert_eq!(
        (a["accepted"].as_u64(), a["duplicates"].as_u64()),
        (Some(10), Some(10))
    );
    // Stored so far: seq 1..=110. Restart: the in-memory cache is gone; ClickHouse still
    // knows. 50..=159 holds 61 stored (50..=110) and 49 new (111..=159).
    let port = c.port;
    c.kill();
    let c = CorrelatorProc::start(&ch.url(), &db, port, None);
    let (_, a) = post_alerts(&c.url, &token, batch("edge-1", 50..160, base), None);
    assert_eq!(
        (a["accepted"].as_u64(), a["duplicates"].as_u64()),
        (Some(49), Some(61))
    );
    assert_eq!(
        ch_query(
            &ch.url(),
            &format!("SELECT count(), uniqExact(alert_id) FROM {db}.alerts")
        ),
        "159\t159"
    );
    // Every stored alert is a member of exactly one dedup incident, counted once.
    assert_eq!(
        ch_query(
            &ch.url(),
            &format!("SELECT sum(alert_count) FROM {db}.incidents FINAL WHERE kind = 'dedup'")
        ),
        "159"
    );
    assert_eq!(
        ch_query(
            &ch.url(),
            &format!("SELECT count() FROM {db}.incidents FINAL WHERE kind = 'dedup'")
        ),
        "3",
        "three signatures, one src/dst pair, all within the window: three incidents (the restart restored them)"
    );
}

#[test]
fn suricata_eve_files_end_to_end() {
    let Some(data) = shared_testdata() else {
        return;
    };
    let dir = data.join("pcaps/suricata-7-et-open");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".eve.json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 9);
    let ch = clickhouse();
    let db = fresh_db("suricata");
    let token = create_token(&ch.url(), &db, "sensor", "MIC", "suricata-1");
    let c = CorrelatorProc::start(&ch.url(), &db, 0, None);
    let mut total = 0u64;
    for (i, f) in files.iter().enumerate() {
        let body = std::fs::read(f).unwrap();
        let lines = body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64;
        total += lines;
        // Alternate encodings: identity, gzip, zstd.
        let (body, enc) = match i % 3 {
            0 => (body, None),
            1 => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(&body).unwrap();
                (e.finish().unwrap(), Some("gzip"))
            }
            _ => (zstd::encode_all(&body[..], 3).unwrap(), Some("zstd")),
        };
        let (st, a) = post_alerts(&c.url, &token, body, enc);
        assert_eq!(st, 200, "{}: {a}", f.display());
        assert_eq!(a["accepted"].as_u64(), Some(lines), "{}: {a}", f.display());
        assert_eq!(a["rejected_total"].as_u64(), Some(0));
    }
    assert_eq!(total, 491, "the README says 491 alerts");
    let url = ch.url();
    assert_eq!(
        ch_query(
            &url,
            &format!(
                "SELECT count(), uniqExact(alert_id), countIf(source = 'suricata') FROM {db}.alerts"
            )
        ),
        "491\t491\t491"
    );
    // The README's 89 adds up each pcap's distinct signature IDs; across all nine files
    // 57 are distinct (counted with a separate script over the EVE files).
    assert_eq!(
        ch_query(
            &url,
            &format!("SELECT uniqExact(signature_id) FROM {db}.alerts")
        ),
        "57"
    );
    assert_eq!(
        ch_query(&url, &format!("SELECT DISTINCT agency FROM {db}.alerts")),
        "MIC",
        "tagged with the token's agency"
    );
    // The first two aurora alerts: sid 2002752 between .206 and .202, one per direction.
    assert_eq!(
        ch_query(
            &url,
            &format!(
                "SELECT alert_count FROM {db}.incidents FINAL WHERE has(signature_ids, 2002752) AND has(src_ips, '192.168.100.206') AND has(dest_ips, '192.168.100.202')"
            )
        ),
        ch_query(
            &url,
            &format!(
                "SELECT count() FROM {db}.alerts WHERE signature_id = 2002752 AND src_ip = '192.168.100.206' AND dest_ip = '192.168.100.202'"
            )
        ),
    );
    assert_eq!(
        ch_query(
            &url,
            &format!("SELECT sum(alert_count) FROM {db}.incidents FINAL")
        ),
        "491"
    );
    // Rollups were fed by the materialized views.
    assert_eq!(
        ch_query(
            &url,
            &format!("SELECT sum(alerts) FROM {db}.alerts_per_minute")
        ),
        "491"
    );
    assert_eq!(
        ch_query(
            &url,
            &format!("SELECT sum(alerts) FROM {db}.alerts_by_src_hour")
        ),
        "491"
    );
    assert_eq!(
        ch_query(
            &url,
            &format!(
                "SELECT sum(alerts) FROM {db}.sensor_alerts_per_minute WHERE sensor = 'suricata-1'"
            )
        ),
        "491"
    );
    // Second delivery of everything: all duplicates.
    let all: Vec<u8> = files
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect();
    let (_, a) = post_alerts(&c.url, &token, all, None);
    assert_eq!(
        (a["accepted"].as_u64(), a["duplicates"].as_u64()),
        (Some(0), Some(491))
    );
}

#[test]
fn bad_input_gets_clear_errors_and_valid_lines_are_kept() {
    let ch = clickhouse();
    let db = fresh_db("bad");
    let token = create_token(&ch.url(), &db, "sensor", "MOH", "edge-2");
    let analyst = create_token(&ch.url(), &db, "analyst", "MOH", "ana");
    let c = CorrelatorProc::start(&ch.url(), &db, 0, None);
    let now = now_us();
    let good = |seq: u64| {
        eve_line(
            "edge-2",
            seq,
            now - 1_000_000,
            7,
            "Misc activity",
            "10.0.0.1",
            "10.0.0.2",
            22,
        )
    };
    let wrong_type = good(90).replace("\"gid\":1", "\"gid\":\"one\"");
    let skewed = eve_line(
        "edge-2",
        91,
        now + 3_600_000_000,
        7,
        "Misc activity",
        "10.0.0.1",
        "10.0.0.2",
        22,
    );
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000));
    let body = [
        good(1),                           // line 1
        "{not json".into(),                // line 2
        wrong_type,                        // line 3
        good(2),                           // line 4
        huge,                              // line 5
        skewed,                            // line 6
        r#"{"event_type":"flow"}"#.into(), // line 7
        good(3),                           // line 8
    ]
    .join("\n");
    let (st, a) = post_alerts(&c.url, &token, body.into_bytes(), None);
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["accepted"].as_u64(), Some(3), "{a}");
    let rej = a["rejected"].as_array().unwrap();
    let lines: Vec<u64> = rej.iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![2, 3, 5, 6, 7]);
    let msg = |i: usize| rej[i]["error"].as_str().unwrap().to_owned();
    assert!(msg(0).starts_with("malformed JSON"), "{}", msg(0));
    assert!(
        msg(1).contains("invalid type: string \"one\""),
        "{}",
        msg(1)
    );
    assert!(
        msg(2).contains("line is 70010 bytes, limit is 65536"),
        "{}",
        msg(2)
    );
    assert!(
        msg(3).contains("ahead of the correlator clock"),
        "{}",
        msg(3)
    );
    assert!(msg(4).contains("event_type is 'flow'"), "{}", msg(4));
    assert_eq!(
        ch_query(&ch.url(), &format!("SELECT count() FROM {db}.alerts")),
        "3"
    );

    // Nothing valid at all: 422 with the same shape.
    let (st, a) = post_alerts(&c.url, &token, b"garbage\n".to_vec(), None);
    assert_eq!(st, 422);
    assert_eq!(a["rejected"][0]["line"].as_u64(), Some(1));
    // Unknown, missing and wrong-role tokens.
    let (st, a) = post_alerts(&c.url, "tcn_not-a-real-token", good(4).into_bytes(), None);
    assert_eq!(st, 401);
    assert_eq!(a["error"]["code"], "unauthorized");
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/alerts", c.url))
        .body(good(4))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let (st, _) = post_alerts(&c.url, &analyst, good(4).into_bytes(), None);
    assert_eq!(st, 403);
    // Corrupt gzip, unsupported encoding, oversized body.
    let (st, a) = post_alerts(
        &c.url,
        &token,
        b"\x1f\x8b\x08\x00garbage".to_vec(),
        Some("gzip"),
    );
    assert_eq!(st, 400, "{a}");
    assert_eq!(a["error"]["code"], "bad_encoding");
    let (st, _) = post_alerts(&c.url, &token, good(4).into_bytes(), Some("br"));
    assert_eq!(st, 415);
    let (st, a) = post_alerts(&c.url, &token, vec![b' '; 17 << 20], None);
    assert_eq!(st, 413, "{a}");
    assert_eq!(
        ch_query(&ch.url(), &format!("SELECT count() FROM {db}.alerts")),
        "3",
        "nothing half-stored"
    );
}

#[test]
fn incidents_api_pages_and_scopes() {
    let ch = clickhouse();
    let db = fresh_db("api");
    // Every token is scoped to its agency's subtree: ROOT's admin sees MOH and MOF because
    // the directory puts them below ROOT (no prefixes: incidents belong to the sensors' agencies).
    let tmp = tempfile::tempdir().unwrap();
    let dir_file = tmp.path().join("agencies.toml");
    std::fs::write(
        &dir_file,
        "[[agency]]\ncode = \"ROOT\"\nname = \"Root\"\n\
         [[agency]]\ncode = \"MOH\"\nparent = \"ROOT\"\nname = \"Health\"\n\
         [[agency]]\ncode = \"MOF\"\nparent = \"ROOT\"\nname = \"Finance\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(crate::common::tocsin_bin())
        .args([
            "agency",
            "load",
            dir_file.to_str().unwrap(),
            "--clickhouse-url",
            &ch.url(),
            "--database",
            &db,
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "3\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let moh = create_token(&ch.url(), &db, "sensor", "MOH", "s-moh");
    let mof = create_token(&ch.url(), &db, "sensor", "MOF", "s-mof");
    let analyst = create_token(&ch.url(), &db, "analyst", "MOH", "ana");
    let admin = create_token(&ch.url(), &db, "admin", "ROOT", "adm");
    let c = CorrelatorProc::start(&ch.url(), &db, 0, None);
    let base = now_us() - 600_000_000;
    // 5 incidents for MOH (5 signatures), 2 for MOF.
    let mut body = String::new();
    for i in 0..5u32 {
        body.push_str(&eve_line(
            "s-moh",
            u64::from(i) + 1,
            base + i64::from(i) * 1_000_000,
            500 + i,
            "Misc",
            "10.0.0.1",
            "10.0.0.2",
            80,
        ));
        body.push('\n');
    }
    assert_eq!(post_alerts(&c.url, &moh, body.into_bytes(), None).0, 200);
    let mut body = String::new();
    for i in 0..2u32 {
        body.push_str(&eve_line(
            "s-mof",
            u64::from(i) + 1,
            base + i64::from(i) * 1_000_000,
            600 + i,
            "Misc",
            "10.9.0.1",
            "10.9.0.2",
            80,
        ));
        body.push('\n');
    }
    assert_eq!(post_alerts(&c.url, &mof, body.into_bytes(), None).0, 200);
    let get = |token: &str, q: &str| {
        let r = reqwest::blocking::Client::new()
            .get(format!("{}/api/v1/incidents{q}", c.url))
            .bearer_auth(token)
            .send()
            .unwrap();
        let st = r.status().as_u16();
        (st, r.json::<serde_json::Value>().unwrap())
    };
    // Analyst of MOH: pages of 2 over its 5 incidents, newest first, no MOF.
    let mut seen = Vec::new();
    let mut q = "?limit=2".to_owned();
    loop {
        let (st, page) = get(&analyst, &q);
        assert_eq!(st, 200, "{page}");
        for it in page["items"].as_array().unwrap() {
            assert_eq!(it["agency"], "MOH");
            assert_eq!(it["alert_count"], 1);
            assert_eq!(it["status"], "open");
            seen.push(it["signature_ids"][0].as_u64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(cur) => q = format!("?limit=2&cursor={cur}"),
            None => break,
        }
    }
    assert_eq!(seen, vec![504, 503, 502, 501, 500]);
    assert_eq!(get(&analyst, "?agency=MOF").0, 403);
    assert_eq!(get(&moh, "").0, 403, "sensor tokens cannot read");
    let (st, all) = get(&admin, "?limit=100");
    assert_eq!(st, 200);
    assert_eq!(all["items"].as_array().unwrap().len(), 7);
    let (_, mof_only) = get(&admin, "?agency=MOF");
    assert_eq!(mof_only["items"].as_array().unwrap().len(), 2);
    let future = "?since=2100-01-01T00:00:00Z";
    assert_eq!(get(&admin, future).1["items"].as_array().unwrap().len(), 0);
    assert_eq!(get(&admin, "?limit=0").0, 400);
    assert_eq!(get(&admin, "?cursor=zzz").0, 400);
    assert_eq!(get(&admin, "?since=yesterday").0, 400);
    assert_eq!(get(&admin, "?bogus=1").0, 400);
    // Metrics and health.
    let m = reqwest::blocking::get(format!("{}/metrics", c.url))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        m.contains("tocsin_ingest_alerts_total{result=\"accepted\"} 7"),
        "{m}"
    );
    assert!(m.contains("tocsin_clickhouse_up 1"), "{m}");
}

#[test]
fn overload_answers_429_with_retry_after_and_nothing_is_lost() {
    let ch = clickhouse();
    let db = fresh_db("busy");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    // One alert may wait for the writer, which holds a batch open for 2 s.
    std::fs::write(
        &cfg,
        "[ingest]\nqueue_max_alerts = 1\nbatch_max_delay = \"2s\"\nretry_after_busy_secs = 3\n",
    )
    .unwrap();
    let token = create_token(&ch.url(), &db, "sensor", "MOH", "edge-busy");
    let c = CorrelatorProc::start(&ch.url(), &db, 0, Some(&cfg));
    let now = now_us();
    let first = eve_line(
        "edge-busy",
        1,
        now - 1_000_000,
        7,
        "Misc",
        "10.0.0.1",
        "10.0.0.2",
        22,
    );
    let second = eve_line(
        "edge-busy",
        2,
        now - 1_000_000,
        7,
        "Misc",
        "10.0.0.1",
        "10.0.0.2",
        22,
    );
    let (url, tok) = (c.url.clone(), token.clone());
    let a = std::thread::spawn(move || post_alerts(&url, &tok, first.into_bytes(), None));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/alerts", c.url))
        .bearer_auth(&token)
        .body(second.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    let (st, body) = a.join().unwrap();
    assert_eq!((st, body["accepted"].as_u64()), (200, Some(1)));
    // The retry after Retry-After succeeds: nothing lost.
    let (st, body) = post_alerts(&c.url, &token, second.into_bytes(), None);
    assert_eq!((st, body["accepted"].as_u64()), (200, Some(1)));
    assert_eq!(
        ch_query(&ch.url(), &format!("SELECT count() FROM {db}.alerts")),
        "2"
    );
}
