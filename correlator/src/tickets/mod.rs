//! Tickets: one per incident at or above its agency's ticket severity, routed to the agency
//! owning the incident, with a validated lifecycle, SLAs and escalation up the agency tree.
//!
//! Input: incident updates (from `incident_updates`), responder requests (the API), the
//! clock. Output: `ticket_events` rows, each carrying the ticket's whole state after the event;
//! the `tickets` table (latest state), `ticket_incidents` and the ticket part of `audit` are
//! filled from them by materialized views, so one `INSERT` records a change everywhere.
//!
//! Lifecycle (anything else is `409`):
//!
//! ```text
//! new ──► acknowledged ──► in_progress ──► resolved ──► closed
//!  │  └──────────────────────►┘  │            │  ▲ │
//!  │             │               │            ▼  │ ▼
//!  └─────────────┴───────────────┴──► false_positive ──► closed
//!  reopened ◄── resolved | false_positive;  reopened ──► acknowledged | in_progress | false_positive
//! ```
//!
//! Invariants: a ticket's `seq` grows by one per event; its `version` is `seq << 16 |
//! human << 15 | hash(event) & 0x7fff`, so two writers racing on one `seq` (two correlators)
//! end with one deterministic winner, a person's change beating a system change. System
//! events (opening, escalation, breach, reopen) have deterministic IDs and contents, so two
//! correlators computing the same event write identical rows that collapse.

pub mod escalate;
pub mod lease;
pub mod store;
pub mod ticketer;
pub mod view;
pub mod worker;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::agency::Directory;

/// Namespace of ticket and system-event UUIDv5s.
pub const TICKET_NAMESPACE: Uuid = Uuid::from_u128(0x2b8e_51c4_7a0d_4e96_b1f3_5c6a_d8e2_7f19);

/// A ticket's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Opened, nobody acted yet.
    New,
    /// Someone took note.
    Acknowledged,
    /// Being worked on.
    InProgress,
    /// Fixed.
    Resolved,
    /// Done (terminal).
    Closed,
    /// Resolved or false positive, then active again.
    Reopened,
    /// Not an incident.
    FalsePositive,
}

impl Status {
    /// All statuses.
    pub const ALL: [Self; 7] = [
        Self::New,
        Self::Acknowledged,
        Self::InProgress,
        Self::Resolved,
        Self::Closed,
        Self::Reopened,
        Self::FalsePositive,
    ];

    /// Stored text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Acknowledged => "acknowledged",
            Self::InProgress => "in_progress",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
            Self::Reopened => "reopened",
            Self::FalsePositive => "false_positive",
        }
    }

    /// Parses the stored text.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether someone still has to act (SLA clocks run).
    #[must_use]
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::New | Self::Acknowledged | Self::InProgress | Self::Reopened
        )
    }

    /// Whether the lifecycle allows `self → to`.
    #[must_use]
    pub fn can_become(self, to: Self) -> bool {
        use Status::{Acknowledged, Closed, FalsePositive, InProgress, New, Reopened, Resolved};
        matches!(
            (self, to),
            (New, Acknowledged | InProgress | FalsePositive)
                | (Acknowledged, InProgress | Resolved | FalsePositive)
                | (InProgress, Resolved | FalsePositive)
                | (Resolved, Closed | Reopened)
                | (FalsePositive, Closed | Reopened)
                | (Reopened, Acknowledged | InProgress | FalsePositive)
        )
    }
}

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Token name, or `tocsin` for the system.
    pub name: String,
    /// Role (`responder`, `admin`, ..., or `system`).
    pub role: String,
    /// The token's agency (empty for the system).
    pub agency: String,
    /// The request's ID (empty for background work).
    pub request_id: String,
}

impl Actor {
    /// The correlator itself (ticket opening, escalation).
    #[must_use]
    pub fn system() -> Self {
        Self {
            name: "tocsin".into(),
            role: "system".into(),
            agency: String::new(),
            request_id: String::new(),
        }
    }

