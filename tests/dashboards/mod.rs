//! The Grafana dashboards (dashboards/*.json): built from dashboards/build.py, valid against
//! Grafana's dashboard schema, provisioning files that Grafana accepts, and every panel query
//! run against a real ClickHouse holding data produced by the real pipeline.

mod expand;
mod queries;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// The dashboards, by file stem.
fn dashboards() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dashboards_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            out.push((p.file_stem().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn dashboard_files_match_their_generator() {
    let o = Command::new("python3")
        .arg(dashboards_dir().join("build.py"))
        .arg("--check")
        .output()
        .expect("python3 runs (scripts/install-deps installs it)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn dashboards_conform_to_grafana_dashboard_schema() {
    let dir = dashboards_dir().join("schema-check");
    if !dir.join("node_modules/@grafana/schema").is_dir() {
        // scripts/install-deps does this; a checkout that skipped it still gets the check.
        let o = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .expect("npm runs (scripts/install-deps installs nodejs and npm)");
        assert!(
            o.status.success(),
            "npm ci in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = Command::new("node")
        .arg("check.mjs")
        .current_dir(&dir)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("4 dashboards conform"), "{out}");
}

/// The schema check is not a rubber stamp: a broken dashboard fails it.
#[test]
fn schema_check_rejects_a_broken_dashboard() {
    let dir = dashboards_dir().join("schema-check");
    if !dir.join("node_modules/@grafana/schema").is_dir() {
        eprintln!(
            "schema-check not installed yet; dashboards_conform_to_grafana_dashboard_schema installs it"
        );
        dashboards_conform_to_grafana_dashboard_schema();
    }
    let (_, d) = dashboards().remove(0);
    let tmp = tempfile::tempdir().unwrap();
    // One defect per file: tsc reports the first error inside one object literal.
    let mut bad_type = d.clone();
    bad_type["panels"][0]["gridPos"]["w"] = Value::from("wide");
    let mut missing = d;
    missing.as_object_mut().unwrap().remove("schemaVersion");
    let (f1, f2) = (
        tmp.path().join("bad_type.json"),
        tmp.path().join("missing.json"),
    );
    std::fs::write(&f1, bad_type.to_string()).unwrap();
    std::fs::write(&f2, missing.to_string()).unwrap();
    let o = Command::new("node")
        .arg("check.mjs")
        .args([&f1, &f2])
        .current_dir(&dir)
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("schemaVersion"), "{out}");
    assert!(out.contains("not assignable to type 'number'"), "{out}");
}

#[test]
fn dashboards_are_consistent() {
    let boards = dashboards();
    let names: Vec<&str> = boards.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["agency", "incident", "national", "sensors"]);
    let uids: Vec<&str> = boards
        .iter()
        .map(|(_, d)| d["uid"].as_str().unwrap())
        .collect();
    for (name, d) in &boards {
        let mut ids = std::collections::BTreeSet::new();
        for p in d["panels"].as_array().unwrap() {
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "{name}: duplicate panel id"
            );
            let g = &p["gridPos"];
            assert!(
                g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24,
                "{name}/{}: off the grid",
                p["title"]
            );
            for t in p["targets"].as_array().unwrap() {
                assert_eq!(t["datasource"]["type"], "grafana-clickhouse-datasource");
                assert!(!t["rawSql"].as_str().unwrap().is_empty());
            }
            // Drill-down links point at dashboards that exist.
            for l in p["fieldConfig"]["defaults"]["links"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let url = l["url"].as_str().unwrap();
                let uid = url.trim_start_matches("/d/").split('?').next().unwrap();
                assert!(
                    uids.contains(&uid),
                    "{name}: link to unknown dashboard {url}"
                );
            }
        }
    }
}

#[test]
fn provisioning_files_describe_the_datasource_and_dashboards() {
    let p = dashboards_dir().join("provisioning");
    let ds: Value = serde_yaml::from_str(
        &std::fs::read_to_string(p.join("datasources/tocsin-clickhouse.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(ds["apiVersion"], 1);
    let d = &ds["datasources"][0];
    assert_eq!(d["type"], "grafana-clickhouse-datasource");
    for key in ["host", "port", "protocol", "defaultDatabase", "username"] {
        assert!(d["jsonData"][key].is_string(), "jsonData.{key}");
    }
    let prov: Value =
        serde_yaml::from_str(&std::fs::read_to_string(p.join("dashboards/tocsin.yaml")).unwrap())
            .unwrap();
    assert_eq!(prov["providers"][0]["type"], "file");
    assert!(prov["providers"][0]["options"]["path"].is_string());
}

mod seed;

/// Every panel query, on data made by the real pipeline; prints each query's time.
#[test]
fn every_panel_query_runs_on_seeded_data() {
    let tmp = tempfile::tempdir().unwrap();
    let s = seed::seed(tmp.path());
    // The range an analyst would pick: from a bit before the first alert to a bit after now,
    // with the interval Grafana derives for ~1000 points (at least a minute).
    let (from, to) = (s.first_s - 600, s.last_s + 600);
    let range = expand::Range {
        from,
        to,
        interval_s: ((to - from) / 1000).max(60),
    };
    let report = queries::run_all(&s.ch_url, &s.db, range);
    assert_eq!(
        report.len(),
        31,
        "every panel ran once with default variables"
    );
    for r in &report {
        println!(
            "{:<10} {:<40} {:>5} rows {:>7.1} ms",
            r.dashboard,
            r.panel,
            r.rows,
            r.elapsed.as_secs_f64() * 1e3
        );
    }
}
