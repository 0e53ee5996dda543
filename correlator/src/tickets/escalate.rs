//! SLA breaches and escalation: pure planning plus the timer that fires at each deadline.
//!
//! Input: active tickets with deadlines, the directory, the clock. Output: events. When a
//! ticket misses its acknowledge (while unacknowledged) or resolve deadline at its current
//! level, the escalator records `sla_breached` and, unless the ticket is already at the top
//! (level 1, or the root with `escalate_to_root`), `escalated`: the ticket moves to the
//! parent agency with a new deadline = the missed one + the parent's SLA for the severity.
//!
//! Both events carry the missed deadline as their time and deterministic IDs
//! (`ticket/escalated/LEVEL`), so a second escalator computing the same step writes identical
//! rows: a level is escalated at most once. The [`Clock`] maps tokio's clock onto the wall
//! clock, so tests drive deadlines with `tokio::time::pause()`/`advance()`.

use std::collections::{BTreeSet, HashMap};

use uuid::Uuid;

use super::{Actor, Event, Ticket, deadlines, make_event, micros, system_event_id};
use crate::agency::Directory;

/// Which deadline was missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// Time to acknowledge.
    Ack,
    /// Time to resolve.
    Resolve,
}

impl Deadline {
    /// Text used in events and metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ack => "ack",
            Self::Resolve => "resolve",
        }
    }
}

/// The earliest deadline of `t` not yet recorded as missed at its level.
#[must_use]
pub fn next_deadline(t: &Ticket) -> Option<(Deadline, i64)> {
    if !t.status.is_active() {
        return None;
    }
    let ack = (t.acknowledged_us == 0 && t.ack_due_us > 0 && !t.ack_breached)
        .then_some((Deadline::Ack, t.ack_due_us));
    let resolve = (t.resolve_due_us > 0 && !t.resolve_breached)
        .then_some((Deadline::Resolve, t.resolve_due_us));
    match (ack, resolve) {
        (Some(a), Some(r)) => Some(if r.1 < a.1 { r } else { a }),
        (a, r) => a.or(r),
    }
}

/// The agency a ticket at `agency` escalates to, if any.
#[must_use]
pub fn escalation_target<'a>(dir: &'a Directory, agency: &str, to_root: bool) -> Option<&'a str> {
    let parent = dir.parent(agency)?;
    let parent_is_root = dir.root() == Some(parent);
    (!parent_is_root || to_root).then_some(parent)
}

/// Events for `t` if a deadline has passed at `now_us`: `sla_breached`, then `escalated`
/// when there is a level above. Empty when nothing is due.
#[must_use]
pub fn plan(t: &Ticket, now_us: i64, dir: &Directory, to_root: bool) -> Vec<Event> {
    let Some((kind, due)) = next_deadline(t) else {
        return Vec::new();
    };
    if now_us < due {
        return Vec::new();
    }
    let system = Actor::system();
    let level = t.escalation_level;
    let mut breached = t.clone();
    match kind {
        Deadline::Ack => breached.ack_breached = true,
        Deadline::Resolve => breached.resolve_breached = true,
    }
    let note = format!(
        "{} deadline missed at level {level} ({})",
        kind.as_str(),
        t.agency
    );
    let e1 = make_event(
        Some(t),
        breached,
        "sla_breached",
        &system,
        &note,
        due,
        Some(system_event_id(
            &t.id,
            &format!("sla_breached/{}/{level}", kind.as_str()),
        )),
    );
    let mut out = vec![e1];
    let Some(parent) = escalation_target(dir, &t.agency, to_root) else {
        return out;
    };
    let before = out[0].ticket.clone();
    let mut up = before.clone();
    up.agency = parent.to_owned();
    up.escalation_level = level.saturating_add(1);
    let (ack, resolve) = deadlines(dir, parent, t.severity, 0);
    match kind {
        Deadline::Ack => {
            up.ack_breached = false;
            up.ack_due_us = if ack > 0 { due.saturating_add(ack) } else { 0 };
            up.resolve_due_us = up.resolve_due_us.max(up.ack_due_us);
        }
        Deadline::Resolve => {
            up.resolve_breached = false;
            up.resolve_due_us = if resolve > 0 {
                due.saturating_add(resolve)
            } else {
                0
            };
        }
    }
    let note = format!(
        "escalated from {} to {parent}: {} deadline missed",
        t.agency,
        kind.as_str()
    );
    out.push(make_event(
        Some(&before),
        up,
        "escalated",
        &system,
        &note,
        due,
        Some(system_event_id(
            &t.id,
            &format!("escalated/{}", level.saturating_add(1)),
        )),
    ));
    out
}

/// Maps tokio's clock onto wall-clock microseconds, anchored at creation.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall0_us: i64,
    mono0: tokio::time::Instant,
}

impl Clock {
    /// A clock reading `wall_us` now.
    #[must_use]
    pub fn starting_at(wall_us: i64) -> Self {
        Self {
            wall0_us: wall_us,
            mono0: tokio::time::Instant::now(),
        }
    }

