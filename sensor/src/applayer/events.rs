//! App-layer anomaly events: what the `app-layer-event` keyword matches, and how cap hits are
//! counted.
//!
//! Input: parsers and the detector report anomalies through [`Events::push`].
//! Output: a bounded list of [`AppEvent`]s per flow ([`crate::applayer::AppLayer::events`]).
//! Invariants: events are `Copy` (no allocation per event); names follow Suricata's
//! `app-layer-event` spelling (`http.request_field_too_long`, `dns.malformed_data`, ...).
//! Caps: at most `max_events` are kept per flow; later ones are only counted in
//! [`Events::dropped`], so a hostile flow cannot grow this list without bound.

use crate::Direction;
use crate::applayer::{dns::DnsEvent, http::HttpEvent, tls::TlsEvent};

/// One anomaly seen in a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppEvent {
    /// What happened.
    pub kind: AppEventKind,
    /// The direction whose data raised it.
    pub dir: Direction,
    /// The transaction it belongs to, when there is one.
    pub tx_id: Option<u64>,
}

/// The kinds of app-layer events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppEventKind {
    /// The two directions were detected as different protocols; the first one is kept.
    MismatchProtocolBothDirections,
    /// Data arrived while detection was pending and the holding buffer was full; the excess
    /// is handed to the parser as a gap once the protocol is known.
    DetectionBufferFull,
    /// Bytes were lost (a gap) before the protocol of that direction was known.
    DetectionGap,
    /// The per-flow transaction cap was reached and the oldest transaction was dropped.
    TooManyTransactions,
    /// An HTTP anomaly.
    Http(HttpEvent),
    /// A DNS anomaly.
    Dns(DnsEvent),
    /// A TLS anomaly.
    Tls(TlsEvent),
}

impl AppEventKind {
    /// The name rules use with `app-layer-event:` (Suricata's spelling where Suricata has the
    /// event, `applayer.*` for Tocsin's own).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::MismatchProtocolBothDirections => "applayer.mismatch_protocol_both_directions",
            Self::DetectionBufferFull => "applayer.detection_buffer_full",
            Self::DetectionGap => "applayer.detection_gap",
            Self::TooManyTransactions => "applayer.too_many_transactions",
            Self::Http(e) => e.name(),
            Self::Dns(e) => e.name(),
            Self::Tls(e) => e.name(),
        }
    }
}

/// A bounded event list (one per flow).
#[derive(Debug, Clone, Default)]
pub struct Events {
    list: Vec<AppEvent>,
    cap: usize,
    dropped: u64,
}

impl Events {
    /// An empty list that keeps at most `cap` events.
    #[must_use]
    pub fn new(cap: usize) -> Self {
        Self {
            list: Vec::new(),
            cap,
            dropped: 0,
        }
    }

    /// Records an event, or counts it as dropped when the list is full.
    pub fn push(&mut self, kind: AppEventKind, dir: Direction, tx_id: Option<u64>) {
        if self.list.len() < self.cap {
            self.list.push(AppEvent { kind, dir, tx_id });
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// The recorded events, oldest first.
    #[must_use]
    pub fn as_slice(&self) -> &[AppEvent] {
        &self.list
    }

    /// How many events were not recorded because the list was full.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether an event of `kind` has been recorded.
    #[must_use]
    pub fn contains(&self, kind: AppEventKind) -> bool {
        self.list.iter().any(|e| e.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::{AppEventKind, Events};
    use crate::Direction;

    #[test]
    fn list_is_capped_and_counts_the_rest() {
        let mut ev = Events::new(2);
        for _ in 0..5 {
            ev.push(
                AppEventKind::TooManyTransactions,
                Direction::ToServer,
                Some(1),
            );
        }
        assert_eq!(ev.as_slice().len(), 2);
        assert_eq!(ev.dropped(), 3);
        assert!(ev.contains(AppEventKind::TooManyTransactions));
        assert!(!ev.contains(AppEventKind::DetectionGap));
    }
}