    fn is_human(&self) -> bool {
        self.role != "system"
    }
}

/// A ticket's state (one row of `tickets`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// ID (UUIDv5 of the incident, see [`ticket_id`]).
    pub id: Uuid,
    /// Events so far.
    pub seq: u32,
    /// Row version.
    pub version: u64,
    /// Status.
    pub status: Status,
    /// Agency now responsible (the owner, or an ancestor after escalation).
    pub agency: String,
    /// Agency owning the incident.
    pub owner_agency: String,
    /// `/ROOT/.../OWNER/`.
    pub agency_path: String,
    /// Level-1 agency above the owner.
    pub level1_agency: String,
    /// Times escalated.
    pub escalation_level: u8,
    /// Suricata severity of the incident (1 = most severe).
    pub severity: u8,
    /// Assignee (free text).
    pub assignee: String,
    /// The incident that opened it.
    pub incident_id: Uuid,
    /// The incident attached by the latest event (nil otherwise).
    pub linked_incident_id: Uuid,
    /// A related earlier ticket of the same key (link policy), or empty.
    pub related_ticket: String,
    /// Short description (the incident's first signature).
    pub title: String,
    /// Dedup or correlation rule of the incident.
    pub rule: String,
    /// The incident's key.
    pub dedup_key: String,
    /// When opened, µs.
    pub opened_us: i64,
    /// When acknowledged, µs (0: not yet).
    pub acknowledged_us: i64,
    /// When resolved, µs (0: not).
    pub resolved_us: i64,
    /// When closed, µs (0: not).
    pub closed_us: i64,
    /// Acknowledge deadline at the current level, µs (0: none).
    pub ack_due_us: i64,
    /// Resolve deadline at the current level, µs (0: none).
    pub resolve_due_us: i64,
    /// The acknowledge deadline was missed at the current level (and recorded).
    pub ack_breached: bool,
    /// The resolve deadline was missed at the current level (and recorded).
    pub resolve_breached: bool,
    /// Times reopened.
    pub reopen_count: u16,
    /// The incident's alert count when resolved (new alerts beyond it reopen or link).
    pub resolved_alert_count: u64,
    /// Last change, µs.
    pub updated_us: i64,
    /// Last action.
    pub last_action: String,
}

impl Ticket {
    /// The deadline that matters now: acknowledge while unacknowledged, else resolve; `None`
    /// once resolved, closed or a false positive, or without SLA.
    #[must_use]
    pub fn due_us(&self) -> Option<i64> {
        if !self.status.is_active() {
            return None;
        }
        let d = if self.acknowledged_us == 0 && self.ack_due_us > 0 {
            self.ack_due_us
        } else {
            self.resolve_due_us
        };
        (d > 0).then_some(d)
    }
}

/// The ID of the ticket an incident opens (`related` names the ticket it is linked to, for
/// a second ticket of the same incident under the link policy).
#[must_use]
pub fn ticket_id(incident: &Uuid, related: Option<&Uuid>) -> Uuid {
    let name = match related {
        Some(r) => format!("{incident}/{r}"),
        None => incident.to_string(),
    };
    Uuid::new_v5(&TICKET_NAMESPACE, name.as_bytes())
}

/// Deterministic ID of a system event.
#[must_use]
pub fn system_event_id(ticket: &Uuid, what: &str) -> Uuid {
    Uuid::new_v5(&TICKET_NAMESPACE, format!("{ticket}/{what}").as_bytes())
}

/// Row version for event `seq` (see the module header).
#[must_use]
pub fn version_for(seq: u32, human: bool, event_id: &Uuid) -> u64 {
    let h =
        u64::from(u16::from_le_bytes([event_id.as_bytes()[0], event_id.as_bytes()[1]]) & 0x7fff);
    (u64::from(seq) << 16) | (u64::from(human) << 15) | h
}