    /// The wall clock (µs) as tokio's clock sees it.
    #[must_use]
    pub fn now_us(&self) -> i64 {
        self.wall0_us.saturating_add(micros(
            tokio::time::Instant::now().duration_since(self.mono0),
        ))
    }

    /// The tokio instant of wall time `us`.
    #[must_use]
    pub fn instant_of(&self, us: i64) -> tokio::time::Instant {
        let delta = us.saturating_sub(self.wall0_us).max(0);
        self.mono0 + std::time::Duration::from_micros(u64::try_from(delta).unwrap_or(0))
    }
}

/// Active tickets ordered by their next deadline.
#[derive(Debug, Default)]
pub struct Schedule {
    tickets: HashMap<Uuid, Ticket>,
    order: BTreeSet<(i64, Uuid)>,
}

impl Schedule {
    /// Adds or replaces a ticket (dropped when it has no pending deadline).
    pub fn upsert(&mut self, t: Ticket) {
        self.remove(&t.id);
        if let Some((_, due)) = next_deadline(&t) {
            self.order.insert((due, t.id));
            self.tickets.insert(t.id, t);
        }
    }

    /// Forgets a ticket.
    pub fn remove(&mut self, id: &Uuid) {
        if let Some(old) = self.tickets.remove(id)
            && let Some((_, due)) = next_deadline(&old)
        {
            self.order.remove(&(due, *id));
        }
    }

    /// Replaces everything with `tickets` (a fresh read from the store), keeping a local
    /// version when it is newer than the stored one.
    pub fn replace(&mut self, tickets: Vec<Ticket>) {
        let local = std::mem::take(&mut self.tickets);
        self.order.clear();
        for t in tickets {
            match local.get(&t.id) {
                Some(l) if l.version > t.version => self.upsert(l.clone()),
                _ => self.upsert(t),
            }
        }
    }

    /// The earliest pending deadline.
    #[must_use]
    pub fn next_due(&self) -> Option<i64> {
        self.order.first().map(|(d, _)| *d)
    }

    /// Number of tickets with a pending deadline.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tickets.len()
    }

    /// Whether nothing is pending.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tickets.is_empty()
    }

    /// Removes and returns the tickets whose deadline is at or before `now_us`.
    pub fn take_due(&mut self, now_us: i64) -> Vec<Ticket> {
        let mut out = Vec::new();
        while let Some(&(d, id)) = self.order.first() {
            if d > now_us {
                break;
            }
            self.order.remove(&(d, id));
            if let Some(t) = self.tickets.remove(&id) {
                out.push(t);
            }
        }
        out
    }
}

