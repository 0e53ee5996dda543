//! Runs the whole sensor (decode, flows, detection with a small rule set, EVE output) over
//! arbitrary pcap bytes, like Suricata's fuzz_sigpcap.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tocsin_sensor::config::SensorConfig;
use tocsin_sensor::detect::Engine;
use tocsin_sensor::detect::rule::{LoadReport, Vars, load_str};
use tocsin_sensor::output::eve::MemorySink;
use tocsin_sensor::pipeline::{RunOptions, run_pcap};

const RULES: &str = r#"
alert tcp any any -> any any (msg:"content"; content:"GET"; sid:1;)
alert ip any any -> any any (msg:"ttl"; ttl:<5; sid:2;)
alert udp any any -> any 53 (msg:"dns-ish"; content:"|01 00 00 01|"; offset:2; depth:4; sid:3;)
alert tcp any any -> any any (msg:"flowbits"; content:"a"; flowbits:set,x; sid:4;)
alert tcp any any -> any any (msg:"pcre"; flowbits:isset,x; pcre:"/b+c/R"; sid:5;)
"#;

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        let mut report = LoadReport::default();
        load_str(RULES, "fuzz.rules".as_ref(), &Vars::suricata_defaults(), &mut report);
        let cfg = SensorConfig::default();
        let (e, _) = Engine::build(&report.rules, &cfg.classifications().unwrap(), cfg.detect.clone()).unwrap();
        e
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("tocsin-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.pcap");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let mut sink = MemorySink::default();
    let _ = run_pcap(engine(), &SensorConfig::default(), &path, &mut sink, RunOptions::default());
});