/// One event: what happened, by whom, and the ticket after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Event ID.
    pub id: Uuid,
    /// `opened`, `acknowledged`, `assigned`, `commented`, `status_changed`, `escalated`,
    /// `sla_breached`, `reopened`, `incident_linked`.
    pub action: String,
    /// Who.
    pub actor: Actor,
    /// When, µs.
    pub at_us: i64,
    /// Comment or system note.
    pub comment: String,
    /// State before (JSON: status, agency, assignee), empty for `opened`.
    pub before: String,
    /// State after (same shape).
    pub after: String,
    /// The ticket after the event.
    pub ticket: Ticket,
}

fn summary(t: &Ticket) -> String {
    serde_json::json!({
        "status": t.status.as_str(),
        "agency": t.agency,
        "assignee": t.assignee,
        "escalation_level": t.escalation_level,
    })
    .to_string()
}

/// Builds the event turning `before` into `after` (sets `seq`, `version`, `updated_us`).
#[must_use]
pub fn make_event(
    before: Option<&Ticket>,
    mut after: Ticket,
    action: &str,
    actor: &Actor,
    comment: &str,
    at_us: i64,
    id: Option<Uuid>,
) -> Event {
    let id = id.unwrap_or_else(Uuid::new_v4);
    after.seq = before.map_or(1, |b| b.seq + 1);
    after.version = version_for(after.seq, actor.is_human(), &id);
    after.updated_us = at_us;
    after.last_action = action.to_owned();
    Event {
        id,
        action: action.to_owned(),
        actor: actor.clone(),
        at_us,
        comment: comment.to_owned(),
        before: before.map(summary).unwrap_or_default(),
        after: summary(&after),
        ticket: after,
    }
}

/// Why a change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// The lifecycle does not allow it (`409`).
    #[error("cannot go from {from} to {to}")]
    Illegal {
        /// Current status.
        from: &'static str,
        /// Requested status (or action).
        to: &'static str,
    },
    /// The input is unusable (`400`).
    #[error("{0}")]
    Invalid(String),
}

/// A change a person asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Move to a status.
    Status(Status),
    /// Set the assignee.
    Assign(String),
    /// Add a comment.
    Comment,
}

/// Longest comment.
pub const MAX_COMMENT: usize = 4096;
/// Longest assignee.
pub const MAX_ASSIGNEE: usize = 128;

/// Applies a person's change to `t` at `now_us` (pure). Returns the action name and the new
/// state, or why not. `incident_alerts` is the incident's alert count (kept on resolve).
///
/// # Errors
/// [`ChangeError`].
pub fn apply_change(
    t: &Ticket,
    change: &Change,
    comment: &str,
    now_us: i64,
    dir: &Directory,
    incident_alerts: u64,
) -> Result<(&'static str, Ticket), ChangeError> {
    if comment.len() > MAX_COMMENT
        || comment
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ChangeError::Invalid(format!(
            "comment must be at most {MAX_COMMENT} bytes without control characters"
        )));
    }
    let mut n = t.clone();
    match change {
        Change::Comment => {
            if comment.trim().is_empty() {
                return Err(ChangeError::Invalid("text must not be empty".into()));
            }
            Ok(("commented", n))
        }
        Change::Assign(who) => {
            if who.trim().is_empty()
                || who.len() > MAX_ASSIGNEE
                || who.chars().any(char::is_control)
            {
                return Err(ChangeError::Invalid(format!(
                    "assignee must be 1-{MAX_ASSIGNEE} characters without control characters"
                )));
            }
            if t.status == Status::Closed {
                return Err(ChangeError::Illegal {
                    from: t.status.as_str(),
                    to: "assigned",
                });
            }
            n.assignee = who.trim().to_owned();
            Ok(("assigned", n))
        }
        Change::Status(to) => {
            if !t.status.can_become(*to) {
                return Err(ChangeError::Illegal {
                    from: t.status.as_str(),
                    to: to.as_str(),
                });
            }
            n.status = *to;
            match to {
                Status::Acknowledged | Status::InProgress if n.acknowledged_us == 0 => {
                    n.acknowledged_us = now_us;
                }
                Status::Resolved => {
                    n.resolved_us = now_us;
                    n.resolved_alert_count = incident_alerts;
                }
                Status::FalsePositive => n.resolved_alert_count = incident_alerts,
                Status::Closed => n.closed_us = now_us,
                Status::Reopened => reopen(&mut n, now_us, dir),
                _ => {}
            }
            let action = match to {
                Status::Acknowledged => "acknowledged",
                Status::Reopened => "reopened",
                _ => "status_changed",
            };
            Ok((action, n))
        }
    }
}

