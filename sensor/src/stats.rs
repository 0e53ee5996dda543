//! Counters of one sensor run: what came in, what was dropped and why, what alerted.
//!
//! Workers own their counters (no shared atomics on the hot path); a run sums them with
//! [`RunStats::merge_worker`]. Live runs add capture counters ([`CaptureCounters`]: kernel
//! and queue drops) and memory gauges ([`MemoryGauges`]) to each periodic snapshot.

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
    /// Microseconds each worker thread spent processing packets (its load is this over
    /// the elapsed time), in worker order. Empty for single-threaded runs.
    pub worker_busy_us: Vec<u64>,
    /// Gauge: flows held in the flow tables at the time of the snapshot (0 at the end).
    pub flows_active: u64,
    /// Live capture counters (`None` for pcap files).
    pub capture: Option<CaptureCounters>,
    /// Memory gauges (`None` when not measured).
    pub memory: Option<MemoryGauges>,
}

/// Counters of a live capture, as of the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureCounters {
    /// Packets the kernel accepted for the capture (passed the BPF filter), dropped or not.
    pub kernel_received: u64,
    /// Packets the kernel dropped because the capture ring was full (the sensor fell behind).
    pub kernel_dropped: u64,
    /// Packets the interface or its driver dropped.
    pub if_dropped: u64,
    /// Packets the capture thread dropped because a worker's queue was full, per worker.
    pub queue_dropped: Vec<u64>,
    /// Frames cut by the snaplen (inspected as far as captured).
    pub truncated: u64,
}

impl CaptureCounters {
    /// Packets dropped for a full worker queue, all workers.
    #[must_use]
    pub fn queue_dropped_total(&self) -> u64 {
        self.queue_dropped.iter().sum()
    }
}

/// Memory in use, as of the snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryGauges {
    /// Resident set size of the process (`/proc/self/statm`), bytes; 0 where unknown.
    pub rss_bytes: u64,
    /// Bytes held by TCP reassembly (charged to `stream.memcap`).
    pub stream_bytes: u64,
    /// The reassembly memcap.
    pub stream_memcap: u64,
    /// Bytes held by IP defragmentation.
    pub defrag_bytes: u64,
}

