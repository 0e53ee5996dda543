//! Sensor stats: EVE `stats` records in, [`SensorStatsRow`]s out (table `sensor_stats`, read
//! by the sensor operations dashboard).
//!
//! Input: the body of `POST /api/v1/sensor-stats`, NDJSON, one record per line as
//! `tocsin sensor` writes them (`{"timestamp":..,"event_type":"stats","stats":{..},
//! "sensor":{"id":..,"agency":..}}`). Counters are cumulative since the sensor started; the
//! dashboard turns them into rates. Missing counters read as 0 (older sensors, offline runs
//! without capture counters); a present counter that is not a non-negative integer rejects
//! the line.
//!
//! The agency comes from the sensor's token, never from the record. Caps: line count and
//! line length as for alerts (the API applies the body caps).

use serde_json::Value;

/// One stored stats record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SensorStatsRow {
    /// Record time (sensor clock), Unix seconds.
    pub ts: i64,
    /// When the correlator received it, Unix seconds.
    pub received_at: i64,
    /// Sensor ID.
    pub sensor: String,
    /// Agency of the sensor's token.
    pub agency: String,
    /// Seconds since the sensor started.
    pub uptime_s: u64,
    /// Packets seen (`stats.decoder.pkts`).
    pub packets: u64,
    /// Bytes seen (`stats.decoder.bytes`).
    pub bytes: u64,
    /// Undecodable packets (`stats.decoder.invalid`).
    pub decode_invalid: u64,
    /// Packets the kernel dropped before capture (`stats.capture.kernel_drops`).
    pub kernel_drops: u64,
    /// Packets dropped on full worker queues (`stats.capture.queue_drops`).
    pub queue_drops: u64,
    /// Alerts raised (`stats.detect.alert`).
    pub alerts: u64,
    /// Flows (`stats.flow.active`, else `stats.flow.created`).
    pub flows: u64,
    /// Memory in use, bytes (`stats.memory.rss_bytes`).
    pub memory_bytes: u64,
    /// Rules loaded (`stats.detect.rules_loaded`).
    pub rules_loaded: u64,
    /// Rules rejected at load (`stats.detect.rules_failed`).
    pub rules_failed: u64,
    /// Alert bytes waiting in the sensor's spool (`stats.forward.spool_bytes`).
    pub spool_bytes: u64,
}

/// Why a stats line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    /// Not JSON, or not an object.
    #[error("not a JSON object: {0}")]
    Json(String),
    /// `event_type` is not `stats`.
    #[error("event_type must be 'stats'")]
    NotStats,
    /// Bad or missing timestamp.
    #[error("timestamp: {0}")]
    Timestamp(String),
    /// Missing `sensor.id`.
    #[error("sensor.id is missing or empty")]
    NoSensor,
    /// A counter with a wrong type.
    #[error("stats.{0} must be a non-negative integer")]
    Counter(&'static str),
    /// Line too long.
    #[error("line longer than {0} bytes")]
    TooLong(usize),
}

/// Where each counter is read from, as (column, path in `stats`).
const COUNTERS: &[(&str, &[&str])] = &[
    ("uptime", &["uptime"]),
    ("decoder.pkts", &["decoder", "pkts"]),
    ("decoder.bytes", &["decoder", "bytes"]),
    ("decoder.invalid", &["decoder", "invalid"]),
    ("capture.kernel_drops", &["capture", "kernel_drops"]),
    ("capture.queue_drops", &["capture", "queue_drops"]),
    ("detect.alert", &["detect", "alert"]),
    ("flow.active", &["flow", "active"]),
    ("flow.created", &["flow", "created"]),
    ("memory.rss_bytes", &["memory", "rss_bytes"]),
    ("detect.rules_loaded", &["detect", "rules_loaded"]),
    ("detect.rules_failed", &["detect", "rules_failed"]),
    ("forward.spool_bytes", &["forward", "spool_bytes"]),
];

fn counter(stats: &Value, name: &'static str, path: &[&str]) -> Result<Option<u64>, StatsError> {
    let mut v = stats;
    for key in path {
        match v.get(key) {
            Some(next) => v = next,
            None => return Ok(None),
        }
    }
    v.as_u64().map(Some).ok_or(StatsError::Counter(name))
}

