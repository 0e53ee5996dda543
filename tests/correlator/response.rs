//! Response (issue 7) end to end, through the real `tocsin` binary and a real clickhouse-server:
//! the agency CLI and ownership over the shipped national tree, the ticket lifecycle over HTTP
//! (illegal transitions, bad input, cursors, bulk acknowledge, audit, metrics, OpenAPI), a
//! systematic authorization sweep over every route, webhook delivery to a receiver started
//! here (retries, HMAC signatures), and escalation with two correlator processes.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};

use crate::common::{
    CorrelatorProc, ch_query, clickhouse, create_token, fresh_db, now_us, post_alerts, tocsin_bin,
    wait_until,
};

fn national_tree() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/agencies/national.toml")
}

/// `tocsin agency ARGS --clickhouse-url URL --database DB`: (exit code, stdout, stderr).
fn agency_cli(ch_url: &str, db: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(tocsin_bin())
        .arg("agency")
        .args(args)
        .args(["--clickhouse-url", ch_url, "--database", db])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn load_directory(ch_url: &str, db: &str, file: &Path) -> usize {
    let (code, out, err) = agency_cli(ch_url, db, &["load", file.to_str().unwrap()]);
    assert_eq!(code, 0, "agency load: {err}");
    out.trim().parse().unwrap()
}

/// A correlator config with fast ticket polling, lease and webhook retries.
fn fast_config(dir: &Path) -> PathBuf {
    let p = dir.join("correlator.toml");
    std::fs::write(
        &p,
        "[tickets]\npoll_interval = \"200ms\"\nrefresh_interval = \"500ms\"\nlease_ttl = \"2s\"\n\
         lease_settle = \"200ms\"\ndirectory_refresh = \"500ms\"\nmetrics_refresh = \"300ms\"\n\
         [webhooks]\ninitial_backoff = \"300ms\"\nmax_backoff = \"2s\"\ntimeout = \"2s\"\n",
    )
    .unwrap();
    p
}

/// One EVE alert line with a chosen category and severity.
fn alert(sensor: &str, seq: u64, sid: u32, category: &str, src: &str, dst: &str) -> String {
    json!({
        "timestamp": tocsin_eve::Timestamp(now_us() - 5_000_000).to_string(),
        "flow_id": seq, "event_type": "alert", "src_ip": src, "src_port": 40000, "dest_ip": dst,
        "dest_port": 443, "proto": "TCP",
        "alert": {"action": "allowed", "gid": 1, "signature_id": sid, "rev": 1,
                  "signature": format!("TEST sid {sid}"), "category": category, "severity": 2},
        "sensor": {"id": sensor},
        "alert_id": format!("{sensor}:{:016x}:{seq}", 0x5eed_u64),
    })
    .to_string()
}

fn post(url: &str, token: &str, lines: &[String]) {
    let (st, a) = post_alerts(url, token, lines.join("\n").into_bytes(), None);
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["accepted"].as_u64(), Some(lines.len() as u64), "{a}");
}

