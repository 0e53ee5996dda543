//! `threshold` and `detection_filter`: rate rules applied after a signature matched.
//!
//! Semantics (Suricata's, per tracking key, windows on packet time):
//! - `limit`: alert on the first `count` matches of each `seconds` window.
//! - `threshold`: alert on every `count`-th match within a window.
//! - `both`: alert once per window, on the `count`-th match.
//! - `backoff`: alert on the `count`-th match, then the `count × multiplier^k`-th ones.
//! - `detection_filter`: alert on every match after the first `count` within the window.
//!
//! The table is bounded: when full, expired entries are swept; if it is still full, the
//! match alerts (fail open: an IDS must not hide alerts because of memory pressure) and a
//! counter records it.

use std::collections::HashMap;
use std::net::IpAddr;

use super::rule::ast::{Threshold, ThresholdKind, Track, UniqueOn};
use crate::Timestamp;

/// What a threshold counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKey {
    /// `by_rule`.
    Rule,
    /// `by_src` / `by_dst`.
    Addr(IpAddr),
    /// `by_both`.
    Pair(IpAddr, IpAddr),
    /// `by_flow`.
    Flow(u64),
}

impl TrackKey {
    /// The port a `unique_on` threshold counts, for a packet with these ports.
    #[must_use]
    pub fn unique_value(t: &Threshold, sport: u16, dport: u16) -> Option<u16> {
        t.unique_on.map(|u| match u {
            UniqueOn::SrcPort => sport,
            UniqueOn::DstPort => dport,
        })
    }

    /// The key of a match with these packet endpoints.
    #[must_use]
    pub fn of(track: Track, src: IpAddr, dst: IpAddr, flow_id: u64) -> Self {
        match track {
            Track::BySrc => Self::Addr(src),
            Track::ByDst => Self::Addr(dst),
            Track::ByRule => Self::Rule,
            Track::ByBoth => Self::Pair(src, dst),
            Track::ByFlow => Self::Flow(flow_id),
        }
    }
}

/// Most distinct values one `unique_on` entry remembers.
const MAX_UNIQUE: usize = 4096;

#[derive(Debug, Clone)]
struct Entry {
    window_start: Timestamp,
    count: u64,
    /// Distinct values seen this window (`unique_on`), sorted.
    seen: Vec<u16>,
    /// For `backoff`: the next count that alerts.
    next: u64,
    /// For `both`: whether this window already alerted.
    fired: bool,
}

/// Thresholding state for all signatures (shared by the workers of a sensor).
#[derive(Debug)]
pub struct ThresholdTable {
    map: HashMap<(u32, bool, TrackKey), Entry>,
    max_entries: usize,
    /// Matches allowed through because the table was full.
    pub fail_open: u64,
}

impl ThresholdTable {
    /// An empty table holding at most `max_entries` keys.
    #[must_use]
    pub fn new(max_entries: usize) -> Self {
        Self {
            map: HashMap::new(),
            max_entries: max_entries.max(1),
            fail_open: 0,
        }
    }