/// Parses one line. `agency` is the token's agency, `now_s` the receive time.
///
/// # Errors
/// [`StatsError`] naming what is wrong.
pub fn parse_stats_line(
    line: &[u8],
    agency: &str,
    now_s: i64,
    max_line_bytes: usize,
) -> Result<SensorStatsRow, StatsError> {
    if line.len() > max_line_bytes {
        return Err(StatsError::TooLong(max_line_bytes));
    }
    let v: Value = serde_json::from_slice(line).map_err(|e| StatsError::Json(e.to_string()))?;
    if !v.is_object() {
        return Err(StatsError::Json("not an object".into()));
    }
    if v.get("event_type").and_then(Value::as_str) != Some("stats") {
        return Err(StatsError::NotStats);
    }
    let ts = v
        .get("timestamp")
        .and_then(Value::as_str)
        .ok_or_else(|| StatsError::Timestamp("missing".into()))?;
    let ts = tocsin_eve::Timestamp::parse_eve(ts)
        .map_err(|e| StatsError::Timestamp(e.to_string()))?
        .secs();
    let sensor = v
        .get("sensor")
        .and_then(|s| s.get("id"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .ok_or(StatsError::NoSensor)?;
    let empty = Value::Object(serde_json::Map::new());
    let stats = v.get("stats").unwrap_or(&empty);
    let mut c = [0u64; COUNTERS.len()];
    let mut present = [false; COUNTERS.len()];
    for (i, (name, path)) in COUNTERS.iter().enumerate() {
        if let Some(n) = counter(stats, name, path)? {
            c[i] = n;
            present[i] = true;
        }
    }
    let [
        uptime,
        pkts,
        bytes,
        invalid,
        kdrops,
        qdrops,
        alerts,
        active,
        created,
        rss,
        loaded,
        failed,
        spool,
    ] = c;
    Ok(SensorStatsRow {
        ts,
        received_at: now_s,
        sensor: sensor.to_owned(),
        agency: agency.to_owned(),
        uptime_s: uptime,
        packets: pkts,
        bytes,
        decode_invalid: invalid,
        kernel_drops: kdrops,
        queue_drops: qdrops,
        alerts,
        flows: if present[7] { active } else { created },
        memory_bytes: rss,
        rules_loaded: loaded,
        rules_failed: failed,
        spool_bytes: spool,
    })
}

/// Parses an NDJSON body: good rows and `(line number, error)` for bad lines. Empty lines
/// are skipped.
#[must_use]
pub fn parse_stats_body(
    body: &[u8],
    agency: &str,
    now_s: i64,
    max_line_bytes: usize,
) -> (Vec<SensorStatsRow>, Vec<super::Rejected>) {
    let (mut rows, mut bad) = (Vec::new(), Vec::new());
    for (idx, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = raw.trim_ascii();
        if line.is_empty() {
            continue;
        }
        match parse_stats_line(line, agency, now_s, max_line_bytes) {
            Ok(r) => rows.push(r),
            Err(e) => bad.push(super::Rejected {
                line: idx + 1,
                error: e.to_string(),
            }),
        }
    }
    (rows, bad)
}

/// The `sensor_stats` table (MergeTree by day; dropped with the alerts' retention).
pub const SENSOR_STATS_TABLE: &str = "CREATE TABLE IF NOT EXISTS {db}.sensor_stats (
    ts DateTime, received_at DateTime, sensor String, agency String, uptime_s UInt64,
    packets UInt64, bytes UInt64, decode_invalid UInt64, kernel_drops UInt64, queue_drops UInt64,
    alerts UInt64, flows UInt64, memory_bytes UInt64, rules_loaded UInt64, rules_failed UInt64,
    spool_bytes UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (sensor, ts)";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const REC: &str = r#"{"timestamp":"2026-11-25T10:00:00.000000+0000","event_type":"stats","stats":{"uptime":30,"decoder":{"pkts":1000,"bytes":650000,"invalid":2},"capture":{"kernel_drops":5,"queue_drops":1},"detect":{"alert":7,"rules_loaded":34000,"rules_failed":12},"flow":{"created":90,"active":40},"memory":{"rss_bytes":123456},"forward":{"spool_bytes":2048}},"sensor":{"id":"tap-1","agency":"SPOOFED"}}"#;

    #[test]
    fn reads_every_counter_and_takes_the_agency_from_the_token() {
        let r = parse_stats_line(REC.as_bytes(), "MIC", 99, 1 << 16).unwrap();
        // 2026-11-25 is day 20782 since 1970 (20454 to 2026-01-01, + 328); plus 10 h.
        assert_eq!(r.ts, 20_782 * 86_400 + 36_000);
        assert_eq!(
            (r.sensor.as_str(), r.agency.as_str(), r.received_at),
            ("tap-1", "MIC", 99)
        );
        assert_eq!(
            (
                r.uptime_s,
                r.packets,
                r.bytes,
                r.decode_invalid,
                r.kernel_drops,
                r.queue_drops
            ),
            (30, 1000, 650_000, 2, 5, 1)
        );
        assert_eq!(
            (
                r.alerts,
                r.flows,
                r.memory_bytes,
                r.rules_loaded,
                r.rules_failed,
                r.spool_bytes
            ),
            (7, 40, 123_456, 34_000, 12, 2048)
        );
    }

    #[test]
    fn missing_counters_are_zero_and_flows_fall_back_to_created() {
        let line = r#"{"timestamp":"2026-11-25T10:00:00.000000+0000","event_type":"stats","stats":{"flow":{"created":3}},"sensor":{"id":"s"}}"#;
        let r = parse_stats_line(line.as_bytes(), "A", 0, 1 << 16).unwrap();
        assert_eq!((r.packets, r.flows, r.spool_bytes), (0, 3, 0));
    }

    proptest::proptest! {
        /// Any bytes: no panic, and every non-empty line is a row or a rejection.
        #[test]
        fn any_body_is_accounted_for(body in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let (rows, bad) = parse_stats_body(&body, "A", 0, 4096);
            let lines = body.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()).count();
            proptest::prop_assert_eq!(rows.len() + bad.len(), lines);
        }

        /// Whatever the counter values, each lands in its column unchanged.
        #[test]
        fn counters_round_trip(
            pkts in 0u64..u64::MAX, bytes in 0u64..u64::MAX, kd in 0u64..u64::MAX,
            qd in 0u64..u64::MAX, spool in 0u64..u64::MAX, active in proptest::option::of(0u64..1_000_000),
        ) {
            let mut flow = serde_json::json!({"created": 7});
            if let Some(a) = active {
                flow["active"] = a.into();
            }
            let rec = serde_json::json!({
                "timestamp": "2026-11-25T10:00:00.000000+0000", "event_type": "stats",
                "stats": {"decoder": {"pkts": pkts, "bytes": bytes},
                          "capture": {"kernel_drops": kd, "queue_drops": qd},
                          "flow": flow, "forward": {"spool_bytes": spool}},
                "sensor": {"id": "s"},
            });
            let r = parse_stats_line(rec.to_string().as_bytes(), "A", 0, 1 << 16).unwrap();
            proptest::prop_assert_eq!(
                (r.packets, r.bytes, r.kernel_drops, r.queue_drops, r.spool_bytes, r.flows),
                (pkts, bytes, kd, qd, spool, active.unwrap_or(7))
            );
        }
    }

    #[test]
    fn bad_lines_are_rejected_with_their_line_number() {
        let body = format!(
            "{REC}\n\n{{\"event_type\":\"alert\"}}\nnot json\n{}\n{}\n",
            REC.replace("\"pkts\":1000", "\"pkts\":-1"),
            REC.replace("\"tap-1\"", "\"\"")
        );
        let (rows, bad) = parse_stats_body(body.as_bytes(), "MIC", 0, 1 << 16);
        assert_eq!(rows.len(), 1);
        let got: Vec<(usize, &str)> = bad.iter().map(|r| (r.line, r.error.as_str())).collect();
        assert_eq!(got[0], (3, "event_type must be 'stats'"));
        assert_eq!(got[1].0, 4);
        assert!(got[1].1.starts_with("not a JSON object"));
        assert_eq!(
            got[2],
            (5, "stats.decoder.pkts must be a non-negative integer")
        );
        assert_eq!(got[3], (6, "sensor.id is missing or empty"));
        let (_, bad) = parse_stats_body(REC.as_bytes(), "MIC", 0, 10);
        assert_eq!(bad[0].error, "line longer than 10 bytes");
    }
}
