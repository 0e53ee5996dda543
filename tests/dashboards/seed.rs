//! Seeds a database the way production fills it: the shipped agency tree (SLAs shortened to
//! seconds), the correlator, two sensors replaying the demo traffic and forwarding to it, a
//! responder working tickets through the API, and the escalator letting one SLA run out.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::common::{
    CorrelatorProc, ch_query, clickhouse, create_token, fresh_db, tocsin_bin, wait_until,
};

/// What the seeding produced.
pub struct Seeded {
    pub ch_url: String,
    pub db: String,
    /// Earliest and latest time in the data (Unix seconds), for the dashboard range.
    pub first_s: i64,
    pub last_s: i64,
    /// The correlator (kept alive while the queries run).
    pub _correlator: CorrelatorProc,
}

fn run(args: &[&str]) -> Output {
    let o = Command::new(tocsin_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "tocsin {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn api(url: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let c = reqwest::blocking::Client::new();
    let mut r = match method {
        "POST" => c.post(format!("{url}{path}")),
        _ => c.get(format!("{url}{path}")),
    }
    .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().unwrap();
    let st = resp.status().as_u16();
    (st, resp.json().unwrap_or(Value::Null))
}

fn tickets(url: &str, token: &str) -> Vec<Value> {
    let (st, v) = api(url, token, "GET", "/api/v1/tickets?limit=500", None);
    assert_eq!(st, 200, "{v}");
    v["items"].as_array().cloned().unwrap_or_default()
}

/// A day of background alerts from four more sensors (20,000 alerts, mostly severity 3, so
/// they make incidents but few tickets), through the ingest API: the national picture is
/// not just the two demo taps. Destinations lie in each agency's prefix from the directory.
fn background(ch_url: &str, db: &str, corr_url: &str) {
    let list = run(&[
        "agency",
        "list",
        "--clickhouse-url",
        ch_url,
        "--database",
        db,
    ]);
    let listing = String::from_utf8_lossy(&list.stdout).into_owned();
    let now = crate::common::now_us();
    let sigs: [(u32, &str, &str, u8); 4] = [
        (
            2_001_219,
            "ET SCAN Potential SSH Scan",
            "Attempted Information Leak",
            3,
        ),
        (
            2_010_937,
            "ET SCAN Suspicious inbound to mySQL port 3306",
            "Potentially Bad Traffic",
            3,
        ),
        (
            2_024_897,
            "ET USER_AGENTS Go HTTP Client User-Agent",
            "Misc activity",
            3,
        ),
        (
            2_034_647,
            "ET EXPLOIT Apache log4j RCE Attempt (CVE-2021-44228)",
            "Attempted Administrator Privilege Gain",
            1,
        ),
    ];
    for (n, code) in ["MOF", "MIC", "DA-NANG", "CAN-THO"].iter().enumerate() {
        let line = listing
            .lines()
            .find(|l| l.split('\t').next() == Some(*code))
            .unwrap_or_else(|| panic!("{code} not in the directory"));
        let prefix = line.split('\t').nth(4).unwrap().split(',').next().unwrap();
        let octets: Vec<&str> = prefix.split('.').take(2).collect();
        let token = create_token(ch_url, db, "sensor", code, &format!("edge-{code}"));
        let sensor = format!("edge-{}", code.to_lowercase());
        let mut body = String::new();
        for i in 0..5_000u64 {
            // Severity 1 (ticketed) only for a handful of alerts.
            let (sid, msg, cat, sev) = if i % 1000 == 7 {
                sigs[3]
            } else {
                sigs[(i % 3) as usize]
            };
            let dport = [22u16, 3306, 80][usize::try_from(i % 3).unwrap()];
            let ts = now - 86_400_000_000 + i64::try_from(i).unwrap() * 17_000_000;
            let rec = serde_json::json!({
                "timestamp": tocsin_eve::Timestamp(ts).to_string(), "flow_id": i, "event_type": "alert",
                "src_ip": format!("198.51.{}.{}", 100 + n, 10 + i % 12), "src_port": 40_000 + i % 20_000,
                "dest_ip": format!("{}.{}.{}.{}", octets[0], octets[1], 1 + i % 4, 10 + i % 5),
                "dest_port": dport,
                "proto": "TCP",
                "alert": {"action": "allowed", "gid": 1, "signature_id": sid, "rev": 1,
                          "signature": msg, "category": cat, "severity": sev},
                "sensor": {"id": sensor},
                "alert_id": format!("{sensor}:{:016x}:{i}", 0x5eed_u64),
            });
            body.push_str(&rec.to_string());
            body.push('\n');
        }
        let (st, v) = crate::common::post_alerts(corr_url, &token, body.into_bytes(), None);
        assert_eq!((st, v["accepted"].as_u64()), (200, Some(5_000)), "{v}");
    }
}

pub fn seed(tmp: &Path) -> Seeded {
    let ch = clickhouse();
    let ch_url = ch.url();
    let db = fresh_db("dashboards");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = [
        "--clickhouse-url",
        ch_url.as_str(),
        "--database",
        db.as_str(),
    ];

    // The shipped tree with SLAs shortened: ministries (SBV) must acknowledge within 2 s, so
    // their tickets escalate; provinces (Ha Noi, whose responder acts) within 10 min.
    let tree = std::fs::read_to_string(repo.join("rules/agencies/national.toml")).unwrap();
    let mut short = String::new();
    let mut policy = String::new();
    for line in tree.lines() {
        let mut l = line.to_owned();
        if let Some(name) = l.strip_prefix("name = ") {
            policy = name.trim_matches('"').to_owned();
        }
        if l.trim_start().starts_with("{ severity") {
            let sev = l.split(',').next().unwrap_or_default().to_owned();
            let ack = if policy == "province" { "10m" } else { "2s" };
            l = format!("{sev}, ack = \"{ack}\", resolve = \"1h\" }},");
        }
        short.push_str(&l);
        short.push('\n');
    }
    let agencies = tmp.join("agencies.toml");
    std::fs::write(&agencies, short).unwrap();
    let mut args = vec!["agency", "load", agencies.to_str().unwrap()];
    args.extend(base);
    run(&args);

    let sensor_sbv = create_token(&ch_url, &db, "sensor", "SBV", "ministry-tap-1");
    let sensor_hn = create_token(&ch_url, &db, "sensor", "HA-NOI", "province-tap-1");
    let responder = create_token(&ch_url, &db, "responder", "HA-NOI", "hn-responder");
    let admin = create_token(&ch_url, &db, "admin", "NCC", "soc-admin");
    let corr = CorrelatorProc::start(
        &ch_url,
        &db,
        0,
        Some(&repo.join("scripts/demo-correlator.toml")),
    );

    // Traffic of two taps, replayed by two sensors forwarding to the correlator.
    let pcaps = tmp.join("pcaps");
    run(&["demo", "gen-traffic", "--out", pcaps.to_str().unwrap()]);
    for (site, token) in [("ministry", &sensor_sbv), ("province", &sensor_hn)] {
        let pcap = pcaps.join(format!("{site}.pcap"));
        let log = tmp.join(site);
        let spool = tmp.join(format!("{site}-spool"));
        run(&[
            "sensor",
            "-r",
            pcap.to_str().unwrap(),
            "-S",
            repo.join("rules/tocsin.rules").to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "--no-progress",
            "--set",
            &format!("sensor.id={site}-tap-1"),
            "--set",
            "vars.address.HOME_NET=[10.0.0.0/8]",
            "--forward",
            &corr.url,
            "--token",
            token,
            "--spool",
            spool.to_str().unwrap(),
        ]);
    }
    let mut all = Vec::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            all = tickets(&corr.url, &admin);
            ["SBV", "HA-NOI"]
                .iter()
                .all(|a| all.iter().any(|t| t["owner_agency"] == *a))
        }),
        "tickets for both agencies not opened: {all:?}"
    );

    background(&ch_url, &db, &corr.url);

    // The Ha Noi responder takes one ticket through to resolution; trying an SBV ticket is
    // denied (and audited).
    let mine = all
        .iter()
        .find(|t| t["agency"] == "HA-NOI")
        .unwrap_or_else(|| panic!("no Ha Noi ticket among {all:?}"));
    let id = mine["id"].as_str().unwrap();
    for (path, body) in [
        ("acknowledge", serde_json::json!({})),
        ("assign", serde_json::json!({"assignee": "linh"})),
        (
            "status",
            serde_json::json!({"status": "in_progress", "comment": "isolating the host"}),
        ),
        (
            "status",
            serde_json::json!({"status": "resolved", "comment": "blocked at the edge"}),
        ),
    ] {
        let (st, v) = api(
            &corr.url,
            &responder,
            "POST",
            &format!("/api/v1/tickets/{id}/{path}"),
            Some(body),
        );
        assert_eq!(st, 200, "{path}: {v}");
    }
    if let Some(other) = all.iter().find(|t| t["agency"] == "SBV") {
        let (st, _) = api(
            &corr.url,
            &responder,
            "POST",
            &format!(
                "/api/v1/tickets/{}/acknowledge",
                other["id"].as_str().unwrap()
            ),
            Some(serde_json::json!({})),
        );
        assert!(
            st == 403 || st == 404,
            "cross-agency acknowledge answered {st}"
        );
    }
    // Unacknowledged tickets miss their 2 s deadline and climb.
    assert!(
        wait_until(Duration::from_secs(60), || {
            ch_query(
                &ch_url,
                &format!("SELECT count() FROM {db}.ticket_events WHERE action = 'escalated'"),
            ) != "0"
        }),
        "no escalation within 60 s"
    );
    assert!(
        wait_until(Duration::from_secs(30), || {
            ch_query(&ch_url, &format!("SELECT count() FROM {db}.sensor_stats")) != "0"
        }),
        "no sensor stats stored"
    );
    let span = ch_query(
        &ch_url,
        &format!("SELECT toUInt32(min(ts)), toUInt32(now()) FROM {db}.alerts"),
    );
    let mut it = span.split('\t').map(|v| v.parse::<i64>().unwrap());
    let (first_s, last_s) = (it.next().unwrap(), it.next().unwrap());
    Seeded {
        ch_url,
        db,
        first_s,
        last_s,
        _correlator: corr,
    }
}