/// An HTTP call: (status, JSON body or Null).
fn call(
    method: &str,
    url: &str,
    auth: Option<&str>,
    body: Option<&str>,
    request_id: Option<&str>,
) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let mut req = match method {
        "GET" => client.get(url),
        "POST" => client.post(url),
        other => panic!("method {other}"),
    };
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_owned());
    }
    if let Some(r) = request_id {
        req = req.header("x-request-id", r);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn get(url: &str, token: &str) -> (u16, Value) {
    call("GET", url, Some(&bearer(token)), None, None)
}

fn post_json(url: &str, token: &str, body: &str) -> (u16, Value) {
    call("POST", url, Some(&bearer(token)), Some(body), None)
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// Waits until `GET url` (a ticket list) holds `n` items; returns them.
fn wait_tickets(url: &str, token: &str, n: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let ok = wait_until(Duration::from_secs(30), || {
        let (st, v) = get(url, token);
        items = v["items"].as_array().cloned().unwrap_or_default();
        st == 200 && items.len() == n
    });
    assert!(ok, "{n} tickets expected at {url}, have {items:?}");
    items
}

fn us_of(v: &Value) -> i64 {
    tocsin_eve::Timestamp::parse_eve(v.as_str().unwrap())
        .unwrap()
        .0
}

#[test]
fn agency_cli_and_ownership_over_the_shipped_tree() {
    let ch = clickhouse();
    let db = fresh_db("agency_tree");
    let tree = national_tree();
    // 1 root + 22 ministries × 7 + 63 provinces × 11 (see rules/agencies/README.md).
    assert_eq!(load_directory(&ch.url(), &db, &tree), 848);
    let (code, out, err) = agency_cli(&ch.url(), &db, &["list"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 848);
    assert!(lines[0].starts_with("NCC\t0\t-\t"), "{}", lines[0]);
    let mut seen = std::collections::HashSet::new();
    for l in &lines {
        let f: Vec<&str> = l.split('\t').collect();
        assert_eq!(f.len(), 5, "{l}");
        assert!(
            f[2] == "-" || seen.contains(f[2]),
            "parent listed before child: {l}"
        );
        seen.insert(f[0].to_owned());
    }
    assert!(lines.contains(
        &"MOH.IT.DC.LAB\t4\tMOH.IT.DC\tSecurity Laboratory, Ministry of Health\t10.18.17.128/25"
    ));
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.split('\t').nth(1) == Some("1"))
            .count(),
        85
    );
    // Loading it again changes nothing but the version.
    assert_eq!(load_directory(&ch.url(), &db, &tree), 848);

    // A bad file: every problem with its line, nothing stored.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[agency]]\ncode = \"NCC\"\nname = \"Root\"\n\n[[agency]]\ncode = \"X\"\nparent = \"NOPE\"\nname = \"x\"\n\
         [[agency]]\ncode = \"Y\"\nparent = \"NCC\"\nname = \"y\"\nprefixes = [\"10.0.0.0/33\"]\n",
    )
    .unwrap();
    let (code, out, err) = agency_cli(&ch.url(), &db, &["load", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert!(
        err.contains("bad.toml:5: agency 'X': unknown parent 'NOPE'"),
        "{err}"
    );
    assert!(
        err.contains("bad.toml:9: agency 'Y': '10.0.0.0/33' is not an IPv4/IPv6 CIDR prefix"),
        "{err}"
    );
    let (_, out, _) = agency_cli(&ch.url(), &db, &["list"]);
    assert_eq!(out.lines().count(), 848);

    // Ownership: alerts from a sensor of MIC about addresses all over the tree.
    let c = CorrelatorProc::start(&ch.url(), &db, 0, None);
    let sensor = create_token(&ch.url(), &db, "sensor", "MIC", "edge-mic");
    let misc = "Misc activity";
    let trojan = "A Network Trojan was detected";
    post(
        &c.url,
        &sensor,
        &[
            alert("edge-mic", 1, 2001, misc, "198.51.100.7", "10.18.17.200"),
            alert("edge-mic", 2, 2002, misc, "198.51.100.7", "100.64.65.130"),
            alert(
                "edge-mic",
                3,
                2003,
                misc,
                "2001:db8:ffff::1",
                "2001:db8:101:2000::1",
            ),
            // Destination unowned: the source's owner (Ho Chi Minh City, district 2).
            alert("edge-mic", 4, 2004, misc, "100.65.80.1", "203.0.113.9"),
            // Outbound (source-first category): the source's owner wins over the destination's.
            alert("edge-mic", 5, 2005, trojan, "100.64.65.200", "10.18.200.1"),
            alert("edge-mic", 6, 2006, misc, "100.64.65.200", "10.18.200.1"),
            // Neither address owned: the sensor's agency.
            alert("edge-mic", 7, 2007, misc, "198.51.100.1", "203.0.113.1"),
        ],
    );
    let owners = ch_query(
        &ch.url(),
        &format!("SELECT signature_ids[1] AS sid, agency FROM {db}.incidents FINAL ORDER BY sid"),
    );
    assert_eq!(
        owners,
        "2001\tMOH.IT.DC.LAB\n2002\tHA-NOI.D1.C1.SCH\n2003\tHA-NOI.DOH\n2004\tHO-CHI-MINH-CITY.D2\n\
         2005\tHA-NOI.D1.C1\n2006\tMOH\n2007\tMIC"
    );
    // The incident list filters by agency subtree, within the token's scope.
    let analyst = create_token(&ch.url(), &db, "analyst", "HA-NOI", "hn-analyst");
    let sids = |url: &str| -> Vec<u64> {
        let (st, v) = get(url, &analyst);
        assert_eq!(st, 200, "{v}");
        let mut s: Vec<u64> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["signature_ids"][0].as_u64().unwrap())
            .collect();
        s.sort_unstable();
        s
    };
    assert_eq!(
        sids(&format!("{}/api/v1/incidents", c.url)),
        [2002, 2003, 2005]
    );
    assert_eq!(
        sids(&format!("{}/api/v1/incidents?agency=HA-NOI.D1", c.url)),
        [2002, 2005]
    );
    assert_eq!(
        sids(&format!("{}/api/v1/incidents?signature_id=2003", c.url)),
        [2003]
    );
    assert_eq!(
        sids(&format!("{}/api/v1/incidents?ip=100.64.65.200", c.url)),
        [2005]
    );
    let (st, v) = get(&format!("{}/api/v1/incidents?agency=MOH", c.url), &analyst);
    assert_error(st, &v, 403, "forbidden");
    // The agencies a Ha Noi token sees: its subtree, in tree order.
    let (st, v) = get(&format!("{}/api/v1/agencies", c.url), &analyst);
    assert_eq!(st, 200);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 11);
    assert_eq!(items[0]["code"], "HA-NOI");
    assert_eq!(items[0]["parent"], "NCC");
    assert_eq!(items[0]["level"], 1);
    assert_eq!(
        items[0]["prefixes"],
        json!(["100.64.0.0/16", "2001:db8:101::/48"])
    );
    assert!(
        items
            .iter()
            .all(|i| i["code"].as_str().unwrap().starts_with("HA-NOI"))
    );
}