impl MemoryGauges {
    /// The resident set size of this process in bytes, from `/proc/self/statm` (Linux); 0
    /// elsewhere or when it cannot be read.
    #[must_use]
    pub fn process_rss() -> u64 {
        let Ok(text) = std::fs::read_to_string("/proc/self/statm") else {
            return 0;
        };
        let pages: u64 = text
            .split_ascii_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        // The kernel reports pages; 4 KiB on every platform Tocsin runs on (x86_64).
        pages.saturating_mul(4096)
    }
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
        self.worker_busy_us.extend_from_slice(&other.worker_busy_us);
        self.flows_active += other.flows_active;
    }

    /// Adds one worker thread's counters to a run whose capture thread counted packets and
    /// bytes itself: the worker's packet count goes to [`RunStats::worker_packets`], its
    /// busy time to [`RunStats::worker_busy_us`], everything else is summed.
    pub fn merge_worker(&mut self, worker: &Self, busy_us: u64) {
        let (packets, bytes) = (self.packets, self.bytes);
        self.merge(&Self {
            worker_packets: Vec::new(),
            worker_busy_us: Vec::new(),
            ..worker.clone()
        });
        self.packets = packets;
        self.bytes = bytes;
        self.worker_packets.push(worker.packets);
        self.worker_busy_us.push(busy_us);
    }

    /// Packets dropped before inspection for any reason: kernel ring full, interface,
    /// worker queue full, undecodable, bad checksum.
    #[must_use]
    pub fn dropped_total(&self) -> u64 {
        let capture = self.capture.as_ref().map_or(0, |c| {
            c.kernel_dropped + c.if_dropped + c.queue_dropped_total()
        });
        capture + self.decode_error_total() + self.bad_checksums
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
        if let Some(Value::Object(flow)) = root.get_mut("flow") {
            flow.insert("active".into(), json!(self.flows_active));
        } else {
            root.insert("flow".into(), json!({ "active": self.flows_active }));
        }
        let stage = |name: &str| self.stages.get(name).copied().unwrap_or(0);
        let cap = self.capture.clone().unwrap_or_default();
        root.insert(
            "drops".into(),
            json!({
                "kernel": cap.kernel_dropped,
                "interface": cap.if_dropped,
                "queue_full": cap.queue_dropped_total(),
                "invalid": self.decode_error_total(),
                "bad_checksum": self.bad_checksums,
                "defrag_memcap": stage("defrag.memcap_drops"),
                "defrag_trackers": stage("defrag.tracker_drops"),
                "tcp_memcap": stage("tcp.memcap_drops"),
                "flow_evicted": self.flows_evicted,
            }),
        );
        if let Some(c) = &self.capture {
            root.insert(
                "capture".into(),
                json!({
                    "kernel_packets": c.kernel_received,
                    "kernel_drops": c.kernel_dropped,
                    "kernel_ifdrops": c.if_dropped,
                    "queue_drops": c.queue_dropped,
                    "truncated": c.truncated,
                }),
            );
        }
        if let Some(m) = &self.memory {
            root.insert(
                "memory".into(),
                json!({
                    "rss_bytes": m.rss_bytes,
                    "stream_bytes": m.stream_bytes,
                    "stream_memcap": m.stream_memcap,
                    "defrag_bytes": m.defrag_bytes,
                }),
            );
        }
        if !self.worker_packets.is_empty() {
            let secs = elapsed.as_secs_f64().max(1e-9);
            let load: Vec<f64> = self
                .worker_busy_us
                .iter()
                .map(|&us| ((us as f64 / 1e6 / secs) * 1000.0).round() / 1000.0)
                .collect();
            root.insert(
                "workers".into(),
                json!({ "packets": self.worker_packets, "busy_us": self.worker_busy_us, "load": load }),
            );
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
        if let Some(c) = &self.capture {
            line.push_str(&format!(
                ", drops: {} kernel, {} interface, {} queue full",
                c.kernel_dropped,
                c.if_dropped,
                c.queue_dropped_total()
            ));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_merge_keeps_capture_totals_and_lists_loads() {
        // The capture thread saw 10 packets of 1,000 bytes; two workers inspected 6 and 3
        // (1 was dropped for a full queue of worker 1).
        let mut run = RunStats {
            packets: 10,
            bytes: 1_000,
            capture: Some(CaptureCounters {
                kernel_received: 12,
                kernel_dropped: 2,
                if_dropped: 0,
                queue_dropped: vec![0, 1],
                truncated: 0,
            }),
            ..RunStats::default()
        };
        let w0 = RunStats {
            packets: 6,
            alerts: 2,
            flows: 3,
            flows_active: 1,
            ..RunStats::default()
        };
        let mut w1 = RunStats {
            packets: 3,
            alerts: 1,
            flows: 1,
            bad_checksums: 1,
            ..RunStats::default()
        };
        w1.decode_errors.insert("truncated", 1);
        run.merge_worker(&w0, 500_000);
        run.merge_worker(&w1, 250_000);
        assert_eq!((run.packets, run.bytes), (10, 1_000));
        assert_eq!(run.worker_packets, [6, 3]);
        assert_eq!((run.alerts, run.flows, run.flows_active), (3, 4, 1));
        // 2 kernel + 1 queue + 1 undecodable + 1 bad checksum.
        assert_eq!(run.dropped_total(), 5);
        let j = run.to_json(Duration::from_secs(1));
        assert_eq!(j["drops"]["kernel"], 2);
        assert_eq!(j["drops"]["queue_full"], 1);
        assert_eq!(j["drops"]["invalid"], 1);
        assert_eq!(j["drops"]["bad_checksum"], 1);
        assert_eq!(j["capture"]["queue_drops"], serde_json::json!([0, 1]));
        assert_eq!(j["flow"]["active"], 1);
        // Busy 0.5 s and 0.25 s out of 1 s.
        assert_eq!(j["workers"]["load"], serde_json::json!([0.5, 0.25]));
        assert!(
            run.summary(Duration::from_secs(1))
                .ends_with("drops: 2 kernel, 0 interface, 1 queue full"),
            "{}",
            run.summary(Duration::from_secs(1))
        );
    }
}
