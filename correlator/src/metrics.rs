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
    /// Tickets opened by this process (as the ticket worker).
    pub tickets_opened: AtomicU64,
    /// Escalations written by this process.
    pub escalations: AtomicU64,
    /// SLA breaches recorded: acknowledge deadlines.
    pub sla_breaches_ack: AtomicU64,
    /// SLA breaches recorded: resolve deadlines.
    pub sla_breaches_resolve: AtomicU64,
    /// Webhook deliveries that succeeded.
    pub webhook_delivered: AtomicU64,
    /// Webhook attempts that failed and will be retried.
    pub webhook_retries: AtomicU64,
    /// Webhook deliveries that failed for good.
    pub webhook_failed: AtomicU64,
    /// Audit entries not written (queue full or rate-limited).
    pub audit_dropped: AtomicU64,
    /// 1 while this process holds the ticket worker lease.
    pub ticket_worker_leader: AtomicI64,
    /// Ticket gauges read from ClickHouse: `(agency, severity, open, breached)`.
    pub ticket_gauges: std::sync::Mutex<Vec<(String, u8, u64, u64)>>,
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
            "tocsin_tickets_opened_total",
            "Tickets opened by this process.",
            "counter",
            g(&self.tickets_opened),
        );
        c(
            &mut s,
            "tocsin_escalations_total",
            "Ticket escalations written by this process.",
            "counter",
            g(&self.escalations),
        );
        let _ = writeln!(
            s,
            "# HELP tocsin_sla_breaches_total SLA deadlines missed, by deadline.\n# TYPE tocsin_sla_breaches_total counter\n\
             tocsin_sla_breaches_total{{deadline=\"ack\"}} {}\n\
             tocsin_sla_breaches_total{{deadline=\"resolve\"}} {}",
            g(&self.sla_breaches_ack),
            g(&self.sla_breaches_resolve)
        );
        let _ = writeln!(
            s,
            "# HELP tocsin_webhook_deliveries_total Webhook attempts, by result (failed: given up).\n# TYPE tocsin_webhook_deliveries_total counter\n\
             tocsin_webhook_deliveries_total{{result=\"delivered\"}} {}\n\
             tocsin_webhook_deliveries_total{{result=\"retry\"}} {}\n\
             tocsin_webhook_deliveries_total{{result=\"failed\"}} {}",
            g(&self.webhook_delivered),
            g(&self.webhook_retries),
            g(&self.webhook_failed)
        );
        c(
            &mut s,
            "tocsin_audit_dropped_total",
            "Audit entries not written (queue full or rate-limited).",
            "counter",
            g(&self.audit_dropped),
        );
        c(
            &mut s,
            "tocsin_ticket_worker_leader",
            "1 while this process holds the ticket worker lease.",
            "gauge",
            gi(&self.ticket_worker_leader),
        );
        if let Ok(rows) = self.ticket_gauges.lock() {
            let _ = writeln!(
                s,
                "# HELP tocsin_tickets_open Active tickets by responsible agency and severity (from ClickHouse).\n# TYPE tocsin_tickets_open gauge"
            );
            for (agency, sev, open, _) in rows.iter() {
                let _ = writeln!(
                    s,
                    "tocsin_tickets_open{{agency=\"{}\",severity=\"{sev}\"}} {open}",
                    label(agency)
                );
            }
            let _ = writeln!(
                s,
                "# HELP tocsin_tickets_sla_breached Active tickets past a deadline, by agency and severity.\n# TYPE tocsin_tickets_sla_breached gauge"
            );
            for (agency, sev, _, breached) in rows.iter() {
                let _ = writeln!(
                    s,
                    "tocsin_tickets_sla_breached{{agency=\"{}\",severity=\"{sev}\"}} {breached}",
                    label(agency)
                );
            }
        }
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

/// Escapes a Prometheus label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
