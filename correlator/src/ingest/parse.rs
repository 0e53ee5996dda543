//! One NDJSON line → one validated [`Alert`], or a [`LineError`] that says exactly what is
//! wrong. Pure: no I/O, no clock (the caller passes `now`).
//!
//! Checks, in order: length cap, JSON syntax and types (serde's message with line/column),
//! `event_type == "alert"`, timestamp syntax and range, clock skew, IP address syntax,
//! string length caps, `alert_id` shape. The agency always comes from the sender's token,
//! never from the record.

use std::net::IpAddr;

use serde::Serialize;
use tocsin_eve::{AlertId, EveAlert, Timestamp};

/// Longest accepted signature text, in bytes.
pub const MAX_SIGNATURE_LEN: usize = 1024;
/// Longest accepted category / proto / app_proto / sensor text, in bytes.
pub const MAX_SHORT_LEN: usize = 256;
/// Earliest accepted timestamp: 1971-01-01 (ClickHouse `DateTime` starts at the epoch;
/// earlier values are unset clocks).
pub const MIN_TS_US: i64 = 31_536_000_000_000;
/// Latest accepted timestamp: 2105-12-31 (end of ClickHouse `DateTime`).
pub const MAX_TS_US: i64 = 4_291_747_200_000_000;

/// Where a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// A Tocsin sensor's record (has `alert_id`).
    Tocsin,
    /// A plain Suricata record (ID derived).
    Suricata,
}

impl SourceFormat {
    /// The stored text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tocsin => "tocsin",
            Self::Suricata => "suricata",
        }
    }
}

/// A validated alert, normalized for storage and dedup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Stable ID: the record's `alert_id`, or a derived one for Suricata records.
    pub alert_id: String,
    /// Agency of the sending sensor's token.
    pub agency: String,
    /// Agency owning the incident this alert belongs to: the owner of its destination (or
    /// source) address in the directory, else `agency`. Set by the writer before dedup.
    pub owner: String,
    /// Sensor name: the record's `sensor.id`, else the token's name.
    pub sensor: String,
    /// Event time, microseconds since the epoch.
    pub ts: Timestamp,
    /// Rule generator ID.
    pub gid: u32,
    /// Rule `sid`.
    pub signature_id: u32,
    /// Rule revision.
    pub rev: u32,
    /// Rule message.
    pub signature: String,
    /// Classtype description.
    pub category: String,
    /// Suricata severity / priority (1 = most severe).
    pub severity: u8,
    /// Canonical source address text.
    pub src_ip: String,
    /// Source port (0 when absent).
    pub src_port: u16,
    /// Canonical destination address text.
    pub dest_ip: String,
    /// Destination port (0 when absent).
    pub dest_port: u16,
    /// Transport protocol as in EVE.
    pub proto: String,
    /// Application protocol (empty when unknown).
    pub app_proto: String,
    /// Flow ID (0 when absent).
    pub flow_id: u64,
    /// Where the record came from.
    pub source: SourceFormat,
    /// App-layer metadata (`http`, `dns`, `tls`, `metadata`) as compact JSON, or empty.
    pub app: String,
}

/// What the parser needs to know about the request.
#[derive(Debug, Clone)]
pub struct LineContext {
    /// Agency of the token that sent the batch.
    pub agency: String,
    /// Name of that token, used as the sensor name when a record carries none.
    pub token_name: String,
    /// The correlator's clock, microseconds since the epoch.
    pub now_us: i64,
    /// Largest accepted lead of an alert's timestamp over `now_us`.
    pub max_future_skew_us: i64,
    /// Longest accepted line.
    pub max_line_bytes: usize,
}

