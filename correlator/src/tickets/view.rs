//! The JSON shape of a ticket, as the API answers it and webhooks send it.

use serde::{Deserialize, Serialize};

use super::Ticket;

/// A ticket as the API shows it. Times are RFC 3339 (UTC, microseconds) or `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketItem {
    /// Ticket ID.
    pub id: String,
    /// The incident that opened it.
    pub incident_id: String,
    /// Agency now responsible (an ancestor of the owner after escalation).
    pub agency: String,
    /// Agency owning the incident.
    pub owner_agency: String,
    /// `new`, `acknowledged`, `in_progress`, `resolved`, `closed`, `reopened`, `false_positive`.
    pub status: String,
    /// Suricata severity (1 = most severe).
    pub severity: u8,
    /// The deadline that matters now (acknowledge, else resolve); `null` when none.
    pub due_at: Option<String>,
    /// Times escalated.
    pub escalation_level: u8,
    /// Assignee (empty when none).
    pub assignee: String,
    /// Short description.
    pub title: String,
    /// When opened.
    pub opened_at: String,
    /// When acknowledged.
    pub acknowledged_at: Option<String>,
    /// When resolved.
    pub resolved_at: Option<String>,
    /// When closed.
    pub closed_at: Option<String>,
    /// Acknowledge deadline at the current level.
    pub ack_due_at: Option<String>,
    /// Resolve deadline at the current level.
    pub resolve_due_at: Option<String>,
    /// Times reopened.
    pub reopen_count: u16,
    /// An earlier ticket of the same key this one follows (link policy), or empty.
    pub related_ticket: String,
    /// Last change.
    pub updated_at: String,
    /// Events so far (grows by one per change).
    pub seq: u32,
}

fn opt(us: i64) -> Option<String> {
    (us > 0).then(|| crate::api::rfc3339(us))
}

impl From<&Ticket> for TicketItem {
    fn from(t: &Ticket) -> Self {
        Self {
            id: t.id.to_string(),
            incident_id: t.incident_id.to_string(),
            agency: t.agency.clone(),
            owner_agency: t.owner_agency.clone(),
            status: t.status.as_str().to_owned(),
            severity: t.severity,
            due_at: t.due_us().map(crate::api::rfc3339),
            escalation_level: t.escalation_level,
            assignee: t.assignee.clone(),
            title: t.title.clone(),
            opened_at: crate::api::rfc3339(t.opened_us),
            acknowledged_at: opt(t.acknowledged_us),
            resolved_at: opt(t.resolved_us),
            closed_at: opt(t.closed_us),
            ack_due_at: opt(t.ack_due_us),
            resolve_due_at: opt(t.resolve_due_us),
            reopen_count: t.reopen_count,
            related_ticket: t.related_ticket.clone(),
            updated_at: crate::api::rfc3339(t.updated_us),
            seq: t.seq,
        }
    }
}
