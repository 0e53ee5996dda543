//! Counters and gauges, rendered as Prometheus text at `GET /metrics`.
//!
//! Names follow `tocsin_<stage>_<what>_<unit>`; dashboards chart them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// All counters of one correlator process.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Alerts stored.
    pub alerts_accepted: AtomicU64,
    /// Alerts answered as duplicates.
    pub alerts_duplicate: AtomicU64,
    /// Lines rejected.
    pub lines_rejected: AtomicU64,
    /// Requests answered 2xx.
    pub requests_ok: AtomicU64,
    /// Requests answered 4xx.
    pub requests_client_error: AtomicU64,
    /// Requests answered 429.
    pub requests_busy: AtomicU64,
    /// Requests answered 503.
    pub requests_unavailable: AtomicU64,
    /// Batches written to ClickHouse.
    pub store_batches: AtomicU64,
    /// Failed ClickHouse batch writes.
    pub store_errors: AtomicU64,
    /// Alerts waiting for the writer.
    pub queue_alerts: AtomicI64,
    /// Incidents open in memory (dedup).
    pub incidents_open: AtomicI64,
    /// Incident rows written.
    pub incident_rows: AtomicU64,
    /// 1 while ClickHouse answers.
    pub clickhouse_up: AtomicI64,
    /// Sum of batch store latencies, µs.
    pub store_latency_us_sum: AtomicU64,
}

impl Metrics {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Renders Prometheus text exposition format 0.0.4.
    #[must_use]
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(2048);
        let c = |s: &mut String, name: &str, help: &str, kind: &str, v: String| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
        let gi = |a: &AtomicI64| a.load(Ordering::Relaxed).to_string();
        let _ = writeln!(
            s,
            "# HELP tocsin_ingest_alerts_total Alerts received, by outcome.\n# TYPE tocsin_ingest_alerts_total counter\n\
             tocsin_ingest_alerts_total{{result=\"accepted\"}} {}\n\
             tocsin_ingest_alerts_total{{result=\"duplicate\"}} {}\n\
             tocsin_ingest_alerts_total{{result=\"rejected\"}} {}",
            g(&self.alerts_accepted),
            g(&self.alerts_duplicate),
            g(&self.lines_rejected)
        );
        let _ = writeln!(
            s,
            "# HELP tocsin_ingest_requests_total Ingest requests, by answer class.\n# TYPE tocsin_ingest_requests_total counter\n\
             tocsin_ingest_requests_total{{code=\"2xx\"}} {}\n\
             tocsin_ingest_requests_total{{code=\"4xx\"}} {}\n\
             tocsin_ingest_requests_total{{code=\"429\"}} {}\n\
             tocsin_ingest_requests_total{{code=\"503\"}} {}",
            g(&self.requests_ok),
            g(&self.requests_client_error),
            g(&self.requests_busy),
            g(&self.requests_unavailable)
        );
        c(
            &mut s,
            "tocsin_store_batches_total",
            "Batches written to ClickHouse.",
            "counter",
            g(&self.store_batches),
        );
        c(
            &mut s,
            "tocsin_store_errors_total",
            "Failed ClickHouse batch writes.",
            "counter",
            g(&self.store_errors),
        );
        c(
            &mut s,
            "tocsin_store_latency_seconds_sum",
            "Total time spent storing batches.",
            "counter",
            format!(
                "{:.6}",
                self.store_latency_us_sum.load(Ordering::Relaxed) as f64 / 1e6
            ),
        );
        c(
            &mut s,
            "tocsin_ingest_queue_alerts",
            "Alerts waiting for the writer.",
            "gauge",
            gi(&self.queue_alerts),
        );
        c(
            &mut s,
            "tocsin_incidents_open",
            "Dedup incidents open in memory.",
            "gauge",
            gi(&self.incidents_open),
        );
        c(
            &mut s,
            "tocsin_incident_rows_total",
            "Incident versions written.",
            "counter",
            g(&self.incident_rows),
        );
        c(
            &mut s,
            "tocsin_clickhouse_up",
            "1 while ClickHouse answers.",
            "gauge",
            gi(&self.clickhouse_up),
        );
        s
    }
}
