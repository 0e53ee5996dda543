//! EVE JSON records as Tocsin writes them: Suricata 7's field names for alerts, plus
//! Tocsin's own `sensor` object and a stable `alert_id`.
//!
//! The sensor serializes [`EveAlert`]; the correlator deserializes it (and plain Suricata
//! EVE alerts, which lack `sensor` and `alert_id`). Field order on the wire follows
//! Suricata's so that diffs against Suricata output stay readable.
//!
//! Timestamps are written as Suricata does: `2010-07-14T17:40:43.727475+0000`
//! (microseconds, numeric UTC offset without a colon).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Microseconds since the Unix epoch, UTC. Packet timestamps from pcap headers and live
/// capture are converted to this once, at capture.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Builds a timestamp from seconds and microseconds, as pcap headers carry them.
    #[must_use]
    pub fn from_secs_micros(secs: i64, micros: i64) -> Self {
        Self(secs.saturating_mul(1_000_000).saturating_add(micros))
    }

    /// Whole seconds since the epoch (floor).
    #[must_use]
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Microseconds within the second, `0..1_000_000`.
    #[must_use]
    pub fn subsec_micros(self) -> u32 {
        // rem_euclid of a positive modulus is in 0..1_000_000, which fits in u32.
        u32::try_from(self.0.rem_euclid(1_000_000)).unwrap_or(0)
    }

    /// Adds a duration in microseconds, saturating.
    #[must_use]
    pub fn add_micros(self, micros: i64) -> Self {
        Self(self.0.saturating_add(micros))
    }

    /// Parses Suricata's EVE timestamp (`2010-07-14T17:40:43.727475+0000`) or RFC 3339
    /// (`2010-07-14T17:40:43.727475Z`, `+00:00`).
    ///
    /// # Errors
    /// [`TimestampError`] when the text is neither form.
    pub fn parse_eve(text: &str) -> Result<Self, TimestampError> {
        // Suricata writes `+0000`; RFC 3339 wants `+00:00`. Insert the colon when missing.
        let fixed;
        let candidate = if let Some(sign_pos) = text.rfind(['+', '-']).filter(|&p| p > 10) {
            let offset = &text[sign_pos + 1..];
            if offset.len() == 4 && offset.bytes().all(|b| b.is_ascii_digit()) {
                fixed = format!("{}{}:{}", &text[..=sign_pos], &offset[..2], &offset[2..]);
                fixed.as_str()
            } else {
                text
            }
        } else {
            text
        };
        let parsed =
            time::OffsetDateTime::parse(candidate, &time::format_description::well_known::Rfc3339)
                .map_err(|_| TimestampError)?;
        let nanos = parsed.unix_timestamp_nanos();
        i64::try_from(nanos / 1000)
            .map(Self)
            .map_err(|_| TimestampError)
    }
}

impl fmt::Display for Timestamp {
    /// Formats as Suricata's EVE timestamp in UTC.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.secs();
        let (date, tod) = civil_from_secs(secs);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+0000",
            date.0,
            date.1,
            date.2,
            tod / 3600,
            (tod / 60) % 60,
            tod % 60,
            self.subsec_micros()
        )
    }
}

/// The text was not an EVE or RFC 3339 timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an EVE/RFC 3339 timestamp (expected e.g. 2024-01-31T12:00:00.000000+0000)")]
pub struct TimestampError;

/// Converts seconds since the epoch to a proleptic Gregorian (year, month, day) and the
/// second of the day. Howard Hinnant's days-from-civil algorithm, inverted.
fn civil_from_secs(secs: i64) -> ((i64, u32, u32), i64) {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    // d is in 1..=31 and m in 1..=12 by construction.
    let d = u32::try_from(d).unwrap_or(1);
    let m = u32::try_from(m).unwrap_or(1);
    ((y, m, d), tod)
}

/// A stable alert identifier: which sensor raised it, in which capture run (`stream`), and
/// its sequence number in that run. Offline runs derive `stream` from the input file, so a
/// re-run over the same file yields the same IDs and the correlator stores each alert once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertId {
    /// The sensor's configured ID.
    pub sensor: String,
    /// Capture run identifier (hash of the pcap for offline runs, start time for live ones).
    pub stream: u64,
    /// Sequence number of the alert within the run, starting at 1.
    pub seq: u64,
}

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{:016x}:{}", self.sensor, self.stream, self.seq)
    }
}

impl AlertId {
    /// Longest accepted sensor name in an alert ID, in bytes.
    pub const MAX_SENSOR_LEN: usize = 128;