    /// Records a match of signature `sig` under `t` and says whether it alerts.
    /// `is_filter` separates a rule's detection_filter from its threshold.
    /// `unique` is the port `unique_on` names, when the threshold has one.
    pub fn check(
        &mut self,
        sig: u32,
        is_filter: bool,
        t: &Threshold,
        key: TrackKey,
        unique: Option<u16>,
        now: Timestamp,
    ) -> bool {
        let window = i64::from(t.seconds) * 1_000_000;
        let count = u64::from(t.count);
        let k = (sig, is_filter, key);
        if !self.map.contains_key(&k) && self.map.len() >= self.max_entries {
            self.sweep(now, window);
            if self.map.len() >= self.max_entries {
                self.fail_open += 1;
                return true;
            }
        }
        let kind = t.kind;
        let e = self.map.entry(k).or_insert(Entry {
            window_start: now,
            count: 0,
            seen: Vec::new(),
            next: count.max(1),
            fired: false,
        });
        let expired =
            kind != Some(ThresholdKind::Backoff) && now.0.saturating_sub(e.window_start.0) > window;
        if expired {
            *e = Entry {
                window_start: now,
                count: 0,
                seen: Vec::new(),
                next: count.max(1),
                fired: false,
            };
        }
        if let Some(v) = unique {
            match e.seen.binary_search(&v) {
                // A value already counted this window is not a new event.
                Ok(_) => return false,
                Err(pos) if e.seen.len() < MAX_UNIQUE => e.seen.insert(pos, v),
                Err(_) => {}
            }
        }
        e.count += 1;
        match kind {
            None => e.count > count,
            Some(ThresholdKind::Limit) => e.count <= count,
            Some(ThresholdKind::Threshold) => {
                if e.count >= count {
                    e.count = 0;
                    true
                } else {
                    false
                }
            }
            Some(ThresholdKind::Both) => {
                if e.count >= count && !e.fired {
                    e.fired = true;
                    true
                } else {
                    false
                }
            }
            Some(ThresholdKind::Backoff) => {
                // Alerts on match count, count*m, count*m^2, ... (m = multiplier).
                if e.count == e.next {
                    e.next = e.next.saturating_mul(u64::from(t.seconds.max(2)));
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Drops entries whose window ended (used when the table is full).
    fn sweep(&mut self, now: Timestamp, min_window: i64) {
        self.map
            .retain(|_, e| now.0.saturating_sub(e.window_start.0) <= min_window);
    }

    /// Forgets all state (a new capture run).
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Entries held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: Option<ThresholdKind>, count: u32, events: usize) -> usize {
        let t = Threshold {
            kind,
            track: Track::BySrc,
            count,
            seconds: 3600,
            unique_on: None,
        };
        let mut table = ThresholdTable::new(16);
        let key = TrackKey::Addr("10.0.0.1".parse().unwrap());
        (0..events)
            .filter(|&i| {
                table.check(
                    1,
                    false,
                    &t,
                    key,
                    None,
                    Timestamp(i64::try_from(i).unwrap()),
                )
            })
            .count()
    }

    #[test]
    fn counts_like_suricata_verify_expects() {
        // threshold/detection_filter-rule-hostsrc: 8 matches, count N -> 8 - N alerts.
        for (n, want) in [(1, 7), (2, 6), (4, 4), (7, 1), (8, 0)] {
            assert_eq!(run(None, n, 8), want, "detection_filter count {n}");
        }
        // threshold/threshold-rule-flow: limit 1 -> 1, limit 2 -> 2, both 3 -> 1.
        assert_eq!(run(Some(ThresholdKind::Limit), 1, 8), 1);
        assert_eq!(run(Some(ThresholdKind::Limit), 2, 8), 2);
        assert_eq!(run(Some(ThresholdKind::Both), 3, 8), 1);
        // type threshold count 3 over 8 events: alerts on the 3rd and 6th.
        assert_eq!(run(Some(ThresholdKind::Threshold), 3, 8), 2);
        // threshold-rule-flow-backoff-single-flow: 6676 matches; count 1 × 2 -> 1,2,4..4096
        // (13), count 3 × 2 -> 3..6144 (12), count 5 × 5 -> 5..3125 (5).
        let backoff = |count, mult| {
            let t = Threshold {
                kind: Some(ThresholdKind::Backoff),
                track: Track::ByFlow,
                count,
                seconds: mult,
                unique_on: None,
            };
            let mut table = ThresholdTable::new(4);
            (0..6676)
                .filter(|_| table.check(1, false, &t, TrackKey::Flow(1), None, Timestamp(0)))
                .count()
        };
        assert_eq!((backoff(1, 2), backoff(3, 2), backoff(5, 5)), (13, 12, 5));
    }

    #[test]
    fn windows_restart() {
        let t = Threshold {
            kind: Some(ThresholdKind::Limit),
            track: Track::ByRule,
            count: 1,
            seconds: 10,
            unique_on: None,
        };
        let mut table = ThresholdTable::new(16);
        let s = |x: i64| Timestamp(x * 1_000_000);
        assert!(table.check(1, false, &t, TrackKey::Rule, None, s(0)));
        assert!(!table.check(1, false, &t, TrackKey::Rule, None, s(5)));
        assert!(table.check(1, false, &t, TrackKey::Rule, None, s(11)));
    }

    #[test]
    fn table_is_bounded_and_fails_open() {
        let t = Threshold {
            kind: Some(ThresholdKind::Limit),
            track: Track::BySrc,
            count: 1,
            seconds: 3600,
            unique_on: None,
        };
        let mut table = ThresholdTable::new(4);
        for i in 0..100u32 {
            let key = TrackKey::Addr(IpAddr::from(i.to_be_bytes()));
            assert!(table.check(1, false, &t, key, None, Timestamp(0)));
        }
        assert!(table.len() <= 4);
        assert_eq!(table.fail_open, 96);
    }
}