#[test]
fn ticket_lifecycle_over_http() {
    let ch = clickhouse();
    let db = fresh_db("lifecycle");
    let tmp = tempfile::tempdir().unwrap();
    load_directory(&ch.url(), &db, &national_tree());
    let c = CorrelatorProc::start(&ch.url(), &db, 0, Some(&fast_config(tmp.path())));
    let sensor = create_token(&ch.url(), &db, "sensor", "NCC", "edge-ncc");
    let responder = create_token(&ch.url(), &db, "responder", "HA-NOI", "hn-responder");
    let admin = create_token(&ch.url(), &db, "admin", "NCC", "ncc-admin");
    // 100.64.33.0/24 is Ha Noi's provincial hospital (health policy: tickets from severity
    // 3, severity 2 acknowledged within 1 h).
    post(
        &c.url,
        &sensor,
        &[alert(
            "edge-ncc",
            1,
            3001,
            "Misc activity",
            "198.51.100.2",
            "100.64.33.5",
        )],
    );
    let list = format!("{}/api/v1/tickets?agency=HA-NOI", c.url);
    let t = wait_tickets(&list, &responder, 1).remove(0);
    assert_eq!(t["agency"], "HA-NOI.DOH.HOSP");
    assert_eq!(t["status"], "new");
    assert_eq!(t["severity"], 2);
    assert_eq!(t["escalation_level"], 0);
    assert_eq!(us_of(&t["due_at"]) - us_of(&t["opened_at"]), 3_600_000_000);
    let incident = t["incident_id"].as_str().unwrap().to_owned();
    let id = t["id"].as_str().unwrap().to_owned();
    let at = |action: &str| format!("{}/api/v1/tickets/{id}/{action}", c.url);
    let seq = |want: u64| {
        let (st, v) = get(&format!("{}/api/v1/tickets/{id}", c.url), &responder);
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["seq"], want, "{v}");
        v
    };

    // Illegal: new → resolved. Nothing changes.
    let (st, v) = post_json(
        &at("status"),
        &responder,
        r#"{"status":"resolved","comment":"done?"}"#,
    );
    assert_error(st, &v, 409, "illegal_transition");
    seq(1);
    // Bad input: 4xx with a JSON error body, nothing applied.
    let (st, v) = post_json(&at("assign"), &responder, r#"{"assignee": "x""#);
    assert_error(st, &v, 400, "bad_json");
    let (st, v) = post_json(
        &at("assign"),
        &responder,
        r#"{"assignee":"x","priority":1}"#,
    );
    assert_error(st, &v, 400, "bad_json");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `priority`"),
        "{v}"
    );
    let (st, v) = post_json(&at("comment"), &responder, "{}");
    assert_error(st, &v, 400, "bad_json");
    let big = json!({"text": "a".repeat(70 * 1024)}).to_string();
    let (st, v) = post_json(&at("comment"), &responder, &big);
    assert_error(st, &v, 413, "body_too_large");
    let (st, v) = post_json(&at("status"), &responder, r#"{"status":"bogus"}"#);
    assert_error(st, &v, 400, "bad_status");
    let (st, v) = get(&format!("{list}&cursor=not-a-cursor"), &responder);
    assert_error(st, &v, 400, "bad_cursor");
    let (st, v) = get(&format!("{list}&colour=red"), &responder);
    assert_error(st, &v, 400, "bad_query");
    seq(1);

    // The lifecycle: new → acknowledged → in_progress → resolved → closed.
    let (st, v) = call(
        "POST",
        &at("acknowledge"),
        Some(&bearer(&responder)),
        None,
        Some("req-ack-1"),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["seq"].as_u64()),
        (Some("acknowledged"), Some(2))
    );
    assert!(v["acknowledged_at"].is_string());
    // Acknowledged: the resolve deadline (24 h for severity 2) is now the one that matters.
    assert_eq!(
        us_of(&v["due_at"]) - us_of(&v["opened_at"]),
        24 * 3_600_000_000
    );
    let (st, v) = post_json(&at("acknowledge"), &responder, "{}");
    assert_error(st, &v, 409, "illegal_transition");
    let (st, v) = post_json(&at("assign"), &responder, r#"{"assignee":"nguyen.van.a"}"#);
    assert_eq!(
        (st, v["assignee"].as_str()),
        (200, Some("nguyen.van.a")),
        "{v}"
    );
    let (st, v) = post_json(
        &at("comment"),
        &responder,
        r#"{"text":"blocked the source at the edge"}"#,
    );
    assert_eq!((st, v["seq"].as_u64()), (200, Some(4)), "{v}");
    for (to, seq_after) in [("in_progress", 5), ("resolved", 6), ("closed", 7)] {
        let (st, v) = post_json(
            &at("status"),
            &responder,
            &format!(r#"{{"status":"{to}","comment":"{to}"}}"#),
        );
        assert_eq!(st, 200, "{to}: {v}");
        assert_eq!(
            (v["status"].as_str(), v["seq"].as_u64()),
            (Some(to), Some(seq_after))
        );
    }
    // Closed is terminal.
    for body in [r#"{"status":"reopened"}"#, r#"{"status":"in_progress"}"#] {
        let (st, v) = post_json(&at("status"), &responder, body);
        assert_error(st, &v, 409, "illegal_transition");
    }
    let (st, v) = post_json(&at("assign"), &responder, r#"{"assignee":"someone"}"#);
    assert_error(st, &v, 409, "illegal_transition");
    let detail = seq(7);
    let actions: Vec<(&str, &str)> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["action"].as_str().unwrap(), h["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("opened", "tocsin"),
            ("acknowledged", "hn-responder"),
            ("assigned", "hn-responder"),
            ("commented", "hn-responder"),
            ("status_changed", "hn-responder"),
            ("status_changed", "hn-responder"),
            ("status_changed", "hn-responder"),
        ]
    );
    assert_eq!(detail["history"][1]["request_id"], "req-ack-1");
    assert_eq!(detail["incident_id"], incident.as_str());

    // The incident with its member alert and its ticket.
    let (st, v) = get(
        &format!("{}/api/v1/incidents/{incident}", c.url),
        &responder,
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["alerts"].as_array().map(Vec::len), Some(1), "{v}");

    // Two more tickets; bulk acknowledge is all or nothing.
    post(
        &c.url,
        &sensor,
        &[
            alert(
                "edge-ncc",
                2,
                3002,
                "Misc activity",
                "198.51.100.2",
                "100.64.33.6",
            ),
            alert(
                "edge-ncc",
                3,
                3003,
                "Misc activity",
                "198.51.100.2",
                "100.64.33.7",
            ),
        ],
    );
    let open = wait_tickets(&format!("{list}&status=new"), &responder, 2);
    let ids: Vec<&str> = open.iter().map(|t| t["id"].as_str().unwrap()).collect();
    let bulk = format!("{}/api/v1/tickets/acknowledge", c.url);
    let unknown = "00000000-0000-4000-8000-000000000000";
    let (st, v) = post_json(
        &bulk,
        &responder,
        &json!({"ids": [ids[0], unknown]}).to_string(),
    );
    assert_error(st, &v, 404, "not_found");
    let (st, v) = post_json(
        &bulk,
        &responder,
        &json!({"ids": [ids[0], &id]}).to_string(),
    );
    assert_error(st, &v, 409, "illegal_transition");
    wait_tickets(&format!("{list}&status=new"), &responder, 2);
    let (st, v) = post_json(
        &bulk,
        &responder,
        &json!({"ids": ids, "comment": "on it"}).to_string(),
    );
    assert_eq!(st, 200, "{v}");
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "acknowledged")
    );

    // Pages of one, newest first, neither repeating nor skipping.
    let mut seen = Vec::new();
    let mut url = format!("{list}&limit=1");
    loop {
        let (st, v) = get(&url, &responder);
        assert_eq!(st, 200, "{v}");
        for t in v["items"].as_array().unwrap() {
            seen.push((us_of(&t["opened_at"]), t["id"].as_str().unwrap().to_owned()));
        }
        match v["next_cursor"].as_str() {
            Some(cur) => url = format!("{list}&limit=1&cursor={cur}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted);

    // The audit log: every change, with actor and request ID, and the refused attempts.
    let (st, v) = get(&format!("{}/api/v1/audit?limit=1000", c.url), &admin);
    assert_eq!(st, 200, "{v}");
    let entries = v["items"].as_array().unwrap();
    let ack = entries
        .iter()
        .find(|e| e["action"] == "ticket.acknowledged" && e["object_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no acknowledgement in {v}"));
    assert_eq!(
        (ack["actor"].as_str(), ack["request_id"].as_str()),
        (Some("hn-responder"), Some("req-ack-1"))
    );
    assert_eq!(ack["agency"], "HA-NOI.DOH.HOSP");
    assert!(ack["before"].as_str().unwrap().contains("\"new\""), "{ack}");
    assert!(
        ack["after"].as_str().unwrap().contains("\"acknowledged\""),
        "{ack}"
    );
    // Refused changes are written by the audit task (batched): new→resolved, the second
    // acknowledge, reopen/in_progress/assign on the closed ticket, the bulk with a closed one.
    let rejected = || {
        let (_, v) = get(
            &format!("{}/api/v1/audit?limit=1000&action=ticket.rejected", c.url),
            &admin,
        );
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["outcome"] == "denied")
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(5), || rejected() == 6),
        "{}",
        rejected()
    );
    // Analysts and responders may not read it.
    let (st, v) = get(&format!("{}/api/v1/audit", c.url), &responder);
    assert_error(st, &v, 403, "forbidden");

    // Metrics: open tickets by agency and severity (read from ClickHouse).
    let metrics = || {
        reqwest::blocking::get(format!("{}/metrics", c.url))
            .unwrap()
            .text()
            .unwrap()
    };
    assert!(
        wait_until(Duration::from_secs(10), || metrics().contains(
            "tocsin_tickets_open{agency=\"HA-NOI.DOH.HOSP\",severity=\"2\"} 2"
        )),
        "{}",
        metrics()
    );
    let m = metrics();
    for name in [
        "tocsin_ingest_alerts_total",
        "tocsin_incidents_open",
        "tocsin_tickets_opened_total",
        "tocsin_sla_breaches_total",
        "tocsin_webhook_deliveries_total",
    ] {
        assert!(m.contains(name), "{name} missing from {m}");
    }

    // OpenAPI and its docs page.
    let (st, doc) = call(
        "GET",
        &format!("{}/api/v1/openapi.json", c.url),
        None,
        None,
        None,
    );
    assert_eq!(st, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(
        doc["paths"]["/api/v1/tickets/{id}/status"]["post"].is_object(),
        "{doc}"
    );
    let page = reqwest::blocking::get(format!("{}/api/v1/docs", c.url)).unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .unwrap()
            .contains("/api/v1/tickets/{id}/acknowledge")
    );
}