    /// Parses `sensor:stream16hex:seq` (the [`fmt::Display`] form). The sensor part may not
    /// be empty, may not contain `:` or control characters, and is at most
    /// [`AlertId::MAX_SENSOR_LEN`] bytes; the stream is exactly 16 lowercase or uppercase
    /// hex digits; the sequence is a decimal `u64`.
    ///
    /// # Errors
    /// [`AlertIdError`] naming the part that is wrong.
    pub fn parse(text: &str) -> Result<Self, AlertIdError> {
        let mut parts = text.rsplitn(3, ':');
        let seq = parts.next().ok_or(AlertIdError::Shape)?;
        let stream = parts.next().ok_or(AlertIdError::Shape)?;
        let sensor = parts.next().ok_or(AlertIdError::Shape)?;
        if sensor.is_empty()
            || sensor.len() > Self::MAX_SENSOR_LEN
            || sensor.contains(':')
            || sensor.chars().any(char::is_control)
        {
            return Err(AlertIdError::Sensor);
        }
        if stream.len() != 16 || !stream.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AlertIdError::Stream);
        }
        let stream = u64::from_str_radix(stream, 16).map_err(|_| AlertIdError::Stream)?;
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AlertIdError::Seq);
        }
        let seq = seq.parse::<u64>().map_err(|_| AlertIdError::Seq)?;
        Ok(Self {
            sensor: sensor.to_owned(),
            stream,
            seq,
        })
    }

    /// Derives a stable ID for a plain Suricata EVE alert, which carries no `alert_id`.
    ///
    /// The stream part is a 64-bit FNV-1a hash over `flow_id`, the packet position
    /// (`pcap_cnt` when present, else the timestamp text), `tx_id` (flow-timeout alerts of one
    /// flow share a timestamp and differ only by transaction), `gid`, `signature_id` and `rev`;
    /// the sequence is `0`, which Tocsin sensors never emit (they count from 1), so a derived
    /// ID can never collide with a native one. The same record from the same sensor always
    /// maps to the same ID, so redelivery is detected.
    #[must_use]
    pub fn derive_suricata(sensor: &str, alert: &EveAlert) -> Self {
        let mut h = Fnv1a::new();
        h.write(&alert.flow_id.unwrap_or(0).to_le_bytes());
        match alert.pcap_cnt {
            Some(cnt) => {
                h.write(b"p");
                h.write(&cnt.to_le_bytes());
            }
            None => {
                h.write(b"t");
                h.write(alert.timestamp.as_bytes());
            }
        }
        match alert.tx_id {
            Some(tx) => {
                h.write(b"x");
                h.write(&tx.to_le_bytes());
            }
            None => h.write(b"-"),
        }
        h.write(&alert.alert.gid.to_le_bytes());
        h.write(&alert.alert.signature_id.to_le_bytes());
        h.write(&alert.alert.rev.to_le_bytes());
        Self {
            sensor: sensor.to_owned(),
            stream: h.finish(),
            seq: 0,
        }
    }
}

/// Why a text is not an [`AlertId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AlertIdError {
    /// Fewer than three `:`-separated parts.
    #[error("alert_id must look like SENSOR:STREAM16HEX:SEQ")]
    Shape,
    /// Sensor part empty, too long, or with control characters.
    #[error("alert_id sensor part must be 1-128 bytes without ':' or control characters")]
    Sensor,
    /// Stream part is not 16 hex digits.
    #[error("alert_id stream part must be 16 hex digits")]
    Stream,
    /// Sequence part is not a decimal u64.
    #[error("alert_id sequence part must be a decimal number below 2^64")]
    Seq,
}

/// 64-bit FNV-1a: tiny, stable across versions and platforms (unlike `DefaultHasher`).
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Identifies the sensor that produced a record and the agency that owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SensorInfo {
    /// Sensor ID from the sensor's config.
    pub id: String,
    /// Hierarchical agency code (e.g. `MIC.DEPT-3`) the sensor belongs to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agency: String,
}