/// Why one line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Longer than the limit.
    #[error("line is {len} bytes, limit is {max}")]
    TooLong {
        /// The line's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON, or JSON of the wrong shape/types.
    #[error("malformed JSON: {0}")]
    Json(String),
    /// Well-formed JSON, but not an EVE record of the expected shape.
    #[error("not an EVE alert record: {0}")]
    Schema(String),
    /// An EVE record, but not an alert.
    #[error("event_type is '{0}', only 'alert' records are accepted")]
    NotAlert(String),
    /// Timestamp text unreadable.
    #[error("timestamp '{0}' is not an EVE/RFC 3339 timestamp")]
    Timestamp(String),
    /// Timestamp outside 1971..2105.
    #[error("timestamp '{0}' is outside 1971-01-01..2105-12-31")]
    TimestampRange(String),
    /// Timestamp too far in the future.
    #[error(
        "timestamp '{ts}' is {ahead_s} s ahead of the correlator clock (max skew {max_s} s): check the sensor's clock"
    )]
    ClockSkew {
        /// The record's timestamp text.
        ts: String,
        /// How far ahead, seconds.
        ahead_s: i64,
        /// Allowed skew, seconds.
        max_s: i64,
    },
    /// `src_ip`/`dest_ip` not an address.
    #[error("{field} '{value}' is not an IPv4/IPv6 address")]
    Address {
        /// `src_ip` or `dest_ip`.
        field: &'static str,
        /// The text (cut to 64 chars).
        value: String,
    },
    /// A text field is too long.
    #[error("{field} is {len} bytes, limit is {max}")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `alert_id` present but malformed.
    #[error("alert_id '{value}': {reason}")]
    AlertId {
        /// The text (cut to 64 chars).
        value: String,
        /// What is wrong.
        reason: tocsin_eve::AlertIdError,
    },
    /// `alert.severity` of 0.
    #[error("alert.severity must be 1 or more")]
    Severity,
}

#[derive(serde::Deserialize)]
struct Probe {
    event_type: Option<serde_json::Value>,
}

fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}

fn check_len(field: &'static str, text: &str, max: usize) -> Result<(), LineError> {
    if text.len() > max {
        return Err(LineError::FieldTooLong {
            field,
            len: text.len(),
            max,
        });
    }
    Ok(())
}

fn parse_ip(field: &'static str, text: &str) -> Result<String, LineError> {
    text.parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| LineError::Address {
            field,
            value: cut(text),
        })
}