/// One row of the authorization sweep.
struct Route {
    method: &'static str,
    /// As in the OpenAPI document.
    template: &'static str,
    /// The request aimed at the other province's object (or filtered to it).
    cross: String,
    body: Option<String>,
    /// The same route without an agency filter (lists): must answer without the other
    /// province's objects.
    unscoped: Option<String>,
}

#[test]
fn authorization_over_every_route() {
    let ch = clickhouse();
    let db = fresh_db("authz");
    let tmp = tempfile::tempdir().unwrap();
    load_directory(&ch.url(), &db, &national_tree());
    let c = CorrelatorProc::start(&ch.url(), &db, 0, Some(&fast_config(tmp.path())));
    let url = &c.url;
    let sensor = create_token(&ch.url(), &db, "sensor", "NCC", "edge-ncc");
    // Province A: Ha Noi (100.64/16); province B: Ho Chi Minh City (100.65/16).
    post(
        url,
        &sensor,
        &[
            alert(
                "edge-ncc",
                1,
                4001,
                "Misc activity",
                "198.51.100.3",
                "100.64.1.1",
            ),
            alert(
                "edge-ncc",
                2,
                4002,
                "Misc activity",
                "198.51.100.3",
                "100.65.1.1",
            ),
        ],
    );
    let a_admin = create_token(&ch.url(), &db, "admin", "HA-NOI", "hn-admin");
    let a_ticket = wait_tickets(&format!("{url}/api/v1/tickets"), &a_admin, 1).remove(0);
    let (a_id, a_inc) = (
        a_ticket["id"].as_str().unwrap().to_owned(),
        a_ticket["incident_id"].as_str().unwrap().to_owned(),
    );
    let b_tokens: Vec<(&str, String)> = ["responder", "admin", "analyst", "sensor"]
        .into_iter()
        .map(|role| {
            (
                role,
                create_token(
                    &ch.url(),
                    &db,
                    role,
                    "HO-CHI-MINH-CITY",
                    &format!("hcm-{role}"),
                ),
            )
        })
        .collect();
    wait_tickets(&format!("{url}/api/v1/tickets"), &b_tokens[1].1, 1);

    let routes = vec![
        Route {
            method: "POST",
            template: "/api/v1/alerts",
            cross: "/api/v1/alerts".into(),
            body: Some(alert(
                "edge-x",
                9,
                4009,
                "Misc activity",
                "198.51.100.3",
                "100.64.1.1",
            )),
            unscoped: None,
        },
        Route {
            method: "POST",
            template: "/api/v1/sensor-stats",
            cross: "/api/v1/sensor-stats".into(),
            body: Some("{}".into()),
            unscoped: None,
        },
        Route {
            method: "GET",
            template: "/api/v1/incidents",
            cross: "/api/v1/incidents?agency=HA-NOI".into(),
            body: None,
            unscoped: Some("/api/v1/incidents".into()),
        },
        Route {
            method: "GET",
            template: "/api/v1/incidents/{id}",
            cross: format!("/api/v1/incidents/{a_inc}"),
            body: None,
            unscoped: None,
        },
        Route {
            method: "GET",
            template: "/api/v1/tickets",
            cross: "/api/v1/tickets?agency=HA-NOI".into(),
            body: None,
            unscoped: Some("/api/v1/tickets".into()),
        },
        Route {
            method: "GET",
            template: "/api/v1/tickets/{id}",
            cross: format!("/api/v1/tickets/{a_id}"),
            body: None,
            unscoped: None,
        },
        Route {
            method: "POST",
            template: "/api/v1/tickets/{id}/acknowledge",
            cross: format!("/api/v1/tickets/{a_id}/acknowledge"),
            body: Some("{}".into()),
            unscoped: None,
        },
        Route {
            method: "POST",
            template: "/api/v1/tickets/{id}/assign",
            cross: format!("/api/v1/tickets/{a_id}/assign"),
            body: Some(r#"{"assignee":"mallory"}"#.into()),
            unscoped: None,
        },
        Route {
            method: "POST",
            template: "/api/v1/tickets/{id}/comment",
            cross: format!("/api/v1/tickets/{a_id}/comment"),
            body: Some(r#"{"text":"pwned"}"#.into()),
            unscoped: None,
        },
        Route {
            method: "POST",
            template: "/api/v1/tickets/{id}/status",
            cross: format!("/api/v1/tickets/{a_id}/status"),
            body: Some(r#"{"status":"false_positive"}"#.into()),
            unscoped: None,
        },
        Route {
            method: "POST",
            template: "/api/v1/tickets/acknowledge",
            cross: "/api/v1/tickets/acknowledge".into(),
            body: Some(json!({"ids": [a_id]}).to_string()),
            unscoped: None,
        },
        Route {
            method: "GET",
            template: "/api/v1/agencies",
            cross: "/api/v1/agencies".into(),
            body: None,
            unscoped: None,
        },
        Route {
            method: "GET",
            template: "/api/v1/audit",
            cross: "/api/v1/audit?agency=HA-NOI".into(),
            body: None,
            unscoped: Some("/api/v1/audit?limit=1000".into()),
        },
        Route {
            method: "GET",
            template: "/api/v1/webhooks/deliveries",
            cross: "/api/v1/webhooks/deliveries?agency=HA-NOI".into(),
            body: None,
            unscoped: Some("/api/v1/webhooks/deliveries".into()),
        },
    ];
    // The table covers every route of the OpenAPI document, and nothing else.
    let (_, doc) = call(
        "GET",
        &format!("{url}/api/v1/openapi.json"),
        None,
        None,
        None,
    );
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), p.clone()))
        })
        .collect();
    documented.sort();
    let mut tabled: Vec<(String, String)> = routes
        .iter()
        .map(|r| (r.method.to_owned(), r.template.to_owned()))
        .collect();
    tabled.sort();
    assert_eq!(tabled, documented);

    // 401 for a missing, malformed, forged or expired token, on every route.
    let expired = {
        let out = Command::new(tocsin_bin())
            .args([
                "token",
                "create",
                "--role",
                "admin",
                "--agency",
                "NCC",
                "--name",
                "old",
                "--expires-in",
                "3s",
                "--clickhouse-url",
                &ch.url(),
                "--database",
                &db,
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    // Used once while valid (so it is cached), then expired.
    assert_eq!(get(&format!("{url}/api/v1/agencies"), &expired).0, 200);
    std::thread::sleep(Duration::from_millis(4100));
    let forged = format!("tcn_{}", "A".repeat(43));
    let mut tampered = a_admin.clone();
    tampered.pop();
    tampered.push(if a_admin.ends_with('x') { 'y' } else { 'x' });
    let bad_auth: Vec<Option<String>> = vec![
        None,
        Some("Basic aGVsbG86d29ybGQ=".into()),
        Some(format!("Bearer {forged}")),
        Some(format!("Bearer {tampered}")),
        Some(format!("Bearer {expired}")),
        Some("Bearer ".into()),
    ];
    for r in &routes {
        for auth in &bad_auth {
            let (st, v) = call(
                r.method,
                &format!("{url}{}", r.cross),
                auth.as_deref(),
                r.body.as_deref(),
                None,
            );
            assert_error(st, &v, 401, "unauthorized");
        }
    }

    // Province B's tokens, every role, every route: never A's data, never a change to A's ticket.
    // A leak: an item of A's (by agency, ID or incident), or A's IDs anywhere in an answer.
    // (An agency-filter refusal may echo the code the caller sent, nothing more.)
    let leaks = |v: &Value, asked_for_a: bool| {
        let of_a = |i: &Value| {
            ["agency", "owner_agency", "code"]
                .iter()
                .any(|k| i[*k].as_str().is_some_and(|a| a.starts_with("HA-NOI")))
                || [&i["id"], &i["incident_id"], &i["ticket_id"]]
                    .iter()
                    .any(|x| {
                        x.as_str() == Some(a_id.as_str()) || x.as_str() == Some(a_inc.as_str())
                    })
                || (i["object_type"] == "ticket" && i["object_id"] == a_id.as_str())
        };
        match v["items"].as_array() {
            Some(items) => items.iter().any(of_a),
            None => {
                let text = v.to_string();
                text.contains(&a_id)
                    || text.contains(&a_inc)
                    || (!asked_for_a && text.contains("HA-NOI"))
            }
        }
    };
    for r in &routes {
        for (role, token) in &b_tokens {
            let (st, v) = call(
                r.method,
                &format!("{url}{}", r.cross),
                Some(&bearer(token)),
                r.body.as_deref(),
                None,
            );
            let what = format!("{role} {} {}", r.method, r.cross);
            assert!(
                !leaks(&v, r.cross.contains("agency=HA-NOI")),
                "{what} leaked: {v}"
            );
            match (r.template, *role) {
                // Sensors (and admins) of B may report attacks on any address: ownership is by
                // address, and nothing of A's is read.
                ("/api/v1/alerts", "sensor" | "admin") => assert_eq!(st, 200, "{what}: {v}"),
                // `{}` is no stats record: 422, after authorization passed.
                ("/api/v1/sensor-stats", "sensor" | "admin") => assert_eq!(st, 422, "{what}: {v}"),
                // The agency list is always the caller's own subtree.
                ("/api/v1/agencies", "analyst" | "responder" | "admin") => {
                    assert_eq!(st, 200, "{what}: {v}");
                    assert_eq!(v["items"][0]["code"], "HO-CHI-MINH-CITY");
                }
                _ => assert!(st == 403 || st == 404, "{what}: {st} {v}"),
            }
            if let Some(u) = &r.unscoped {
                let (st, v) = call(
                    r.method,
                    &format!("{url}{u}"),
                    Some(&bearer(token)),
                    None,
                    None,
                );
                assert!(!leaks(&v, false), "{role} {u} leaked: {v}");
                assert!(st == 200 || st == 403, "{role} {u}: {st} {v}");
            }
        }
    }
    // Nothing was applied to A's ticket.
    let (st, v) = get(&format!("{url}/api/v1/tickets/{a_id}"), &a_admin);
    assert_eq!(st, 200);
    assert_eq!(
        (
            v["seq"].as_u64(),
            v["status"].as_str(),
            v["assignee"].as_str()
        ),
        (Some(1), Some("new"), Some(""))
    );
    // Positive control: A's own admin can read and act through the same requests.
    for r in &routes {
        if r.template == "/api/v1/alerts" || r.template == "/api/v1/sensor-stats" {
            continue;
        }
        let (st, v) = call(
            r.method,
            &format!("{url}{}", r.cross),
            Some(&bearer(&a_admin)),
            r.body.as_deref(),
            None,
        );
        // The bulk acknowledge comes after the ticket was acknowledged and marked a false
        // positive through the single routes: 409 (found, in scope, but not acknowledgeable).
        let want = if r.template == "/api/v1/tickets/acknowledge" {
            409
        } else {
            200
        };
        assert_eq!(st, want, "A admin {} {}: {v}", r.method, r.cross);
    }
    // The denied attempts are in A's audit log (filed under A's agency), not in B's: for
    // analyst, responder and admin, the incident and the ticket (3 × 2); for responder and
    // admin, the four ticket actions and the bulk acknowledge (2 × 5). 16 in all.
    let denied_by_b = || {
        let (_, v) = get(
            &format!("{url}/api/v1/audit?limit=1000&outcome=denied"),
            &a_admin,
        );
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "api.denied" && e["actor_agency"] == "HO-CHI-MINH-CITY")
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(5), || denied_by_b() == 16),
        "{}",
        denied_by_b()
    );
}

