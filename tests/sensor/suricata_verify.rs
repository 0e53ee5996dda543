//! Runs the suricata-verify tests in `../shared/testdata/suricata-verify` through
//! `tocsin sensor` and evaluates each test.yaml's checks the way suricata-verify does:
//! count the EVE records matching every `match` key (dotted paths into the JSON) and
//! compare with `count`.
//!
//! Prints `N passed, M failed` with the failures, and fails when a test listed in
//! `tests/sensor/suricata-verify-expected-pass.txt` does not pass. `UPDATE_EXPECTED=1`
//! rewrites that list from the current results (review the diff before committing).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{shared_testdata, tocsin_bin};

const EXPECTED: &str = "tests/sensor/suricata-verify-expected-pass.txt";

struct Case {
    name: String,
    dir: PathBuf,
    pcap: PathBuf,
}

fn cases(root: &Path) -> Vec<Case> {
    let index = std::fs::read_to_string(root.join("INDEX.tsv")).expect("INDEX.tsv");
    let mut lines = index.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (c_name, c_pcap) = (col("name"), col("pcap_file"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let dir = root.join("tests").join(f[c_name]);
            Case {
                name: f[c_name].to_owned(),
                pcap: dir.join(f[c_pcap]),
                dir,
            }
        })
        .collect()
}

/// Value at a dotted path (`alert.signature_id`).
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, key| cur.get(key))
}

/// suricata-verify compares YAML scalars with JSON values loosely: 1 == "1".
fn scalar_eq(json: &Value, yaml: &serde_yaml::Value) -> bool {
    match (json, yaml) {
        (Value::Number(n), serde_yaml::Value::Number(m)) => n.to_string() == m.to_string(),
        (Value::String(s), serde_yaml::Value::String(t)) => s == t,
        (Value::Bool(a), serde_yaml::Value::Bool(b)) => a == b,
        (Value::String(s), serde_yaml::Value::Number(m)) => *s == m.to_string(),
        (Value::Number(n), serde_yaml::Value::String(t)) => n.to_string() == *t,
        _ => false,
    }
}

fn run_case(case: &Case, out_root: &Path) -> Result<(), String> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(case.dir.join("test.yaml")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("test.yaml: {e}"))?;
    let rules: Vec<PathBuf> = std::fs::read_dir(&case.dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    let log_dir = out_root.join(case.name.replace('/', "_"));
    std::fs::create_dir_all(&log_dir).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(tocsin_bin());
    cmd.arg("sensor")
        .arg("-r")
        .arg(&case.pcap)
        .arg("-l")
        .arg(&log_dir)
        .arg("--no-progress")
        .env("RUST_LOG", "error");
    for r in &rules {
        cmd.arg("-S").arg(r);
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "tocsin failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let eve = std::fs::read_to_string(log_dir.join("eve.json")).unwrap_or_default();
    let records: Vec<Value> = eve
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("bad EVE line: {e}")))
        .collect::<Result<_, _>>()?;
    let checks = yaml
        .get("checks")
        .and_then(serde_yaml::Value::as_sequence)
        .ok_or("test.yaml has no checks")?;
    let mut failures = Vec::new();
    for check in checks {
        let Some(filter) = check.get("filter") else {
            return Err(format!("unsupported check kind: {check:?}"));
        };
        let want = filter
            .get("count")
            .and_then(serde_yaml::Value::as_u64)
            .unwrap_or(0);
        let empty = serde_yaml::Mapping::new();
        let matchers = filter
            .get("match")
            .and_then(serde_yaml::Value::as_mapping)
            .unwrap_or(&empty);
        let got = records
            .iter()
            .filter(|r| {
                matchers.iter().all(|(k, v)| {
                    let k = k.as_str().unwrap_or_default();
                    lookup(r, k).is_some_and(|j| scalar_eq(j, v))
                })
            })
            .count() as u64;
        if got != want {
            let desc: Vec<String> = matchers
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        k.as_str().unwrap_or("?"),
                        serde_yaml::to_string(v).unwrap_or_default().trim()
                    )
                })
                .collect();
            failures.push(format!("[{}] want {want} got {got}", desc.join(" ")));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

#[test]
fn suricata_verify() {
    let Some(data) = shared_testdata() else {
        return;
    };
    let root = data.join("suricata-verify");
    let tmp = tempfile::tempdir().unwrap();
    let mut passed = BTreeSet::new();
    let mut failed = Vec::new();
    let all = cases(&root);
    for case in &all {
        match run_case(case, tmp.path()) {
            Ok(()) => {
                passed.insert(case.name.clone());
            }
            Err(why) => failed.push((case.name.clone(), why)),
        }
    }
    eprintln!(
        "suricata-verify: {} passed, {} failed (of {})",
        passed.len(),
        failed.len(),
        all.len()
    );
    for (name, why) in &failed {
        eprintln!("  FAIL {name}: {why}");
    }
    let expected_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXPECTED);
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        let body: String = passed.iter().map(|n| format!("{n}\n")).collect();
        std::fs::write(&expected_path, body).unwrap();
        return;
    }
    let expected: BTreeSet<String> = std::fs::read_to_string(&expected_path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let regressions: Vec<_> = expected.difference(&passed).collect();
    assert!(
        regressions.is_empty(),
        "suricata-verify regressions (listed as expected to pass): {regressions:?}"
    );
    let newly: Vec<_> = passed.difference(&expected).collect();
    if !newly.is_empty() {
        eprintln!("newly passing (add them to {EXPECTED}): {newly:?}");
    }
}