/// Parses and validates one line (without its newline).
///
/// # Errors
/// [`LineError`] describing the first problem found.
pub fn parse_line(line: &[u8], ctx: &LineContext) -> Result<Alert, LineError> {
    if line.len() > ctx.max_line_bytes {
        return Err(LineError::TooLong {
            len: line.len(),
            max: ctx.max_line_bytes,
        });
    }
    let rec: EveAlert = match serde_json::from_slice(line) {
        Ok(rec) => rec,
        Err(err) => {
            // Name a non-alert record plainly instead of "missing field `alert`".
            if err.is_data()
                && let Ok(Probe {
                    event_type: Some(serde_json::Value::String(kind)),
                }) = serde_json::from_slice::<Probe>(line)
                && kind != "alert"
            {
                return Err(LineError::NotAlert(cut(&kind)));
            }
            return Err(if err.is_data() {
                LineError::Schema(err.to_string())
            } else {
                LineError::Json(err.to_string())
            });
        }
    };
    if rec.event_type != "alert" {
        return Err(LineError::NotAlert(cut(&rec.event_type)));
    }
    let ts = Timestamp::parse_eve(&rec.timestamp)
        .map_err(|_| LineError::Timestamp(cut(&rec.timestamp)))?;
    if ts.0 < MIN_TS_US || ts.0 > MAX_TS_US {
        return Err(LineError::TimestampRange(cut(&rec.timestamp)));
    }
    let ahead = ts.0.saturating_sub(ctx.now_us);
    if ahead > ctx.max_future_skew_us {
        return Err(LineError::ClockSkew {
            ts: cut(&rec.timestamp),
            ahead_s: ahead / 1_000_000,
            max_s: ctx.max_future_skew_us / 1_000_000,
        });
    }
    let src_ip = parse_ip("src_ip", &rec.src_ip)?;
    let dest_ip = parse_ip("dest_ip", &rec.dest_ip)?;
    if rec.alert.severity == 0 {
        return Err(LineError::Severity);
    }
    check_len("alert.signature", &rec.alert.signature, MAX_SIGNATURE_LEN)?;
    check_len("alert.category", &rec.alert.category, MAX_SHORT_LEN)?;
    check_len("proto", &rec.proto, MAX_SHORT_LEN)?;
    let app_proto = rec.app_proto.clone().unwrap_or_default();
    check_len("app_proto", &app_proto, MAX_SHORT_LEN)?;
    let sensor = match &rec.sensor {
        Some(s) if !s.id.is_empty() => s.id.clone(),
        _ => ctx.token_name.clone(),
    };
    check_len("sensor.id", &sensor, AlertId::MAX_SENSOR_LEN)?;
    let (alert_id, source) = match &rec.alert_id {
        Some(id) => {
            AlertId::parse(id).map_err(|reason| LineError::AlertId {
                value: cut(id),
                reason,
            })?;
            (id.clone(), SourceFormat::Tocsin)
        }
        None => {
            // The sensor name may hold ':' when it came from a token name; keep IDs parseable.
            let safe: String = sensor
                .chars()
                .map(|c| if c == ':' || c.is_control() { '_' } else { c })
                .collect();
            (
                AlertId::derive_suricata(&safe, &rec).to_string(),
                SourceFormat::Suricata,
            )
        }
    };
    let app = app_json(&rec);
    Ok(Alert {
        alert_id,
        agency: ctx.agency.clone(),
        owner: ctx.agency.clone(),
        sensor,
        ts,
        gid: rec.alert.gid,
        signature_id: rec.alert.signature_id,
        rev: rec.alert.rev,
        signature: rec.alert.signature,
        category: rec.alert.category,
        severity: rec.alert.severity,
        src_ip,
        src_port: rec.src_port.unwrap_or(0),
        dest_ip,
        dest_port: rec.dest_port.unwrap_or(0),
        proto: rec.proto,
        app_proto,
        flow_id: rec.flow_id.unwrap_or(0),
        source,
        app,
    })
}

