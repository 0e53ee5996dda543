//! Tocsin vs Suricata 7 on real captures with the full ET Open ruleset.
//!
//! `../shared/testdata/pcaps/suricata-7-et-open/NAME.eve.json` holds what Suricata 7.0.10
//! alerted on `../NAME.pcap` with every ET Open rule enabled and HOME_NET/EXTERNAL_NET set
//! to `any`. This test does the same with Tocsin and compares, per pcap, the multisets of
//! (sid, src_ip, src_port, dest_ip, dest_port, proto). It prints matches, misses and extras
//! per sid (and checks that two worker threads give the same alerts as one), and fails
//! when a difference is not listed in `et-open-known-diffs.txt` (one
//! `pcap sid miss|extra count` per line, each with the reason it is known), or when a listed
//! difference has disappeared (then shrink the list).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tocsin_sensor::config::SensorConfig;
use tocsin_sensor::detect::Engine;
use tocsin_sensor::detect::rule::{self, LoadReport};
use tocsin_sensor::output::eve::MemorySink;
use tocsin_sensor::pipeline::{RunOptions, run_pcap};

use crate::common::shared_testdata;

const KNOWN: &str = "tests/sensor/et-open-known-diffs.txt";

type Key = (u64, String, u64, String, u64, String);

fn key_of(v: &Value) -> Key {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    (
        v.pointer("/alert/signature_id")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        s("src_ip"),
        n("src_port"),
        s("dest_ip"),
        n("dest_port"),
        s("proto"),
    )
}

fn multiset(lines: impl Iterator<Item = Value>) -> BTreeMap<Key, i64> {
    let mut m = BTreeMap::new();
    for v in lines {
        *m.entry(key_of(&v)).or_insert(0) += 1;
    }
    m
}

/// All ET Open rules with the commented-out ones enabled, as the reference run used them.
fn enabled_rules(dir: &Path, out: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    files.sort();
    let mut text = String::new();
    for f in files {
        let body = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        for line in body.lines() {
            let enabled = ["alert ", "drop ", "reject ", "pass "]
                .iter()
                .find_map(|a| {
                    line.strip_prefix(&format!("# {a}"))
                        .or_else(|| line.strip_prefix(&format!("#{a}")))
                        .map(|rest| format!("{a}{rest}"))
                });
            text.push_str(enabled.as_deref().unwrap_or(line));
            text.push('\n');
        }
    }
    let path = out.join("et-enabled.rules");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn et_open_alerts_match_suricata() {
    let Some(data) = shared_testdata() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rules = enabled_rules(&data.join("rules/et-open/rules"), tmp.path());
    let mut cfg = SensorConfig::default();
    cfg.vars.address.insert("HOME_NET".into(), "any".into());
    cfg.vars.address.insert("EXTERNAL_NET".into(), "any".into());
    let report: LoadReport = rule::load_files(&[rules], &cfg.rule_vars().unwrap());
    let (engine, compile_rejects) = Engine::build(
        &report.rules,
        &cfg.classifications().unwrap(),
        cfg.detect.clone(),
    )
    .unwrap();
    eprintln!(
        "ET Open (all enabled): {} loaded, {} rejected",
        engine.stats().signatures,
        report.rejected.len() + compile_rejects.len()
    );
    let reference = data.join("pcaps/suricata-7-et-open");
    let mut pcaps: Vec<PathBuf> = std::fs::read_dir(data.join("pcaps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    pcaps.sort();
    let mut diffs: BTreeMap<(String, u64, &'static str), i64> = BTreeMap::new();
    let (mut total_ref, mut total_matched, mut total_ours) = (0i64, 0i64, 0i64);
    for pcap in &pcaps {
        let name = pcap.file_stem().unwrap().to_string_lossy().into_owned();
        let expected_text =
            std::fs::read_to_string(reference.join(format!("{name}.eve.json"))).unwrap();
        let expected = multiset(
            expected_text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap()),
        );
        let mut sink = MemorySink::default();
        // Each reference run was a separate Suricata process.
        engine.reset_thresholds();
        run_pcap(&engine, &cfg, pcap, &mut sink, RunOptions::default()).unwrap();
        let ours = multiset(
            sink.lines
                .iter()
                .map(|l| serde_json::from_slice(l).unwrap()),
        );
        let mut per_sid: BTreeMap<u64, (i64, i64, i64)> = BTreeMap::new();
        for (k, &n) in &expected {
            let m = ours.get(k).copied().unwrap_or(0);
            let e = per_sid.entry(k.0).or_default();
            e.0 += n.min(m);
            e.1 += (n - m).max(0);
        }
        for (k, &m) in &ours {
            let n = expected.get(k).copied().unwrap_or(0);
            per_sid.entry(k.0).or_default().2 += (m - n).max(0);
        }
        for (sid, (matched, missed, extra)) in &per_sid {
            total_matched += matched;
            if *missed > 0 {
                diffs.insert((name.clone(), *sid, "miss"), *missed);
            }
            if *extra > 0 {
                diffs.insert((name.clone(), *sid, "extra"), *extra);
            }
        }
        total_ref += expected.values().sum::<i64>();
        total_ours += ours.values().sum::<i64>();
    }
    eprintln!(
        "ET Open pcaps: Suricata {total_ref} alerts, Tocsin {total_ours}; {total_matched} match, {} missed, {} extra",
        diffs
            .iter()
            .filter(|(k, _)| k.2 == "miss")
            .map(|(_, v)| v)
            .sum::<i64>(),
        diffs
            .iter()
            .filter(|(k, _)| k.2 == "extra")
            .map(|(_, v)| v)
            .sum::<i64>()
    );
    for ((pcap, sid, kind), n) in &diffs {
        eprintln!("  {pcap} {sid} {kind} {n}");
    }
    let known_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(KNOWN);
    let known: BTreeMap<(String, u64, String), i64> = std::fs::read_to_string(&known_path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                (f[0].to_owned(), f[1].parse().unwrap(), f[2].to_owned()),
                f[3].parse().unwrap(),
            )
        })
        .collect();
    let unexpected: Vec<_> = diffs
        .iter()
        .filter(|((p, s, k), n)| known.get(&(p.clone(), *s, (*k).to_owned())) != Some(n))
        .collect();
    let gone: Vec<_> = known
        .keys()
        .filter(|(p, s, k)| {
            !diffs
                .keys()
                .any(|(p2, s2, k2)| p2 == p && s2 == s && k2 == k)
        })
        .collect();
    assert!(
        unexpected.is_empty() && gone.is_empty(),
        "differences from Suricata not in {KNOWN}: {unexpected:?}; listed but gone: {gone:?}"
    );
}
