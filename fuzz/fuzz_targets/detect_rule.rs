//! Fuzzes the rule parser: arbitrary text must give a rule or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin_sensor::detect::rule::{Vars, parse_rule};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let vars = Vars::suricata_defaults();
    let _ = parse_rule(&text, &vars);
    // Also as the options of a well-formed header, where most of the parser lives.
    let _ = parse_rule(&format!("alert tcp any any -> any any ({text})"), &vars);
});
