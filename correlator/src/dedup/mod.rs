//! Dedup: alerts in, incidents out.
//!
//! Input: batches of validated, not-yet-stored [`Alert`]s (each `alert_id` once: the writer
//! removes repeats before this stage). Output: for every alert the ID of the incident it
//! joined, and a row for every incident that changed (new version) or closed.
//!
//! Grouping: an alert's key is the agency plus the fields of the first matching
//! [`crate::config::DedupOverride`] (by signature ID or category), else of the default key.
//! An incident stays open while alerts with its key keep arriving within `window` of its
//! last alert (event time, i.e. the alerts' timestamps) and while its span stays within
//! `max_lifetime`; the next alert after that opens a new incident. Within a batch, alerts
//! are applied in (timestamp, alert_id) order, so a batch's order never changes the result.
//!
//! Invariants: incident IDs are UUIDv5 of (agency, rule + key, window start), see
//! [`incident::incident_id`]; versions only grow. [`DedupEngine::rollback`] undoes a batch
//! whose storage failed, so a retried batch is counted once.
//!
//! Caps: `max_set` entries per incident set, `max_open_incidents` incidents in memory (the
//! least recently updated are closed first). Incidents idle for `window` of wall-clock time
//! are closed by [`DedupEngine::sweep`].

pub mod incident;
pub mod key;

use std::collections::{HashMap, HashSet};

pub use incident::{CappedSet, Incident, IncidentKind, incident_id};
pub use key::{KeyField, key_text};
use uuid::Uuid;

use crate::config::DedupConfig;
use crate::ingest::Alert;
use crate::store::rows::IncidentRow;

#[derive(Debug, Clone)]
struct Spec {
    name: String,
    signature_ids: HashSet<u32>,
    categories: HashSet<String>,
    key: Vec<KeyField>,
    window_us: i64,
}

#[derive(Debug, Clone)]
struct Slot {
    inc: Incident,
    window_us: i64,
    touched_ms: i64,
}

/// What [`DedupEngine::rollback`] needs to undo one [`DedupEngine::apply`].
#[derive(Debug, Default)]
pub struct DedupUndo {
    before: Vec<(String, Option<Slot>)>,
}

/// Result of applying one batch.
#[derive(Debug, Default)]
pub struct DedupOutput {
    /// Incident of each input alert, by input index.
    pub incident_of: Vec<Uuid>,
    /// New versions of every incident that changed or closed.
    pub rows: Vec<IncidentRow>,
    /// Undo information for this batch.
    pub undo: DedupUndo,
}