fn app_json(rec: &EveAlert) -> String {
    let mut map = serde_json::Map::new();
    for (k, v) in [
        ("http", &rec.http),
        ("dns", &rec.dns),
        ("tls", &rec.tls),
        ("metadata", &rec.metadata),
    ] {
        if let Some(v) = v {
            map.insert(k.to_owned(), v.clone());
        }
    }
    if map.is_empty() {
        String::new()
    } else {
        serde_json::Value::Object(map).to_string()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use tocsin_eve::{AlertInfo, SensorInfo};

    use super::*;

    fn ctx() -> LineContext {
        LineContext {
            agency: "MOH".into(),
            token_name: "edge-1".into(),
            // 2023-11-14T22:13:20Z
            now_us: 1_700_000_000_000_000,
            max_future_skew_us: 300_000_000,
            max_line_bytes: 8192,
        }
    }

    fn record() -> EveAlert {
        EveAlert {
            timestamp: "2023-11-14T22:00:00.000001+0000".into(),
            flow_id: Some(99),
            pcap_cnt: Some(5),
            event_type: "alert".into(),
            src_ip: "192.0.2.1".into(),
            src_port: Some(40000),
            dest_ip: "2001:0db8:0000::1".into(),
            dest_port: Some(443),
            proto: "TCP".into(),
            icmp_type: None,
            icmp_code: None,
            pkt_src: None,
            metadata: None,
            tx_id: None,
            alert: AlertInfo {
                action: "allowed".into(),
                gid: 1,
                signature_id: 2_000_001,
                rev: 3,
                signature: "ET TEST".into(),
                category: "Attempted Information Leak".into(),
                severity: 2,
                metadata: None,
            },
            app_proto: Some("tls".into()),
            direction: None,
            http: None,
            dns: None,
            tls: Some(serde_json::json!({"sni": "bad.example"})),
            sensor: Some(SensorInfo {
                id: "s7".into(),
                agency: "IGNORED".into(),
            }),
            alert_id: Some("s7:00000000000000ab:12".into()),
        }
    }

    #[test]
    fn tocsin_record() {
        let line = serde_json::to_vec(&record()).unwrap();
        let a = parse_line(&line, &ctx()).unwrap();
        assert_eq!(a.alert_id, "s7:00000000000000ab:12");
        assert_eq!(a.agency, "MOH", "agency comes from the token");
        assert_eq!(a.sensor, "s7");
        assert_eq!(a.ts, Timestamp(1_699_999_200_000_001));
        assert_eq!(a.dest_ip, "2001:db8::1", "canonical IPv6 text");
        assert_eq!(a.source, SourceFormat::Tocsin);
        assert_eq!(a.app, r#"{"tls":{"sni":"bad.example"}}"#);
    }

    #[test]
    fn suricata_record_gets_a_stable_derived_id() {
        let mut r = record();
        r.sensor = None;
        r.alert_id = None;
        let line = serde_json::to_vec(&r).unwrap();
        let a = parse_line(&line, &ctx()).unwrap();
        let b = parse_line(&line, &ctx()).unwrap();
        assert_eq!(a.alert_id, b.alert_id);
        assert_eq!(a.source, SourceFormat::Suricata);
        assert_eq!(a.sensor, "edge-1");
        let id = AlertId::parse(&a.alert_id).unwrap();
        assert_eq!((id.sensor.as_str(), id.seq), ("edge-1", 0));
        // Another packet of the same flow, same rule: another ID.
        r.pcap_cnt = Some(6);
        let c = parse_line(&serde_json::to_vec(&r).unwrap(), &ctx()).unwrap();
        assert_ne!(a.alert_id, c.alert_id);
        // Flow-timeout alerts: no pcap_cnt, same timestamp, told apart by tx_id (seen in the
        // shared Suricata 7 EVE files).
        r.pcap_cnt = None;
        r.tx_id = Some(5);
        let d = parse_line(&serde_json::to_vec(&r).unwrap(), &ctx()).unwrap();
        r.tx_id = Some(6);
        let e = parse_line(&serde_json::to_vec(&r).unwrap(), &ctx()).unwrap();
        assert_ne!(d.alert_id, e.alert_id);
    }

    #[test]
    fn each_error_is_named() {
        let cases: Vec<(String, &str)> = vec![
            ("{".into(), "malformed JSON"),
            ("[1,2]".into(), "not an EVE alert record"),
            (
                r#"{"event_type":"flow","src_ip":"1.2.3.4"}"#.into(),
                "event_type is 'flow'",
            ),
            (
                serde_json::to_string(&record())
                    .unwrap()
                    .replace("\"gid\":1", "\"gid\":\"1\""),
                "invalid type: string",
            ),
            (
                serde_json::to_string(&record())
                    .unwrap()
                    .replace("2023-11-14T22:00", "2023-11-14T25:00"),
                "not an EVE/RFC 3339 timestamp",
            ),
            (
                serde_json::to_string(&record())
                    .unwrap()
                    .replace("2023-11-14T22:00", "2024-11-14T22:00"),
                "ahead of the correlator clock",
            ),
            (
                serde_json::to_string(&record())
                    .unwrap()
                    .replace("2023-11-14T22:00", "1970-01-02T22:00"),
                "outside 1971-01-01",
            ),
            (
                serde_json::to_string(&record())
                    .unwrap()
                    .replace("192.0.2.1", "192.0.2.300"),
                "src_ip '192.0.2.300' is not",
            ),
            (
                serde_json::to_string(&record())
                    .unwrap()
                    .replace("s7:00000000000000ab:12", "s7:ab:12"),
                "alert_id 's7:ab:12'",
            ),
            (
                serde_json::to_string(&record())
                    .unwrap()
                    .replace("\"severity\":2", "\"severity\":0"),
                "severity must be 1",
            ),
        ];
        for (line, want) in cases {
            let Err(err) = parse_line(line.as_bytes(), &ctx()) else {
                panic!("accepted: {line}");
            };
            let err = err.to_string();
            assert!(err.contains(want), "{line}\n → {err}\n wanted {want}");
        }
        let long = vec![b' '; 9000];
        assert_eq!(
            parse_line(&long, &ctx()),
            Err(LineError::TooLong {
                len: 9000,
                max: 8192
            })
        );
    }

    #[test]
    fn skew_boundary() {
        // Exactly max_future_skew ahead is accepted; one microsecond more is not.
        let mut r = record();
        r.timestamp = "2023-11-14T22:18:20.000000+0000".into(); // now + 300 s
        assert!(parse_line(&serde_json::to_vec(&r).unwrap(), &ctx()).is_ok());
        r.timestamp = "2023-11-14T22:18:20.000001+0000".into();
        assert!(matches!(
            parse_line(&serde_json::to_vec(&r).unwrap(), &ctx()),
            Err(LineError::ClockSkew { ahead_s: 300, .. })
        ));
    }

    fn arb_record() -> impl Strategy<Value = EveAlert> {
        (
            any::<u32>(),
            1u8..=255,
            any::<[u8; 4]>(),
            any::<[u8; 16]>(),
            proptest::option::of(any::<u16>()),
            "[ -~]{0,40}",
            "[a-z0-9-]{1,20}",
            (0u64..1000, any::<u64>(), 31_536_000i64..1_700_000_000),
        )
            .prop_map(
                |(sid, sev, v4, v6, port, sig, sensor, (seq, stream, secs))| {
                    let mut r = record();
                    r.alert.signature_id = sid;
                    r.alert.severity = sev;
                    r.src_ip = std::net::Ipv4Addr::from(v4).to_string();
                    r.dest_ip = std::net::Ipv6Addr::from(v6).to_string();
                    r.src_port = port;
                    r.alert.signature = sig;
                    r.timestamp = Timestamp::from_secs_micros(secs, 17).to_string();
                    r.alert_id = Some(format!("{sensor}:{stream:016x}:{seq}"));
                    r.sensor = Some(SensorInfo {
                        id: sensor,
                        agency: String::new(),
                    });
                    r
                },
            )
    }

    proptest! {
        #[test]
        fn never_panics_on_bytes(line in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_line(&line, &ctx());
        }

        #[test]
        fn never_panics_on_json_like_text(line in r#"\{("[a-z_]{1,12}":("[^"]{0,8}"|[0-9]{1,5}|null|\{\}),?){0,12}\}"#) {
            let _ = parse_line(line.as_bytes(), &ctx());
        }

        #[test]
        fn serialized_records_parse_back(r in arb_record()) {
            let line = serde_json::to_vec(&r).unwrap();
            let a = parse_line(&line, &ctx()).unwrap();
            prop_assert_eq!(a.signature_id, r.alert.signature_id);
            prop_assert_eq!(a.severity, r.alert.severity);
            prop_assert_eq!(&a.signature, &r.alert.signature);
            prop_assert_eq!(a.src_port, r.src_port.unwrap_or(0));
            prop_assert_eq!(Some(a.alert_id.clone()), r.alert_id.clone());
            prop_assert_eq!(a.ts, Timestamp::parse_eve(&r.timestamp).unwrap());
            prop_assert_eq!(a.src_ip.parse::<IpAddr>().unwrap(), r.src_ip.parse::<IpAddr>().unwrap());
            prop_assert_eq!(a.dest_ip.parse::<IpAddr>().unwrap(), r.dest_ip.parse::<IpAddr>().unwrap());
        }
    }
}
