//! Row types as written to and read from ClickHouse in `JSONEachRow`. `DateTime` columns
//! travel as Unix seconds (integers), which every server version reads the same way
//! regardless of its time zone; `_us` columns keep the microseconds.

use serde::{Deserialize, Serialize};

use crate::ingest::Alert;

/// One row of `alerts`, borrowing from the [`Alert`] it is written for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertRow<'a> {
    /// Stable alert ID.
    pub alert_id: &'a str,
    /// Agency of the sending sensor.
    pub agency: &'a str,
    /// Sensor name.
    pub sensor: &'a str,
    /// Event time, seconds.
    pub ts: i64,
    /// Event time, µs.
    pub ts_us: i64,
    /// When the correlator received it, seconds.
    pub received_at: i64,
    /// Generator ID.
    pub gid: u32,
    /// Rule sid.
    pub signature_id: u32,
    /// Rule rev.
    pub rev: u32,
    /// Rule message.
    pub signature: &'a str,
    /// Classtype description.
    pub category: &'a str,
    /// Suricata severity (1 = most severe).
    pub severity: u8,
    /// Source address.
    pub src_ip: &'a str,
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dest_ip: &'a str,
    /// Destination port.
    pub dest_port: u16,
    /// Transport protocol.
    pub proto: &'a str,
    /// App protocol.
    pub app_proto: &'a str,
    /// Flow ID.
    pub flow_id: u64,
    /// `tocsin` or `suricata`.
    pub source: &'static str,
    /// The dedup incident the alert joined.
    pub incident_id: &'a uuid::Uuid,
    /// App-layer metadata JSON.
    pub app: &'a str,
}

impl<'a> AlertRow<'a> {
    /// Builds the row for `alert`, received at `received_s`, member of `incident_id`.
    #[must_use]
    pub fn new(alert: &'a Alert, received_s: i64, incident_id: &'a uuid::Uuid) -> Self {
        Self {
            alert_id: &alert.alert_id,
            agency: &alert.agency,
            sensor: &alert.sensor,
            ts: alert.ts.secs(),
            ts_us: alert.ts.0,
            received_at: received_s,
            gid: alert.gid,
            signature_id: alert.signature_id,
            rev: alert.rev,
            signature: &alert.signature,
            category: &alert.category,
            severity: alert.severity,
            src_ip: &alert.src_ip,
            src_port: alert.src_port,
            dest_ip: &alert.dest_ip,
            dest_port: alert.dest_port,
            proto: &alert.proto,
            app_proto: &alert.app_proto,
            flow_id: alert.flow_id,
            source: alert.source.as_str(),
            incident_id,
            app: &alert.app,
        }
    }
}

/// One row of `incidents` (ReplacingMergeTree by `version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentRow {
    /// UUIDv5.
    pub id: String,
    /// Owning agency.
    pub agency: String,
    /// `dedup`, `threshold`, `distinct_count` or `sequence`.
    pub kind: String,
    /// Dedup override or correlation rule name.
    pub rule: String,
    /// Key text.
    pub dedup_key: String,
    /// Window start, seconds.
    pub window_start: i64,
    /// Window start, µs (part of the ID).
    pub window_start_us: i64,
    /// First member, seconds.
    pub first_seen: i64,
    /// First member, µs.
    pub first_seen_us: i64,
    /// Last member, seconds.
    pub last_seen: i64,
    /// Last member, µs.
    pub last_seen_us: i64,
    /// Member count.
    pub alert_count: u64,
    /// Sensors (capped).
    pub sensors: Vec<String>,
    /// Source addresses (capped).
    pub src_ips: Vec<String>,
    /// Destination addresses (capped).
    pub dest_ips: Vec<String>,
    /// Signature IDs (capped).
    pub signature_ids: Vec<u32>,
    /// Signatures (capped).
    pub signatures: Vec<String>,
    /// Most severe member's severity (1 = most severe).
    pub severity: u8,
    /// `open` or `closed`.
    pub status: String,
    /// Version.
    pub version: u64,
    /// Time of this version, seconds.
    pub updated_at: i64,
}

/// One row of `incident_alerts`, borrowing its strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentAlertRow<'a> {
    /// The incident.
    pub incident_id: uuid::Uuid,
    /// The member alert.
    pub alert_id: &'a str,
    /// The alert's agency.
    pub agency: &'a str,
    /// The alert's time, seconds.
    pub ts: i64,
    /// The alert's time, µs.
    pub ts_us: i64,
    /// Sequence step (0 otherwise).
    pub step: u8,
    /// When the link was written, seconds.
    pub received_at: i64,
}

/// One row of `tokens` (ReplacingMergeTree by `version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    /// SHA-256 of the token, lowercase hex.
    pub token_hash: String,
    /// Name (a sensor's name for sensor tokens).
    pub name: String,
    /// `sensor`, `analyst`, `responder` or `admin`.
    pub role: String,
    /// Agency code the token is bound to.
    pub agency: String,
    /// Creation time, seconds.
    pub created_at: i64,
    /// Expiry, seconds (0 = never).
    pub expires_at: i64,
    /// 1 when revoked.
    pub revoked: u8,
    /// Version.
    pub version: u64,
}