/// One received request: lower-cased headers and the body.
type Received = (HashMap<String, String>, String);

/// A tiny HTTP receiver: answers each request with the next status of `script` (then 200),
/// recording (headers, body).
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
}

fn start_receiver(script: Vec<u16>) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g2 = got.clone();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut headers = HashMap::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                }
            }
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let status = script.get(n).copied().unwrap_or(200);
            g2.lock()
                .unwrap()
                .push((headers, String::from_utf8(body).unwrap()));
            let _ = conn.write_all(
                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    Receiver { port, got }
}

#[test]
fn webhooks_are_signed_retried_and_logged() {
    let ch = clickhouse();
    let db = fresh_db("webhooks");
    let tmp = tempfile::tempdir().unwrap();
    // First attempt: 503 (retried), then 200s.
    let rx = start_receiver(vec![503]);
    let secret = "s3cret-webhook-key-0123456789";
    std::fs::write(tmp.path().join("hook.key"), format!("{secret}\n")).unwrap();
    let dir_file = tmp.path().join("dir.toml");
    std::fs::write(
        &dir_file,
        format!(
            "[[policy]]\nname = \"p\"\nticket_severity = 2\nsla = [{{ severity = 2, ack = \"1h\", resolve = \"1d\" }}]\n\
             [[agency]]\ncode = \"ROOT\"\nname = \"Root\"\npolicy = \"p\"\n\
             [[agency]]\ncode = \"MIN\"\nparent = \"ROOT\"\nname = \"Ministry\"\nprefixes = [\"10.9.0.0/16\"]\n\
             [[agency.webhook]]\nurl = \"http://127.0.0.1:{}/hook\"\nsecret_file = \"hook.key\"\n\
             events = [\"ticket.opened\", \"ticket.resolved\"]\n",
            rx.port
        ),
    )
    .unwrap();
    assert_eq!(load_directory(&ch.url(), &db, &dir_file), 2);
    let c = CorrelatorProc::start(&ch.url(), &db, 0, Some(&fast_config(tmp.path())));
    let sensor = create_token(&ch.url(), &db, "sensor", "MIN", "edge-min");
    let responder = create_token(&ch.url(), &db, "responder", "MIN", "min-responder");
    let admin = create_token(&ch.url(), &db, "admin", "ROOT", "root-admin");
    post(
        &c.url,
        &sensor,
        &[alert(
            "edge-min",
            1,
            5001,
            "Misc activity",
            "198.51.100.4",
            "10.9.1.1",
        )],
    );
    assert!(
        wait_until(Duration::from_secs(20), || rx.got.lock().unwrap().len()
            >= 2),
        "deliveries: {:?}",
        rx.got.lock().unwrap()
    );
    let t = wait_tickets(&format!("{}/api/v1/tickets", c.url), &responder, 1).remove(0);
    let id = t["id"].as_str().unwrap().to_owned();
    for s in ["in_progress", "resolved"] {
        let (st, v) = post_json(
            &format!("{}/api/v1/tickets/{id}/status", c.url),
            &responder,
            &format!(r#"{{"status":"{s}"}}"#),
        );
        assert_eq!(st, 200, "{v}");
    }
    assert!(
        wait_until(Duration::from_secs(20), || rx.got.lock().unwrap().len()
            >= 3),
        "deliveries: {:?}",
        rx.got.lock().unwrap()
    );
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "{got:?}");
    let verify = |(h, body): &Received| {
        let ts = h["x-tocsin-timestamp"].clone();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{ts}.{body}").as_bytes());
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(h["x-tocsin-signature"], want, "signature of {body}");
        let age = now_us() / 1_000_000 - ts.parse::<i64>().unwrap();
        assert!((0..120).contains(&age), "timestamp {ts}");
        assert_eq!(h["content-type"], "application/json");
        serde_json::from_str::<Value>(body).unwrap()
    };
    let (first, retry, resolved) = (verify(&got[0]), verify(&got[1]), verify(&got[2]));
    // The retry repeats the delivery (same ID and payload) after the 503.
    assert_eq!(first, retry);
    assert_eq!(got[0].0["x-tocsin-delivery"], got[1].0["x-tocsin-delivery"]);
    assert_eq!(first["event"], "ticket.opened");
    assert_eq!(got[0].0["x-tocsin-event"], "ticket.opened");
    assert_eq!(first["ticket"]["id"], id.as_str());
    assert_eq!(first["ticket"]["agency"], "MIN");
    assert_eq!(resolved["event"], "ticket.resolved");
    assert_eq!(resolved["ticket"]["status"], "resolved");
    assert_ne!(got[2].0["x-tocsin-delivery"], got[0].0["x-tocsin-delivery"]);
    // A tampered body does not verify.
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.{}x", got[0].0["x-tocsin-timestamp"], got[0].1).as_bytes());
    assert_ne!(
        got[0].0["x-tocsin-signature"],
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );

    // The delivery log: attempts in ClickHouse and the admin API (written right after the
    // receiver answered, so poll briefly).
    let want = "ticket.opened\t1\t503\tretry\nticket.opened\t2\t200\tdelivered\nticket.resolved\t1\t200\tdelivered";
    let attempts = || {
        ch_query(
            &ch.url(),
            &format!(
                "SELECT event, attempt, http_status, outcome FROM {db}.webhook_attempts ORDER BY at_us, attempt"
            ),
        )
    };
    assert!(
        wait_until(Duration::from_secs(10), || attempts() == want),
        "{}",
        attempts()
    );
    let states = || {
        let (st, v) = get(
            &format!("{}/api/v1/webhooks/deliveries?ticket_id={id}", c.url),
            &admin,
        );
        assert_eq!(st, 200, "{v}");
        let mut s: Vec<(String, String, u64)> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["event"].as_str().unwrap().to_owned(),
                    d["status"].as_str().unwrap().to_owned(),
                    d["attempts"].as_u64().unwrap(),
                )
            })
            .collect();
        s.sort();
        s
    };
    let want = [
        ("ticket.opened".to_owned(), "delivered".to_owned(), 2),
        ("ticket.resolved".to_owned(), "delivered".to_owned(), 1),
    ];
    assert!(
        wait_until(Duration::from_secs(10), || states() == want),
        "{:?}",
        states()
    );

    // A new alert on the resolved incident's key reopens the ticket (policy `reopen`, the
    // default), with fresh SLA clocks and no second ticket.
    post(
        &c.url,
        &sensor,
        &[alert(
            "edge-min",
            2,
            5001,
            "Misc activity",
            "198.51.100.4",
            "10.9.1.1",
        )],
    );
    let t = wait_tickets(
        &format!("{}/api/v1/tickets?status=reopened", c.url),
        &responder,
        1,
    )
    .remove(0);
    assert_eq!(
        (t["id"].as_str(), t["reopen_count"].as_u64()),
        (Some(id.as_str()), Some(1))
    );
    assert!(t["resolved_at"].is_null(), "{t}");
    assert!(
        us_of(&t["due_at"]) > us_of(&t["opened_at"]) + 3_600_000_000,
        "{t}"
    );
    let (_, all) = get(&format!("{}/api/v1/tickets", c.url), &responder);
    assert_eq!(all["items"].as_array().map(Vec::len), Some(1), "{all}");
}

