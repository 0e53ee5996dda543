//! Operator packaging: the systemd units start commands the binary accepts, and the example
//! configuration files parse and name every option.

use std::path::Path;
use std::process::Command;

use crate::common::tocsin_bin;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `ExecStart=` of a unit, continuation lines joined, split into words.
fn exec_start(unit: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("packaging/systemd").join(unit)).unwrap();
    let joined = text.replace("\\\n", " ");
    let line = joined
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("{unit}: no ExecStart"));
    line.split_whitespace().map(str::to_owned).collect()
}

/// Each unit's command line parses: the same arguments plus `--help` exit 0 (clap rejects an
/// unknown flag or a missing value before it looks at `--help`).
#[test]
fn systemd_units_start_commands_the_binary_accepts() {
    for (unit, sub) in [
        ("tocsin-sensor@.service", "sensor"),
        ("tocsin-correlator.service", "correlator"),
    ] {
        let argv = exec_start(unit);
        assert_eq!(argv[0], "/usr/local/bin/tocsin", "{unit}");
        assert_eq!(argv[1], sub, "{unit}");
        let args: Vec<String> = argv[1..].iter().map(|a| a.replace("%i", "eth1")).collect();
        let o = Command::new(tocsin_bin())
            .args(&args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{unit}: `tocsin {}` is not accepted: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Every `key = value` of a TOML example, commented out or not, as `section.key`.
fn documented_keys(text: &str) -> std::collections::BTreeSet<String> {
    let mut section = String::new();
    let mut keys = std::collections::BTreeSet::new();
    for line in text.lines() {
        let l = line.trim_start_matches('#').trim();
        // A section header, commented out or not (optional sections are shown commented).
        if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.trim_matches(|c| c == '[' || c == ']').to_owned();
            continue;
        }
        if let Some((k, _)) = l.split_once(" = ")
            && k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            keys.insert(if section.is_empty() {
                k.to_owned()
            } else {
                format!("{section}.{k}")
            });
        }
    }
    keys
}

/// `section.key` for every leaf of a serialized config (tables of tables flattened).
fn leaf_keys(v: &toml::Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    if let toml::Value::Table(t) = v {
        for (k, v) in t {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(_) => leaf_keys(v, &name, out),
                _ => {
                    out.insert(name);
                }
            }
        }
    }
}

/// The example names every option, its values are the real defaults, and it loads.
#[test]
fn correlator_example_config_documents_every_option_with_its_default() {
    use tocsin_correlator::config::CorrelatorConfig;
    let path = repo().join("correlator.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let parsed = CorrelatorConfig::from_file(&path).unwrap();
    let as_value = |c: &CorrelatorConfig| toml::Value::try_from(c).unwrap();
    assert_eq!(
        as_value(&parsed),
        as_value(&CorrelatorConfig::default()),
        "the example's values differ from the defaults"
    );
    let mut want = std::collections::BTreeSet::new();
    leaf_keys(&as_value(&CorrelatorConfig::default()), "", &mut want);
    // Options without a default (paths) appear commented out.
    for k in [
        "clickhouse.password_file",
        "clickhouse.ca_cert",
        "tls.cert",
        "tls.key",
        "tls.client_ca",
        "correlation.rules_file",
    ] {
        want.insert(k.to_owned());
    }
    want.remove("dedup.override");
    let have = documented_keys(&text);
    let missing: Vec<_> = want.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "not in correlator.example.toml: {missing:?}"
    );
}

/// Field paths (`section.key`) of a `{:#?}` rendering of a config struct.
fn debug_paths(debug: &str) -> std::collections::BTreeSet<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut out = std::collections::BTreeSet::new();
    for line in debug.lines().skip(1) {
        let l = line.trim();
        if l == "}," || l == ")," || l == "}" || l == ")" {
            stack.pop();
            continue;
        }
        if let Some((name, rest)) = l.split_once(": ") {
            if rest.ends_with('{') || rest.ends_with('(') {
                stack.push(name.to_owned());
            } else {
                let mut p: Vec<&str> = stack
                    .iter()
                    .map(String::as_str)
                    .filter(|s| !s.is_empty())
                    .collect();
                p.push(name);
                out.insert(p.join("."));
            }
        } else if l.ends_with('{') {
            // `ForwardConfig {` inside `Some(`: no name of its own.
            stack.push(String::new());
        }
    }
    out
}

/// The sensor example names every option, its values are the defaults, and it loads.
#[test]
fn sensor_example_config_documents_every_option_with_its_default() {
    use tocsin_sensor::config::SensorConfig;
    let path = repo().join("tocsin.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let parsed = SensorConfig::load(&path).unwrap();
    assert_eq!(
        format!("{parsed:?}"),
        format!("{:?}", SensorConfig::default()),
        "the example's values differ from the defaults"
    );
    let full = SensorConfig {
        forward: Some(tocsin_sensor::output::forward::ForwardConfig::default()),
        ..SensorConfig::default()
    };
    let mut want = debug_paths(&format!("{full:#?}"));
    // Maps documented by example entries; a field the TOML never reads.
    want.retain(|k| !k.starts_with("vars.") && k != "flow.midstream");
    for k in [
        "classification_file",
        "forward.ca_cert",
        "forward.client_cert",
        "forward.client_key",
    ] {
        assert!(want.contains(k), "debug_paths missed {k}: {want:?}");
    }
    let have = documented_keys(&text);
    let missing: Vec<_> = want.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "not in tocsin.example.toml: {missing:?}"
    );
}
