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
