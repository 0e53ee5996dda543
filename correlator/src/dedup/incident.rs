//! The in-memory incident and its deterministic ID.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::ingest::Alert;
use crate::store::rows::IncidentRow;

/// Namespace of incident UUIDv5s (a fixed random UUID; changing it changes every ID).
pub const INCIDENT_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a7e_94d3_4b0f_8e52_1d7a_c3b9_0e64);

/// Deterministic incident ID: UUIDv5 over agency, key and window start (microseconds), so
/// correlators that see the same alerts compute the same IDs. [`Incident::new`] passes
/// `rule + U+001F + key text` as the key, so two rules never share an incident.
#[must_use]
pub fn incident_id(agency: &str, key: &str, window_start_us: i64) -> Uuid {
    let name = format!("{agency}\u{1f}{key}\u{1f}{window_start_us}");
    Uuid::new_v5(&INCIDENT_NAMESPACE, name.as_bytes())
}

/// How an incident was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentKind {
    /// Alerts sharing a dedup key within a window.
    Dedup,
    /// A threshold correlation rule fired.
    Threshold,
    /// A distinct-count correlation rule fired.
    DistinctCount,
    /// A sequence correlation rule completed.
    Sequence,
}

impl IncidentKind {
    /// Stored text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dedup => "dedup",
            Self::Threshold => "threshold",
            Self::DistinctCount => "distinct_count",
            Self::Sequence => "sequence",
        }
    }

    /// Parses the stored text.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "dedup" => Some(Self::Dedup),
            "threshold" => Some(Self::Threshold),
            "distinct_count" => Some(Self::DistinctCount),
            "sequence" => Some(Self::Sequence),
            _ => None,
        }
    }
}

/// A set that stops growing at a cap (incidents list at most `max_set` addresses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CappedSet<T: Ord> {
    items: BTreeSet<T>,
    cap: usize,
}

impl<T: Ord + Clone> CappedSet<T> {
    /// An empty set holding at most `cap` items.
    #[must_use]
    pub fn new(cap: usize) -> Self {
        Self {
            items: BTreeSet::new(),
            cap,
        }
    }

    /// Adds `item` unless the set is full (clones only when it is new).
    pub fn insert(&mut self, item: &T) {
        if self.items.len() < self.cap && !self.items.contains(item) {
            self.items.insert(item.clone());
        }
    }

    /// Items in order.
    #[must_use]
    pub fn to_vec(&self) -> Vec<T> {
        self.items.iter().cloned().collect()
    }
}

/// An incident as the dedup and correlation engines hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// Deterministic ID.
    pub id: Uuid,
    /// Owning agency.
    pub agency: String,
    /// How it was raised.
    pub kind: IncidentKind,
    /// Dedup override or correlation rule name (`default` for the default dedup key).
    pub rule: String,
    /// Key text (`field=value|...`).
    pub key: String,
    /// Event time of the alert that opened it, µs.
    pub window_start_us: i64,
    /// Earliest member alert, µs.
    pub first_seen_us: i64,
    /// Latest member alert, µs.
    pub last_seen_us: i64,
    /// Member alerts.
    pub alert_count: u64,
    /// Sensors seen (capped).
    pub sensors: CappedSet<String>,
    /// Source addresses (capped).
    pub src_ips: CappedSet<String>,
    /// Destination addresses (capped).
    pub dest_ips: CappedSet<String>,
    /// Signature IDs (capped).
    pub signature_ids: CappedSet<u32>,
    /// Signature texts (capped).
    pub signatures: CappedSet<String>,
    /// Most severe member (Suricata severity: 1 is the most severe).
    pub severity: u8,
    /// `open` or `closed`.
    pub open: bool,
    /// Row version (ReplacingMergeTree keeps the highest).
    pub version: u64,
}

impl Incident {
    /// A new, empty incident.
    #[must_use]
    pub fn new(
        agency: &str,
        kind: IncidentKind,
        rule: &str,
        key: String,
        window_start_us: i64,
        max_set: usize,
    ) -> Self {
        Self {
            id: incident_id(agency, &format!("{rule}\u{1f}{key}"), window_start_us),
            agency: agency.to_owned(),
            kind,
            rule: rule.to_owned(),
            key,
            window_start_us,
            first_seen_us: window_start_us,
            last_seen_us: window_start_us,
            alert_count: 0,
            sensors: CappedSet::new(max_set),
            src_ips: CappedSet::new(max_set),
            dest_ips: CappedSet::new(max_set),
            signature_ids: CappedSet::new(max_set),
            signatures: CappedSet::new(max_set),
            severity: u8::MAX,
            open: true,
            version: 0,
        }
    }