fn leader(c: &CorrelatorProc) -> bool {
    reqwest::blocking::get(format!("{}/metrics", c.url))
        .and_then(reqwest::blocking::Response::text)
        .is_ok_and(|m| m.lines().any(|l| l == "tocsin_ticket_worker_leader 1"))
}

#[test]
fn escalation_happens_once_per_level_with_two_correlators() {
    let ch = clickhouse();
    let db = fresh_db("escalation");
    let tmp = tempfile::tempdir().unwrap();
    let dir_file = tmp.path().join("dir.toml");
    // Acknowledge within 4 s at every level; unit (level 3) → department → ministry (level 1).
    std::fs::write(
        &dir_file,
        "[[policy]]\nname = \"fast\"\nticket_severity = 2\nsla = [{ severity = 2, ack = \"4s\", resolve = \"1h\" }]\n\
         [[agency]]\ncode = \"ROOT\"\nname = \"Root\"\npolicy = \"fast\"\n\
         [[agency]]\ncode = \"MIN\"\nparent = \"ROOT\"\nname = \"Ministry\"\nprefixes = [\"10.9.0.0/16\"]\n\
         [[agency]]\ncode = \"MIN.D\"\nparent = \"MIN\"\nname = \"Department\"\nprefixes = [\"10.9.9.0/24\"]\n\
         [[agency]]\ncode = \"MIN.D.U\"\nparent = \"MIN.D\"\nname = \"Unit\"\nprefixes = [\"10.9.9.128/25\"]\n",
    )
    .unwrap();
    assert_eq!(load_directory(&ch.url(), &db, &dir_file), 4);
    let cfg = fast_config(tmp.path());
    let mut procs = [
        CorrelatorProc::start(&ch.url(), &db, 0, Some(&cfg)),
        CorrelatorProc::start(&ch.url(), &db, 0, Some(&cfg)),
    ];
    assert!(wait_until(Duration::from_secs(15), || procs
        .iter()
        .filter(|p| leader(p))
        .count()
        == 1));
    let sensor = create_token(&ch.url(), &db, "sensor", "MIN", "edge-min");
    post(
        &procs[0].url,
        &sensor,
        &[alert(
            "edge-min",
            1,
            6001,
            "Misc activity",
            "198.51.100.5",
            "10.9.9.200",
        )],
    );
    let q = |sql: &str| ch_query(&ch.url(), &sql.replace("{db}", &db));
    assert!(wait_until(Duration::from_secs(20), || q(
        "SELECT count() FROM {db}.ticket_events FINAL WHERE action = 'escalated'"
    ) == "1"));
    // The leader dies after the first escalation; the other takes over the lease.
    let l = procs.iter().position(leader).unwrap();
    procs[l].kill();
    let survivor = &procs[1 - l];
    assert!(wait_until(Duration::from_secs(15), || leader(survivor)));
    // Level 1 reached: the third missed deadline is recorded, nothing escalates further.
    assert!(wait_until(Duration::from_secs(30), || q(
        "SELECT count() FROM {db}.ticket_events FINAL WHERE action = 'sla_breached'"
    ) == "3"));
    std::thread::sleep(Duration::from_secs(5)); // a further ack period: nothing more may happen
    assert_eq!(
        q(
            "SELECT escalation_level, agency, uniqExact(event_id) FROM {db}.ticket_events \
           WHERE action = 'escalated' GROUP BY escalation_level, agency ORDER BY escalation_level"
        ),
        "1\tMIN.D\t1\n2\tMIN\t1"
    );
    assert_eq!(
        q(
            "SELECT agency, uniqExact(event_id) FROM {db}.ticket_events WHERE action = 'sla_breached' \
           GROUP BY agency ORDER BY agency"
        ),
        "MIN\t1\nMIN.D\t1\nMIN.D.U\t1"
    );
    assert_eq!(q("SELECT count() FROM {db}.tickets FINAL"), "1");
    assert_eq!(
        q("SELECT agency, owner_agency, escalation_level, seq, status FROM {db}.tickets FINAL"),
        "MIN\tMIN.D.U\t2\t6\tnew"
    );
    // Each escalation waited for the missed deadline: 4 s apart.
    let times = q(
        "SELECT groupArray(at_us) FROM (SELECT at_us FROM {db}.ticket_events FINAL \
                   WHERE action = 'escalated' ORDER BY at_us)",
    );
    let t: Vec<i64> = times
        .trim_matches(['[', ']'])
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(t[1] - t[0], 4_000_000);
}