/// The dedup state: open incidents by key.
#[derive(Debug)]
pub struct DedupEngine {
    default: Spec,
    overrides: Vec<Spec>,
    lifetime_us: i64,
    max_set: usize,
    max_open: usize,
    open: HashMap<String, Slot>,
    last_version: u64,
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl DedupEngine {
    /// Builds the engine from validated config.
    #[must_use]
    pub fn new(cfg: &DedupConfig) -> Self {
        let window_us = micros(cfg.window);
        Self {
            default: Spec {
                name: "default".to_owned(),
                signature_ids: HashSet::new(),
                categories: HashSet::new(),
                key: cfg.key.clone(),
                window_us,
            },
            overrides: cfg
                .overrides
                .iter()
                .map(|o| Spec {
                    name: o.name.clone(),
                    signature_ids: o.signature_ids.iter().copied().collect(),
                    categories: o.categories.iter().cloned().collect(),
                    key: o.key.clone(),
                    window_us: o.window.map_or(window_us, micros),
                })
                .collect(),
            lifetime_us: micros(cfg.max_lifetime),
            max_set: cfg.max_set,
            max_open: cfg.max_open_incidents,
            open: HashMap::new(),
            last_version: 0,
        }
    }

    /// Number of incidents held open.
    #[must_use]
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    fn spec_for(&self, alert: &Alert) -> &Spec {
        self.overrides
            .iter()
            .find(|s| {
                s.signature_ids.contains(&alert.signature_id)
                    || s.categories.contains(&alert.category)
            })
            .unwrap_or(&self.default)
    }

    fn next_version(&mut self, now_us: i64) -> u64 {
        let now = u64::try_from(now_us).unwrap_or(0);
        self.last_version = now.max(self.last_version + 1);
        self.last_version
    }

    /// Applies a batch of new alerts at wall-clock `now_us`.
    #[must_use]
    pub fn apply(&mut self, alerts: &[Alert], now_us: i64) -> DedupOutput {
        let now_ms = now_us / 1000;
        let mut order: Vec<usize> = (0..alerts.len()).collect();
        order.sort_by(|&a, &b| {
            let (x, y) = (&alerts[a], &alerts[b]);
            (x.ts, &x.alert_id).cmp(&(y.ts, &y.alert_id))
        });
        let mut out = DedupOutput {
            incident_of: vec![Uuid::nil(); alerts.len()],
            ..DedupOutput::default()
        };
        let mut seen_keys: HashSet<String> = HashSet::new();
        let mut touched: Vec<String> = Vec::new();
        let mut standalone: Vec<Incident> = Vec::new();
        for i in order {
            let a = &alerts[i];
            let spec = self.spec_for(a);
            let (rule, window_us) = (spec.name.clone(), spec.window_us);
            let key = key_text(&spec.key, a);
            let map_key = format!("{}\u{1f}{rule}\u{1f}{key}", a.owner);
            if !seen_keys.contains(&map_key) {
                seen_keys.insert(map_key.clone());
                out.undo
                    .before
                    .push((map_key.clone(), self.open.get(&map_key).cloned()));
                touched.push(map_key.clone());
            }
            let t = a.ts.0;
            let lifetime = self.lifetime_us;
            let max_set = self.max_set;
            let mut closed = None;
            match self.open.get_mut(&map_key) {
                Some(slot)
                    if t <= slot.inc.last_seen_us.saturating_add(slot.window_us)
                        && t >= slot.inc.first_seen_us.saturating_sub(slot.window_us)
                        && slot.inc.last_seen_us.max(t) - slot.inc.first_seen_us.min(t)
                            <= lifetime =>
                {
                    slot.inc.add(a);
                    slot.touched_ms = now_ms;
                    out.incident_of[i] = slot.inc.id;
                }
                Some(slot) if t > slot.inc.last_seen_us => {
                    // Past the window or the lifetime: close it, open the next one.
                    let mut new =
                        Incident::new(&a.owner, IncidentKind::Dedup, &rule, key, t, max_set);
                    new.add(a);
                    out.incident_of[i] = new.id;
                    let mut old = std::mem::replace(&mut slot.inc, new);
                    slot.touched_ms = now_ms;
                    old.open = false;
                    closed = Some(old);
                }
                Some(_) => {
                    // A late alert, older than the open incident's window: an incident of
                    // its own, closed at once (later alerts belong to the open one).
                    let mut late =
                        Incident::new(&a.owner, IncidentKind::Dedup, &rule, key, t, max_set);
                    late.add(a);
                    late.open = false;
                    out.incident_of[i] = late.id;
                    standalone.push(late);
                }
                None => {
                    let mut new =
                        Incident::new(&a.owner, IncidentKind::Dedup, &rule, key, t, max_set);
                    new.add(a);
                    out.incident_of[i] = new.id;
                    self.open.insert(
                        map_key,
                        Slot {
                            inc: new,
                            window_us,
                            touched_ms: now_ms,
                        },
                    );
                }
            }
            if let Some(old) = closed {
                standalone.push(old);
            }
        }
        let now_s = now_us.div_euclid(1_000_000);
        for mut inc in standalone {
            inc.version = self.next_version(now_us);
            out.rows.push(inc.to_row(now_s));
        }
        for k in touched {
            let version = self.next_version(now_us);
            if let Some(slot) = self.open.get_mut(&k) {
                slot.inc.version = version;
                out.rows.push(slot.inc.to_row(now_s));
            }
        }
        out
    }

    /// Restores the state from before the [`DedupEngine::apply`] that returned `undo`.
    pub fn rollback(&mut self, undo: DedupUndo) {
        for (k, before) in undo.before.into_iter().rev() {
            match before {
                Some(slot) => {
                    self.open.insert(k, slot);
                }
                None => {
                    self.open.remove(&k);
                }
            }
        }
    }

    /// Closes incidents idle (wall clock) for their window, and the least recently updated
    /// ones beyond `max_open_incidents`. Returns their closed rows, to be stored.
    #[must_use]
    pub fn sweep(&mut self, now_us: i64) -> Vec<IncidentRow> {
        let now_ms = now_us / 1000;
        let mut expired: Vec<String> = self
            .open
            .iter()
            .filter(|(_, s)| now_ms.saturating_sub(s.touched_ms) > s.window_us / 1000)
            .map(|(k, _)| k.clone())
            .collect();
        if self.open.len() - expired.len() > self.max_open {
            // Close the least recently touched tenth beyond the cap in one go.
            let mut by_age: Vec<(i64, &String)> =
                self.open.iter().map(|(k, s)| (s.touched_ms, k)).collect();
            by_age.sort();
            let excess = self.open.len() - self.max_open + self.max_open / 10;
            expired = by_age
                .into_iter()
                .take(excess)
                .map(|(_, k)| k.clone())
                .collect();
        }
        let now_s = now_us.div_euclid(1_000_000);
        let mut rows = Vec::with_capacity(expired.len());
        for k in expired {
            if let Some(mut slot) = self.open.remove(&k) {
                slot.inc.open = false;
                slot.inc.version = self.next_version(now_us);
                rows.push(slot.inc.to_row(now_s));
            }
        }
        rows
    }

    /// Puts stored open incidents back into memory after a restart, so alerts that arrive
    /// within their window join them instead of opening new ones.
    pub fn restore(&mut self, rows: &[IncidentRow], now_us: i64) -> usize {
        let mut n = 0;
        for row in rows {
            if row.kind != IncidentKind::Dedup.as_str() || row.status != "open" {
                continue;
            }
            let Some(inc) = Incident::from_row(row, self.max_set) else {
                continue;
            };
            let window_us = self
                .overrides
                .iter()
                .find(|s| s.name == row.rule)
                .map_or(self.default.window_us, |s| s.window_us);
            self.last_version = self.last_version.max(row.version);
            let map_key = format!("{}\u{1f}{}\u{1f}{}", row.agency, row.rule, row.dedup_key);
            let keep = match self.open.get(&map_key) {
                Some(cur) => cur.inc.version < inc.version,
                None => true,
            };
            if keep {
                self.open.insert(
                    map_key,
                    Slot {
                        inc,
                        window_us,
                        touched_ms: now_us / 1000,
                    },
                );
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use tocsin_eve::Timestamp;

    use super::*;
    use crate::config::DedupOverride;
    use crate::ingest::SourceFormat;

    pub(crate) fn alert(id: u32, ts_s: i64, sid: u32, src: &str, dst: &str) -> Alert {
        Alert {
            alert_id: format!("s:0000000000000001:{id}"),
            agency: "MOH".into(),
            owner: "MOH".into(),
            sensor: "s".into(),
            ts: Timestamp::from_secs_micros(ts_s, 0),
            gid: 1,
            signature_id: sid,
            rev: 1,
            signature: format!("sig {sid}"),
            category: if sid >= 9000 {
                "Attempted Information Leak".into()
            } else {
                "Misc".into()
            },
            severity: 2,
            src_ip: src.into(),
            src_port: 1000,
            dest_ip: dst.into(),
            dest_port: 80,
            proto: "TCP".into(),
            app_proto: String::new(),
            flow_id: 0,
            source: SourceFormat::Tocsin,
            app: String::new(),
        }
    }

    fn cfg() -> DedupConfig {
        DedupConfig {
            window: std::time::Duration::from_secs(60),
            max_lifetime: std::time::Duration::from_secs(600),
            overrides: vec![DedupOverride {
                name: "scan".into(),
                signature_ids: vec![],
                categories: vec!["Attempted Information Leak".into()],
                key: vec![KeyField::SrcIp],
                window: None,
            }],
            ..DedupConfig::default()
        }
    }

    const NOW: i64 = 1_700_000_000_000_000;

    #[test]
    fn default_key_groups_by_sid_src_dst_within_window() {
        let mut e = DedupEngine::new(&cfg());
        let batch = vec![
            alert(1, 1000, 1, "10.0.0.1", "10.0.0.9"),
            alert(2, 1030, 1, "10.0.0.1", "10.0.0.9"), // joins (30 s later)
            alert(3, 1031, 1, "10.0.0.1", "10.0.0.8"), // other dest: new incident
            alert(4, 1091, 1, "10.0.0.1", "10.0.0.9"), // 61 s after #2: new incident
        ];
        let out = e.apply(&batch, NOW);
        assert_eq!(out.incident_of[0], out.incident_of[1]);
        assert_ne!(out.incident_of[0], out.incident_of[2]);
        assert_ne!(out.incident_of[0], out.incident_of[3]);
        // Rows: the closed first incident, then the two open ones.
        assert_eq!(out.rows.len(), 3);
        let closed = out.rows.iter().find(|r| r.status == "closed").unwrap();
        assert_eq!(closed.alert_count, 2);
        assert_eq!(closed.id, out.incident_of[0].to_string());
        assert_eq!(
            closed.id,
            incident_id(
                "MOH",
                "default\u{1f}signature_id=1|src_ip=10.0.0.1|dest_ip=10.0.0.9",
                1_000_000_000
            )
            .to_string()
        );
        assert_eq!(e.open_count(), 2);
    }

    #[test]
    fn lifetime_caps_a_busy_incident() {
        let mut e = DedupEngine::new(&cfg());
        // One alert every 50 s: always within the 60 s window, but the 600 s lifetime ends
        // the incident; the alert at t=650 (span 650 > 600) opens the second one.
        let batch: Vec<Alert> = (0..14)
            .map(|i| alert(i, 1000 + 50 * i64::from(i), 1, "a", "b"))
            .collect();
        let out = e.apply(&batch, NOW);
        let first = out.incident_of[0];
        let split = out.incident_of.iter().position(|&id| id != first).unwrap();
        assert_eq!(
            split, 13,
            "t=1650 is the first alert past 600 s of lifetime"
        );
    }

    #[test]
    fn override_groups_scans_by_source() {
        let mut e = DedupEngine::new(&cfg());
        let batch: Vec<Alert> = (0..100)
            .map(|i| {
                alert(
                    i,
                    1000 + i64::from(i),
                    9000 + i % 3,
                    "10.9.9.9",
                    &format!("10.1.0.{i}"),
                )
            })
            .collect();
        let out = e.apply(&batch, NOW);
        assert!(out.incident_of.iter().all(|&id| id == out.incident_of[0]));
        assert_eq!(out.rows.len(), 1);
        assert_eq!(out.rows[0].alert_count, 100);
        assert_eq!(out.rows[0].rule, "scan");
        assert_eq!(out.rows[0].dest_ips.len(), 100, "max_set default is 100");
        assert_eq!(out.rows[0].signature_ids, vec![9000, 9001, 9002]);
    }

    #[test]
    fn rollback_restores_counts() {
        let mut e = DedupEngine::new(&cfg());
        let b1 = vec![alert(1, 1000, 1, "a", "b")];
        let _ = e.apply(&b1, NOW);
        let b2 = vec![alert(2, 1001, 1, "a", "b"), alert(3, 1002, 2, "a", "b")];
        let out = e.apply(&b2, NOW);
        e.rollback(out.undo);
        assert_eq!(e.open_count(), 1);
        let again = e.apply(&b2, NOW);
        let row = again
            .rows
            .iter()
            .find(|r| r.signature_ids == vec![1])
            .unwrap();
        assert_eq!(row.alert_count, 2, "the retried alert is counted once");
    }

    #[test]
    fn sweep_closes_idle_and_restore_reopens() {
        let mut e = DedupEngine::new(&cfg());
        let out = e.apply(&[alert(1, 1000, 1, "a", "b")], NOW);
        assert!(
            e.sweep(NOW + 60_000_000).is_empty(),
            "exactly one window idle: still open"
        );
        let closed = e.sweep(NOW + 60_001_000);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].status, "closed");
        assert!(closed[0].version > out.rows[0].version);
        // A restarted engine restores the open row and extends the same incident.
        let mut e2 = DedupEngine::new(&cfg());
        assert_eq!(e2.restore(&out.rows, NOW), 1);
        let more = e2.apply(&[alert(2, 1010, 1, "a", "b")], NOW + 1);
        assert_eq!(more.incident_of[0], out.incident_of[0]);
        assert_eq!(more.rows[0].alert_count, 2);
        assert!(more.rows[0].version > out.rows[0].version);
    }

    proptest! {
        #[test]
        fn batch_order_does_not_matter(
            spec in proptest::collection::vec((0i64..400, 0u32..3, 0u8..3, 0u8..3), 1..60),
            seed in any::<u64>(),
        ) {
            let batch: Vec<Alert> = spec.iter().enumerate().map(|(i, (t, sid, s, d))| {
                alert(u32::try_from(i).unwrap(), 1000 + t, *sid, &format!("10.0.0.{s}"), &format!("10.0.1.{d}"))
            }).collect();
            let mut shuffled = batch.clone();
            // Deterministic Fisher-Yates from the seed.
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                let j = usize::try_from(x % (i as u64 + 1)).unwrap();
                shuffled.swap(i, j);
            }
            let by_id = |b: &[Alert], out: &DedupOutput| {
                let mut m: Vec<(String, Uuid)> = b.iter().zip(&out.incident_of).map(|(a, id)| (a.alert_id.clone(), *id)).collect();
                m.sort();
                m
            };
            let mut e1 = DedupEngine::new(&cfg());
            let mut e2 = DedupEngine::new(&cfg());
            let o1 = e1.apply(&batch, NOW);
            let o2 = e2.apply(&shuffled, NOW);
            prop_assert_eq!(by_id(&batch, &o1), by_id(&shuffled, &o2));
            let counts = |o: &DedupOutput| {
                let mut v: Vec<(String, u64, String)> = o.rows.iter().map(|r| (r.id.clone(), r.alert_count, r.status.clone())).collect();
                v.sort();
                v
            };
            prop_assert_eq!(counts(&o1), counts(&o2));
            // Every alert counted exactly once across incidents.
            let total: u64 = o1.rows.iter().map(|r| r.alert_count).sum();
            prop_assert_eq!(total, batch.len() as u64);
        }
    }
}
