//! Counters of one sensor run: what came in, what was dropped and why, what alerted.

use std::collections::BTreeMap;
use std::time::Duration;

/// Totals for a run (or, summed, for several workers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Frames read from the capture.
    pub packets: u64,
    /// Bytes of those frames as captured.
    pub bytes: u64,
    /// Frames that could not be decoded, by reason (`tocsin_decode_errors_total{kind}`).
    pub decode_errors: BTreeMap<&'static str, u64>,
    /// Packets decoded with an anomaly above the IP layer (still inspected at IP level).
    pub decode_anomalies: BTreeMap<&'static str, u64>,
    /// Packets skipped because their checksum was wrong (only with checksum validation).
    pub bad_checksums: u64,
    /// Alerts written.
    pub alerts: u64,
    /// Flows created.
    pub flows: u64,
    /// Flows evicted because the flow table was full.
    pub flows_evicted: u64,
    /// Stage counters by dotted name (`defrag.overlaps`, `tcp.gaps`, `flow.evicted`, ...).
    pub stages: BTreeMap<&'static str, u64>,
    /// Packets handled per worker thread (load balance).
    pub worker_packets: Vec<u64>,
}

impl RunStats {
    /// Adds another worker's counters.
    pub fn merge(&mut self, other: &Self) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        for (k, v) in &other.decode_errors {
            *self.decode_errors.entry(k).or_insert(0) += v;
        }
        for (k, v) in &other.decode_anomalies {
            *self.decode_anomalies.entry(k).or_insert(0) += v;
        }
        self.bad_checksums += other.bad_checksums;
        self.alerts += other.alerts;
        self.flows += other.flows;
        self.flows_evicted += other.flows_evicted;
        for (k, v) in &other.stages {
            *self.stages.entry(k).or_insert(0) += v;
        }
        self.worker_packets.extend_from_slice(&other.worker_packets);
    }

    /// Adds stage counters (`(name, value)` pairs from a stage's `counters()`).
    pub fn add_stage(&mut self, counters: &[(&'static str, u64)]) {
        for (k, v) in counters {
            *self.stages.entry(k).or_insert(0) += v;
        }
    }

    /// Suricata-style `stats` object: `decoder`, `flow`, `defrag`, `tcp`, `detect`, ...
    #[must_use]
    pub fn to_json(&self, elapsed: Duration) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let mut root = Map::new();
        root.insert("uptime".into(), json!(elapsed.as_secs()));
        root.insert(
            "decoder".into(),
            json!({
                "pkts": self.packets,
                "bytes": self.bytes,
                "invalid": self.decode_error_total(),
                "errors": self.decode_errors,
                "anomalies": self.decode_anomalies,
                "bad_checksums": self.bad_checksums,
            }),
        );
        root.insert("detect".into(), json!({ "alert": self.alerts }));
        for (name, v) in &self.stages {
            let (section, key) = name.split_once('.').unwrap_or(("other", name));
            let entry = root
                .entry(section.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = entry {
                m.insert(key.to_owned(), json!(v));
            }
        }
        if !self.worker_packets.is_empty() {
            root.insert("workers".into(), json!({ "packets": self.worker_packets }));
        }
        Value::Object(root)
    }

    /// Total undecodable frames.
    #[must_use]
    pub fn decode_error_total(&self) -> u64 {
        self.decode_errors.values().sum()
    }

    /// The one-line summary printed at the end of a run.
    #[must_use]
    pub fn summary(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mbit = self.bytes as f64 * 8.0 / secs / 1e6;
        let mb = self.bytes as f64 / 1e6;
        let mut line = format!(
            "{} packets, {mb:.1} MB, {} alerts, {} flows, {secs:.2} s, {mbit:.1} Mbit/s",
            self.packets, self.alerts, self.flows
        );
        let errs = self.decode_error_total();
        if errs > 0 {
            line.push_str(&format!(", {errs} undecodable"));
        }
        if self.bad_checksums > 0 {
            line.push_str(&format!(", {} bad checksums", self.bad_checksums));
        }
        line
    }
}