/// The `alert` object of an EVE alert record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertInfo {
    /// `allowed` or `blocked` (Tocsin is passive: always `allowed`).
    pub action: String,
    /// Generator ID (1 for rules).
    pub gid: u32,
    /// Rule `sid`.
    pub signature_id: u32,
    /// Rule `rev`.
    pub rev: u32,
    /// Rule `msg`.
    pub signature: String,
    /// Classtype description from classification.config, empty when the rule has none.
    pub category: String,
    /// Priority (1 highest); Suricata calls it severity in EVE.
    pub severity: u8,
    /// Rule `metadata` as key → values, when the rule has some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One EVE `alert` record, Suricata-compatible, with Tocsin's additions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EveAlert {
    /// Packet time.
    pub timestamp: String,
    /// Flow identifier, stable for the flow's life (0 when the packet has no flow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<u64>,
    /// 1-based packet number in the pcap (offline runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcap_cnt: Option<u64>,
    /// Always `alert`.
    pub event_type: String,
    /// Source address of the packet (or of the flow direction that matched).
    pub src_ip: String,
    /// Source port (TCP/UDP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Destination address.
    pub dest_ip: String,
    /// Destination port (TCP/UDP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    /// `TCP`, `UDP`, `ICMP`, `IPv6-ICMP` or the protocol number.
    pub proto: String,
    /// ICMP type, for ICMP packets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    /// ICMP code, for ICMP packets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
    /// `wire/pcap`, `stream (flow timeout)`, ... as Suricata writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkt_src: Option<String>,
    /// Flow metadata (`flowbits` set on the flow at alert time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// Transaction ID for app-layer matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<u64>,
    /// The rule that fired.
    pub alert: AlertInfo,
    /// Detected application protocol of the flow, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<String>,
    /// `to_server` or `to_client`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// HTTP transaction metadata (Suricata's `http` object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<serde_json::Value>,
    /// DNS metadata (Suricata's `dns` object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<serde_json::Value>,
    /// TLS metadata (Suricata's `tls` object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<serde_json::Value>,
    /// Which Tocsin sensor raised the alert (absent on plain Suricata records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<SensorInfo>,
    /// Stable ID (see [`AlertId`]); absent on plain Suricata records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_suricata() {
        // 2010-07-14T17:40:43.727475+0000 from a real Suricata EVE record.
        let ts = Timestamp::from_secs_micros(1_279_129_243, 727_475);
        assert_eq!(ts.to_string(), "2010-07-14T17:40:43.727475+0000");
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000000+0000");
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999999+0000");
        // Leap day.
        let leap = Timestamp::from_secs_micros(951_782_400, 0);
        assert_eq!(leap.to_string(), "2000-02-29T00:00:00.000000+0000");
    }

    #[test]
    fn parses_eve_and_rfc3339() {
        let want = Timestamp::from_secs_micros(1_279_129_243, 727_475);
        assert_eq!(
            Timestamp::parse_eve("2010-07-14T17:40:43.727475+0000"),
            Ok(want)
        );
        assert_eq!(
            Timestamp::parse_eve("2010-07-14T17:40:43.727475Z"),
            Ok(want)
        );
        assert_eq!(
            Timestamp::parse_eve("2010-07-14T19:40:43.727475+02:00"),
            Ok(want)
        );
        assert_eq!(
            Timestamp::parse_eve("2010-07-14T19:40:43.727475+0200"),
            Ok(want)
        );
        assert!(Timestamp::parse_eve("yesterday").is_err());
        assert!(Timestamp::parse_eve("").is_err());
    }

    #[test]
    fn alert_id_round_trip_and_errors() {
        let id = AlertId {
            sensor: "s-1".into(),
            stream: 0xdead_beef,
            seq: 7,
        };
        assert_eq!(id.to_string(), "s-1:00000000deadbeef:7");
        assert_eq!(AlertId::parse("s-1:00000000deadbeef:7"), Ok(id));
        assert_eq!(AlertId::parse("x"), Err(AlertIdError::Shape));
        assert_eq!(AlertId::parse("a:b"), Err(AlertIdError::Shape));
        assert_eq!(
            AlertId::parse(":00000000deadbeef:7"),
            Err(AlertIdError::Sensor)
        );
        assert_eq!(AlertId::parse("a:dead:7"), Err(AlertIdError::Stream));
        assert_eq!(
            AlertId::parse("a:00000000deadbeeg:7"),
            Err(AlertIdError::Stream)
        );
        assert_eq!(
            AlertId::parse("a:00000000deadbeef:-1"),
            Err(AlertIdError::Seq)
        );
        assert_eq!(
            AlertId::parse("a:00000000deadbeef:18446744073709551616"),
            Err(AlertIdError::Seq)
        );
    }

    #[test]
    fn fnv1a_matches_reference_vectors() {
        // Reference values of 64-bit FNV-1a (Fowler/Noll/Vo test suite).
        let mut h = Fnv1a::new();
        assert_eq!(h.finish(), 0xcbf2_9ce4_8422_2325);
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        let mut h = Fnv1a::new();
        h.write(b"foobar");
        assert_eq!(h.finish(), 0x8594_4171_f739_67e8);
    }

    proptest::proptest! {
        #[test]
        fn display_parse_round_trip(micros in -10_000_000_000_000_000i64..10_000_000_000_000_000i64) {
            let ts = Timestamp(micros);
            proptest::prop_assert_eq!(Timestamp::parse_eve(&ts.to_string()), Ok(ts));
        }

        #[test]
        fn parse_never_panics(text in ".{0,64}") {
            let _ = Timestamp::parse_eve(&text);
        }
    }
}