/// Sleeps until the next deadline (or forever when none), then plans the due tickets'
/// events and puts their new states back into the schedule. The caller stores the events.
pub async fn next_escalations(
    schedule: &mut Schedule,
    clock: &Clock,
    dir: &Directory,
    to_root: bool,
) -> Vec<Event> {
    match schedule.next_due() {
        Some(due) => tokio::time::sleep_until(clock.instant_of(due)).await,
        None => std::future::pending::<()>().await,
    }
    let now = clock.now_us();
    let mut out = Vec::new();
    for t in schedule.take_due(now) {
        let events = plan(&t, now, dir, to_root);
        if let Some(last) = events.last() {
            schedule.upsert(last.ticket.clone());
        }
        out.extend(events);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::agency::parse_directory;
    use crate::tickets::Status;

    const TREE: &str = r#"
[[policy]]
name = "root"
sla = [{ severity = 1, ack = "10m", resolve = "1h" }]
[[policy]]
name = "dept"
sla = [{ severity = 1, ack = "15m", resolve = "4h" }]
[[policy]]
name = "ministry"
sla = [{ severity = 1, ack = "30m", resolve = "8h" }]

[[agency]]
code = "NCC"
name = "Root"
policy = "root"
[[agency]]
code = "MIC"
parent = "NCC"
name = "Ministry"
policy = "ministry"
[[agency]]
code = "MIC.D3"
parent = "MIC"
name = "Department"
[[agency]]
code = "MIC.D3.U1"
parent = "MIC.D3"
name = "Unit"
policy = "dept"
"#;

    const T0: i64 = 1_800_000_000_000_000;
    const MIN: i64 = 60_000_000;

    fn dir() -> Directory {
        Directory::from_validated(parse_directory("t", TREE, Path::new(".")).unwrap(), 1)
    }

    fn ticket(dir: &Directory) -> Ticket {
        let (ack, resolve) = deadlines(dir, "MIC.D3.U1", 1, T0);
        Ticket {
            id: Uuid::from_u128(7),
            seq: 1,
            version: 1 << 16,
            status: Status::New,
            agency: "MIC.D3.U1".into(),
            owner_agency: "MIC.D3.U1".into(),
            agency_path: dir.path("MIC.D3.U1"),
            level1_agency: "MIC".into(),
            escalation_level: 0,
            severity: 1,
            assignee: String::new(),
            incident_id: Uuid::from_u128(1),
            linked_incident_id: Uuid::nil(),
            related_ticket: String::new(),
            title: "t".into(),
            rule: "default".into(),
            dedup_key: "k".into(),
            opened_us: T0,
            acknowledged_us: 0,
            resolved_us: 0,
            closed_us: 0,
            ack_due_us: ack,
            resolve_due_us: resolve,
            ack_breached: false,
            resolve_breached: false,
            reopen_count: 0,
            resolved_alert_count: 0,
            updated_us: T0,
            last_action: "opened".into(),
        }
    }

    #[test]
    fn plan_is_deterministic_and_stops_at_level_one() {
        let d = dir();
        let t = ticket(&d);
        // Unit policy "dept": ack 15 min. Before it, nothing.
        assert!(plan(&t, T0 + 15 * MIN - 1, &d, false).is_empty());
        let e = plan(&t, T0 + 15 * MIN, &d, false);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].action, "sla_breached");
        assert_eq!(e[1].action, "escalated");
        assert_eq!(e[1].ticket.agency, "MIC.D3");
        assert_eq!(e[1].ticket.escalation_level, 1);
        // MIC.D3 inherits "ministry": ack 30 min after the missed deadline.
        assert_eq!(e[1].ticket.ack_due_us, T0 + 45 * MIN);
        assert_eq!(e[1].at_us, T0 + 15 * MIN);
        assert_eq!(e[1].ticket.seq, 3);
        // Later evaluation (another correlator, a second later) writes the same rows.
        let again = plan(&t, T0 + 15 * MIN + 1_000_000, &d, false);
        assert_eq!(again, e);
    }

    #[tokio::test(start_paused = true)]
    async fn escalation_fires_at_each_deadline_on_the_paused_clock() {
        let d = dir();
        let clock = Clock::starting_at(T0);
        let mut s = Schedule::default();
        s.upsert(ticket(&d));
        let start = tokio::time::Instant::now();
        let mut seen = Vec::new();
        // Unit (15 min) → department (+30) → ministry (+30); the ministry is level 1, so
        // the third miss is recorded once and nothing else happens on the ack deadline.
        for _ in 0..3 {
            let ev = next_escalations(&mut s, &clock, &d, false).await;
            let elapsed_min = (tokio::time::Instant::now() - start).as_secs() / 60;
            for e in ev {
                seen.push((elapsed_min, e.action.clone(), e.ticket.agency.clone()));
            }
        }
        assert_eq!(
            seen,
            vec![
                (15, "sla_breached".to_owned(), "MIC.D3.U1".to_owned()),
                (15, "escalated".to_owned(), "MIC.D3".to_owned()),
                (45, "sla_breached".to_owned(), "MIC.D3".to_owned()),
                (45, "escalated".to_owned(), "MIC".to_owned()),
                (75, "sla_breached".to_owned(), "MIC".to_owned()),
            ]
        );
        // Next: the resolve deadline. Unit policy: 4 h after opening (240 min), at MIC.
        let ev = next_escalations(&mut s, &clock, &d, false).await;
        assert_eq!((tokio::time::Instant::now() - start).as_secs() / 60, 240);
        assert_eq!(ev.len(), 1, "at level 1 a missed deadline is only recorded");
        assert_eq!(ev[0].action, "sla_breached");
        assert_eq!(ev[0].comment, "resolve deadline missed at level 2 (MIC)");
        // Nothing more is due: the timer sleeps (checked for a simulated day).
        assert!(
            tokio::time::timeout(
                Duration::from_secs(86_400),
                next_escalations(&mut s, &clock, &d, false)
            )
            .await
            .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn acknowledging_stops_the_ack_clock_and_root_escalation_is_optional() {
        let d = dir();
        let clock = Clock::starting_at(T0);
        let mut s = Schedule::default();
        let mut t = ticket(&d);
        t.status = Status::Acknowledged;
        t.acknowledged_us = T0 + MIN;
        s.upsert(t.clone());
        // Acknowledged: the next deadline is the resolve one (4 h).
        let ev = next_escalations(&mut s, &clock, &d, true).await;
        assert_eq!(clock.now_us(), T0 + 240 * MIN);
        assert_eq!(ev[1].ticket.agency, "MIC.D3");
        assert_eq!(ev[1].ticket.resolve_due_us, T0 + 240 * MIN + 480 * MIN);
        // With escalate_to_root the ministry's ticket goes on to the root.
        let mut at_mic = ev[1].ticket.clone();
        at_mic.agency = "MIC".into();
        at_mic.resolve_due_us = T0 + 300 * MIN;
        let up = plan(&at_mic, T0 + 300 * MIN, &d, true);
        assert_eq!(up[1].ticket.agency, "NCC");
        assert!(plan(&at_mic, T0 + 300 * MIN, &d, false).len() == 1);
    }
}