/// Reopens `t` at `now_us`: clocks restart with the current agency's SLA.
pub fn reopen(t: &mut Ticket, now_us: i64, dir: &Directory) {
    t.status = Status::Reopened;
    t.reopen_count = t.reopen_count.saturating_add(1);
    t.acknowledged_us = 0;
    t.resolved_us = 0;
    t.ack_breached = false;
    t.resolve_breached = false;
    let (ack, resolve) = deadlines(dir, &t.agency, t.severity, now_us);
    t.ack_due_us = ack;
    t.resolve_due_us = resolve;
}

/// `(ack_due_us, resolve_due_us)` for a ticket of `severity` at `agency` starting at `from_us`
/// (0 for no SLA).
#[must_use]
pub fn deadlines(dir: &Directory, agency: &str, severity: u8, from_us: i64) -> (i64, i64) {
    match dir.policy_for(agency).sla_for(severity) {
        Some(s) => (
            from_us.saturating_add(micros(s.ack)),
            from_us.saturating_add(micros(s.resolve)),
        ),
        None => (0, 0),
    }
}

pub(crate) fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Wall clock, µs since the epoch.
#[must_use]
pub fn now_us() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_table() {
        use Status::*;
        // Every (from, to) pair, against the table in the module header.
        let allowed = [
            (New, Acknowledged),
            (New, InProgress),
            (New, FalsePositive),
            (Acknowledged, InProgress),
            (Acknowledged, Resolved),
            (Acknowledged, FalsePositive),
            (InProgress, Resolved),
            (InProgress, FalsePositive),
            (Resolved, Closed),
            (Resolved, Reopened),
            (FalsePositive, Closed),
            (FalsePositive, Reopened),
            (Reopened, Acknowledged),
            (Reopened, InProgress),
            (Reopened, FalsePositive),
        ];
        for from in Status::ALL {
            for to in Status::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn versions_order_by_seq_then_person_over_system() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(u128::MAX);
        assert!(version_for(3, false, &b) < version_for(4, false, &a));
        assert!(version_for(3, false, &b) < version_for(3, true, &a));
        assert_eq!(version_for(1, false, &a) >> 16, 1);
    }
}

/// Serializes changes to one ticket within this process (64 striped locks by ticket ID):
/// the API and the worker read, check and write a ticket under its stripe.
#[derive(Debug)]
pub struct TicketLocks(Vec<tokio::sync::Mutex<()>>);

impl Default for TicketLocks {
    fn default() -> Self {
        Self((0..64).map(|_| tokio::sync::Mutex::new(())).collect())
    }
}

impl TicketLocks {
    fn stripe(&self, id: &Uuid) -> usize {
        usize::from(id.as_bytes()[15]) % self.0.len().max(1)
    }

    /// Locks `id`'s stripe.
    pub async fn lock(&self, id: &Uuid) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.0.get(self.stripe(id)) {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }

    /// Locks the stripes of all `ids`, in stripe order (no deadlock between callers).
    pub async fn lock_many(&self, ids: &[Uuid]) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = ids.iter().map(|i| self.stripe(i)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut out = Vec::with_capacity(stripes.len());
        for s in stripes {
            if let Some(m) = self.0.get(s) {
                out.push(m.lock().await);
            }
        }
        out
    }
}