    /// Adds one member alert.
    pub fn add(&mut self, alert: &Alert) {
        let ts = alert.ts.0;
        if self.alert_count == 0 {
            self.first_seen_us = ts;
            self.last_seen_us = ts;
        } else {
            self.first_seen_us = self.first_seen_us.min(ts);
            self.last_seen_us = self.last_seen_us.max(ts);
        }
        self.alert_count += 1;
        self.sensors.insert(&alert.sensor);
        self.src_ips.insert(&alert.src_ip);
        self.dest_ips.insert(&alert.dest_ip);
        self.signature_ids.insert(&alert.signature_id);
        self.signatures.insert(&alert.signature);
        self.severity = self.severity.min(alert.severity);
    }

    /// The row to store, stamped with `version` and `now_s`.
    #[must_use]
    pub fn to_row(&self, now_s: i64) -> IncidentRow {
        IncidentRow {
            id: self.id.to_string(),
            agency: self.agency.clone(),
            kind: self.kind.as_str().to_owned(),
            rule: self.rule.clone(),
            dedup_key: self.key.clone(),
            window_start: self.window_start_us.div_euclid(1_000_000),
            window_start_us: self.window_start_us,
            first_seen: self.first_seen_us.div_euclid(1_000_000),
            first_seen_us: self.first_seen_us,
            last_seen: self.last_seen_us.div_euclid(1_000_000),
            last_seen_us: self.last_seen_us,
            alert_count: self.alert_count,
            sensors: self.sensors.to_vec(),
            src_ips: self.src_ips.to_vec(),
            dest_ips: self.dest_ips.to_vec(),
            signature_ids: self.signature_ids.to_vec(),
            signatures: self.signatures.to_vec(),
            severity: if self.alert_count == 0 {
                0
            } else {
                self.severity
            },
            status: if self.open { "open" } else { "closed" }.to_owned(),
            version: self.version,
            updated_at: now_s,
        }
    }

    /// Rebuilds an incident from its stored row (after a restart).
    #[must_use]
    pub fn from_row(row: &IncidentRow, max_set: usize) -> Option<Self> {
        let id = row.id.parse::<Uuid>().ok()?;
        let kind = IncidentKind::parse(&row.kind)?;
        let mut inc = Self::new(
            &row.agency,
            kind,
            &row.rule,
            row.dedup_key.clone(),
            row.window_start_us,
            max_set,
        );
        inc.id = id;
        inc.first_seen_us = row.first_seen_us;
        inc.last_seen_us = row.last_seen_us;
        inc.alert_count = row.alert_count;
        for s in &row.sensors {
            inc.sensors.insert(s);
        }
        for s in &row.src_ips {
            inc.src_ips.insert(s);
        }
        for s in &row.dest_ips {
            inc.dest_ips.insert(s);
        }
        for s in &row.signature_ids {
            inc.signature_ids.insert(s);
        }
        for s in &row.signatures {
            inc.signatures.insert(s);
        }
        inc.severity = if row.severity == 0 {
            u8::MAX
        } else {
            row.severity
        };
        inc.open = row.status == "open";
        inc.version = row.version;
        Some(inc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let a = incident_id("MOH", "signature_id=1|src_ip=10.0.0.1", 1_000_000);
        assert_eq!(
            a,
            incident_id("MOH", "signature_id=1|src_ip=10.0.0.1", 1_000_000)
        );
        assert_eq!(a.get_version_num(), 5);
        assert_ne!(
            a,
            incident_id("MOF", "signature_id=1|src_ip=10.0.0.1", 1_000_000)
        );
        assert_ne!(
            a,
            incident_id("MOH", "signature_id=1|src_ip=10.0.0.2", 1_000_000)
        );
        assert_ne!(
            a,
            incident_id("MOH", "signature_id=1|src_ip=10.0.0.1", 1_000_001)
        );
    }

    #[test]
    fn capped_set_stops_growing() {
        let mut s = CappedSet::new(2);
        for x in [3, 1, 2, 1] {
            s.insert(&x);
        }
        assert_eq!(s.to_vec(), vec![1, 3]);
    }
}
